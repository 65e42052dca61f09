"""A learned ranking: a small regression model from within-pool ranks of proxies and structure features to the rank of
accuracy, fitted on the k labelled architectures and applicable to any pool.

Features: every input column (oriented proxies, structure statistics) is replaced by its rank within the rows being
ranked, normalised to r / M ∈ (0, 1] (ties averaged; NaN and -inf rank last, +inf first), so a model fitted on one
pool applies to another of any size, whatever the proxies' raw scales. Target: the rank of accuracy within the
labelled rows, normalised the same way. Higher predicted score = better.

Models (``kind``), chosen on NAS-Bench-Suite-Zero's TransNAS-Bench-101 tables (14 tables that no reported number
uses; ``docs/results/label-budget.md``):

- ``ridge``: ridge regression on the centred rank features (penalty ``alpha`` on the coefficients; the data term grows
  with k, so the same ``alpha`` shrinks harder at small k, towards a correlation-weighted mean of ranks);
- ``trees``: extremely randomised trees (``n_trees`` trees, at least ``min_leaf`` rows per leaf, ``max_features`` of
  the features tried per split); captures interactions (a proxy that only matters among large networks);
- ``blend`` (default): the mean of the two predictions (both are on the target's (0, 1] scale).

A fitted model is plain data (:meth:`LearnedRanking.to_dict`, JSON with a format version): the ridge coefficients and
each tree's node arrays; scoring a pool needs numpy only.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from scipy import stats

FORMAT = "lswag-learned-ranking"
FORMAT_VERSION = 1
KINDS = ("ridge", "trees", "blend")


def pool_ranks(values: np.ndarray) -> np.ndarray:
    """r / M ∈ (0, 1] of each value within ``values`` (average ranks for ties, 1 = best); NaN and -inf rank
    last, +inf first."""
    v = np.asarray(values, dtype=float).copy()
    if v.size == 0:
        return v
    v[np.isnan(v)] = -np.inf
    return stats.rankdata(v, method="average") / v.size


def feature_matrix(values: Mapping[str, np.ndarray], names: Sequence[str]) -> np.ndarray:
    """(rows, features) matrix of within-rows ranks of ``values[name]`` for each name; ``ValueError`` naming a
    missing column or columns of different lengths."""
    missing = [n for n in names if n not in values]
    if missing:
        raise ValueError(f"the pool lacks the learned ranking's inputs {missing}; present: {sorted(values)}")
    lengths = {len(values[n]) for n in names}
    if len(lengths) > 1:
        raise ValueError(f"input columns have different lengths: {sorted(lengths)}")
    return np.column_stack([pool_ranks(values[n]) for n in names])


@dataclass(frozen=True)
class LearnedConfig:
    """Hyperparameters of :func:`fit_learned` (module docstring)."""

    kind: str = "blend"
    alpha: float = 1.0
    n_trees: int = 100
    min_leaf: int = 2
    max_features: float = 0.5
    seed: int = 0

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"learned ranking kind must be one of {KINDS}, got {self.kind!r}")
        if not self.alpha >= 0:
            raise ValueError(f"alpha must be >= 0, got {self.alpha}")
        if self.n_trees < 1 or self.min_leaf < 1 or not 0 < self.max_features <= 1:
            raise ValueError("n_trees and min_leaf must be >= 1 and max_features in (0, 1]")


@dataclass
class LearnedRanking:
    """A fitted learned ranking: input names, ridge part and/or tree part. :meth:`score` ranks any pool."""

    inputs: list[str]
    kind: str
    intercept: float = 0.0
    coef: list[float] = field(default_factory=list)
    trees: list[dict[str, list]] = field(default_factory=list)
    n_fit: int = 0
    config: dict = field(default_factory=dict)
    higher_is_better: dict[str, bool] = field(default_factory=dict)

    def score(self, values: Mapping[str, np.ndarray]) -> np.ndarray:
        """Predicted score (higher = better) of each row; ``values`` are oriented columns of the rows to rank."""
        x = feature_matrix(values, self.inputs)
        parts = []
        if self.kind in ("ridge", "blend"):
            parts.append(self.intercept + (x - 0.5) @ np.asarray(self.coef))
        if self.kind in ("trees", "blend"):
            parts.append(np.mean([_predict_tree(t, x) for t in self.trees], axis=0))
        return np.mean(parts, axis=0)

    def score_table(self, table) -> np.ndarray:
        """:meth:`score` on a result table's columns, oriented by :attr:`higher_is_better` (raw columns in)."""
        sign = {n: 1.0 if self.higher_is_better.get(n, True) else -1.0 for n in self.inputs}
        missing = [n for n in self.inputs if n not in table.columns]
        if missing:
            raise ValueError(f"the table lacks the learned ranking's inputs {missing}")
        return self.score({n: sign[n] * table[n].to_numpy(dtype=float, na_value=np.nan) for n in self.inputs})

    def to_dict(self) -> dict:
        """Plain JSON-ready data with the format name and version (:func:`learned_from_dict` reads it back)."""
        return {
            "format": FORMAT,
            "version": FORMAT_VERSION,
            "inputs": list(self.inputs),
            "kind": self.kind,
            "intercept": float(self.intercept),
            "coef": [float(c) for c in self.coef],
            "trees": self.trees,
            "n_fit": int(self.n_fit),
            "config": dict(self.config),
            "higher_is_better": dict(self.higher_is_better),
        }

    def save(self, path: str | os.PathLike) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.to_dict()) + "\n")
        return path


def learned_from_dict(data: Mapping) -> LearnedRanking:
    """A :class:`LearnedRanking` from :meth:`LearnedRanking.to_dict` data; ``ValueError`` for another format or
    version, or inconsistent arrays."""
    if data.get("format") != FORMAT or data.get("version") != FORMAT_VERSION:
        raise ValueError(
            f"not a learned ranking of format {FORMAT!r} version {FORMAT_VERSION} "
            f"(got format {data.get('format')!r}, version {data.get('version')!r})"
        )
    model = LearnedRanking(
        inputs=list(data["inputs"]),
        kind=str(data["kind"]),
        intercept=float(data["intercept"]),
        coef=[float(c) for c in data["coef"]],
        trees=list(data["trees"]),
        n_fit=int(data["n_fit"]),
        config=dict(data.get("config", {})),
        higher_is_better={str(k): bool(v) for k, v in data.get("higher_is_better", {}).items()},
    )
    if model.kind not in KINDS:
        raise ValueError(f"unknown learned ranking kind {model.kind!r}")
    if model.kind != "trees" and len(model.coef) != len(model.inputs):
        raise ValueError(f"{len(model.coef)} coefficients for {len(model.inputs)} inputs")
    if model.kind != "ridge" and not model.trees:
        raise ValueError(f"a {model.kind!r} model needs trees")
    return model


def load_learned(path: str | os.PathLike) -> LearnedRanking:
    """Read a learned ranking saved by :meth:`LearnedRanking.save`."""
    with open(path) as fh:
        return learned_from_dict(json.load(fh))


# ---------------------------------------------------------------------------------------------------- fitting
def _fit_ridge(x: np.ndarray, y: np.ndarray, alpha: float) -> tuple[float, np.ndarray]:
    xc = x - 0.5
    mean = xc.mean(axis=0)
    a = (xc - mean).T @ (xc - mean) + alpha * np.eye(x.shape[1])
    coef = np.linalg.solve(a, (xc - mean).T @ (y - y.mean()))
    return float(y.mean() - mean @ coef), coef


def _tree_arrays(tree) -> dict[str, list]:
    t = tree.tree_
    return {
        "left": t.children_left.tolist(),
        "right": t.children_right.tolist(),
        "feature": t.feature.tolist(),
        "threshold": [float(v) for v in t.threshold],
        "value": [float(v) for v in t.value[:, 0, 0]],
    }


def _predict_tree(tree: Mapping[str, list], x: np.ndarray) -> np.ndarray:
    left, right = np.asarray(tree["left"]), np.asarray(tree["right"])
    feature, threshold = np.asarray(tree["feature"]), np.asarray(tree["threshold"])
    node = np.zeros(len(x), dtype=np.int64)
    rows = np.arange(len(x))
    while True:
        inner = left[node] >= 0
        if not inner.any():
            break
        f = np.where(inner, feature[node], 0)
        go_left = x[rows, f] <= threshold[node]
        node = np.where(inner, np.where(go_left, left[node], right[node]), node)
    return np.asarray(tree["value"])[node]


def fit_learned(
    values: Mapping[str, np.ndarray],
    accuracy: np.ndarray,
    inputs: Sequence[str],
    config: LearnedConfig | None = None,
    higher_is_better: Mapping[str, bool] | None = None,
) -> LearnedRanking:
    """Fit a learned ranking on labelled rows: ``values`` oriented columns (higher is better for proxies; any
    direction for structure features), ``accuracy`` aligned with them. ``ValueError`` for fewer than 3 rows, a
    non-finite accuracy or a constant one."""
    config = config or LearnedConfig()
    accuracy = np.asarray(accuracy, dtype=float)
    if len(accuracy) < 3:
        raise ValueError(f"a learned ranking needs at least 3 labelled rows, got {len(accuracy)}")
    if not np.all(np.isfinite(accuracy)):
        raise ValueError("the accuracy of the labelled rows must be finite")
    if np.all(accuracy == accuracy[0]):
        raise ValueError("the accuracy is constant on the labelled rows; nothing to learn")
    inputs = list(dict.fromkeys(inputs))
    x = feature_matrix(values, inputs)
    y = pool_ranks(accuracy)
    model = LearnedRanking(
        inputs=inputs,
        kind=config.kind,
        n_fit=len(y),
        config={k: getattr(config, k) for k in config.__dataclass_fields__},
        higher_is_better=dict(higher_is_better or {}),
    )
    if config.kind in ("ridge", "blend"):
        model.intercept, coef = _fit_ridge(x, y, config.alpha)
        model.coef = coef.tolist()
    if config.kind in ("trees", "blend"):
        from sklearn.ensemble import ExtraTreesRegressor

        forest = ExtraTreesRegressor(
            n_estimators=config.n_trees,
            min_samples_leaf=config.min_leaf,
            max_features=config.max_features,
            random_state=config.seed,
            n_jobs=1,
        ).fit(x, y)
        model.trees = [_tree_arrays(t) for t in forest.estimators_]
    return model
