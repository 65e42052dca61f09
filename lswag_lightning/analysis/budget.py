"""Label-budget learning curves: what ranking quality to expect, and from which method, when only k architectures
of a pool are trained.

For each budget k and each of ``draws`` seeded draws, k rows of the table are the labelled architectures; every
method (:mod:`lswag_lightning.analysis.rankers`, ``auto`` included) is fitted on them alone and scored by Spearman ρ
on ALL the other rows. Draw d of budget k takes the first k rows of the d-th permutation of a
``numpy.random.default_rng(seed)`` stream started afresh for each k, the same draws for every method (so the
differences are paired) and the same halves as :func:`lswag_lightning.analysis.libra.evaluate` when k is its
``round(fit_fraction * n)``.

Rows and proxies: :func:`lswag_lightning.analysis.rows.prepare_rows` with the ``nonfinite`` policy (default
``rank_last``: every row kept, NaN ranked last); a proxy constant on all usable rows is left out (noted). Structure
``features`` feed the learned ranking only, taken as they are (NaN ranks last).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from lswag_lightning.analysis.auto import fit_ranking
from lswag_lightning.analysis.correlations import spearman
from lswag_lightning.analysis.learned import LearnedConfig
from lswag_lightning.analysis.rankers import BASE_METHODS, PUBLISHED_FIXED_SETS, MethodContext
from lswag_lightning.analysis.rows import prepare_rows
from lswag_lightning.analysis.table import orient, validate_table

SUMMARY_COLUMNS = (
    "accuracy",
    "budget",
    "method",
    "rho_mean",
    "rho_std",
    "draws",
    "minus_params_mean",
    "minus_params_std",
    "minus_best_single_mean",
    "minus_best_single_std",
)


def _mean_std(values) -> tuple[float, float, int]:
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    if v.size == 0:
        return math.nan, math.nan, 0
    return float(v.mean()), float(v.std(ddof=1)) if v.size > 1 else 0.0, int(v.size)


@dataclass
class LearningCurve:
    """Held-out ρ per (budget, method) and draw, and what auto chose and expected.

    ``rho[(k, method)]`` lists one Spearman ρ per draw on the unlabelled rows (NaN where the method could not be
    fitted, noted in ``notes``). ``auto[k]`` lists, per draw, auto's choice, its expected ρ and interval.
    """

    accuracy: str
    budgets: list[int]
    methods: list[str]
    draws: int
    seed: int
    n_rows: int
    proxies: list[str]
    features: list[str]
    rho: dict[tuple[int, str], list[float]] = field(default_factory=dict)
    chosen: dict[tuple[int, str], Counter] = field(default_factory=dict)
    auto: dict[int, list[dict]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def _paired(self, k: int, method: str, reference: str) -> tuple[float, float]:
        if (k, reference) not in self.rho:
            return math.nan, math.nan
        diff = np.asarray(self.rho[(k, method)]) - np.asarray(self.rho[(k, reference)])
        mean, std, _ = _mean_std(diff)
        return mean, std

    def frame(self) -> pd.DataFrame:
        """One row per (budget, method): :data:`SUMMARY_COLUMNS` (mean ± std over draws, std with ddof=1; the
        differences to #params and to the best single proxy are paired per draw)."""
        rows = []
        for k in self.budgets:
            for method in self.methods:
                mean, std, n = _mean_std(self.rho[(k, method)])
                dp, dps = self._paired(k, method, "params")
                db, dbs = self._paired(k, method, "best_single")
                rows.append((self.accuracy, k, method, mean, std, n, dp, dps, db, dbs))
        return pd.DataFrame(rows, columns=list(SUMMARY_COLUMNS))

    def draws_frame(self) -> pd.DataFrame:
        """Long format: one row per (budget, method, draw) with its held-out ρ."""
        rows = [(self.accuracy, k, m, d, r) for (k, m), rhos in self.rho.items() for d, r in enumerate(rhos)]
        return pd.DataFrame(rows, columns=["accuracy", "budget", "method", "draw", "rho"])

    def auto_frame(self) -> pd.DataFrame:
        """Per budget: auto's realised held-out ρ, its expected ρ (inner CV), how often the realised ρ fell inside
        the expected interval, and its choices over the draws (most frequent first)."""
        rows = []
        for k, entries in self.auto.items():
            realised = np.asarray(self.rho[(k, "auto")], dtype=float)
            expected = np.asarray([e["expected_rho"] for e in entries], dtype=float)
            inside = [e["interval"][0] <= realised[e["draw"]] <= e["interval"][1] for e in entries]
            counts = Counter(e["chosen"] for e in entries)
            rows.append(
                (
                    self.accuracy,
                    k,
                    _mean_std(realised)[0],
                    _mean_std(expected)[0],
                    float(np.mean(inside)) if inside else math.nan,
                    "; ".join(f"{m} x{c}" for m, c in counts.most_common()),
                )
            )
        columns = ["accuracy", "budget", "rho_mean", "expected_rho_mean", "interval_coverage", "chosen"]
        return pd.DataFrame(rows, columns=columns)


def default_methods(fixed_sets: Mapping[str, Sequence[str]], with_default: bool) -> list[str]:
    """Every base method, ``fixed:<name>`` per fixed set, ``default`` when available, then ``auto``."""
    return [*BASE_METHODS, *(f"fixed:{n}" for n in fixed_sets), *(["default"] if with_default else []), "auto"]


def _check_budgets(budgets: Sequence[int], n: int) -> list[int]:
    out = sorted({int(k) for k in budgets})
    bad = [k for k in out if k < 3 or k > n - 3]
    if bad:
        raise ValueError(f"budgets must be between 3 and n - 3 = {n - 3} labelled rows (n = {n}); got {bad}")
    return out


@dataclass
class Pool:
    """The usable rows of a table as the methods see them: oriented ``values`` (proxies, #params, features),
    ``accuracy``, the kept table rows (positions), the method context and the notes on what was left out."""

    values: dict[str, np.ndarray]
    accuracy: np.ndarray
    rows: np.ndarray
    ctx: MethodContext
    notes: list[str]


def prepare_pool(
    table: pd.DataFrame,
    proxies: Sequence[str],
    accuracy: str,
    *,
    params: str = "params",
    features: Sequence[str] = (),
    fixed_sets: Mapping[str, Sequence[str]] | None = None,
    default_set: Sequence[str] = (),
    nonfinite: str = "rank_last",
    higher_is_better: Mapping[str, bool] | None = None,
    window: float = 0.1,
    bins: int = 24,
    learned: LearnedConfig | None = None,
    auto_candidates: Sequence[str] = (),
    auto_repeats: int = 10,
    auto_rule: str = "prefer_learned",
    min_rows: int = 10,
) -> Pool:
    """The :class:`Pool` of ``table`` (rows and proxies as the module docstring says). ``fixed_sets`` None: the
    published sets (:data:`PUBLISHED_FIXED_SETS`) whose proxies are all in the pool; ``default_set``: the k = 0
    default's proxies (method ``default``)."""
    features = [f for f in dict.fromkeys(features) if f not in proxies]
    validate_table(table, features)
    prep = prepare_rows(table, proxies, accuracy, params, higher_is_better, nonfinite, 0.05, min_rows)
    pool = [p for p in prep.values if not np.all(prep.values[p] == prep.values[p][0])]
    notes = list(prep.notes) + [f"{p} left out: constant on all usable rows" for p in prep.values if p not in pool]
    if fixed_sets is None:
        fixed = {k: list(v) for k, v in PUBLISHED_FIXED_SETS.items() if all(p in pool for p in v)}
    else:
        fixed = {k: list(v) for k, v in fixed_sets.items()}
        for name, names in fixed.items():
            missing = [p for p in names if p not in pool]
            if missing:
                raise ValueError(f"fixed set {name!r} names proxies outside the usable pool: {missing}")
    values = {p: prep.values[p] for p in pool}
    values.setdefault(params, prep.params)
    for f in features:
        values[f] = table[f].to_numpy(dtype=float, na_value=np.nan)[prep.rows]
    ctx = MethodContext(
        proxies=pool,
        features=features,
        fixed_sets=fixed,
        params=params,
        window=window,
        bins=int(bins),
        learned=learned or LearnedConfig(),
        orientation=orient([*pool, *features], {**{f: True for f in features}, **dict(higher_is_better or {})}),
        default_set=list(default_set),
        auto_candidates=tuple(auto_candidates),
        auto_repeats=auto_repeats,
        auto_rule=auto_rule,
    )
    return Pool(values, prep.accuracy, prep.rows, ctx, notes)


def learning_curve(
    table: pd.DataFrame,
    proxies: Sequence[str],
    accuracy: str,
    budgets: Sequence[int],
    *,
    methods: Sequence[str] | None = None,
    draws: int = 20,
    seed: int = 0,
    **pool_options,
) -> LearningCurve:
    """Held-out ρ of each method at each label budget (module docstring). ``pool_options`` go to
    :func:`prepare_pool` (params, features, fixed_sets, default_set, nonfinite, higher_is_better, window, bins,
    learned, auto_candidates, auto_repeats, auto_rule); ``methods`` None: :func:`default_methods`."""
    if draws < 1:
        raise ValueError(f"draws must be >= 1, got {draws}")
    pool = prepare_pool(table, proxies, accuracy, **pool_options)
    ctx = pool.ctx
    methods = list(methods) if methods is not None else default_methods(ctx.fixed_sets, ctx.available("default"))
    unknown = [m for m in methods if not ctx.available(m)]
    if unknown:
        raise ValueError(f"methods not available on this table: {unknown} (fixed sets: {sorted(ctx.fixed_sets)})")
    n = len(pool.accuracy)
    budgets = _check_budgets(budgets, n)
    curve = LearningCurve(accuracy, budgets, methods, draws, seed, n, ctx.proxies, ctx.features, notes=pool.notes)
    for k in curve.budgets:
        _run_budget(curve, k, pool.values, pool.accuracy, ctx)
    return curve


def _run_budget(curve: LearningCurve, k: int, values, accuracy: np.ndarray, ctx: MethodContext) -> None:
    rng = np.random.default_rng(curve.seed)
    failures: Counter = Counter()
    for method in curve.methods:
        curve.rho[(k, method)] = []
        curve.chosen[(k, method)] = Counter()
    curve.auto[k] = [] if "auto" in curve.methods else curve.auto.get(k, [])
    for draw in range(curve.draws):
        perm = rng.permutation(curve.n_rows)
        lab, rest = perm[:k], perm[k:]
        lab_values = {name: v[lab] for name, v in values.items()}
        rest_values = {name: v[rest] for name, v in values.items()}
        for method in curve.methods:
            try:
                ranking = fit_ranking(method, lab_values, accuracy[lab], ctx)
            except ValueError as err:
                failures[(method, str(err))] += 1
                curve.rho[(k, method)].append(math.nan)
                continue
            curve.rho[(k, method)].append(spearman(ranking.score(rest_values), accuracy[rest]))
            if method == "auto":
                curve.auto[k].append({"draw": draw, **ranking.detail})
                curve.chosen[(k, method)][ranking.detail["chosen"]] += 1
            else:
                curve.chosen[(k, method)][",".join(ranking.inputs) if ranking.learned is None else "learned"] += 1
    for (method, why), count in failures.items():
        curve.notes.append(f"k = {k}: {method} could not be fitted in {count} of {curve.draws} draws ({why})")
    if not curve.auto[k]:
        del curve.auto[k]
