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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lswag_lightning.bench.search_eval.selection import DEFAULT_CANDIDATES
from lswag_lightning.cli.options import build_parser as generate_parser
from lswag_lightning.cli.options import parse_settings
from lswag_lightning.search.settings import RANK_POOLS
from lswag_lightning.settings import CommandSettings, Shorthand, option
from lswag_lightning.settings import vocabulary as v
from lswag_lightning.settings.scoring import check_score_options
from lswag_lightning.settings.values import FilePath, Integer, Integers, Names, Parsed, Text

SEARCHES = "searches"
FITNESSES = "fitnesses"
SCORING = "scoring"


def _psi_layers(text: str) -> str | tuple[int, ...]:
    """The old ``--psi-layers`` value: ``upto`` | ``interval`` | ``all`` | ``lo,hi``."""
    try:
        return tuple(int(v) for v in text.split(",")) if "," in text else text
    except ValueError:
        raise ValueError(f"must be upto, interval, all or lo,hi, got {text!r}") from None


#: ``--score-option``, its ``--layer-interval`` shorthand, and the renamed ``--psi-layers``
SCORE_OPTIONS = v.SCORE_OPTIONS.field(
    {},
    group=SCORING,
    help="default: the engine's; the stored tables are read only for the proxies these options leave unchanged",
    shorthands=(
        *v.SCORE_OPTIONS.shorthands,
        Shorthand("--psi-layers", "psi_layers", Parsed(_psi_layers), "L-SWAG's Ψ activation points", deprecated=True),
    ),
)


@dataclass(kw_only=True)
class SearchEvalCommand(CommandSettings):
    """The settings of one ``lswag-search-eval`` command (see the module docstring)."""

    out: Path = v.OUT.field(help="summary.md, per_run.csv, runs/")
    # searches
    seeds: list[int] = option(Integers(0), [0, 1, 2, 3, 4], group=SEARCHES, help="search seeds (default 0,1,2,3,4)")
    budget: int = v.BUDGET.field(1000, group=SEARCHES, help="per search, default 1000")
    strategies: list[str] = option(
        Names(), ["evolution", "random"], group=SEARCHES, metavar="NAME", help="evolution and/or random"
    )
    fitnesses: list[str] = option(
        Names(), ["lswag", "libra"], group=SEARCHES, metavar="NAME", help="libra, fused and/or proxy names"
    )
    population: int = option(Integer(2), 50, group=SEARCHES, help="evolution population P (default 50)")
    tournament: int = option(Integer(1), 10, group=SEARCHES, help="evolution tournament size S (default 10)")
    rank_pool: str = option(
        Text(RANK_POOLS),
        "history",
        group=SEARCHES,
        help="pool of LIBRA's rank fusion during evolution (see lswag_lightning.search.loop)",
    )
    checkpoint_every: int = option(Integer(1), 100, group=SEARCHES, help="evaluations between checkpoints")
    # fitnesses
    libra_proxies: list[str] | None = option(
        Names(),
        None,
        group=FITNESSES,
        metavar="NAME",
        help="LIBRA's proxies a,b,c (else --libra-result or --libra-select)",
    )
    libra_result: Path | None = option(
        FilePath(), None, group=FITNESSES, metavar="FILE", help="a lswag-libra libra.json"
    )
    libra_select: str = option(
        Text(("naslib-val", "naslib-val-cifar10")),
        "naslib-val",
        group=FITNESSES,
        help="how to choose LIBRA's proxies when none are given: naslib-val (default) runs LIBRA's selection on the "
        "NASLib validation subset once per dataset, with that dataset's validation accuracy, and evaluates each "
        "dataset with its own LIBRA fitness; naslib-val-cifar10 selects once on CIFAR-10 validation accuracy for all "
        "three",
    )
    libra_candidates: list[str] = option(
        Names(), DEFAULT_CANDIDATES.split(","), group=FITNESSES, metavar="NAME", help="proxies LIBRA may choose from"
    )
    fused_proxies: list[str] | None = option(
        Names(), None, group=FITNESSES, metavar="NAME", help="fitness fused: its proxies a,b,c,... (log-rank fusion)"
    )
    fused_result: Path | None = option(
        FilePath(),
        None,
        group=FITNESSES,
        metavar="FILE",
        help="fitness fused: a lswag-libra --greedy libra.json whose greedy set is fused",
    )
    # scoring
    score_table: list[Path] | None = v.SCORE_TABLE.field(
        None, group=SCORING, help="proxies none holds, and archs a table lacks, are scored live"
    )
    score_cache: Path | None = option(
        FilePath(), None, group=SCORING, metavar="DIR", help="score cache folder (default OUT/score_cache)"
    )
    cache_writer: str = option(
        Text(),
        "main",
        group=SCORING,
        metavar="NAME",
        help="this process's file in the score cache (<name>.jsonl): give parallel runs sharing one cache "
        "different names",
    )
    batch_size: int = v.BATCH_SIZE.field(64, group=SCORING, help="default 64")
    probe_seed: int = v.PROBE_SEED.field(0, group=SCORING, help="default 0", deprecated_flags=("--data-seed",))
    init_seed: int = v.INIT_SEED.field(0, group=SCORING, help="default 0")
    score_options: dict[str, Any] = SCORE_OPTIONS
    data_dir: Path | None = v.DATA_DIR.field(None, group=SCORING)
    device: str | None = v.DEVICE.field(None, group=SCORING)
    threads: int | None = v.THREADS.field(None, group=SCORING)
    no_progress: bool = v.NO_PROGRESS.field(False, group=SCORING)

    def check(self) -> None:
        self.score_options = check_score_options(self.score_options)
        interval = self.score_options.get("layer_interval")
        if isinstance(interval, list):
            self.score_options["layer_interval"] = tuple(interval)


def build_parser() -> argparse.ArgumentParser:
    """``lswag-search-eval``'s parser, generated from :class:`SearchEvalCommand`."""
    return generate_parser(
        SearchEvalCommand,
        prog="lswag-search-eval",
        description="NAS-Bench-201 search evaluation: the test accuracy of the cells the zero-shot searches return.",
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``lswag-search-eval``."""
    parser = build_parser()
    args = parse_settings(SearchEvalCommand, parser, argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    import torch

    from lswag_lightning.bench.search_eval import evaluate_searches

    if args.threads:
        torch.set_num_threads(args.threads)
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
