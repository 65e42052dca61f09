"""The model kinds of issue 22, written as practitioners write LightningModules (the way public templates do): each a
real ``LightningModule`` with its own synthetic data, tiny, so one fit of one or two steps takes well under a second.

Shared by the tests of the callback on every kind (``test_model_kinds.py``), the twin comparison under gradient
checkpointing, and the generator of ``docs/model-kinds.md`` (``model_kinds_table.py``). A kind is a
:class:`ModelKind`: how to build its module, the callback options a practitioner passes for it, and the trainer
options it needs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import lightning.pytorch as pl
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.checkpoint import checkpoint
from torch.utils.data import DataLoader, TensorDataset

IMAGE = 16  # image side (pixels)
CLASSES = 4
SAMPLES = 32  # dataset size
LOADER_BATCH = 8


def generator(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def images(seed: int = 7, side: int = IMAGE) -> torch.Tensor:
    return torch.randn(SAMPLES, 3, side, side, generator=generator(seed))


def class_labels(seed: int = 8) -> torch.Tensor:
    return torch.randint(0, CLASSES, (SAMPLES,), generator=generator(seed))


# ---------------------------------------------------------------------------------------------------- networks
class SmallCNN(nn.Module):
    """Conv-BN-ReLU, strided Conv-BN-ReLU, global pooling, a Linear head: (B, 3, H, W) -> (B, outputs)."""

    def __init__(self, outputs: int = CLASSES) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 8, 3, padding=1),
            nn.BatchNorm2d(8),
            nn.ReLU(),
            nn.Conv2d(8, 16, 3, stride=2, padding=1),
            nn.BatchNorm2d(16),
            nn.ReLU(),
        )
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.head = nn.Linear(16, outputs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.pool(self.features(x)).flatten(1))


class ResidualBlock(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(channels)
        self.relu = nn.ReLU()
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(channels)
        self.out = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(x + self.bn2(self.conv2(self.relu(self.bn1(self.conv1(x))))))


class CheckpointedResNet(nn.Module):
    """A stem, two residual blocks and a head; with ``use_reentrant`` True or False each block runs through
    ``torch.utils.checkpoint`` (its activations are recomputed in backward), in every mode."""

    def __init__(self, use_reentrant: bool | None = None) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8), nn.ReLU())
        self.blocks = nn.ModuleList([ResidualBlock(8), ResidualBlock(8)])
        self.head = nn.Linear(8, CLASSES)
        self.gradient_checkpointing = use_reentrant is not None
        self.use_reentrant = bool(use_reentrant)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        for block in self.blocks:
            if self.gradient_checkpointing:
                x = checkpoint(block, x, use_reentrant=self.use_reentrant)
            else:
                x = block(x)
        return self.head(x.mean(dim=(2, 3)))


@dataclass
class ImageClassifierOutput:
    """The shape of a HuggingFace ``ImageClassifierOutput``: the loss when labels are given, and ``.logits``."""

    loss: torch.Tensor | None = None
    logits: torch.Tensor | None = None


class HFStyleImageClassifier(nn.Module):
    """A HuggingFace-style model: ``forward(pixel_values, labels=None)`` returns an output object with ``.logits``
    (and ``.loss`` when labels are given)."""

    def __init__(self) -> None:
        super().__init__()
        self.embeddings = nn.Conv2d(3, 16, 4, stride=4)
        self.encoder = nn.Sequential(nn.Linear(16, 32), nn.GELU(), nn.Linear(32, 16))
        self.layernorm = nn.LayerNorm(16)
        self.classifier = nn.Linear(16, CLASSES)

    def forward(self, pixel_values: torch.Tensor, labels: torch.Tensor | None = None) -> ImageClassifierOutput:
        tokens = self.embeddings(pixel_values).flatten(2).transpose(1, 2)  # (B, T, 16)
        hidden = self.layernorm(tokens + self.encoder(tokens))
        logits = self.classifier(hidden.mean(dim=1))
        loss = None if labels is None else F.cross_entropy(logits, labels)
        return ImageClassifierOutput(loss=loss, logits=logits)


class RegressionMLP(nn.Module):
    def __init__(self, features: int = 8) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(features, 32), nn.ReLU(), nn.Linear(32, 32), nn.ReLU(), nn.Linear(32, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class TinySegmenter(nn.Module):
    """An encoder-decoder (a two-level U-Net): (B, 3, H, W) -> (B, classes, H, W) logits."""

    def __init__(self, classes: int = CLASSES) -> None:
        super().__init__()

        def conv(cin: int, cout: int) -> nn.Sequential:
            return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1), nn.BatchNorm2d(cout), nn.ReLU())

        self.down1 = conv(3, 8)
        self.down2 = conv(8, 16)
        self.up = nn.ConvTranspose2d(16, 8, 2, stride=2)
        self.decode = conv(16, 8)
        self.classifier = nn.Conv2d(8, classes, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skip = self.down1(x)
        deep = self.down2(F.max_pool2d(skip, 2))
        return self.classifier(self.decode(torch.cat([skip, self.up(deep)], dim=1)))


class RNNClassifier(nn.Module):
    """A recurrent sequence classifier: (B, T, 6) features -> LSTM/GRU(16 hidden) -> Linear head on the last step."""

    def __init__(self, cell: str = "lstm") -> None:
        super().__init__()
        rnn = nn.LSTM if cell == "lstm" else nn.GRU
        self.rnn = rnn(input_size=6, hidden_size=16, batch_first=True)
        self.head = nn.Linear(16, CLASSES)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out, _ = self.rnn(x)
        return self.head(out[:, -1])


class TinyLM(nn.Module):
    """A tiny language model with tied input/output embeddings: tokens (B, T) -> logits (B, T, vocab)."""

    def __init__(self, vocab: int = 32, width: int = 16) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab, width)
        self.mlp = nn.Sequential(nn.Linear(width, 4 * width), nn.GELU(), nn.Linear(4 * width, width))
        self.norm = nn.LayerNorm(width)
        self.lm_head = nn.Linear(width, vocab, bias=False)
        self.lm_head.weight = self.embed.weight  # tied

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        h = self.embed(tokens)
        return self.lm_head(self.norm(h + self.mlp(h)))


# ---------------------------------------------------------------------------------------------------- modules
class Classifier(pl.LightningModule):
    """The template LightningModule: ``forward`` is the network, ``training_step`` its loss, SGD."""

    def __init__(self, net: nn.Module | None = None, data: tuple[torch.Tensor, ...] | None = None) -> None:
        super().__init__()
        self.net = SmallCNN() if net is None else net
        self.data = (images(), class_labels()) if data is None else data
        self.loader_batch = LOADER_BATCH

    def forward(self, x: torch.Tensor) -> Any:
        return self.net(x)

    def loss(self, output: Any, y: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(output, y)

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        x, y = batch
        loss = self.loss(self(x), y)
        self.log("train_loss", loss)
        return loss

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=0.05, momentum=0.9)

    def train_dataloader(self) -> DataLoader:
        return DataLoader(TensorDataset(*self.data), batch_size=self.loader_batch, shuffle=True)


class CompiledClassifier(Classifier):
    """``self.net = torch.compile(net)``, as the Lightning docs show. The backend is ``"eager"`` here only to keep the
    test fast: the engine sees the same ``OptimizedModule`` wrapper whatever the backend (inductor adds a minute of
    code generation on a CPU)."""

    def __init__(self) -> None:
        super().__init__(net=torch.compile(SmallCNN(), backend="eager"))


def compiled_lightning_module() -> Any:
    """``trainer.fit(torch.compile(module))``: Lightning unwraps it with ``from_compiled`` (a compiled ``forward``
    on the module itself)."""
    return torch.compile(Classifier(), backend="eager")


class HFStyleModule(pl.LightningModule):
    """A HuggingFace-style model in a LightningModule: dict batches ``{"pixel_values", "labels"}``, the model's own
    loss from ``outputs.loss``."""

    def __init__(self) -> None:
        super().__init__()
        self.model = HFStyleImageClassifier()

    def forward(self, pixel_values: torch.Tensor, labels: torch.Tensor | None = None) -> ImageClassifierOutput:
        return self.model(pixel_values=pixel_values, labels=labels)

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        return self(**batch).loss

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.AdamW(self.parameters(), lr=1e-3)

    def train_dataloader(self) -> DataLoader:
        xs, ys = images(), class_labels()
        rows = [{"pixel_values": x, "labels": y} for x, y in zip(xs, ys)]
        return DataLoader(rows, batch_size=LOADER_BATCH, shuffle=True)


class DistilledDeiT(Classifier):
    """timm's distilled DeiT (a class and a distillation token, two heads; averaged outside distilled training),
    in a tiny configuration."""

    def __init__(self) -> None:
        import timm

        net = timm.create_model(
            "deit_tiny_distilled_patch16_224",
            pretrained=False,
            img_size=IMAGE,
            patch_size=4,
            embed_dim=32,
            depth=2,
            num_heads=2,
            num_classes=CLASSES,
        )
        super().__init__(net=net)


class Regression(Classifier):
    """One output, MSE against float targets of shape (B, 1)."""

    def __init__(self) -> None:
        x = torch.randn(SAMPLES, 8, generator=generator(7))
        super().__init__(net=RegressionMLP(), data=(x, x[:, :1] * 2 - x[:, 1:2]))

    def loss(self, output: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return F.mse_loss(output, y)


class MultiLabel(Classifier):
    """Five independent labels per image: BCE with logits against multi-hot float targets (B, 5)."""

    def __init__(self) -> None:
        hot = (torch.rand(SAMPLES, 5, generator=generator(8)) > 0.6).float()
        super().__init__(net=SmallCNN(outputs=5), data=(images(), hot))

    def loss(self, output: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return F.binary_cross_entropy_with_logits(output, y)


class Segmentation(Classifier):
    """Per-pixel classes: (B, C, H, W) logits against (B, H, W) integer masks, pixel-wise cross-entropy."""

    def __init__(self) -> None:
        masks = torch.randint(0, CLASSES, (SAMPLES, IMAGE, IMAGE), generator=generator(8))
        super().__init__(net=TinySegmenter(), data=(images(), masks))


class SequenceClassifier(Classifier):
    def __init__(self, cell: str) -> None:
        x = torch.randn(SAMPLES, 12, 6, generator=generator(7))
        super().__init__(net=RNNClassifier(cell), data=(x, class_labels()))


class LSTMClassifier(SequenceClassifier):
    def __init__(self) -> None:
        super().__init__("lstm")


class GRUClassifier(SequenceClassifier):
    def __init__(self) -> None:
        super().__init__("gru")


class FrozenBackbone(Classifier):
    """A frozen feature extractor and a trained head (transfer learning): only the head's parameters train."""

    def __init__(self) -> None:
        super().__init__()
        self.net.features.requires_grad_(False)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.net.head.parameters(), lr=0.05)


class TiedLM(Classifier):
    """Next-token prediction with tied embeddings; the loss flattens (B, T, V) logits against (B, T) tokens."""

    def __init__(self) -> None:
        stream = torch.randint(0, 32, (SAMPLES * 12 + 1,), generator=generator(7))
        super().__init__(net=TinyLM(), data=(stream[:-1].reshape(SAMPLES, 12), stream[1:].reshape(SAMPLES, 12)))

    def loss(self, output: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(output.flatten(0, 1), y.flatten())


class Checkpointed(Classifier):
    """Gradient checkpointing through ``torch.utils.checkpoint`` in each residual block."""

    def __init__(self, use_reentrant: bool | None = False) -> None:
        super().__init__(net=CheckpointedResNet(use_reentrant))


class CheckpointedReentrant(Checkpointed):
    def __init__(self) -> None:
        super().__init__(use_reentrant=True)


class NotCheckpointed(Checkpointed):
    """The checkpointed models' twin: the same weights (same seed), no checkpointing."""

    def __init__(self) -> None:
        super().__init__(use_reentrant=None)


class ManualOptimisation(Classifier):
    def __init__(self) -> None:
        super().__init__()
        self.automatic_optimization = False

    def training_step(self, batch: Any, batch_idx: int) -> None:
        optimiser = self.optimizers()
        x, y = batch
        loss = self.loss(self(x), y)
        optimiser.zero_grad()
        self.manual_backward(loss)
        optimiser.step()


class WeightedSamples(Classifier):
    """Batches ``[x, y, w]``: a per-sample weight in the loss."""

    def __init__(self) -> None:
        weights = torch.rand(SAMPLES, generator=generator(9))
        super().__init__(data=(images(), class_labels(), weights))

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        x, y, w = batch
        return (F.cross_entropy(self(x), y, reduction="none") * w).mean()


class ChannelsLast(Classifier):
    """The network in ``channels_last`` memory format, its inputs converted in ``training_step``."""

    def __init__(self) -> None:
        super().__init__(net=SmallCNN().to(memory_format=torch.channels_last))

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        x, y = batch
        return self.loss(self(x.contiguous(memory_format=torch.channels_last)), y)


class BatchOfOne(Classifier):
    """A loader of batch size 1: the probe is drawn from as many loader batches as it needs."""

    def __init__(self) -> None:
        super().__init__()
        self.loader_batch = 1


# ---------------------------------------------------------------------------------------------------- the kinds
def _flat_cross_entropy(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    return F.cross_entropy(logits.flatten(0, 1), targets.flatten())


@dataclass(frozen=True)
class ModelKind:
    """One kind of model: its module, the callback options a practitioner passes for it (a loss for targets that are
    not class indices), and the trainer options it needs."""

    name: str
    module: Callable[[], pl.LightningModule]
    description: str
    callback: dict[str, Any] = field(default_factory=dict)
    trainer: dict[str, Any] = field(default_factory=dict)


KINDS: dict[str, ModelKind] = {
    kind.name: kind
    for kind in (
        ModelKind("cnn", Classifier, "a small CNN classifier (Conv-BN-ReLU, Linear head): the reference"),
        ModelKind("compiled", CompiledClassifier, "`self.net = torch.compile(net)`"),
        ModelKind("compiled_module", compiled_lightning_module, "`trainer.fit(torch.compile(module))`"),
        ModelKind("hf_style", HFStyleModule, 'dict batches `{"pixel_values", "labels"}`, an output with `.logits`'),
        ModelKind("deit_distilled", DistilledDeiT, "timm's distilled DeiT, tiny configuration"),
        ModelKind("regression", Regression, "one output, MSE (`loss_fn=F.mse_loss`)", {"loss_fn": F.mse_loss}),
        ModelKind("regression_no_loss", Regression, "one output, float targets, no `loss_fn`"),
        ModelKind(
            "multilabel",
            MultiLabel,
            "multi-hot targets, BCE (`loss_fn=F.binary_cross_entropy_with_logits`)",
            {"loss_fn": F.binary_cross_entropy_with_logits},
        ),
        ModelKind("segmentation", Segmentation, "(B, C, H, W) logits, (B, H, W) masks"),
        ModelKind("lstm", LSTMClassifier, "an LSTM sequence classifier"),
        ModelKind("gru", GRUClassifier, "a GRU sequence classifier"),
        ModelKind("frozen_backbone", FrozenBackbone, "a frozen feature extractor, a trained head"),
        ModelKind(
            "tied_lm",
            TiedLM,
            "a tiny LM, tied embeddings (`loss_fn` flattens tokens)",
            {"loss_fn": _flat_cross_entropy},
        ),
        ModelKind("tied_lm_no_loss", TiedLM, "the tiny LM without `loss_fn`"),
        ModelKind("checkpointing", Checkpointed, "gradient checkpointing, `use_reentrant=False`"),
        ModelKind("checkpointing_reentrant", CheckpointedReentrant, "gradient checkpointing, `use_reentrant=True`"),
        ModelKind("bf16", Classifier, '`precision="bf16-mixed"`', trainer={"precision": "bf16-mixed"}),
        ModelKind("manual_optimisation", ManualOptimisation, "`automatic_optimization = False`"),
        ModelKind("weighted_batches", WeightedSamples, "3-item batches `[x, y, w]`"),
        ModelKind("channels_last", ChannelsLast, "`channels_last` memory format"),
        ModelKind("batch_of_one", BatchOfOne, "a train loader of batch size 1"),
    )
}
