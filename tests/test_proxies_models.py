"""The engine on real architectures: timm ViTs (GELU modules), ReLU and SiLU CNNs, functional activations."""

from __future__ import annotations

import json
import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from lswag_lightning import ProxyReport, available_proxies, score_network

ALL = (
    "lswag",
    "zico",
    "zico_ps",
    "swap",
    "swap_reg",
    "naswot",
    "synflow",
    "snip",
    "grad_norm",
    "jacov",
    "params",
    "flops",
)


def tiny_vit(depth=2, **kwargs):
    from timm.models.vision_transformer import VisionTransformer

    torch.manual_seed(0)
    return VisionTransformer(
        img_size=16, patch_size=4, embed_dim=32, depth=depth, num_heads=2, num_classes=10, **kwargs
    )


def small_cnn(act=nn.ReLU):
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1),
        nn.BatchNorm2d(8),
        act(),
        nn.Conv2d(8, 16, 3, stride=2, padding=1),
        nn.BatchNorm2d(16),
        act(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(16, 10),
    )


def batch(n=16, size=16, seed=0):
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(n, 3, size, size, generator=gen), torch.randint(0, 10, (n,), generator=gen)


def test_registry_lists_every_documented_proxy():
    assert set(ALL) <= set(available_proxies())


@pytest.mark.parametrize("depth", [1, 3])
def test_every_proxy_on_a_timm_vision_transformer(depth):
    x, y = batch()
    report = score_network(tiny_vit(depth), x, y, proxies=ALL, swap_mu=50, swap_sigma=1e4)
    assert report.failed() == {}
    # GELU modules are the activation points: one per block, 64 tokens+cls x 4*32 hidden units each.
    psi = report.details["lswag"]["psi"]
    assert psi["points"] == depth
    assert psi["neurons"] == depth * 17 * 128
    assert 0 < report.values["lswag.psi"] <= psi["neurons"]
    assert report.values["lswag"] == pytest.approx(report.values["lswag.lambda"] * report.values["lswag.psi"])
    # qkv, proj, fc1, fc2 per block + patch embedding + head
    assert len(report.details["lswag"]["lambda"]["layers"]) == 4 * depth + 2
    assert report.details["lswag"]["lambda"]["layers"][0]["name"] == "patch_embed.proj"
    assert report.details["lswag"]["lambda"]["layers"][-1]["name"] == "head"


@pytest.mark.parametrize("act", [nn.ReLU, nn.SiLU])
def test_every_proxy_on_a_cnn(act):
    x, y = batch()
    report = score_network(small_cnn(act), x, y, proxies=ALL, swap_mu=3, swap_sigma=10)
    assert report.failed() == {}
    assert report.details["lswag"]["psi"]["points"] == 2
    assert all(math.isfinite(v) for v in report.values.values())
    assert report.values["params"] == sum(p.numel() for p in small_cnn(act).parameters())


def test_reused_activation_module_counts_each_call_as_a_point():
    class Reuse(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc1, self.fc2, self.out = nn.Linear(4, 8), nn.Linear(8, 8), nn.Linear(8, 3)
            self.act = nn.ReLU()

        def forward(self, x):
            return self.out(self.act(self.fc2(self.act(self.fc1(x)))))

    report = score_network(Reuse(), torch.randn(8, 4), torch.randint(0, 3, (8,)), proxies=("lswag",))
    assert report.details["lswag"]["psi"]["selected_points"] == ["act", "act#2"]
    assert [r["name"] for r in report.details["lswag"]["lambda"]["layers"]] == ["fc1", "fc2", "out"]


class FunctionalGelu(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(6, 16), nn.Linear(16, 4)

    def forward(self, x):
        return self.fc2(F.gelu(self.fc1(x)))


def test_functional_activation_is_a_clear_error_while_gradient_proxies_compute():
    x, y = torch.randn(8, 6), torch.randint(0, 4, (8,))
    report = score_network(FunctionalGelu(), x, y, proxies=("lswag", "swap", "naswot", "zico", "snip"))
    for name in ("swap", "naswot", "lswag.psi", "lswag"):
        assert report.status[name].startswith("error: ")
        assert "use activation modules such as nn.GELU" in report.status[name]
        assert "activation_points=" in report.status[name]
    assert report.status["zico"] == "ok" and report.status["snip"] == "ok"
    assert report.status["lswag.lambda"] == "ok" and math.isfinite(report.values["lswag.lambda"])
    # The documented fix: name the modules whose outputs feed the functional GELU.
    fixed = score_network(FunctionalGelu(), x, y, proxies=("lswag", "swap"), activation_points=["fc1"])
    assert fixed.failed() == {}
    assert fixed.details["swap"]["neurons"] == 16


def test_unknown_activation_point_name_is_rejected():
    with pytest.raises(ValueError, match="not modules of the model"):
        score_network(
            FunctionalGelu(),
            torch.randn(4, 6),
            torch.zeros(4, dtype=torch.long),
            proxies=("swap",),
            activation_points=["fc9"],
        )


def test_joint_call_equals_one_call_per_proxy():
    x, y = batch(seed=3)
    net = small_cnn()
    joint = score_network(net, x, y, proxies=ALL, swap_mu=3, swap_sigma=10)
    for name in ALL:
        alone = score_network(net, x, y, proxies=(name,), swap_mu=3, swap_sigma=10)
        assert alone.values[name] == joint.values[name], name


def test_proxies_share_passes():
    x, y = batch()
    report = score_network(small_cnn(), x, y, proxies=("lswag", "zico", "snip", "grad_norm", "naswot", "swap", "jacov"))
    assert set(report.passes) == {"gradient statistics", "batch"}


def test_model_output_adapters():
    class TupleOut(nn.Module):
        def __init__(self):
            super().__init__()
            self.body = small_cnn()

        def forward(self, x):
            logits = self.body(x)
            return logits, logits.detach() * 0  # e.g. (logits, aux_logits)

    class DictOut(TupleOut):
        def forward(self, x):
            return {"logits": self.body(x)}

    x, y = batch()
    ref = score_network(small_cnn(), x, y, proxies=("lswag", "jacov"))
    for model in (TupleOut(), DictOut()):
        assert score_network(model, x, y, proxies=("lswag", "jacov")).values == ref.values
    custom = score_network(DictOut(), x, y, proxies=("lswag",), output_adapter=lambda out: out["logits"])
    assert custom.values["lswag"] == ref.values["lswag"]

    class Weird(TupleOut):
        def forward(self, x):
            return {"scores": self.body(x)}

    with pytest.raises(ValueError, match="output_adapter"):
        score_network(Weird(), x, y, proxies=("lswag",))


def test_report_is_json_ready_and_round_trips():
    x, y = batch()
    report = score_network(small_cnn(), x, y, proxies=("lswag", "swap_reg", "naswot"))
    assert report.status["swap_reg"].startswith("error: swap_reg needs swap_mu and swap_sigma")
    text = json.dumps(report.to_dict(), allow_nan=False)
    back = ProxyReport.from_dict(json.loads(text))
    assert back.values["lswag"] == report.values["lswag"]
    assert math.isnan(back.values["swap_reg"]) and back.status == report.status
    assert back.settings["lambda_k"] == 2 and back.settings["batch_size"] == 16
    assert set(report.seconds) == set(report.values)


def test_scores_are_reproducible_under_dropout_whatever_the_global_rng():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(6, 32), nn.ReLU(), nn.Dropout(0.5), nn.Linear(32, 4))
    x, y = torch.randn(16, 6), torch.randint(0, 4, (16,))
    torch.manual_seed(123)
    first = score_network(net, x, y, proxies=("lswag", "naswot"))
    torch.manual_seed(999)
    second = score_network(net, x, y, proxies=("lswag", "naswot"))
    assert first.values == second.values
    other_seed = score_network(net, x, y, proxies=("lswag",), seed=1)
    assert other_seed.values["lswag"] != first.values["lswag"]
