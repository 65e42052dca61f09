"""The common search-space interface, checked on every registered space (fast: tiny or meta-device models).

Parametrised over ``available_spaces()``: a new space is checked without being listed here (``contracts.py`` holds the
checks; ``SMALL`` only makes the built-in spaces' networks CPU-fast, a space without an entry is built with its
defaults).
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from contracts import (
    check_build,
    check_decode_never_evaluates,
    check_mutate,
    check_rejects_bad_strings,
    check_round_trip,
    check_sampling_is_seeded,
    check_scores,
)
from omegaconf import OmegaConf

from lswag_lightning.spaces import SearchSpace, available_spaces, get_space

SPACES = available_spaces()
CONF_DIR = Path(__file__).resolve().parent.parent / "lswag_lightning" / "conf" / "space"
CONFIGS = sorted(p.stem for p in CONF_DIR.glob("*.yaml"))

# Small build options so the built-in spaces give CPU-fast networks (others: their defaults).
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


@pytest.mark.parametrize("name", SPACES)
def test_registry_returns_a_named_search_space(name):
    space = get_space(name)
    assert isinstance(space, SearchSpace) and space.name == name
    assert not hasattr(space, "proxy_defaults")


def test_unknown_space_names_the_closest():
    with pytest.raises(ValueError, match="nb201"):
        get_space("nb210")


@pytest.mark.parametrize("name", SPACES)
def test_sampling_is_seeded_and_reproducible(name):
    check_sampling_is_seeded(get_space(name))


@pytest.mark.parametrize("name", SPACES)
def test_mutate_returns_a_valid_different_spec(name):
    check_mutate(get_space(name))


@pytest.mark.parametrize("name", SPACES)
def test_encode_decode_round_trip(name):
    check_round_trip(get_space(name))


@pytest.mark.parametrize("name", SPACES)
def test_build_gives_logits_and_hookable_activations(name):
    check_build(get_space(name), SMALL.get(name, {}))


@pytest.mark.parametrize("name", SPACES)
def test_invalid_input_raises_a_clear_error(name):
    check_rejects_bad_strings(get_space(name))


@pytest.mark.parametrize("name", SPACES)
def test_code_in_a_table_cell_is_rejected_not_run(name, tmp_path, monkeypatch):
    check_decode_never_evaluates(get_space(name), tmp_path, monkeypatch)


@pytest.mark.parametrize("name", CONFIGS)
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
    assert CONFIGS and set(CONFIGS) <= set(available_spaces())


@pytest.mark.parametrize("name", SPACES)
def test_score_network_runs_on_a_sample_from_every_space(name):
    check_scores(get_space(name), SMALL.get(name, {}))
