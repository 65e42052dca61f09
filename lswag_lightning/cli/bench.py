"""``lswag-bench``: score a public benchmark's architectures with zero-cost proxies and report against accuracy.

Fixed command lines (recipes and external checks rely on them)::

    lswag-bench nb201|nb101|nb301|autoformer_ti [--sample N --seed S] [--proxies ...] --out DIR
    lswag-bench custom --space NAME --gt FILE --arch-column COL --accuracy-column COL [--accuracy-column COL2 ...]
                [--sample N --seed S] [--num-classes K] [--img-size P] --out DIR
    lswag-bench <same arguments> --shard I/N      # shard I of N (0-based) into DIR/shards/, concurrently with others
    lswag-bench <same arguments> --report-only [--allow-partial]   # merge the shards, then the report

Writes ``DIR/table.csv`` (one row per architecture, appended and flushed as it goes; a rerun with the same
arguments resumes), ``DIR/bench.json`` (settings, column meanings) and, unless ``--no-report``,
``DIR/report.md`` with per-accuracy sub-reports and plots. With ``--shard I/N`` the rows go to
``DIR/shards/table.I-of-N.csv`` (see :mod:`lswag_lightning.bench.shards`) and ``--report-only`` merges the shards
into ``DIR/table.csv`` first. The data folder comes from ``--data-dir``, else
``$LSWAG_DATA_DIR``, else ``../shared/data`` beside the checkout. Imports neither Lightning, Hydra nor W&B.
Exit codes: 0 done, 1 interrupted or shards missing (rerun to resume / run them), 2 bad arguments or data.
"""

from __future__ import annotations

import argparse
import json
import logging
import shlex
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from lswag_lightning.bench import (
    AUTOFORMER_DEFAULT_IMG_SIZE,
    AUTOFORMER_PATCH_SIZE,
    BENCHMARKS,
    NB201_SETS,
    PROBE_CLASSES,
    BenchSettings,
    OutputBusyError,
    Shard,
    default_device,
    load_run,
    merge_shards,
    plan_benchmark,
    refuse_if_sharded,
    run_benchmark,
    run_shard,
    shard_files,
    write_bench_report,
)
from lswag_lightning.cli.args import int_at_least

log = logging.getLogger("lswag_lightning.cli.bench")


def _key_value(text: str) -> tuple[str, Any]:
    key, sep, raw = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    try:
        value = json.loads(raw)
    except json.JSONDecodeError:
        value = raw  # a bare word is a string (lambda_std=abs)
    return key.strip(), value


def _shard(text: str) -> Shard:
    try:
        return Shard.parse(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _custom_benchmark_arguments(g: argparse._ArgumentGroup) -> None:
    g.add_argument("--space", help="search space of the architectures (custom only), e.g. nb201, darts")
    g.add_argument(
        "--gt",
        type=Path,
        metavar="FILE",
        help="ground-truth table (custom only): CSV/TSV/parquet/JSONL, or a JSON list of records",
    )
    g.add_argument("--arch-column", metavar="COL", help="column holding the architectures (custom only)")
    g.add_argument(
        "--accuracy-column",
        action="append",
        default=[],
        metavar="COL",
        help="accuracy column in %% (custom only; repeat for several)",
    )


def _networks_and_probe_arguments(n: argparse._ArgumentGroup) -> None:
    n.add_argument(
        "--num-classes",
        type=int_at_least(PROBE_CLASSES),
        default=None,
        metavar="K",
        help="classifier outputs of the scored networks (default: the space's shipped build option, 10; "
        "at least 10 since the probe labels are CIFAR-10 classes)",
    )
    n.add_argument(
        "--img-size",
        type=int_at_least(4),
        default=None,
        metavar="P",
        help=f"probe resolution in pixels (default: 32; autoformer_ti: {AUTOFORMER_DEFAULT_IMG_SIZE} with "
        f"patch {AUTOFORMER_PATCH_SIZE}, 224 is the original training resolution)",
    )
    n.add_argument(
        "--build-option",
        action="append",
        default=[],
        type=_key_value,
        metavar="KEY=VALUE",
        help="override a space build option (e.g. C=8); repeatable",
    )
    n.add_argument("--batch-size", type=int_at_least(2), default=64, help="probe batch size (default 64)")
    n.add_argument("--probe-seed", type=int_at_least(0), default=0, help="which training images form the probe")
    n.add_argument(
        "--init-seed",
        type=int_at_least(0),
        default=0,
        help="base of the per-architecture weight-init seeds (default 0)",
    )
    n.add_argument(
        "--nb201-set",
        choices=NB201_SETS,
        default="all",
        help="nb201 only: 'all' cells, or the 723 cells of NAS-Bench-Suite-Zero with validation "
        "accuracy (the paper's protocol; adds *_val_acc columns)",
    )


def _proxy_settings_arguments(s: argparse._ArgumentGroup) -> None:
    s.add_argument(
        "--layer-interval",
        nargs="+",
        metavar="BIN",
        help="L-SWAG Λ depth-bin interval LO HI (0..10), or 'all' for every layer",
    )
    s.add_argument(
        "--score-option",
        action="append",
        default=[],
        type=_key_value,
        metavar="KEY=VALUE",
        help="any score_network option, value as JSON (psi_layers=[1,10], lambda_std=abs); repeatable",
    )


def _run_arguments(r: argparse._ArgumentGroup) -> None:
    r.add_argument(
        "--data-dir",
        type=Path,
        default=None,
        help="ground-truth data folder (default: $LSWAG_DATA_DIR, else ../shared/data)",
    )
    r.add_argument("--device", default=None, help="torch device (default: cuda if available, else cpu)")
    r.add_argument(
        "--threads",
        type=int_at_least(1),
        default=None,
        help="torch CPU threads (default: torch's choice; use 1 for comparable CPU timings)",
    )
    r.add_argument("--no-report", action="store_true", help="write the table only")
    r.add_argument(
        "--report-only",
        action="store_true",
        help="write the report from the table already in --out (same arguments as the run), scoring "
        "nothing; e.g. for a table made on another machine, or a partial one. When --out holds "
        "shards, merges them into table.csv first and names the missing ones",
    )
    r.add_argument(
        "--shard",
        type=_shard,
        default=None,
        metavar="I/N",
        help="score only shard I of N (0 <= I < N: the sample positions p with p %% N == I) into "
        "OUT/shards/; the N shards may run at once (processes or machines sharing OUT), each "
        "resumes like a run; merge with --report-only",
    )
    r.add_argument(
        "--allow-partial",
        action="store_true",
        help="with --report-only: merge and report even when shards are missing (named in the report)",
    )
    r.add_argument("--no-progress", action="store_true", help="no progress bar")
    r.add_argument("--n-boot", type=int_at_least(0), default=1000, help="bootstrap resamples (default 1000)")
    r.add_argument(
        "--libra-splits",
        type=int_at_least(1),
        default=20,
        help="random fit/eval splits of LIBRA's held-out evaluation (default 20)",
    )
    r.add_argument("--stop-after", type=int_at_least(1), default=None, help=argparse.SUPPRESS)  # testing


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="lswag-bench",
        description="Score a seeded sample (or all) of a benchmark's architectures with zero-cost proxies, join "
        "the published accuracies, and write table.csv + report.md (correlations with bootstrap "
        "intervals, LIBRA with held-out evaluation). Resumable: rerun the same command to continue.",
    )
    p.add_argument(
        "benchmark",
        choices=BENCHMARKS,
        help="nb201 (NAS-Bench-201, 15,625 cells, 200-epoch test accuracy on C10/C100/IN16-120), "
        "nb101 / nb301 (NAS-Bench-Suite-Zero's 500 NB101 cells / 725 NB301 genotypes, CIFAR-10 "
        "validation accuracy), autoformer_ti (Auto-Prox's 100 AutoFormer-Ti subnets), or custom "
        "(--space/--gt/...)",
    )
    p.add_argument("--out", type=Path, required=True, help="output folder (table.csv, bench.json, report.md)")
    p.add_argument(
        "--sample",
        type=int_at_least(1),
        default=None,
        metavar="N",
        help="score a seeded random sample of N architectures (default: all of the ground truth)",
    )
    p.add_argument(
        "--seed",
        type=int_at_least(0),
        default=None,
        metavar="S",
        help="seed of the architecture sample (with --sample; default 0)",
    )
    p.add_argument(
        "--proxies",
        nargs="+",
        metavar="NAME",
        help="registered proxies to score, or 'all' (default: all, except swap_reg unless "
        "--score-option swap_mu=... swap_sigma=... are given)",
    )
    _custom_benchmark_arguments(p.add_argument_group("custom benchmark"))
    _networks_and_probe_arguments(p.add_argument_group("networks and probe"))
    _proxy_settings_arguments(p.add_argument_group("proxy settings (default: the space's shipped proxy defaults)"))
    _run_arguments(p.add_argument_group("run"))
    return p


def _check_args(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    custom_only = {
        "--space": args.space,
        "--gt": args.gt,
        "--arch-column": args.arch_column,
        "--accuracy-column": args.accuracy_column or None,
    }
    if args.benchmark == "custom":
        missing = [k for k, v in custom_only.items() if v is None]
        if missing:
            parser.error(
                f"custom needs {', '.join(missing)} (e.g. --space nb201 --gt accs.csv --arch-column arch "
                "--accuracy-column acc)"
            )
    else:
        given = [k for k, v in custom_only.items() if v is not None]
        if given:
            parser.error(f"{', '.join(given)} only apply to 'custom'; {args.benchmark} brings its own ground truth")
    if args.seed is not None and args.sample is None:
        parser.error("--seed chooses the architecture sample: give --sample N with it")
    if args.nb201_set != "all" and args.benchmark != "nb201":
        parser.error("--nb201-set only applies to the nb201 benchmark")
    if args.shard is not None and args.report_only:
        parser.error("--report-only merges every shard of --out: leave --shard out")
    if args.allow_partial and not args.report_only:
        parser.error("--allow-partial only applies to --report-only (merging shards)")


def _layer_interval(parser: argparse.ArgumentParser, values: list[str] | None) -> dict[str, Any]:
    if values is None:
        return {}
    if values == ["all"]:
        return {"layer_interval": None}
    try:
        lo, hi = (int(v) for v in values)
    except ValueError:
        parser.error(f"--layer-interval takes two depth bins LO HI (0..10) or 'all', got {' '.join(values)}")
    return {"layer_interval": [lo, hi]}


def _report(
    args: argparse.Namespace,
    argv: Sequence[str] | None,
    settings: BenchSettings,
    table: Any,
    meta: dict[str, Any],
    total: int,
    accuracy_columns: Sequence[str],
    seed: int,
) -> None:
    """Write the report, print a one-line summary per accuracy column."""
    command = "lswag-bench " + " ".join(shlex.quote(a) for a in (sys.argv[1:] if argv is None else argv))
    path = write_bench_report(
        table,
        args.out,
        settings,
        accuracy_columns=accuracy_columns,
        meta=meta,
        n_planned_total=total,
        command=command,
        n_boot=args.n_boot,
        libra_splits=args.libra_splits,
        seed=seed,
    )
    summary = json.loads((args.out / "summary.json").read_text())
    for acc, info in summary.items():
        top = sorted(((v, k) for k, v in info["spearman"].items() if v is not None), reverse=True)[:5]
        libra = info["libra"]["libra"]["mean"] if info.get("libra") else None
        print(
            f"  {acc} (n={info['n']}): "
            + ", ".join(f"{k} {v:.3f}" for v, k in top)
            + (f"; LIBRA held-out {libra:.3f} ({', '.join(info['libra_choice'])})" if libra is not None else "")
        )
    print(f"report: {path}")


def _report_only(
    args: argparse.Namespace, argv: Sequence[str] | None, settings: BenchSettings, gt: Any, total: int, seed: int
) -> int:
    """``--report-only``: merge the shards of ``--out`` when it holds any (0 merged, 1 shards missing and no
    ``--allow-partial``: nothing written), then the report of ``table.csv``."""
    if shard_files(args.out):
        merged = merge_shards(args.out, settings, gt, allow_partial=args.allow_partial)
        if merged.missing:
            print(f"shards missing or unfinished: {merged.missing_text()}", file=sys.stderr)
        if not merged.written:
            print(
                f"not merged: {merged.rows} of {merged.planned} rows are done. Run the missing shards (the same "
                "command with --shard I/N; a killed one resumes), or add --allow-partial to merge and report "
                "the rows present",
                file=sys.stderr,
            )
            return 1
        print(
            f"merged {len(merged.complete)} of {merged.count} shards complete: {merged.rows} of {merged.planned} "
            f"rows -> {args.out / 'table.csv'}"
        )
    table, meta = load_run(args.out, settings)
    if len(table) < len(gt):
        print(
            f"note: {args.out / 'table.csv'} holds {len(table)} of the {len(gt)} planned architectures; "
            "the report covers those",
            file=sys.stderr,
        )
    _report(args, argv, settings, table, meta, total, gt.accuracy_columns, seed)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``lswag-bench``; see the module docstring for exit codes."""
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    _check_args(parser, args)
    import torch

    if args.threads is not None:
        torch.set_num_threads(args.threads)
    score_overrides = dict(args.score_option)
    score_overrides.update(_layer_interval(parser, args.layer_interval))
    try:
        plan = plan_benchmark(
            args.benchmark,
            space=args.space,
            data_dir=args.data_dir,
            nb201_set=args.nb201_set,
            gt_file=args.gt,
            arch_column=args.arch_column,
            accuracy_columns=args.accuracy_column,
            sample=args.sample,
            seed=args.seed,
            proxies=args.proxies,
            score_overrides=score_overrides,
            build_overrides=args.build_option,
            img_size=args.img_size,
            num_classes=args.num_classes,
            batch_size=args.batch_size,
            probe_seed=args.probe_seed,
            init_seed=args.init_seed,
        )
        settings, gt, total, seed = plan.settings, plan.gt, plan.total, plan.settings.seed
        device = args.device or default_device()
        if args.report_only:
            return _report_only(args, argv, settings, gt, total, seed)
        kwargs = {
            "data_dir": args.data_dir,
            "device": device,
            "progress": not args.no_progress,
            "stop_after": args.stop_after,
        }
        if args.shard is not None:
            result = run_shard(settings, gt, args.out, args.shard, **kwargs)
        else:
            refuse_if_sharded(args.out)
            result = run_benchmark(settings, gt, args.out, **kwargs)
    except (ValueError, FileNotFoundError, OutputBusyError) as exc:
        print(f"lswag-bench: error: {exc}", file=sys.stderr)
        return 2
    table = result.table
    secs = table["total_seconds"].astype(float)
    where, planned = (
        (
            f"shard {args.shard}: {args.out / 'shards' / f'table.{args.shard.tag}.csv'}",
            len(args.shard.positions(len(gt))),
        )
        if args.shard
        else (args.out / "table.csv", len(gt))
    )
    print(
        f"{where}: {len(table)} of {planned} architectures ({result.resumed} from an earlier run, "
        f"{result.scored} scored now in {result.wall_seconds:.1f} s, {result.failed} failed); scoring time per "
        f"architecture: median {secs.median():.3f} s, mean {secs.mean():.3f} s on {device}"
    )
    if result.stopped:
        print("interrupted: rerun the same command to resume", file=sys.stderr)
        return 1
    if args.shard is not None:
        print(
            "merge the finished shards (table.csv + report) with the same arguments, --shard left out, plus "
            "--report-only"
        )
        return 0
    if not args.no_report:
        meta = json.loads((args.out / "bench.json").read_text())
        _report(args, argv, settings, table, meta, total, gt.accuracy_columns, seed)
    return 0


if __name__ == "__main__":
    sys.exit(main())
