"""Targets of every shape: the default cross-entropy takes class and dense (segmentation) targets; targets it cannot
take make exactly the label proxies a status naming ``loss_fn=``, and the targets-free values are computed."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from model_kinds import RegressionMLP, TinyLM, TinySegmenter

from lswag_lightning import score_network

LABEL_PROXIES = ("lswag", "zico", "zico_ps", "snip", "grad_norm")
FREE = ("params", "flops", "vkdnw_layers", "naswot", "swap", "synflow", "jacov")


def segmentation_batch(n=8):
    g = torch.Generator().manual_seed(0)
    return torch.randn(n, 3, 16, 16, generator=g), torch.randint(0, 4, (n, 16, 16), generator=g)


def test_dense_targets_take_the_pixelwise_cross_entropy():
    x, masks = segmentation_batch()
    torch.manual_seed(0)
    net = TinySegmenter()
    default = score_network(net, x, masks, proxies=LABEL_PROXIES)
    explicit = score_network(net, x, masks, proxies=LABEL_PROXIES, loss_fn=F.cross_entropy)
    assert not default.failed() and default.values == explicit.values
    ignored = masks.clone()
    ignored[:, :2] = -100  # torch's ignore_index: padding in masks is no error
    assert not score_network(net, x, ignored, proxies=["snip"]).failed()
    with pytest.raises(ValueError, match="negative label -3"):
        score_network(net, x, masks - 3, proxies=["snip"])
    with pytest.raises(ValueError, match="label 9 but the model outputs 4 classes"):
        score_network(net, x, masks.clamp(max=0) + 9, proxies=["snip"])


def test_token_logits_get_the_sequence_loss_as_their_fix_and_the_rest_computes():
    g = torch.Generator().manual_seed(0)
    tokens = torch.randint(0, 32, (8, 12), generator=g)
    torch.manual_seed(0)
    report = score_network(TinyLM(), tokens, tokens.roll(-1, dims=1), proxies=[*LABEL_PROXIES, *FREE])
    for name in LABEL_PROXIES:
        assert (
            "model gave (1, 12, 32) for targets (1, 12): pass loss_fn=... (for a sequence model, loss_fn=lambda "
            in (report.status[name])
        ), report.status[name]
    assert all(report.ok(name) for name in ("params", "flops", "vkdnw_layers", "naswot", "swap", "synflow"))
    assert report.ok("lswag.psi") and "jacov" in report.failed()  # token ids have no input gradient: its own status


def test_regression_targets_without_a_loss_name_the_fix_and_with_one_compute():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(16, 8, generator=g)
    y = x[:, :1] * 2
    torch.manual_seed(0)
    net = RegressionMLP()
    without = score_network(net, x, y, proxies=[*LABEL_PROXIES, *FREE])
    for name in LABEL_PROXIES:
        assert (
            "not the class indices the default cross-entropy takes: pass loss_fn=... (e.g. F.mse_loss"
            in (without.status[name])
        )
    assert all(without.ok(name) for name in FREE), without.failed()
    with_loss = score_network(net, x, y, proxies=[*LABEL_PROXIES, *FREE], loss_fn=F.mse_loss)
    assert not with_loss.failed()
    assert all(with_loss.values[name] == without.values[name] for name in FREE)  # the same forward, with or without
