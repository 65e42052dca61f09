"""The demo's label-budget lines on the published-truth cells: the shipped k = 0 default beside #params and L-SWAG
(checked by hand on planted columns), and a short learning curve (small draws)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from lswag_lightning.demo.nb201_budget import METHODS, budget_summary, default_proxies, format_budget
from lswag_lightning.demo.nb201_truth import ACCURACIES, load_cells


def _planted(n: int = 40) -> pd.DataFrame:
    """Shipped cells with their published accuracies and stand-in values of the default's proxies (every one
    higher-is-better): the first follows CIFAR-10, the others are noise; params is noise too."""
    rng = np.random.default_rng(0)
    table = load_cells().head(n).copy()
    proxies = default_proxies()
    for name in proxies:
        table[name] = rng.normal(size=n)
    table[proxies[0]] = table["cifar10_test_acc"].to_numpy()
    table["params"] = rng.uniform(1e5, 1e6, n)
    return table


def test_k0_default_is_the_log_rank_of_its_proxies_by_hand():
    table = _planted()
    proxies = default_proxies()
    summary = budget_summary(table, proxies, ACCURACIES, budgets=(10,), draws=2)
    by_hand = sum(np.log(stats.rankdata(table[p]) / len(table)) for p in proxies)
    for acc in ACCURACIES:
        rho = summary["default"]["rho"][acc]
        assert rho["default"] == pytest.approx(stats.spearmanr(by_hand, table[acc]).statistic)
        assert rho["params"] == pytest.approx(stats.spearmanr(table["params"], table[acc]).statistic)
        assert rho["lswag"] is None  # not in this table
    assert summary["default"]["proxies"] == proxies


def test_short_curve_rows_and_text():
    table = _planted()
    summary = budget_summary(table, default_proxies(), ACCURACIES, budgets=(10, 20, 50), draws=3)
    curve = summary["curve"]
    assert curve["accuracy"] == "cifar10_test_acc" and curve["budgets"] == [10, 20]  # 50 > 40 - 3 is dropped
    assert {(r["budget"], r["method"]) for r in curve["rows"]} == {(k, m) for k in (10, 20) for m in METHODS}
    # the first default proxy IS the CIFAR-10 accuracy: the best single proxy chosen on k cells finds it
    best = [r for r in curve["rows"] if r["method"] == "best_single"]
    assert all(r["rho_mean"] == pytest.approx(1.0) for r in best)
    text = format_budget(summary)
    assert "k = 0 (nothing trained)" in text and "k = 10" in text and "best_single" in text


def test_too_few_cells_skip_the_curve_with_the_reason():
    summary = budget_summary(_planted(8), default_proxies(), ACCURACIES)
    assert "too few for the budgets" in summary["curve"]["error"]
    assert "label-budget curve skipped" in format_budget(summary)
