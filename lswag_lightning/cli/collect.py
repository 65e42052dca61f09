"""``lswag-collect``: one sweep's results -> table (CSV + parquet), correlations, LIBRA, report, W&B run.

Examples::

    lswag-collect multirun/proxy_vs_accuracy/pva_2026-11-28_12-00-00
    lswag-collect sweep_a sweep_b/3/result.json --out runs/both --accuracy test_acc --wandb

Reads every ``result.json`` under the given folders (recursively) and the given result files; failed and
unfinished jobs are listed with their error, never fatal. Writes into ``--out`` (default ``<first folder>/collect``):
``table.csv``, ``table.parquet``, ``problems.csv``, ``collect.json``, ``report/`` (all jobs: ``report.md``,
``correlations.csv``, ``libra.json``, PNG plots), ``report_<space>/`` per search space when there are several, and
``ranking/`` (``auto`` fitted on the finished jobs: what it picks at this k and the held-out ρ to expect;
``ranking.json`` ranks untrained candidates with ``lswag-search --fitness learned --ranking``).
With ``--wandb`` it also logs one aggregate W&B run (offline unless ``WANDB_MODE`` / ``--wandb-mode`` says
otherwise) in the sweep's W&B group. Exit codes: 0 done (even with failed jobs), 1 no finished job, 2 bad arguments.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from lswag_lightning.cli.options import build_parser as generate_parser
from lswag_lightning.cli.options import parse_settings
from lswag_lightning.collect import (
    ACCURACY_CHOICES,
    CORRELATION_MIN_ROWS,
    collect,
    format_correlations,
    format_issues,
    format_libra,
    format_libra_choices,
    format_ranking,
)
from lswag_lightning.settings import CommandSettings, option
from lswag_lightning.settings import vocabulary as v
from lswag_lightning.settings.values import Flag, Integer, Paths, Text


@dataclass(kw_only=True)
class CollectCommand(CommandSettings):
    """The settings of one ``lswag-collect`` command (see the module docstring)."""

    paths: list[Path] = option(
        Paths(),
        positional=True,
        metavar="PATH",
        help="sweep folder(s), searched recursively for result.json, and/or result files",
    )
    out: Path | None = v.OUT.field(None, help="default: <first folder>/collect")
    accuracy: str = option(
        Text(ACCURACY_CHOICES),
        "val_acc",
        help="accuracy the proxies are ranked against, in % (default: val_acc, the final validation accuracy; "
        "test_acc = final test accuracy; val_acc_best = best epoch)",
    )
    proxies: list[str] | None = v.PROXIES.field(
        None, help="the proxy columns to analyse (default: every proxy the jobs recorded, and params)"
    )
    per_space: bool = option(
        Flag(store=False),
        True,
        flags=("--no-per-space",),
        help="only the pooled report, even when the sweep holds several search spaces",
    )
    no_report: bool = option(Flag(), False, help="write the table only")
    splits: int = v.SPLITS.field(20, help="LIBRA's (20)")
    n_boot: int = v.N_BOOT.field(1000, help="(1000)")
    seed: int = option(Integer(0), 0, help="seed of the bootstrap and of LIBRA's splits (0)")
    wandb: bool = option(Flag(), False, help="also log one aggregate W&B run (offline by default)")
    wandb_mode: str | None = option(
        Text(("offline", "online")),
        None,
        help="W&B mode of the aggregate run (default: $WANDB_MODE, else offline; online needs a login)",
    )
    wandb_project: str | None = option(Text(), None, help="W&B project (default: the jobs' project, else lswag)")
    wandb_group: str | None = option(Text(), None, help="W&B group (default: the jobs' group / sweep_id)")
    result_name: str = option(Text(), "result.json", help="file name of the job records (result.json)")
    verbose: bool = option(Flag(), False, flags=("-v", "--verbose"), help="log the analysis' info messages")


def build_parser() -> argparse.ArgumentParser:
    """``lswag-collect``'s parser, generated from :class:`CollectCommand`."""
    return generate_parser(
        CollectCommand,
        prog="lswag-collect",
        description="Gather a sweep's result.json files into one table, rank-correlate every proxy with the final "
        "accuracy, run LIBRA (held-out) and write a report; optionally one aggregate W&B run.",
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``lswag-collect``; returns the exit code (argparse exits with 2 on bad arguments)."""
    parser = build_parser()
    args = parse_settings(CollectCommand, parser, argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s"
    )
    missing = [str(p) for p in args.paths if not p.exists()]
    if missing:
        parser.error(f"not found: {', '.join(missing)} (give sweep folders or result.json files)")
    try:
        result = collect(
            args.paths,
            args.out,
            accuracy=args.accuracy,
            proxies=args.proxies,
            report=not args.no_report,
            per_space=args.per_space,
            n_boot=args.n_boot,
            n_splits=args.splits,
            seed=args.seed,
            wandb=args.wandb,
            wandb_mode=args.wandb_mode,
            wandb_project=args.wandb_project,
            wandb_group=args.wandb_group,
            result_name=args.result_name,
        )
    except ValueError as err:
        if "no finished job" in str(err):
            print(f"lswag-collect: {err}", file=sys.stderr)
            return 1
        parser.error(str(err))
    collected, analysis = result.collected, result.analysis
    spaces = ", ".join(f"{s} {n}" for s, n in result.table["space"].value_counts(sort=False).items())
    print(
        f"collected {len(collected.records)} finished job(s) ({spaces}) of {collected.n_jobs} under "
        f"{', '.join(collected.inputs)}"
    )
    print(format_issues(collected.issues))
    print(f"table: {result.paths['csv']} (+ {result.paths['parquet'].name}); problems: {result.paths['problems']}")
    if analysis is not None:
        print()
        print(format_correlations(analysis))
        print()
        if analysis.libra is not None:
            print(format_libra(analysis))
            print()
        print(format_libra_choices(analysis))
        print()
        print(format_ranking(analysis))
        for note in analysis.notes:
            if "LIBRA skipped" not in note and "auto skipped" not in note:  # printed above
                print(f"note: {note}")
        if "report" in result.paths:
            print(f"\nreport: {result.paths['report']}")
            for key, path in result.paths.items():
                if key.startswith("report_"):
                    print(f"report ({key[len('report_') :]} only): {path}")
        else:
            print(f"no report: it needs at least {CORRELATION_MIN_ROWS} finished jobs")
    if result.wandb is not None:
        w = result.wandb
        print(f"W&B run ({w['mode']}, project {w['project']}, group {w['group'] or '-'}): {w['dir']}")
        if w["mode"] == "offline":
            print(f"  inspect: wandb leet inspect --summary {w['dir']}   upload: wandb sync {w['dir']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
