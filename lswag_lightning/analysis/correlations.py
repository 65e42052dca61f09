"""Rank correlations between proxies and accuracy, with seeded bootstrap intervals and the top-10% hit rate.

All functions orient proxies first (higher is better, see :func:`lswag_lightning.analysis.table.orient`), so a
good proxy has a positive Spearman ρ / Kendall τ whatever its raw direction. Intervals are percentile bootstrap
intervals over architectures (rows resampled with replacement), seeded, so a call is reproducible.

Non-finite values are never silently dropped: every result says how many rows were used (``n``), how many were
left out (``n_excluded``) and why (``excluded``). ``nonfinite="exclude"`` (default) leaves out rows where the
proxy or the accuracy is NaN or ±inf; ``nonfinite="rank"`` keeps ±inf proxy values as the extreme ranks they
denote (e.g. NASWOT's log-det of a singular kernel is -inf = worst) and leaves out NaN only.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd
from scipy import stats

from lswag_lightning.analysis.table import Orientation, orient, oriented_values, validate_table

log = logging.getLogger(__name__)

NONFINITE_POLICIES = ("exclude", "rank")
_MAX_CHUNK_ELEMENTS = 4_000_000  # bootstrap resamples are ranked in chunks of at most this many values
_KENDALL_MATRIX_MAX_N = 3000  # above this, bootstrap Kendall loops over scipy (the n×n sign matrix gets large)


# ----------------------------------------------------------------------------------------------------- basics
def spearman(x: np.ndarray, y: np.ndarray) -> float:
    """Spearman's ρ (scipy, average ranks for ties); NaN when either input is constant or has < 2 values."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if len(x) < 2 or _is_constant(x) or _is_constant(y):
        return math.nan
    return float(stats.spearmanr(x, y).statistic)


def kendall(x: np.ndarray, y: np.ndarray) -> float:
    """Kendall's τ-b (scipy); NaN when either input is constant or has < 2 values."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if len(x) < 2 or _is_constant(x) or _is_constant(y):
        return math.nan
    return float(stats.kendalltau(x, y).statistic)


def _is_constant(v: np.ndarray) -> bool:
    return bool(len(v) == 0 or np.all(v == v[0]))


def _inclusion_probability(values: np.ndarray, k: int) -> np.ndarray:
    """P(item is among the k highest) when ties at the cut are broken uniformly at random."""
    kth = np.sort(values)[::-1][k - 1]
    above = values > kth
    tied = values == kth
    return above + tied * ((k - above.sum()) / tied.sum())


def top_hit_rate(proxy: np.ndarray, accuracy: np.ndarray, fraction: float = 0.1) -> float:
    """Top-``fraction`` hit rate of an oriented proxy, in [0, 1].

    With n architectures and k = max(1, ceil(fraction * n)), let A be the k architectures with the highest
    accuracy and P the k with the highest (oriented) proxy value. The hit rate is |A ∩ P| / k: the fraction of
    the truly best k that the proxy also puts in its top k. Ties at the cut are broken uniformly at random and
    the expectation is returned (exactly: Σ_i P(i∈A) P(i∈P) / k), so the value does not depend on row order.
    """
    proxy, accuracy = np.asarray(proxy, dtype=float), np.asarray(accuracy, dtype=float)
    if len(proxy) != len(accuracy):
        raise ValueError(f"proxy and accuracy lengths differ: {len(proxy)} vs {len(accuracy)}")
    if not 0.0 < fraction <= 1.0:
        raise ValueError(f"fraction must be in (0, 1], got {fraction}")
    n = len(proxy)
    if n == 0:
        return math.nan
    k = max(1, math.ceil(fraction * n - 1e-9))
    return float(np.sum(_inclusion_probability(proxy, k) * _inclusion_probability(accuracy, k)) / k)


# ------------------------------------------------------------------------------------------------- bootstrap
def _resample_indices(n: int, n_boot: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, n, size=(n_boot, n))


def _resample_weights(idx: np.ndarray, n: int) -> np.ndarray:
    """Multiplicity of each original row in each resample: (B, n) float64 from (B, n) indices."""
    b = len(idx)
    flat = (np.arange(b)[:, None] * n + idx).ravel()
    return np.bincount(flat, minlength=b * n).reshape(b, n).astype(np.float64)


def _weighted_midranks(values: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Average ranks (1..N) of each original row within resamples given by multiplicities ``w`` (B, n).

    Equal to ``rankdata`` of the resampled values: a row's copies and rows tied with it share one mid-rank.
    """
    order = np.argsort(values, kind="stable")
    sorted_vals = values[order]
    starts = np.flatnonzero(np.r_[True, sorted_vals[1:] != sorted_vals[:-1]])
    group_of_sorted = np.cumsum(np.r_[True, sorted_vals[1:] != sorted_vals[:-1]]) - 1
    group_w = np.add.reduceat(w[:, order], starts, axis=1)  # (B, groups)
    before = np.cumsum(group_w, axis=1) - group_w
    mid = before + (group_w + 1.0) / 2.0
    ranks = np.empty_like(w)
    ranks[:, order] = mid[:, group_of_sorted]
    return ranks


def bootstrap_spearman(
    x: np.ndarray, y: np.ndarray, *, n_boot: int = 1000, seed: int = 0, indices: np.ndarray | None = None
) -> np.ndarray:
    """Spearman ρ on ``n_boot`` seeded resamples of the rows. Shape (n_boot,); NaN for a constant resample.

    Vectorised: a resample is a vector w of row multiplicities; each row's mid-rank within the resample comes
    from cumulative sums of w in sorted order, and ρ is the w-weighted Pearson correlation of the mid-ranks —
    exactly scipy's ρ on the resampled rows.
    """
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    n = len(x)
    idx = _resample_indices(n, n_boot, seed) if indices is None else indices
    out = []
    chunk = max(1, _MAX_CHUNK_ELEMENTS // max(1, n))
    for i in range(0, len(idx), chunk):
        w = _resample_weights(idx[i : i + chunk], n)
        mean = (n + 1) / 2.0  # the mean rank of n resampled items
        rx = _weighted_midranks(x, w) - mean
        ry = _weighted_midranks(y, w) - mean
        cov = np.einsum("bi,bi->b", w * rx, ry)
        den = np.sqrt(np.einsum("bi,bi->b", w * rx, rx) * np.einsum("bi,bi->b", w * ry, ry))
        with np.errstate(invalid="ignore", divide="ignore"):
            out.append(np.where(den > 1e-12, cov / np.where(den > 1e-12, den, 1.0), np.nan))
    return np.concatenate(out) if out else np.empty(0)


def bootstrap_kendall(
    x: np.ndarray, y: np.ndarray, *, n_boot: int = 1000, seed: int = 0, indices: np.ndarray | None = None
) -> np.ndarray:
    """Kendall τ-b on ``n_boot`` seeded resamples of the rows. Shape (n_boot,).

    For n <= 3000 it is vectorised: a resample is a vector w of row multiplicities, and with
    s_ij = sign(x_i − x_j) sign(y_i − y_j), concordant − discordant = wᵀSw / 2 while the pairs tied in x number
    (wᵀT_x w − n) / 2 (T_x = [x_i == x_j], copies of one row count as tied) — exactly scipy's τ-b on the
    resample. Larger n loops over scipy's O(n log n) τ.
    """
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    n = len(x)
    idx = _resample_indices(n, n_boot, seed) if indices is None else indices
    if n > _KENDALL_MATRIX_MAX_N:
        return np.array([kendall(x[rows], y[rows]) for rows in idx])
    # signs by comparison, not subtraction, so that ±inf (nonfinite="rank") compare correctly
    s = (x[:, None] > x[None, :]).astype(np.float64) - (x[:, None] < x[None, :])
    s *= (y[:, None] > y[None, :]).astype(np.float64) - (y[:, None] < y[None, :])
    # Pairs of distinct rows with equal values; None when a variable has no ties (then only copies tie).
    tx = (x[:, None] == x[None, :]).astype(np.float64) if len(np.unique(x)) < n else None
    ty = (y[:, None] == y[None, :]).astype(np.float64) if len(np.unique(y)) < n else None
    n0 = n * (n - 1) / 2.0
    out = []
    chunk = max(1, _MAX_CHUNK_ELEMENTS // max(1, n))
    for i in range(0, len(idx), chunk):
        w = _resample_weights(idx[i : i + chunk], n)
        sq = np.einsum("bi,bi->b", w, w)
        num = np.einsum("bi,bi->b", w @ s, w) / 2.0
        n1 = ((np.einsum("bi,bi->b", w @ tx, w) if tx is not None else sq) - n) / 2.0
        n2 = ((np.einsum("bi,bi->b", w @ ty, w) if ty is not None else sq) - n) / 2.0
        den = (n0 - n1) * (n0 - n2)
        with np.errstate(invalid="ignore", divide="ignore"):
            out.append(np.where(den > 0, num / np.sqrt(np.where(den > 0, den, 1.0)), np.nan))
    return np.concatenate(out) if out else np.empty(0)


def percentile_interval(samples: np.ndarray, ci: float = 0.95) -> tuple[float, float]:
    """The (lower, upper) percentile interval of bootstrap samples, ignoring NaN resamples."""
    samples = np.asarray(samples, dtype=float)
    samples = samples[np.isfinite(samples)]
    if samples.size == 0:
        return math.nan, math.nan
    alpha = (1.0 - ci) / 2.0
    lo, hi = np.quantile(samples, [alpha, 1.0 - alpha])
    return float(lo), float(hi)


# ------------------------------------------------------------------------------------------- row selection
def usable_rows(proxy: np.ndarray, accuracy: np.ndarray, nonfinite: str = "exclude") -> tuple[np.ndarray, str]:
    """Mask of the rows a correlation uses, and a human-readable reason for the rows it leaves out ("" if none)."""
    if nonfinite not in NONFINITE_POLICIES:
        raise ValueError(f"nonfinite must be one of {NONFINITE_POLICIES}, got {nonfinite!r}")
    proxy, accuracy = np.asarray(proxy, dtype=float), np.asarray(accuracy, dtype=float)
    p_nan, p_pinf, p_ninf = np.isnan(proxy), np.isposinf(proxy), np.isneginf(proxy)
    a_bad = ~np.isfinite(accuracy)
    bad = p_nan | a_bad
    if nonfinite == "exclude":
        bad = bad | p_pinf | p_ninf
    parts = []
    for count, what in ((p_nan.sum(), "NaN in proxy"), (a_bad.sum(), "non-finite accuracy")):
        if count:
            parts.append(f"{count} {what}")
    if nonfinite == "exclude":
        for count, what in ((p_pinf.sum(), "+inf in proxy"), (p_ninf.sum(), "-inf in proxy")):
            if count:
                parts.append(f"{count} {what}")
    return ~bad, "; ".join(parts)


# ---------------------------------------------------------------------------------------------- the table
#: the columns of :func:`correlation_table`, in order
CORRELATION_COLUMNS = [
    "proxy",
    "n",
    "n_excluded",
    "excluded",
    "spearman",
    "spearman_lo",
    "spearman_hi",
    "kendall",
    "kendall_lo",
    "kendall_hi",
    "top_hit",
    "higher_is_better",
    "orientation",
]


def correlation_table(
    table: pd.DataFrame,
    proxies: Sequence[str],
    accuracy: str,
    *,
    higher_is_better: Mapping[str, bool] | Orientation | None = None,
    n_boot: int = 1000,
    ci: float = 0.95,
    seed: int = 0,
    top_fraction: float = 0.1,
    nonfinite: str = "exclude",
    kendall_ci: bool = True,
) -> pd.DataFrame:
    """Per-proxy rank correlation with ``accuracy``, one row per proxy, in the order given.

    Columns: ``proxy``, ``n`` (rows used), ``n_excluded``, ``excluded`` (why), ``spearman``, ``spearman_lo``,
    ``spearman_hi``, ``kendall``, ``kendall_lo``, ``kendall_hi`` (``ci`` percentile bootstrap over ``n_boot``
    seeded resamples of the architectures; NaN when ``n_boot`` is 0 or ``kendall_ci`` is False), ``top_hit``
    (:func:`top_hit_rate` at ``top_fraction``), ``higher_is_better`` and ``orientation`` (override / registry /
    assumed). ``df.attrs["orientation"]`` holds the :class:`Orientation` as a dict.
    """
    proxies = list(dict.fromkeys(proxies))
    validate_table(table, [*proxies, accuracy])
    orientation = orient(proxies, higher_is_better)
    acc = table[accuracy].to_numpy(dtype=float, na_value=np.nan)
    rows = []
    for name in proxies:
        values = oriented_values(table, name, orientation)
        mask, why = usable_rows(values, acc, nonfinite)
        x, y = values[mask], acc[mask]
        row = {
            "proxy": name,
            "n": int(mask.sum()),
            "n_excluded": int((~mask).sum()),
            "excluded": why,
            "spearman": spearman(x, y),
            "spearman_lo": math.nan,
            "spearman_hi": math.nan,
            "kendall": kendall(x, y),
            "kendall_lo": math.nan,
            "kendall_hi": math.nan,
            "top_hit": top_hit_rate(x, y, top_fraction) if len(x) else math.nan,
            "higher_is_better": orientation.higher_is_better[name],
            "orientation": orientation.source[name],
        }
        if n_boot > 0 and len(x) >= 3 and np.isfinite(row["spearman"]):
            idx = _resample_indices(len(x), n_boot, seed)
            row["spearman_lo"], row["spearman_hi"] = percentile_interval(bootstrap_spearman(x, y, indices=idx), ci)
            if kendall_ci:
                row["kendall_lo"], row["kendall_hi"] = percentile_interval(bootstrap_kendall(x, y, indices=idx), ci)
        if row["n_excluded"]:
            log.info("%s: %d of %d rows excluded (%s)", name, row["n_excluded"], len(values), why)
        rows.append(row)
    out = pd.DataFrame(rows, columns=CORRELATION_COLUMNS)
    out.attrs["orientation"] = orientation.to_dict()
    out.attrs.update(
        {
            "accuracy": accuracy,
            "n_boot": n_boot,
            "ci": ci,
            "seed": seed,
            "top_fraction": top_fraction,
            "nonfinite": nonfinite,
        }
    )
    return out


# ---------------------------------------------------------------------------------------- paired difference
@dataclass(frozen=True)
class PairedDifference:
    """ρ(a) − ρ(b) on the same architectures, with a paired bootstrap interval.

    ``p_not_above`` is the fraction of resamples where ρ(a) − ρ(b) ≤ 0 (a one-sided bootstrap p-value for
    "a is better than b"). ``excludes_zero`` is True when the interval lies entirely above or below 0.
    """

    a: str
    b: str
    method: str
    n: int
    n_excluded: int
    excluded: str
    rho_a: float
    rho_b: float
    delta: float
    lo: float
    hi: float
    ci: float
    n_boot: int
    seed: int
    p_not_above: float

    @property
    def excludes_zero(self) -> bool:
        return bool(self.lo > 0 or self.hi < 0)

    def to_dict(self) -> dict:
        return {**asdict(self), "excludes_zero": self.excludes_zero}


def paired_difference(
    table: pd.DataFrame,
    a: str,
    b: str,
    accuracy: str,
    *,
    higher_is_better: Mapping[str, bool] | Orientation | None = None,
    method: str = "spearman",
    n_boot: int = 1000,
    ci: float = 0.95,
    seed: int = 0,
    nonfinite: str = "exclude",
) -> PairedDifference:
    """Paired bootstrap of ρ(a, acc) − ρ(b, acc): both on the rows where a, b and the accuracy are usable, and
    both on the same resampled architectures in each of ``n_boot`` seeded resamples.

    ``method`` is ``"spearman"`` or ``"kendall"``. E.g. ``paired_difference(t, "lswag", "params", "acc")``
    says whether L-SWAG ranks above #params with an interval that excludes 0.
    """
    if method not in ("spearman", "kendall"):
        raise ValueError(f"method must be 'spearman' or 'kendall', got {method!r}")
    validate_table(table, [a, b, accuracy])
    orientation = orient([a, b], higher_is_better)
    acc = table[accuracy].to_numpy(dtype=float, na_value=np.nan)
    va, vb = oriented_values(table, a, orientation), oriented_values(table, b, orientation)
    mask_a, why_a = usable_rows(va, acc, nonfinite)
    mask_b, why_b = usable_rows(vb, acc, nonfinite)
    mask = mask_a & mask_b
    why = "; ".join(f"{name}: {w}" for name, w in ((a, why_a), (b, why_b)) if w)
    xa, xb, y = va[mask], vb[mask], acc[mask]
    corr, boot = (spearman, bootstrap_spearman) if method == "spearman" else (kendall, bootstrap_kendall)
    rho_a, rho_b = corr(xa, y), corr(xb, y)
    lo = hi = p = math.nan
    if n_boot > 0 and len(y) >= 3:
        idx = _resample_indices(len(y), n_boot, seed)
        deltas = boot(xa, y, indices=idx) - boot(xb, y, indices=idx)
        lo, hi = percentile_interval(deltas, ci)
        finite = deltas[np.isfinite(deltas)]
        p = float(np.mean(finite <= 0)) if finite.size else math.nan
    return PairedDifference(
        a, b, method, int(mask.sum()), int((~mask).sum()), why, rho_a, rho_b, rho_a - rho_b, lo, hi, ci, n_boot, seed, p
    )


def rank_correlation_matrix(table: pd.DataFrame, columns: Iterable[str]) -> pd.DataFrame:
    """Spearman ρ between every pair of columns (raw values, pairwise-complete finite rows)."""
    columns = list(columns)
    validate_table(table, columns)
    data = table[columns].astype(float).replace([np.inf, -np.inf], np.nan)
    return data.corr(method="spearman")
