"""The interval rule on statistics alone: per-bin mean ± std over networks, a robust trend, the spike
(:mod:`lswag_lightning.intervals` states the rule)."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

from lswag_lightning.intervals.common import BINS, N_BINS
from lswag_lightning.jsonio import plain

DEFAULT_K = 3.0
DEFAULT_VISIBLE = 0.5
MAD_TO_SIGMA = 1.4826


@dataclass
class BinStats:
    """Mean, std (ddof=0) and count over networks of each bin's statistic (length 11 each; NaN when empty)."""

    mean: list[float]
    std: list[float]
    count: list[int]

    @classmethod
    def from_matrix(cls, matrix: np.ndarray) -> BinStats:
        """``matrix``: (networks, 11) per-bin statistics, NaN where a network lacks the bin."""
        m = np.asarray(matrix, dtype=float)
        if m.ndim != 2 or m.shape[1] != N_BINS:
            raise ValueError(f"expected a (networks, {N_BINS}) matrix, got shape {m.shape}")
        finite = np.isfinite(m)
        count = finite.sum(0)
        mean = np.full(N_BINS, np.nan)
        std = np.full(N_BINS, np.nan)
        for b in BINS:
            if count[b]:
                mean[b] = m[finite[:, b], b].mean()
                std[b] = m[finite[:, b], b].std()
        return cls(mean.tolist(), std.tolist(), count.astype(int).tolist())


def theil_sen(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Robust line y ≈ slope · x + intercept: slope = median of pairwise slopes, intercept = median(y − slope·x)."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if len(x) < 2:
        return 0.0, float(np.median(y)) if len(y) else math.nan
    i, j = np.triu_indices(len(x), k=1)
    keep = x[j] != x[i]
    slope = float(np.median((y[j] - y[i])[keep] / (x[j] - x[i])[keep])) if keep.any() else 0.0
    return slope, float(np.median(y - slope * x))


@dataclass
class IntervalProposal:
    """The rule's answer and every number behind it (see the module docstring).

    ``interval`` is (l̂, L̂) or None (no spike: every layer). ``residual`` has one entry per bin 0..10 (NaN outside
    the candidates); ``spike_bins`` are all bins that passed both thresholds; ``runs`` their contiguous runs.
    """

    interval: tuple[int, int] | None
    spike: bool
    reason: str
    candidate_bins: list[int]
    slope: float
    intercept: float
    residual: list[float]
    noise: float
    typical_std: float
    threshold: float
    spike_bins: list[int]
    runs: list[list[int]]
    k: float
    visible: float
    rule: str = (
        "Theil-Sen line over the mean curve of the intermediate bins 1..9 (bin 0 = input layers, bin 10 = "
        "the classifier alone, both excluded); a bin spikes when its residual > k·1.4826·MAD(residuals) "
        "and > v·median between-network std; the contiguous run of spiking bins with the largest summed "
        "residual is [l̂, L̂]; no spike -> every layer (None)"
    )

    def to_dict(self) -> dict:
        d = asdict(self)
        d["interval"] = list(self.interval) if self.interval is not None else None
        return plain(d)


def _contiguous_runs(bins: list[int]) -> list[list[int]]:
    """``bins`` (ascending) grouped into runs of consecutive bins."""
    runs: list[list[int]] = []
    for b in bins:
        if runs and b == runs[-1][-1] + 1:
            runs[-1].append(b)
        else:
            runs.append([b])
    return runs


def propose_interval(
    stats: BinStats, *, k: float = DEFAULT_K, visible: float = DEFAULT_VISIBLE, boundary: bool = False
) -> IntervalProposal:
    """Propose [l̂, L̂] from the per-bin statistics alone (the rule of the module docstring).

    ``boundary=True`` also lets the boundary bins 0 and 10 be candidates (not the default: see the rule, step 1).
    """
    if not k > 0 or not visible >= 0:
        raise ValueError(f"need k > 0 and visible >= 0, got k={k}, visible={visible}")
    mean = np.asarray(stats.mean, dtype=float)
    std = np.asarray(stats.std, dtype=float)
    first, last = (0, N_BINS) if boundary else (1, N_BINS - 1)
    candidates = [b for b in range(first, last) if np.isfinite(mean[b])]
    residual = np.full(N_BINS, np.nan)
    if len(candidates) < 4:
        reason = f"only {len(candidates)} bins hold layers (need 4 to tell a spike from a trend); every layer is used"
        nan = math.nan
        return IntervalProposal(
            None, False, reason, candidates, nan, nan, residual.tolist(), nan, nan, nan, [], [], k, visible
        )
    xs = np.asarray(candidates, dtype=float)
    slope, intercept = theil_sen(xs, mean[candidates])
    residual[candidates] = mean[candidates] - (slope * xs + intercept)
    r = residual[candidates]
    noise = MAD_TO_SIGMA * float(np.median(np.abs(r - np.median(r))))
    typical = float(np.nanmedian(std[candidates]))
    threshold = max(k * noise, visible * typical)
    spiking = [b for b in candidates if residual[b] > threshold and residual[b] > 0]
    runs = _contiguous_runs(spiking)
    numbers = (candidates, slope, intercept, residual.tolist(), noise, typical, threshold)
    if not runs:
        best = max(candidates, key=lambda b: residual[b])
        reason = (
            f"no spike: the largest residual above the trend is {residual[best]:.3f} (bin {best}), below the "
            f"threshold {threshold:.3f} = max({k:g}·σ_r = {k * noise:.3f}, {visible:g}·median std = "
            f"{visible * typical:.3f}); falling back to every layer (interval None)"
        )
        return IntervalProposal(None, False, reason, *numbers, [], [], k, visible)
    spike = max(runs, key=lambda run: float(residual[run].sum()))
    reason = (
        f"spike over bins {spike[0]}..{spike[-1]} (residuals {', '.join(f'{residual[b]:.3f}' for b in spike)}"
        f" > threshold {threshold:.3f})" + (f"; {len(runs) - 1} smaller spike run(s) ignored" if len(runs) > 1 else "")
    )
    return IntervalProposal((spike[0], spike[-1]), True, reason, *numbers, spiking, runs, k, visible)
