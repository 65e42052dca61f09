"""Label-budget learning curves, the learned ranking, auto (nested), and their agreement with LIBRA's evaluation."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from lswag_lightning.analysis import table as table_mod
from lswag_lightning.analysis.auto import choose, fit_auto
from lswag_lightning.analysis.budget import SUMMARY_COLUMNS, learning_curve, prepare_pool
from lswag_lightning.analysis.learned import (
    LearnedConfig,
    _predict_tree,
    feature_matrix,
    fit_learned,
    learned_from_dict,
    pool_ranks,
)
from lswag_lightning.analysis.libra import evaluate
from lswag_lightning.analysis.rankers import fit_method, load_ranking, ranking_from_dict, save_ranking


@pytest.fixture(autouse=True)
def _no_registry(monkeypatch):
    monkeypatch.setattr(table_mod, "registry_higher_is_better", lambda name: None)


def toy(n: int = 120, seed: int = 0) -> pd.DataFrame:
    """Accuracy depends on two latent factors; ``a`` sees the first, ``b`` the second, ``c`` both (noisier),
    ``params`` weakly the first, ``noise`` nothing; ``depth`` is a structure feature that sees the second."""
    rng = np.random.default_rng(seed)
    u, v = rng.normal(size=(2, n))
    return pd.DataFrame(
        {
            "arch": [f"a{i}" for i in range(n)],
            "params": np.exp(0.3 * u + rng.normal(size=n)),
            "a": u + 0.3 * rng.normal(size=n),
            "b": v + 0.3 * rng.normal(size=n),
            "c": u + v + 1.0 * rng.normal(size=n),
            "noise": rng.normal(size=n),
            "depth": np.round(3 * v + rng.normal(size=n)),
            "acc": 70 + 3 * u + 2 * v,
        }
    )


PROXIES = ["params", "a", "b", "c", "noise"]


def test_pool_ranks_and_features():
    np.testing.assert_allclose(pool_ranks(np.array([3.0, np.nan, 1.0, -np.inf, np.inf])), [0.8, 0.3, 0.6, 0.3, 1.0])
    x = feature_matrix({"p": np.array([10.0, 20.0, 30.0]), "q": np.array([1.0, 1.0, 0.0])}, ["p", "q"])
    np.testing.assert_allclose(x, [[1 / 3, 2.5 / 3], [2 / 3, 2.5 / 3], [1.0, 1 / 3]])
    with pytest.raises(ValueError, match="lacks"):
        feature_matrix({"p": np.ones(3)}, ["p", "r"])


def test_ridge_part_equals_the_closed_form_and_trees_match_sklearn():
    t = toy()
    values = {p: t[p].to_numpy(float) for p in PROXIES}
    acc = t["acc"].to_numpy(float)
    ridge = fit_learned(values, acc, PROXIES, LearnedConfig(kind="ridge", alpha=2.0))
    x, y = feature_matrix(values, PROXIES), pool_ranks(acc)
    xc = x - x.mean(axis=0)
    coef = np.linalg.solve(xc.T @ xc + 2.0 * np.eye(len(PROXIES)), xc.T @ (y - y.mean()))
    np.testing.assert_allclose(ridge.coef, coef, rtol=1e-10)
    np.testing.assert_allclose(ridge.score(values), y.mean() + xc @ coef, rtol=1e-10)

    from sklearn.ensemble import ExtraTreesRegressor

    trees = fit_learned(values, acc, PROXIES, LearnedConfig(kind="trees", n_trees=7, seed=3))
    forest = ExtraTreesRegressor(n_estimators=7, min_samples_leaf=2, max_features=0.5, random_state=3).fit(x, y)
    np.testing.assert_allclose(trees.score(values), forest.predict(x), rtol=1e-12)
    np.testing.assert_allclose(_predict_tree(trees.trees[0], x), forest.estimators_[0].predict(x), rtol=1e-12)


def test_learned_ranking_json_round_trip_and_any_pool(tmp_path):
    t = toy()
    values = {p: t[p].to_numpy(float) for p in [*PROXIES, "depth"]}
    model = fit_learned(values, t["acc"].to_numpy(float), [*PROXIES, "depth"])
    back = learned_from_dict(json.loads(json.dumps(model.to_dict())))
    np.testing.assert_array_equal(back.score(values), model.score(values))
    # rank inputs: a monotone transform of a column and a different pool size change nothing but the pool
    other = toy(n=40, seed=5)
    v2 = {p: other[p].to_numpy(float) for p in [*PROXIES, "depth"]}
    v3 = {**v2, "a": np.exp(v2["a"])}
    np.testing.assert_array_equal(model.score(v2), model.score(v3))
    assert stats.spearmanr(model.score(v2), other["acc"]).statistic > 0.8
    data = model.to_dict()
    with pytest.raises(ValueError, match="version"):
        learned_from_dict({**data, "version": 99})
    with pytest.raises(ValueError, match="coefficients"):
        learned_from_dict({**data, "coef": [1.0]})


def test_learning_curve_frame_paired_differences_and_structure_feature():
    t = toy(n=150)
    curve = learning_curve(
        t, PROXIES, "acc", [12, 40], draws=4, features=["depth"], fixed_sets={"ab": ["a", "b"]}, auto_repeats=3
    )
    frame = curve.frame()
    assert list(frame.columns) == list(SUMMARY_COLUMNS)
    assert set(frame.method) == {
        "params",
        "best_single",
        "libra_rank_mean",
        "libra_log_rank",
        "greedy",
        "all_log_rank",
        "learned",
        "fixed:ab",
        "auto",
    }
    assert (frame.draws == 4).all() and curve.features == ["depth"]
    row = frame[(frame.budget == 40) & (frame.method == "learned")].iloc[0]
    diffs = np.subtract(curve.rho[(40, "learned")], curve.rho[(40, "params")])
    assert row.minus_params_mean == pytest.approx(diffs.mean()) and row.minus_params_std == pytest.approx(
        diffs.std(ddof=1)
    )
    # accuracy needs both factors: the fusion of the two proxies that see them beats #params and any single one
    assert row.rho_mean > frame[(frame.budget == 40) & (frame.method == "params")].rho_mean.iloc[0] + 0.3
    fixed = frame[(frame.budget == 40) & (frame.method == "fixed:ab")].iloc[0]
    assert fixed.minus_best_single_mean > 0  # c sees both factors too, with more noise
    auto = curve.auto_frame()
    assert list(auto.budget) == [12, 40] and auto.interval_coverage.between(0, 1).all()
    long = curve.draws_frame()
    assert len(long) == 2 * 4 * len(curve.methods)


def test_half_budget_reproduces_libra_evaluate():
    """Draws at k = round(n/2) are evaluate()'s splits: the same held-out numbers for the shared methods."""
    t = toy(n=90, seed=2)
    ev = evaluate(t, PROXIES, "acc", n_splits=5, seed=7, fusion="log_rank", fixed_sets={"ab": ["a", "b"]}, greedy=True)
    curve = learning_curve(
        t,
        PROXIES,
        "acc",
        [45],
        draws=5,
        seed=7,
        nonfinite="drop_rows",
        fixed_sets={"ab": ["a", "b"]},
        methods=["libra_log_rank", "best_single", "greedy", "all_log_rank", "fixed:ab"],
    )
    for ours, theirs in (
        ("libra_log_rank", "libra"),
        ("best_single", "best_single"),
        ("greedy", "greedy"),
        ("all_log_rank", "az_all"),
        ("fixed:ab", "fixed:ab"),
    ):
        np.testing.assert_allclose(curve.rho[(45, ours)], ev.heldout[theirs], rtol=1e-12)


def test_one_standard_error_rule_prefers_the_simpler_method():
    scores = {"learned": [0.80, 0.90, 0.70, 0.85], "params": [0.78, 0.80, 0.76, 0.79], "greedy": [0.2, 0.3, 0.1, 0.2]}
    assert choose(scores, "best")[0] == "learned"
    # prefer_learned: another method must beat the learned ranking by one standard error of the paired differences
    assert choose(scores)[0] == "learned"
    assert choose({"learned": [0.5, 0.6, 0.55, 0.5], "params": [0.7, 0.75, 0.72, 0.7]})[0] == "params"
    assert choose({"learned": [0.5, 0.7, 0.5, 0.7], "params": [0.6, 0.6, 0.6, 0.61]})[0] == "learned"
    chosen, summary = choose(scores, "one_se")
    assert summary["learned"]["mean"] == pytest.approx(0.8125)
    assert chosen == "params"  # within one standard error of the best mean (0.8125 - 0.0427) and fits nothing
    chosen, _ = choose({"learned": [0.9, 0.9, 0.91, 0.9], "params": [0.5, 0.52, 0.51, 0.5]}, "one_se")
    assert chosen == "learned"
    with pytest.raises(ValueError, match="no auto candidate"):
        choose({"params": [math.nan]})


def test_auto_detail_and_saved_ranking_apply_to_a_new_pool(tmp_path):
    t = toy(n=60)
    pool = prepare_pool(t, PROXIES, "acc", features=["depth"], auto_repeats=4)
    ranking = fit_auto(pool.values, pool.accuracy, pool.ctx)
    d = ranking.detail
    assert d["chosen"] in d["inner"] and d["interval"][0] <= d["expected_rho"] <= d["interval"][1]
    path = save_ranking(ranking, tmp_path / "r.json", table="toy")
    back = load_ranking(path)
    other = toy(n=30, seed=9)
    np.testing.assert_array_equal(back.score_table(other), ranking.score_table(other))
    with pytest.raises(ValueError, match="format"):
        ranking_from_dict({"format": "other"})


def test_methods_fail_clearly():
    t = toy(n=40)
    pool = prepare_pool(t, PROXIES, "acc")
    with pytest.raises(ValueError, match="unknown ranking method"):
        fit_method("magic", pool.values, pool.accuracy, pool.ctx)
    with pytest.raises(ValueError, match="budgets must be between 3"):
        learning_curve(t, PROXIES, "acc", [39])
    with pytest.raises(ValueError, match="not available"):
        learning_curve(t, PROXIES, "acc", [10], methods=["fixed:nope"])
