"""Spearman / Kendall with bootstrap intervals, the top-10% hit rate, non-finite handling, paired differences."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from lswag_lightning.analysis import table as table_mod
from lswag_lightning.analysis.correlations import (
    bootstrap_kendall,
    bootstrap_spearman,
    correlation_table,
    paired_difference,
    rank_correlation_matrix,
    top_hit_rate,
)


@pytest.fixture(autouse=True)
def _no_registry(monkeypatch):
    monkeypatch.setattr(table_mod, "registry_higher_is_better", lambda name: None)


def _synthetic(n: int = 120, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    acc = rng.normal(size=n)
    return pd.DataFrame(
        {
            "acc": 70 + 5 * acc,
            "good": acc + 0.3 * rng.normal(size=n),
            "weak": acc + 2.0 * rng.normal(size=n),
            "loss": -acc + 0.3 * rng.normal(size=n),
            "ties": np.round(acc + 0.5 * rng.normal(size=n)),
        }
    )


def test_point_estimates_equal_scipy():
    t = _synthetic()
    ct = correlation_table(t, ["good", "weak", "ties"], "acc", n_boot=0)
    for row in ct.itertuples():
        assert row.spearman == pytest.approx(stats.spearmanr(t[row.proxy], t["acc"]).statistic, abs=1e-12)
        assert row.kendall == pytest.approx(stats.kendalltau(t[row.proxy], t["acc"]).statistic, abs=1e-12)
        assert row.n == len(t) and row.n_excluded == 0 and row.excluded == ""
    assert np.isnan(ct["spearman_lo"]).all()
    assert list(ct["orientation"]) == ["assumed"] * 3


def test_vectorised_bootstrap_equals_scipy_on_each_resample():
    t = _synthetic(60)
    x, y = t["ties"].to_numpy(), t["acc"].to_numpy()
    idx = np.random.default_rng(5).integers(0, 60, size=(40, 60))
    expect_s = [stats.spearmanr(x[r], y[r]).statistic for r in idx]
    expect_k = [stats.kendalltau(x[r], y[r]).statistic for r in idx]
    np.testing.assert_allclose(bootstrap_spearman(x, y, indices=idx), expect_s, atol=1e-12)
    np.testing.assert_allclose(bootstrap_kendall(x, y, indices=idx), expect_k, atol=1e-12)
    x = x.copy()
    x[:3] = [-np.inf, -np.inf, np.inf]  # nonfinite="rank" keeps infinities as extreme ranks
    np.testing.assert_allclose(
        bootstrap_spearman(x, y, indices=idx), [stats.spearmanr(x[r], y[r]).statistic for r in idx], atol=1e-12
    )
    np.testing.assert_allclose(
        bootstrap_kendall(x, y, indices=idx), [stats.kendalltau(x[r], y[r]).statistic for r in idx], atol=1e-12
    )


def test_rank_correlation_matrix():
    t = _synthetic()
    m = rank_correlation_matrix(t, ["good", "loss", "acc"])
    assert m.loc["good", "loss"] == pytest.approx(stats.spearmanr(t["good"], t["loss"]).statistic)
    assert m.loc["acc", "acc"] == 1.0


def test_bootstrap_interval_contains_estimate_and_is_seeded():
    t = _synthetic()
    a = correlation_table(t, ["good", "weak"], "acc", n_boot=300, seed=3)
    b = correlation_table(t, ["good", "weak"], "acc", n_boot=300, seed=3)
    c = correlation_table(t, ["good", "weak"], "acc", n_boot=300, seed=4)
    pd.testing.assert_frame_equal(a, b)
    assert not np.allclose(a["spearman_lo"], c["spearman_lo"])
    for row in a.itertuples():
        assert row.spearman_lo < row.spearman < row.spearman_hi
        assert row.kendall_lo < row.kendall < row.kendall_hi
    weak = a.set_index("proxy").loc["weak"]
    good = a.set_index("proxy").loc["good"]
    assert weak.spearman_hi - weak.spearman_lo > good.spearman_hi - good.spearman_lo


def test_top_hit_rate_by_hand():
    acc = np.arange(20.0)  # the true top 10% (k = 2) are rows 18 and 19
    proxy = np.zeros(20)
    proxy[[19, 5]] = [10.0, 9.0]
    assert top_hit_rate(proxy, acc) == pytest.approx(0.5)
    proxy[[19, 5, 6]] = 10.0  # 3 tied for 2 places: row 19 is in the proxy's top 2 with probability 2/3
    assert top_hit_rate(proxy, acc) == pytest.approx((2 / 3) / 2)
    assert top_hit_rate(acc, acc) == 1.0
    assert top_hit_rate(-acc, acc) == 0.0
    assert top_hit_rate(acc[:15], acc[:15], fraction=0.1) == 1.0  # k = ceil(1.5) = 2


def test_lower_is_better_is_flipped_before_ranking():
    t = _synthetic()
    raw = correlation_table(t, ["loss"], "acc", n_boot=0)
    flipped = correlation_table(t, ["loss"], "acc", n_boot=0, higher_is_better={"loss": False})
    assert raw["spearman"][0] < -0.9
    assert flipped["spearman"][0] == pytest.approx(-raw["spearman"][0])
    assert flipped["top_hit"][0] > 0.5 and raw["top_hit"][0] == 0.0
    assert not flipped["higher_is_better"][0] and flipped["orientation"][0] == "override"


def test_nonfinite_rows_are_counted_not_hidden():
    t = _synthetic(50)
    t.loc[[0, 1], "good"] = np.nan
    t.loc[2, "good"] = -np.inf
    t.loc[3, "acc"] = np.nan
    ct = correlation_table(t, ["good", "weak"], "acc", n_boot=50).set_index("proxy")
    assert ct.loc["good", "n"] == 46 and ct.loc["good", "n_excluded"] == 4
    assert ct.loc["good", "excluded"] == "2 NaN in proxy; 1 non-finite accuracy; 1 -inf in proxy"
    assert ct.loc["weak", "n_excluded"] == 1
    kept = t.drop(index=[0, 1, 2, 3])
    assert ct.loc["good", "spearman"] == pytest.approx(stats.spearmanr(kept["good"], kept["acc"]).statistic)
    ranked = correlation_table(t, ["good"], "acc", n_boot=0, nonfinite="rank").set_index("proxy")
    assert ranked.loc["good", "n"] == 47  # -inf kept as the lowest rank


def test_paired_difference():
    t = _synthetic(200)
    d = paired_difference(t, "good", "weak", "acc", n_boot=400, seed=1)
    assert d.delta == pytest.approx(d.rho_a - d.rho_b) and d.delta > 0.2
    assert d.lo <= d.delta <= d.hi and d.excludes_zero and d.p_not_above == 0.0
    assert paired_difference(t, "good", "weak", "acc", n_boot=400, seed=1) == d
    same = paired_difference(t, "good", "good", "acc", n_boot=100)
    assert same.delta == 0 and same.lo == 0 and same.hi == 0 and not same.excludes_zero
    assert set(d.to_dict()) >= {"delta", "lo", "hi", "excludes_zero", "n", "n_excluded"}
    with pytest.raises(ValueError, match="'nope'"):
        paired_difference(t, "good", "nope", "acc")
