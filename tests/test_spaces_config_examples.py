"""The shipped config-space examples (timm ViT, timm ResNet, a plain PyTorch class from examples/): found by name,
sampled validly, built at a tiny size and scored by ``score_network``."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from timm.models.resnet import BasicBlock

from lswag_lightning import score_network
from lswag_lightning.spaces import get_space, load_space, space_file_names

REPO = Path(__file__).resolve().parents[1]
OWN_FAMILY = REPO / "examples" / "own_family" / "tiny_cnn.yaml"
PROXIES = ("lswag", "naswot", "synflow")

# the smallest member of each family (a name on the search path, or a path), at 32x32 RGB with 10 classes
TINY = {
    "timm_vit": ("timm_vit", "depth=3,embed_dim=64,num_heads=2,mlp_ratio=2.0"),
    "timm_resnet": ("timm_resnet", "layers=[1,1,1,1],channels=[32,64,128,256]"),
    "own_family": (str(OWN_FAMILY), "depth=2,width=16,groups=1,kernel_size=3"),
}


@pytest.fixture(autouse=True)
def _own_module_is_imported_afresh(monkeypatch):
    monkeypatch.delitem(sys.modules, "tiny_nets", raising=False)


def test_the_timm_examples_are_found_by_name_and_shipped_as_package_data():
    assert {"timm_resnet", "timm_vit"} <= set(space_file_names())
    assert get_space("examples/timm_vit").name == "timm_vit"  # as Hydra names it: space=examples/timm_vit
    section = (REPO / "pyproject.toml").read_text().split("[tool.setuptools.package-data]")[1]
    patterns = json.loads(re.search(r"^lswag_lightning = (\[.*\])$", section, re.M).group(1))  # (no tomllib on 3.10)
    packaged = {p for pattern in patterns for p in (REPO / "lswag_lightning").glob(pattern)}
    examples = set((REPO / "lswag_lightning" / "conf" / "space" / "examples").glob("*.yaml"))
    assert examples and examples <= packaged


@pytest.mark.parametrize("example", sorted(TINY))
def test_each_example_builds_and_scores_at_a_tiny_size(example):
    name, key = TINY[example]
    space = get_space(name)
    spec = space.decode(key)
    assert space.encode(spec) == key
    net = space.build(spec, num_classes=10, img_size=32)
    assert net(torch.zeros(2, 3, 32, 32)).shape == (2, 10)
    assert space.param_count(spec, num_classes=10, img_size=32) == sum(p.numel() for p in net.parameters())
    x, y = torch.randn(16, 3, 32, 32), torch.arange(16) % 10
    report = score_network(net, x, y, proxies=PROXIES)
    for proxy in PROXIES:
        assert report.status[proxy] == "ok", (proxy, report.status[proxy])
        assert np.isfinite(report.values[proxy])


def test_timm_vit_never_samples_a_width_its_heads_do_not_divide():
    space = get_space("timm_vit")
    bad = space.decode("depth=3,embed_dim=64,num_heads=3,mlp_ratio=2.0")
    verdict = space.verdict(bad)
    assert not verdict.ok and "divisible by num_heads" in verdict.reason
    gen = np.random.default_rng(0)
    spec = space.sample(gen)
    for _ in range(6):
        for candidate in (space.sample(gen), spec := space.mutate(spec, gen)):
            d = candidate.to_dict()
            assert d["embed_dim"] % d["num_heads"] == 0, space.encode(candidate)


def test_timm_resnet_takes_the_block_class_and_honours_its_parameter_bound():
    space = get_space("timm_resnet")
    net = space.build("layers=[1,2,1,1],channels=[48,96,192,384]")
    assert isinstance(net.layer2[1], BasicBlock) and len(net.layer2) == 2
    assert net.layer4[0].conv1.out_channels == 384
    assert space.constraints == {"max_params": 12e6}
    for seed in range(4):
        assert space.param_count(space.sample(seed)) <= 12e6


def test_the_own_class_example_skips_groups_that_do_not_divide_the_width():
    space = load_space(OWN_FAMILY)
    assert not space.is_valid("depth=2,width=24,groups=16,kernel_size=3")  # nn.Conv2d refuses 24 / 16
    for seed in range(10):
        d = space.sample(seed).to_dict()
        assert d["width"] % d["groups"] == 0
