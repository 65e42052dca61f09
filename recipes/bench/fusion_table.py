"""Held-out fused rankings per accuracy column, as one markdown table: the greedy log-rank set and LIBRA next to
the best single proxy chosen on the selection half, #params and L-SWAG evaluated on the same held-out halves.

For every accuracy column of a table (e.g. ``lswag-bench BENCHMARK --score-table ...`` output) it runs
:func:`lswag_lightning.analysis.libra.evaluate` (20 random halves, seed 0, log-rank fusion, non-finite values ranked
last) with the greedy set and the fixed sets ``params`` = [params], ``lswag`` = [lswag], AZ-NAS's and VKDNW_agg's,
and prints mean ± std over the splits plus the paired per-split differences greedy − #params and greedy − best
single (mean ± std).

    lswag-bench autoformer_ti --score-table results/autoformer_ti_scores.parquet --out runs/af_scores
    python recipes/bench/fusion_table.py runs/af_scores/table.csv
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd

FIXED = {
    "params": ["params"],
    "lswag": ["lswag"],
    "az": ["az_expressivity", "az_progressivity", "az_trainability", "flops"],
    "vkdnw_agg": ["vkdnw_single", "jacov", "az_expressivity", "az_trainability", "flops"],
}
NOT_PROXIES = {"swap", "swap_reg"}  # swap = lswag.psi with the default settings; swap_reg needs µ and σ


def fmt(values) -> str:
    v = np.asarray(values, float)
    return f"{np.nanmean(v):.3f} ± {np.nanstd(v, ddof=1):.3f}"


def rows(table: pd.DataFrame, accuracies: list[str], proxies: list[str], splits: int) -> list[str]:
    from lswag_lightning.analysis.libra import evaluate

    out = [
        "| accuracy column | greedy log-rank | LIBRA | best single (chosen on the selection half) | #params | "
        "L-SWAG | greedy − #params | greedy − best single |",
        "|---|---|---|---|---|---|---|---|",
    ]
    fixed = {k: v for k, v in FIXED.items() if all(p in table.columns for p in v)}
    for acc in accuracies:
        ev = evaluate(
            table,
            proxies,
            acc,
            n_splits=splits,
            seed=0,
            fusion="log_rank",
            nonfinite="rank_last",
            fixed_sets=fixed,
            greedy=True,
        )
        h = {k: np.asarray(v, float) for k, v in ev.heldout.items()}
        best = pd.Series(ev.best_single_names).value_counts().index[0] if ev.best_single_names else ""
        out.append(
            f"| {acc} | {fmt(h['greedy'])} | {fmt(h['libra'])} | {fmt(h['best_single'])}"
            f"{f' ({best})' if best else ''} | {fmt(h['fixed:params'])} | "
            f"{fmt(h['fixed:lswag']) if 'fixed:lswag' in h else ''} | {fmt(h['greedy'] - h['fixed:params'])} | "
            f"{fmt(h['greedy'] - h['best_single'])} |"
        )
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("table", type=Path)
    p.add_argument("--accuracy", nargs="+", default=None, help="accuracy columns (default: every *_acc column)")
    p.add_argument("--splits", type=int, default=20)
    args = p.parse_args(argv)
    table = pd.read_csv(args.table)
    from lswag_lightning.analysis.table import add_vkdnw_single
    from lswag_lightning.bench.score_tables import score_columns

    table = add_vkdnw_single(table)
    accuracies = args.accuracy or [c for c in table.columns if c.endswith("_acc")]
    proxies = [c for c in score_columns(table) if c not in NOT_PROXIES]
    print(f"{args.table}: {len(table)} architectures; pool: {', '.join(proxies)}\n")
    print("\n".join(rows(table, accuracies, proxies, args.splits)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
