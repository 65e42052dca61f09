"""Structure statistics of any nn.Module: hand-counted widths, depths and paths on small models, dead branches,
disconnected networks, a timm ViT and an NB201 cell, and the model left untouched."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from lswag_lightning.proxies.architecture_stats import STAT_NAMES, architecture_stats


class Residual(nn.Module):
    """y = l2(relu(l1(x))) + x: two input paths, of 2 and 0 weighted ops."""

    def __init__(self) -> None:
        super().__init__()
        self.l1, self.l2 = nn.Linear(4, 4), nn.Linear(4, 4)

    def forward(self, x):
        return self.l2(torch.relu(self.l1(x))) + x


class DeadBranch(nn.Module):
    """y = 0 * dead(x) + live(x): the dead branch's parameters cannot change the output."""

    def __init__(self) -> None:
        super().__init__()
        self.dead, self.live = nn.Linear(4, 3), nn.Linear(4, 3)

    def forward(self, x):
        return self.dead(x).mul(0.0) + self.live(x)


class Disconnected(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.head = nn.Linear(4, 3)

    def forward(self, x):
        return self.head(x.mul(0.0))


def test_mlp_by_hand():
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3))
    s = architecture_stats(model, torch.randn(2, 4))
    assert list(s) == list(STAT_NAMES)
    assert s["n_param_tensors"] == 4 and s["n_weight_tensors"] == 2
    assert (s["width_mean"], s["width_min"], s["width_max"]) == (5.5, 3.0, 8.0)
    assert s["fan_in_mean"] == 6.0  # (4 + 8) / 2
    assert math.isnan(s["kernel_area_mean"]) and s["spatial_weight_fraction"] == 0.0  # no conv: no kernel
    assert s["live_params"] == 4 * 8 + 8 + 8 * 3 + 3 and s["live_param_fraction"] == 1.0
    assert s["n_weighted_ops"] == 2 and s["depth_max"] == s["depth_min"] == s["depth_mean"] == 2
    assert s["log10_paths"] == 0.0  # one path


def test_residual_paths_and_depths():
    s = architecture_stats(Residual(), torch.randn(2, 4))
    assert s["log10_paths"] == pytest.approx(math.log10(2))
    assert (s["depth_max"], s["depth_min"], s["depth_mean"]) == (2.0, 0.0, 1.0)


def test_multiplication_by_zero_cuts_a_branch():
    s = architecture_stats(DeadBranch(), torch.randn(2, 4))
    assert s["live_params"] == 4 * 3 + 3 and s["live_param_fraction"] == 0.5
    assert s["n_weighted_ops"] == 1 and s["log10_paths"] == 0.0 and s["depth_max"] == 1


def test_disconnected_network_has_no_path_and_no_depth():
    s = architecture_stats(Disconnected(), torch.randn(2, 4))
    assert s["log10_paths"] == -math.inf and s["n_weighted_ops"] == 0
    assert all(math.isnan(s[k]) for k in ("depth_max", "depth_min", "depth_mean"))
    assert s["live_params"] == 3  # the bias alone reaches the output


def test_conv_kernels_and_model_left_untouched():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8), nn.Conv2d(8, 4, 1), nn.Flatten())
    model.train()
    model[1].eval()  # mixed flags must come back as they were
    before = {k: v.clone() for k, v in model.state_dict().items()}
    s = architecture_stats(model, torch.randn(2, 3, 6, 6))
    assert s["kernel_area_mean"] == 5.0 and s["spatial_weight_fraction"] == 0.5  # (9 + 1) / 2; one of two is 3x3
    assert s["n_weighted_ops"] == 2  # BatchNorm's 1-d scale is not a weight
    assert model.training and not model[1].training and model[0].training
    assert all(p.grad is None for p in model.parameters())
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_vit_depth_counts_blocks_and_ignores_tokens():
    from timm.models.vision_transformer import VisionTransformer

    torch.manual_seed(0)
    vit = VisionTransformer(img_size=16, patch_size=4, embed_dim=32, depth=3, num_heads=2, num_classes=10)
    s = architecture_stats(vit, torch.randn(2, 3, 16, 16))
    # patch embedding, 4 matrices per block (qkv, proj, fc1, fc2), head; the class token / position table are not
    # weights (leading dimension 1); the shallowest path rides the residual stream
    assert s["depth_max"] == 1 + 4 * 3 + 1 and s["depth_min"] == 2
    assert s["n_weight_tensors"] == 1 + 4 * 3 + 1 and s["width_min"] == 10


def test_nb201_none_edges_cut_paths():
    from lswag_lightning.spaces import get_space

    space = get_space("nb201")
    torch.manual_seed(0)
    chain = space.build(space.decode("|nor_conv_3x3~0|+|none~0|nor_conv_3x3~1|+|none~0|none~1|nor_conv_3x3~2|"))
    s = architecture_stats(chain, torch.randn(2, 3, 32, 32))
    # 15 cells of a 3-conv chain, 2 reduction blocks (2 convs, or 1 on the shortcut), stem, classifier
    assert s["depth_max"] == 1 + 15 * 3 + 2 * 2 + 1 and s["depth_min"] == 1 + 15 * 3 + 2 * 1 + 1
    assert s["log10_paths"] == pytest.approx(math.log10(4)) and s["live_param_fraction"] == 1.0


def test_model_without_weights_is_an_error():
    with pytest.raises(ValueError, match="no trainable weight"):
        architecture_stats(nn.Sequential(nn.ReLU()), torch.randn(2, 4))
