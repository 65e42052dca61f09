"""The family tutorial (``python -m lswag_lightning.cli.family_tutorial``): its comparison against hand
calculations, the random picks' size range, LIBRA's choice turned into a search fitness, bad arguments, and one run
of every step at a tiny size (slow: 20 two-batch jobs, the least LIBRA's held-out evaluation takes)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lswag_lightning.cli import family_tutorial as cli
from lswag_lightning.demo.family_tutorial import (
    TutorialError,
    compare,
    random_in_range,
    search_fitness,
    verdict_text,
)
from lswag_lightning.spaces import load_space

REPO = Path(__file__).resolve().parents[1]
TINY_CNN = REPO / "examples" / "own_family" / "tiny_cnn.yaml"


def records(accuracies: dict[str, list[float]]) -> list[dict]:
    """Final-job records: ``{arch: [test_acc of seed 0, seed 1, ...]}`` (fractions, as result.json holds them)."""
    return [
        {"status": "ok", "arch": arch, "seed": seed, "test_acc": acc, "params": 100 + i}
        for i, (arch, accs) in enumerate(accuracies.items())
        for seed, acc in enumerate(accs)
    ]


def test_compare_against_hand_calculations():
    groups = {"zero-cost": ["a", "b"], "random": ["c", "d"]}
    result = compare(records({"a": [0.9, 0.8], "b": [0.7, 0.6], "c": [0.6, 0.6], "d": [0.5, 0.4]}), groups)
    # zero-cost: per seed (90+70)/2 = 80, (80+60)/2 = 70 -> mean 75, spread std(80, 70) = 7.071
    # random: per seed 55, 50 -> mean 52.5, spread 3.536; difference 22.5 > 7.071: beat
    assert result["groups"]["zero-cost"]["mean"] == pytest.approx(75.0)
    assert result["groups"]["zero-cost"]["spread"] == pytest.approx(50**0.5)
    assert result["groups"]["random"]["mean"] == pytest.approx(52.5)
    assert result["groups"]["random"]["spread"] == pytest.approx(12.5**0.5)
    assert result["candidates"]["a"] == {"group": "zero-cost", "params": 100, "mean": 85.0, "std": 50**0.5, "n": 2}
    assert result["difference"] == pytest.approx(22.5) and result["beat"] is True
    assert verdict_text(result).startswith("The zero-cost picks beat the random picks of the same size")


@pytest.mark.parametrize(
    "zero_cost,random,beat,opening",
    [
        ([0.80, 0.70], [0.76, 0.74], None, "No clear winner"),  # +0.5 points, spread 7.07
        ([0.70, 0.70], [0.75, 0.74], False, "The zero-cost picks did not beat"),
    ],
)
def test_compare_says_when_the_pick_did_not_win(zero_cost, random, beat, opening):
    result = compare(records({"a": zero_cost, "b": random}), {"zero-cost": ["a"], "random": ["b"]})
    assert result["beat"] is beat and verdict_text(result).startswith(opening)


def test_a_difference_under_one_test_image_is_no_win():
    """Digits' test split has 270 images: one image is 0.37 points, so +0.25 points with tight seeds is no win."""
    rows = records({"a": [0.9925, 0.9925], "b": [0.99, 0.99]})
    for row in rows:
        row["dataset"] = {"sizes": {"train": 1257, "val": 270, "test": 270}}
    result = compare(rows, {"zero-cost": ["a"], "random": ["b"]})
    assert result["one_sample"] == pytest.approx(100 / 270) and result["difference"] == pytest.approx(0.25)
    assert result["beat"] is None
    assert verdict_text(result).endswith("within the seed spread or one image of the split = 0.37 points.")


def test_compare_refuses_a_candidate_without_a_finished_job():
    failed = [*records({"a": [0.9]}), {"status": "failed", "arch": "b", "seed": 0}]
    with pytest.raises(TutorialError, match=r"random candidate\(s\) \['b'\]"):
        compare(failed, {"zero-cost": ["a"], "random": ["b"]})


def test_random_picks_are_seeded_distinct_and_in_the_range():
    space = load_space(TINY_CNN)
    picks = random_in_range(space, 3, 20_000, 60_000, exclude=["depth=2,width=32,groups=1,kernel_size=5"], seed=0)
    assert picks == random_in_range(
        space, 3, 20_000, 60_000, exclude=["depth=2,width=32,groups=1,kernel_size=5"], seed=0
    )
    assert len(set(picks)) == 3 and "depth=2,width=32,groups=1,kernel_size=5" not in picks
    for arch in picks:
        assert 20_000 <= space.param_count(space.decode(arch), num_classes=10, img_size=16) <= 60_000
    with pytest.raises(TutorialError, match="only 0 of 1 random candidates with 1..2 parameters"):
        random_in_range(space, 1, 1, 2, exclude=[], seed=0, tries=50)


def test_libra_choice_becomes_the_search_fitness(tmp_path):
    path = tmp_path / "libra.json"
    path.write_text(json.dumps({"selection": {"proxies": ["jacov", "flops"]}}))
    assert search_fitness(path) == (["--fitness", "libra", "--libra-result", str(path)], ["jacov", "flops"])
    path.write_text(json.dumps({"selection": {"proxies": ["synflow"]}}))
    assert search_fitness(path) == (["--fitness", "synflow"], ["synflow"])  # lswag-search fuses two or three


@pytest.mark.parametrize(
    "argv,message",
    [
        (["--family", "no_such_family.yaml", "--out", "o"], "no space file 'no_such_family.yaml'"),
        (["--family", str(TINY_CNN), "--sweep", "5", "--out", "o"], "sweep"),
    ],
)
def test_bad_arguments_exit_2(argv, message, capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main(argv)
    assert exc.value.code == 2 and message in capsys.readouterr().err


@pytest.mark.slow
def test_the_tutorial_runs_every_step_at_a_tiny_size(tmp_path, capsys):
    quick = ["trainer.limit_train_batches=2", "trainer.limit_val_batches=1", "trainer.limit_test_batches=1"]
    argv = ["--family", TINY_CNN, "--epochs", "1", "--budget", "8", "--top", "1", "--seeds", "2", "--out", tmp_path]
    argv += [item for override in quick for item in ("--train-override", override)]
    assert cli.main([str(a) for a in argv]) == 0
    summary = json.loads((tmp_path / "tutorial.json").read_text())
    assert summary["search"]["scored"] == 8 and len(summary["search"]["top"]) == 1 and len(summary["random"]) == 1
    low, high = summary["search"]["params_range"]
    finals = [json.loads(p.read_text()) for p in (tmp_path / "final").rglob("result.json")]
    assert len(finals) == 4 and all(r["status"] == "ok" for r in finals)  # 2 candidates x 2 seeds
    assert {(r["arch"], r["seed"]) for r in finals} == {
        (a, s) for a in [*summary["search"]["top"], *summary["random"]] for s in (0, 1)
    }
    assert all(low <= r["params"] <= high for r in finals)
    assert summary["libra"]["chosen"] and summary["verdict"] in (tmp_path / "tutorial.md").read_text()
    assert len(list((tmp_path / "sweep").rglob("result.json"))) == 20
    assert "tutorial.md" in capsys.readouterr().out
