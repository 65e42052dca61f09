"""Evidence with accuracies: ρ of Λ restricted to each depth bin (the paper's Fig. 2a) and held-out fit/eval
splits comparing the label-chosen interval, every layer and the rule's interval. Never feeds the rule."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from typing import Any

import numpy as np

from lswag_lightning.intervals.common import BINS
from lswag_lightning.jsonio import plain


def interval_lambda(lambda_bins: np.ndarray, interval: tuple[int, int] | None) -> np.ndarray:
    """Λ restricted to ``interval`` (None: all bins) from per-bin Λ sums (networks, 11)."""
    lam = np.asarray(lambda_bins, dtype=float)
    if interval is None:
        return lam.sum(1)
    lo, hi = interval
    return lam[:, lo : hi + 1].sum(1)


def _spearman(x: np.ndarray, y: np.ndarray) -> float:
    from lswag_lightning.analysis.correlations import spearman

    ok = np.isfinite(x) & np.isfinite(y)
    return spearman(x[ok], y[ok]) if ok.sum() >= 3 else math.nan


def per_bin_correlation(lambda_bins: np.ndarray, depth_has_bin: np.ndarray, accuracy: np.ndarray) -> list[float]:
    """Spearman ρ of Λ restricted to each single bin with accuracy (the paper's Fig. 2a), over the networks that
    have a layer in that bin. ``depth_has_bin``: bool (networks, 11)."""
    lam = np.asarray(lambda_bins, dtype=float)
    acc = np.asarray(accuracy, dtype=float)
    out = []
    for b in BINS:
        rows = np.asarray(depth_has_bin)[:, b]
        out.append(_spearman(lam[rows, b], acc[rows]) if rows.sum() >= 3 else math.nan)
    return out


def all_intervals() -> list[tuple[int, int]]:
    """Every contiguous bin interval (lo, hi), 0 <= lo <= hi <= 10 (66 of them)."""
    return [(lo, hi) for lo in BINS for hi in BINS if hi >= lo]


def label_check(
    lambda_bins: np.ndarray,
    accuracy: np.ndarray,
    rule_interval: tuple[int, int] | None,
    *,
    n_splits: int = 20,
    fit_fraction: float = 0.5,
    seed: int = 0,
) -> dict[str, Any]:
    """Held-out evidence about intervals: on each split choose the interval with the best ρ(Λ_I, accuracy) on the
    fit part, then report on the eval part ρ of Λ on that interval, on every layer and on the rule's interval
    (mean ± std over splits; the paired gain of each over every layer), and how often each interval was chosen.
    ``in_sample`` gives ρ of every interval on all networks (selection-set numbers, optimistic)."""
    lam = np.asarray(lambda_bins, dtype=float)
    acc = np.asarray(accuracy, dtype=float)
    keep = np.isfinite(acc)
    lam, acc = lam[keep], acc[keep]
    n = len(acc)
    n_fit = int(round(fit_fraction * n))
    if n_fit < 5 or n - n_fit < 5:
        raise ValueError(f"{n} networks with an accuracy: too few for fit/eval splits (need >= 10)")
    intervals = all_intervals()
    values = {iv: interval_lambda(lam, iv) for iv in intervals}
    values[None] = interval_lambda(lam, None)
    rng = np.random.default_rng(seed)
    held: dict[str, list[float]] = {"label_chosen": [], "all_layers": [], "rule": []}
    chosen: Counter = Counter()
    for _ in range(n_splits):
        perm = rng.permutation(n)
        fit, ev = perm[:n_fit], perm[n_fit:]
        fit_rho = {iv: _spearman(values[iv][fit], acc[fit]) for iv in intervals}
        best = max(intervals, key=lambda iv: (np.nan_to_num(fit_rho[iv], nan=-2.0), -(iv[1] - iv[0])))
        chosen[best] += 1
        held["label_chosen"].append(_spearman(values[best][ev], acc[ev]))
        held["all_layers"].append(_spearman(values[None][ev], acc[ev]))
        held["rule"].append(_spearman(values[rule_interval][ev], acc[ev]))

    def mean_std(v: Sequence[float]) -> dict[str, float]:
        a = np.asarray(v, dtype=float)
        a = a[np.isfinite(a)]
        return {
            "mean": float(a.mean()) if a.size else math.nan,
            "std": float(a.std(ddof=1)) if a.size > 1 else math.nan,
        }

    gain = {k: mean_std(np.asarray(v) - np.asarray(held["all_layers"])) for k, v in held.items() if k != "all_layers"}
    in_sample = {f"{lo}-{hi}": _spearman(values[(lo, hi)], acc) for lo, hi in intervals}
    best_all = max(intervals, key=lambda iv: np.nan_to_num(in_sample[f"{iv[0]}-{iv[1]}"], nan=-2.0))
    return plain(
        {
            "n": n,
            "n_splits": n_splits,
            "fit_fraction": fit_fraction,
            "seed": seed,
            "heldout": {k: mean_std(v) for k, v in held.items()},
            "gain_over_all_layers": gain,
            "chosen": [{"interval": list(iv), "count": c} for iv, c in chosen.most_common()],
            "in_sample_rho": in_sample,
            "in_sample_rho_all_layers": _spearman(values[None], acc),
            "in_sample_best": list(best_all),
        }
    )
