"""The k = 0 default: chosen across benchmarks under a cost cap, left-one-out honestly, shipped and readable; the
scoring-cost measurement; the resumable structure table."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from lswag_lightning.analysis import structure as structure_mod
from lswag_lightning.analysis import table as table_mod
from lswag_lightning.analysis.costs import column_costs, cost_table, measure, set_cost
from lswag_lightning.analysis.defaults import DEFAULT_FILE, Benchmark, choose_across, leave_one_out, load_default


@pytest.fixture
def no_registry(monkeypatch):
    monkeypatch.setattr(table_mod, "registry_higher_is_better", lambda name: None)


def bench(name: str, seed: int, weight_b: float) -> Benchmark:
    """Accuracy = u + weight_b * v; proxy a sees u, b sees v, pricey sees both without noise."""
    rng = np.random.default_rng(seed)
    u, v = rng.normal(size=(2, 200))
    t = pd.DataFrame(
        {
            "a": u + 0.5 * rng.normal(size=200),
            "b": v + 0.5 * rng.normal(size=200),
            "pricey": u + weight_b * v,
            "params": rng.normal(size=200),
            "acc": u + weight_b * v,
        }
    )
    return Benchmark(name, t, ["acc"])


def test_choice_respects_the_cost_cap_and_leave_one_out_scores_elsewhere(no_registry):
    benches = [bench("x", 0, 1.0), bench("y", 1, 0.8), bench("z", 2, 1.2)]
    costs = {"a": 1.0, "b": 1.0, "pricey": 8.0, "params": 0.1}
    chosen, rho = choose_across(benches, ["a", "b", "pricey", "params"], costs, max_cost=3.0)
    assert set(chosen) == {"a", "b"} and rho == pytest.approx(np.mean([b.rho(chosen) for b in benches]))
    chosen, _ = choose_across(benches, ["a", "b", "pricey", "params"], costs, max_cost=10.0)
    assert chosen[0] == "pricey"  # affordable now, and exact
    lobo = leave_one_out(benches, ["a", "b", "params"], costs, max_cost=3.0)
    assert list(lobo.held_out) == ["x", "y", "z"] and (lobo.rho_default > lobo.rho_params).all()
    with pytest.raises(ValueError, match="no measured cost"):
        choose_across(benches, ["a", "unknown"], costs)


def test_shipped_default_is_readable_and_affordable():
    default = load_default()
    assert default.proxies and default.fusion == "log_rank"
    costs = default.info["cost_alone"]
    assert set(costs) == set(default.proxies) and default.info["cost_bound"] <= 3.0
    assert DEFAULT_FILE.is_file()


def test_cost_measurement_on_a_tiny_model():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(12, 4))
    x, y = torch.randn(8, 3, 2, 2), torch.randint(0, 4, (8,))
    table = measure({"tiny": (model, x, y)}, ["params", "synflow"], {"both": ["params", "synflow"]}, repeats=1)
    assert list(table.name) == ["train_step", "params", "synflow", "both"]
    assert (table.seconds > 0).all() and table.ratio.iloc[0] == 1.0
    costs = cost_table(table)
    assert set(costs) == {"params", "synflow"}
    assert column_costs(["synflow", "lswag.psi"], {"synflow": 1.5, "lswag": 2.0}) == {"synflow": 1.5, "lswag.psi": 2.0}


def test_set_cost_pays_each_need_once():
    needs = {"a": {"x"}, "b": {"x"}, "c": {"x", "y"}, "d": {"z"}}
    costs = {"a": 1.0, "b": 1.5, "c": 2.0, "d": 0.5}
    assert set_cost(["a", "b"], costs, lambda n: frozenset(needs[n])) == 1.5  # same needs: the dearer once
    assert set_cost(["a", "c", "d"], costs, lambda n: frozenset(needs[n])) == 2.5  # a's needs are inside c's
    # the registry's own needs: AZ-NAS's three values come from one pass, lswag's sub-values from lswag's
    real = {"az_expressivity": 1.7, "az_trainability": 1.4, "lswag": 2.0, "lswag.psi": 2.0, "zico": 1.5}
    assert set_cost(["az_expressivity", "az_trainability"], real) == 1.7
    assert set_cost(["lswag", "lswag.psi", "zico"], real) == 2.0  # zico's needs are a subset of L-SWAG's


def test_structure_table_resumes_from_its_partial_file(tmp_path, monkeypatch):
    archs = [
        "|none~0|+|none~0|none~1|+|nor_conv_3x3~0|none~1|none~2|",
        "|none~0|+|none~0|none~1|+|skip_connect~0|none~1|none~2|",
        "|avg_pool_3x3~0|+|none~0|none~1|+|skip_connect~0|none~1|none~2|",
    ]
    options = {"C": 4, "N": 1, "num_classes": 10}
    partial = tmp_path / "s.partial.csv"
    first = structure_mod.structure_table("nb201", archs[:2], options, partial)
    calls = []
    real = structure_mod.describe_architecture

    def counted(space, arch, build_options, **kw):
        calls.append(arch)
        return real(space, arch, build_options, **kw)

    monkeypatch.setattr(structure_mod, "describe_architecture", counted)
    full = structure_mod.structure_table("nb201", archs, options, partial)
    assert calls == [archs[2]]  # the first two came from the partial file
    pd.testing.assert_frame_equal(full.iloc[:2].reset_index(drop=True), first, check_dtype=False)
    # a skip-only cell leaves the two paths of each of the 2 reduction blocks; a conv in its place adds depth
    assert (
        full.loc[1, "log10_paths"] == pytest.approx(np.log10(4)) and full.loc[0, "depth_max"] > full.loc[1, "depth_max"]
    )
