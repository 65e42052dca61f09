"""score_network on models nobody wrote for it: any output, any input dtype, a forward that raises, BatchNorm1d.

The failure policy: invalid arguments raise before any pass; anything that goes wrong inside a pass is the status
of exactly the proxies that needed that pass, and every other proxy computes the value it computes alone.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from lswag_lightning import available_proxies, score_network

ALL_BUT_REG = [p for p in available_proxies() if p != "swap_reg"]


def features():
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(2), nn.Flatten())


class WithAuxHead(nn.Module):
    """Returns ``(logits, aux_logits)``; the default adapter scores the logits, so ``aux`` gets no gradient."""

    def __init__(self, output: str = "tuple"):
        super().__init__()
        self.body = features()
        self.head = nn.Linear(32, 5)
        self.aux = nn.Linear(32, 5)
        self.output = output

    def forward(self, x):
        h = self.body(x)
        logits, aux = self.head(h), self.aux(h)
        if self.output == "tuple":
            return logits, aux
        if self.output == "dict":
            return {"logits": logits, "aux_logits": aux}
        return ModelOutput(logits=logits, aux_logits=aux)


@dataclass
class ModelOutput:
    logits: torch.Tensor
    aux_logits: torch.Tensor


class LogitsOnly(nn.Module):
    def __init__(self, twin: WithAuxHead):
        super().__init__()
        self.body, self.head = twin.body, twin.head

    def forward(self, x):
        return self.head(self.body(x))


def image_batch(n=16):
    g = torch.Generator().manual_seed(1)
    return torch.randn(n, 3, 8, 8, generator=g), torch.randint(0, 5, (n,), generator=g)


@pytest.mark.parametrize("output", ["tuple", "dict", "model_output"])
def test_aux_head_is_skipped_by_the_gradient_statistics_and_counted(output):
    model = WithAuxHead(output)
    x, y = image_batch()
    proxies = ["lswag", "zico", "zico_ps", "snip", "grad_norm", "synflow", "naswot"]
    report = score_network(model, x, y, proxies=proxies)
    assert all(report.ok(p) for p in proxies), report.failed()
    reference = score_network(LogitsOnly(model), x, y, proxies=proxies)
    for name in proxies:  # the aux head changes nothing: the same weights get the same gradients
        assert report.values[name] == reference.values[name], name
    for name in ("zico", "zico_ps", "snip", "grad_norm"):
        assert report.details[name]["no_gradient"] == {"count": 1, "modules": ["aux"]}
    assert report.details["lswag"]["lambda"]["no_gradient"] == {"count": 1, "modules": ["aux"]}
    assert [layer["name"] for layer in report.details["snip"]["layers"]] == ["body.0", "head"]


class TokenClassifier(nn.Module):
    """Token ids (batch, seq) -> class logits, the way a text classifier is written."""

    def __init__(self, vocab=50, dim=16, classes=4):
        super().__init__()
        self.embed = nn.Embedding(vocab, dim)
        self.mlp = nn.Sequential(nn.Linear(dim, 32), nn.ReLU(), nn.Linear(32, classes))

    def forward(self, tokens):
        return self.mlp(self.embed(tokens).mean(dim=1))


def test_integer_token_inputs_score_every_proxy_but_jacov():
    torch.manual_seed(0)
    model = TokenClassifier()
    g = torch.Generator().manual_seed(2)
    tokens, labels = torch.randint(0, 50, (16, 7), generator=g), torch.randint(0, 4, (16,), generator=g)
    report = score_network(model, tokens, labels, proxies="all", swap_mu=2, swap_sigma=10)
    failed = report.failed()
    partial = {k for k, status in failed.items() if status.startswith("partial: ")}
    assert set(failed) - partial == {"jacov", "meco", "az_expressivity", "az_progressivity", "az_trainability"}, failed
    # the pooled features have one position per channel: MeCo's channel correlations are singular by construction
    assert failed["meco"].startswith("degenerate: every one of MeCo's 1 module outputs")
    # embedding, then an MLP head: no chain of two blocks the rule can find, and the status names the option
    assert "no chain of blocks found in TokenClassifier" in failed["az_expressivity"]
    assert "block_points=" in failed["az_expressivity"]
    named = score_network(model, tokens, labels, proxies=["az_expressivity"], block_points=["embed", "mlp.1"])
    assert named.ok("az_expressivity") and named.details["az_expressivity"]["blocks"] == ["embed", "mlp.1"]
    # the gradient proxies measure the Linear weights, not the embedding table: 640 of 1,476 parameters, and say so
    assert partial == {"lswag", "lswag.lambda", "zico", "zico_ps", "snip", "grad_norm", "synflow"}
    assert all("measured 640 of 1,476 parameters" in failed[k] and "Embedding (800)" in failed[k] for k in partial)
    assert failed["jacov"].startswith(
        "error: jacov differentiates the logits with respect to the inputs, so it "
        "needs floating-point inputs; the probe inputs are torch.int64"
    )
    # synflow feeds token id 1 everywhere: by hand, R = Σ logits of |W2| relu(|W1| |e_1| + |b1|) + |b2|
    e1 = model.embed.weight[1].double().abs()
    w1, b1 = model.mlp[0].weight.double().abs(), model.mlp[0].bias.double().abs()
    w2, b2 = model.mlp[2].weight.double().abs(), model.mlp[2].bias.double().abs()
    params = [w1, w2]
    for p in params:
        p.requires_grad_(True)
    hidden = torch.relu(w1 @ e1 + b1)
    total = (w2 @ hidden + b2).sum()
    grads = torch.autograd.grad(total, params)
    expected = math.log(sum(float((p.detach() * g_).abs().sum()) for p, g_ in zip(params, grads)))
    assert report.values["synflow"] == pytest.approx(expected, rel=1e-12)


class Uint8Images(nn.Module):
    """Casts raw uint8 pixels to float inside forward, as many data pipelines leave it to the model."""

    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 3)
        )

    def forward(self, x):
        return self.net(x.float() / 255.0)


def test_uint8_images_cast_inside_forward():
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(3)
    pixels = torch.randint(0, 256, (12, 3, 10, 10), generator=g, dtype=torch.uint8)
    labels = torch.randint(0, 3, (12,), generator=g)
    report = score_network(Uint8Images(), pixels, labels, proxies="all", swap_mu=1, swap_sigma=1)
    failed = report.failed()
    assert set(failed) == {"jacov", "synflow"}, failed
    assert report.details["az_expressivity"]["input"].startswith("probe")  # integer inputs cannot be Gaussian
    # The float32 cast meets synflow's float64 weights: the status says so and how to fix it, never a silent value.
    assert failed["synflow"].startswith("error: synflow pass failed: RuntimeError: ")
    assert "fix: synflow runs the model in float64" in failed["synflow"]
    assert math.isnan(report.values["synflow"])


class RaisesIn(nn.Module):
    """A small MLP whose forward raises when ``when(x, training)`` holds (a user's bug in one code path)."""

    def __init__(self, when, error=None):
        super().__init__()
        torch.manual_seed(0)
        self.net = nn.Sequential(nn.Flatten(), nn.Linear(12, 16), nn.ReLU(), nn.Linear(16, 3))
        self.when = when
        self.error = RuntimeError("the user's module failed") if error is None else error

    def forward(self, x):
        if self.when(x, self.training):
            raise self.error
        return self.net(x)


def mlp_batch(n=8):
    g = torch.Generator().manual_seed(4)
    return torch.randn(n, 12, generator=g), torch.randint(0, 3, (n,), generator=g)


def test_a_forward_that_always_raises_is_a_status_of_every_proxy_that_runs_the_model():
    x, y = mlp_batch()
    model = RaisesIn(lambda x, training: True, ValueError("expects a dict batch"))
    report = score_network(model, x, y, proxies="all")
    assert report.ok("params")
    for name, status in report.failed().items():
        if name == "swap_reg":
            continue
        assert "pass failed: ValueError: expects a dict batch" in status, (name, status)


def test_a_failed_pass_never_blames_products_another_pass_delivered():
    # BN-free: snip's batch gradient comes from the split pass. Only the whole-batch forward fails.
    x, y = mlp_batch(8)
    model = RaisesIn(lambda x, training: x.shape[0] == 8)
    report = score_network(model, x, y, proxies=["snip", "grad_norm", "lswag", "naswot", "zico"])
    assert report.ok("snip") and report.ok("grad_norm") and report.ok("zico") and report.ok("lswag.lambda")
    assert report.status["naswot"] == (
        "error: batch pass failed: RuntimeError: the user's module failed (fix: the model's own code raised this: "
        "make its forward run on the probe batch, or leave these proxies out (the traceback is logged at DEBUG by "
        "lswag_lightning.proxies.session))"
    )
    assert report.status["lswag.psi"] == report.status["naswot"]
    assert report.status["lswag"].startswith("error: Ψ: batch pass failed")
    assert set(report.passes) == {"gradient statistics", "batch"}


@pytest.mark.parametrize("failing", ["per_sample", "whole_batch"])
def test_a_value_alone_equals_the_value_with_all_others_when_some_fail(failing):
    x, y = mlp_batch(8)
    when = {
        "per_sample": lambda x, training: training and x.shape[0] == 1,
        "whole_batch": lambda x, training: training and x.shape[0] == 8,
    }[failing]
    together = score_network(RaisesIn(when), x, y, proxies="all", swap_mu=1, swap_sigma=1)
    # MeCo's one-sample forward fails with the per-sample passes; it has no channel layout in an MLP anyway.
    expected_failures = {
        "per_sample": {"zico_ps", "meco"},
        "whole_batch": {
            "naswot",
            "swap",
            "swap_reg",
            "jacov",
            "lswag",
            "lswag.psi",
            "meco",
            "az_expressivity",
            "az_progressivity",
            "az_trainability",
        },
    }[failing]
    assert set(together.failed()) == expected_failures
    for name in ALL_BUT_REG:
        alone = score_network(RaisesIn(when), x, y, proxies=[name])
        for key, value in alone.values.items():
            assert together.status[key] == alone.status[key], key
            if alone.ok(key):
                assert together.values[key] == value, key


def test_batchnorm1d_with_a_one_sample_gradient_part_is_a_status_with_the_fix():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(12, 16), nn.BatchNorm1d(16), nn.ReLU(), nn.Linear(16, 3))
    x, y = mlp_batch(3)  # split into parts of 2 and 1 samples: the part of 1 cannot be normalised on its own
    report = score_network(net, x, y, proxies=["lswag", "zico", "naswot", "zico_ps", "snip"])
    assert report.status["zico"] == (
        "error: gradient statistics pass failed: ValueError: Expected more than 1 value per channel when training, "
        "got input size torch.Size([1, 16]) (fix: a BatchNorm layer normalises each of the lambda_k=2 gradient "
        "samples on its own and got one sample: use a probe batch of at least 4)"
    )
    assert report.status["lswag.lambda"] == report.status["zico"]
    assert report.ok("naswot") and report.ok("snip") and report.ok("zico_ps") and report.ok("lswag.psi")
    # A batch of 2 splits into single samples: like zico_ps, they hold the batch statistics fixed and compute.
    two = score_network(net, x[:2], y[:2], proxies=["lswag", "zico", "naswot", "zico_ps", "snip"])
    assert not two.failed(), two.failed()
    assert two.values["zico"] == two.values["zico_ps"]  # the same two single-sample gradients


def test_zico_ps_on_batchnorm1d_holds_the_batch_statistics_fixed():
    """By hand: each sample's gradient through BatchNorm1d normalised with the per-sample set's statistics."""
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(12, 16), nn.BatchNorm1d(16), nn.ReLU(), nn.Linear(16, 3))
    x, y = mlp_batch(8)
    report = score_network(net, x, y, proxies=["zico_ps"], per_sample_count=6)
    assert report.ok("zico_ps")
    lin1, bn, lin2 = net[0], net[1], net[3]
    with torch.no_grad():
        h = lin1(x[:6])
        mean, var = h.mean(0), h.var(0, unbiased=False)
    grads = {"w1": [], "w2": []}
    for i in range(6):
        h = F.batch_norm(lin1(x[i : i + 1]), mean, var, bn.weight, bn.bias, training=False, eps=bn.eps)
        loss = F.cross_entropy(lin2(torch.relu(h)), y[i : i + 1])
        g1, g2 = torch.autograd.grad(loss, [lin1.weight, lin2.weight])
        grads["w1"].append(g1.double().flatten())
        grads["w2"].append(g2.double().flatten())
    expected = 0.0
    for layer in ("w1", "w2"):
        g = torch.stack(grads[layer])
        std = g.std(0, unbiased=False)
        keep = std > 0
        expected += math.log(float((g.abs().mean(0)[keep] / std[keep]).sum()))
    assert report.values["zico_ps"] == pytest.approx(expected, rel=1e-9)


def test_batchnorm2d_per_sample_values_keep_single_sample_normalisation():
    """BatchNorm2d normalises one sample over its positions, so zico_ps there is unchanged by the BatchNorm1d rule:
    it equals per-sample gradients in plain train mode."""
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 36, 3))
    x, y = torch.randn(5, 3, 8, 8), torch.randint(0, 3, (5,))
    report = score_network(net, x, y, proxies=["zico_ps"])
    grads = {0: [], 4: []}
    for i in range(5):
        loss = F.cross_entropy(net(x[i : i + 1]), y[i : i + 1])
        for index, g in zip(grads, torch.autograd.grad(loss, [net[0].weight, net[4].weight])):
            grads[index].append(g.double().flatten())
    expected = 0.0
    for stacked in (torch.stack(v) for v in grads.values()):
        std = stacked.std(0, unbiased=False)
        keep = std > 0
        expected += math.log(float((stacked.abs().mean(0)[keep] / std[keep]).sum()))
    assert report.values["zico_ps"] == pytest.approx(expected, rel=1e-9)


def test_forward_fn_scores_a_forward_that_needs_the_targets():
    class Seq2Seq(nn.Module):
        def __init__(self):
            super().__init__()
            torch.manual_seed(0)
            self.embed = nn.Embedding(20, 8)
            self.ff = nn.Sequential(nn.Linear(16, 24), nn.ReLU(), nn.Linear(24, 20))

        def forward(self, inputs, target):
            joined = torch.cat([self.embed(inputs), self.embed(target)], dim=-1)
            return F.log_softmax(self.ff(joined), dim=-1).reshape(-1, 20)

    g = torch.Generator().manual_seed(5)
    tokens, target = torch.randint(0, 20, (8, 5), generator=g), torch.randint(0, 20, (8, 5), generator=g)
    proxies = ["lswag", "zico", "snip", "naswot", "synflow", "flops", "jacov"]
    bare = score_network(Seq2Seq(), tokens, None, proxies=["naswot", "flops"])
    assert (
        "TypeError" in bare.status["naswot"]
        and "fix: the model's forward needs more than the inputs: pass "
        "forward_fn=lambda module, inputs, targets: module(inputs, targets)"
        in bare.status["naswot"]
    )
    report = score_network(
        Seq2Seq(),
        tokens,
        target,
        proxies=proxies,
        forward_fn=lambda m, x, t: m(x, t),
        loss_fn=lambda out, t: F.nll_loss(out, t.reshape(-1)),
    )
    assert set(report.failed()) == {"jacov"}
    model = Seq2Seq()
    out = model(tokens, target)
    assert (
        report.values["flops"]
        == score_network(model, tokens[:1], target[:1], proxies=["flops"], forward_fn=lambda m, x, t: m(x, t)).values[
            "flops"
        ]
    )
    assert report.details["lswag"]["psi"]["neurons"] == 5 * 24 and out.shape == (40, 20)


def test_invalid_arguments_raise_before_any_pass():
    x, y = mlp_batch()
    calls = []

    class Counting(RaisesIn):
        def forward(self, x):
            calls.append(x.shape[0])
            return super().forward(x)

    model = Counting(lambda x, training: False)
    with pytest.raises(ValueError, match=r"label 7 but the model outputs 3 classes"):
        score_network(model, x, torch.full((8,), 7), proxies=["lswag", "naswot"])
    assert calls == [1]  # only the one-sample check ran
    with pytest.raises(ValueError, match="forward_fn must be callable"):
        score_network(model, x, y, forward_fn="module(x)")
