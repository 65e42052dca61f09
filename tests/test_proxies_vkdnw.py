"""VKDNW and ℵ against hand computations: the closed-form multinomial Cholesky factor, the decile entropy, and the
whole score from per-sample Jacobians taken one sample and one class at a time."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from lswag_lightning import score_network
from lswag_lightning.proxies.author_passes import kaiming_state
from lswag_lightning.proxies.vkdnw import decile_entropy, multinomial_cholesky, single_score, smoothed_probabilities


def test_closed_form_cholesky_factors_the_multinomial_covariance():
    g = torch.Generator().manual_seed(0)
    pi = smoothed_probabilities(torch.randn(5, 7, generator=g, dtype=torch.float64))
    factor = multinomial_cholesky(pi)
    cov = torch.diag_embed(pi) - pi[:, :, None] * pi[:, None, :]
    assert torch.allclose(factor @ factor.transpose(1, 2), cov, atol=1e-12)
    assert torch.equal(factor, torch.tril(factor)) and torch.all(factor[:, :, -1] == 0)


def test_decile_entropy_by_hand():
    values = torch.arange(1.0, 12.0, dtype=torch.float64)  # 1..11: deciles 2, 3, ..., 10 exactly
    q = torch.arange(2.0, 11.0, dtype=torch.float64)
    q_hat = q / q.sum()
    assert decile_entropy(values) == pytest.approx(float(-(q_hat * torch.log(q_hat + 1e-10)).sum()), rel=1e-12)
    assert decile_entropy(torch.ones(20)) == pytest.approx(math.log(9), rel=1e-9)  # equal deciles: the maximum


class Tiny(nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.conv = nn.Conv2d(2, 3, 3, padding=1)
        self.bn = nn.BatchNorm2d(3)
        self.fc = nn.Linear(3, 4)

    def forward(self, x):
        return self.fc(torch.relu(self.bn(self.conv(x))).mean(dim=(2, 3)))


@pytest.mark.parametrize("fisher", ["repo", "exact"])
def test_vkdnw_equals_the_per_sample_loop(fisher):
    model = Tiny()
    x, y = torch.randn(6, 2, 5, 5), torch.randint(0, 4, (6,))
    report = score_network(model, x, y, proxies=["vkdnw", "vkdnw_layers"], vkdnw_fisher=fisher, seed=2)
    assert report.ok("vkdnw") and report.values["vkdnw_layers"] == 6  # conv w/b, bn w/b, fc w/b

    # By hand: the same re-initialised weights, eval-mode BN at 0/1, the same Gaussian batch.
    ref = Tiny()
    with torch.no_grad():
        for name, value in kaiming_state(ref, 2).items():
            dict(ref.named_parameters())[name].copy_(value)
    ref.eval()
    gauss = torch.randn(6, 2, 5, 5, generator=torch.Generator().manual_seed(2))
    params = list(ref.parameters())
    rows = []
    for n in range(6):
        z = ref(gauss[n : n + 1])[0]
        jac = torch.stack(
            [
                torch.stack([g.reshape(-1)[0] for g in torch.autograd.grad(z[k], params, retain_graph=True)])
                for k in range(4)
            ]
        ).double()  # (K, P)
        pi = smoothed_probabilities(z.detach().double()[None])
        factor = multinomial_cholesky(pi)[0]
        if fisher == "exact":
            factor = factor.t()
        rows.append(factor @ jac)
    f = sum(r.t() @ r for r in rows) / 6
    expected = decile_entropy(torch.linalg.eigvalsh(f))
    assert report.values["vkdnw"] == pytest.approx(expected, rel=1e-6)


def test_vkdnw_leaves_the_model_and_rng_alone_and_feeds_integer_probes_as_they_are():
    model = Tiny()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    x = torch.randn(4, 2, 5, 5)
    rng = torch.get_rng_state()
    score_network(model, x, None, proxies=["vkdnw"], copy_model=False)
    assert torch.equal(rng, torch.get_rng_state())
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())

    class Tokens(nn.Module):
        def __init__(self):
            super().__init__()
            self.embed, self.fc = nn.Embedding(10, 4), nn.Linear(4, 3)

        def forward(self, t):
            return self.fc(self.embed(t).mean(1))

    report = score_network(Tokens(), torch.randint(0, 10, (4, 5)), None, proxies=["vkdnw", "vkdnw_layers"])
    assert report.ok("vkdnw") and report.details["vkdnw"]["input"].startswith("probe")  # tokens cannot be Gaussian
    assert report.values["vkdnw_layers"] == 3


def test_vkdnw_single_orders_by_tensor_count_then_entropy_in_one_pass():
    x = torch.randn(6, 2, 5, 5, generator=torch.Generator().manual_seed(1))
    report = score_network(Tiny(), x, None, proxies=["vkdnw", "vkdnw_layers", "vkdnw_single"])
    layers, entropy = report.values["vkdnw_layers"], report.values["vkdnw"]
    assert report.values["vkdnw_single"] == pytest.approx(layers + entropy / (2 * math.log(9)), rel=1e-12)
    # lexicographic: one more tensor beats any entropy; equal counts compare entropies
    assert single_score(3, math.log(9)) < single_score(4, 0.0)
    assert single_score(3, 0.2) < single_score(3, 0.3)
