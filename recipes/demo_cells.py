"""Regenerate ``lswag_lightning/resources/nb201_demo_cells.csv``: the NAS-Bench-201 cells of the demo's
published-truth section, with their published 200-epoch test accuracies.

Draws ``--n`` benchmark indices without replacement (``numpy.random.default_rng(--seed)``, sorted), reads their rows
of ``nb201/nasbench201_test_acc_200ep.csv`` from the data folder (row i = NB201 index i, data README §1) and writes
``nb201_index, arch, cifar10_test_acc, cifar100_test_acc, imagenet16_120_test_acc`` (%, values unchanged). It also
checks that every arch string equals the one computed from the index (``lswag_lightning.spaces.nb201``). Run:

    .venv/bin/python recipes/demo_cells.py [--n 200] [--seed 0] [--data-dir ../shared/data]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from lswag_lightning.bench import NB201_TEST_FILE, read_csv_exact
from lswag_lightning.demo.nb201_truth import CELLS_FILE
from lswag_lightning.paths import resolve_data_dir
from lswag_lightning.spaces.nb201 import NUM_ARCHS, index_to_arch

COLUMNS = {
    "CIFAR10TestAccuracy200Epochs": "cifar10_test_acc",
    "CIFAR100TestAccuracy200Epochs": "cifar100_test_acc",
    "ImageNetTestAccuracy200Epochs": "imagenet16_120_test_acc",
    "ArchitectureString": "arch",
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=200, help="cells to draw (default 200)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the draw (default 0)")
    parser.add_argument("--data-dir", default=None, help="data folder (default: $LSWAG_DATA_DIR, else ../shared/data)")
    parser.add_argument("--out", type=Path, default=CELLS_FILE, help=f"output CSV (default {CELLS_FILE})")
    args = parser.parse_args(argv)
    root = resolve_data_dir(args.data_dir, must_contain=NB201_TEST_FILE)
    table = read_csv_exact(root / NB201_TEST_FILE)
    if len(table) != NUM_ARCHS:
        raise SystemExit(f"{root / NB201_TEST_FILE} has {len(table)} rows, expected {NUM_ARCHS}")
    index = np.sort(np.random.default_rng(args.seed).choice(NUM_ARCHS, size=args.n, replace=False))
    rows = table.iloc[index][list(COLUMNS)].rename(columns=COLUMNS)
    rows.insert(0, "nb201_index", index)
    bad = [i for i, a in zip(index, rows["arch"]) if index_to_arch(int(i)) != a]
    if bad:
        raise SystemExit(f"arch strings do not match their NB201 index at {bad[:5]}")
    rows = rows[["nb201_index", "arch", "cifar10_test_acc", "cifar100_test_acc", "imagenet16_120_test_acc"]]
    rows.to_csv(args.out, index=False)
    print(f"wrote {len(rows)} cells to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
