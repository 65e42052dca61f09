"""LIBRA on NAS-Bench-Suite-Zero's published zero-cost tables: held-out ρ per benchmark and task.

For every published table in the data folder (NB201 NASLib subset for CIFAR-10 / CIFAR-100 / ImageNet16-120, and
the NB101, NB301, TransNAS-Bench-101 micro/macro subsets), LIBRA selects three of the published proxies on a random
half of the architectures and is scored (Spearman with the published accuracy) on the other half, over repeated
splits; next to it the best single proxy chosen on the same halves and an AZ-NAS-style log-rank fusion of all
proxies. Only published values are used: nothing is scored here. Run:

    .venv/bin/python recipes/libra_published.py [--data-dir DIR] [--splits 20] [--out FILE.md]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from lswag_lightning.analysis.libra import evaluate
from lswag_lightning.analysis.published import TNB101_TASKS, load_published

TABLES = (
    [("nb201", t) for t in ("cifar10", "cifar100", "ImageNet16-120")]
    + [("nb101", None), ("nb301", None)]
    + [("tnb101_micro", t) for t in TNB101_TASKS]
    + [("tnb101_macro", t) for t in TNB101_TASKS]
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=None, help="data folder (default: $LSWAG_DATA_DIR, else ../shared/data)")
    parser.add_argument("--splits", type=int, default=20, help="random 50/50 fit/eval splits (default 20)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=None, help="also write the markdown table here")
    args = parser.parse_args(argv)
    lines = [
        f"Held-out Spearman ρ, mean ± std over {args.splits} random 50/50 splits (seed {args.seed}); "
        "LIBRA window 0.1, 24 bins, rank-mean fusion; published values only.",
        "",
        "| benchmark | task | n | LIBRA held-out | best single (fit-chosen) | AZ-NAS log-rank, all | "
        "LIBRA's choice on all rows |",
        "|---|---|---|---|---|---|---|",
    ]
    for benchmark, task in TABLES:
        pub = load_published(benchmark, task, args.data_dir)
        try:
            ev = evaluate(
                pub.table,
                pub.proxies,
                pub.accuracy,
                pub.params,
                n_splits=args.splits,
                seed=args.seed,
                higher_is_better=pub.higher_is_better,
            )
        except ValueError as err:
            lines.append(f"| {benchmark} | {pub.task} | {len(pub.table)} | skipped: {err} | | | |")
            print(lines[-1], flush=True)
            continue

        def cell(method: str, ev=ev) -> str:
            values = np.asarray(ev.heldout[method], dtype=float)
            return f"{np.nanmean(values):.3f} ± {np.nanstd(values):.3f}"

        lines.append(
            f"| {benchmark} | {pub.task} | {ev.n_rows} | {cell('libra')} | {cell('best_single')} | "
            f"{cell('az_all')} | {', '.join(ev.selection.proxies)} |"
        )
        print(lines[-1], flush=True)
    text = "\n".join(lines)
    print("\n" + text)
    if args.out:
        args.out.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
