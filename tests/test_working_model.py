"""The model the passes run on: a checkpointed model scores exactly as its plain twin, a compiled model as the module
it wraps, and the caller's model (compiled or not) is given back as it was."""

from __future__ import annotations

import math
import threading

import pytest
import torch
import torch.utils.checkpoint as torch_checkpoint
from model_kinds import CheckpointedResNet, Classifier, SmallCNN, class_labels, images
from torch import nn

from lswag_lightning import available_proxies, score_network
from lswag_lightning.proxies.working_model import checkpoints_run_directly, compiled_parts

EVERY = {"proxies": "all", "swap_mu": 2.6, "swap_sigma": 1.0}
# AZ-NAS reads the checkpointed blocks themselves: its block-local Jacobians run backward through them.
BLOCKS = {"block_points": ["stem", "blocks.0", "blocks.1"]}


def probe(n=16):
    return images()[:n], class_labels()[:n]


def same(a: float, b: float) -> bool:
    return a == b or (math.isnan(a) and math.isnan(b))


def resnet(use_reentrant):
    torch.manual_seed(0)
    return CheckpointedResNet(use_reentrant)


@pytest.mark.parametrize("use_reentrant", [False, True])
def test_a_checkpointed_model_gives_its_plain_twins_values_for_every_proxy(use_reentrant):
    x, y = probe()
    plain = score_network(resnet(None), x, y, **EVERY, **BLOCKS)
    checkpointed = score_network(resnet(use_reentrant), x, y, **EVERY, **BLOCKS)
    assert set(plain.values) >= set(available_proxies())
    for key, value in plain.values.items():
        assert checkpointed.status[key] == plain.status[key], (key, checkpointed.status[key])
        assert same(checkpointed.values[key], value), (key, checkpointed.values[key], value)
    # the twin comparison means something: the re-initialised AZ-NAS pass and float64 synflow ran and gave values
    assert all(plain.ok(name) for name in ("az_trainability", "synflow", "lswag", "snip", "vkdnw")), plain.failed()


def test_checkpointing_outside_a_session_still_recomputes_and_the_hook_is_removed():
    original = torch_checkpoint._checkpoint_impl
    calls = []
    layer = nn.Linear(4, 4)

    def segment(x):
        calls.append(1)
        return layer(x).relu()

    def run():
        calls.clear()
        x = torch.randn(2, 4, requires_grad=True)
        torch_checkpoint.checkpoint(segment, x, use_reentrant=False).sum().backward()
        return len(calls)

    assert run() == 2  # forward, then the recomputation in backward
    with checkpoints_run_directly() as direct:
        assert direct and run() == 1
        seen_by_another_thread = []
        worker = threading.Thread(target=lambda: seen_by_another_thread.append(run()))
        worker.start()
        worker.join()
        assert seen_by_another_thread == [2]  # only the engine's thread runs segments directly
    assert torch_checkpoint._checkpoint_impl is original and run() == 2
    score_network(resnet(False), *probe(), proxies=["snip"])
    assert torch_checkpoint._checkpoint_impl is original


def test_a_compiled_network_scores_as_the_module_it_wraps():
    x, y = probe()
    torch.manual_seed(0)
    net = SmallCNN()
    reference = score_network(net, x, y, proxies=["lswag", "synflow", "naswot", "snip"])
    compiled = torch.compile(net, backend="eager")
    report = score_network(compiled, x, y, proxies=["lswag", "synflow", "naswot", "snip"])
    assert report.values == reference.values and not report.failed()
    # nested inside a module, scored in place: the wrapper is put back
    module = Classifier(net=compiled)
    assert compiled_parts(module) == ["net"]
    in_place = score_network(module, x, y, proxies=["lswag", "synflow"], copy_model=False)
    assert module.net is compiled and compiled_parts(module) == ["net"]
    assert in_place.values["lswag"] == reference.values["lswag"]
    assert in_place.values["synflow"] == reference.values["synflow"]


def test_a_lightning_compiled_module_scores_its_own_weights():
    """``trainer.fit(torch.compile(module))`` gives the callback the module with a compiled ``forward`` bound to the
    original object: a deep copy would call the original's forward (no gradient reaches the copy's weights)."""
    from lightning.pytorch.utilities.compile import from_compiled

    x, y = probe()
    torch.manual_seed(0)
    module = Classifier()
    reference = score_network(module, x, y, proxies=["lswag", "synflow", "snip"])
    compiled = from_compiled(torch.compile(module, backend="eager"))
    assert compiled_parts(compiled) == [""]
    for copy_model in (True, False):
        report = score_network(compiled, x, y, proxies=["lswag", "synflow", "snip"], copy_model=copy_model)
        assert report.values == reference.values and not report.failed()
    assert compiled_parts(compiled) == [""]  # the compiled forward is given back
