"""Proxy values checked against hand calculations and direct computations from explicit gradients."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from lswag_lightning import score_network
from lswag_lightning.proxies.layers import count_distinct_patterns, depth_bin, depth_bins, pack_patterns


def _linear(weight, bias=None):
    w = torch.tensor(weight, dtype=torch.float32)
    layer = nn.Linear(w.shape[1], w.shape[0], bias=bias is not None)
    with torch.no_grad():
        layer.weight.copy_(w)
        if bias is not None:
            layer.bias.copy_(torch.tensor(bias, dtype=torch.float32))
    return layer


SIGNS = torch.tensor([[1.0, 1.0], [1.0, -1.0], [-1.0, 1.0], [-1.0, -1.0]])


def test_psi_counts_distinct_patterns_by_hand():
    # Hidden units x1, x2, -x1 on the 4 sign combinations: patterns 1100, 1010, 0011 -> 3 distinct.
    net = nn.Sequential(_linear([[1, 0], [0, 1], [-1, 0]]), nn.ReLU(), _linear([[1, 1, 1]]))
    report = score_network(net, SIGNS, proxies=("swap",))
    assert report.values["swap"] == 3.0
    # A duplicated unit (x1 twice) adds a neuron but no new pattern: 2 distinct out of 3 neurons.
    dup = nn.Sequential(_linear([[1, 0], [0, 1], [1, 0]]), nn.ReLU(), _linear([[1, 1, 1]]))
    report = score_network(dup, SIGNS, proxies=("swap",))
    assert report.values["swap"] == 2.0
    assert report.details["swap"]["neurons"] == 3
    assert report.details["swap"]["saturation"] == pytest.approx(2 / 3)


def test_psi_is_one_set_over_all_points_not_a_sum():
    # Second ReLU repeats the first layer's patterns (identity weights): the union still has 2 patterns.
    net = nn.Sequential(_linear([[1, 0], [0, 1]]), nn.ReLU(), _linear([[1, 0], [0, 1]]), nn.ReLU(), _linear([[1, 1]]))
    report = score_network(net, SIGNS, proxies=("swap",))
    assert report.values["swap"] == 2.0
    assert report.details["swap"]["neurons"] == 4


@pytest.mark.parametrize("samples", [1, 7, 63, 64, 65, 130])
def test_bit_packing_matches_brute_force(samples):
    gen = torch.Generator().manual_seed(samples)
    active = torch.rand(samples, 500, generator=gen) > 0.5
    active[:, 10] = active[:, 3]  # a guaranteed duplicate column
    brute = torch.unique(active.t(), dim=0).shape[0]
    assert count_distinct_patterns([pack_patterns(active[:, :250]), pack_patterns(active[:, 250:])]) == brute


def test_depth_bins_follow_the_paper_formula():
    assert depth_bins(10) == [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]
    assert depth_bins(20)[:3] == [0, 1, 1]
    assert depth_bin(20, 20) == 10
    assert [depth_bin(layer, 7) for layer in range(1, 8)] == [int((layer / 7) * 100 // 10) for layer in range(1, 8)]


def _mlp(seed=0, act=nn.ReLU):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(6, 16), act(), nn.Linear(16, 12), act(), nn.Linear(12, 4))


def _direct_grads(net, x, y, chunks):
    """Per-chunk gradients of the mean cross-entropy, for each Linear weight, computed explicitly."""
    weights = [m.weight for m in net if isinstance(m, nn.Linear)]
    per_chunk = []
    for idx in chunks:
        loss = nn.functional.cross_entropy(net(x[idx]), y[idx])
        per_chunk.append([g.double() for g in torch.autograd.grad(loss, weights)])
    return per_chunk


def _direct_lambda_and_zico(per_chunk, use_abs=False):
    lam, zico, terms = 0.0, 0.0, []
    for layer in range(len(per_chunk[0])):
        g = torch.stack([c[layer] for c in per_chunk])
        s = (g.abs() if use_abs else g).std(dim=0, unbiased=False)
        s_signed = g.std(dim=0, unbiased=False)
        keep = s > 0
        term = math.log(float((1 / s[keep]).sum()))
        terms.append(term)
        lam += term
        keep_z = s_signed > 0
        zico += math.log(float((g.abs().mean(0)[keep_z] / s_signed[keep_z]).sum()))
    return lam, zico, terms


def test_lambda_and_zico_equal_direct_computation_from_explicit_gradients():
    net = _mlp()
    x, y = torch.randn(8, 6), torch.randint(0, 4, (8,))
    report = score_network(net, x, y, proxies=("lswag", "zico"))
    lam, zico, _ = _direct_lambda_and_zico(_direct_grads(net, x, y, [slice(0, 4), slice(4, 8)]))
    assert report.values["lswag.lambda"] == pytest.approx(lam, rel=1e-6)
    assert report.values["zico"] == pytest.approx(zico, rel=1e-6)
    assert report.values["lswag"] == pytest.approx(lam * report.values["lswag.psi"], rel=1e-9)


def test_lambda_variants_abs_std_and_per_sample_and_k_batches():
    net = _mlp(1)
    x, y = torch.randn(12, 6), torch.randint(0, 4, (12,))
    abs_report = score_network(net, x, y, proxies=("lswag",), lambda_std="abs")
    lam_abs, _, _ = _direct_lambda_and_zico(_direct_grads(net, x, y, [slice(0, 6), slice(6, 12)]), use_abs=True)
    assert abs_report.values["lswag.lambda"] == pytest.approx(lam_abs, rel=1e-6)

    three = score_network(net, x, y, proxies=("zico",), lambda_k=3)
    _, zico3, _ = _direct_lambda_and_zico(_direct_grads(net, x, y, [slice(0, 4), slice(4, 8), slice(8, 12)]))
    assert three.values["zico"] == pytest.approx(zico3, rel=1e-6)

    per_sample = score_network(net, x, y, proxies=("lswag", "zico_ps"), lambda_samples="per_sample", per_sample_count=5)
    lam_ps, zico_ps, _ = _direct_lambda_and_zico(_direct_grads(net, x, y, [slice(i, i + 1) for i in range(5)]))
    assert per_sample.values["lswag.lambda"] == pytest.approx(lam_ps, rel=1e-6)
    assert per_sample.values["zico_ps"] == pytest.approx(zico_ps, rel=1e-6)
    assert per_sample.passes.keys() >= {"gradient statistics"}
    assert "per-sample gradient statistics" not in per_sample.passes  # Λ and zico_ps shared one pass

    # K separate batches: inputs hold 2 batches of 6; Ψ uses the first batch only.
    batches = score_network(net, x, y, proxies=("lswag",), lambda_samples="batches")
    lam_b, _, _ = _direct_lambda_and_zico(_direct_grads(net, x, y, [slice(0, 6), slice(6, 12)]))
    assert batches.values["lswag.lambda"] == pytest.approx(lam_b, rel=1e-6)
    assert batches.details["lswag"]["psi"]["samples"] == 6


def test_layer_interval_selects_layers_by_depth_bin():
    torch.manual_seed(0)
    layers = []
    for _ in range(11):
        layers += [nn.Linear(8, 8), nn.ReLU()]
    net = nn.Sequential(*layers, nn.Linear(8, 3))  # D = 12 weight layers, bins 0,1,2,3,4,5,5,6,7,8,9,10
    x, y = torch.randn(16, 8), torch.randint(0, 3, (16,))
    full = score_network(net, x, y, proxies=("lswag",))
    table = full.details["lswag"]["lambda"]["layers"]
    assert [row["bin"] for row in table] == depth_bins(12)
    part = score_network(net, x, y, proxies=("lswag",), layer_interval=(2, 5))
    expected = sum(row["lambda_term"] for row in table if 2 <= row["bin"] <= 5)
    assert part.values["lswag.lambda"] == pytest.approx(expected, rel=1e-9)
    # Ψ default: activation points with bin <= hi (Definition 1); 11 ReLU calls -> bins of 1..11 among 11.
    psi_bins = depth_bins(11)
    assert len(part.details["lswag"]["psi"]["selected_points"]) == sum(b <= 5 for b in psi_bins)
    interval = score_network(net, x, y, proxies=("lswag",), layer_interval=(2, 5), psi_layers="interval")
    assert len(interval.details["lswag"]["psi"]["selected_points"]) == sum(2 <= b <= 5 for b in psi_bins)
    explicit = score_network(net, x, y, proxies=("lswag",), layer_interval=(0, 0), psi_layers=(1, 10))
    assert len(explicit.details["lswag"]["psi"]["selected_points"]) == sum(1 <= b <= 10 for b in psi_bins)


def test_naswot_equals_slogdet_of_hand_built_kernel():
    net = _mlp(2)
    x = torch.randn(10, 6)
    codes = []
    hooks = [
        m.register_forward_hook(lambda m, i, o: codes.append((o > 0).double())) for m in net if isinstance(m, nn.ReLU)
    ]
    net(x)
    for h in hooks:
        h.remove()
    kernel = sum(c @ c.t() + (1 - c) @ (1 - c).t() for c in codes)
    _, expected = np.linalg.slogdet(kernel.numpy())
    report = score_network(net, x, proxies=("naswot",))
    assert report.values["naswot"] == pytest.approx(expected, rel=1e-10)


def test_naswot_singular_kernel_is_reported_not_replaced():
    net = _mlp(3)
    x = torch.randn(4, 6)
    x[1] = x[0]  # duplicate sample -> identical codes -> singular kernel
    report = score_network(net, x, proxies=("naswot",))
    assert report.values["naswot"] == -math.inf
    assert report.status["naswot"].startswith("inf: the Hamming kernel is singular")


def test_synflow_on_a_linear_chain_equals_twice_the_output_sum():
    # For a bias-free linear chain with |W|, each layer's Σ θ ∂R/∂θ equals R (Euler), so synflow = 2R.
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(5, 7, bias=False), nn.Linear(7, 3, bias=False))
    r = float(
        (
            net[1].weight.detach().abs().double()
            @ net[0].weight.detach().abs().double()
            @ torch.ones(5, dtype=torch.float64)
        ).sum()
    )
    report = score_network(net, torch.randn(4, 5), proxies=("synflow",))
    assert report.values["synflow"] == pytest.approx(math.log(2 * r), rel=1e-12)
    assert net[0].weight.min() < 0  # the caller's signs are untouched


def test_snip_and_grad_norm_use_the_full_batch_gradient():
    net = _mlp(4)
    x, y = torch.randn(8, 6), torch.randint(0, 4, (8,))
    (grads,) = _direct_grads(net, x, y, [slice(0, 8)])
    weights = [m.weight.detach().double() for m in net if isinstance(m, nn.Linear)]
    report = score_network(net, x, y, proxies=("snip", "grad_norm"))
    assert report.values["snip"] == pytest.approx(sum(float((w * g).abs().sum()) for w, g in zip(weights, grads)))
    assert report.values["grad_norm"] == pytest.approx(sum(float(g.norm()) for g in grads))


def test_jacov_matches_numpy_on_explicit_jacobians():
    net = _mlp(5)
    x = torch.randn(6, 6)
    jac = torch.stack([torch.autograd.functional.jacobian(lambda v: net(v[None]).sum(), xi) for xi in x])
    corr = np.corrcoef(jac.double().numpy())
    eig = np.linalg.eigvalsh(corr)
    expected = -np.sum(np.log(eig + 1e-5) + 1.0 / (eig + 1e-5))
    report = score_network(net, x, proxies=("jacov",))
    assert report.values["jacov"] == pytest.approx(expected, rel=1e-6)


def test_params_and_flops_by_hand():
    class WithAux(nn.Module):
        def __init__(self):
            super().__init__()
            self.body = nn.Sequential(nn.Linear(8, 4), nn.ReLU(), nn.Linear(4, 2))
            self.aux_head = nn.Linear(4, 2)  # an auxiliary head (not called here), left out of params

        def forward(self, x):
            return self.body(x)

    net = WithAux()
    report = score_network(net, torch.randn(3, 8), proxies=("params", "flops"))
    assert report.values["params"] == 8 * 4 + 4 + 4 * 2 + 2
    assert report.values["flops"] == 2 * (8 * 4 + 4 * 2)  # one sample, a multiply-add counts 2


def test_jacov_of_a_constant_model_is_a_degenerate_status():
    class Constant(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(3, 2)

        def forward(self, x):
            return self.fc(torch.ones_like(x)) + 0 * x.sum()

    report = score_network(Constant(), torch.randn(4, 3), proxies=("jacov",))
    assert math.isnan(report.values["jacov"])
    assert report.status["jacov"].startswith("degenerate: every sample has the same input Jacobian")


def test_snip_on_a_batchnorm_model_uses_one_full_batch_backward():
    # BatchNorm couples the samples, so the gradient of the halves is not the batch gradient: the engine must
    # take the batch's own backward (as NASLib does) rather than the mean of the split gradients.
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(6, 16), nn.BatchNorm1d(16), nn.ReLU(), nn.Linear(16, 4))
    x, y = torch.randn(8, 6), torch.randint(0, 4, (8,))
    weights = [net[0].weight, net[3].weight]
    grads = torch.autograd.grad(nn.functional.cross_entropy(net(x), y), weights)
    report = score_network(net, x, y, proxies=("snip", "lswag"))
    assert report.values["snip"] == pytest.approx(
        sum(float((w.detach().double() * g.double()).abs().sum()) for w, g in zip(weights, grads)), rel=1e-6
    )
    assert set(report.passes) == {"gradient statistics", "batch"}


def test_batch_grads_split_on_a_batchnorm_model_is_the_mean_of_the_half_batch_gradients():
    # batch_grads="split": snip/grad_norm take the mean of Λ's two half-batch gradients (each half normalised by
    # its own BatchNorm statistics), computed by hand here, and no batch pass runs (zico shares the split pass).
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(6, 16), nn.BatchNorm1d(16), nn.ReLU(), nn.Linear(16, 4))
    x, y = torch.randn(8, 6), torch.randint(0, 4, (8,))
    weights = [net[0].weight, net[3].weight]
    halves = [
        torch.autograd.grad(nn.functional.cross_entropy(net(x[i : i + 4]), y[i : i + 4]), weights) for i in (0, 4)
    ]
    mean = [(a + b) / 2 for a, b in zip(*halves)]
    whole = torch.autograd.grad(nn.functional.cross_entropy(net(x), y), weights)
    report = score_network(net, x, y, proxies=("snip", "grad_norm", "zico"), batch_grads="split")
    assert report.values["snip"] == pytest.approx(
        sum(float((w.detach().double() * g.double()).abs().sum()) for w, g in zip(weights, mean)), rel=1e-6
    )
    assert report.values["grad_norm"] == pytest.approx(sum(float(g.double().norm()) for g in mean), rel=1e-6)
    assert report.values["snip"] != pytest.approx(  # BatchNorm couples the samples: not the batch gradient
        sum(float((w.detach().double() * g.double()).abs().sum()) for w, g in zip(weights, whole)), rel=1e-3
    )
    assert set(report.passes) == {"gradient statistics"}
    alone = score_network(net, x, y, proxies=("snip",), batch_grads="split")
    assert alone.values["snip"] == report.values["snip"]  # alone equals together
    with pytest.raises(ValueError, match="batch_grads='split'.*lambda_samples='per_sample'"):
        score_network(net, x, y, proxies=("snip",), batch_grads="split", lambda_samples="per_sample")
    with pytest.raises(ValueError, match="batch_grads='halves': use 'batch' or 'split'"):
        score_network(net, x, y, proxies=("snip",), batch_grads="halves")


def test_snip_on_a_model_without_batchnorm_reuses_the_split_gradients():
    net = _mlp(6)
    x, y = torch.randn(8, 6), torch.randint(0, 4, (8,))
    report = score_network(net, x, y, proxies=("snip", "grad_norm", "zico"))
    assert set(report.passes) == {"gradient statistics"}  # no second backward


def test_packed_patterns_are_the_same_bits_on_every_path():
    """The CPU path (numpy packbits) and the tensor path (other devices) give identical words; bit s%8 of byte
    s//8 is sample s."""

    gen = torch.Generator().manual_seed(0)
    for samples, neurons in ((64, 300), (5, 7), (130, 50), (1, 3)):
        active = torch.rand(samples, neurons, generator=gen) > 0.5
        cpu = pack_patterns(active)
        words = -(-samples // 64)
        bits = torch.nn.functional.pad(active.t().to(torch.uint8), (0, words * 64 - samples))
        expected = (
            (bits.reshape(neurons, words * 8, 8) * torch.tensor([1, 2, 4, 8, 16, 32, 64, 128], dtype=torch.uint8))
            .sum(-1, dtype=torch.int64)
            .to(torch.uint8)
            .view(torch.int64)
        )
        assert torch.equal(cpu, expected.reshape(neurons, words))
        if torch.cuda.is_available():
            assert torch.equal(pack_patterns(active.cuda()).cpu(), cpu)
    one = torch.zeros(64, 1, dtype=torch.bool)
    one[3, 0] = True
    assert int(pack_patterns(one)[0, 0]) == 1 << 3
