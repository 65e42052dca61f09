"""LIBRA (Low Information gain and Bias Re-Alignment): choosing and fusing three zero-cost proxies.

Implements METHOD.md §6 on a result table (architectures × proxy values, accuracy in %, #params):

1. Orient every proxy so that higher is better; ρ_z = Spearman(z, accuracy); z1 = the proxy with the highest ρ.
2. Window candidates: the other proxies with ρ_best − window < ρ_z ≤ ρ_best (window 0.1).
   IG(z) = H(y | z1) − H(y | z1, z), in bits, from plug-in entropies of joint bin counts. Each variable is
   rank-transformed, u = (average rank − 1) / n ∈ [0, 1), and cut into ``bins`` (24) equal-width bins of u, i.e.
   equal-frequency bins of the raw values (tied values share a bin); H(a | b) = H(a, b) − H(b).
   z2 = the candidate with the LOWEST information gain.
3. b_z = Spearman(oriented z, params), b_val = Spearman(accuracy, params); z3 = the remaining window candidate
   with the smallest |b_val − b_z|.
4. :func:`fuse` merges the chosen proxies by ranks within the pool being scored (``rank_mean``, the default, or
   the AZ-NAS style ``log_rank``).

Edge cases (each leaves a line in ``LibraSelection.notes``):
- no other proxy in the window -> the selection is [z1]; one candidate -> [z1, z2];
- non-finite proxy values (``nonfinite="drop_rows"``, default): a proxy with more than
  ``max_nonfinite_fraction`` (5%) non-finite rows is excluded; rows where a remaining proxy is NaN/±inf are then
  dropped, and the count is noted. ``nonfinite="exclude_proxy"`` excludes every proxy with any non-finite value;
  ``nonfinite="rank_last"`` keeps every row and ranks a NaN/-inf (oriented) value last and +inf first (AZ-NAS's
  rule for an identity block's -inf): each proxy is replaced by its average ranks, which changes no rank-based
  number (Spearman, equal-frequency bins, rank fusion);
- rows whose accuracy or params is not finite are dropped (noted);
- a proxy that is constant on the rows used is excluded (its ρ is undefined);
- fewer than ``min_rows`` (10) usable rows -> ``ValueError``.

Honesty: the ρ of a LIBRA selection on the rows it was selected on is optimistic. :func:`evaluate` reports the
fused score's ρ on held-out architectures over repeated random splits, next to the single best proxy and an
AZ-NAS style log-rank fusion of all proxies on the same splits, with the in-sample numbers labelled as such.
"""

from __future__ import annotations

import logging
import math
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd
from scipy import stats

from lswag_lightning.analysis.correlations import spearman
from lswag_lightning.analysis.fusion import FUSION_METHODS, greedy_log_rank, rank_fusion
from lswag_lightning.analysis.table import Orientation, orient, oriented_values, validate_table

log = logging.getLogger(__name__)

NONFINITE_POLICIES = ("drop_rows", "exclude_proxy", "rank_last")
ENTROPY_UNIT = "bits"


# ------------------------------------------------------------------------------------------------- entropy
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


# ------------------------------------------------------------------------------------------ data preparation
@dataclass
class _Prepared:
    """Oriented proxy values, accuracy and params on the usable rows (positions into the original table)."""

    values: dict[str, np.ndarray]
    accuracy: np.ndarray
    params: np.ndarray
    rows: np.ndarray  # positional indices of the kept rows in the original table
    orientation: Orientation
    excluded: dict[str, str]
    notes: list[str]
    n_input: int

    def subset(self, idx: np.ndarray) -> _Prepared:
        return _Prepared(
            {k: v[idx] for k, v in self.values.items()},
            self.accuracy[idx],
            self.params[idx],
            self.rows[idx],
            self.orientation,
            dict(self.excluded),
            list(self.notes),
            len(idx),
        )


def _prepare(
    table: pd.DataFrame,
    proxies: Sequence[str],
    accuracy: str,
    params: str,
    higher_is_better: Mapping[str, bool] | Orientation | None,
    nonfinite: str,
    max_nonfinite_fraction: float,
    min_rows: int,
) -> _Prepared:
    if nonfinite not in NONFINITE_POLICIES:
        raise ValueError(f"nonfinite must be one of {NONFINITE_POLICIES}, got {nonfinite!r}")
    proxies = list(dict.fromkeys(proxies))
    if not proxies:
        raise ValueError("LIBRA needs at least one proxy column")
    validate_table(table, [*proxies, accuracy, params])
    orientation = orient(proxies, higher_is_better)
    notes: list[str] = []
    excluded: dict[str, str] = {}
    n = len(table)
    acc = table[accuracy].to_numpy(dtype=float, na_value=np.nan)
    par = table[params].to_numpy(dtype=float, na_value=np.nan)
    keep = np.isfinite(acc) & np.isfinite(par)
    if (~keep).any():
        notes.append(
            f"{_rows(int((~keep).sum()))} of {n} dropped: accuracy {accuracy!r} or params {params!r} not finite"
        )
    values = {name: oriented_values(table, name, orientation) for name in proxies}
    base = int(keep.sum())
    for name in proxies:
        bad = keep & ~np.isfinite(values[name])
        count = int(bad.sum())
        if not count or nonfinite == "rank_last":
            continue
        if nonfinite == "exclude_proxy" or count > max_nonfinite_fraction * base:
            rule = (
                "nonfinite='exclude_proxy'"
                if nonfinite == "exclude_proxy"
                else f"more than {max_nonfinite_fraction:.0%} of rows"
            )
            excluded[name] = f"{count} of {base} rows NaN/inf ({rule})"
            notes.append(f"{name} excluded: {excluded[name]}")
    pool = [p for p in proxies if p not in excluded]
    if nonfinite == "rank_last":
        changed = 0
        for name in pool:
            v = values[name].copy()
            bad = keep & ~np.isfinite(v)
            changed += int(bad.any())
            v[np.isnan(v)] = -np.inf
            values[name] = np.where(keep, stats.rankdata(np.where(keep, v, -np.inf), method="average"), np.nan)
        if changed:
            notes.append(f"non-finite values of {changed} proxies ranked last (+inf first): every row kept")
    if nonfinite == "drop_rows":
        before = keep.copy()
        for name in pool:
            keep &= np.isfinite(values[name])
        dropped = before & ~keep
        if dropped.any():
            who = [p for p in pool if (before & ~np.isfinite(values[p])).any()]
            notes.append(f"{_rows(int(dropped.sum()))} dropped: NaN/inf in {', '.join(who)}")
    rows = np.flatnonzero(keep)
    if len(rows) < min_rows:
        raise ValueError(
            f"LIBRA needs at least {min_rows} architectures with finite accuracy, params and proxy "
            f"values; {len(rows)} of {n} rows are usable"
        )
    prepared = _Prepared(
        {p: values[p][rows] for p in pool}, acc[rows], par[rows], rows, orientation, excluded, notes, n
    )
    return prepared


# ---------------------------------------------------------------------------------------------- selection
@dataclass
class LibraSelection:
    """The proxies LIBRA chose and the numbers behind the choice.

    ``proxies`` is [z1, z2, z3] (shorter when the window holds fewer candidates). ``rho`` is each usable proxy's
    Spearman ρ with accuracy (oriented), ``info_gain`` the IG in bits of each window candidate given z1, ``bias``
    each usable proxy's Spearman ρ with params (oriented), ``bias_accuracy`` = Spearman(accuracy, params).
    ``candidates`` are the proxies inside the window (z1 excluded). ``excluded`` maps left-out proxies to why.
    """

    proxies: list[str]
    rho: dict[str, float]
    info_gain: dict[str, float]
    bias: dict[str, float]
    bias_accuracy: float
    candidates: list[str]
    notes: list[str] = field(default_factory=list)
    excluded: dict[str, str] = field(default_factory=dict)
    higher_is_better: dict[str, bool] = field(default_factory=dict)
    orientation_source: dict[str, str] = field(default_factory=dict)
    accuracy: str = ""
    params: str = ""
    window: float = 0.1
    bins: int = 24
    n_rows: int = 0
    n_input_rows: int = 0
    h_accuracy_given_z1: float = math.nan
    entropy_unit: str = ENTROPY_UNIT

    @property
    def z1(self) -> str:
        return self.proxies[0]

    @property
    def assumed_orientation(self) -> list[str]:
        return [n for n, s in self.orientation_source.items() if s == "assumed"]

    def to_dict(self) -> dict:
        """JSON-ready dict (NaN becomes None)."""
        return _jsonable(asdict(self))


def _select_prepared(
    prep: _Prepared,
    *,
    window: float,
    bins: int,
    accuracy: str = "",
    params: str = "",
) -> LibraSelection:
    notes = list(prep.notes)
    excluded = dict(prep.excluded)
    acc, par = prep.accuracy, prep.params
    pool = []
    for name, v in prep.values.items():
        if np.all(v == v[0]):
            excluded[name] = f"constant on the {len(v)} rows used (ρ undefined)"
            notes.append(f"{name} excluded: {excluded[name]}")
        else:
            pool.append(name)
    if not pool:
        raise ValueError(f"no usable proxy left for LIBRA; excluded: {excluded}")
    if np.all(acc == acc[0]):
        raise ValueError(f"accuracy {accuracy!r} is constant on the rows used; correlations are undefined")
    rho = {p: spearman(prep.values[p], acc) for p in pool}
    bias = {p: spearman(prep.values[p], par) for p in pool}
    bias_acc = spearman(acc, par)
    z1 = max(pool, key=lambda p: rho[p])  # first of the given order on ties
    tied = [p for p in pool if p != z1 and rho[p] == rho[z1]]
    if tied:
        notes.append(f"z1 tie: {', '.join(tied)} have the same ρ as {z1}; {z1} kept (first in the order given)")
    best = rho[z1]
    candidates = [p for p in pool if p != z1 and best - window < rho[p] <= best]
    y_bins, z1_bins = rank_bins(acc, bins), rank_bins(prep.values[z1], bins)
    h_y_z1 = conditional_entropy(y_bins, z1_bins)
    info_gain = {p: h_y_z1 - conditional_entropy(y_bins, z1_bins, rank_bins(prep.values[p], bins)) for p in candidates}
    chosen = [z1]
    if len(pool) == 1:
        notes.append(f"only one usable proxy ({z1}); the selection is [{z1}]")
    elif not candidates:
        runner = max((p for p in pool if p != z1), key=lambda p: rho[p])
        notes.append(
            f"no other proxy within {window:g} of ρ_best = {best:.3f} (next: {runner}, ρ = "
            f"{rho[runner]:.3f}); the selection is [{z1}] alone"
        )
    else:
        order = {p: i for i, p in enumerate(pool)}
        z2 = min(candidates, key=lambda p: (info_gain[p], -rho[p], order[p]))
        chosen.append(z2)
        rest = [p for p in candidates if p != z2]
        if not rest:
            notes.append(f"one candidate in the window ({z2}); the selection is [{z1}, {z2}] (no z3)")
        else:
            if math.isnan(bias_acc):
                notes.append(f"params {params!r} is constant: bias undefined; z3 = highest-ρ remaining candidate")
                z3 = max(rest, key=lambda p: (rho[p], -order[p]))
            else:
                z3 = min(
                    rest,
                    key=lambda p: (abs(bias_acc - bias[p]) if not math.isnan(bias[p]) else math.inf, -rho[p], order[p]),
                )
            chosen.append(z3)
    return LibraSelection(
        proxies=chosen,
        rho=rho,
        info_gain=info_gain,
        bias=bias,
        bias_accuracy=bias_acc,
        candidates=candidates,
        notes=notes,
        excluded=excluded,
        higher_is_better={p: prep.orientation.higher_is_better[p] for p in prep.orientation.higher_is_better},
        orientation_source=dict(prep.orientation.source),
        accuracy=accuracy,
        params=params,
        window=window,
        bins=bins,
        n_rows=len(acc),
        n_input_rows=prep.n_input,
        h_accuracy_given_z1=h_y_z1,
    )


def _check_options(window: float, bins: int) -> None:
    if not window > 0:
        raise ValueError(f"window must be > 0, got {window}")
    if int(bins) != bins or bins < 2:
        raise ValueError(f"bins must be an integer >= 2, got {bins}")


def select(
    table: pd.DataFrame,
    proxies: Sequence[str],
    accuracy: str,
    params: str = "params",
    window: float = 0.1,
    bins: int = 24,
    higher_is_better: Mapping[str, bool] | Orientation | None = None,
    *,
    nonfinite: str = "drop_rows",
    max_nonfinite_fraction: float = 0.05,
    min_rows: int = 10,
) -> LibraSelection:
    """Choose LIBRA's proxies [z1, z2, z3] on ``table`` (module docstring: algorithm and edge cases).

    ``accuracy`` and ``params`` are column names; ``higher_is_better`` overrides the registry's orientation
    (unknown names are assumed higher-is-better and listed in ``orientation_source``).
    """
    _check_options(window, bins)
    prep = _prepare(table, proxies, accuracy, params, higher_is_better, nonfinite, max_nonfinite_fraction, min_rows)
    return _select_prepared(prep, window=window, bins=int(bins), accuracy=accuracy, params=params)


# ------------------------------------------------------------------------------------------------- fusion
def fuse(
    table: pd.DataFrame,
    selection: LibraSelection | Sequence[str],
    method: str = "rank_mean",
    higher_is_better: Mapping[str, bool] | Orientation | None = None,
) -> pd.Series:
    """One score per row (higher = better) from several proxies, by their ranks within ``table`` (the pool).

    Each proxy is oriented, ranked (average ranks for ties, rank M = best of the M rows) and normalised to
    r / M ∈ (0, 1]. ``rank_mean``: mean of r / M over proxies, in (0, 1]. ``log_rank`` (AZ-NAS): Σ log(r / M),
    ≤ 0. A row with NaN in any fused proxy gets NaN; ±inf are ranked as the extremes they are. A
    :class:`LibraSelection` brings its own orientation; ``higher_is_better`` overrides it.
    """
    if isinstance(selection, LibraSelection):
        names = list(selection.proxies)
        mapping = dict(selection.higher_is_better)
        if isinstance(higher_is_better, Orientation):
            higher_is_better = higher_is_better.higher_is_better
        mapping.update(higher_is_better or {})
    else:
        names = [selection] if isinstance(selection, str) else list(selection)
        mapping = higher_is_better
    validate_table(table, names)
    orientation = orient(names, mapping)
    fused = rank_fusion([oriented_values(table, n, orientation) for n in names], method)
    return pd.Series(fused, index=table.index, name=f"libra_{method}")


# ------------------------------------------------------------------------------------------ honest evaluation
def _mean_std(values: Sequence[float]) -> tuple[float, float]:
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    if v.size == 0:
        return math.nan, math.nan
    return float(v.mean()), float(v.std(ddof=1)) if v.size > 1 else 0.0


@dataclass
class LibraEvaluation:
    """Held-out evaluation of LIBRA over repeated random fit/eval splits of the architectures.

    ``heldout[method]`` holds, per split, the Spearman ρ on the eval part of: ``libra`` (selected on the fit part,
    fused with ``fusion``), ``best_single`` (the single proxy with the best ρ on the fit part) and ``az_all``
    (AZ-NAS style log-rank fusion of all usable proxies; nothing is fitted). ``in_sample`` holds the same on the
    whole table with the selection made on it too: selection-set numbers, optimistic for ``libra``.
    ``triples`` counts how often each selection was made over the splits, most frequent first; ``greedy_sets``
    the same for the greedy log-rank sets. ``fixed:<name>`` and ``greedy`` entries appear when asked for.
    """

    accuracy: str
    params: str
    fusion: str
    window: float
    bins: int
    n_splits: int
    fit_fraction: float
    seed: int
    n_rows: int
    n_fit: int
    n_eval: int
    proxies: list[str]
    selection: LibraSelection
    in_sample: dict[str, float | str]
    heldout: dict[str, list[float]]
    best_single_names: list[str]
    triples: list[tuple[tuple[str, ...], int]]
    notes: list[str] = field(default_factory=list)
    greedy_sets: list[tuple[tuple[str, ...], int]] = field(default_factory=list)

    def summary(self) -> dict[str, dict[str, float]]:
        """{method: {"mean", "std"}} of held-out ρ over splits (std with ddof=1), plus ``libra_minus_best``."""
        out = {}
        for k, v in self.heldout.items():
            mean, std = _mean_std(v)
            out[k] = {"mean": mean, "std": std}
        diff = np.asarray(self.heldout["libra"]) - np.asarray(self.heldout["best_single"])
        mean, std = _mean_std(diff)
        out["libra_minus_best"] = {"mean": mean, "std": std}
        return out

    def to_dict(self) -> dict:
        """JSON-ready dict (NaN becomes None)."""
        d = asdict(self)
        d["selection"] = self.selection.to_dict()
        d["triples"] = [{"proxies": list(t), "count": c} for t, c in self.triples]
        d["greedy_sets"] = [{"proxies": list(t), "count": c} for t, c in self.greedy_sets]
        d["summary"] = self.summary()
        return _jsonable(d)


def _fused_rho(sub: _Prepared, names: Sequence[str], method: str) -> float:
    """Spearman ρ between the ``method`` fusion of ``names`` on ``sub`` and its accuracy."""
    return spearman(rank_fusion([sub.values[p] for p in names], method), sub.accuracy)


def _score_split(
    fit: _Prepared,
    ev: _Prepared,
    pool: Sequence[str],
    fixed: Mapping[str, Sequence[str]],
    greedy: bool,
    fusion: str,
    **select_options,
) -> tuple[LibraSelection, list | None, dict]:
    """One split of :func:`evaluate`: select on ``fit`` restricted to ``pool``; each method's held-out ρ on ``ev``
    (keys of ``LibraEvaluation.heldout``) and the greedy set grown on ``fit`` (None unless ``greedy``)."""
    fit.values = {p: fit.values[p] for p in pool}
    sel = _select_prepared(fit, **select_options)
    rhos = {
        "libra": _fused_rho(ev, sel.proxies, fusion),
        "best_single": spearman(ev.values[sel.z1], ev.accuracy),
        "az_all": _fused_rho(ev, pool, "log_rank"),
    }
    for name, names in fixed.items():
        rhos[f"fixed:{name}"] = _fused_rho(ev, names, "log_rank")
    chosen = None
    if greedy:
        chosen = greedy_log_rank({p: fit.values[p] for p in pool}, fit.accuracy, starts=fixed)
        rhos["greedy"] = _fused_rho(ev, chosen, "log_rank")
    return sel, chosen, rhos


def evaluate(
    table: pd.DataFrame,
    proxies: Sequence[str],
    accuracy: str,
    params: str = "params",
    n_splits: int = 20,
    fit_fraction: float = 0.5,
    seed: int = 0,
    *,
    window: float = 0.1,
    bins: int = 24,
    fusion: str = "rank_mean",
    higher_is_better: Mapping[str, bool] | Orientation | None = None,
    nonfinite: str = "drop_rows",
    max_nonfinite_fraction: float = 0.05,
    min_rows: int = 10,
    fixed_sets: Mapping[str, Sequence[str]] | None = None,
    greedy: bool = False,
) -> LibraEvaluation:
    """LIBRA's held-out ρ: on each of ``n_splits`` seeded random splits, select on ``fit_fraction`` of the usable
    rows and score Spearman of the fused score on the rest (see :class:`LibraEvaluation`).

    Non-finite handling and proxy exclusion (as in :func:`select`) are decided once on the whole table, so all
    splits and all methods see the same rows and the same proxy pool. ``fixed_sets`` ({name: proxies}) adds the
    log-rank fusion of each fixed set (``fixed:<name>``; nothing fitted); ``greedy`` adds the log-rank set grown
    on each fit part (``greedy``, :func:`lswag_lightning.analysis.fusion.greedy_log_rank`), starting from the best
    single proxy or from a fixed set when that one is better on the fit part.
    """
    _check_options(window, bins)
    if fusion not in FUSION_METHODS:
        raise ValueError(f"fusion must be one of {FUSION_METHODS}, got {fusion!r}")
    if n_splits < 1:
        raise ValueError(f"n_splits must be >= 1, got {n_splits}")
    if not 0.0 < fit_fraction < 1.0:
        raise ValueError(f"fit_fraction must be in (0, 1), got {fit_fraction}")
    bins = int(bins)
    prep = _prepare(table, proxies, accuracy, params, higher_is_better, nonfinite, max_nonfinite_fraction, min_rows)
    full = _select_prepared(prep, window=window, bins=bins, accuracy=accuracy, params=params)
    pool = [p for p in prep.values if p not in full.excluded]  # usable on the whole table
    n = len(prep.accuracy)
    n_fit = int(round(fit_fraction * n))
    n_eval = n - n_fit
    if n_fit < min_rows:
        raise ValueError(
            f"the fit part has {n_fit} rows (fit_fraction={fit_fraction} of {n}); LIBRA needs at least {min_rows}"
        )
    if n_eval < 3:
        raise ValueError(f"the held-out part has {n_eval} rows (of {n}); need at least 3")

    fixed = {name: list(names) for name, names in (fixed_sets or {}).items()}
    for name, names in fixed.items():
        missing = [p for p in names if p not in pool]
        if missing:
            raise ValueError(f"fixed set {name!r} names proxies outside the usable pool: {missing} (pool: {pool})")
    in_sample = {
        "libra": _fused_rho(prep, full.proxies, fusion),
        "best_single": full.z1,
        "best_single_rho": full.rho[full.z1],
        "az_all": _fused_rho(prep, pool, "log_rank"),
    }
    for name, names in fixed.items():
        in_sample[f"fixed:{name}"] = _fused_rho(prep, names, "log_rank")
    greedy_sets: Counter = Counter()
    if greedy:
        whole = greedy_log_rank({p: prep.values[p] for p in pool}, prep.accuracy, starts=fixed)
        in_sample["greedy"] = _fused_rho(prep, whole, "log_rank")
        in_sample["greedy_set"] = ",".join(whole)
    rng = np.random.default_rng(seed)
    heldout: dict[str, list[float]] = {
        "libra": [],
        "best_single": [],
        "az_all": [],
        **{f"fixed:{name}": [] for name in fixed},
        **({"greedy": []} if greedy else {}),
    }
    best_names, triples = [], Counter()
    notes = list(full.notes)
    for _ in range(n_splits):
        perm = rng.permutation(n)
        sel, chosen, rhos = _score_split(
            prep.subset(perm[:n_fit]),
            prep.subset(perm[n_fit:]),
            pool,
            fixed,
            greedy,
            fusion,
            window=window,
            bins=bins,
            accuracy=accuracy,
            params=params,
        )
        triples[tuple(sel.proxies)] += 1
        best_names.append(sel.z1)
        if chosen is not None:
            greedy_sets[tuple(chosen)] += 1
        for method, rho in rhos.items():
            heldout[method].append(rho)
    short = sum(c for t, c in triples.items() if len(t) < 3)
    if short:
        notes.append(f"{short} of {n_splits} splits selected fewer than 3 proxies (window edge cases)")
    return LibraEvaluation(
        accuracy=accuracy,
        params=params,
        fusion=fusion,
        window=window,
        bins=bins,
        n_splits=n_splits,
        fit_fraction=fit_fraction,
        seed=seed,
        n_rows=n,
        n_fit=n_fit,
        n_eval=n_eval,
        proxies=pool,
        selection=full,
        in_sample=in_sample,
        heldout=heldout,
        best_single_names=best_names,
        triples=sorted(triples.items(), key=lambda kv: (-kv[1], kv[0])),
        notes=notes,
        greedy_sets=sorted(greedy_sets.items(), key=lambda kv: (-kv[1], kv[0])),
    )


# ------------------------------------------------------------------------------------------------- helpers
def _rows(count: int) -> str:
    return f"{count} row" if count == 1 else f"{count} rows"


def _jsonable(obj):
    """Recursively turn numpy scalars into Python ones, tuples into lists and NaN/inf into None."""
    if isinstance(obj, Mapping):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, (np.bool_, bool)):
        return bool(obj)
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        return float(obj) if math.isfinite(obj) else None
    return obj
