"""The paper's NB201 protocol as one table: the 723 NASLib validation cells, every stored proxy, their validation
(and test) accuracies, ready for ``lswag-libra``.

Joins the committed score tables (``results/*.parquet``: ``arch`` + one column per proxy, no accuracies) on the
arch string with ``nb201/nb201_val_acc_naslib_subset.csv`` and the 200-epoch test accuracies from the shared data.
A cell missing from a score table is an error (those columns would be incomplete), never a silent NaN.
``vkdnw_single`` (ℵ, then VKDNW) is derived from the stored ``vkdnw_layers`` and ``vkdnw`` columns.

    python recipes/nb201_val_table.py --out runs/nb201_val/table.csv
    python recipes/nb201_val_table.py --cells scored --out runs/nb201_scored/table.csv   # test accuracy, more cells
    lswag-libra runs/nb201_val/table.csv --accuracy cifar10_val_acc --nonfinite rank_last --fusion log_rank --greedy \
        --fixed-set az=az_expressivity,az_progressivity,az_trainability,flops
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_TABLES = [
    ROOT / "results" / "nb201_all_cells_scores.parquet",
    ROOT / "results" / "nb201_scored_subset_new_proxies.parquet",
]
TEST_COLUMNS = {
    "CIFAR10TestAccuracy200Epochs": "cifar10_test_acc",
    "CIFAR100TestAccuracy200Epochs": "cifar100_test_acc",
    "ImageNetTestAccuracy200Epochs": "imagenet16_120_test_acc",
}


def build_table(score_tables: list[Path], data_dir: Path | None = None, cells: str = "naslib_val") -> pd.DataFrame:
    """``cells="naslib_val"``: the 723 validation cells (validation and test accuracies; every score table must hold
    them all). ``cells="scored"``: every cell that all score tables hold (test accuracies only)."""
    from lswag_lightning.paths import resolve_data_dir
    from lswag_lightning.spaces.nb201 import index_to_arch

    nb201 = resolve_data_dir(data_dir, must_contain="nb201") / "nb201"
    test = pd.read_csv(nb201 / "nasbench201_test_acc_200ep.csv").rename(columns=TEST_COLUMNS)
    if cells == "scored":
        archs = set.intersection(*(set(pd.read_parquet(p)["arch"]) for p in score_tables))
        table = pd.DataFrame({"nb201_index": [i for i, a in enumerate(test["ArchitectureString"]) if a in archs]})
    else:
        table = pd.read_csv(nb201 / "nb201_val_acc_naslib_subset.csv")
    table["arch"] = [index_to_arch(int(i)) for i in table["nb201_index"]]
    table = table.join(test[list(TEST_COLUMNS.values())], on="nb201_index")
    for path in score_tables:
        scores = pd.read_parquet(path)
        new = [c for c in scores.columns if c != "arch" and c not in table.columns]
        missing = sorted(set(table["arch"]) - set(scores["arch"]))
        if missing:
            raise ValueError(
                f"{path} lacks {len(missing)} of the {len(table)} validation cells (e.g. {missing[0]}); "
                "score them first (recipes/search/nb201_search_eval.py --prescore-all scores these "
                "723 cells first)"
            )
        table = table.merge(scores[["arch", *new]], on="arch", how="left", validate="one_to_one")
    from lswag_lightning.analysis.table import add_vkdnw_single

    return add_vkdnw_single(table)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path, required=True, help="CSV to write")
    p.add_argument("--scores", type=Path, nargs="+", default=DEFAULT_TABLES, help="score tables (parquet/csv)")
    p.add_argument("--data-dir", type=Path, default=None)
    p.add_argument(
        "--cells",
        choices=("naslib_val", "scored"),
        default="naslib_val",
        help="the 723 NASLib validation cells (default), or every cell all score tables hold (test accuracies only)",
    )
    args = p.parse_args(argv)
    from lswag_lightning.analysis.table import save_table

    table = build_table(args.scores, args.data_dir, args.cells)
    save_table(table, args.out)
    print(f"{len(table)} cells, {table.shape[1]} columns -> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
