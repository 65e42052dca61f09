"""``auto``: choose a ranking method by cross-validation inside the k labelled architectures, and say what held-out
ρ to expect from it.

Inside the labelled rows, ``repeats`` (10) seeded random splits each fit every candidate method on two thirds and
score Spearman ρ on the last third (at least 3 rows). The choice (``rule``):

- ``prefer_learned`` (default): the learned ranking, unless the candidate with the best mean inner ρ beats it on
  the same splits by more than one standard error of the paired differences;
- ``best``: the candidate with the highest mean inner ρ;
- ``one_se``: among the candidates within one standard error of the best mean, the one that fits least
  (``rankers.complexity``: fixed sets, then the best single proxy, LIBRA, the greedy set, the learned ranking).

The default was chosen by measurement on NAS-Bench-Suite-Zero's 14 TransNAS-Bench-101 tables, which no reported
number uses (10 draws per k, 10 inner splits): mean held-out ρ at k = 10 / 20 / 50 / 100 of 0.596 / 0.692 / 0.768 /
0.801 for ``prefer_learned``, 0.577 / 0.681 / 0.755 / 0.799 for ``best``, 0.550 / 0.669 / 0.728 / 0.793 for
``one_se`` (the learned ranking alone: 0.614 / 0.716 / 0.773 / 0.803; with few labels the inner estimates are too
noisy to beat it on average, but a fixed set that is clearly better, as on NAS-Bench-201, can still be taken).
The chosen method is then refitted on all k rows.

The expected held-out ρ is the chosen method's mean inner ρ, with the interval [10th, 90th percentile] of its inner
splits. Both come from the labelled rows only; :func:`lswag_lightning.analysis.budget.learning_curve` scores the
auto choice itself on the unlabelled rest (nested), and reports how often the rest's ρ fell inside the interval.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np

from lswag_lightning.analysis.correlations import spearman
from lswag_lightning.analysis.rankers import FittedRanking, MethodContext, complexity, fit_method

#: candidates of ``auto`` when none are named: every method the pool allows except ``auto`` itself
DEFAULT_AUTO_CANDIDATES = (
    "params",
    "best_single",
    "libra_log_rank",
    "greedy",
    "all_log_rank",
    "learned",
    "fixed:az",
    "fixed:vkdnw_agg",
    "default",
)
MIN_EVAL_ROWS = 3


def inner_scores(
    values: Mapping[str, np.ndarray], accuracy: np.ndarray, ctx: MethodContext, candidates: list[str]
) -> dict[str, list[float]]:
    """Inner-split Spearman ρ of each candidate (NaN where it could not be fitted or ρ is undefined)."""
    n = len(accuracy)
    n_eval = max(MIN_EVAL_ROWS, int(round(n / 3)))
    if n - n_eval < MIN_EVAL_ROWS:
        raise ValueError(f"auto needs at least {2 * MIN_EVAL_ROWS} labelled rows for its inner splits, got {n}")
    rng = np.random.default_rng(ctx.auto_seed)
    out: dict[str, list[float]] = {m: [] for m in candidates}
    for _ in range(ctx.auto_repeats):
        perm = rng.permutation(n)
        fit, ev = perm[n_eval:], perm[:n_eval]
        fit_values = {k: v[fit] for k, v in values.items()}
        ev_values = {k: v[ev] for k, v in values.items()}
        for method in candidates:
            try:
                ranking = fit_method(method, fit_values, accuracy[fit], ctx)
                out[method].append(spearman(ranking.score(ev_values), accuracy[ev]))
            except ValueError:
                out[method].append(math.nan)
    return out


AUTO_RULES = ("prefer_learned", "best", "one_se")


def choose(scores: Mapping[str, list[float]], rule: str = "prefer_learned") -> tuple[str, dict[str, dict[str, float]]]:
    """The choice (``rule``: module docstring) and each candidate's {mean, se, p10, p90} of inner ρ."""
    if rule not in AUTO_RULES:
        raise ValueError(f"auto rule must be one of {AUTO_RULES}, got {rule!r}")
    summary = {}
    for method, rhos in scores.items():
        v = np.asarray(rhos, dtype=float)
        v = v[np.isfinite(v)]
        if v.size == 0:
            continue
        se = float(v.std(ddof=1) / math.sqrt(v.size)) if v.size > 1 else math.inf
        summary[method] = {
            "mean": float(v.mean()),
            "se": se,
            "p10": float(np.percentile(v, 10)),
            "p90": float(np.percentile(v, 90)),
        }
    if not summary:
        raise ValueError("no auto candidate could be evaluated on the labelled rows")
    best = max(summary, key=lambda m: summary[m]["mean"])
    if rule == "best":
        return best, summary
    if rule == "prefer_learned":
        return _prefer_learned(scores, summary, best), summary
    bar = summary[best]["mean"] - (summary[best]["se"] if math.isfinite(summary[best]["se"]) else 0.0)
    close = [m for m in summary if summary[m]["mean"] >= bar]
    chosen = min(close, key=lambda m: (complexity(m), -summary[m]["mean"]))
    return chosen, summary


def _prefer_learned(scores: Mapping[str, list[float]], summary: Mapping[str, dict], best: str) -> str:
    """The learned ranking, unless the best candidate beats it on the same inner splits by more than one standard
    error of the paired differences."""
    if "learned" not in summary or best == "learned":
        return best
    diff = np.asarray(scores[best], dtype=float) - np.asarray(scores["learned"], dtype=float)
    diff = diff[np.isfinite(diff)]
    if diff.size < 2:
        return best
    return best if diff.mean() > diff.std(ddof=1) / math.sqrt(diff.size) else "learned"


def fit_auto(values: Mapping[str, np.ndarray], accuracy: np.ndarray, ctx: MethodContext) -> FittedRanking:
    """Choose among ``ctx.auto_candidates`` (default :data:`DEFAULT_AUTO_CANDIDATES`, those the pool allows) by
    inner cross-validation and refit the choice on every labelled row. ``detail`` holds the choice, the expected
    held-out ρ (``expected_rho``) with its interval (``interval``) and every candidate's inner summary."""
    accuracy = np.asarray(accuracy, dtype=float)
    values = {k: np.asarray(v, dtype=float) for k, v in values.items()}
    candidates = [m for m in (ctx.auto_candidates or DEFAULT_AUTO_CANDIDATES) if m != "auto" and ctx.available(m)]
    if not candidates:
        raise ValueError("auto has no candidate method on this pool")
    chosen, summary = choose(inner_scores(values, accuracy, ctx, candidates), ctx.auto_rule)
    ranking = fit_method(chosen, values, accuracy, ctx)
    detail = {
        "chosen": chosen,
        "chosen_detail": ranking.detail,
        "expected_rho": summary[chosen]["mean"],
        "interval": [summary[chosen]["p10"], summary[chosen]["p90"]],
        "inner": summary,
        "repeats": ctx.auto_repeats,
        "rule": ctx.auto_rule,
    }
    return FittedRanking(
        "auto", ranking.inputs, ranking.fusion, ranking.learned, detail, dict(ranking.higher_is_better)
    )


def fit_ranking(
    method: str, values: Mapping[str, np.ndarray], accuracy: np.ndarray, ctx: MethodContext
) -> FittedRanking:
    """Fit any method, ``auto`` included (:func:`fit_auto`; the others: :func:`rankers.fit_method`)."""
    if method == "auto":
        return fit_auto(values, accuracy, ctx)
    return fit_method(method, values, accuracy, ctx)
