"""lswag-libra --budgets (learning curves), --method (fit and rank every row), published tables by name."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from lswag_lightning.analysis import table as table_mod
from lswag_lightning.analysis.rankers import load_ranking
from lswag_lightning.analysis.ranking_run import published_specs
from lswag_lightning.cli.libra import main


@pytest.fixture(autouse=True)
def _no_registry(monkeypatch):
    monkeypatch.setattr(table_mod, "registry_higher_is_better", lambda name: None)


def _table(tmp_path, n: int = 80, unlabelled: int = 0):
    rng = np.random.default_rng(1)
    u, v = rng.normal(size=(2, n))
    t = pd.DataFrame(
        {
            "arch": [f"n{i}" for i in range(n)],
            "params": np.exp(u + rng.normal(size=n)),
            "alpha": u + 0.3 * rng.normal(size=n),
            "beta": v + 0.3 * rng.normal(size=n),
            "gamma": rng.normal(size=n),
            "acc": 60 + 5 * u + 3 * v,
            "acc2": 50 + 5 * v,
        }
    )
    if unlabelled:
        t.loc[t.index[-unlabelled:], ["acc", "acc2"]] = np.nan
    path = tmp_path / "toy.csv"
    t.to_csv(path, index=False)
    structure = pd.DataFrame({"arch": t["arch"], "width_mean": np.round(2 * v)})
    structure.to_parquet(tmp_path / "structure.parquet")
    return path


def test_budgets_write_curves_for_several_accuracies(tmp_path, capsys):
    path = _table(tmp_path)
    out = tmp_path / "budget"
    code = main(
        [
            str(path),
            "--accuracy",
            "acc",
            "acc2",
            "--budgets",
            "10,half",
            "--draws",
            "3",
            "--structure",
            str(tmp_path / "structure.parquet"),
            "--auto-repeats",
            "2",
            "--out",
            str(out),
        ]
    )
    assert code == 0
    curve = pd.read_csv(out / "learning_curve.csv")
    assert {"budget", "method", "rho_mean", "rho_std", "draws"} <= set(curve.columns)
    assert sorted(curve.budget.unique()) == [10, 40] and set(curve.accuracy) == {"acc", "acc2"}
    assert {"params", "best_single", "learned", "auto", "greedy", "libra_log_rank"} <= set(curve.method)
    assert (out / "learning_curve_acc.png").stat().st_size > 0 and (out / "learning_curve_acc2.png").is_file()
    text = (out / "learning_curve.md").read_text()
    assert "auto − params (paired)" in text and "command: `lswag-libra" in text
    assert len(pd.read_csv(out / "learning_curve_draws.csv")) == 2 * 2 * 3 * curve.method.nunique()
    assert "| auto |" in capsys.readouterr().out


def test_method_auto_ranks_every_row_and_saves_a_reusable_ranking(tmp_path, capsys):
    path = _table(tmp_path, n=70, unlabelled=30)
    out = tmp_path / "fit"
    assert main([str(path), "--accuracy", "acc", "--method", "auto", "--auto-repeats", "3", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "auto chose" in printed and "expected held-out Spearman" in printed
    ranked = pd.read_csv(out / "ranking.csv")
    assert len(ranked) == 70 and ranked["labelled"].sum() == 40 and ranked["rank"].min() == 1
    assert ranked["score"].is_monotonic_decreasing
    saved = load_ranking(out / "ranking.json")
    table = pd.read_csv(path)
    scores = pd.Series(saved.score_table(table), index=table["arch"])
    np.testing.assert_allclose(scores[ranked["arch"]].to_numpy(), ranked["score"].to_numpy())
    meta = json.loads((out / "ranking.json").read_text())
    assert meta["n_labelled"] == 40 and meta["accuracy"] == "acc"


def test_default_ranks_without_any_accuracy(tmp_path, capsys):
    path = _table(tmp_path)
    out = tmp_path / "k0"
    assert main([str(path), "--method", "default", "--default-set", "alpha,beta", "--out", str(out)]) == 0
    ranked = pd.read_csv(out / "ranking.csv")
    table = pd.read_csv(path)
    r = lambda c: table[c].rank() / len(table)  # noqa: E731 - the log-rank fusion by hand
    by_hand = pd.Series((np.log(r("alpha")) + np.log(r("beta"))).to_numpy(), index=table["arch"])
    np.testing.assert_allclose(ranked["score"].to_numpy(), by_hand[ranked["arch"]].to_numpy())
    assert "nothing fitted" in capsys.readouterr().out and load_ranking(out / "ranking.json").method == "default"


def test_bad_arguments_exit_2(tmp_path, capsys):
    path = _table(tmp_path)
    for argv, message in (
        ([str(path), "--accuracy", "acc", "--budgets", "10", "--method", "auto"], "separate runs"),
        ([str(path), "--accuracy", "acc", "--budgets", "2"], "integers >= 3"),
        ([str(path), "--accuracy", "acc", "--budgets", "79"], "between 3 and n - 3"),
        ([str(path), "--budgets", "10"], "--accuracy is required"),
        ([str(path), "--accuracy", "acc", "--method", "magic"], "unknown ranking method"),
        ([str(path), "--accuracy", "acc", "--budgets", "10", "--structure", str(tmp_path / "none.csv")], "--structure"),
    ):
        with pytest.raises(SystemExit) as exc:
            main(argv)
        assert exc.value.code == 2
        assert message in capsys.readouterr().err


def test_published_specs():
    assert published_specs("published:nb201:cifar10") == [("nb201", "cifar10")]
    assert len(published_specs("published:nb201")) == 3 and len(published_specs("published:all")) == 19
    with pytest.raises(ValueError, match="unknown published benchmark"):
        published_specs("published:nb999")
