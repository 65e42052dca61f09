"""ZeroCostProxyCallback on LightningModules nobody wrote for it, written the way public templates write them.

For each client: the fit completes under ``on_error="warn"``, the weights after training are bit-identical with
and without the callback, and every status says what happened and what to change. Clients: the classic MNIST
module (Linear-BatchNorm1d-ReLU), Lightning's own ``LightningTransformer`` demo on synthetic tokens (as-is and with
adapters), a module returning ``(logits, aux_logits)``, NaN in the probe, uint8 images cast inside ``forward``, and
a ``forward`` that raises.
"""

from __future__ import annotations

import math

import lightning.pytorch as pl
import pytest
import torch
import torch.nn.functional as F
from lightning.pytorch.demos.transformer import LightningTransformer
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from lswag_lightning import ZeroCostProxyCallback, available_proxies
from lswag_lightning.proxies.registry import get_proxy

torch.set_num_threads(1)
pytestmark = [
    pytest.mark.filterwarnings("ignore:.*does not have many workers.*"),
    pytest.mark.filterwarnings("ignore:.*smaller than the logging interval.*"),
]

QUIET = dict(
    accelerator="cpu",
    devices=1,
    enable_progress_bar=False,
    enable_model_summary=False,
    num_sanity_val_steps=0,
    enable_checkpointing=False,
    logger=False,
)


def fit(make_module, callbacks, steps=3, seed=0):
    pl.seed_everything(seed, verbose=False)
    module = make_module()
    pl.Trainer(max_steps=steps, callbacks=callbacks, **QUIET).fit(module)
    return module


def fit_twice(make_module, callback, steps=3):
    """The module trained with the callback and without it, from the same seed."""
    return fit(make_module, [callback], steps), fit(make_module, [], steps)


def same_weights(a: nn.Module, b: nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


# ---------------------------------------------------------------------------------------------------- clients
class MNISTModel(pl.LightningModule):
    """The classic MNIST LightningModule: flatten, Linear-BatchNorm1d-ReLU, Linear; synthetic 28x28 digits."""

    def __init__(self, images=None):
        super().__init__()
        self.l1 = nn.Linear(28 * 28, 64)
        self.bn = nn.BatchNorm1d(64)
        self.act = nn.ReLU()
        self.l2 = nn.Linear(64, 10)
        g = torch.Generator().manual_seed(7)
        self.images = torch.rand(96, 1, 28, 28, generator=g) if images is None else images
        self.labels = torch.randint(0, 10, (96,), generator=g)

    def forward(self, x):
        return self.l2(self.act(self.bn(self.l1(x.view(x.size(0), -1)))))

    def training_step(self, batch, batch_idx):
        x, y = batch
        return F.cross_entropy(self(x), y)

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=0.02)

    def train_dataloader(self):
        return DataLoader(TensorDataset(self.images, self.labels), batch_size=16, shuffle=True)


class SyntheticTokensTransformer(LightningTransformer):
    """Lightning's demo transformer as-is; only the data is synthetic (no WikiText-2 download)."""

    def __init__(self):
        super().__init__(vocab_size=64)

    def prepare_data(self):
        pass

    def train_dataloader(self):
        g = torch.Generator().manual_seed(3)
        stream = torch.randint(0, 64, (48 * 9 + 1,), generator=g)
        inputs, targets = stream[:-1].reshape(48, 9), stream[1:].reshape(48, 9)
        return DataLoader(TensorDataset(inputs, targets), batch_size=8)


class AuxHeadModel(MNISTModel):
    """Returns ``(logits, aux_logits)`` and trains both heads, like Inception-style auxiliary classifiers."""

    def __init__(self):
        super().__init__()
        self.aux = nn.Linear(64, 10)

    def forward(self, x):
        h = self.act(self.bn(self.l1(x.view(x.size(0), -1))))
        return self.l2(h), self.aux(h)

    def training_step(self, batch, batch_idx):
        x, y = batch
        logits, aux = self(x)
        return F.cross_entropy(logits, y) + 0.4 * F.cross_entropy(aux, y)


class FunctionalReluMNIST(MNISTModel):
    """The same network with the ReLU applied as a function, as many templates write it."""

    def forward(self, x):
        return self.l2(torch.relu(self.bn(self.l1(x.view(x.size(0), -1)))))


class Uint8Model(MNISTModel):
    """Raw uint8 pixels in the dataset; the module casts them inside forward."""

    def __init__(self):
        g = torch.Generator().manual_seed(7)
        super().__init__(images=torch.randint(0, 256, (96, 1, 28, 28), dtype=torch.uint8, generator=g))

    def forward(self, x):
        return super().forward(x.float() / 255.0)


class InferenceOnlyForward(MNISTModel):
    """``forward`` serves a different (inference) API and raises on a plain tensor; training uses the layers."""

    def forward(self, x):
        raise ValueError("forward expects a dict {'image': ...}")

    def training_step(self, batch, batch_idx):
        x, y = batch
        logits = self.l2(self.act(self.bn(self.l1(x.view(x.size(0), -1)))))
        return F.cross_entropy(logits, y)


# ------------------------------------------------------------------------------------------------------ tests
def test_mnist_batchnorm1d_with_every_proxy():
    zc = ZeroCostProxyCallback(proxies="all", batch_size=32)
    with pytest.warns(UserWarning, match=r"swap_reg: swap_reg needs swap_mu and swap_sigma"):
        trained, plain = fit_twice(MNISTModel, zc)
    assert same_weights(trained, plain)
    # every other proxy, zico_ps included, computes; MeCo says why an MLP has nothing for it, AZ-NAS reads the chain
    # of the MLP's layers (l1, then the BatchNorm; l2 gives the logits)
    assert set(zc.report.failed()) == {"swap_reg", "meco"}
    assert zc.report.details["az_expressivity"]["blocks"] == ["l1", "bn"]
    assert "no module output with a channel layout" in zc.report.status["meco"]
    assert all(math.isfinite(zc.report.values[p]) for p in ("lswag", "zico", "zico_ps", "naswot", "jacov"))


def test_functional_relu_says_how_to_recover_psi_and_activation_points_do():
    zc = ZeroCostProxyCallback(proxies=["lswag", "naswot"], batch_size=32)
    with pytest.warns(UserWarning, match="no activation module found in FunctionalReluMNIST"):
        fit(FunctionalReluMNIST, [zc])
    assert zc.report.ok("lswag.lambda") and "pass activation_points=" in zc.report.status["lswag.psi"]
    # torch.relu(bn(...)) is active exactly where the BatchNorm output is positive: its sign pattern is Ψ's pattern.
    recovered = ZeroCostProxyCallback(
        proxies=["lswag", "naswot"], batch_size=32, score_options={"activation_points": ["bn"]}
    )
    fit(FunctionalReluMNIST, [recovered])
    with_module = ZeroCostProxyCallback(proxies=["lswag", "naswot"], batch_size=32)
    fit(MNISTModel, [with_module])
    assert not recovered.report.failed() and recovered.report.values == with_module.report.values


def test_lightning_transformer_as_is_reports_what_to_change():
    zc = ZeroCostProxyCallback(proxies="all", batch_size=16)
    with pytest.warns(UserWarning, match="could not be computed; training goes on unchanged"):
        trained, plain = fit_twice(SyntheticTokensTransformer, zc)
    assert same_weights(trained, plain)
    # its forward needs the targets: every proxy that runs the model says how to pass them; the counts need no forward
    assert "pass forward_fn=lambda module, inputs, targets: module(inputs, targets)" in zc.report.status["lswag"]
    assert zc.report.ok("params") and zc.report.ok("vkdnw_layers")


def test_lightning_transformer_with_adapters_scores_every_proxy_but_jacov():
    def nll(log_probs, target):  # the demo's own loss: its forward returns log-probabilities per token
        return F.nll_loss(log_probs, target.reshape(-1))

    def score_without_forward_fn():
        zc = ZeroCostProxyCallback(proxies=["naswot", "flops"], batch_size=16, loss_fn=nll)
        fit(SyntheticTokensTransformer, [zc], steps=1)
        return zc.report.status["naswot"]

    assert (
        "missing 1 required positional argument: 'target' (fix: the model's forward needs more than the "
        "inputs: pass forward_fn=" in score_without_forward_fn()
    )
    relu_inputs = [f"model.transformer.{side}.layers.{i}.linear1" for side in ("encoder", "decoder") for i in (0, 1)]
    encoder_blocks = ["model.transformer.encoder.layers.0", "model.transformer.encoder.layers.1"]
    # Every proxy but VKDNW, for time: 64 outputs take 63 backward passes plus forward-mode products (about 50 s here
    # against 1.4 s for all the others); tests/test_az_vkdnw_any_model.py covers transformers and tied LMs.
    every = [p for p in available_proxies() if p not in ("vkdnw", "vkdnw_single")]
    zc = ZeroCostProxyCallback(
        proxies=every,
        batch_size=16,
        loss_fn=nll,
        forward_fn=lambda m, x, y: m(x, y),
        score_options={
            "activation_points": relu_inputs,
            "swap_mu": 1000,
            "swap_sigma": 1e6,
            "block_points": encoder_blocks,
        },
    )
    with pytest.warns(UserWarning) as warned:
        trained, plain = fit_twice(SyntheticTokensTransformer, zc)
    messages = [str(w.message) for w in warned]
    assert any("jacov: jacov differentiates the logits with respect to the inputs" in m for m in messages)
    failed = zc.report.failed()
    partial = {k for k, status in failed.items() if status.startswith("partial: ")}
    flagged = len(partial) + 1  # the partial values and MeCo's degenerate one, out of every value scored
    assert any(f"{flagged} of {len(zc.report.status)} zero-cost values are not informative" in m for m in messages)
    assert same_weights(trained, plain)
    assert set(failed) - partial == {"jacov", "meco"}, failed
    # AZ-NAS reads the two encoder layers named by block_points
    assert all(zc.report.ok(k) for k in ("az_expressivity", "az_progressivity", "az_trainability"))
    # 200 channels on 9 token positions in every layer: each channel correlation is singular, MeCo exactly 0
    assert zc.report.status["meco"].startswith("degenerate: every one of MeCo's")
    # nn.MultiheadAttention keeps its fused input projection outside any Linear: the gradient proxies measure 43.5 %
    # of the parameters and say so, naming it
    assert partial == {"lswag", "lswag.lambda", "zico", "zico_ps", "snip", "grad_norm", "synflow"}
    assert all(
        "(43.5%, below min_coverage=0.5)" in failed[k] and "MultiheadAttention (723,600)" in failed[k] for k in partial
    )
    # Ψ counts the ReLU patterns through the pre-activation Linear outputs: 4 layers x 9 tokens x 200 units.
    assert zc.report.details["lswag"]["psi"]["neurons"] == 4 * 9 * 200


def test_aux_head_output_is_scored_and_the_head_counted():
    zc = ZeroCostProxyCallback(proxies=["lswag", "zico", "snip", "grad_norm", "synflow"], batch_size=32)
    trained, plain = fit_twice(AuxHeadModel, zc)
    assert same_weights(trained, plain)
    assert not zc.report.failed()
    assert zc.report.details["zico"]["no_gradient"] == {"count": 1, "modules": ["aux"]}


def test_nan_in_the_probe_is_a_status_and_training_goes_on():
    x = torch.randn(16, 1, 28, 28)
    x[2, 0, 5, 5] = float("nan")
    probe = (x, torch.arange(16) % 10)
    zc = ZeroCostProxyCallback(proxies=["lswag", "naswot"], batch_size=16, probe_batch=probe)
    with pytest.warns(UserWarning, match="non-finite values"):
        trained, plain = fit_twice(MNISTModel, zc)
    assert same_weights(trained, plain)
    assert zc.report.status["lswag"].startswith(
        "error: scoring failed before any pass: ValueError: inputs contain "
        "1 non-finite values (NaN or inf) in 1 of 16 samples; fix the probe"
    )
    with pytest.raises(ValueError, match="non-finite values"):
        fit(MNISTModel, [ZeroCostProxyCallback(proxies=["lswag"], batch_size=16, probe_batch=probe, on_error="raise")])


def test_uint8_images_cast_inside_forward():
    zc = ZeroCostProxyCallback(proxies="all", batch_size=16, score_options={"swap_mu": 50, "swap_sigma": 1e3})
    values = sum(1 + len(get_proxy(name).extra_values) for name in available_proxies())  # lswag.lambda, ...
    with pytest.warns(UserWarning, match=f"3 of {values} zero-cost values could not be computed"):
        trained, plain = fit_twice(Uint8Model, zc)
    assert same_weights(trained, plain)
    failed = zc.report.failed()  # MeCo: an MLP has no channel layout (the status says so)
    assert set(failed) == {"jacov", "synflow", "meco"}
    assert "fix: synflow runs the model in float64" in failed["synflow"]


def test_a_forward_that_raises_never_stops_training_under_warn_and_does_under_raise():
    zc = ZeroCostProxyCallback(proxies=["lswag", "naswot", "params"], batch_size=16)
    with pytest.warns(UserWarning, match=r"4 of 5 zero-cost values"):
        trained, plain = fit_twice(InferenceOnlyForward, zc)
    assert same_weights(trained, plain)
    assert zc.report.ok("params")
    assert zc.report.status["naswot"].startswith(
        "error: batch pass failed: ValueError: forward expects a dict {'image': ...} (fix: the model's own code raised "
        "this: make its forward run on the probe batch"
    )
    strict = ZeroCostProxyCallback(proxies=["lswag", "params"], batch_size=16, on_error="raise")
    with pytest.raises(
        RuntimeError,
        match=r"3 of 4 zero-cost values could not be computed; set on_error='warn' to "
        r"train anyway",
    ) as raised:
        fit(InferenceOnlyForward, [strict])
    assert "lswag.lambda: gradient statistics pass failed: ValueError: forward expects a dict" in str(raised.value)


def test_on_error_is_validated_in_setup():
    with pytest.raises(ValueError, match="on_error must be 'warn' or 'raise', got 'ignore'"):
        fit(MNISTModel, [ZeroCostProxyCallback(on_error="ignore")])
