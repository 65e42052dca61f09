"""What ``batch_grads="split"`` changes: snip and grad_norm with the whole-batch gradient (the default, NASLib's
definition) and with the mean of Λ's two half-batch gradients (no backward of its own), on NAS-Bench-201 cells.

For every ``--every``-th cell of the 723 NASLib validation cells (``nb201/nb201_val_acc_naslib_subset.csv``) it builds
the network as the search does (10 classes, weights seeded from the arch string), scores snip and grad_norm under
both definitions on the search probe (64 CIFAR-10 training images, seed 0) and prints, per proxy, the Spearman
correlation between the two definitions and each one's Spearman with the validation accuracy of the three datasets.
On a network without BatchNorm the two definitions are the same number; NB201 cells have BatchNorm after every
convolution, so this is where they differ most. Resumable: rows already in ``--out`` are kept.

    python benchmarks/batch_grads_check.py --every 3 --out runs/batch_grads/values.csv   # 241 cells, ~10 min
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd

VAL_COLUMNS = ("cifar10_val_acc", "cifar100_val_acc", "imagenet16_120_val_acc")
PROXIES = ("snip", "grad_norm")


def score_cells(archs: list[str], out: Path, data_dir: Path | None, threads: int) -> pd.DataFrame:
    """snip/grad_norm under both definitions for each arch (appending to ``out``, skipping archs already there)."""
    import torch

    from lswag_lightning import score_network
    from lswag_lightning.candidates import build_candidate
    from lswag_lightning.probe import probe_batch
    from lswag_lightning.spaces import get_space

    torch.set_num_threads(threads)
    space = get_space("nb201")
    images, labels = probe_batch("search", data="cifar10_npz", batch_size=64, seed=0, data_dir=data_dir)
    done = pd.read_csv(out) if out.is_file() else pd.DataFrame(columns=["arch"])
    have = set(done["arch"])
    for count, arch in enumerate(a for a in archs if a not in have):
        model = build_candidate(space, arch, {"num_classes": 10, "img_size": 32})
        row = {"arch": arch}
        for definition in ("batch", "split"):
            report = score_network(model, images, labels, proxies=list(PROXIES), batch_grads=definition)
            row.update({f"{p}_{definition}": report.values[p] for p in PROXIES})
            row[f"seconds_{definition}"] = report.total_seconds
        pd.DataFrame([row]).to_csv(out, mode="a", header=not out.is_file(), index=False)
        if count % 20 == 0:
            print(f"{len(have) + count + 1} / {len(archs)} cells", flush=True)
    return pd.read_csv(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True, help="CSV of values (appended to; resumable)")
    parser.add_argument("--every", type=int, default=1, help="score every N-th of the 723 cells (default all)")
    parser.add_argument("--data-dir", type=Path, default=None)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    from lswag_lightning.paths import resolve_data_dir

    val = pd.read_csv(
        resolve_data_dir(args.data_dir, must_contain="nb201") / "nb201" / "nb201_val_acc_naslib_subset.csv"
    )
    val = val.iloc[:: max(1, args.every)].reset_index(drop=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    values = score_cells(list(val["arch_str"]), args.out, args.data_dir, args.threads)
    table = val.merge(values, left_on="arch_str", right_on="arch", how="inner")
    print(f"{len(table)} NB201 cells (every {args.every}-th of the 723 validation cells); Spearman correlations")
    print(f"{'proxy':<10} {'batch vs split':>14}   " + "   ".join(f"{c:>28}" for c in VAL_COLUMNS))
    for proxy in PROXIES:
        batch, split = table[f"{proxy}_batch"], table[f"{proxy}_split"]
        cells = [
            f"batch {batch.corr(table[c], method='spearman'):.3f} / split {split.corr(table[c], method='spearman'):.3f}"
            for c in VAL_COLUMNS
        ]
        print(f"{proxy:<10} {batch.corr(split, method='spearman'):>14.4f}   " + "   ".join(f"{c:>28}" for c in cells))
    print(
        f"median seconds per cell for snip + grad_norm: batch {table['seconds_batch'].median():.2f}, "
        f"split {table['seconds_split'].median():.2f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
