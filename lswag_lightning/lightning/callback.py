"""``ZeroCostProxyCallback``: score zero-cost proxies on the freshly initialised model at fit start.

A thin adapter from Lightning to :func:`lswag_lightning.proxies.score_network`. It

1. validates its arguments once in :meth:`setup` (unknown proxy names fail before any work);
2. in ``on_train_start`` (after the train dataloader exists, before the first optimiser step) draws one probe batch
   of ``batch_size`` real training samples from the trainer's train dataloader and scores the unwrapped
   ``LightningModule`` (or ``model_fn(module)``);
3. logs the values through every attached logger (``trainer.loggers``) as ``<log_prefix><name>`` (``zc/lswag``
   ...), the proxy settings as hyper-parameters (the W&B run config), and, for a ``WandbLogger``, the run summary
   (values, status strings, seconds); plus one rank-zero log line;
4. keeps the report in its ``state_dict``, so a run resumed from a checkpoint reports the original scores and never
   scores trained weights;
5. exposes the last :class:`~lswag_lightning.proxies.ProxyReport` as :attr:`ZeroCostProxyCallback.report`.

**The probe batch.** The callback iterates a *copy* of the train dataloader's (batch) sampler, taking as many loader
batches as needed for ``batch_size`` samples (more than one when the loader's batch size is smaller; the surplus of
the last batch is dropped), then reads those samples from the loader's dataset in the main process (no workers)
and collates them with the loader's ``collate_fn``. The copy shares the dataset but not the sampler's state, so
the trainer's sampler, its generator and its workers are never touched. With ``probe_seed=None`` the probe is
exactly the first ``batch_size`` samples of the first training epoch; with an int (default 0) the random streams
used for drawing (the global RNGs and the sampler's own generator) are seeded with it, so the probe does not depend
on the training seed. Deterministic samplers (``DistributedSampler``, sequential) keep their own order. Iterable
datasets: the first ``batch_size`` samples of a fresh ``iter(dataset)``.

**Isolation.** Training runs exactly as it would without the callback: everything the callback does runs inside
:func:`lightning.pytorch.utilities.seed.isolate_rng` (torch CPU/CUDA, numpy, python ``random``), so random
augmentations in the dataset or in the module's batch-transfer hooks do not consume the training's random
streams; the engine scores a deep copy of the model, so weights, buffers (BatchNorm statistics), ``.grad`` fields
and train/eval modes are untouched; nothing is stepped.

**Values that are not informative.** A value constant by construction for this model (status ``degenerate: ...``,
logged as NaN) or measured on less than ``min_coverage`` of its parameters (``partial: ...``, the value logged
with its status) is warned about once on rank zero, with the cause and the fix; neither stops training, whatever
``on_error`` says.

**Failures.** With ``on_error="warn"`` (default) a scoring failure never stops training: a proxy that cannot be
computed gets an ``"error: ..."`` status (logged as ``<group>_status/<name>`` in the W&B summary and kept in the
report), the reasons and fixes are warned once on rank zero, and the fit goes on exactly as without the callback.
This covers failures inside the engine's passes (an exception in the user's ``forward``, a BatchNorm that cannot
normalise a gradient sample) and failures before scoring (a probe batch that cannot be drawn or split, non-finite
inputs): then every requested proxy carries that reason. ``on_error="raise"`` stops the fit with the same message
instead. Invalid callback arguments always fail in ``setup``, before any work.

**Distributed.** Only global rank 0 scores; the report is broadcast to every rank with ``trainer.strategy.broadcast``
(DDP initialises every rank from rank 0's weights, so the scores hold for all ranks). A failure on rank 0 is
broadcast too and raised on every rank, so no rank waits forever. With ``strategy="ddp_spawn"`` the fit runs in
child processes: the launching process's callback object is not updated (Lightning sends back only
``trainer.callback_metrics``, where the values are also stored as ``<log_prefix><name>``).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import lightning.pytorch as pl
import torch
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.utilities import rank_zero_info, rank_zero_warn
from lightning.pytorch.utilities.seed import isolate_rng
from torch import nn
from torch.utils.data import DataLoader, IterableDataset, default_collate
from typing_extensions import override

from lswag_lightning.lightning.batch_from_loader import (
    default_batch_adapter,
    draw_indices,
    draw_iterable,
    first_dataloader,
    seed_all,
)
from lswag_lightning.proxies import ProxyReport, available_proxies, get_proxy, score_network
from lswag_lightning.proxies.status_text import one_line

BatchAdapter = Callable[[Any], Any]

_STATE_VERSION = 1


def _num(value: Any) -> float:
    """``value`` as a float; NaN when it is not a number."""
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


class ZeroCostProxyCallback(Callback):
    r"""Score zero-cost NAS proxies (L-SWAG by default) on the model at initialisation, then let training run unchanged.

    Args:
        proxies: proxy names (see :func:`lswag_lightning.available_proxies`), one name, or ``"all"``.
        batch_size: number of training samples in the probe batch (METHOD.md default 64). Independent of the
            dataloader's batch size: as many loader batches are drawn as needed.
        layer_interval: inclusive depth-decile bins ``(lo, hi)`` of the layers Λ uses (None: the engine's default,
            all layers). Passed to ``score_network``.
        loss_fn: ``loss_fn(logits, targets) -> scalar`` for the gradient proxies (None: cross-entropy on class
            indices).
        log_prefix: prefix of the logged metric names (``"zc/"`` gives ``zc/lswag``, ``zc/lswag.lambda``, ...).
        batch_adapter: ``batch_adapter(batch) -> (inputs, targets)`` for batches that are not ``(x, y, ...)``
            sequences or mappings with the usual keys. It receives the collated probe batch after the module's
            batch-transfer hooks (so on the module's device).
        output_adapter: ``output_adapter(model_output) -> logits`` for models whose forward does not return logits
            (the default accepts a tensor, the first element of a tuple, ``["logits"]`` or ``.logits``).
        model_fn: ``model_fn(lightning_module) -> nn.Module`` selects what is scored (e.g. ``lambda m: m.net``);
            None scores the LightningModule itself, whose ``forward`` must map the inputs to logits.
        probe_seed: seed of the random streams used while drawing the probe batch (sampler shuffle, dataset
            augmentations), independent of the training seed; None draws with the training's own random state, so
            the probe is the start of the first training epoch. Either way the training streams are not consumed.
        probe_batch: a fixed probe batch (anything ``batch_adapter`` accepts) or a zero-argument callable returning
            one, instead of drawing from the train dataloader.
        log_on_resume: when the scores were restored from a checkpoint, log them again (never recomputed) to this
            run's loggers.
        forward_fn: ``forward_fn(module, inputs, targets) -> output`` for a ``forward`` that needs more than the
            inputs (e.g. ``lambda m, x, y: m(x, y)`` for Lightning's ``LightningTransformer``). Passed to
            ``score_network``.
        on_error: ``"warn"`` (default): a proxy that fails gets an error status, a warning says why and how to fix
            it, and training goes on unchanged; ``"raise"``: stop the fit with that message.
        score_options: further keyword options of ``score_network`` (e.g. ``{"lambda_k": 4}``).
    """

    def __init__(
        self,
        proxies: str | Sequence[str] = ("lswag",),
        batch_size: int = 64,
        layer_interval: Any = None,
        loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
        log_prefix: str = "zc/",
        *,
        batch_adapter: BatchAdapter | None = None,
        output_adapter: Callable[[Any], torch.Tensor] | None = None,
        model_fn: Callable[[pl.LightningModule], nn.Module] | None = None,
        probe_seed: int | None = 0,
        probe_batch: Any = None,
        log_on_resume: bool = True,
        forward_fn: Callable[[nn.Module, torch.Tensor, Any], Any] | None = None,
        on_error: str = "warn",
        score_options: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__()
        names = (proxies,) if isinstance(proxies, str) else tuple(proxies)
        self.proxies: tuple[str, ...] = tuple(available_proxies()) if names == ("all",) else names
        self.batch_size = batch_size
        self.layer_interval = layer_interval
        self.loss_fn = loss_fn
        self.log_prefix = log_prefix
        self.batch_adapter = batch_adapter
        self.output_adapter = output_adapter
        self.model_fn = model_fn
        self.probe_seed = probe_seed
        self.probe_batch = probe_batch
        self.log_on_resume = log_on_resume
        self.forward_fn = forward_fn
        self.on_error = on_error
        self.score_options: dict[str, Any] = dict(score_options or {})

        #: The last :class:`ProxyReport` (None until scored or restored).
        self.report: ProxyReport | None = None
        #: Wall seconds the callback spent (drawing the probe batch + scoring), on the rank that scored.
        self.seconds: float | None = None
        #: Dataset indices of the probe samples (None for iterable datasets and ``probe_batch``), for inspection.
        self.probe_indices: list[int] | None = None
        #: Number of train-loader batches the probe was drawn from (None with ``probe_batch``).
        self.probe_loader_batches: int | None = None
        #: ``trainer.global_step`` when the scores were computed (0: before any optimiser step).
        self.scored_at_step: int | None = None
        #: True when the scores came from a checkpoint (``load_state_dict``) rather than from this fit.
        self.restored = False
        self._validated = False

    # ------------------------------------------------------------------ identity / state
    @property
    @override
    def state_key(self) -> str:
        return self._generate_state_key(proxies=list(self.proxies), log_prefix=self.log_prefix)

    @override
    def state_dict(self) -> dict[str, Any]:
        return {
            "version": _STATE_VERSION,
            "proxies": list(self.proxies),
            "batch_size": self.batch_size,
            "probe_seed": self.probe_seed,
            "report": None if self.report is None else self.report.to_dict(),
            "seconds": self.seconds,
            "probe_indices": self.probe_indices,
            "probe_loader_batches": self.probe_loader_batches,
            "scored_at_step": self.scored_at_step,
        }

    @override
    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        report = state_dict.get("report")
        if report is None:
            return
        self.report = ProxyReport.from_dict(report)
        self.seconds = state_dict.get("seconds")
        self.probe_indices = state_dict.get("probe_indices")
        self.probe_loader_batches = state_dict.get("probe_loader_batches")
        self.scored_at_step = state_dict.get("scored_at_step")
        self.restored = True
        missing = [p for p in self.proxies if p not in self.report.values and p not in self.report.status]
        if missing:
            rank_zero_warn(
                f"ZeroCostProxyCallback: the checkpoint holds no scores for {missing}; they are not "
                "computed now, because the checkpoint's weights are no longer the initialisation"
            )

    # ------------------------------------------------------------------ validation
    def validate(self) -> None:
        """Check the arguments (run once in ``setup``); ``ValueError`` naming the argument to fix."""
        if not self.proxies:
            raise ValueError("ZeroCostProxyCallback: proxies is empty; name at least one proxy")
        known = set(available_proxies())
        unknown = [p for p in self.proxies if p not in known]
        if unknown:
            raise ValueError(f"ZeroCostProxyCallback: unknown proxies {unknown}; available: {sorted(known)}")
        if isinstance(self.batch_size, bool) or not isinstance(self.batch_size, int) or self.batch_size < 2:
            raise ValueError(f"ZeroCostProxyCallback: batch_size must be an int >= 2, got {self.batch_size!r}")
        if not isinstance(self.log_prefix, str):
            raise ValueError(f"ZeroCostProxyCallback: log_prefix must be a string, got {self.log_prefix!r}")
        if self.probe_seed is not None and (isinstance(self.probe_seed, bool) or not isinstance(self.probe_seed, int)):
            raise ValueError(f"ZeroCostProxyCallback: probe_seed must be an int or None, got {self.probe_seed!r}")
        if self.on_error not in ("warn", "raise"):
            raise ValueError(f"ZeroCostProxyCallback: on_error must be 'warn' or 'raise', got {self.on_error!r}")
        reserved = {"loss_fn", "layer_interval", "output_adapter", "forward_fn", "proxies"} & set(self.score_options)
        if reserved:
            raise ValueError(
                f"ZeroCostProxyCallback: pass {sorted(reserved)} as the callback's own arguments, not in score_options"
            )
        for name in ("batch_adapter", "output_adapter", "model_fn", "loss_fn", "forward_fn"):
            value = getattr(self, name)
            if value is not None and not callable(value):
                raise ValueError(f"ZeroCostProxyCallback: {name} must be callable, got {type(value).__name__}")

    @override
    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        if stage == "fit" and not self._validated:
            self.validate()
            self._validated = True

    # ------------------------------------------------------------------ the probe batch
    def _draw_probe_batch(self, trainer: pl.Trainer) -> Any:
        """The collated probe batch (before device transfer). Runs inside ``isolate_rng``."""
        self.probe_indices = None
        self.probe_loader_batches = None
        if self.probe_batch is not None:
            return self.probe_batch() if callable(self.probe_batch) else self.probe_batch
        loader = first_dataloader(trainer.train_dataloader)
        if not isinstance(loader, DataLoader):
            raise ValueError(
                f"ZeroCostProxyCallback: the train dataloader is a {type(loader).__name__}, not a "
                "torch DataLoader; pass probe_batch=(inputs, targets) (or a callable returning it)"
            )
        dataset = loader.dataset
        collate = loader.collate_fn if loader.batch_size is not None else default_collate
        if isinstance(dataset, IterableDataset):
            batch, self.probe_loader_batches = draw_iterable(loader, dataset, collate, self.batch_size)
            return batch
        indices, self.probe_loader_batches = draw_indices(loader, dataset, self.batch_size, self.probe_seed)
        self.probe_indices = [int(i) if isinstance(i, int) or torch.is_tensor(i) else i for i in indices]
        return collate([dataset[i] for i in indices])

    def _probe_tensors(self, trainer: pl.Trainer) -> tuple[torch.Tensor, Any]:
        # Everything random here (sampler shuffle, augmentations in __getitem__, the module's batch-transfer hooks)
        # runs inside isolate_rng, so the global streams continue exactly as without the callback.
        with isolate_rng():
            if self.probe_seed is not None:
                seed_all(self.probe_seed)
            batch = self._draw_probe_batch(trainer)
            batch = trainer.strategy.batch_to_device(batch)
            inputs, targets = (self.batch_adapter or default_batch_adapter)(batch)
        if not isinstance(inputs, torch.Tensor):
            raise ValueError(
                f"ZeroCostProxyCallback: the probe inputs are a {type(inputs).__name__}, not a tensor; "
                "pass batch_adapter=lambda batch: (inputs, targets)"
            )
        return inputs, targets

    # ------------------------------------------------------------------ scoring
    def _score(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> dict[str, Any]:
        start = time.perf_counter()
        inputs, targets = self._probe_tensors(trainer)
        model = self.model_fn(pl_module) if self.model_fn is not None else pl_module
        options = dict(self.score_options)
        if self.output_adapter is not None:
            options["output_adapter"] = self.output_adapter
        if self.forward_fn is not None:
            options["forward_fn"] = self.forward_fn
        with isolate_rng(), torch.enable_grad():
            report = score_network(
                model,
                inputs,
                targets,
                proxies=self.proxies,
                loss_fn=self.loss_fn,
                layer_interval=self.layer_interval,
                **options,
            )
        # The report object itself is broadcast (pickled), so non-finite values stay as they are on every rank.
        return {
            "report": report,
            "seconds": time.perf_counter() - start,
            "probe_indices": self.probe_indices,
            "probe_loader_batches": self.probe_loader_batches,
        }

    @override
    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self.report is not None:  # restored from a checkpoint, or already scored by an earlier fit
            if self.restored and self.log_on_resume:
                self._log(trainer)
            return
        if trainer.global_step > 0:  # resumed from a checkpoint written without this callback's scores
            rank_zero_warn(
                "ZeroCostProxyCallback: resuming at step "
                f"{trainer.global_step} from a checkpoint without zero-cost scores; not scoring, because "
                "the weights are no longer the initialisation"
            )
            return
        payload: dict[str, Any] = {}
        if trainer.is_global_zero:
            start = time.perf_counter()
            try:
                payload = self._score(trainer, pl_module)
            except Exception as err:
                if self.on_error == "raise":  # broadcast the failure so the other ranks do not wait forever
                    if trainer.world_size > 1:
                        trainer.strategy.broadcast({"error": f"{type(err).__name__}: {err}"}, src=0)
                    raise
                payload = {
                    "report": self._failure_report(err),
                    "seconds": time.perf_counter() - start,
                    "probe_indices": self.probe_indices,
                    "probe_loader_batches": self.probe_loader_batches,
                }
            failed = _errors(payload["report"])
            if failed and self.on_error == "raise":
                message = self._failure_text(
                    failed, len(payload["report"].status), "set on_error='warn' to train anyway"
                )
                if trainer.world_size > 1:
                    trainer.strategy.broadcast({"error": message}, src=0)
                raise RuntimeError(message)
        payload = trainer.strategy.broadcast(payload, src=0)
        if "error" in payload:
            raise RuntimeError(f"ZeroCostProxyCallback: scoring failed on rank 0: {payload['error']}")
        self.report = payload["report"]
        self.seconds = payload["seconds"]
        self.probe_indices = payload["probe_indices"]
        self.probe_loader_batches = payload["probe_loader_batches"]
        self.scored_at_step = trainer.global_step
        failed = _errors(self.report)
        if failed:
            rank_zero_warn(
                self._failure_text(failed, len(self.report.status), "training goes on unchanged (on_error='warn')")
            )
        flagged = _not_informative(self.report)
        if flagged:
            rank_zero_warn(self._not_informative_text(flagged, len(self.report.status)))
        self._log(trainer)

    def _failure_report(self, err: Exception) -> ProxyReport:
        """The report of a scoring that failed before any proxy ran: every requested value NaN, with the reason."""
        reason = f"error: scoring failed before any pass: {type(err).__name__}: {one_line(str(err))}"
        report = ProxyReport(settings={"batch_size": self.batch_size})
        for name in self.proxies:
            spec = get_proxy(name)
            for key in (name, *spec.extra_values):
                report.values[key] = math.nan
                report.status[key] = reason
                report.higher_is_better[key] = spec.higher_is_better
                report.seconds[key] = 0.0
        return report

    @staticmethod
    def _failure_text(failed: dict[str, str], total: int, consequence: str) -> str:
        """One message: which proxies failed and why (each status carries its fix when one is known)."""
        reasons: dict[str, list[str]] = {}
        for name, status in failed.items():
            reasons.setdefault(status.removeprefix("error: "), []).append(name)
        lines = [f"{', '.join(names)}: {reason}" for reason, names in reasons.items()]
        return (
            f"ZeroCostProxyCallback: {len(failed)} of {total} zero-cost values could not be computed; "
            f"{consequence}.\n  " + "\n  ".join(lines)
        )

    @staticmethod
    def _not_informative_text(flagged: dict[str, str], total: int) -> str:
        """One message: which values carry no information (degenerate) or describe part of the model (partial), why,
        and what to change; their statuses are logged with them."""
        reasons: dict[str, list[str]] = {}
        for name, status in flagged.items():
            reasons.setdefault(status, []).append(name)
        lines = [f"{', '.join(names)}: {reason}" for reason, names in reasons.items()]
        return (
            f"ZeroCostProxyCallback: {len(flagged)} of {total} zero-cost values are not informative for this model "
            "(degenerate: NaN, constant by construction; partial: measured on part of the model).\n  "
            + "\n  ".join(lines)
        )

    # ------------------------------------------------------------------ logging
    def metrics(self) -> dict[str, float]:
        """The logged metrics: ``<prefix><name>`` -> value (NaN for non-finite or failed values; the status says
        why)."""
        if self.report is None:
            return {}
        out = {f"{self.log_prefix}{k}": _num(v) for k, v in self.report.values.items()}
        for name in self.report.status:  # a failed proxy may have a status but no value
            out.setdefault(f"{self.log_prefix}{name}", math.nan)
        return {k: (v if math.isfinite(v) else math.nan) for k, v in out.items()}

    def hyperparameters(self) -> dict[str, Any]:
        """The proxy settings logged as hyper-parameters (the W&B run config), under the prefix without its
        separator (``{"zc": {"proxies": [...], "batch_size": 64, ..., "engine": {...}, "status": {...}}}``)."""
        report = self.report
        settings = {
            "proxies": list(self.proxies),
            "batch_size": self.batch_size,
            "probe_seed": self.probe_seed,
            "layer_interval": None if self.layer_interval is None else list(self.layer_interval),
            "loss_fn": None if self.loss_fn is None else getattr(self.loss_fn, "__qualname__", repr(self.loss_fn)),
            "engine": dict(report.settings) if report is not None else {},
            "status": dict(report.status) if report is not None else {},
        }
        return {self._group: settings}

    @property
    def _group(self) -> str:
        return self.log_prefix.rstrip("/._-") or "zc"

    def _log(self, trainer: pl.Trainer) -> None:
        metrics = self.metrics()
        # In trainer.callback_metrics too, so the values can be monitored and survive ddp_spawn.
        for name, value in metrics.items():
            trainer.callback_metrics[name] = torch.tensor(value, dtype=torch.float64)
        if not trainer.is_global_zero:
            return
        step = self.scored_at_step or 0
        for logger in trainer.loggers:
            logger.log_metrics(metrics, step=step)
            logger.log_hyperparams(self.hyperparameters())
            if _is_wandb_logger(logger):
                self._write_wandb_summary(logger)
        rank_zero_info(self.summary_line())

    def _write_wandb_summary(self, logger: Any) -> None:
        summary = getattr(logger.experiment, "summary", None)
        if summary is None or self.report is None:
            return
        for name, value in self.metrics().items():
            summary[name] = value
        for name, status in self.report.status.items():
            summary[f"{self._group}_status/{name}"] = status
        summary[f"{self._group}_seconds"] = float(self.report.total_seconds)

    def summary_line(self) -> str:
        """One line: the main values, the kind of status of the others (``error``, ``nan``, ...) and the time spent."""
        if self.report is None:
            return "zero-cost proxies: not scored"
        parts = []
        for name in self.proxies:
            status = self.report.status.get(name, "missing")
            kind = status.split(":", 1)[0]  # the reasons are in the warning and the W&B summary, one line each
            parts.append(
                f"{name}={self.report.values.get(name, math.nan):.4g}" if status == "ok" else f"{name}=[{kind}]"
            )
        origin = "restored from checkpoint" if self.restored else f"{self.seconds or 0.0:.2f} s"
        size = self.report.settings.get("batch_size", self.batch_size)
        return f"zero-cost proxies at init (batch {size}, {origin}): " + ", ".join(parts)


def _not_informative(report: ProxyReport) -> dict[str, str]:
    """The statuses of the values that are not informative: ``degenerate`` (NaN: constant by construction for this
    model) and ``partial`` (the value, measured on less than ``min_coverage`` of the model)."""
    return {name: s for name, s in report.status.items() if s.startswith(("degenerate:", "partial:"))}


def _errors(report: ProxyReport) -> dict[str, str]:
    """The statuses of the values that failed (``"error: ..."``); NaN/inf values are results, not failures."""
    return {name: status for name, status in report.status.items() if status.startswith("error:")}


def _is_wandb_logger(logger: Any) -> bool:
    try:
        from lightning.pytorch.loggers import WandbLogger
    except ImportError:  # pragma: no cover - wandb is a dependency
        return False
    return isinstance(logger, WandbLogger)
