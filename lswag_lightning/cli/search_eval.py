"""``lswag-search-eval``: the NAS-Bench-201 search evaluation (:mod:`lswag_lightning.bench.search_eval`).

    lswag-search-eval --out runs/nb201_search --score-table results/nb201_all_cells_scores.parquet
    lswag-search-eval --out runs/fused --seeds 0,1,2,3 --budget 300 --strategies evolution --fitnesses fused \\
        --fused-result runs/nb201_val/libra_cifar10_val_acc/libra.json \\
        --score-table results/nb201_all_cells_scores.parquet results/nb201_fused_search_cpu_scores.parquet
    lswag-search-eval --out runs/small --seeds 0,1 --budget 100 --libra-proxies lswag,synflow,naswot --threads 1

Writes ``OUT/summary.md`` (printed), ``summary.csv``, ``summary.json``, ``per_run.csv``, ``libra_proxies.json`` and
one search folder per run in ``OUT/runs/``. Exit codes: 0 done, 2 bad arguments.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from lswag_lightning.bench.search_eval.selection import DEFAULT_CANDIDATES
from lswag_lightning.cli.args import int_at_least


def _search_arguments(p: argparse._ArgumentGroup) -> None:
    p.add_argument("--seeds", default="0,1,2,3,4", help="comma-separated search seeds (default 0..4)")
    p.add_argument("--budget", type=int_at_least(1), default=1000, help="architectures scored per search")
    p.add_argument("--strategies", default="evolution,random", help="comma-separated: evolution, random")
    p.add_argument("--fitnesses", default="lswag,libra", help="comma-separated: libra, fused and/or proxy names")
    p.add_argument("--population", type=int_at_least(2), default=50, help="evolution population P (default 50)")
    p.add_argument("--tournament", type=int_at_least(1), default=10, help="evolution tournament size S (default 10)")
    p.add_argument(
        "--rank-pool",
        choices=("history", "population"),
        default="history",
        help="pool of LIBRA's rank fusion during evolution (see lswag_lightning.search.loop)",
    )
    p.add_argument("--checkpoint-every", type=int_at_least(1), default=100, help="evaluations between checkpoints")


def _fitness_arguments(p: argparse._ArgumentGroup) -> None:
    p.add_argument("--libra-proxies", help="LIBRA's proxies a,b,c (else --libra-result or --libra-select)")
    p.add_argument("--libra-result", type=Path, help="a lswag-libra libra.json")
    p.add_argument(
        "--libra-select",
        choices=("naslib-val", "naslib-val-cifar10"),
        default="naslib-val",
        help="how to choose LIBRA's proxies when none are given: naslib-val (default) runs LIBRA's "
        "selection on the NASLib validation subset once per dataset, with that dataset's validation "
        "accuracy, and evaluates each dataset with its own LIBRA fitness; naslib-val-cifar10 selects "
        "once on CIFAR-10 validation accuracy for all three",
    )
    p.add_argument("--libra-candidates", default=DEFAULT_CANDIDATES, help="proxies LIBRA may choose from")
    p.add_argument("--fused-proxies", help="fitness fused: its proxies a,b,c,... (log-rank fusion)")
    p.add_argument(
        "--fused-result", type=Path, help="fitness fused: a lswag-libra --greedy libra.json whose greedy set is fused"
    )


def _scoring_arguments(p: argparse._ArgumentGroup) -> None:
    p.add_argument(
        "--score-table",
        type=Path,
        nargs="+",
        help="stored proxy values to reuse (csv/parquet: arch + one column per proxy, e.g. lswag-bench's "
        "--export or results/nb201_all_cells_scores.parquet); several tables: each proxy comes from "
        "the first with its column; proxies none holds, and archs a table lacks, are scored live",
    )
    p.add_argument("--score-cache", type=Path, help="score cache folder (default OUT/score_cache)")
    p.add_argument(
        "--cache-writer",
        default="main",
        help="this process's file in the score cache (<name>.jsonl): give parallel runs sharing one "
        "cache different names",
    )
    p.add_argument("--device", default=None, help="torch device (default cuda if available)")
    p.add_argument("--batch-size", type=int_at_least(2), default=64, help="probe batch size (default 64)")
    p.add_argument("--data-seed", type=int_at_least(0), default=0, help="seed of the probe batch draw (default 0)")
    p.add_argument("--init-seed", type=int_at_least(0), default=0, help="base of the networks' init seeds")
    p.add_argument("--layer-interval", help="L-SWAG interval lo,hi (default: all layers)")
    p.add_argument("--psi-layers", help="L-SWAG Ψ activation points: upto | interval | all | lo,hi (default upto)")
    p.add_argument("--data-dir", type=Path, default=None, help="data folder (default $LSWAG_DATA_DIR)")
    p.add_argument("--threads", type=int_at_least(1), default=None, help="torch.set_num_threads")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="lswag-search-eval",
        description="NAS-Bench-201 search evaluation: the test accuracy of the cells the zero-shot searches return.",
    )
    p.add_argument("--out", type=Path, required=True, help="output folder (summary.md, per_run.csv, runs/)")
    _search_arguments(p.add_argument_group("searches"))
    _fitness_arguments(p.add_argument_group("fitnesses"))
    _scoring_arguments(p.add_argument_group("scoring"))
    return p


def _names(text: str) -> list[str]:
    return [s.strip() for s in str(text).split(",") if s.strip()]


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``lswag-search-eval``."""
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    import torch

    from lswag_lightning.bench.search_eval import evaluate_searches

    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        args.seeds = [int(s) for s in _names(args.seeds)]
    except ValueError:
        parser.error(f"--seeds takes comma-separated integers, got {args.seeds!r}")
    args.strategies = _names(args.strategies)
    args.fitnesses = _names(args.fitnesses)
    args.libra_candidates = _names(args.libra_candidates)
    args.out.mkdir(parents=True, exist_ok=True)
    args.score_cache = args.score_cache or args.out / "score_cache"
    try:
        path = evaluate_searches(args)
    except (ValueError, FileNotFoundError) as err:
        parser.error(str(err))
    print(path.read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
