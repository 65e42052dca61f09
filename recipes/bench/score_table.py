"""A committed score table joined with its benchmark's published accuracies, ready for ``lswag-libra``: the numbers
of the README's NB101, NB301 and AutoFormer-Ti tables recomputed on a CPU in seconds, without rescoring.

Reads ``results/<benchmark>_scores.parquet`` (``arch`` + proxy columns, no accuracies) and the ground truth
``lswag-bench <benchmark>`` uses (``lswag_lightning.bench.benchmark_ground_truth``); every architecture of the
ground truth must be in the score table (a missing one is an error, never a NaN).

    python recipes/bench/score_table.py nb101 --out runs/nb101_scores/table.csv
    lswag-libra runs/nb101_scores/table.csv --accuracy cifar10_val_acc --fusion log_rank --greedy ...
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[2]
BENCHMARKS = ("nb101", "nb301", "autoformer_ti")


def build_table(benchmark: str, scores_path: Path | None = None, data_dir: Path | None = None) -> pd.DataFrame:
    from lswag_lightning.bench import benchmark_ground_truth

    scores = pd.read_parquet(scores_path or ROOT / "results" / f"{benchmark}_scores.parquet")
    gt = benchmark_ground_truth(benchmark, data_dir)
    truth = gt.table[["arch", *gt.accuracy_columns]]
    missing = sorted(set(truth["arch"]) - set(scores["arch"]))
    if missing:
        raise ValueError(
            f"the score table lacks {len(missing)} of the {len(truth)} architectures of {benchmark} "
            f"(e.g. {missing[0]}); score them with lswag-bench {benchmark}"
        )
    return truth.merge(scores, on="arch", how="left", validate="one_to_one")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("benchmark", choices=BENCHMARKS)
    p.add_argument("--out", type=Path, required=True, help="CSV to write")
    p.add_argument("--scores", type=Path, default=None, help="score table (default results/<benchmark>_scores.parquet)")
    p.add_argument("--data-dir", type=Path, default=None)
    args = p.parse_args(argv)
    from lswag_lightning.analysis.table import save_table

    table = build_table(args.benchmark, args.scores, args.data_dir)
    save_table(table, args.out)
    print(f"{len(table)} architectures, {table.shape[1]} columns -> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
