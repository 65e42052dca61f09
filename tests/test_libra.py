"""LIBRA: entropies by hand, selection on tables whose answer is known by construction, edge cases, fusion,
held-out evaluation."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from lswag_lightning.analysis import table as table_mod
from lswag_lightning.analysis.libra import (
    LibraSelection,
    conditional_entropy,
    evaluate,
    fuse,
    information_gain,
    joint_entropy,
    rank_bins,
    select,
)


@pytest.fixture(autouse=True)
def _no_registry(monkeypatch):
    monkeypatch.setattr(table_mod, "registry_higher_is_better", lambda name: None)


# ------------------------------------------------------------------------------------------ entropy by hand
def test_rank_bins_equal_frequency_and_ties():
    np.testing.assert_array_equal(rank_bins(np.arange(8.0)[::-1], 4), [3, 3, 2, 2, 1, 1, 0, 0])
    # ties share a bin: average ranks 1.5, 3.5, 5.5, 7.5 -> floor((r - 1) * 4 / 8) = 0, 1, 2, 3
    np.testing.assert_array_equal(rank_bins(np.array([1, 2, 1, 2, 3, 4, 3, 4.0]), 4), [0, 1, 0, 1, 2, 3, 2, 3])
    assert len(set(rank_bins(np.full(5, 7.0), 24))) == 1  # a constant falls in one bin
    with pytest.raises(ValueError, match="finite"):
        rank_bins(np.array([1.0, np.nan]), 4)


def test_entropies_by_hand_four_bins():
    assert joint_entropy(np.array([0, 0, 1, 1, 2, 2, 3, 3])) == pytest.approx(2.0)  # uniform on 4 bins
    assert joint_entropy(np.array([0, 0, 1, 2])) == pytest.approx(1.5)  # -(.5 log .5 + 2 * .25 log .25)
    y = np.arange(1.0, 9.0)  # bins 0,0,1,1,2,2,3,3
    z1 = np.array([1, 2, 1, 2, 3, 4, 3, 4.0])  # bins 0,1,0,1,2,3,2,3
    yb, b1 = rank_bins(y, 4), rank_bins(z1, 4)
    # (y, z1) takes 8 distinct values -> H = 3 bits; H(z1) = 2 bits -> H(y | z1) = 1 bit
    assert joint_entropy(yb, b1) == pytest.approx(3.0)
    assert conditional_entropy(yb, b1) == pytest.approx(1.0)
    assert information_gain(y, z1, y, bins=4) == pytest.approx(1.0)  # knowing y itself removes the last bit
    assert information_gain(y, z1, z1 * 10, bins=4) == pytest.approx(0.0)  # a duplicate adds nothing
    z_half = np.array([1, 1, 1, 1, 2, 2, 2, 2.0])  # only separates {y in bins 0,1} from {2,3}: known from z1
    assert information_gain(y, z1, z_half, bins=4) == pytest.approx(0.0)


# ------------------------------------------------------------------------------------ synthetic selections
def _known_table(n: int = 800, seed: int = 0) -> pd.DataFrame:
    """acc = u; params = u + v (b_val = 1/sqrt 2 ≈ 0.71 in Pearson terms).

    best:    u + 0.25 e0                ρ ≈ 0.97
    dup:     best + 1e-3 e1             a near-duplicate of best: lowest IG
    match:   u + 0.55 e2                ρ ≈ 0.87, bias ≈ 0.62 (close to b_val)
    far:     u − 0.45 v                 ρ ≈ 0.91, bias ≈ 0.35 (far from b_val, though a higher ρ than match)
    noise:   e3                         ρ ≈ 0 (outside the window)
    """
    rng = np.random.default_rng(seed)
    u, v, e0, e1, e2, e3 = rng.normal(size=(6, n))
    best = u + 0.25 * e0
    return pd.DataFrame(
        {
            "arch": [f"a{i}" for i in range(n)],
            "acc": 80 + 3 * u,
            "params": 1e6 * np.exp(0.3 * (u + v)),
            "best": best,
            "dup": best + 1e-3 * e1,
            "match": u + 0.55 * e2,
            "far": u - 0.45 * v,
            "noise": e3,
        }
    )


PROXIES = ["best", "dup", "match", "far", "noise"]


def test_near_duplicate_is_z2_and_bias_matching_picks_z3():
    t = _known_table()
    sel = select(t, PROXIES, "acc", "params", window=0.15)
    assert sel.proxies[:2] in (["best", "dup"], ["dup", "best"])
    assert sel.candidates and set(sel.candidates) == set(PROXIES) - {"noise", sel.z1}
    ig = sel.info_gain
    other = sel.proxies[1]
    assert ig[other] < 0.5 * min(ig["match"], ig["far"])
    # z3: "far" has the higher ρ, but "match" has the params-correlation closest to the accuracy's
    assert sel.rho["far"] > sel.rho["match"]
    assert abs(sel.bias["match"] - sel.bias_accuracy) < 0.12 < 0.3 < abs(sel.bias["far"] - sel.bias_accuracy)
    assert sel.proxies[2] == "match"
    assert sel.bias_accuracy == pytest.approx(stats.spearmanr(t["acc"], t["params"]).statistic)
    assert sel.rho["best"] == pytest.approx(stats.spearmanr(t["best"], t["acc"]).statistic)
    assert sel.notes == [] and sel.excluded == {} and sel.n_rows == len(t)
    assert sel.entropy_unit == "bits" and 0 < sel.h_accuracy_given_z1 < math.log2(24)
    json.dumps(sel.to_dict())


def test_lower_is_better_proxy_is_flipped_and_can_win():
    t = _known_table()
    t["neg_best"] = -t["best"]
    sel = select(t, ["neg_best", "match", "noise"], "acc", "params", window=0.15, higher_is_better={"neg_best": False})
    assert sel.z1 == "neg_best" and sel.rho["neg_best"] > 0.9
    assert sel.bias["neg_best"] > 0  # bias uses the oriented values too
    unflipped = select(t, ["neg_best", "match", "noise"], "acc", "params", window=0.15)
    assert unflipped.rho["neg_best"] < -0.9 and unflipped.z1 == "match"
    assert unflipped.orientation_source["neg_best"] == "assumed"


def test_empty_window_falls_back_to_z1():
    t = _known_table()
    sel = select(t, ["best", "noise"], "acc", "params", window=0.1)
    assert sel.proxies == ["best"] and sel.candidates == [] and sel.info_gain == {}
    assert any("no other proxy within 0.1" in n for n in sel.notes)


def test_one_candidate_gives_two_proxies():
    t = _known_table()
    sel = select(t, ["best", "far", "noise"], "acc", "params", window=0.1)
    assert sel.proxies == ["best", "far"]
    assert any("one candidate" in n for n in sel.notes)


def test_nan_column_excluded_and_few_nans_drop_rows():
    t = _known_table(200)
    t["allnan"] = np.nan
    t["halfnan"] = t["best"].where(np.arange(len(t)) % 2 == 0)
    t.loc[[3, 7], "match"] = [np.nan, np.inf]
    sel = select(t, ["best", "dup", "match", "far", "allnan", "halfnan"], "acc", "params", window=0.15)
    assert set(sel.excluded) == {"allnan", "halfnan"}
    assert sel.n_rows == 198 and sel.n_input_rows == 200
    assert any("2 rows dropped" in n and "match" in n for n in sel.notes)
    assert "allnan" not in sel.rho and "match" in sel.rho
    strict = select(t, ["best", "dup", "match", "far"], "acc", "params", window=0.15, nonfinite="exclude_proxy")
    assert "match" in strict.excluded and strict.n_rows == 200


def test_constant_column_excluded():
    t = _known_table(200)
    t["const"] = 3.0
    sel = select(t, ["best", "const", "dup"], "acc", "params")
    assert "const" in sel.excluded and "constant" in sel.excluded["const"]
    assert any(n.startswith("const excluded") for n in sel.notes)
    assert "const" not in sel.proxies


def test_too_few_rows_and_bad_arguments():
    t = _known_table(9)
    with pytest.raises(ValueError, match="at least 10"):
        select(t, PROXIES, "acc", "params")
    t = _known_table(50)
    with pytest.raises(ValueError, match="'zico'"):
        select(t, ["best", "zico"], "acc", "params")
    with pytest.raises(ValueError, match="window"):
        select(t, PROXIES, "acc", "params", window=0)
    with pytest.raises(ValueError, match="no usable proxy"):
        select(t.assign(c=1.0), ["c"], "acc", "params")


# ---------------------------------------------------------------------------------------------- fusion
def test_fuse_rank_mean_and_log_rank_by_hand():
    t = pd.DataFrame({"a": [10.0, 20.0, 30.0, 40.0], "b": [4.0, 3.0, 2.0, 1.0]})
    # ranks / M: a -> .25 .5 .75 1 ; b (lower is better, flipped) -> .25 .5 .75 1 as well
    got = fuse(t, ["a", "b"], "rank_mean", higher_is_better={"b": False})
    np.testing.assert_allclose(got, [0.25, 0.5, 0.75, 1.0])
    got = fuse(t, ["a", "b"], "rank_mean")  # b taken as higher-is-better: .25+1, .5+.75, ...
    np.testing.assert_allclose(got, [0.625] * 4)
    got = fuse(t, ["a", "b"], "log_rank", higher_is_better={"b": False})
    np.testing.assert_allclose(got, 2 * np.log([0.25, 0.5, 0.75, 1.0]))
    t.loc[1, "a"] = np.nan
    got = fuse(t, ["a"], "rank_mean")
    assert np.isnan(got[1]) and got[3] == 1.0 and got[0] == pytest.approx(1 / 3)
    with pytest.raises(ValueError, match="fusion method"):
        fuse(t, ["a"], "product")


def test_fuse_uses_selection_orientation():
    t = _known_table(100)
    t["neg"] = -t["best"]
    sel = select(t, ["neg", "noise"], "acc", "params", higher_is_better={"neg": False})
    assert isinstance(sel, LibraSelection)
    fused = fuse(t, sel)
    assert stats.spearmanr(fused, t["acc"]).statistic > 0.9


# ------------------------------------------------------------------------------------------ evaluation
def test_evaluate_structure_and_reproducibility():
    t = _known_table(300)
    ev = evaluate(t, PROXIES, "acc", "params", n_splits=6, seed=2, window=0.15)
    assert ev.n_fit == 150 and ev.n_eval == 150 and ev.n_rows == 300
    assert all(len(v) == 6 for v in ev.heldout.values()) and len(ev.best_single_names) == 6
    assert sum(c for _, c in ev.triples) == 6
    s = ev.summary()
    assert s["libra"]["mean"] > 0.9 and math.isfinite(s["libra"]["std"])
    assert ev.in_sample["best_single"] in ("best", "dup")
    assert evaluate(t, PROXIES, "acc", "params", n_splits=6, seed=2, window=0.15).heldout == ev.heldout
    assert evaluate(t, PROXIES, "acc", "params", n_splits=6, seed=3, window=0.15).heldout != ev.heldout
    d = json.loads(json.dumps(ev.to_dict()))
    assert d["summary"]["libra"]["mean"] == pytest.approx(s["libra"]["mean"])
    assert d["triples"][0]["count"] >= 1


def test_heldout_is_honest_on_pure_noise():
    """With proxies that are pure noise the in-sample best looks good and the held-out numbers do not."""
    rng = np.random.default_rng(0)
    n, k = 80, 30
    names = [f"z{i}" for i in range(k)]
    t = pd.DataFrame(rng.normal(size=(n, k)), columns=names)
    t["acc"], t["params"] = rng.normal(size=n), rng.normal(size=n)
    ev = evaluate(t, names, "acc", "params", n_splits=10, seed=0)
    heldout = ev.summary()["libra"]["mean"]
    assert ev.in_sample["libra"] > 0.2 and ev.in_sample["best_single_rho"] > 0.15
    assert abs(heldout) < 0.1 and ev.in_sample["libra"] - heldout > 0.15


def test_evaluate_rejects_bad_options():
    t = _known_table(100)
    with pytest.raises(ValueError, match="fit_fraction"):
        evaluate(t, PROXIES, "acc", "params", fit_fraction=1.0)
    with pytest.raises(ValueError, match="fit part"):
        evaluate(t, PROXIES, "acc", "params", fit_fraction=0.05)
    with pytest.raises(ValueError, match="fusion"):
        evaluate(t, PROXIES, "acc", "params", fusion="sum")
