"""``lswag-bench``'s command line: the parser (one function per argument group) and the checks of argument
combinations (:func:`check_args`); :mod:`lswag_lightning.cli.bench` runs it."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from lswag_lightning.bench import (
    AUTOFORMER_DEFAULT_IMG_SIZE,
    AUTOFORMER_PATCH_SIZE,
    BENCH_PROBES,
    BENCHMARKS,
    NB201_SETS,
    PROBE_CLASSES,
    Shard,
)
from lswag_lightning.cli.args import int_at_least


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
    n.add_argument(
        "--batch-size",
        type=int_at_least(2),
        default=None,
        help="probe batch size (default 64; 32 with nb201 --vs-published, NASLib's)",
    )
    n.add_argument("--probe-seed", type=int_at_least(0), default=0, help="which training images form the probe")
    n.add_argument(
        "--probe-protocol",
        choices=BENCH_PROBES,
        default="bench",
        help="how the probe batch is drawn (lswag_lightning.probe): bench (default, this command's tables) or "
        "search (lswag-search's draw from the CIFAR-10 images: the protocol of the NB201 score tables in "
        "results/, so a search can read the run's --export with --score-table)",
    )
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
    r.add_argument("--no-report", action="store_true", help="write the table only (with --report-only: merge only)")
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
    r.add_argument(
        "--workers",
        type=int_at_least(2),
        default=None,
        metavar="N",
        help="run this command as N shards at once in local processes (--shard i/N each), then merge them "
        "(--report-only); e.g. one process per CPU core, or N processes sharing a GPU under CUDA MPS",
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


def _stored_scores_arguments(t: argparse._ArgumentGroup) -> None:
    t.add_argument(
        "--score-table",
        type=Path,
        nargs="+",
        metavar="FILE",
        help="score nothing: join stored proxy values (csv/parquet: arch + one column per proxy, e.g. "
        "results/nb101_scores.parquet) with the benchmark's accuracies into OUT/table.csv, for lswag-libra; "
        "each proxy comes from the first table holding it (as in lswag-search --score-table); every "
        "architecture must be in every table",
    )
    t.add_argument(
        "--covered-only",
        action="store_true",
        help="with --score-table: keep only the architectures every table holds (e.g. tables of a subset of NB201)",
    )
    t.add_argument(
        "--export",
        type=Path,
        metavar="FILE",
        help="after the run (or with --report-only), write the table's proxy values as a stored score table: "
        "arch + one column per proxy value, no accuracies (.parquet or .csv), as the tables in results/",
    )


def _published_arguments(v: argparse._ArgumentGroup) -> None:
    v.add_argument(
        "--vs-published",
        action="store_true",
        help="our values against NAS-Bench-Suite-Zero's published ones. nb201: score the published cells under "
        "NASLib's protocol (batch 32, crop + flip, seed per run) -> OUT/values.csv, summary.csv, summary.md; "
        "exit 1 when naswot/synflow/snip/grad_norm miss rank agreement 0.9. nb101/nb301: compare OUT/table.csv (a "
        "run, or --score-table in the same command) with the published values -> OUT/published.md",
    )
    v.add_argument(
        "--first",
        type=int_at_least(1),
        default=None,
        metavar="N",
        help="nb201 --vs-published: the first N published cells, file order (default all 724)",
    )
    v.add_argument(
        "--noise-seed",
        type=int_at_least(0),
        default=None,
        metavar="S",
        help="nb201 --vs-published: score every cell again with this seed (another batch and init) and report our "
        "own seed-to-seed ρ, the ceiling NASLib's per-cell sampling allows",
    )
    v.add_argument(
        "--no-augment",
        dest="augment",
        action="store_false",
        help="nb201 --vs-published: skip NASLib's random crop + flip of the probe batch",
    )


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
    _stored_scores_arguments(p.add_argument_group("stored scores"))
    _published_arguments(p.add_argument_group("published values (NAS-Bench-Suite-Zero)"))
    return p


def check_args(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
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
    if args.workers is not None and (args.shard is not None or args.report_only):
        parser.error("--workers runs every shard and the merge itself: leave --shard and --report-only out")
    if args.score_table:
        clash = [
            flag
            for flag, on in (
                ("--shard", args.shard),
                ("--report-only", args.report_only),
                ("--workers", args.workers),
                ("--export", args.export),
            )
            if on
        ]
        if clash:
            parser.error(f"--score-table scores nothing and writes OUT/table.csv only: leave {', '.join(clash)} out")
    elif args.covered_only:
        parser.error("--covered-only only applies to --score-table")
    if args.export is not None and args.shard is not None:
        parser.error("--export writes the merged table: give it to the merge (--report-only), not to a shard")
    _check_published(parser, args)


def _check_published(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    nb201_only = {"--first": args.first, "--noise-seed": args.noise_seed, "--no-augment": not args.augment or None}
    given = [flag for flag, value in nb201_only.items() if value is not None]
    if given and not (args.vs_published and args.benchmark == "nb201"):
        parser.error(f"{', '.join(given)} only apply to nb201 --vs-published")
    if not args.vs_published:
        return
    if args.benchmark not in ("nb201", "nb101", "nb301"):
        parser.error("--vs-published applies to nb201, nb101 and nb301 (the benchmarks NAS-Bench-Suite-Zero scored)")
    clash = [
        flag
        for flag, on in (
            ("--shard", args.shard),
            ("--workers", args.workers),
            ("--report-only", args.report_only),
            ("--export", args.export),
            ("--score-table", args.score_table and args.benchmark == "nb201"),
        )
        if on
    ]
    if clash:
        parser.error(f"--vs-published runs on its own: leave {', '.join(clash)} out")


def layer_interval(parser: argparse.ArgumentParser, values: list[str] | None) -> dict[str, Any]:
    if values is None:
        return {}
    if values == ["all"]:
        return {"layer_interval": None}
    try:
        lo, hi = (int(v) for v in values)
    except ValueError:
        parser.error(f"--layer-interval takes two depth bins LO HI (0..10) or 'all', got {' '.join(values)}")
    return {"layer_interval": [lo, hi]}
