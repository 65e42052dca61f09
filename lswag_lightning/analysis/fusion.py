"""Fused rankings beyond LIBRA's triple: a fixed set of proxies, and a set grown greedily on the selection rows.

Both fuse by AZ-NAS's log-rank sum, Σ_p log(rank_p / M) over the chosen proxies p (rank M = best of the M rows,
ties averaged). A fixed set (e.g. AZ-NAS's own expressivity, progressivity, trainability and FLOPs) fits nothing.
``greedy_log_rank`` fits the set: starting empty, it adds the proxy that most raises the Spearman ρ of the fused
score with accuracy on the rows it is given, and stops when no proxy raises it by more than ``min_gain`` or the set
has ``max_size`` proxies. Evaluated on held-out rows (``libra.evaluate``), the choice is as honest as LIBRA's.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from scipy import stats

from lswag_lightning.analysis.correlations import spearman

FUSION_METHODS = ("rank_mean", "log_rank")


def rank_fusion(columns: Sequence[np.ndarray], method: str) -> np.ndarray:
    """Fuse oriented columns (higher = better) by ranks within the pool: each ranked (ties averaged, rank M = best of
    the M rows) and normalised to r / M ∈ (0, 1]; ``rank_mean``: mean of r / M, ``log_rank`` (AZ-NAS): Σ log(r / M).
    NaN in any column gives NaN for that row; ±inf rank as the extremes they are."""
    if method not in FUSION_METHODS:
        raise ValueError(f"fusion method must be one of {FUSION_METHODS}, got {method!r}")
    if not columns:
        raise ValueError("nothing to fuse: empty proxy list")
    total = np.zeros(len(columns[0]))
    for v in columns:
        ok = ~np.isnan(v)
        r = np.full(len(v), np.nan)
        if ok.any():
            r[ok] = stats.rankdata(v[ok], method="average") / ok.sum()  # in (0, 1], 1 = best
        total += r if method == "rank_mean" else np.log(r)
    return total / len(columns) if method == "rank_mean" else total


def log_rank_sum(columns: Sequence[np.ndarray]) -> np.ndarray:
    """Σ log(rank / M) of oriented columns (AZ-NAS's fusion); NaN in a column gives NaN for that row."""
    return rank_fusion(columns, "log_rank")


def greedy_log_rank(
    values: Mapping[str, np.ndarray],
    accuracy: np.ndarray,
    max_size: int = 6,
    min_gain: float = 1e-3,
    starts: Mapping[str, Sequence[str]] | None = None,
) -> list[str]:
    """The proxy set whose log-rank sum has the highest ρ with ``accuracy``, grown one proxy at a time.

    ``values`` are oriented (higher is better) and aligned with ``accuracy``. The search starts from the best
    single proxy, or from one of the ``starts`` sets (e.g. published fixed sets such as AZ-NAS's) when its log-rank
    sum has a higher ρ on these rows: one-at-a-time growth cannot reach a good set whose members are weak alone.
    It then adds the proxy that raises ρ most, while the gain exceeds ``min_gain`` and the set has fewer than
    ``max_size`` members. Ties go to the first in ``values``' (then ``starts``') order. Returns at least one proxy."""
    if not values:
        raise ValueError("greedy_log_rank needs at least one proxy")
    if max_size < 1:
        raise ValueError(f"max_size must be >= 1, got {max_size}")
    singles = {name: spearman(values[name], accuracy) for name in values}
    singles = {k: v for k, v in singles.items() if np.isfinite(v)}
    if not singles:
        raise ValueError("no proxy has a finite Spearman ρ with the accuracy on these rows")
    first = max(singles, key=lambda k: singles[k])
    chosen, best = [first], singles[first]
    for members in (starts or {}).values():
        if members and all(m in values for m in members):
            rho = spearman(log_rank_sum([values[m] for m in members]), accuracy)
            if np.isfinite(rho) and rho > best:
                chosen, best = list(dict.fromkeys(members)), rho
    while len(chosen) < max_size:
        scores = {}
        for name in values:
            if name not in chosen:
                scores[name] = spearman(log_rank_sum([values[p] for p in (*chosen, name)]), accuracy)
        scores = {k: v for k, v in scores.items() if np.isfinite(v)}
        if not scores:
            break
        name = max(scores, key=lambda k: scores[k])
        if scores[name] <= best + min_gain:
            break
        chosen.append(name)
        best = scores[name]
    return chosen
