"""Isolation: after score_network the caller's model and the global RNG are exactly as before."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from lswag_lightning import score_network

ALL = ("lswag", "zico", "zico_ps", "swap", "naswot", "synflow", "snip", "grad_norm", "jacov", "params", "flops")


def bn_dropout_net():
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1),
        nn.BatchNorm2d(8),
        nn.ReLU(),
        nn.Dropout(0.3),
        nn.Conv2d(8, 8, 3, padding=1),
        nn.BatchNorm2d(8),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Dropout(0.2),
        nn.Linear(8, 5),
    )


def snapshot(model):
    return {
        "params": {n: p.detach().clone() for n, p in model.named_parameters()},
        "grads": {n: None if p.grad is None else p.grad.clone() for n, p in model.named_parameters()},
        "requires_grad": {n: p.requires_grad for n, p in model.named_parameters()},
        "buffers": {n: b.clone() for n, b in model.named_buffers()},
        "modes": {n: m.training for n, m in model.named_modules()},
        "hooks": sum(len(m._forward_hooks) + len(m._forward_pre_hooks) for m in model.modules()),
    }


def assert_same(before, after):
    for key in ("params", "buffers"):
        assert before[key].keys() == after[key].keys()
        for name in before[key]:
            assert torch.equal(before[key][name], after[key][name]), f"{key} {name} changed"
    for name, grad in before["grads"].items():
        other = after["grads"][name]
        assert (grad is None and other is None) or torch.equal(grad, other), f"grad of {name} changed"
    assert before["requires_grad"] == after["requires_grad"]
    assert before["modes"] == after["modes"]
    assert before["hooks"] == after["hooks"]


@pytest.mark.parametrize("copy_model", [True, False])
@pytest.mark.parametrize("mode", ["train", "eval", "mixed"])
def test_model_state_and_rng_are_untouched(copy_model, mode):
    model = bn_dropout_net()
    x, y = torch.randn(12, 3, 8, 8), torch.randint(0, 5, (12,))
    # Give the caller's model some state worth protecting: stale grads, a frozen layer, mixed modes.
    nn.functional.cross_entropy(model(x), y).backward()
    model[0].weight.requires_grad_(False)
    getattr(model, "train" if mode != "eval" else "eval")()
    if mode == "mixed":
        model[1].eval()
    before = snapshot(model)
    rng_before = torch.get_rng_state()
    score_network(model, x, y, proxies=ALL, copy_model=copy_model)
    assert_same(before, snapshot(model))
    assert torch.equal(rng_before, torch.get_rng_state())


def test_in_place_mode_gives_the_same_values_as_the_copy():
    model = bn_dropout_net()
    x, y = torch.randn(12, 3, 8, 8), torch.randint(0, 5, (12,))
    copied = score_network(model, x, y, proxies=ALL)
    in_place = score_network(model, x, y, proxies=ALL, copy_model=False)
    assert copied.values == in_place.values


def test_hooks_are_removed_and_state_restored_when_the_model_fails():
    class Fails(nn.Module):
        def __init__(self):
            super().__init__()
            self.body = bn_dropout_net()
            self.calls = 0

        def forward(self, x):
            self.calls += 1
            if self.calls > 3:  # the one-sample check and the 2 gradient passes work, the batch pass fails
                raise RuntimeError("boom")
            return self.body(x)

    model = Fails()
    before = snapshot(model)
    report = score_network(
        model, torch.randn(8, 3, 8, 8), torch.randint(0, 5, (8,)), proxies=("lswag", "zico"), copy_model=False
    )
    assert report.status["zico"] == "ok"
    assert report.status["lswag.psi"].startswith("error: batch pass failed: RuntimeError: boom (fix: the model's own")
    assert_same(before, snapshot(model))  # hooks removed, buffers and modes restored
