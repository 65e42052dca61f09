"""The demo's label-budget lines, on the published-truth cells (:mod:`lswag_lightning.demo.nb201_truth`).

Two questions a user with a new space asks, answered on the shipped NAS-Bench-201 cells and their published
accuracies:

- k = 0, nothing trained: how well does the shipped default ranking (``conf/ranking/default.yaml``: the log-rank
  fusion of MeCo, #params and AZ-NAS expressivity, chosen across four benchmarks) order the cells, beside #params
  and L-SWAG? Spearman ρ on all cells, NaN/-inf ranked last. NAS-Bench-201 was one of the benchmarks it was chosen
  on (its full-size networks on CIFAR-10 images, not these 1-cell-per-stage networks on digits), so this is not a
  held-out number; ``docs/results/label-budget.md`` has the leave-one-benchmark-out ones.
- k trained: :func:`lswag_lightning.analysis.learning_curve` on CIFAR-10 at k = 10 / 20 / 50 (:data:`DRAWS` seeded
  draws each; every method fitted on the k cells, Spearman ρ on the rest): #params, the best single proxy, the
  learned ranking, the default and ``auto``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

#: the short curve of the demo: one accuracy column, three budgets, few draws (about 11 CPU seconds on 200 cells)
ACCURACY = "cifar10_test_acc"
BUDGETS = (10, 20, 50)
DRAWS = 5
METHODS = ("params", "best_single", "learned", "default", "auto")


def default_proxies() -> list[str]:
    """The shipped k = 0 ranking's proxies (the demo scores them beside its classic ones)."""
    from lswag_lightning.analysis.defaults import load_default

    return list(load_default().proxies)


def _rho(scores: np.ndarray, accuracy: np.ndarray) -> float | None:
    from lswag_lightning.analysis.correlations import spearman

    value = spearman(np.where(np.isnan(scores), -np.inf, scores), accuracy)
    return float(value) if math.isfinite(value) else None


def budget_summary(
    table: pd.DataFrame,
    proxies: Sequence[str],
    accuracies: Sequence[str],
    *,
    budgets: Sequence[int] = BUDGETS,
    draws: int = DRAWS,
    seed: int = 0,
) -> dict[str, Any]:
    """``{"default": {"proxies", "rho": {accuracy: {"default", "params", "lswag"}}}, "curve": {...}}`` of a scored
    cells table (module docstring). ``curve`` holds ``accuracy``, ``budgets``, ``draws`` and ``rows`` (budget,
    method, rho_mean, rho_std), or ``error`` when the table is too small for the budgets."""
    from lswag_lightning.analysis import learning_curve
    from lswag_lightning.analysis.defaults import load_default
    from lswag_lightning.analysis.table import orient, oriented_values

    default = load_default()
    rho: dict[str, dict[str, float | None]] = {}
    for acc in accuracies:
        y = table[acc].to_numpy(dtype=float)
        entry = {"default": _rho(default.score_table(table), y)}
        for name in ("params", "lswag"):
            entry[name] = _rho(oriented_values(table, name, orient([name])), y) if name in table.columns else None
        rho[acc] = entry
    out: dict[str, Any] = {"default": {"proxies": list(default.proxies), "rho": rho}}
    accuracy = ACCURACY if ACCURACY in accuracies else accuracies[0]
    usable = [b for b in budgets if b <= len(table) - 3]
    curve: dict[str, Any] = {"accuracy": accuracy, "budgets": usable, "draws": draws}
    if not usable:
        curve["error"] = f"{len(table)} cells: too few for the budgets {list(budgets)}"
        out["curve"] = curve
        return out
    try:
        result = learning_curve(
            table,
            list(proxies),
            accuracy,
            usable,
            methods=list(METHODS),
            draws=draws,
            seed=seed,
            fixed_sets={},
            default_set=list(default.proxies),
        )
    except ValueError as err:
        curve["error"] = str(err)
        out["curve"] = curve
        return out
    frame = result.frame()
    curve["rows"] = [
        {"budget": int(r.budget), "method": r.method, "rho_mean": float(r.rho_mean), "rho_std": float(r.rho_std)}
        for r in frame.itertuples()
    ]
    out["curve"] = curve
    return out


def format_budget(summary: Mapping[str, Any]) -> str:
    """The label-budget lines for a terminal: the k = 0 default beside #params and L-SWAG, then the short curve."""

    def fmt(v: Any) -> str:
        return "n/a" if v is None or not math.isfinite(v) else f"{v:.3f}"

    default = summary["default"]
    lines = [
        f"k = 0 (nothing trained): the shipped default ranking, log-rank of {', '.join(default['proxies'])} "
        "(chosen across NB101/NB201/NB301/AutoFormer-Ti, so not held out here):",
        f"{'ranking':<22}" + "".join(f"{a.split('_')[0]:>16}" for a in default["rho"]),
    ]
    for name in ("default", "params", "lswag"):
        lines.append(f"{name:<22}" + "".join(f"{fmt(r[name]):>16}" for r in default["rho"].values()))
    curve = summary["curve"]
    if "error" in curve:
        lines.append(f"label-budget curve skipped: {curve['error']}")
        return "\n".join(lines)
    budgets = curve["budgets"]
    lines += [
        "",
        f"k trained cells (held-out ρ with {curve['accuracy']} on the other cells, mean ± std over "
        f"{curve['draws']} draws):",
        f"{'method':<22}" + "".join(f"{'k = ' + str(k):>16}" for k in budgets),
    ]
    by = {(r["budget"], r["method"]): r for r in curve["rows"]}
    for method in METHODS:
        cells = [by.get((k, method)) for k in budgets]
        lines.append(
            f"{method:<22}"
            + "".join(f"{fmt(c['rho_mean']) + ' ± ' + fmt(c['rho_std']) if c else 'n/a':>16}" for c in cells)
        )
    return "\n".join(lines)
