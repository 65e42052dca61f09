"""recipes/search/nb201_search_eval.py: per-dataset LIBRA selection and the evaluation of returned cells.

The end-to-end test runs small searches on the stored whole-space scores (results/nb201_all_cells_scores.parquet)
and checks the evaluation against the published NB201 test accuracies looked up by hand.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd
import pytest
from conftest import load_recipe

ROOT = Path(__file__).resolve().parents[1]
SCORE_TABLE = ROOT / "results" / "nb201_all_cells_scores.parquet"
FUSED_TABLE = ROOT / "results" / "nb201_fused_search_cpu_scores.parquet"
GREEDY_SET = "vkdnw_single,jacov,az_expressivity,az_trainability,flops,synflow"
LARGEST = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|nor_conv_3x3~0|nor_conv_3x3~1|nor_conv_3x3~2|"


recipe = load_recipe("search/nb201_search_eval.py")


def test_libra_plan_groups_datasets_by_trio():
    sel = lambda trio, ds: {"proxies": trio, "higher_is_better": {}, "datasets": [ds], "how": f"on {ds}"}  # noqa: E731
    plan = recipe.libra_fitness_plan(
        {
            "cifar10": sel(["a", "b", "c"], "cifar10"),
            "cifar100": sel(["a", "b", "c"], "cifar100"),
            "imagenet16_120": sel(["a", "b", "d"], "imagenet16_120"),
        }
    )
    assert list(plan) == ["libra[cifar10+cifar100]", "libra[imagenet16_120]"]
    assert plan["libra[cifar10+cifar100]"]["datasets"] == ["cifar10", "cifar100"]
    assert plan["libra[cifar10+cifar100]"]["how"] == "on cifar10; on cifar100"
    same = recipe.libra_fitness_plan({ds: sel(["a", "b", "c"], ds) for ds in ("cifar10", "cifar100")})
    assert list(same) == ["libra"] and same["libra"]["datasets"] == ["cifar10", "cifar100"]
    assert recipe.fitness_label("libra[imagenet16_120]") == "libra" and recipe.fitness_label("lswag") == "lswag"


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
    for ds in recipe.TEST_COLUMNS:
        per_run[f"{ds}_oracle_scored"] = per_run[ds]
    row = recipe.summarise(per_run).iloc[0]
    assert row["seeds"] == 2
    assert row["cifar10_mean"] == pytest.approx(93.5) and row["imagenet16_120_mean"] == pytest.approx(46.0)
    assert row["imagenet16_120_std"] == pytest.approx(math.sqrt(2.0))
    assert row["cifar100_gap"] == pytest.approx(recipe.OPTIMUM["cifar100"] - 71.0)


def test_per_dataset_libra_search_on_stored_scores(shared_data_dir, tmp_path):
    out = tmp_path / "eval"
    assert (
        recipe.main(
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
    assert covered == sorted(recipe.TEST_COLUMNS)  # every dataset has exactly one LIBRA fitness
    for sel in libra.values():
        assert len(sel["proxies"]) == 3
        for ds in sel["datasets"]:
            assert f"({ds} validation accuracy)" in sel["how"]
    # the evaluation is the published test accuracy of the returned cell, on its fitness's datasets only
    test = pd.read_csv(shared_data_dir / "nb201" / "nasbench201_test_acc_200ep.csv").set_index("ArchitectureString")
    per_run = pd.read_csv(out / "per_run.csv")
    assert len(per_run) == 2 * (1 + len(libra))
    for _, run in per_run.iterrows():
        datasets = libra[run["fitness"]]["datasets"] if run["fitness"] in libra else list(recipe.TEST_COLUMNS)
        for ds, column in recipe.TEST_COLUMNS.items():
            if ds in datasets:
                assert run[ds] == pytest.approx(test.loc[run["best_arch"], column])
            else:
                assert math.isnan(run[ds])
    summary = pd.read_csv(out / "summary.csv").set_index("fitness")
    assert set(summary.index) == {"lswag", "libra"}
    assert summary[[f"{ds}_mean" for ds in recipe.TEST_COLUMNS]].notna().all().all()
    # every cell is stored, so the fitness's own whole-space optimum is reported: for L-SWAG the largest cell
    report = json.loads((out / "summary.json").read_text())
    lswag_opt = report["global_fitness_optimum"]["lswag"]
    assert lswag_opt["arch"] == LARGEST
    assert lswag_opt["imagenet16_120"] == pytest.approx(test.loc[LARGEST, "ImageNetTestAccuracy200Epochs"])
    assert "Test accuracies (200 epochs" in (out / "summary.md").read_text()


def test_cifar10_selection_serves_all_datasets(shared_data_dir, tmp_path):
    out = tmp_path / "eval"
    recipe.main(
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
    assert list(libra) == ["libra"] and libra["libra"]["datasets"] == list(recipe.TEST_COLUMNS)
    assert "(cifar10 validation accuracy)" in libra["libra"]["how"]
    run = pd.read_csv(out / "per_run.csv").iloc[0]
    assert all(math.isfinite(run[ds]) for ds in recipe.TEST_COLUMNS)


def test_fused_search_from_the_stored_scores_returns_a_cell_within_every_target(shared_data_dir, tmp_path):
    """The README's fused NB201 search (the greedy set chosen on validation accuracy), seed 0, budget 300: every
    cell it visits is in the two committed tables (nothing is scored live) and the returned cell is within 1.0 /
    2.5 / 2.5 points of the optimum on CIFAR-10 / CIFAR-100 / ImageNet16-120."""
    out = tmp_path / "fused"
    assert (
        recipe.main(
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
    for ds, optimum in recipe.OPTIMUM.items():
        assert run[ds] >= optimum - recipe.TARGET_GAP[ds]
    assert not list((out / "score_cache").glob("*.jsonl"))  # every value came from the tables
    assert "log-rank sum of vkdnw_single, jacov" in (out / "summary.md").read_text()


def test_score_table_supplies_only_what_it_holds(shared_data_dir, tmp_path):
    from lswag_lightning.search import MergedScorer, TableScorer

    base = ["--out", str(tmp_path), "--score-table", str(SCORE_TABLE), "--data-dir", str(shared_data_dir)]
    args = recipe.build_parser().parse_args(base)
    args.score_cache = tmp_path / "cache"
    scorer, _ = recipe.make_scorer(args, ["lswag", "naswot", "zico_ps"])
    assert isinstance(scorer, MergedScorer)
    assert scorer.owner == {"lswag": 0, "naswot": 0, "zico_ps": 1}  # zico_ps is not in the table: scored live
    # another L-SWAG interval is another scoring setting: its values cannot come from the table
    args = recipe.build_parser().parse_args(base + ["--layer-interval", "0,0"])
    args.score_cache = tmp_path / "cache"
    scorer, _ = recipe.make_scorer(args, ["lswag", "naswot"])
    assert isinstance(scorer.scorers[0], TableScorer) and scorer.scorers[0].proxies == ("naswot",)
    assert scorer.owner["lswag"] == 1 and scorer.scorers[1].score_options["layer_interval"] == (0, 0)
    only_lswag, live = recipe.make_scorer(args, ["lswag"])
    assert only_lswag is live and only_lswag.score_options["layer_interval"] == (0, 0)
    # several tables: each proxy from the first table with its column, the rest live
    args = recipe.build_parser().parse_args(base[:4] + [str(FUSED_TABLE)] + base[4:])
    args.score_cache = tmp_path / "cache"
    scorer, _ = recipe.make_scorer(args, ["lswag", "az_expressivity", "meco"])
    assert scorer.owner == {"lswag": 0, "az_expressivity": 1, "meco": 2}
    assert [type(s).__name__ for s in scorer.scorers] == ["TableScorer", "TableScorer", "ProxyScorer"]


def test_prescoring_a_bench_sample_takes_exactly_the_cells_lswag_bench_samples(shared_data_dir, tmp_path):
    from lswag_lightning.bench.plan import plan_benchmark

    bench = plan_benchmark("nb201", data_dir=shared_data_dir, sample=40, seed=3, proxies=["params"])
    cells = recipe.prescore_order(shared_data_dir, bench_sample=(40, 3))
    assert cells == list(bench.gt.table["arch"]) and len(set(cells)) == 40
    args = recipe.build_parser().parse_args(["--out", str(tmp_path), "--prescore-bench-sample", "40,3"])
    assert args.prescore_bench_sample == (40, 3)
    with pytest.raises(SystemExit):
        recipe.build_parser().parse_args(["--out", str(tmp_path), "--prescore-bench-sample", "40"])


def test_sharded_prescoring_splits_the_cells_and_reports_unfinished_shards(
    shared_data_dir, tmp_path, monkeypatch, capsys
):
    """Two shards of the pre-scoring (here over the first 8 cells of the order) write disjoint cells into one
    score cache; before the second has run, the coverage line names it."""
    order = recipe.prescore_order(shared_data_dir)
    monkeypatch.setattr(recipe, "prescore_order", lambda data_dir, seed=0, bench_sample=None: order[:8])
    from lswag_lightning.bench import Shard

    shares = [recipe.prescore_share(order[:8], Shard(i, 2)) for i in range(2)]
    assert sorted(shares[0] + shares[1]) == sorted(order[:8]) and not set(shares[0]) & set(shares[1])
    cache = tmp_path / "cache"
    common = [
        "--out",
        str(tmp_path / "pre"),
        "--score-cache",
        str(cache),
        "--fitnesses",
        "params",
        "--data-dir",
        str(shared_data_dir),
        "--threads",
        "1",
        "--device",
        "cpu",
    ]
    base = [*common, "--prescore-all", "--prescore-only"]
    assert recipe.main([*base, "--shard", "1/2"]) == 0
    assert "4 of 8 cells pre-scored; unfinished: shard 0/2: 0 of 4" in capsys.readouterr().out
    assert recipe.main([*base, "--shard", "0/2"]) == 0
    assert "8 of 8 cells pre-scored; every shard complete" in capsys.readouterr().out
    for i in range(2):  # each shard's process wrote its own cells, once
        records = [json.loads(line) for line in (cache / f"s{i}-of-2-w00.jsonl").read_text().splitlines()]
        assert sorted(r["arch"] for r in records) == sorted(shares[i])
    with pytest.raises(SystemExit):  # only the pre-scoring is sharded; the searches run once on the whole cache
        recipe.main([*common, "--shard", "0/2"])
