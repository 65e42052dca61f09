"""Export a ``lswag-bench`` table into a stored score table (parquet, no accuracies): ``arch`` (the benchmark's key
string exactly as in its file), then one column per proxy value in the table (every registered proxy the run
scored, with their sub-values such as ``lswag.lambda``). Rows keep the table's order; non-finite values are kept.

``vkdnw_single`` (ℵ first, then VKDNW) is derived from the ``vkdnw_layers`` and ``vkdnw`` columns when the table
predates that registry entry (:func:`lswag_lightning.analysis.table.add_vkdnw_single`: the number the engine
computes, since it reads only those two values).

    python recipes/bench/export_scores.py runs/nb101_all/table.csv --out results/nb101_scores.parquet
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd

from lswag_lightning.analysis.table import add_vkdnw_single

NOT_SCORES = {
    "sample_index",
    "arch",
    "space",
    "gt_row",
    "naslib_idx",
    "nb201_index",
    "init_seed",
    "status",
    "build_seconds",
    "total_seconds",
}


def score_columns(table: pd.DataFrame) -> list[str]:
    """Proxy value columns: not ids, status, timings or accuracies."""
    return [
        c
        for c in table.columns
        if c not in NOT_SCORES and not c.startswith("seconds.") and not c.endswith("_acc") and "accuracy" not in c
    ]


def export(table_path: Path) -> pd.DataFrame:
    table = pd.read_csv(table_path)
    bad = table["status"].astype(str) != "ok" if "status" in table.columns else pd.Series(False, index=table.index)
    if bad.any():
        print(f"note: {int(bad.sum())} rows with a non-ok status (their values are kept; see the table's status)")
    table = add_vkdnw_single(table)
    return table[["arch", *score_columns(table)]]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("table", type=Path, help="a lswag-bench table.csv (merged)")
    p.add_argument("--out", type=Path, required=True, help="parquet to write")
    args = p.parse_args(argv)
    from lswag_lightning.analysis.table import save_table

    scores = export(args.table)
    save_table(scores, args.out)
    print(f"{len(scores)} architectures x {scores.shape[1] - 1} columns -> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
