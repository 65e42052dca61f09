"""``lswag-libra``: LIBRA proxy selection, its held-out evaluation and a report, from a result table.

Example::

    lswag-libra runs/nb201/table.csv --accuracy cifar10_test_acc --params params --splits 20 --out runs/nb201/libra

Prints LIBRA's choice and the held-out Spearman numbers, and writes ``report.md`` + plots + ``libra.json`` to
``--out`` (default: ``<table stem>_libra/`` next to the table). Bad arguments exit with code 2.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from lswag_lightning.analysis.libra import FUSION_METHODS, NONFINITE_POLICIES, evaluate
from lswag_lightning.analysis.libra_text import format_summary
from lswag_lightning.analysis.table import default_proxy_columns, load_table, validate_table
from lswag_lightning.cli.args import fraction, int_at_least, positive_float


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="lswag-libra",
        description="Choose LIBRA's three proxies on a result table, evaluate them on held-out architectures "
        "and write a markdown + PNG report.",
    )
    p.add_argument("table", type=Path, help="result table: .csv, .tsv, .parquet, .json (list of records), .jsonl")
    p.add_argument("--accuracy", required=True, help="accuracy column (in %%), higher is better")
    p.add_argument("--params", default="params", help="#params column, LIBRA's bias variable (default: params)")
    p.add_argument(
        "--proxies",
        nargs="+",
        metavar="NAME",
        help="proxy columns (default: every numeric column except accuracy-, id- and time-like ones)",
    )
    p.add_argument(
        "--where",
        action="append",
        default=[],
        metavar="COL=VALUE",
        help="keep only rows whose COL equals VALUE (compared as text); repeatable, e.g. "
        "--where dataset=cifar10 on a long table holding several datasets",
    )
    p.add_argument("--window", type=positive_float, default=0.1, help="ρ window for candidates (default 0.1)")
    p.add_argument("--bins", type=int_at_least(2), default=24, help="equal-frequency bins for IG (default 24)")
    p.add_argument("--fusion", choices=FUSION_METHODS, default="rank_mean", help="how the chosen proxies are fused")
    p.add_argument("--splits", type=int_at_least(1), default=20, help="random fit/eval splits (default 20)")
    p.add_argument("--fit-fraction", type=fraction, default=0.5, help="fraction of rows to select on (default 0.5)")
    p.add_argument("--seed", type=int, default=0, help="seed of the splits and bootstrap (default 0)")
    p.add_argument("--n-boot", type=int_at_least(0), default=1000, help="bootstrap resamples for the CIs")
    p.add_argument(
        "--nonfinite",
        choices=NONFINITE_POLICIES,
        default="drop_rows",
        help="NaN/inf proxy values: drop those rows (proxies with >5%% bad rows are excluded), "
        "exclude the proxy, or rank_last (keep every row; NaN/-inf rank last, AZ-NAS's rule)",
    )
    p.add_argument(
        "--fixed-set",
        action="append",
        default=[],
        metavar="NAME=P1,P2,...",
        help="also evaluate the log-rank fusion of this fixed proxy set (nothing fitted); repeatable, "
        "e.g. az=az_expressivity,az_progressivity,az_trainability,flops",
    )
    p.add_argument(
        "--greedy", action="store_true", help="also evaluate a log-rank set grown greedily on each selection half"
    )
    p.add_argument(
        "--lower-is-better",
        nargs="+",
        default=[],
        metavar="NAME",
        help="proxies to negate before ranking (overrides the registry)",
    )
    p.add_argument(
        "--higher-is-better",
        nargs="+",
        default=[],
        metavar="NAME",
        help="proxies known to be higher-is-better (silences the 'assumed' note)",
    )
    p.add_argument("--accuracy-unit", default="%", help="unit of the accuracy column for plot labels (default %%)")
    p.add_argument("--title", default=None, help="report title")
    p.add_argument("--out", type=Path, default=None, help="report folder (default: <table stem>_libra/ beside it)")
    p.add_argument("--no-report", action="store_true", help="print the numbers only")
    return p


def parse_fixed_sets(items: Sequence[str]) -> dict[str, list[str]]:
    """``NAME=P1,P2`` items -> {NAME: [P1, P2]}; ``ValueError`` naming the malformed item."""
    sets: dict[str, list[str]] = {}
    for item in items:
        name, sep, names = item.partition("=")
        proxies = [p for p in names.split(",") if p]
        if not sep or not name or not proxies:
            raise ValueError(f"--fixed-set expects NAME=P1,P2,..., got {item!r}")
        sets[name] = proxies
    return sets


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``lswag-libra``; returns 0 on success (argparse exits with 2 on bad arguments)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    both = set(args.lower_is_better) & set(args.higher_is_better)
    if both:
        parser.error(f"proxies named in both --lower-is-better and --higher-is-better: {', '.join(sorted(both))}")
    try:
        table = load_table(args.table)
    except (OSError, ValueError) as exc:
        parser.error(f"cannot read the table: {exc}")
    for cond in args.where:
        col, sep, value = cond.partition("=")
        if not sep or not col:
            parser.error(f"--where expects COL=VALUE, got {cond!r}")
        if col not in table.columns:
            parser.error(
                f"--where column {col!r} not in the table; columns present: {', '.join(map(str, table.columns))}"
            )
        table = table[table[col].astype(str) == value]
        if table.empty:
            parser.error(f"no rows left after --where {cond}")
    table = table.reset_index(drop=True)
    proxies = args.proxies or default_proxy_columns(table, args.accuracy)
    if not proxies:
        parser.error(
            f"no proxy columns found in {args.table}; name them with --proxies "
            f"(columns present: {', '.join(map(str, table.columns))})"
        )
    try:
        validate_table(table, [args.accuracy, args.params, *proxies])
    except ValueError as exc:
        parser.error(str(exc))
    orientation = {**{n: True for n in args.higher_is_better}, **{n: False for n in args.lower_is_better}}
    unknown = [n for n in orientation if n not in proxies]
    if unknown:
        parser.error(
            f"orientation given for proxies not analysed: {', '.join(unknown)} (proxies: {', '.join(proxies)})"
        )
    try:
        ev = evaluate(
            table,
            proxies,
            args.accuracy,
            args.params,
            n_splits=args.splits,
            fit_fraction=args.fit_fraction,
            seed=args.seed,
            window=args.window,
            bins=args.bins,
            fusion=args.fusion,
            higher_is_better=orientation,
            nonfinite=args.nonfinite,
            fixed_sets=parse_fixed_sets(args.fixed_set),
            greedy=args.greedy,
        )
    except ValueError as exc:
        parser.error(str(exc))
    print(
        f"table: {args.table} ({len(table)} rows); accuracy: {args.accuracy}; params: {args.params}; "
        f"proxies ({len(proxies)}): {', '.join(proxies)}"
    )
    assumed = ev.selection.assumed_orientation
    if assumed:
        print(f"orientation assumed higher-is-better (unknown to the registry): {', '.join(assumed)}")
    print(format_summary(ev))
    if not args.no_report:
        from lswag_lightning.analysis.report import write_report

        out = args.out if args.out is not None else args.table.with_name(f"{args.table.stem}_libra")
        path = write_report(
            table,
            out,
            accuracy=args.accuracy,
            proxies=proxies,
            params=args.params,
            title=args.title or f"Zero-cost proxies and LIBRA: {args.table.name}",
            protocol_lines=[
                f"table: {args.table}",
                f"command: lswag-libra {' '.join(sys.argv[1:] if argv is None else argv)}",
            ],
            libra=ev,
            seed=args.seed,
            higher_is_better=orientation,
            accuracy_unit=args.accuracy_unit,
            n_boot=args.n_boot,
        )
        print(f"report: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
