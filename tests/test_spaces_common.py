"""The common search-space interface, checked on every registered space (fast: tiny or meta-device models)."""

from __future__ import annotations

import ast
import builtins
from pathlib import Path

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf
from torch import nn

from lswag_lightning import score_network
from lswag_lightning.spaces import SearchSpace, available_spaces, get_space

SPACES = ("autoformer_mini", "autoformer_s", "autoformer_ti", "darts", "nb101", "nb201", "tnb101_macro", "tnb101_micro")
CONF_DIR = Path(__file__).resolve().parent.parent / "lswag_lightning" / "conf" / "space"

# Small build options so every space gives a CPU-fast network.
SMALL = {
    "autoformer_mini": {},
    "autoformer_ti": {"patch_size": 16},
    "autoformer_s": {"patch_size": 16},
    "nb201": {"C": 8, "N": 1},
    "darts": {"C": 8, "layers": 3},
    "nb101": {"stem_channels": 8, "cells_per_stack": 1},
    "tnb101_micro": {"base_channels": 8},
    "tnb101_macro": {"base_channels": 8},
}


def test_registry_lists_the_eight_spaces():
    assert available_spaces() == sorted(SPACES)
    for name in SPACES:
        space = get_space(name)
        assert isinstance(space, SearchSpace) and space.name == name
        assert not hasattr(space, "proxy_defaults")


def test_unknown_space_names_the_closest():
    with pytest.raises(ValueError, match="nb201"):
        get_space("nb210")


@pytest.mark.parametrize("name", SPACES)
def test_sampling_is_seeded_and_reproducible(name):
    space = get_space(name)
    by_int = [space.encode(space.sample(seed)) for seed in range(8)]
    assert by_int == [space.encode(space.sample(seed)) for seed in range(8)]
    assert len(set(by_int)) > 1  # different seeds give different specs
    gen_a, gen_b = np.random.default_rng(7), np.random.default_rng(7)
    assert [space.sample(gen_a) for _ in range(5)] == [space.sample(gen_b) for _ in range(5)]
    with pytest.raises(TypeError):
        space.sample("seed")


@pytest.mark.parametrize("name", SPACES)
def test_mutate_returns_a_valid_different_spec(name):
    space = get_space(name)
    gen = np.random.default_rng(0)
    spec = space.sample(gen)
    for _ in range(200):
        child = space.mutate(spec, gen)
        assert child != spec
        assert space.decode(space.encode(child)) == child  # valid
        spec = child
    # reproducible for a seed, and accepts the string form
    assert space.mutate(space.encode(spec), 3) == space.mutate(spec, 3)


@pytest.mark.parametrize("name", SPACES)
def test_encode_decode_round_trip(name):
    space = get_space(name)
    for seed in range(20):
        spec = space.sample(seed)
        text = space.encode(spec)
        assert isinstance(text, str)
        assert space.decode(text) == spec
        assert space.encode(space.decode(text)) == text  # canonical
        assert space.decode(spec) == spec


@pytest.mark.parametrize("name", SPACES)
def test_build_gives_logits_and_hookable_activations(name):
    space = get_space(name)
    spec = space.sample(1)
    net = space.build(spec, num_classes=7, **SMALL[name]).eval()
    with torch.no_grad():
        out = net(torch.randn(2, 3, 32, 32))
    assert isinstance(out, torch.Tensor) and out.shape == (2, 7)
    acts = [m for m in net.modules() if isinstance(m, (nn.ReLU, nn.GELU))]
    assert acts, "no activation modules"
    assert len({id(m) for m in acts}) == len(acts)  # each activation module object appears once
    assert all(not getattr(m, "inplace", False) for m in acts)
    n_built = sum(p.numel() for p in net.parameters())
    if name == "darts":
        n_built = sum(p.numel() for n, p in net.named_parameters() if "auxiliary" not in n)
    assert space.param_count(spec, num_classes=7, **SMALL[name]) == n_built


@pytest.mark.parametrize("name", SPACES)
def test_invalid_input_raises_a_clear_error(name):
    space = get_space(name)
    for bad in ("", "garbage", "{}", "[1, 2]", 42):
        with pytest.raises(ValueError):
            space.decode(bad)


CODE_CELLS = [
    "__import__('pathlib').Path({path!r}).write_text('pwned')",
    "Genotype(normal=__import__('pathlib').Path({path!r}).write_text('pwned'), normal_concat=[2], "
    "reduce=[], reduce_concat=[2])",
    "|nor_conv_3x3~0|+|__import__('pathlib').Path({path!r}).write_text('x')~0|none~1|+|none~0|none~1|none~2|",
    '{{"embed_dim": __import__("pathlib").Path({path!r}).write_text("x"), "depth": 12}}',
]


@pytest.mark.parametrize("name", SPACES)
def test_code_in_a_table_cell_is_rejected_not_run(name, tmp_path, monkeypatch):
    space = get_space(name)
    target = tmp_path / "evaluated.txt"

    def forbidden(*args, **kwargs):
        raise AssertionError("decode must not evaluate its input")

    monkeypatch.setattr(builtins, "eval", forbidden)
    monkeypatch.setattr(builtins, "exec", forbidden)
    monkeypatch.setattr(ast, "literal_eval", forbidden)
    for cell in CODE_CELLS:
        with pytest.raises(ValueError):
            space.decode(cell.format(path=str(target)))
    assert not target.exists()
    # valid strings still decode with eval/exec/literal_eval unavailable
    spec = space.sample(0)
    assert space.decode(space.encode(spec)) == spec


@pytest.mark.parametrize("name", SPACES)
def test_hydra_config_builds_the_space(name):
    cfg = OmegaConf.load(CONF_DIR / f"{name}.yaml")
    assert cfg.name == name
    options = OmegaConf.to_container(cfg.build_options)
    assert {"num_classes", "in_chans", "img_size"} <= set(options)
    space = get_space(cfg.name)
    spec = space.sample(0)
    with torch.device("meta"):
        net = space.build(spec, **options)
    assert sum(p.numel() for p in net.parameters()) > 0
    # the same options drive the parameter count
    assert space.param_count(spec, **options) > 0


def test_every_config_file_is_a_registered_space():
    assert sorted(p.stem for p in CONF_DIR.glob("*.yaml")) == sorted(SPACES)


SMOKE_PROXIES = ("lswag", "naswot", "synflow")


@pytest.mark.parametrize("name", SPACES)
def test_score_network_runs_on_a_sample_from_every_space(name):
    space = get_space(name)
    net = space.build(space.sample(0), num_classes=10, img_size=32, **SMALL[name])
    x = torch.randn(16, 3, 32, 32)
    y = torch.arange(16) % 10
    report = score_network(net, x, y, proxies=SMOKE_PROXIES)
    for proxy in SMOKE_PROXIES:
        assert report.status[proxy] == "ok", (proxy, report.status[proxy])
