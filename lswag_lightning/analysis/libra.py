"""LIBRA (Low Information gain and Bias Re-Alignment), evaluated honestly: :func:`evaluate` selects on random
halves of the architectures and scores the fused ranking on the other halves (METHOD.md §6's honesty rule).

The selection itself (:func:`select`, :class:`LibraSelection`, :func:`fuse`) lives in
:mod:`lswag_lightning.analysis.libra_select`, the entropies in :mod:`lswag_lightning.analysis.entropy` and the row
handling (non-finite values, ``NONFINITE_POLICIES``) in :mod:`lswag_lightning.analysis.rows`; all of them are
importable from here too, as LIBRA's public names.

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

from lswag_lightning.analysis.correlations import spearman
from lswag_lightning.analysis.entropy import (  # noqa: F401 - LIBRA's public names, one import away
    ENTROPY_UNIT,
    conditional_entropy,
    information_gain,
    joint_entropy,
    rank_bins,
)
from lswag_lightning.analysis.fusion import FUSION_METHODS, greedy_log_rank, rank_fusion
from lswag_lightning.analysis.libra_select import (  # noqa: F401
    LibraSelection,
    check_select_options,
    fuse,
    select,
    select_rows,
)
from lswag_lightning.analysis.rows import NONFINITE_POLICIES, PreparedRows, jsonable, prepare_rows  # noqa: F401
from lswag_lightning.analysis.table import Orientation

log = logging.getLogger(__name__)


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
        return jsonable(d)


def _fused_rho(sub: PreparedRows, names: Sequence[str], method: str) -> float:
    """Spearman ρ between the ``method`` fusion of ``names`` on ``sub`` and its accuracy."""
    return spearman(rank_fusion([sub.values[p] for p in names], method), sub.accuracy)


def _score_split(
    fit: PreparedRows,
    ev: PreparedRows,
    pool: Sequence[str],
    fixed: Mapping[str, Sequence[str]],
    greedy: bool,
    fusion: str,
    **select_options,
) -> tuple[LibraSelection, list | None, dict]:
    """One split of :func:`evaluate`: select on ``fit`` restricted to ``pool``; each method's held-out ρ on ``ev``
    (keys of ``LibraEvaluation.heldout``) and the greedy set grown on ``fit`` (None unless ``greedy``)."""
    fit.values = {p: fit.values[p] for p in pool}
    sel = select_rows(fit, **select_options)
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
    _check_evaluate_options(window, bins, fusion, n_splits, fit_fraction)
    bins = int(bins)
    prep = prepare_rows(table, proxies, accuracy, params, higher_is_better, nonfinite, max_nonfinite_fraction, min_rows)
    full = select_rows(prep, window=window, bins=bins, accuracy=accuracy, params=params)
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
    in_sample = _in_sample_rhos(prep, full, pool, fixed, greedy, fusion)
    split_kwargs = dict(window=window, bins=bins, accuracy=accuracy, params=params)
    heldout, best_names, triples, greedy_sets = _heldout_splits(
        prep, pool, fixed, greedy, fusion, n_splits, n_fit, seed, split_kwargs
    )
    notes = list(full.notes)
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


def _check_evaluate_options(window: float, bins: int, fusion: str, n_splits: int, fit_fraction: float) -> None:
    """Reject :func:`evaluate`'s bad options before any row is read."""
    check_select_options(window, bins)
    if fusion not in FUSION_METHODS:
        raise ValueError(f"fusion must be one of {FUSION_METHODS}, got {fusion!r}")
    if n_splits < 1:
        raise ValueError(f"n_splits must be >= 1, got {n_splits}")
    if not 0.0 < fit_fraction < 1.0:
        raise ValueError(f"fit_fraction must be in (0, 1), got {fit_fraction}")


def _in_sample_rhos(prep, full, pool: list[str], fixed: dict[str, list[str]], greedy: bool, fusion: str) -> dict:
    """Every method's ρ when it is chosen and scored on all rows (optimistic; reported beside the held-out ρ)."""
    in_sample = {
        "libra": _fused_rho(prep, full.proxies, fusion),
        "best_single": full.z1,
        "best_single_rho": full.rho[full.z1],
        "az_all": _fused_rho(prep, pool, "log_rank"),
    }
    for name, names in fixed.items():
        in_sample[f"fixed:{name}"] = _fused_rho(prep, names, "log_rank")
    if greedy:
        whole = greedy_log_rank({p: prep.values[p] for p in pool}, prep.accuracy, starts=fixed)
        in_sample["greedy"] = _fused_rho(prep, whole, "log_rank")
        in_sample["greedy_set"] = ",".join(whole)
    return in_sample


def _heldout_splits(prep, pool, fixed, greedy, fusion, n_splits, n_fit, seed, split_kwargs):
    """Select on ``n_fit`` seeded random rows, score on the rest, ``n_splits`` times: (held-out ρ per method, the
    best single proxy per split, LIBRA's triples counted, greedy sets counted)."""
    rng = np.random.default_rng(seed)
    heldout: dict[str, list[float]] = {
        "libra": [],
        "best_single": [],
        "az_all": [],
        **{f"fixed:{name}": [] for name in fixed},
        **({"greedy": []} if greedy else {}),
    }
    best_names: list[str] = []
    triples: Counter = Counter()
    greedy_sets: Counter = Counter()
    n = len(prep.accuracy)
    for _ in range(n_splits):
        perm = rng.permutation(n)
        sel, chosen, rhos = _score_split(
            prep.subset(perm[:n_fit]), prep.subset(perm[n_fit:]), pool, fixed, greedy, fusion, **split_kwargs
        )
        triples[tuple(sel.proxies)] += 1
        best_names.append(sel.z1)
        if chosen is not None:
            greedy_sets[tuple(chosen)] += 1
        for method, rho in rhos.items():
            heldout[method].append(rho)
    return heldout, best_names, triples, greedy_sets
