"""Config spaces (a model family from a YAML file): keys, seeded sampling, one-change mutation, validity on the meta
device, constraints, build arguments, Hydra nodes, the search path. Tiny CPU models throughout."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from family_nets import write_famnets
from torch import nn

from lswag_lightning.candidates import count_flops
from lswag_lightning.spaces import (
    ConfigArch,
    ConfigSpace,
    FamilyConfigError,
    available_spaces,
    get_space,
    load_space,
    space_file_names,
    space_from_config,
)

MINIMAL = """\
_target_: mypkg.nets.MyNet          # any importable callable returning an nn.Module
fixed: {num_classes: 10}            # optional keyword arguments passed as they are
choices:                            # keyword argument -> list of values (a value may itself be a list)
  depth: [2, 3, 4]
  width: [16, 32, 64]
"""


@pytest.fixture(scope="module")
def famnets_dir(tmp_path_factory):
    return write_famnets(tmp_path_factory.getbasetemp() / "user_code")  # one folder per session: one famnets


@pytest.fixture
def famnets(famnets_dir, monkeypatch):
    """The user's package importable, as with PYTHONPATH=<folder>."""
    monkeypatch.syspath_prepend(str(famnets_dir))
    return famnets_dir


def heads_family(**extra) -> ConfigSpace:
    """dim x heads x ratio, where dim % heads != 0 does not build (3 of the 16 dim/heads pairs: 8/3, 12/8, 16/3)."""
    return space_from_config(
        {
            "_target_": "famnets.nets.HeadNet",
            "choices": {"dim": [8, 12, 16, 24], "heads": [2, 3, 4, 8], "ratio": [1.0, 2.0, 4.0]},
            **extra,
        },
        "heads.yaml",
    )


# ------------------------------------------------------------------------------------------------ the minimal file
def test_the_minimal_file_works_as_it_stands(famnets, tmp_path):
    path = tmp_path / "my_family.yaml"
    path.write_text(MINIMAL)
    for space in (load_space(path), get_space(str(path))):
        assert isinstance(space, ConfigSpace) and space.name == "my_family"
        spec = space.sample(0)
        key = space.encode(spec)
        assert key == f"depth={spec.to_dict()['depth']},width={spec.to_dict()['width']}"
        assert space.decode(key) == spec
        net = space.build(spec)
        assert type(net).__name__ == "MyNet"
        assert net(torch.randn(2, 3, 32, 32)).shape == (2, 10)
        assert space.param_count(spec) == sum(p.numel() for p in net.parameters())
    assert available_spaces() == sorted(
        ["autoformer_mini", "autoformer_s", "autoformer_ti", "darts", "nb101", "nb201", "tnb101_macro", "tnb101_micro"]
    )  # a family file is a space, not a registered name


# ------------------------------------------------------------------------------------------------------------ keys
def test_key_is_canonical_in_file_order_and_round_trips(famnets):
    space = heads_family()
    spec = space.decode("dim=16,heads=4,ratio=2.0")
    assert spec == ConfigArch((("dim", 16), ("heads", 4), ("ratio", 2.0)))
    assert space.encode(spec) == "dim=16,heads=4,ratio=2.0"
    # names in any order, an integral float without ".0", a mapping, a JSON object and a spec all decode the same
    for same in ("ratio=2.0,heads=4,dim=16", "dim=16,heads=4,ratio=2", {"dim": 16, "heads": 4, "ratio": 2}, spec):
        assert space.decode(same) == spec
    assert space.decode('{"dim": 16, "heads": 4, "ratio": 2.0}') == spec
    for seed in range(20):
        spec = space.sample(seed)
        text = space.encode(spec)
        assert space.decode(text) == spec and space.encode(space.decode(text)) == text


def test_per_stage_range_and_list_valued_choices_have_readable_keys(famnets):
    space = space_from_config(
        {
            "_target_": "famnets.nets.StageNet",
            "choices": {
                "layers": {"per_stage": [[1, 2], [1, 2, 3], {"range": [1, 3]}]},
                "widths": [[8, 16, 32], [16, 32, 64]],
            },
        },
        "stages.yaml",
    )
    spec = space.decode("layers=[2,3,1],widths=[16,32,64]")
    assert spec.to_dict() == {"layers": [2, 3, 1], "widths": [16, 32, 64]}
    assert space.encode(spec) == "layers=[2,3,1],widths=[16,32,64]"
    assert space.decode({"layers": [2, 3, 1], "widths": [16, 32, 64]}) == spec
    net = space.build(spec)
    assert net(torch.randn(2, 3, 32, 32)).shape == (2, 10)
    with pytest.raises(ValueError, match=r"layers\[0\]=3 is not one of the choices \(1, 2\)"):
        space.decode("layers=[3,3,1],widths=[16,32,64]")
    with pytest.raises(ValueError, match="must be a list of 3 values"):
        space.decode("layers=[1,1],widths=[16,32,64]")
    # the same choices at every stage, and a range with a step (stop included when on the grid)
    same = space_from_config(
        {"_target_": "famnets.nets.StageNet", "choices": {"layers": {"per_stage": {"range": [1, 5, 2]}, "stages": 3}}},
        "same.yaml",
    )
    assert [c.slots for c in same.family.choices] == [((1, 3, 5),) * 3]
    assert same.encode(same.sample(0)).startswith("layers=[")


@pytest.mark.parametrize(
    "bad,message",
    [
        ("dim=16,heads=4,ratio=2.0,depth=3", r"unknown argument\(s\) \['depth'\]"),
        ("dim=20,heads=4,ratio=2.0", r"dim=20 is not one of the choices \(8, 12, 16, 24\)"),
        ("dim=16,heads=4", r"missing \['ratio'\]"),
        ("dim=16,dim=16,heads=4,ratio=2.0", "more than once"),
        ("dim16", "is not name=value"),
        ("", "empty key"),
        ({"dim": 16, "heads": 4, "ratio": "2.0"}, r"ratio=\"2.0\" is not one of the choices"),
        ({"dim": True, "heads": 4, "ratio": 2.0}, "dim=true is not one of the choices"),
        (42, "expected a key"),
    ],
)
def test_bad_keys_are_one_line_errors_naming_the_argument(famnets, bad, message):
    with pytest.raises(ValueError, match=message) as err:
        heads_family().decode(bad)
    assert "\n" not in str(err.value)


# -------------------------------------------------------------------------------------------- sampling, mutation
def test_sampling_is_seeded_and_reproducible(famnets):
    space = heads_family()
    by_seed = [space.encode(space.sample(seed)) for seed in range(10)]
    assert by_seed == [space.encode(heads_family().sample(seed)) for seed in range(10)]  # a fresh object agrees
    assert len(set(by_seed)) > 3
    gen_a, gen_b = np.random.default_rng(5), np.random.default_rng(5)
    assert [space.sample(gen_a) for _ in range(6)] == [space.sample(gen_b) for _ in range(6)]
    with pytest.raises(TypeError):
        space.sample("seed")


def test_mutate_changes_exactly_one_choice(famnets):
    space = space_from_config(
        {
            "_target_": "famnets.nets.StageNet",
            "choices": {"layers": {"per_stage": [1, 2], "stages": 3}, "widths": [[8, 16, 32], [16, 32, 64]]},
        },
        "stages.yaml",
    )
    gen = np.random.default_rng(0)
    spec = space.sample(gen)
    changed = set()
    for _ in range(60):
        child = space.mutate(spec, gen)
        slots = lambda s: [*s.to_dict()["layers"], tuple(s.to_dict()["widths"])]  # noqa: E731
        diffs = [i for i, (a, b) in enumerate(zip(slots(spec), slots(child))) if a != b]
        assert len(diffs) == 1, (space.encode(spec), space.encode(child))
        changed.add(diffs[0])
        spec = child
    assert changed == {0, 1, 2, 3}  # every stage and the width get mutated
    assert space.mutate(space.encode(spec), 3) == space.mutate(spec, 3)  # seeded, takes the key


def test_invalid_combinations_are_never_sampled_or_mutated_into(famnets):
    space = heads_family()
    bad = space.decode("dim=12,heads=8,ratio=1.0")
    verdict = space.verdict(bad)
    assert not verdict.ok and verdict.reason == "ValueError: dim 12 must be divisible by heads 8"
    assert not space.admissible(bad)
    with pytest.raises(ValueError, match="dim=12,heads=8,ratio=1.0 does not build: ValueError: dim 12"):
        space.build(bad)
    gen = np.random.default_rng(1)
    seen = set()
    spec = space.sample(gen)
    for _ in range(150):
        for candidate in (space.sample(gen), spec := space.mutate(spec, gen)):
            d = candidate.to_dict()
            assert d["dim"] % d["heads"] == 0, space.encode(candidate)
            seen.add((d["dim"], d["heads"]))
    assert len(seen) == 13  # every valid dim/heads pair turns up; none of the 3 invalid ones


def test_a_verdict_is_built_once_per_key_on_the_meta_device(famnets):
    from famnets import nets

    space = space_from_config({"_target_": "famnets.nets.MyNet", "choices": {"depth": [1, 2], "width": [4, 8]}}, "m")
    nets.BUILT_ON.clear()
    spec = space.decode("depth=2,width=8")
    for _ in range(3):
        assert space.is_valid(spec)
        assert space.param_count(spec) == 3 * 8 * 9 + 8 + 8 * 8 * 9 + 8 + 8 * 10 + 10
    assert nets.BUILT_ON == ["meta"]  # one build, no weights allocated
    assert space.param_count(spec, num_classes=3) == 3 * 8 * 9 + 8 + 8 * 8 * 9 + 8 + 8 * 3 + 3
    assert nets.BUILT_ON == ["meta", "meta"]  # other build options: a new verdict


def test_a_model_whose_logits_do_not_match_num_classes_is_invalid(famnets):
    space = space_from_config({"_target_": "famnets.nets.WrongWidth", "choices": {"width": [1, 2]}}, "wrong.yaml")
    verdict = space.verdict(space.decode("width=1"))
    assert not verdict.ok and verdict.reason == "forward returned shape (1, 1000) for one image, expected (1, 10)"


def test_constraints_are_honoured_by_sample_and_mutate(famnets):
    params = {}
    base = {"_target_": "famnets.nets.MyNet", "choices": {"depth": [1, 2, 3, 4], "width": [4, 8, 16, 32]}}
    unconstrained = space_from_config(base, "free.yaml")
    for d in (1, 2, 3, 4):
        for w in (4, 8, 16, 32):
            params[(d, w)] = unconstrained.param_count(f"depth={d},width={w}")
    space = space_from_config({**base, "constraints": {"min_params": 1000, "max_params": 20000}}, "bounded.yaml")
    gen = np.random.default_rng(0)
    spec = space.sample(gen)
    for _ in range(100):
        for candidate in (space.sample(gen), spec := space.mutate(spec, gen)):
            d = candidate.to_dict()
            assert 1000 <= params[(d["depth"], d["width"])] <= 20000
    flops_bound = 2e6
    by_flops = space_from_config({**base, "constraints": {"max_flops": flops_bound}}, "flops.yaml")
    for seed in range(15):
        spec = by_flops.sample(seed)
        assert by_flops.flops(spec) == count_flops(by_flops, spec, {"num_classes": 10, "in_chans": 3, "img_size": 32})
        assert by_flops.flops(spec) <= flops_bound


# --------------------------------------------------------------------------------------------------------- build
def test_the_commands_sizes_reach_the_callable_unless_fixed(famnets, caplog):
    free = space_from_config(
        {"_target_": "famnets.nets.FlatNet", "build_options": {"img_size": 8}, "choices": {"width": [4, 8]}}, "flat"
    )
    spec = free.decode("width=4")
    assert free.is_valid(spec)  # checked at the file's 8 px: 3*8*8 inputs
    assert free.build(spec)(torch.randn(2, 3, 8, 8)).shape == (2, 10)
    assert free.build(spec, num_classes=7, in_chans=1, img_size=5)(torch.randn(2, 1, 5, 5)).shape == (2, 7)
    assert free.param_count(spec, num_classes=7, in_chans=1, img_size=5) == 25 * 4 + 4 + 4 * 7 + 7
    fixed = space_from_config(
        {"_target_": "famnets.nets.FlatNet", "fixed": {"num_classes": 3}, "choices": {"width": [4]}}, "fixed.yaml"
    )
    with caplog.at_level(logging.WARNING):
        net = fixed.build(fixed.decode("width=4"), num_classes=100)
    assert net(torch.randn(1, 3, 32, 32)).shape == (1, 3)  # the file wins, and says so
    assert "fixed num_classes=3 wins over the requested 100" in caplog.text
    # a callable that takes no img_size / in_chans is not given them; a function works like a class
    func = space_from_config({"_target_": "famnets.nets.make_mlp", "choices": {"width": [4, 8]}}, "func.yaml")
    assert func.build(func.sample(0), num_classes=4, img_size=32)(torch.randn(2, 3, 32, 32)).shape == (2, 4)


def test_build_options_are_passed_through_but_never_override_a_choice(famnets):
    space = heads_family()
    spec = space.decode("dim=16,heads=4,ratio=1.0")
    net = space.build(spec, act=nn.GELU)
    assert any(isinstance(m, nn.GELU) for m in net.modules())
    with pytest.raises(ValueError, match="'ratio' is a choice of this family"):
        space.build(spec, ratio=4.0)
    with pytest.raises(ValueError, match="build option 'patch_size' is not an argument of famnets.nets.HeadNet"):
        space.build(spec, patch_size=4)


def test_hydra_nodes_pass_classes_and_fresh_objects(famnets):
    space = space_from_config(
        {
            "_target_": "famnets.nets.StageNet",
            "fixed": {"widths": [8, 8, 8]},
            "choices": {
                "layers": [[1, 1, 1]],
                "norm": [
                    None,
                    {"_target_": "hydra.utils.get_class", "path": "torch.nn.BatchNorm2d"},
                    {"_target_": "torch.nn.BatchNorm2d", "_partial_": True, "momentum": 0.5},
                ],
            },
        },
        "nodes.yaml",
    )
    keys = sorted(space.encode(space.sample(seed)) for seed in range(30))
    assert set(keys) == {
        "layers=[1,1,1],norm=null",
        "layers=[1,1,1],norm=BatchNorm2d",
        "layers=[1,1,1],norm=BatchNorm2d(momentum=0.5)",
    }
    partial = space.build("layers=[1,1,1],norm=BatchNorm2d(momentum=0.5)")
    assert [m.momentum for m in partial.modules() if isinstance(m, nn.BatchNorm2d)] == [0.5] * 3
    plain = space.build("layers=[1,1,1],norm=BatchNorm2d")
    assert [m.momentum for m in plain.modules() if isinstance(m, nn.BatchNorm2d)] == [0.1] * 3
    assert not any(isinstance(m, nn.BatchNorm2d) for m in space.build("layers=[1,1,1],norm=null").modules())
    twins = [{"_target_": "torch.nn.BatchNorm2d", "_partial_": True}, {"_target_": "torch.nn.BatchNorm2d"}]
    with pytest.raises(FamilyConfigError, match="choices.norm: two values have the same key text BatchNorm2d"):
        space_from_config({"_target_": "famnets.nets.StageNet", "choices": {"layers": [[1]], "norm": twins}}, "t")
    # a node that makes an object is instantiated afresh for every build
    acts = space_from_config(
        {
            "_target_": "famnets.nets.ModuleArgNet",
            "fixed": {"act": {"_target_": "torch.nn.GELU"}},
            "choices": {"width": [4]},
        },
        "acts.yaml",
    )
    a, b = acts.build("width=4"), acts.build("width=4")
    assert isinstance(a.act, nn.GELU) and a.act is not b.act


# --------------------------------------------------------------------------------------------------- search path
def test_a_user_folder_on_the_search_path(famnets, tmp_path, monkeypatch):
    folder = tmp_path / "my_configs"
    (folder / "space").mkdir(parents=True)
    (folder / "mine.yaml").write_text(MINIMAL)
    (folder / "space" / "hydra_style.yml").write_text(MINIMAL.replace("[2, 3, 4]", "[5, 6]"))
    assert load_space("mine", search_path=[folder]).name == "mine"
    assert load_space("hydra_style", search_path=[folder]).decode("depth=5,width=16")  # a Hydra --config-dir
    with pytest.raises(ValueError, match="unknown search space 'mine'"):
        get_space("mine")
    monkeypatch.setenv("LSWAG_SPACE_PATH", str(folder))
    assert get_space("mine").name == "mine" and get_space("mine.yaml").name == "mine"
    assert {"hydra_style", "mine", "timm_resnet", "timm_vit"} <= set(space_file_names())
    assert get_space("nb201").name == "nb201"  # a registered name still wins
    with pytest.raises(ValueError, match="no space file 'nothere.yaml'.*LSWAG_SPACE_PATH"):
        get_space("nothere.yaml")
    with pytest.raises(ValueError, match="Did you mean 'mine'"):
        get_space("mien")


def test_python_path_imports_a_module_outside_the_package_and_leaves_sys_path(tmp_path, monkeypatch):
    example = Path(__file__).resolve().parents[1] / "examples" / "own_family"
    # the same file without python_path: the module must then be importable another way
    (tmp_path / "tiny_cnn.yaml").write_text((example / "tiny_cnn.yaml").read_text().replace("python_path: [.]", ""))
    monkeypatch.delitem(sys.modules, "tiny_nets", raising=False)
    with pytest.raises(FamilyConfigError, match="_target_: cannot import 'tiny_nets.TinyCNN'.*python_path"):
        load_space(tmp_path / "tiny_cnn.yaml")
    before = list(sys.path)
    space = load_space(example / "tiny_cnn.yaml")
    spec = space.sample(0)
    assert type(space.build(spec)).__name__ == "TinyCNN"
    assert sys.path == before  # the folder was on the path only while importing and building
    monkeypatch.delitem(sys.modules, "tiny_nets")
    monkeypatch.syspath_prepend(str(example))  # PYTHONPATH=examples/own_family
    assert load_space(tmp_path / "tiny_cnn.yaml").sample(0) == spec
