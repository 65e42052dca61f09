"""Export proxy values from a search score cache into a stored score table (parquet, no accuracies).

Writes one row per architecture the cache holds under the recipe scorer's key with *every* requested proxy, in the
order of ``prescore_order`` (the 723 NASLib validation cells first), columns ``arch`` + one per proxy. Non-finite
values are kept (NaN/inf: the cache holds the status behind them). Rows are only ever architectures that were scored,
so a missing row means "not scored" and never a NaN standing for it.

    python recipes/search/export_scores.py --score-cache runs/prescore_new/score_cache \
        --proxies az_expressivity az_progressivity az_trainability meco \
        --out results/nb201_scored_subset_new_proxies.parquet
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from nb201_search_eval import build_parser as recipe_parser  # noqa: E402
from nb201_search_eval import make_live_scorer, prescore_order  # noqa: E402


def export(cache_dir: Path, proxies: list[str], recipe_args: argparse.Namespace) -> pd.DataFrame:
    from lswag_lightning.search import ScoreCache

    cache = ScoreCache(cache_dir, writer="export")
    scorer = make_live_scorer(recipe_args, proxies, cache=cache)
    rows = []
    for arch in prescore_order(recipe_args.data_dir):
        hit = cache.get(scorer.key, arch, proxies)
        if hit is not None:
            rows.append({"arch": arch, **{p: hit.values[p] for p in proxies}})
    return pd.DataFrame(rows, columns=["arch", *proxies])


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--score-cache", type=Path, required=True, help="score cache folder of the recipe")
    p.add_argument("--proxies", nargs="+", required=True)
    p.add_argument("--out", type=Path, required=True, help="parquet file to write")
    p.add_argument("--data-dir", type=Path, default=None)
    args = p.parse_args(argv)
    from lswag_lightning.analysis.table import save_table

    recipe_args = recipe_parser().parse_args(
        ["--out", str(args.out.parent), "--device", "cpu"]
        + (["--data-dir", str(args.data_dir)] if args.data_dir else [])
    )
    table = export(args.score_cache, args.proxies, recipe_args)
    save_table(table, args.out)
    print(f"{len(table)} architectures x {len(args.proxies)} proxies -> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
