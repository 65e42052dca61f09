"""Smoke test: the zero-cost engine scores a small sample of every search space."""
from __future__ import annotations

import pytest
import torch

from lswag_lightning import score_network
from lswag_lightning.spaces import available_spaces, get_space

# Small build options so each network scores in about a second on a CPU.
SMALL = {
    "autoformer_mini": {},
    "autoformer_ti": {"patch_size": 16},
    "autoformer_s": {"patch_size": 16},
    "nb201": {"C": 8, "N": 1},
    "darts": {"C": 8, "layers": 3},
}
PROXIES = ("lswag", "naswot", "synflow")


@pytest.mark.parametrize("name", sorted(SMALL))
def test_score_network_runs_on_a_sample_from_every_space(name):
    assert sorted(SMALL) == available_spaces()
    space = get_space(name)
    net = space.build(space.sample(0), num_classes=10, img_size=32, **SMALL[name])
    x = torch.randn(16, 3, 32, 32)
    y = torch.arange(16) % 10
    report = score_network(net, x, y, proxies=PROXIES)
    for proxy in PROXIES:
        assert report.status[proxy] == "ok", (proxy, report.status[proxy])
