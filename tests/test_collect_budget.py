"""lswag-collect's label-budget view: auto fitted on the sweep's finished jobs (what it picks at this k, the held-out
ρ to expect, the learned ranking's held-out ρ), its saved ranking, the report section, the terminal lines and
``collect.json``; small sweeps skip it with the reason. (The W&B keys are checked in ``test_collect.py``.)

The planted sweep of ``test_collect.make_sweep``: ``synflow`` = 3 × accuracy + 1 (a perfect ranking), ``jacov`` =
−accuracy (a perfect ranking backwards, but the registry says higher is better), the rest noise.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from test_collect import make_sweep

from lswag_lightning.analysis import load_ranking, spearman
from lswag_lightning.cli import collect as collect_cli
from lswag_lightning.collect import BUDGET_MIN_ROWS, collect, format_ranking


def test_auto_on_the_finished_jobs_finds_the_planted_proxy_and_saves_a_usable_ranking(tmp_path):
    result = collect([make_sweep(tmp_path / "sweep", 24)], tmp_path / "out", n_boot=50, n_splits=3)
    ranking = result.analysis.ranking
    assert ranking.k == 24 and not ranking.skipped
    # synflow orders every job exactly: whichever method auto keeps, its inner held-out ρ is 1 on every split
    assert ranking.expected_rho == pytest.approx(1.0) and ranking.interval == pytest.approx((1.0, 1.0))
    assert ranking.inner["best_single"]["mean"] == pytest.approx(1.0)
    assert 0.9 < ranking.learned_rho <= 1.0 and ranking.learned_se >= 0
    saved = load_ranking(ranking.path)
    assert saved.method == "auto" and saved.detail["chosen"] == ranking.chosen
    scores = saved.score_table(result.table)
    assert spearman(scores, result.table["val_acc"].to_numpy()) == pytest.approx(1.0)
    report = Path(result.paths["report"]).read_text()
    assert "## Label budget" in report and f"auto picks {ranking.chosen}" in report
    summary = json.loads(Path(result.paths["summary"]).read_text())
    assert summary["label_budget"]["auto/chosen"] == ranking.chosen
    assert summary["label_budget"]["learned/heldout_rho_mean"] == pytest.approx(ranking.learned_rho)
    text = format_ranking(result.analysis)
    assert "k = 24 trained ones" in text and "expected held-out Spearman ρ 1.000 [1.000, 1.000]" in text


def test_a_small_sweep_skips_auto_and_says_why(tmp_path, capsys):
    n = BUDGET_MIN_ROWS - 1
    sweep = make_sweep(tmp_path / "sweep", n, failed=False, unfinished=False)
    code = collect_cli.main([str(sweep), "--out", str(tmp_path / "out"), "--n-boot", "20"])
    out = capsys.readouterr().out
    assert code == 0
    assert f"auto skipped: it needs at least {BUDGET_MIN_ROWS} finished jobs with a finite val_acc" in out
    assert f"there are {n}" in out
    assert "auto skipped" in (tmp_path / "out" / "report" / "report.md").read_text()
    assert not (tmp_path / "out" / "ranking").exists()


def test_the_cli_prints_auto_choice(tmp_path, capsys):
    sweep = make_sweep(tmp_path / "sweep", 12, failed=False, unfinished=False, seed=3)
    code = collect_cli.main([str(sweep), "--out", str(tmp_path / "out"), "--n-boot", "20", "--splits", "2"])
    out = capsys.readouterr().out
    assert code == 0 and "Label budget (rank the candidates not trained yet):" in out
    assert "k = 12 trained ones" in out and (tmp_path / "out" / "ranking" / "ranking.json").is_file()
    ranked = np.loadtxt(tmp_path / "out" / "ranking" / "ranking.csv", delimiter=",", skiprows=1, usecols=[0], dtype=str)
    assert len(ranked) == 12
