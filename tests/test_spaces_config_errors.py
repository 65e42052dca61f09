"""Config-space files that cannot work: each mistake is one line naming the file, the key and the fix."""

from __future__ import annotations

import pytest
from family_nets import write_famnets

from lswag_lightning.spaces import FamilyConfigError, get_space, load_space, space_from_config

GOOD = {"_target_": "famnets.nets.MyNet", "choices": {"depth": [1, 2], "width": [4, 8]}}


@pytest.fixture(scope="module")
def famnets_dir(tmp_path_factory):
    return write_famnets(tmp_path_factory.getbasetemp() / "user_code")  # one folder per session: one famnets


@pytest.fixture(autouse=True)
def famnets(famnets_dir, monkeypatch):
    monkeypatch.syspath_prepend(str(famnets_dir))


def refused(data, match: str) -> str:
    with pytest.raises(FamilyConfigError, match=match) as err:
        space_from_config(data, "fam.yaml")
    message = str(err.value)
    assert "\n" not in message and message.startswith("fam.yaml: ")
    return message


@pytest.mark.parametrize(
    "target,cause",
    [
        ("famnets.nets.MyNett", "'famnets.nets' has no attribute 'MyNett'"),
        ("nopkg.nets.MyNet", "no module named 'nopkg'"),
        ("famnets..MyNet", "is not a dotted path"),
    ],
)
def test_an_unknown_callable(target, cause):
    message = refused({**GOOD, "_target_": target}, "_target_: cannot import")
    assert cause in message and "fix the dotted path, or put its folder on PYTHONPATH or under python_path:" in message


def test_a_module_that_fails_to_import_says_why(tmp_path, monkeypatch):
    (tmp_path / "brokenpkg").mkdir()
    (tmp_path / "brokenpkg" / "__init__.py").write_text("")
    (tmp_path / "brokenpkg" / "nets.py").write_text("import not_installed_dependency\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    refused({**GOOD, "_target_": "brokenpkg.nets.Net"}, "No module named 'not_installed_dependency'")
    refused({**GOOD, "_target_": "famnets.nets.BUILT_ON"}, "'famnets.nets.BUILT_ON' is a list, not a callable")
    refused({**GOOD, "_target_": None}, "_target_ is missing")


def test_an_argument_the_callable_does_not_take():
    refused(
        {**GOOD, "choices": {"depht": [1, 2], "width": [4]}},
        r"choices.depht: MyNet does not take an argument 'depht' \(did you mean 'depth'\?\); its arguments: "
        "depth, in_chans, num_classes, width",
    )
    refused({**GOOD, "fixed": {"bias": False}}, "fixed.bias: MyNet does not take an argument 'bias'")
    heads = {"_target_": "famnets.nets.HeadNet", "choices": {"dim": [8], "heads": [2]}}
    refused(
        {**heads, "fixed": {"act": {"_target_": "torch.nn.Relu"}}}, r"fixed.act._target_: cannot import 'torch.nn.Relu'"
    )
    refused(
        {**heads, "choices": {**heads["choices"], "act": [{"_target_": "nn.GELU"}]}},
        r"choices.act\[0\]._target_: cannot import .nn.GELU.",
    )
    refused({**GOOD, "choices": {"depth": [1]}}, r"MyNet needs the argument\(s\) \['width'\].*add them under fixed")


@pytest.mark.parametrize(
    "choices,match",
    [
        ({"depth": [], "width": [4]}, "choices.depth: the list of values is empty; give at least one value"),
        ({}, "choices is missing or empty"),
        ({"depth": {"range": [4, 1]}, "width": [4]}, r"choices.depth.range: \[4, 1\] is empty"),
        ({"depth": {"per_stage": [], "stages": 2}, "width": [4]}, r"choices.depth.per_stage: the list .* is empty"),
        ({"depth": 3, "width": [4]}, r"choices.depth: expected a list of values, got 3; write \[3\] or move it under"),
    ],
)
def test_an_empty_choice_list(choices, match):
    refused({**GOOD, "choices": choices}, match)


@pytest.mark.parametrize(
    "choices,match",
    [
        ({"depth": [1, "2"], "width": [4]}, r'choices.depth: mixes number and string values \(1, "2"\)'),
        ({"depth": [1, True], "width": [4]}, "choices.depth: mixes bool and number values"),
        ({"depth": [1, 2.5], "width": [4]}, "choices.depth: the value 2.5 does not fit MyNet's annotation int"),
        ({"depth": [1], "width": ["wide"]}, "choices.width: the value wide does not fit MyNet's annotation int"),
        ({"depth": {"per_stage": [1, 2], "stages": 3}, "width": [4]}, "per_stage makes 'depth' a list of 3"),
        ({"depth": [1, 1], "width": [4]}, "choices.depth: the value 1 appears twice"),
        ({"depth": [1, 1.0], "width": [4]}, "choices.depth: the value 1.0 appears twice"),
        ({"depth": {"range": [1.0, 3.0]}, "width": [4]}, r"expected \[start, stop\] or \[start, stop, step\] of int"),
    ],
)
def test_a_choice_value_of_the_wrong_type(choices, match):
    refused({**GOOD, "choices": choices}, match)


def test_wrong_types_inside_lists_and_fixed_values():
    stage = {"_target_": "famnets.nets.StageNet"}
    refused(
        {**stage, "choices": {"layers": [[1, 2], [1, "x"]]}}, r"the value \[1,x\] does not fit StageNet's annotation"
    )
    refused({**stage, "choices": {"layers": [[1]], "widths": [[8, 16.5]]}}, r"the value \[8,16.5\] does not fit")
    refused({**GOOD, "fixed": {"num_classes": "ten"}}, "fixed.num_classes: 'ten' does not fit MyNet's annotation int")


def test_a_space_where_no_combination_builds():
    space = space_from_config(
        {"_target_": "famnets.nets.NeverNet", "choices": {"width": [8, 16, 32], "heads": [3, 5]}}, "never.yaml"
    )
    with pytest.raises(FamilyConfigError) as err:
        space.sample(0)
    assert str(err.value) == (
        "never.yaml: no combination builds (6 tried); the arguments most often involved are 'width' and 'heads' "
        "(each named in 6 of 6 errors); most common error: AssertionError: heads=3 must divide width=8; change the "
        "choices or fixed arguments so that some combinations build"
    )
    # more combinations than the probe: 50 seeded draws, none builds
    big = space_from_config(
        {"_target_": "famnets.nets.NeverNet", "choices": {"width": {"range": [1, 100]}, "heads": [1, 2, 3]}}, "b.yaml"
    )
    with pytest.raises(FamilyConfigError, match=r"no combination builds \(50 tried\); .* 'width' and 'heads'"):
        big.sample(0)


def test_constraints_no_combination_meets():
    space = space_from_config({**GOOD, "constraints": {"max_params": 100}}, "small.yaml")
    with pytest.raises(FamilyConfigError) as err:
        space.sample(0)
    # smallest: depth 1, width 4: conv 3*4*9 + 4, head 4*10 + 10 = 162; largest: depth 2, width 8: 224 + 584 + 90
    assert str(err.value) == (
        "small.yaml: none of the 4 combinations that build (of 4 drawn) meets the constraints (params seen "
        "162..898; e.g. params 162 > max_params 100); relax constraints: or change the choices"
    )
    refused({**GOOD, "constraints": {"max_parms": 5}}, r"constraints: unknown key\(s\) \['max_parms'\]")
    refused({**GOOD, "constraints": {"max_params": -5}}, "constraints.max_params: expected a positive number")
    refused({**GOOD, "constraints": {"max_params": 5, "min_params": 10}}, "min_params 10 > max_params 5")


def test_other_file_mistakes():
    refused({**GOOD, "choice": {}}, r"unknown key\(s\) \['choice'\]; a config space has only: name, _target_")
    refused({**GOOD, "fixed": {"depth": 2}}, "choices.depth: 'depth' is also under fixed; keep it in one of the two")
    refused({**GOOD, "build_options": {"patch_size": 4}}, "build_options.patch_size: only num_classes, in_chans")
    refused({**GOOD, "python_path": ["no/such/folder"]}, "python_path: 'no/such/folder' is not a folder")
    refused({**GOOD, "name": "nb201"}, "name 'nb201' is a built-in space; give the family another name")
    refused([1, 2], "expected a mapping with _target_ and choices")


def test_file_level_errors(tmp_path):
    bad_yaml = tmp_path / "bad.yaml"
    bad_yaml.write_text("_target_: famnets.nets.MyNet\nchoices: {depth: [1, 2}\n")
    with pytest.raises(FamilyConfigError, match="bad.yaml: not a readable YAML config") as err:
        load_space(bad_yaml)
    assert "\n" not in str(err.value)
    with pytest.raises(FamilyConfigError, match="no space file 'missing.yaml'"):
        load_space("missing.yaml")
    with pytest.raises(ValueError, match="unknown search space 'timm_vt'.*Did you mean 'timm_vit'"):
        get_space("timm_vt")
