"""AZ-NAS and VKDNW on models nobody wrote for them: compiled, HuggingFace-style, LSTM/GRU, a tied-embedding language
model, a plain MLP, channels_last, segmentation, gradient checkpointing, multi-label and regression outputs.

VKDNW is checked against a hand computation (one sample at a time through the Kaiming re-initialised eval-mode model,
one ``torch.autograd.grad`` per output); AZ-NAS's blocks against the rule of ``blocks.py`` and, where the rule finds
them, against the same modules passed as ``block_points``. Twins (compiled, channels_last, checkpointed) give the
plain model's values.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.checkpoint import checkpoint

from lswag_lightning import score_network
from lswag_lightning.proxies.author_passes import kaiming_state
from lswag_lightning.proxies.blocks import block_plan
from lswag_lightning.proxies.vkdnw import decile_entropy, multinomial_cholesky, smoothed_probabilities

AZ = ["az_expressivity", "az_progressivity", "az_trainability"]
BOTH = [*AZ, "vkdnw"]


def vkdnw_by_hand(model: nn.Module, x: torch.Tensor, read=lambda z: z, factor: str = "softmax", seed: int = 0):
    """VKDNW from its definition: the Kaiming state written into a copy, eval mode, BatchNorm statistics 0/1, the
    Gaussian batch of ``seed``, each sample alone, one backward per output."""
    ref = copy.deepcopy(model)
    params = dict(ref.named_parameters())
    with torch.no_grad():
        for name, value in kaiming_state(ref, seed).items():
            params[name].copy_(value)
        for name, buf in ref.named_buffers():
            if name.endswith("running_mean"):
                buf.zero_()
            elif name.endswith("running_var"):
                buf.fill_(1)
    ref.eval()
    gauss = torch.randn(x.shape, generator=torch.Generator().manual_seed(seed)) if x.is_floating_point() else x
    sampled = [p for p in ref.parameters() if p.is_floating_point()][:128]
    rows = []
    for n in range(x.shape[0]):
        z = read(ref(gauss[n : n + 1]))[0]
        jac = []
        for k in range(z.shape[0]):
            grads = torch.autograd.grad(z[k], sampled, retain_graph=True, allow_unused=True)
            jac.append(torch.stack([torch.zeros(()) if g is None else g.reshape(-1)[0] for g in grads]))
        jac = torch.stack(jac).double()
        z = z.detach().double()[None]
        if factor == "softmax":
            m = multinomial_cholesky(smoothed_probabilities(z))[0]
        elif factor == "sigmoid":
            p = 0.95 * torch.sigmoid(z[0]) + 0.025
            m = torch.diag(torch.sqrt(p * (1 - p)))
        else:
            m = torch.eye(z.shape[1], dtype=torch.float64)
        rows.append(m @ jac)
    fisher = sum(r.t() @ r for r in rows) / x.shape[0]
    return decile_entropy(torch.linalg.eigvalsh(fisher))


# --------------------------------------------------------------------------------------------------------- models
class SmallCNN(nn.Module):
    """conv-BN-ReLU, a reflect-padded 'same' conv with GroupNorm, a head; optionally checkpointed."""

    def __init__(self, use_reentrant: bool | None = None, classes: int = 5):
        super().__init__()
        torch.manual_seed(0)
        self.stem = nn.Conv2d(3, 8, 3, padding=1, stride=2)
        self.bn = nn.BatchNorm2d(8)
        self.conv = nn.Conv2d(8, 8, 3, padding="same", padding_mode="reflect")
        self.gn = nn.GroupNorm(2, 8)
        self.head = nn.Linear(8, classes)
        self.use_reentrant = use_reentrant

    def body(self, x):
        return F.relu(self.gn(self.conv(F.relu(self.bn(self.stem(x))))))

    def forward(self, x):
        if self.use_reentrant is None:
            h = self.body(x)
        else:
            h = checkpoint(self.body, x, use_reentrant=self.use_reentrant)
        return self.head(h.mean(dim=(2, 3)))


class RNNClassifier(nn.Module):
    def __init__(self, rnn=nn.LSTM):
        super().__init__()
        torch.manual_seed(0)
        self.embed = nn.Embedding(20, 8)
        self.rnn = rnn(8, 12, batch_first=True)
        self.head = nn.Linear(12, 4)

    def forward(self, tokens):
        return self.head(self.rnn(self.embed(tokens))[0][:, -1])


class TiedLM(nn.Module):
    """Token and position embeddings, a pre-norm transformer, the output projection tied to the token embedding."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.tokens = nn.Embedding(12, 16)
        self.positions = nn.Embedding(8, 16)
        layer = nn.TransformerEncoderLayer(16, 2, 32, dropout=0.0, batch_first=True, norm_first=True)
        self.encoder = nn.TransformerEncoder(layer, num_layers=2, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(16)
        self.lm_head = nn.Linear(16, 12, bias=False)
        self.lm_head.weight = self.tokens.weight

    def forward(self, ids):
        h = self.tokens(ids) + self.positions(torch.arange(ids.shape[1], device=ids.device))
        return self.lm_head(self.norm(self.encoder(h)))  # (B, T, V)


@dataclass
class ImageClassifierOutput:
    logits: torch.Tensor


class HFLayer(nn.Module):
    def __init__(self, dim):
        super().__init__()
        self.layernorm_before, self.layernorm_after = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.attention = nn.MultiheadAttention(dim, 2, batch_first=True)
        self.intermediate, self.output = nn.Linear(dim, 2 * dim), nn.Linear(2 * dim, dim)

    def forward(self, hidden):
        h = self.layernorm_before(hidden)
        hidden = hidden + self.attention(h, h, h, need_weights=False)[0]
        return (hidden + self.output(F.gelu(self.intermediate(self.layernorm_after(hidden)))),)


class HFViTLike(nn.Module):
    """A HuggingFace-style image classifier: ``vit.embeddings``, ``vit.encoder.layer`` (a ModuleList of layers
    returning tuples), ``vit.layernorm``, a ``classifier``; ``forward(pixel_values)`` returns an output object."""

    def __init__(self, dim=16):
        super().__init__()
        torch.manual_seed(0)
        self.vit = nn.Module()
        self.vit.embeddings = nn.Conv2d(3, dim, 4, stride=4)
        self.vit.encoder = nn.Module()
        self.vit.encoder.layer = nn.ModuleList([HFLayer(dim) for _ in range(3)])
        self.vit.layernorm = nn.LayerNorm(dim)
        self.classifier = nn.Linear(dim, 5)

    def forward(self, pixel_values):
        h = self.vit.embeddings(pixel_values).flatten(2).transpose(1, 2)
        for layer in self.vit.encoder.layer:
            h = layer(h)[0]
        return ImageClassifierOutput(logits=self.classifier(self.vit.layernorm(h).mean(1)))


class MLP(nn.Module):
    def __init__(self, out=5):
        super().__init__()
        torch.manual_seed(0)
        self.fc1, self.fc2, self.fc3 = nn.Linear(12, 16), nn.Linear(16, 16), nn.Linear(16, out)

    def forward(self, x):
        return self.fc3(F.relu(self.fc2(F.relu(self.fc1(x.flatten(1))))))


class Segmenter(nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.encoder = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU())
        self.decoder = nn.Sequential(nn.Conv2d(8, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU())
        self.classifier = nn.Conv2d(8, 4, 1)

    def forward(self, x):
        return self.classifier(self.decoder(self.encoder(x)))  # (B, classes, H, W)


class Stages(nn.Module):
    """A network in stages: a stem, then two Sequentials of residual blocks (a ResNet's layout)."""

    class Block(nn.Module):
        def __init__(self, c):
            super().__init__()
            self.conv, self.bn = nn.Conv2d(c, c, 3, padding=1), nn.BatchNorm2d(c)

        def forward(self, x):
            return F.relu(x + self.bn(self.conv(x)))

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.stem = nn.Conv2d(3, 8, 3, padding=1)
        self.layer1 = nn.Sequential(self.Block(8), self.Block(8))
        self.layer2 = nn.Sequential(self.Block(8), self.Block(8))
        self.fc = nn.Linear(8, 5)

    def forward(self, x):
        return self.fc(self.layer2(self.layer1(self.stem(x))).mean(dim=(2, 3)))


def images(n=8, size=8):
    g = torch.Generator().manual_seed(1)
    return torch.randn(n, 3, size, size, generator=g), torch.randint(0, 4, (n,), generator=g)


def tokens(n=8, length=6, vocab=20):
    return torch.randint(0, vocab, (n, length), generator=torch.Generator().manual_seed(2))


def assert_ok(report, names):
    for name in names:
        assert report.status[name] == "ok", (name, report.status[name])


# ----------------------------------------------------------------------------------------------------------- VKDNW
@pytest.mark.parametrize("rnn", [nn.LSTM, nn.GRU])
def test_vkdnw_on_recurrent_classifiers_equals_the_definition(rnn):
    model, x = RNNClassifier(rnn), tokens()
    report = score_network(model, x, None, proxies=BOTH)
    assert_ok(report, BOTH)
    assert report.values["vkdnw"] == pytest.approx(vkdnw_by_hand(model, x), rel=1e-5)
    assert report.details["vkdnw"]["methods"] == {"hooks": 3, "jvp": 4}  # embedding + head by hooks, RNN forward mode
    assert report.details["az_expressivity"]["blocks"] == ["embed", "rnn"]  # the head is left out


def test_vkdnw_on_a_tied_language_model_measures_the_tied_tensor_once():
    model, ids = TiedLM(), tokens(vocab=12, length=8)
    report = score_network(model, ids, ids, proxies=["vkdnw", "vkdnw_layers"])
    assert_ok(report, ["vkdnw", "vkdnw_layers"])
    assert report.values["vkdnw_layers"] == len(list(model.parameters()))  # the tied weight counted once
    assert report.details["vkdnw"]["sampled_tensors"] == report.values["vkdnw_layers"]
    # (B, T, V) logits with (B, T) targets: classes last, read as the logits averaged over the 8 positions
    assert report.details["vkdnw"]["reading"] == {"kind": "softmax", "class_dim": 2, "positions_averaged": 8}
    expected = vkdnw_by_hand(model, ids, read=lambda z: z.mean(dim=1))
    assert report.values["vkdnw"] == pytest.approx(expected, rel=1e-5)


def test_vkdnw_on_segmentation_reads_the_class_logits_averaged_over_positions():
    model, (x, _) = Segmenter(), images()
    masks = torch.randint(0, 4, (8, 8, 8))
    report = score_network(model, x, masks, proxies=["vkdnw"])
    assert_ok(report, ["vkdnw"])
    assert report.details["vkdnw"]["reading"] == {"kind": "softmax", "class_dim": 1, "positions_averaged": 64}
    assert report.values["vkdnw"] == pytest.approx(vkdnw_by_hand(model, x, read=lambda z: z.mean(dim=(2, 3))), rel=1e-5)


def test_vkdnw_multilabel_uses_the_bernoulli_fisher_and_regression_is_a_status_with_the_fix():
    model, (x, _) = MLP(), images(size=2)
    multi_hot = (torch.rand(8, 5, generator=torch.Generator().manual_seed(3)) > 0.5).float()
    report = score_network(model, x, multi_hot, proxies=["vkdnw"])
    assert report.details["vkdnw"]["reading"]["kind"] == "sigmoid"
    assert report.values["vkdnw"] == pytest.approx(vkdnw_by_hand(model, x, factor="sigmoid"), rel=1e-5)

    regression, target = MLP(out=1), torch.randn(8, 1)
    report = score_network(regression, x, target, proxies=["vkdnw", "vkdnw_single", "vkdnw_layers"])
    assert report.status["vkdnw"].startswith("degenerate: VKDNW's softmax over 1 output is constant")
    assert "vkdnw_output='gaussian'" in report.status["vkdnw"] and math.isnan(report.values["vkdnw"])
    assert report.status["vkdnw_single"].startswith("degenerate:") and report.status["vkdnw_layers"] == "ok"
    gaussian = score_network(regression, x, target, proxies=["vkdnw"], vkdnw_output="gaussian")
    assert gaussian.ok("vkdnw")
    assert gaussian.values["vkdnw"] == pytest.approx(vkdnw_by_hand(regression, x, factor="gaussian"), rel=1e-5)


def test_vkdnw_with_coupled_samples_takes_each_sample_alone():
    """BatchNorm without running statistics normalises over the batch even in eval mode: samples are coupled, so
    each sample is scored as a batch of one (what the definition, sample by sample, computes)."""
    model, (x, _) = SmallCNN(), images()
    model.bn = nn.BatchNorm2d(8, track_running_stats=False)
    report = score_network(model, x, None, proxies=["vkdnw"])
    assert report.details["vkdnw"]["methods"] == {"loop": 10}
    assert report.values["vkdnw"] == pytest.approx(vkdnw_by_hand(model, x), rel=1e-5)


class BackwardOnlyReLU(torch.autograd.Function):
    """A custom activation as people write them: forward and backward, no forward-mode (jvp) rule."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x.clamp_min(0)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return grad * (x > 0)


class CustomActivationMLP(MLP):
    def forward(self, x):
        return self.fc3(BackwardOnlyReLU.apply(self.fc2(F.relu(self.fc1(x.flatten(1))))))


def test_vkdnw_with_many_classes_takes_forward_mode_and_keeps_the_value():
    """With more outputs than FORWARD_MODE_FACTOR per hook tensor (here 59 needed outputs, 6 tensors), one
    forward-mode product per tensor replaces one backward pass per output: the same value as the definition; where a
    tensor's product fails (its path crosses a custom autograd.Function without a jvp rule) it keeps the hook path."""
    model, (x, _) = MLP(out=60), images(size=2)
    report = score_network(model, x, None, proxies=["vkdnw"])
    assert report.details["vkdnw"]["methods"] == {"jvp": 6}
    assert report.values["vkdnw"] == pytest.approx(vkdnw_by_hand(model, x), rel=1e-5)

    custom = CustomActivationMLP(out=60)
    report = score_network(custom, x, None, proxies=["vkdnw"])
    assert report.status["vkdnw"] == "ok"
    assert report.details["vkdnw"]["methods"] == {"hooks": 4, "jvp": 2}  # fc1, fc2 behind the custom function
    assert report.values["vkdnw"] == pytest.approx(vkdnw_by_hand(custom, x), rel=1e-5)


# ------------------------------------------------------------------------------------------------------- twins
def test_compiled_and_channels_last_twins_give_the_plain_values():
    x, y = images()
    plain = score_network(SmallCNN(), x, y, proxies=BOTH)
    assert_ok(plain, BOTH)
    assert plain.values["vkdnw"] == pytest.approx(vkdnw_by_hand(SmallCNN(), x), rel=1e-5)
    compiled = score_network(torch.compile(SmallCNN(), backend="eager"), x, y, proxies=BOTH)
    assert compiled.values == plain.values  # the eager module inside is scored
    channels_last = SmallCNN().to(memory_format=torch.channels_last)
    last = score_network(channels_last, x.to(memory_format=torch.channels_last), y, proxies=BOTH)
    for name in BOTH:
        assert last.values[name] == pytest.approx(plain.values[name], rel=1e-4), name


@pytest.mark.parametrize("use_reentrant", [False, True])
def test_checkpointed_twins_give_the_plain_values(use_reentrant):
    """The engine scores the model with its checkpointed calls run directly (proxies/working_model.py), so both
    checkpointing modes give the un-checkpointed values, AZ-NAS and VKDNW included."""
    x, y = images()
    plain = score_network(SmallCNN(), x, y, proxies=BOTH)
    checkpointed = score_network(SmallCNN(use_reentrant=use_reentrant), x, y, proxies=BOTH)
    assert_ok(checkpointed, BOTH)
    for name in BOTH:
        assert checkpointed.values[name] == pytest.approx(plain.values[name], rel=1e-6, abs=1e-9), name


# --------------------------------------------------------------------------------------------------------- AZ-NAS
@pytest.mark.parametrize(
    ("model", "x", "kind", "expected"),
    [
        (MLP(), images(size=2)[0], "chain", ["fc1", "fc2", "fc3"]),
        (Stages(), images()[0], "blocks", ["layer1.0", "layer1.1", "layer2.0", "layer2.1"]),
        (HFViTLike(), images(size=16)[0], "blocks", [f"vit.encoder.layer.{i}" for i in range(3)]),
        (TiedLM(), tokens(vocab=12, length=8), "blocks", ["encoder.layers.0", "encoder.layers.1"]),
    ],
)
def test_az_blocks_follow_the_rule_and_equal_the_same_modules_as_block_points(model, x, kind, expected):
    found_kind, blocks = block_plan(model)
    assert (found_kind, [name for name, _ in blocks]) == (kind, expected)
    report = score_network(model, x, None, proxies=AZ)
    assert_ok(report, AZ)
    names = report.details["az_expressivity"]["blocks"]
    if kind == "chain":  # the head (fc3 gives the logits) is left out; the same modules as block_points agree
        assert names == ["fc1", "fc2"]
        assert score_network(model, x, None, proxies=AZ, block_points=names).values == report.values
    elif isinstance(model, TiedLM):  # pre-norm layers with a norm2: the residual stream after attention too
        assert names == ["encoder.layers.0:input"] + [f"{b}{p}" for b in expected for p in (":attn", "")]
    else:  # F_0 is the first block's input, then each block
        assert names == [f"{expected[0]}:input", *expected]


def test_az_on_recurrent_hf_and_language_models_uses_the_transformer_protocol_where_it_applies():
    hf = score_network(HFViTLike(), images(size=16)[0], None, proxies=AZ)
    lm = score_network(TiedLM(), tokens(vocab=12, length=8), None, proxies=AZ)
    rnn = score_network(RNNClassifier(), tokens(), None, proxies=AZ)
    assert hf.details["az_expressivity"]["protocol"] == lm.details["az_expressivity"]["protocol"] == "vit"
    assert rnn.details["az_expressivity"]["protocol"] == "cnn"  # neither LayerNorm nor BatchNorm
    assert lm.details["az_expressivity"]["input"].startswith("probe")  # token ids cannot be Gaussian


def test_az_chain_skips_features_that_do_not_depend_on_the_previous_one():
    class PositionFirst(nn.Module):
        def __init__(self):
            super().__init__()
            torch.manual_seed(0)
            self.pos = nn.Parameter(torch.randn(1, 6))
            self.scale = nn.Linear(6, 6)  # applied to the position vector alone: (1, 6), not per sample
            self.fc1, self.fc2, self.head = nn.Linear(6, 6), nn.Linear(6, 6), nn.Linear(6, 3)

        def forward(self, x):
            return self.head(self.fc2(torch.tanh(self.fc1(x + self.scale(self.pos)))))

    report = score_network(PositionFirst(), torch.randn(8, 6), None, proxies=AZ)
    assert_ok(report, AZ)
    assert report.details["az_expressivity"]["blocks"] == ["fc1", "fc2"]


def test_one_channel_features_make_expressivity_degenerate_but_not_trainability():
    class Narrow(nn.Module):
        def __init__(self):
            super().__init__()
            torch.manual_seed(0)
            self.a, self.b, self.c, self.head = nn.Linear(4, 1), nn.Linear(1, 1), nn.Linear(1, 1), nn.Linear(1, 2)

        def forward(self, x):
            return self.head(self.c(torch.tanh(self.b(torch.tanh(self.a(x))))))

    report = score_network(Narrow(), torch.randn(8, 4), None, proxies=AZ)
    for name in ("az_expressivity", "az_progressivity"):
        assert report.status[name].startswith("degenerate: every AZ-NAS block feature has one channel"), name
    assert report.ok("az_trainability")


def test_meco_with_more_channels_than_positions_everywhere_is_degenerate():
    model = nn.Sequential(
        nn.Conv2d(3, 16, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(16, 4)
    )
    report = score_network(model, torch.randn(4, 3, 4, 4), None, proxies=["meco"])  # 16 channels on 16 positions
    assert report.status["meco"].startswith("degenerate: every one of MeCo's 3 module outputs")
    assert "larger input resolution" in report.status["meco"] and math.isnan(report.values["meco"])
    wider = score_network(model, torch.randn(4, 3, 8, 8), None, proxies=["meco"])  # 64 positions: informative
    assert wider.ok("meco") and wider.details["meco"]["singular_by_construction"] == 1  # the pooled output


def test_draws_average_the_values_of_consecutive_seeds_and_invalid_counts_are_refused():
    x, y = images()
    single = [score_network(SmallCNN(), x, y, proxies=BOTH, seed=seed) for seed in (3, 4)]
    averaged = score_network(SmallCNN(), x, y, proxies=BOTH, seed=3, az_draws=2, vkdnw_draws=2)
    for name in BOTH:
        assert averaged.values[name] == (single[0].values[name] + single[1].values[name]) / 2, name
    assert averaged.details["vkdnw"]["draws"] == [single[0].values["vkdnw"], single[1].values["vkdnw"]]
    for option in ("az_draws", "vkdnw_draws"):
        with pytest.raises(ValueError, match=f"{option}=0: need an integer >= 1"):
            score_network(SmallCNN(), x, y, proxies=BOTH, **{option: 0})
