"""Adding a proxy (with a pass of its own, or reusing an existing need) and a search space is one file each plus this
test: ``toy_proxy.py`` and ``toy_space.py`` register through the public API only, score with ``score_network``, keep
the same contract as the built-in proxies and spaces, and leave the registries as they were.
"""

from __future__ import annotations

import copy
import importlib.util
import sys
from pathlib import Path

import pytest
import torch
from contracts import (
    TINY_MODELS,
    check_alone_equals_together,
    check_orientation,
    check_pass_metadata,
    check_proxy_metadata,
    check_space_contract,
    check_value_or_status,
    probe_batch,
    tiny_cnn,
)
from torch import nn

from lswag_lightning.proxies import (
    available_needs,
    available_options,
    available_proxies,
    registered_passes,
    score_network,
    temporary_registrations,
)
from lswag_lightning.spaces import available_spaces, get_space, temporary_spaces

TESTS = Path(__file__).resolve().parent
DOCS = TESTS.parent / "docs" / "extending.md"
TOY_PROXIES = ("logit_entropy", "active_fraction")


def load(path: Path) -> object:
    """Run a toy file as a fresh module, so its registrations run each time (it is in ``sys.modules`` only while it
    runs, as ``dataclasses`` needs)."""
    spec = importlib.util.spec_from_file_location(f"_toy_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    try:
        spec.loader.exec_module(module)
    finally:
        del sys.modules[spec.name]
    return module


@pytest.fixture
def toys():
    """The toy proxy and toy space registered for one test, unregistered after it."""
    with temporary_registrations(), temporary_spaces():
        yield load(TESTS / "toy_proxy.py"), load(TESTS / "toy_space.py")


def registry_state():
    return available_proxies(), [p.name for p in registered_passes()], available_options(), available_spaces()


def test_the_toys_are_registered_only_inside_the_block():
    before = registry_state()
    assert not set(TOY_PROXIES) & set(before[0]) and "toy_mlp" not in before[3]
    with temporary_registrations(), temporary_spaces():
        load(TESTS / "toy_proxy.py")
        load(TESTS / "toy_space.py")
        assert set(TOY_PROXIES) <= set(available_proxies()) and "eval logits" in registry_state()[1]
        assert available_options()["entropy_temperature"] == "proxy 'logit_entropy'"
        assert "toy_mlp" in available_spaces()
    assert registry_state() == before
    x, y = probe_batch()
    with pytest.raises(ValueError, match="unknown scoring option"):
        score_network(tiny_cnn(), x, y, proxies=["naswot"], entropy_temperature=2.0)


def test_toy_proxies_score_with_score_network_as_by_hand(toys):
    model = tiny_cnn()
    x, y = probe_batch()
    report = score_network(model, x, y, proxies=["logit_entropy", "active_fraction", "naswot"], entropy_temperature=2)
    assert not report.failed()
    assert list(report.passes) == ["batch", "eval logits"]  # active_fraction shares NASWOT's batch pass
    assert report.settings["entropy_temperature"] == 2
    # logit_entropy: the eval-mode logits of the model, by hand
    with torch.no_grad():
        logits = copy.deepcopy(model).eval()(x).double()
    log_p = torch.log_softmax(logits / 2, dim=1)
    assert report.values["logit_entropy"] == pytest.approx(float(-(log_p.exp() * log_p).sum(1).mean()), rel=1e-12)
    # active_fraction: the ReLU outputs of a train-mode forward of the batch (as the batch pass runs it), by hand
    active, units = [], []
    net = copy.deepcopy(model).train()
    for module in net.modules():
        if isinstance(module, nn.ReLU):
            module.register_forward_hook(lambda _m, _i, out: active.append((out > 0).flatten(1).sum(1)))
            module.register_forward_hook(lambda _m, _i, out: units.append(out[0].numel()))
    with torch.no_grad():
        net(x)
    expected = float(torch.stack(active).sum(0).double().mean()) / sum(units)
    assert report.values["active_fraction"] == pytest.approx(expected, rel=1e-12)


def test_toy_option_is_validated_with_a_one_line_error(toys):
    x, y = probe_batch()
    with pytest.raises(ValueError, match=r"^entropy_temperature=0 must be > 0$"):
        score_network(tiny_cnn(), x, y, proxies=["logit_entropy"], entropy_temperature=0)
    with pytest.raises(ValueError, match="valid options: .*'entropy_temperature'"):
        score_network(tiny_cnn(), x, y, proxies=["logit_entropy"], entropy_temperatur=1.0)


@pytest.mark.parametrize("model_name", sorted(TINY_MODELS))
def test_toy_proxies_keep_the_proxy_contract(toys, model_name):
    check_pass_metadata("eval logits")
    model = TINY_MODELS[model_name]()
    x, y = probe_batch()
    together = score_network(model, x, y, proxies="all")
    for name in TOY_PROXIES:
        check_proxy_metadata(name)
        check_orientation(name)
        check_value_or_status(together, name)
        check_alone_equals_together(model, name, together)


def test_toy_space_keeps_the_space_contract(toys, tmp_path, monkeypatch):
    space = get_space("toy_mlp")
    check_space_contract(space, {}, tmp_path, monkeypatch)
    child = space.mutate("16-32", 0)
    assert len(child) == 2 and sum(a != b for a, b in zip((16, 32), child)) == 1  # one width changed, depth kept


def test_the_docs_show_the_toy_files_as_they_are_and_every_need():
    page = DOCS.read_text()
    for toy in ("toy_proxy.py", "toy_space.py"):
        assert (TESTS / toy).read_text().strip() in page, f"docs/extending.md must show tests/{toy} verbatim"
    for need in available_needs():
        assert f"`{need}`" in page, f"docs/extending.md: list the need {need!r} in the table of needs"
    for spec in registered_passes():
        assert f"`{spec.name}`" in page, f"docs/extending.md: name the pass {spec.name!r} in the table of needs"
