"""What the cells the searches return score once trained: NAS-Bench-201's 200-epoch test accuracies, read here and
nowhere else, only after every search has finished (the searches see nothing but proxy values)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from lswag_lightning.bench.ground_truth import NB201_TEST_FILE
from lswag_lightning.paths import resolve_data_dir

#: the benchmark's best 200-epoch test accuracy per dataset (%), and the gap to it a search must stay within
OPTIMUM = {"cifar10": 94.37, "cifar100": 73.51, "imagenet16_120": 47.31}
TARGET_GAP = {"cifar10": 1.0, "cifar100": 2.5, "imagenet16_120": 2.5}
#: dataset -> its column in the NB201 test-accuracy file
TEST_COLUMNS = {
    "cifar10": "CIFAR10TestAccuracy200Epochs",
    "cifar100": "CIFAR100TestAccuracy200Epochs",
    "imagenet16_120": "ImageNetTestAccuracy200Epochs",
}


def load_test_accuracy(data_dir) -> pd.DataFrame:
    """The 200-epoch test accuracies of all 15,625 cells, indexed by canonical arch string."""
    path = resolve_data_dir(data_dir, must_contain=NB201_TEST_FILE) / NB201_TEST_FILE
    table = pd.read_csv(path)
    out = pd.DataFrame({k: table[c].to_numpy(dtype=float) for k, c in TEST_COLUMNS.items()})
    out.index = table["ArchitectureString"].astype(str)
    return out


def fitness_label(name: str) -> str:
    """The summary row of a fitness: per-dataset LIBRA searches (``libra[cifar10]``, ...) share the row ``libra``."""
    return name.split("[", 1)[0]


def evaluate_runs(runs: list[dict], acc: pd.DataFrame) -> pd.DataFrame:
    """One row per run: the returned arch's test accuracies and the best test accuracy among the archs it scored,
    on the datasets the run's fitness is evaluated on (NaN on the others)."""
    rows = []
    for run in runs:
        row = {k: run[k] for k in ("strategy", "fitness", "seed", "evaluations", "best_arch", "best_fitness")}
        row["label"] = fitness_label(run["fitness"])
        for ds in TEST_COLUMNS:
            use = ds in run.get("datasets", TEST_COLUMNS)
            row[ds] = float(acc.loc[run["best_arch"], ds]) if use else math.nan
            row[f"{ds}_oracle_scored"] = float(acc.loc[run["archs"], ds].max()) if use else math.nan
        rows.append(row)
    return pd.DataFrame(rows)


def is_stored(scorer, arch: str) -> bool:
    """Whether ``scorer`` has ``arch``'s values without computing them (score table row or score-cache hit)."""
    from lswag_lightning.search import MergedScorer, TableScorer

    if isinstance(scorer, MergedScorer):
        return all(is_stored(part, arch) for part in scorer.scorers)
    if isinstance(scorer, TableScorer):
        return arch in scorer
    cache = getattr(scorer, "cache", None)
    return cache is not None and cache.get(scorer.key, arch, scorer.proxies) is not None


def global_fitness_optimum(scorer, fitnesses, acc: pd.DataFrame, eval_datasets=None) -> dict[str, dict]:
    """When every cell is in the score table or cache: the cell each fitness ranks first over the whole space, and
    its test accuracy on the datasets the fitness is evaluated on. Empty when some cell has no stored scores."""
    from lswag_lightning.search.fitness import finite_or_worst

    archs = list(acc.index)
    out = {}
    values = {}
    for arch in archs:
        if not is_stored(scorer, arch):
            return {}
        values[arch] = scorer.score(scorer.space.decode(arch), arch).values
    for fname, fitness in fitnesses.items():
        pool = pd.DataFrame([[values[a][p] for p in fitness.proxies] for a in archs], columns=list(fitness.proxies))
        fit = fitness(pool)
        best = archs[int(np.argmax(finite_or_worst(fit)))]
        datasets = (eval_datasets or {}).get(fname, TEST_COLUMNS)
        out[fname] = {
            "arch": best,
            **{ds: float(acc.loc[best, ds]) if ds in datasets else math.nan for ds in TEST_COLUMNS},
        }
    return out


def summarise(per_run: pd.DataFrame) -> pd.DataFrame:
    rows = []
    for (strategy, fname), g in per_run.groupby(["strategy", "label"], sort=False):
        row = {"strategy": strategy, "fitness": fname, "seeds": int(g["seed"].nunique())}
        for ds in TEST_COLUMNS:
            v = g[ds].dropna().to_numpy()
            row[f"{ds}_mean"] = float(v.mean())
            row[f"{ds}_std"] = float(v.std(ddof=1)) if len(v) > 1 else 0.0
            row[f"{ds}_gap"] = OPTIMUM[ds] - float(v.mean())
            row[f"{ds}_oracle_scored_mean"] = float(g[f"{ds}_oracle_scored"].dropna().mean())
        rows.append(row)
    return pd.DataFrame(rows)
