"""lswag-search-eval (lswag_lightning.bench.search_eval): per-dataset LIBRA selection and the evaluation of returned
cells.

The end-to-end test runs small searches on the stored whole-space scores (results/nb201_all_cells_scores.parquet)
and checks the evaluation against the published NB201 test accuracies looked up by hand.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd
import pytest

from lswag_lightning.bench.search_eval.outcome import OPTIMUM, TARGET_GAP, TEST_COLUMNS, fitness_label, summarise
from lswag_lightning.bench.search_eval.scorers import make_scorer
from lswag_lightning.bench.search_eval.selection import libra_fitness_plan
from lswag_lightning.cli.options import parse_settings
from lswag_lightning.cli.search_eval import SearchEvalCommand, build_parser, main

ROOT = Path(__file__).resolve().parents[1]
SCORE_TABLE = ROOT / "results" / "nb201_all_cells_scores.parquet"
FUSED_TABLE = ROOT / "results" / "nb201_fused_search_cpu_scores.parquet"
GREEDY_SET = "vkdnw_single,jacov,az_expressivity,az_trainability,flops,synflow"
LARGEST = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|nor_conv_3x3~0|nor_conv_3x3~1|nor_conv_3x3~2|"


def test_libra_plan_groups_datasets_by_trio():
    sel = lambda trio, ds: {"proxies": trio, "higher_is_better": {}, "datasets": [ds], "how": f"on {ds}"}  # noqa: E731
    plan = libra_fitness_plan(
        {
            "cifar10": sel(["a", "b", "c"], "cifar10"),
            "cifar100": sel(["a", "b", "c"], "cifar100"),
            "imagenet16_120": sel(["a", "b", "d"], "imagenet16_120"),
        }
    )
    assert list(plan) == ["libra[cifar10+cifar100]", "libra[imagenet16_120]"]
    assert plan["libra[cifar10+cifar100]"]["datasets"] == ["cifar10", "cifar100"]
    assert plan["libra[cifar10+cifar100]"]["how"] == "on cifar10; on cifar100"
    same = libra_fitness_plan({ds: sel(["a", "b", "c"], ds) for ds in ("cifar10", "cifar100")})
    assert list(same) == ["libra"] and same["libra"]["datasets"] == ["cifar10", "cifar100"]
    assert fitness_label("libra[imagenet16_120]") == "libra" and fitness_label("lswag") == "lswag"


def test_summary_merges_per_dataset_libra_runs():
    nan = math.nan
    cols = ["strategy", "label", "seed", "cifar10", "cifar100", "imagenet16_120"]
    per_run = pd.DataFrame(
        [
            dict(zip(cols, row))
            for row in [
                ("evolution", "libra", 0, 93.0, 70.0, nan),
                ("evolution", "libra", 0, nan, nan, 45.0),
                ("evolution", "libra", 1, 94.0, 72.0, nan),
                ("evolution", "libra", 1, nan, nan, 47.0),
            ]
        ]
    )
    for ds in TEST_COLUMNS:
        per_run[f"{ds}_oracle_scored"] = per_run[ds]
    row = summarise(per_run).iloc[0]
    assert row["seeds"] == 2
    assert row["cifar10_mean"] == pytest.approx(93.5) and row["imagenet16_120_mean"] == pytest.approx(46.0)
    assert row["imagenet16_120_std"] == pytest.approx(math.sqrt(2.0))
    assert row["cifar100_gap"] == pytest.approx(OPTIMUM["cifar100"] - 71.0)


def test_per_dataset_libra_search_on_stored_scores(shared_data_dir, tmp_path):
    out = tmp_path / "eval"
    assert (
        main(
            [
                "--out",
                str(out),
                "--score-table",
                str(SCORE_TABLE),
                "--seeds",
                "0,1",
                "--budget",
                "80",
                "--strategies",
                "evolution",
                "--data-dir",
                str(shared_data_dir),
                "--no-progress",
                "--threads",
                "1",
            ]
        )
        == 0
    )
    libra = json.loads((out / "libra_proxies.json").read_text())
    covered = sorted(ds for sel in libra.values() for ds in sel["datasets"])
    assert covered == sorted(TEST_COLUMNS)  # every dataset has exactly one LIBRA fitness
    for sel in libra.values():
        assert len(sel["proxies"]) == 3
        for ds in sel["datasets"]:
            assert f"({ds} validation accuracy)" in sel["how"]
    # the evaluation is the published test accuracy of the returned cell, on its fitness's datasets only
    test = pd.read_csv(shared_data_dir / "nb201" / "nasbench201_test_acc_200ep.csv").set_index("ArchitectureString")
    per_run = pd.read_csv(out / "per_run.csv")
    assert len(per_run) == 2 * (1 + len(libra))
    for _, run in per_run.iterrows():
        datasets = libra[run["fitness"]]["datasets"] if run["fitness"] in libra else list(TEST_COLUMNS)
        for ds, column in TEST_COLUMNS.items():
            if ds in datasets:
                assert run[ds] == pytest.approx(test.loc[run["best_arch"], column])
            else:
                assert math.isnan(run[ds])
    summary = pd.read_csv(out / "summary.csv").set_index("fitness")
    assert set(summary.index) == {"lswag", "libra"}
    assert summary[[f"{ds}_mean" for ds in TEST_COLUMNS]].notna().all().all()
    # every cell is stored, so the fitness's own whole-space optimum is reported: for L-SWAG the largest cell
    report = json.loads((out / "summary.json").read_text())
    lswag_opt = report["global_fitness_optimum"]["lswag"]
    assert lswag_opt["arch"] == LARGEST
    assert lswag_opt["imagenet16_120"] == pytest.approx(test.loc[LARGEST, "ImageNetTestAccuracy200Epochs"])
    assert "Test accuracies (200 epochs" in (out / "summary.md").read_text()


def test_cifar10_selection_serves_all_datasets(shared_data_dir, tmp_path):
    out = tmp_path / "eval"
    main(
        [
            "--out",
            str(out),
            "--score-table",
            str(SCORE_TABLE),
            "--seeds",
            "0",
            "--budget",
            "30",
            "--strategies",
            "random",
            "--fitnesses",
            "libra",
            "--libra-select",
            "naslib-val-cifar10",
            "--data-dir",
            str(shared_data_dir),
            "--no-progress",
            "--threads",
            "1",
        ]
    )
    libra = json.loads((out / "libra_proxies.json").read_text())
    assert list(libra) == ["libra"] and libra["libra"]["datasets"] == list(TEST_COLUMNS)
    assert "(cifar10 validation accuracy)" in libra["libra"]["how"]
    run = pd.read_csv(out / "per_run.csv").iloc[0]
    assert all(math.isfinite(run[ds]) for ds in TEST_COLUMNS)


def test_fused_search_from_the_stored_scores_returns_a_cell_within_every_target(shared_data_dir, tmp_path):
    """The README's fused NB201 search (the greedy set chosen on validation accuracy), seed 0, budget 300: every
    cell it visits is in the two committed tables (nothing is scored live) and the returned cell is within 1.0 /
    2.5 / 2.5 points of the optimum on CIFAR-10 / CIFAR-100 / ImageNet16-120."""
    out = tmp_path / "fused"
    assert (
        main(
            [
                "--out",
                str(out),
                "--score-table",
                str(SCORE_TABLE),
                str(FUSED_TABLE),
                "--seeds",
                "0",
                "--budget",
                "300",
                "--strategies",
                "evolution",
                "--fitnesses",
                "fused",
                "--fused-proxies",
                GREEDY_SET,
                "--data-dir",
                str(shared_data_dir),
                "--no-progress",
                "--threads",
                "1",
                "--device",
                "cpu",
            ]
        )
        == 0
    )
    run = pd.read_csv(out / "per_run.csv").iloc[0]
    assert run["best_arch"] == (
        "|nor_conv_3x3~0|+|nor_conv_1x1~0|nor_conv_3x3~1|+|nor_conv_1x1~0|nor_conv_1x1~1|nor_conv_3x3~2|"
    )
    for ds, optimum in OPTIMUM.items():
        assert run[ds] >= optimum - TARGET_GAP[ds]
    assert not list((out / "score_cache").glob("*.jsonl"))  # every value came from the tables
    assert "log-rank sum of vkdnw_single, jacov" in (out / "summary.md").read_text()


def test_score_table_supplies_only_what_it_holds(shared_data_dir, tmp_path):
    from lswag_lightning.search import MergedScorer, TableScorer

    base = ["--out", str(tmp_path), "--score-table", str(SCORE_TABLE), "--data-dir", str(shared_data_dir)]
    args = parse_settings(SearchEvalCommand, build_parser(), base)
    args.score_cache = tmp_path / "cache"
    scorer, _ = make_scorer(args, ["lswag", "naswot", "zico_ps"])
    assert isinstance(scorer, MergedScorer)
    assert scorer.owner == {"lswag": 0, "naswot": 0, "zico_ps": 1}  # zico_ps is not in the table: scored live
    # another L-SWAG interval is another scoring setting: its values cannot come from the table
    args = parse_settings(SearchEvalCommand, build_parser(), base + ["--layer-interval", "0,0"])
    args.score_cache = tmp_path / "cache"
    scorer, _ = make_scorer(args, ["lswag", "naswot"])
    assert isinstance(scorer.scorers[0], TableScorer) and scorer.scorers[0].proxies == ("naswot",)
    assert scorer.owner["lswag"] == 1 and scorer.scorers[1].score_options["layer_interval"] == (0, 0)
    only_lswag, live = make_scorer(args, ["lswag"])
    assert only_lswag is live and only_lswag.score_options["layer_interval"] == (0, 0)
    # several tables: each proxy from the first table with its column, the rest live
    args = parse_settings(SearchEvalCommand, build_parser(), base[:4] + [str(FUSED_TABLE)] + base[4:])
    args.score_cache = tmp_path / "cache"
    scorer, _ = make_scorer(args, ["lswag", "az_expressivity", "meco"])
    assert scorer.owner == {"lswag": 0, "az_expressivity": 1, "meco": 2}
    assert [type(s).__name__ for s in scorer.scorers] == ["TableScorer", "TableScorer", "ProxyScorer"]


def test_bad_fitness_sets_are_usage_errors(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--out", str(tmp_path), "--fitnesses", "fused"])
    assert exit_info.value.code == 2 and "--fitnesses fused needs its set" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["--out", str(tmp_path), "--fitnesses", "libra", "--libra-proxies", "a,b,c", "--libra-result", "x.json"])
