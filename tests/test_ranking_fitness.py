"""``lswag-search --fitness learned --ranking FILE`` and ``--fitness default``: a ranking fitted by ``lswag-libra
--method`` (or the shipped k = 0 ranking) as the search's fitness, on any pool; clear errors when it cannot run."""

from __future__ import annotations

import itertools
import json
import math

import numpy as np
import pandas as pd
import pytest

from lswag_lightning.analysis import fit_and_rank, load_default, load_ranking, save_ranking, spearman
from lswag_lightning.cli import search as cli
from lswag_lightning.search import make_fitness
from lswag_lightning.spaces.nb201 import OPS, arch_string

ALL_ARCHS = [arch_string(o) for o in itertools.product(OPS, repeat=6)]


def _synthetic(archs: list[str], seed: int = 0) -> pd.DataFrame:
    """NB201 cells with three stand-in proxy columns and an accuracy that follows synflow (plus a little noise)."""
    rng = np.random.default_rng(seed)
    synflow = np.array([a.count("conv_3x3") + 0.5 * a.count("conv_1x1") for a in archs], dtype=float)
    synflow += rng.normal(0, 0.1, len(archs))
    return pd.DataFrame(
        {
            "arch": archs,
            "synflow": synflow,
            "naswot": rng.normal(size=len(archs)),
            "params": rng.uniform(1e5, 1e6, len(archs)),
            "acc": 80 + 2 * synflow + rng.normal(0, 0.2, len(archs)),
        }
    )


def _saved(tmp_path, method: str, table: pd.DataFrame, proxies=("synflow", "naswot", "params")):
    ranking, _ = fit_and_rank(table, list(proxies), "acc", method)
    return save_ranking(ranking, tmp_path / method / "ranking.json", accuracy="acc")


def _cli(capsys, argv):
    try:
        code = cli.main(argv)
    except SystemExit as exc:
        code = exc.code
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_a_saved_learned_ranking_scores_a_new_pool_as_the_file_says(tmp_path):
    rng = np.random.default_rng(1)
    picks = rng.choice(len(ALL_ARCHS), 100, replace=False)
    trained = _synthetic([ALL_ARCHS[i] for i in picks[:40]], seed=2)
    path = _saved(tmp_path, "learned", trained)
    fitness = make_fitness("learned", ranking=path)
    pool = _synthetic([ALL_ARCHS[i] for i in picks[40:]], seed=3)[["synflow", "naswot", "params"]]
    values = fitness(pool)
    np.testing.assert_array_equal(values, load_ranking(path).score_table(pool))
    # fitted where accuracy follows synflow, the model ranks a pool it never saw by synflow
    assert spearman(values, pool["synflow"].to_numpy()) > 0.9
    assert fitness.pool_dependent and fitness.describe()["method"] == "learned"
    assert fitness.scored == ("synflow", "naswot", "params")


def test_a_saved_fused_choice_is_the_log_rank_of_its_set_by_hand(tmp_path):
    trained = _synthetic(ALL_ARCHS[:30])
    path = _saved(tmp_path, "best_single", trained)
    fitness = make_fitness("learned", ranking=path)
    assert fitness.proxies == ("synflow",)
    pool = pd.DataFrame({"synflow": [3.0, 1.0, 2.0, math.nan]})
    # one proxy: log(r / M) with M = 4 rows, NaN ranked last (rank 1)
    np.testing.assert_allclose(fitness(pool), np.log(np.array([4, 2, 3, 1]) / 4))


def test_default_fitness_is_the_shipped_k0_set_fused_by_log_rank(tmp_path):
    proxies = load_default().proxies
    fitness = make_fitness("default")
    assert fitness.proxies == tuple(proxies) and fitness.name == "default"
    rng = np.random.default_rng(0)
    pool = pd.DataFrame({p: rng.permutation(5).astype(float) + 1 for p in proxies})
    # every shipped proxy is higher-is-better: the value is its rank here; the fitness is the sum of log(r / M)
    expected = sum(np.log(pool[p].to_numpy() / 5) for p in proxies)
    np.testing.assert_allclose(fitness(pool), expected)


def test_sub_values_are_computed_by_their_proxy(tmp_path):
    table = _synthetic(ALL_ARCHS[:30]).rename(columns={"naswot": "lswag.lambda"})
    path = _saved(tmp_path, "learned", table, ("synflow", "lswag.lambda", "params"))
    fitness = make_fitness("learned", ranking=path)
    assert "lswag.lambda" in fitness.proxies and fitness.scored == ("synflow", "lswag", "params")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"fitness": "learned"}, "--fitness learned needs --ranking FILE"),
        ({"fitness": "lswag", "ranking": "x.json"}, "--ranking only applies to --fitness learned"),
        ({"fitness": "default", "ranking": "x.json"}, "for a saved one use --fitness learned"),
        ({"fitness": "learned", "ranking": "x.json", "fused_proxies": "a,b"}, "--fused-proxies do not apply"),
    ],
)
def test_bad_combinations_are_refused_with_the_fix(kwargs, message):
    name = kwargs.pop("fitness")
    with pytest.raises(ValueError, match=message):
        make_fitness(name, **kwargs)


def test_unreadable_ranking_files_are_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="lswag-libra TABLE --accuracy COL --method auto"):
        make_fitness("learned", ranking=tmp_path / "missing.json")
    bad = tmp_path / "libra.json"
    bad.write_text(json.dumps({"selection": {"proxies": ["a", "b", "c"]}}))
    with pytest.raises(ValueError, match="libra.json: not a ranking of format 'lswag-ranking'"):
        make_fitness("learned", ranking=bad)


def test_structure_features_need_score_tables_only(tmp_path):
    table = _synthetic(ALL_ARCHS[:30]).assign(live_params=lambda t: t["params"] * 0.9)
    path = _saved(tmp_path, "learned", table, ("synflow", "naswot", "params", "live_params"))
    with pytest.raises(ValueError, match=r"reads \['live_params'\], which are not registered proxies.*--table-only"):
        make_fitness("learned", ranking=path)
    fitness = make_fitness("learned", ranking=path, tables_only=True)
    assert "live_params" in fitness.scored


def test_lswag_search_runs_on_a_saved_ranking_and_reports_it(capsys, tmp_path):
    scores = _synthetic(ALL_ARCHS, seed=5)
    table_path = tmp_path / "scores.parquet"
    scores.drop(columns="acc").to_parquet(table_path)
    path = _saved(tmp_path, "learned", scores.sample(30, random_state=0))
    out = tmp_path / "search"
    argv = ["nb201", "--fitness", "learned", "--ranking", str(path), "--score-table", str(table_path)]
    argv += ["--table-only", "--budget", "25", "--population", "8", "--tournament", "3", "--no-progress"]
    code, printed, err = _cli(capsys, [*argv, "--out", str(out)])
    assert code == 0, err
    assert "25 architectures scored" in printed
    ranked = pd.read_csv(out / "ranked.csv")
    # the reported fitness is the saved ranking applied to the pool of every architecture scored (values from the
    # table: ranked.csv's params column is the built network's count, the table's is a stand-in)
    pool = scores.set_index("arch").loc[ranked["arch"]]
    np.testing.assert_allclose(ranked["fitness"], load_ranking(path).score_table(pool), rtol=1e-12)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["fitness"]["type"] == "ranking" and summary["fitness"]["method"] == "learned"
    assert "saved ranking `learned`" in (out / "report.md").read_text()


def test_lswag_search_refuses_a_ranking_it_cannot_compute(capsys, tmp_path):
    table = _synthetic(ALL_ARCHS[:30]).assign(depth_max=lambda t: t["synflow"].round())
    path = _saved(tmp_path, "learned", table, ("synflow", "naswot", "depth_max"))
    code, _, err = _cli(capsys, ["nb201", "--fitness", "learned", "--ranking", str(path), "--out", str(tmp_path / "o")])
    assert code == 2
    assert "depth_max" in err and "--table-only" in err
