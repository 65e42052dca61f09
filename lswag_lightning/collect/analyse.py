"""The analysis of a result table: correlations, LIBRA (held-out), the label-budget choice (``auto`` on the finished
jobs, :mod:`lswag_lightning.collect.budget`) and the report, pooled and per search space, with explicit rules for
small tables (each decision recorded in :attr:`Analysis.notes`)."""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from lswag_lightning.collect.results_table import ACCURACY_CHOICES, ACCURACY_KEYS, table_proxies

#: Held-out LIBRA selects on half the rows and needs 10 rows there (lswag_lightning.analysis.libra.evaluate).
LIBRA_MIN_ROWS = 20
#: Fewer finished jobs than this: the table is written, the correlations are not (a bootstrap needs a few rows).
CORRELATION_MIN_ROWS = 3
#: A search space gets its own report when the sweep holds several spaces and it has at least this many rows.
PER_SPACE_MIN_ROWS = 5


@dataclass
class Analysis:
    """The numbers behind the report.

    ``correlations``: :func:`lswag_lightning.analysis.correlation_table` on all rows (None when fewer than
    :data:`CORRELATION_MIN_ROWS`); ``per_space``: the same per search space (only with several spaces);
    ``libra``: the :class:`~lswag_lightning.analysis.LibraEvaluation` on all rows, or None with ``libra_skipped``
    saying why; ``per_space_libra`` / ``per_space_libra_skipped``: the same per space; ``ranking``: the
    :class:`~lswag_lightning.collect.budget.SweepRanking` of all rows (auto's choice at this k, or why skipped);
    ``reports``: ``{"all" | space: report.md path}``; ``notes``: what was skipped and why.
    """

    accuracy: str
    proxies: list[str]
    n_rows: int
    correlations: pd.DataFrame | None = None
    per_space: dict[str, pd.DataFrame] = field(default_factory=dict)
    libra: Any = None
    libra_skipped: str = ""
    per_space_libra: dict[str, Any] = field(default_factory=dict)
    per_space_libra_skipped: dict[str, str] = field(default_factory=dict)
    ranking: Any = None
    reports: dict[str, Path] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def _usable_rows(table: pd.DataFrame, proxies: Sequence[str], accuracy: str) -> int:
    """Rows with a finite accuracy and params (what LIBRA starts from before its own NaN rules)."""
    acc = table[accuracy].to_numpy(dtype=float, na_value=np.nan)
    par = table["params"].to_numpy(dtype=float, na_value=np.nan)
    return int((np.isfinite(acc) & np.isfinite(par)).sum())


def _run_libra(
    table: pd.DataFrame, proxies: Sequence[str], accuracy: str, *, n_splits: int, seed: int, options: Mapping[str, Any]
) -> tuple[Any, str]:
    """``(evaluation, "")`` or ``(None, why it was skipped)``."""
    from lswag_lightning.analysis.libra import evaluate

    usable = _usable_rows(table, proxies, accuracy)
    if usable < LIBRA_MIN_ROWS:
        return None, (
            f"LIBRA skipped: its held-out evaluation needs at least {LIBRA_MIN_ROWS} finished jobs with a "
            f"finite {accuracy} (it selects on half of them and needs 10 there); there are {usable}. "
            f"Run more candidates (candidate.index='range(0,{max(LIBRA_MIN_ROWS, 2 * usable)})')."
        )
    try:
        return evaluate(table, proxies, accuracy, "params", n_splits=n_splits, seed=seed, **dict(options)), ""
    except ValueError as err:
        return None, f"LIBRA skipped: {err}"


def _start(table: pd.DataFrame, accuracy: str, proxies: Sequence[str] | None) -> Analysis:
    """The analysis before any statistic: the proxies that can be ranked, and a note for each thing left out
    (a proxy with no finite value, too few rows for correlations or LIBRA)."""
    if accuracy not in ACCURACY_KEYS:
        raise ValueError(f"accuracy must be one of {', '.join(ACCURACY_CHOICES)}, got {accuracy!r}")
    proxies = list(table_proxies(table) if proxies is None else proxies)
    # A proxy with no finite value at all cannot be ranked; keep it out of the report instead of failing.
    dead = [p for p in proxies if not np.isfinite(table[p].to_numpy(dtype=float, na_value=np.nan)).any()]
    analysis = Analysis(accuracy=accuracy, proxies=[p for p in proxies if p not in dead], n_rows=len(table))
    if dead:
        analysis.notes.append(f"left out (no finite value in any job): {', '.join(dead)}")
    if not analysis.proxies:
        analysis.notes.append("no proxy values in the results: nothing to correlate")
    elif len(table) < CORRELATION_MIN_ROWS:
        analysis.notes.append(
            f"{len(table)} finished job(s): correlations need at least {CORRELATION_MIN_ROWS}; "
            "only the table was written"
        )
        analysis.libra_skipped = f"LIBRA skipped: {len(table)} finished job(s), it needs {LIBRA_MIN_ROWS}"
    return analysis


def analyse(
    table: pd.DataFrame,
    out_dir: str | os.PathLike,
    *,
    accuracy: str = "val_acc",
    proxies: Sequence[str] | None = None,
    n_boot: int = 1000,
    n_splits: int = 20,
    seed: int = 0,
    per_space: bool = True,
    protocol_lines: Iterable[str] = (),
    title: str = "Proxy vs accuracy",
    libra_options: Mapping[str, Any] | None = None,
) -> Analysis:
    """Correlations, LIBRA and plots for ``table`` (from :func:`results_table`) in ``out_dir``.

    Writes ``<out_dir>/report/`` (all rows) and ``<out_dir>/report_<space>/`` per space when ``per_space`` and the
    table holds several spaces with at least :data:`PER_SPACE_MIN_ROWS` rows each. Small tables are handled
    explicitly: below :data:`CORRELATION_MIN_ROWS` rows no report is written; below :data:`LIBRA_MIN_ROWS` the
    report has correlations but no LIBRA. Each such decision is in ``Analysis.notes``.
    """
    from lswag_lightning.analysis.correlations import correlation_table
    from lswag_lightning.analysis.report import write_report

    analysis = _start(table, accuracy, proxies)
    if not analysis.proxies or len(table) < CORRELATION_MIN_ROWS:
        return analysis
    out = Path(out_dir)
    proxies = analysis.proxies
    spaces = sorted(str(s) for s in table["space"].dropna().unique())
    protocol = list(protocol_lines)
    protocol.append(
        f"accuracy `{accuracy}` in % (100 × the fraction in result.json); params = trainable "
        f"parameters of the built network; spaces: {', '.join(spaces) or 'unknown'}"
    )
    if len(spaces) > 1:
        protocol.append(
            "all spaces pooled: a proxy is ranked across every candidate of the sweep (per-space "
            "reports beside this one)"
        )

    analysis.correlations = correlation_table(table, proxies, accuracy, n_boot=n_boot, seed=seed)
    evaluation, why = _run_libra(table, proxies, accuracy, n_splits=n_splits, seed=seed, options=libra_options or {})
    analysis.libra, analysis.libra_skipped = evaluation, why
    if why:
        analysis.notes.append(why)
    analysis.reports["all"] = write_report(
        table,
        out / "report",
        accuracy=accuracy,
        proxies=proxies,
        params="params",
        title=title,
        protocol_lines=protocol + ([why] if why else []),
        libra=evaluation if evaluation is not None else False,
        seed=seed,
        n_boot=n_boot,
        color_by="space" if len(spaces) > 1 else None,
    )
    _label_budget(analysis, table, out)

    if per_space and len(spaces) > 1:
        for space in spaces:
            _analyse_space(
                analysis,
                table[table["space"] == space].reset_index(drop=True),
                space,
                out / f"report_{space}",
                n_boot=n_boot,
                n_splits=n_splits,
                seed=seed,
                protocol_lines=[*protocol_lines, f"search space {space} only"],
                title=f"{title}: {space}",
                libra_options=libra_options or {},
            )
    return analysis


def _label_budget(analysis: Analysis, table: pd.DataFrame, out: Path) -> None:
    """auto on all rows (:func:`lswag_lightning.collect.budget.rank_sweep`), its ranking in ``out/ranking/`` and its
    section at the end of the pooled report."""
    from lswag_lightning.collect.budget import append_to_report, rank_sweep

    analysis.ranking = rank_sweep(table, analysis.proxies, analysis.accuracy, out / "ranking")
    if analysis.ranking.skipped:
        analysis.notes.append(analysis.ranking.skipped)
    append_to_report(analysis.reports["all"], analysis.ranking)


def _analyse_space(
    analysis: Analysis,
    sub: pd.DataFrame,
    space: str,
    out: Path,
    *,
    n_boot: int,
    n_splits: int,
    seed: int,
    protocol_lines: list[str],
    title: str,
    libra_options: Mapping[str, Any],
) -> None:
    """The per-space part of :func:`analyse`: one space's rows, their correlations, LIBRA and report, added to
    ``analysis`` (or a note saying why the space has no report)."""
    from lswag_lightning.analysis.correlations import correlation_table
    from lswag_lightning.analysis.report import write_report

    accuracy = analysis.accuracy
    usable = [p for p in analysis.proxies if np.isfinite(sub[p].to_numpy(dtype=float, na_value=np.nan)).any()]
    if len(sub) < PER_SPACE_MIN_ROWS or not usable:
        analysis.notes.append(f"{space}: {len(sub)} finished job(s), no per-space report (needs {PER_SPACE_MIN_ROWS})")
        return
    analysis.per_space[space] = correlation_table(sub, usable, accuracy, n_boot=n_boot, seed=seed)
    sub_eval, sub_why = _run_libra(sub, usable, accuracy, n_splits=n_splits, seed=seed, options=libra_options)
    if sub_eval is not None:
        analysis.per_space_libra[space] = sub_eval
    else:
        analysis.per_space_libra_skipped[space] = sub_why
        analysis.notes.append(f"{space}: {sub_why}")
    analysis.reports[space] = write_report(
        sub,
        out,
        accuracy=accuracy,
        proxies=usable,
        params="params",
        title=title,
        protocol_lines=protocol_lines + ([sub_why] if sub_why else []),
        libra=sub_eval if sub_eval is not None else False,
        seed=seed,
        n_boot=n_boot,
    )
