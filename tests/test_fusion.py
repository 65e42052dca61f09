"""Fused rankings beyond LIBRA's triple: fixed log-rank sets, the greedy set, and ranking non-finite values last."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from lswag_lightning.analysis.fusion import greedy_log_rank, log_rank_sum
from lswag_lightning.analysis.libra import evaluate
from lswag_lightning.cli.libra import main as libra_main
from lswag_lightning.cli.libra import parse_fixed_sets


def synthetic(n=400, seed=0):
    """accuracy = a + b; proxies: a and b (each half the signal), a noisy copy of a, pure noise, params."""
    rng = np.random.default_rng(seed)
    a, b = rng.normal(size=n), rng.normal(size=n)
    return pd.DataFrame(
        {
            "a": a,
            "b": b,
            "a_noisy": a + 0.5 * rng.normal(size=n),
            "noise": rng.normal(size=n),
            "params": rng.normal(size=n) + a,
            "acc": a + b,
        }
    )


def test_log_rank_sum_by_hand():
    x, y = np.array([3.0, 1.0, 2.0]), np.array([1.0, 2.0, 3.0])
    expected = np.log(np.array([3, 1, 2]) / 3) + np.log(np.array([1, 2, 3]) / 3)
    assert np.allclose(log_rank_sum([x, y]), expected)


def test_greedy_finds_the_complementary_pair_and_stops():
    t = synthetic()
    values = {c: t[c].to_numpy() for c in ("noise", "a_noisy", "a", "b")}
    chosen = greedy_log_rank(values, t["acc"].to_numpy())
    assert chosen[:2] in (["a", "b"], ["b", "a"]) and "noise" not in chosen
    assert greedy_log_rank(values, t["acc"].to_numpy(), max_size=1) in (["a"], ["b"])


def test_greedy_starts_from_a_given_set_only_when_it_beats_the_best_single_proxy():
    rng = np.random.default_rng(3)
    b, c = rng.normal(size=400), rng.normal(size=400)
    acc = b + c
    values = {"a": acc + 0.8 * rng.normal(size=400), "b": b, "c": c, "noise": rng.normal(size=400)}
    alone = greedy_log_rank(values, acc, max_size=1)
    assert alone == ["a"]  # the best single proxy: b and c are weaker alone
    started = greedy_log_rank(values, acc, max_size=2, starts={"bc": ["b", "c"], "bad": ["noise", "a"]})
    assert started == ["b", "c"]  # log-rank(b, c) beats a; the "bad" set does not
    rho = {tuple(s): stats.spearmanr(log_rank_sum([values[p] for p in s]), acc)[0] for s in (alone, started)}
    assert rho[("b", "c")] > rho[("a",)] + 0.03
    assert greedy_log_rank(values, acc, max_size=1, starts={"bad": ["noise", "a"]}) == ["a"]


def test_evaluate_reports_fixed_and_greedy_sets_held_out():
    t = synthetic()
    ev = evaluate(
        t, ["a", "b", "a_noisy", "noise"], "acc", "params", n_splits=5, fixed_sets={"ab": ["a", "b"]}, greedy=True
    )
    s = ev.summary()
    assert s["fixed:ab"]["mean"] > 0.95 and s["greedy"]["mean"] > 0.95
    assert s["greedy"]["mean"] > s["best_single"]["mean"] + 0.1
    assert sum(c for _, c in ev.greedy_sets) == 5
    # the fixed set fits nothing: its held-out ρ per split is the plain ρ of the fused score on the eval rows
    assert ev.in_sample["fixed:ab"] == pytest.approx(
        stats.spearmanr(log_rank_sum([t.a.values, t.b.values]), t.acc).statistic
    )
    with pytest.raises(ValueError, match="outside the usable pool"):
        evaluate(t, ["a", "b"], "acc", "params", n_splits=2, fixed_sets={"x": ["a", "zzz"]})


def test_rank_last_keeps_rows_that_drop_rows_loses():
    t = synthetic(200)
    t.loc[:29, "a"] = -math.inf  # an AZ-NAS identity block: ranked last, not dropped
    t.loc[30:32, "b"] = math.nan
    dropped = evaluate(t, ["a", "b", "a_noisy"], "acc", "params", n_splits=2)
    kept = evaluate(t, ["a", "b", "a_noisy"], "acc", "params", n_splits=2, nonfinite="rank_last")
    assert "a" in dropped.selection.excluded and dropped.n_rows == 197
    assert kept.n_rows == 200 and "a" in kept.proxies
    assert any("ranked last" in note for note in kept.notes)


def test_cli_fixed_set_and_greedy(tmp_path, capsys):
    path = tmp_path / "table.csv"
    synthetic(120).to_csv(path, index=False)
    assert (
        libra_main(
            [
                str(path),
                "--accuracy",
                "acc",
                "--proxies",
                "a",
                "b",
                "a_noisy",
                "noise",
                "--splits",
                "3",
                "--fixed-set",
                "ab=a,b",
                "--greedy",
                "--no-report",
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "fixed log-rank set ab" in out and "greedy log-rank set (fit-chosen)" in out
    assert "Greedy sets over splits:" in out
    with pytest.raises(ValueError, match="NAME=P1,P2"):
        parse_fixed_sets(["ab"])
