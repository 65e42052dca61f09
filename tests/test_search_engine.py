"""The search loop: reproducibility, resume, constraints, budget accounting, evolution vs random."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pandas as pd
import pytest

from lswag_lightning.search import (
    FunctionScorer,
    InfeasibleBudgetError,
    LibraFitness,
    ProxyFitness,
    Search,
    SearchSettings,
    count_flops,
    write_outputs,
)
from lswag_lightning.spaces import get_space
from lswag_lightning.spaces.nb201 import EDGES, OPS

SPACE = get_space("nb201")
_TABLE = np.random.default_rng(7).normal(size=(len(EDGES), len(OPS)))


def synthetic(spec) -> dict[str, float]:
    """A cheap deterministic landscape on NB201: an additive score per (edge, op) plus a small pairwise term, and
    two more "proxies" for LIBRA tests."""
    idx = [OPS.index(op) for op in spec.ops]
    additive = float(sum(_TABLE[e, i] for e, i in enumerate(idx)))
    pair = 0.3 * float(np.cos(idx[0] * 1.3 + idx[5] * 0.7))
    return {
        "synth": additive + pair,
        "convs": float(sum(op.startswith("nor_conv") for op in spec.ops)),
        "skips": float(spec.ops.count("skip_connect")),
    }


def global_rank(arch: str) -> int:
    """Rank (1 = best) of ``arch`` under ``synth`` among all 15,625 cells."""
    values = sorted(
        (synthetic(SPACE.decode({"ops": list(o)}))["synth"] for o in itertools.product(OPS, repeat=6)), reverse=True
    )
    return values.index(synthetic(SPACE.decode(arch))["synth"]) + 1


class CountingScorer(FunctionScorer):
    """A FunctionScorer that counts calls and can raise at a given call (to simulate an interruption)."""

    def __init__(self, interrupt_at: int | None = None):
        super().__init__(synthetic, ["synth", "convs", "skips"], name="synthetic")
        self.calls: list[str] = []
        self.interrupt_at = interrupt_at

    def score(self, spec, arch):
        if self.interrupt_at is not None and len(self.calls) + 1 == self.interrupt_at:
            raise KeyboardInterrupt("simulated interruption")
        self.calls.append(arch)
        return super().score(spec, arch)


def make(
    strategy="evolution",
    budget=40,
    seed=0,
    out=None,
    scorer=None,
    fitness=None,
    population=10,
    tournament=3,
    **settings,
):
    """A synthetic-fitness search of NB201 (settings: other SearchSettings fields)."""
    return Search(
        SPACE,
        scorer or CountingScorer(),
        fitness or ProxyFitness("synth", higher_is_better=True),
        SearchSettings(
            "nb201",
            strategy=strategy,
            budget=budget,
            seed=seed,
            population=population,
            tournament=tournament,
            **settings,
        ),
        out_dir=out,
    )


# ------------------------------------------------------------------------------------------ reproducibility
@pytest.mark.parametrize("strategy", ["evolution", "random"])
def test_same_seed_same_search_different_seed_different(strategy):
    a = make(strategy, seed=3).run().ranked
    b = make(strategy, seed=3).run().ranked
    c = make(strategy, seed=4).run().ranked
    pd.testing.assert_frame_equal(a, b)
    assert list(a["arch"]) != list(c["arch"])


def test_budget_counts_distinct_scored_archs_and_duplicates_are_never_rescored():
    scorer = CountingScorer()
    search = make(budget=60, scorer=scorer, population=8, tournament=4)
    result = search.run()
    assert len(scorer.calls) == 60 == len(set(scorer.calls)) == len(result.ranked)
    assert result.complete and result.stopped is None
    assert result.counters["proposals"] == 60 + result.counters["duplicates"]
    # evolution children point to a parent that was evaluated before them
    ranked = result.ranked.sort_values("evaluation")
    children = ranked[ranked["parent"].notna()]
    assert len(children) == 60 - 8
    assert (children["parent"].astype(int) < children["evaluation"]).all()


def test_population_ages_out_oldest():
    search = make(budget=25, population=5, tournament=2)
    search.run()
    assert search.population == list(range(20, 25))  # the five most recent evaluations


def test_ranked_is_best_first_with_all_proxies_and_fitness():
    result = make(budget=30).run()
    r = result.ranked
    assert list(r["rank"]) == list(range(1, 31))
    assert r["fitness"].is_monotonic_decreasing
    assert {"arch", "params", "fitness", "synth", "convs", "skips", "evaluation"} <= set(r.columns)
    np.testing.assert_allclose(r["fitness"], r["synth"])
    assert result.best["arch"] == r.iloc[0]["arch"]
    # the best-so-far curve is non-decreasing for a pool-independent fitness and ends at the best
    curve = [f for _, f in result.trajectory]
    assert curve == sorted(curve) and curve[-1] == pytest.approx(r.iloc[0]["fitness"])


# -------------------------------------------------------------------------------------------------- resume
@pytest.mark.parametrize("strategy,every", [("evolution", 1), ("evolution", 4), ("random", 3)])
def test_resume_after_interruption_ends_like_an_uninterrupted_run(tmp_path, strategy, every):
    full = Search(
        SPACE,
        CountingScorer(),
        ProxyFitness("synth", higher_is_better=True),
        SearchSettings("nb201", strategy=strategy, budget=35, seed=11, population=8, tournament=3),
        out_dir=tmp_path / "full",
        checkpoint_every=every,
    )
    ref = full.run()
    write_outputs(full, ref, tmp_path / "full")

    # interrupted in the middle of the 18th scoring (after the generator moved for that proposal)
    first = Search(
        SPACE,
        CountingScorer(interrupt_at=18),
        ProxyFitness("synth", higher_is_better=True),
        SearchSettings("nb201", strategy=strategy, budget=35, seed=11, population=8, tournament=3),
        out_dir=tmp_path / "cut",
        checkpoint_every=every,
    )
    with pytest.raises(KeyboardInterrupt):
        first.run()
    saved = json.loads((tmp_path / "cut" / "checkpoint.json").read_text())
    assert 0 < len(saved["history"]) <= 17
    second = Search(
        SPACE,
        CountingScorer(),
        ProxyFitness("synth", higher_is_better=True),
        SearchSettings("nb201", strategy=strategy, budget=35, seed=11, population=8, tournament=3),
        out_dir=tmp_path / "cut",
        checkpoint_every=every,
    )
    assert second.resumed_from == len(saved["history"])
    res = second.run()
    write_outputs(second, res, tmp_path / "cut")
    assert (tmp_path / "cut" / "ranked.csv").read_text() == (tmp_path / "full" / "ranked.csv").read_text()
    assert res.trajectory == ref.trajectory


def test_resume_with_a_stop_after_k_evaluations_and_a_larger_budget(tmp_path):
    ref = make(budget=30, seed=5).run().ranked
    part = make(budget=30, seed=5, out=tmp_path)
    part.run(max_new_evaluations=12)
    assert len(part.history) == 12
    again = make(budget=30, seed=5, out=tmp_path)
    pd.testing.assert_frame_equal(again.run().ranked.drop(columns="source"), ref.drop(columns="source"))
    # the same settings with a larger budget continue the same search
    longer = make(budget=40, seed=5, out=tmp_path).run().ranked
    assert len(longer) == 40
    assert set(ref["arch"]) <= set(longer["arch"])


def test_resume_refuses_a_checkpoint_of_different_settings(tmp_path):
    make(budget=5, seed=1, out=tmp_path).run()
    with pytest.raises(ValueError, match=r"settings.seed: checkpoint 1 != now 2"):
        make(budget=5, seed=2, out=tmp_path)
    with pytest.raises(ValueError, match="settings.strategy"):
        make("random", budget=5, seed=1, out=tmp_path)


# ------------------------------------------------------------------------------------------- constraints
def test_parameter_budget_is_honoured_by_every_returned_arch():
    limit = 400_000
    search = make(budget=50, max_params=limit, population=10)
    result = search.run()
    assert len(result.ranked) == 50
    assert (result.ranked["params"] <= limit).all()
    for arch, params in zip(result.ranked["arch"], result.ranked["params"]):
        assert SPACE.param_count(SPACE.decode(arch)) == params <= limit
    assert result.counters["over_params"] > 0  # the limit did bite (median NB201 cell: ~370k at 10 classes)


def test_impossible_parameter_budget_is_a_clear_error():
    search = make(budget=5, max_params=50_000, max_failed_proposals=300)
    with pytest.raises(
        InfeasibleBudgetError,
        match=r"no architecture of nb201 meets the constraints.*"
        r"--max-params 50,000 \(smallest seen: 73,306 parameters\)",
    ):
        search.run()
    assert isinstance(InfeasibleBudgetError("x"), ValueError)
    assert not search.history


def test_search_stops_early_when_the_feasible_space_is_exhausted():
    # 729 cells have the minimum 73,306 parameters (no conv on any edge); ask for more than exist
    search = make("random", budget=800, max_params=73_306, max_failed_proposals=3000)
    result = search.run()
    assert not result.complete and result.stopped and "exhausted" in result.stopped
    assert 680 < len(result.ranked) <= 729
    assert (result.ranked["params"] == 73_306).all()


def test_flops_budget_uses_the_flops_proxy_count():
    from lswag_lightning import score_network

    spec = SPACE.decode("|nor_conv_3x3~0|+|none~0|skip_connect~1|+|avg_pool_3x3~0|nor_conv_1x1~1|none~2|")
    import torch

    flops = count_flops(SPACE, spec, {})
    report = score_network(SPACE.build(spec), torch.randn(4, 3, 32, 32), proxies=["flops"])
    assert flops == report.values["flops"]
    limit = 150e6
    result = make(budget=4, max_flops=limit, population=2, tournament=1).run()
    assert (result.ranked["flops"] <= limit).all()
    assert result.counters["over_flops"] > 0 or result.ranked["flops"].max() > 0


# ------------------------------------------------------------------------------------------ LIBRA pool
def test_libra_fitness_is_recomputed_over_the_history_pool():
    fitness = LibraFitness(["synth", "convs", "skips"], higher_is_better={"synth": True, "convs": True, "skips": False})
    search = make(budget=12, fitness=fitness)
    result = search.run()
    table = pd.DataFrame([e.values for e in search.history])
    expected = np.mean([table["synth"].rank() / 12, table["convs"].rank() / 12, (-table["skips"]).rank() / 12], axis=0)
    got = result.ranked.sort_values("evaluation")["fitness"].to_numpy()
    np.testing.assert_allclose(got, expected)
    # the curve: after t evaluations, the best fitness with the first t archs as pool
    t = 5
    sub = table.iloc[:t]
    fit_t = np.mean([sub["synth"].rank() / t, sub["convs"].rank() / t, (-sub["skips"]).rank() / t], axis=0)
    assert result.trajectory[t - 1] == (int(np.argmax(fit_t)), pytest.approx(fit_t.max()))


def test_rank_pool_population_ranks_within_the_population():
    fitness = LibraFitness(["synth", "convs", "skips"], higher_is_better={"synth": True, "convs": True, "skips": True})
    search = make(budget=20, fitness=fitness, rank_pool="population", population=6, tournament=6)
    search.run()
    pop = search.population
    table = pd.DataFrame([search.history[i].values for i in pop])
    expected = np.mean([table[c].rank() / len(pop) for c in ("synth", "convs", "skips")], axis=0)
    np.testing.assert_allclose(search._pool_fitness(pop), expected)


# ----------------------------------------------------------------------------------- evolution vs random
def test_evolution_beats_random_on_a_synthetic_landscape():
    evo, rnd = [], []
    for seed in range(5):
        evo.append(
            global_rank(make("evolution", budget=150, seed=seed, population=20, tournament=5).run().best["arch"])
        )
        rnd.append(global_rank(make("random", budget=150, seed=seed).run().best["arch"]))
    # random search's best of 150 lands around rank 15625/151 ~ 100; evolution climbs the additive landscape
    assert np.median(evo) < np.median(rnd)
    assert np.mean(evo) < np.mean(rnd) / 3
    assert min(evo) <= 3


def test_settings_validation_messages():
    with pytest.raises(ValueError, match="tournament .* must be <= population"):
        SearchSettings("nb201", population=4, tournament=5).validate()
    with pytest.raises(ValueError, match="strategy must be one of"):
        SearchSettings("nb201", strategy="bayes").validate()
    with pytest.raises(ValueError, match="max_params must be a positive number"):
        SearchSettings("nb201", max_params=-3).validate()
    with pytest.raises(ValueError, match="budget must be an integer >= 1"):
        SearchSettings("nb201", budget=0).validate()
    with pytest.raises(ValueError, match="does not compute"):
        Search(SPACE, CountingScorer(), ProxyFitness("lswag"), SearchSettings("nb201"))
