"""``CandidateClassifier``: the LightningModule that trains one candidate network (an image classifier).

The network is either given (``net=``) or built from a search space and an encoded architecture
(``space="autoformer_mini", arch="..."``), in which case the module can be re-created from its hyper-parameters
(``CandidateClassifier.load_from_checkpoint(path)``). ``forward(x)`` returns the network's logits, so the
zero-cost callback scores the module directly.

Logged (torchmetrics): ``train/loss``, ``train/acc`` (per epoch; the loss per step too), ``val/loss``, ``val/acc``,
``val/acc_best``, ``test/loss``, ``test/acc``. :attr:`CandidateClassifier.final_metrics` keeps the last values as
floats at the end of fit and of test (``trainer.test`` resets the trainer's ``callback_metrics``; this does not).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import lightning.pytorch as pl
import torch
import torch.nn.functional as F
from torch import nn
from torchmetrics import MaxMetric, MeanMetric
from torchmetrics.classification import MulticlassAccuracy

OPTIMIZERS = ("adamw", "sgd")
SCHEDULERS = ("cosine", "none")


def build_candidate(
    space: str,
    arch: str | Mapping[str, Any],
    *,
    num_classes: int,
    in_chans: int,
    img_size: int,
    space_options: Mapping[str, Any] | None = None,
) -> nn.Module:
    """The network of architecture ``arch`` (an encoded string or a dict) in search space ``space``."""
    from lswag_lightning.spaces import get_space

    space_obj = get_space(space)
    spec = space_obj.decode(arch)
    return space_obj.build(
        spec, num_classes=num_classes, in_chans=in_chans, img_size=img_size, **dict(space_options or {})
    )


class CandidateClassifier(pl.LightningModule):
    """Train an image classifier with cross-entropy, AdamW or SGD, and a per-step cosine schedule.

    Args:
        net: the network (logits out). When None, it is built from ``space`` + ``arch``.
        space, arch: search-space name and encoded architecture (recorded in the hyper-parameters either way).
        num_classes, in_chans, img_size: passed to ``space.build``; ``num_classes`` also sizes the metrics.
        space_options: extra build options of the space (e.g. channel width).
        optimizer: ``"adamw"`` or ``"sgd"``. ``lr``, ``weight_decay``; ``betas`` (AdamW); ``momentum``,
            ``nesterov`` (SGD).
        decay_norm_and_bias: apply weight decay to 1-d parameters (norm weights, biases) too; default no.
        scheduler: ``"cosine"`` (linear warm-up over ``warmup_fraction`` of the steps, then cosine down to
            ``min_lr_ratio * lr``, stepped every optimiser step) or ``"none"``.
        label_smoothing: of the training cross-entropy.
    """

    def __init__(
        self,
        net: nn.Module | None = None,
        *,
        space: str | None = None,
        arch: str | None = None,
        num_classes: int = 10,
        in_chans: int = 3,
        img_size: int = 32,
        space_options: Mapping[str, Any] | None = None,
        optimizer: str = "adamw",
        lr: float = 1e-3,
        weight_decay: float = 0.05,
        betas: Sequence[float] = (0.9, 0.999),
        momentum: float = 0.9,
        nesterov: bool = True,
        decay_norm_and_bias: bool = False,
        scheduler: str = "cosine",
        warmup_fraction: float = 0.0,
        min_lr_ratio: float = 0.0,
        label_smoothing: float = 0.0,
    ) -> None:
        super().__init__()
        if optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer must be one of {OPTIMIZERS}, got {optimizer!r}")
        if scheduler not in SCHEDULERS:
            raise ValueError(f"scheduler must be one of {SCHEDULERS}, got {scheduler!r}")
        if not lr > 0:
            raise ValueError(f"lr must be > 0, got {lr!r}")
        if not 0.0 <= warmup_fraction < 1.0:
            raise ValueError(f"warmup_fraction must be in [0, 1), got {warmup_fraction!r}")
        if num_classes < 2:
            raise ValueError(f"num_classes must be >= 2, got {num_classes!r}")
        self.save_hyperparameters(ignore=["net"])
        if net is None:
            if space is None or arch is None:
                raise ValueError("CandidateClassifier needs either net= or both space= and arch=")
            net = build_candidate(
                space, arch, num_classes=num_classes, in_chans=in_chans, img_size=img_size, space_options=space_options
            )
        self.net = net
        self.train_acc = MulticlassAccuracy(num_classes=num_classes, average="micro")
        self.val_acc = MulticlassAccuracy(num_classes=num_classes, average="micro")
        self.test_acc = MulticlassAccuracy(num_classes=num_classes, average="micro")
        self.train_loss = MeanMetric()
        self.val_loss = MeanMetric()
        self.test_loss = MeanMetric()
        self.val_acc_best = MaxMetric()
        #: Last epoch-level metrics as floats (``train/acc``, ``val/acc``, ``val/acc_best``, ``test/acc``, ...).
        self.final_metrics: dict[str, float] = {}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    @property
    def num_parameters(self) -> int:
        """Trainable parameters of the network."""
        return sum(p.numel() for p in self.net.parameters() if p.requires_grad)

    # ------------------------------------------------------------------ steps
    def _shared_step(self, batch: Any) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        x, y = batch[0], batch[1]
        logits = self(x)
        return logits, y, F.cross_entropy(logits, y)

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        x, y = batch[0], batch[1]
        logits = self(x)
        loss = F.cross_entropy(logits, y, label_smoothing=self.hparams.label_smoothing)
        self.train_loss(loss.detach(), weight=len(y))
        self.train_acc(logits.detach(), y)
        self.log("train/loss_step", loss.detach(), on_step=True, on_epoch=False, prog_bar=True)
        self.log("train/loss", self.train_loss, on_step=False, on_epoch=True)
        self.log("train/acc", self.train_acc, on_step=False, on_epoch=True, prog_bar=True)
        return loss

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        logits, y, loss = self._shared_step(batch)
        self.val_loss(loss, weight=len(y))
        self.val_acc(logits, y)
        self.log("val/loss", self.val_loss, on_step=False, on_epoch=True)
        self.log("val/acc", self.val_acc, on_step=False, on_epoch=True, prog_bar=True)

    def test_step(self, batch: Any, batch_idx: int) -> None:
        logits, y, loss = self._shared_step(batch)
        self.test_loss(loss, weight=len(y))
        self.test_acc(logits, y)
        self.log("test/loss", self.test_loss, on_step=False, on_epoch=True)
        self.log("test/acc", self.test_acc, on_step=False, on_epoch=True)

    # ------------------------------------------------------------------ epoch ends: keep the final values
    def on_train_epoch_end(self) -> None:
        self.final_metrics["train/loss"] = float(self.train_loss.compute())
        self.final_metrics["train/acc"] = float(self.train_acc.compute())
        self.final_metrics["epochs"] = float(self.current_epoch + 1)

    def on_validation_epoch_end(self) -> None:
        if self.trainer.sanity_checking:
            return
        acc = self.val_acc.compute()
        self.val_acc_best(acc)
        # val_acc.compute() is already synchronised across processes, so every rank logs the same value
        self.log("val/acc_best", self.val_acc_best.compute(), prog_bar=False, sync_dist=True)
        self.final_metrics["val/loss"] = float(self.val_loss.compute())
        self.final_metrics["val/acc"] = float(acc)
        self.final_metrics["val/acc_best"] = float(self.val_acc_best.compute())

    def on_test_epoch_end(self) -> None:
        self.final_metrics["test/loss"] = float(self.test_loss.compute())
        self.final_metrics["test/acc"] = float(self.test_acc.compute())

    # ------------------------------------------------------------------ optimisation
    def _param_groups(self) -> list[dict[str, Any]]:
        wd = self.hparams.weight_decay
        if self.hparams.decay_norm_and_bias or wd == 0:
            return [{"params": [p for p in self.parameters() if p.requires_grad], "weight_decay": wd}]
        decay, no_decay = [], []
        for p in self.parameters():
            if p.requires_grad:
                (no_decay if p.ndim <= 1 else decay).append(p)
        return [{"params": decay, "weight_decay": wd}, {"params": no_decay, "weight_decay": 0.0}]

    def configure_optimizers(self) -> Any:
        hp = self.hparams
        groups = self._param_groups()
        if hp.optimizer == "adamw":
            optimizer = torch.optim.AdamW(groups, lr=hp.lr, betas=tuple(hp.betas))
        else:
            optimizer = torch.optim.SGD(groups, lr=hp.lr, momentum=hp.momentum, nesterov=hp.nesterov)
        if hp.scheduler == "none":
            return optimizer
        total = max(1, int(self.trainer.estimated_stepping_batches))
        warmup = int(round(hp.warmup_fraction * total))
        floor = hp.min_lr_ratio

        def factor(step: int) -> float:
            if step < warmup:
                return (step + 1) / (warmup + 1)
            progress = min(1.0, (step - warmup) / max(1, total - warmup))
            return floor + (1.0 - floor) * 0.5 * (1.0 + math.cos(math.pi * progress))

        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step", "frequency": 1}}
