"""Plug-in entropies of rank-binned variables, in bits: the information gain LIBRA chooses its second proxy by
(METHOD.md §6). Each variable is rank-transformed, u = (average rank − 1) / n ∈ [0, 1), and cut into ``bins``
equal-width bins of u, i.e. equal-frequency bins of the raw values (tied values share a bin)."""

from __future__ import annotations

import numpy as np
from scipy import stats

ENTROPY_UNIT = "bits"


def rank_bins(values: np.ndarray, bins: int = 24) -> np.ndarray:
    """Equal-frequency bin index (0..bins-1) of each value: floor((average rank − 1) / n × bins).

    With n distinct values and n divisible by ``bins`` every bin holds exactly n / bins values; tied values share
    a bin. Values must be finite.
    """
    values = np.asarray(values, dtype=float)
    if bins < 1:
        raise ValueError(f"bins must be >= 1, got {bins}")
    if not np.all(np.isfinite(values)):
        raise ValueError("rank_bins needs finite values")
    n = len(values)
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    ranks = stats.rankdata(values, method="average")
    return np.minimum(np.floor((ranks - 1.0) * bins / n).astype(np.int64), bins - 1)


def joint_entropy(*binned: np.ndarray) -> float:
    """Plug-in (maximum-likelihood) entropy, in bits, of the joint distribution of integer-coded variables."""
    if not binned:
        raise ValueError("joint_entropy needs at least one variable")
    data = np.stack([np.asarray(b, dtype=np.int64) for b in binned], axis=1)
    if len(data) == 0:
        return 0.0
    _, counts = np.unique(data, axis=0, return_counts=True)
    p = counts / counts.sum()
    return float(-(p * np.log2(p)).sum())


def conditional_entropy(target: np.ndarray, *given: np.ndarray) -> float:
    """H(target | given) = H(target, given) − H(given), in bits, on integer-coded variables."""
    if not given:
        return joint_entropy(target)
    return joint_entropy(target, *given) - joint_entropy(*given)


def information_gain(accuracy: np.ndarray, z1: np.ndarray, z: np.ndarray, bins: int = 24) -> float:
    """IG(z) = H(y | z1) − H(y | z1, z) in bits, each variable cut into ``bins`` equal-frequency bins."""
    y, b1, bz = rank_bins(accuracy, bins), rank_bins(z1, bins), rank_bins(z, bins)
    return conditional_entropy(y, b1) - conditional_entropy(y, b1, bz)
