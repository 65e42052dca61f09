"""AZ-NAS (expressivity, progressivity, trainability) and MeCo against hand computations on tiny networks, plus
block detection, isolation and "alone equals together" for the new proxies."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from lswag_lightning import available_proxies, score_network
from lswag_lightning.proxies.author_passes import block_trainability, covariance_entropy, kaiming_state
from lswag_lightning.proxies.blocks import find_block_container
from lswag_lightning.spaces import get_space

AZ = ["az_expressivity", "az_progressivity", "az_trainability"]
NEW = [*AZ, "meco"]


def entropy_by_hand(rows: torch.Tensor) -> float:
    rows = rows.double() - rows.double().mean(0)
    eig = torch.linalg.eigvalsh(rows.t() @ rows / rows.shape[0]).clamp_min(0)
    p = eig / eig.sum()
    return float(-(p * torch.log(p + 1e-8)).sum())


def test_covariance_entropy_of_known_spectra():
    g = torch.Generator().manual_seed(0)
    white = torch.randn(200000, 4, generator=g, dtype=torch.float64)
    assert covariance_entropy(white) == pytest.approx(math.log(4), abs=1e-3)  # four equal eigenvalues
    hadamard = torch.tensor([[1, 1, 1, 1], [1, -1, 1, -1], [1, 1, -1, -1], [1, -1, -1, 1]], dtype=torch.float64)
    exact = torch.cat([hadamard[:, 1:] * torch.tensor([2.0, 1.0, 1.0]), torch.zeros(4, 1)], dim=1)
    p = torch.tensor([4 / 6, 1 / 6, 1 / 6], dtype=torch.float64)  # covariance diag(4, 1, 1, 0), exactly
    assert covariance_entropy(exact) == pytest.approx(float(-(p * torch.log(p + 1e-8)).sum()), rel=1e-12)
    # (B, C, H, W): one row per position, channels as columns
    fmap = torch.randn(3, 5, 4, 4, generator=g)
    assert covariance_entropy(fmap) == pytest.approx(
        entropy_by_hand(fmap.permute(0, 2, 3, 1).reshape(-1, 5)), rel=1e-12
    )
    assert math.isnan(covariance_entropy(torch.zeros(2, 3, 4, 4)))  # no variance: undefined, ranked last


def test_trainability_of_a_known_linear_block_matches_its_singular_value():
    g = torch.Generator().manual_seed(1)
    q, _ = torch.linalg.qr(torch.randn(6, 6, generator=g, dtype=torch.float64))
    weight = q * torch.tensor([1.5, 1.0, 0.8, 0.5, 0.3, 0.1], dtype=torch.float64)  # top singular value 1.5
    batch = 20000
    v = (torch.randint(0, 2, (batch, 6), generator=g) * 2 - 1).double()
    grad = v @ weight  # ∂⟨x Wᵀ, v⟩/∂x
    t = block_trainability(grad, v, torch.zeros(batch, 6, dtype=torch.float64))
    sigma = torch.linalg.matrix_norm(weight, ord=2).item()
    assert sigma == pytest.approx(1.5)
    assert t == pytest.approx(2 - sigma - 1 / (sigma + 1e-6), abs=0.02)  # the Rademacher estimate converges
    assert block_trainability(v.clone(), v, v) == -math.inf  # identity block
    assert block_trainability(None, v, v) == pytest.approx(2 - 0 - 1e6)  # F_l does not depend on F_{l-1}


class Chain(nn.Module):
    """stem -> blocks (a Sequential of two linear maps) -> head: F_0 = stem output, F_1, F_2 = block outputs."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.stem = nn.Linear(5, 6, bias=False)
        self.blocks = nn.Sequential(nn.Linear(6, 6, bias=False), nn.Linear(6, 4, bias=False))
        self.head = nn.Linear(4, 3)

    def forward(self, x):
        return self.head(self.blocks(self.stem(x)))


def test_az_terms_on_a_linear_chain_equal_the_hand_computation():
    """Own weights and eval mode (``az_protocol="vit"``): every draw replayed from the documented generator."""
    model = Chain()
    x, y = torch.randn(16, 5), torch.randint(0, 3, (16,))
    report = score_network(model, x, y, proxies=AZ, az_protocol="vit", seed=3)
    assert all(report.ok(p) for p in AZ), report.failed()
    g = torch.Generator().manual_seed(3)
    gauss = torch.randn(16, 5, generator=g)
    f0 = gauss @ model.stem.weight.t()
    f1 = f0 @ model.blocks[0].weight.t()
    f2 = f1 @ model.blocks[1].weight.t()
    entropies = [entropy_by_hand(f.detach()) for f in (f0, f1, f2)]
    v2 = (torch.randint(0, 2, f2.shape, generator=g) * 2 - 1).float()  # last block first
    v1 = (torch.randint(0, 2, f1.shape, generator=g) * 2 - 1).float()
    t2 = block_trainability((v2 @ model.blocks[1].weight).detach(), v2, f1)
    t1 = block_trainability((v1 @ model.blocks[0].weight).detach(), v1, f0)
    assert report.details["az_expressivity"]["blocks"] == ["blocks.0:input", "blocks.0", "blocks.1"]
    assert report.values["az_expressivity"] == pytest.approx(sum(entropies), rel=1e-9)
    assert report.values["az_progressivity"] == pytest.approx(
        min(entropies[1] - entropies[0], entropies[2] - entropies[1]), rel=1e-9
    )
    assert report.values["az_trainability"] == pytest.approx((t1 + t2) / 2, rel=1e-6)


def test_kaiming_reinitialisation_never_touches_the_model_and_depends_only_on_the_seed():
    model = Chain()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    x, y = torch.randn(16, 5), torch.randint(0, 3, (16,))
    rng = torch.get_rng_state()
    first = score_network(model, x, y, proxies=AZ, az_protocol="cnn", copy_model=False)
    assert torch.equal(rng, torch.get_rng_state())
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    torch.nn.init.normal_(model.stem.weight)  # Kaiming re-init: the model's own weights do not matter
    assert score_network(model, x, y, proxies=AZ, az_protocol="cnn").values == first.values
    assert score_network(model, x, y, proxies=AZ, az_protocol="cnn", seed=1).values != first.values


def test_nb201_blocks_identity_and_dead_cells():
    space = get_space("nb201")
    x, y = torch.randn(8, 3, 16, 16), torch.randint(0, 10, (8,))

    def score(arch):
        torch.manual_seed(0)
        net = space.build(space.decode(arch), num_classes=10, C=4, N=1)
        return score_network(net, x, y, proxies=NEW)

    full = score("|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_1x1~1|nor_conv_3x3~2|")
    assert not full.failed()
    assert full.details["az_expressivity"]["blocks"] == [
        "cells.0:input",
        "cells.0",
        "cells.1",
        "cells.2",
        "cells.3",
        "cells.4",
    ]  # stem output + N=1: 5 blocks
    assert full.details["az_expressivity"]["protocol"] == "cnn"
    skips = score("|skip_connect~0|+|none~0|skip_connect~1|+|none~0|none~1|skip_connect~2|")
    assert skips.values["az_trainability"] == -math.inf and "identity" in skips.status["az_trainability"]
    dead = score("|none~0|+|none~0|none~1|+|none~0|none~1|none~2|")
    assert dead.values["az_expressivity"] == -math.inf and "constant" in dead.status["az_expressivity"]


def test_vit_blocks_give_two_residual_points_each_and_the_vit_protocol():
    space = get_space("autoformer_mini")
    torch.manual_seed(0)
    net = space.build(space.sample(0), num_classes=10, img_size=16)
    report = score_network(net, torch.randn(8, 3, 16, 16), torch.randint(0, 10, (8,)), proxies=NEW)
    assert not report.failed(), report.failed()
    blocks = report.details["az_expressivity"]["blocks"]
    depth = len(net.blocks)
    assert len(blocks) == 1 + 2 * depth and blocks[1] == "blocks.0:attn" and blocks[2] == "blocks.0"
    assert report.details["az_expressivity"]["protocol"] == "vit"


def test_meco_equals_the_hand_computation():
    torch.manual_seed(0)
    conv = nn.Conv2d(2, 3, 3, padding=1)
    model = nn.Sequential(conv, nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(3, 4))
    x = torch.randn(6, 2, 5, 5)
    report = score_network(model, x, None, proxies=["meco"])

    def min_eig(out):
        corr = torch.nan_to_num(torch.corrcoef(out[0].reshape(out.shape[1], -1).double()))
        return float(torch.linalg.eigvalsh(corr)[0])

    with torch.no_grad():
        c = conv(x[:1])
        expected = min_eig(c) + min_eig(torch.relu(c))  # the (1, 3, 1, 1) pool output has one position: 0
    assert report.values["meco"] == pytest.approx(expected, rel=1e-12)
    assert [t["module"] for t in report.details["meco"]["terms"]] == ["0", "1", "2"]


def test_meco_term_is_exactly_zero_with_more_channels_than_positions():
    from lswag_lightning.proxies.author_passes import channel_correlation_min_eigenvalue

    rows = torch.randn(10, 6, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    assert channel_correlation_min_eigenvalue(rows) == 0.0  # rank <= 5 < 10 channels
    assert abs(float(torch.linalg.eigvalsh(torch.corrcoef(rows))[0])) < 1e-12  # what the solver would round to
    assert channel_correlation_min_eigenvalue(rows.t()) == pytest.approx(
        float(torch.linalg.eigvalsh(torch.corrcoef(rows.t()))[0]), rel=1e-12
    )


def test_no_blocks_and_no_channel_layout_are_clear_statuses():
    class Flat(nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.b = nn.Linear(4, 8), nn.Linear(8, 2)

        def forward(self, x):
            return self.b(torch.relu(self.a(x)))

    class Linear(nn.Module):  # a head and nothing else: no block before the logits
        def __init__(self):
            super().__init__()
            self.head = nn.Linear(4, 2)

        def forward(self, x):
            return self.head(x)

    x, y = torch.randn(8, 4), torch.randint(0, 2, (8,))
    report = score_network(Linear(), x, y, proxies=NEW)
    assert report.status["az_expressivity"].startswith("error: az-nas pass: no chain of blocks found in Linear")
    assert "pass block_points=" in report.status["az_trainability"]
    assert report.status["meco"].startswith("error: meco pass: MeCo found no module output with a channel layout")
    assert "leave meco out" in report.status["meco"]
    # one hidden layer and a head: the chain runs from the input to the hidden layer (the head left out)
    flat = score_network(Flat(), x, y, proxies=AZ)
    assert not flat.failed() and flat.details["az_expressivity"]["blocks"] == ["a:input", "a"]
    named = score_network(Flat(), x, y, proxies=AZ, block_points=["a", "b"])
    assert not named.failed() and named.details["az_expressivity"]["blocks"] == ["a", "b"]


def test_new_proxies_alone_equal_together_with_every_other():
    space = get_space("nb201")
    torch.manual_seed(0)
    net = space.build(space.sample(3), num_classes=10, C=4, N=1)
    x, y = torch.randn(8, 3, 16, 16), torch.randint(0, 10, (8,))
    together = score_network(net, x, y, proxies="all", swap_mu=1, swap_sigma=1)
    assert set(available_proxies()) >= set(NEW)
    for name in NEW:
        assert score_network(net, x, y, proxies=[name]).values[name] == together.values[name], name


def test_block_container_detection():
    assert find_block_container(nn.Linear(2, 2)) is None
    seq = nn.Sequential(nn.Linear(2, 2), nn.ReLU(), nn.Linear(2, 2))
    assert find_block_container(seq) == ("", seq)
    net = get_space("nb201").build(get_space("nb201").sample(0), num_classes=10, C=4, N=1)
    assert find_block_container(net)[0] == "cells"


def test_authors_random_draws_come_from_a_cpu_generator_so_values_do_not_depend_on_the_device():
    """Kaiming weights are torch.randn from a CPU generator seeded with the session seed, scaled by sqrt(2/fan_in),
    whatever device the model is on (a CUDA generator would draw other numbers: the values would change with the
    device). On a machine with a GPU the AZ-NAS and VKDNW values on CPU and CUDA agree to round-off."""
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 4 * 4, 5))
    state = kaiming_state(model, seed=7)
    gen = torch.Generator().manual_seed(7)
    expected0 = torch.randn(4, 3, 3, 3, generator=gen) * math.sqrt(2.0 / 27)
    expected3 = torch.randn(5, 64, generator=gen) * math.sqrt(2.0 / 64)
    assert torch.equal(state["0.weight"], expected0) and torch.equal(state["3.weight"], expected3)
    if torch.cuda.is_available():
        x = torch.randn(8, 3, 6, 6, generator=torch.Generator().manual_seed(0))
        names = ["az_expressivity", "az_progressivity", "az_trainability", "vkdnw"]
        y = torch.arange(8) % 5
        on_cpu = score_network(model, x, y, proxies=names)
        on_gpu = score_network(model.to("cuda"), x, y, proxies=names)
        for name in names:
            assert on_gpu.values[name] == pytest.approx(on_cpu.values[name], rel=1e-4, abs=1e-6)
