"""Collect a sweep: every job's ``result.json`` into one result table, the analysis report, an optional W&B run.

A sweep (``lswag-train -m ...``) leaves one folder per job; a job that finished writes ``result.json`` (see
:func:`lswag_lightning.cli.train.train` for its fields), a job that failed writes one with ``status: failed`` and
its ``error``, and a job that was killed or is still running leaves a Hydra folder (``.hydra/``) with no result, or
a result with ``status: running``. :func:`collect` reads them all without stopping at the bad ones:

1. :func:`find_results` walks the given folders (recursively) and files; :func:`read_results` sorts the jobs into
   finished records and :class:`JobIssue` entries (failed, unfinished, unreadable), each with its error.
2. :func:`results_table` builds the analysis table (columns as in :mod:`lswag_lightning.analysis.table`): ``arch``,
   ``space``, ``params`` (trainable parameters, a count), one column per proxy under its registry name (sub-values
   such as ``lswag.lambda`` too; a proxy whose status is not ``ok`` is NaN), and the accuracies ``val_acc``,
   ``val_acc_best``, ``test_acc`` in % (100 × the fractions in result.json), plus bookkeeping columns that the
   analysis ignores (``job``, ``candidate_index``, ``seconds.scoring``, ``seconds.total``, ``wandb_group``).
3. :func:`analyse` writes the report (:func:`lswag_lightning.analysis.report.write_report`: Spearman / Kendall with
   bootstrap intervals, LIBRA with its held-out evaluation, plots) on all rows, and one per search space when the
   sweep holds several. LIBRA's held-out evaluation needs :data:`LIBRA_MIN_ROWS` usable rows; below that it is
   skipped and the reason is written in the report and returned.
4. :func:`write_wandb_run` (optional) logs one aggregate W&B run: a ``wandb.Table`` of all rows, one scatter chart
   per proxy against the accuracy, the correlation table, and LIBRA's selection in ``run.summary``. Offline unless
   ``WANDB_MODE`` (or ``mode``) says otherwise; no account is needed.

Plain functions returning data; the text for a terminal comes from :func:`format_issues`,
:func:`format_correlations`, :func:`format_libra`, :func:`format_libra_choices` and :func:`format_job_line`
(``lswag-collect`` and ``make demo`` print them).

Modules, one reason to change each: ``records`` (finding and reading job records), ``results_table`` (the result
table and its files), ``analyse`` (correlations, LIBRA, report), ``wandb_run`` (the aggregate W&B run),
``collect_sweep`` (:func:`collect` end to end), ``text`` (terminal output). Imports nothing from Lightning, Hydra
or the CLI.
"""

from __future__ import annotations

from lswag_lightning.collect.analyse import CORRELATION_MIN_ROWS, LIBRA_MIN_ROWS, PER_SPACE_MIN_ROWS, Analysis, analyse
from lswag_lightning.collect.budget import BUDGET_MIN_ROWS, SweepRanking, rank_sweep
from lswag_lightning.collect.collect_sweep import CollectResult, collect, default_out_dir
from lswag_lightning.collect.records import RESULT_FILE, Collected, JobIssue, find_results, read_results
from lswag_lightning.collect.results_table import (
    ACCURACY_CHOICES,
    ACCURACY_KEYS,
    META_COLUMNS,
    PARAMS,
    proxy_names,
    results_table,
    table_proxies,
    wandb_group_of,
    write_issues,
    write_table,
)
from lswag_lightning.collect.text import (
    format_correlations,
    format_issues,
    format_job_line,
    format_libra,
    format_libra_choices,
    format_ranking,
)
from lswag_lightning.collect.wandb_run import sweep_wandb_settings, write_wandb_run

__all__ = [
    "ACCURACY_CHOICES",
    "ACCURACY_KEYS",
    "BUDGET_MIN_ROWS",
    "CORRELATION_MIN_ROWS",
    "LIBRA_MIN_ROWS",
    "META_COLUMNS",
    "PARAMS",
    "PER_SPACE_MIN_ROWS",
    "RESULT_FILE",
    "SweepRanking",
    "Analysis",
    "Collected",
    "CollectResult",
    "JobIssue",
    "analyse",
    "collect",
    "default_out_dir",
    "find_results",
    "format_correlations",
    "format_issues",
    "format_job_line",
    "format_libra",
    "format_libra_choices",
    "format_ranking",
    "proxy_names",
    "rank_sweep",
    "read_results",
    "results_table",
    "sweep_wandb_settings",
    "table_proxies",
    "wandb_group_of",
    "write_issues",
    "write_table",
    "write_wandb_run",
]
