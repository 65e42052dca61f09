"""How the engine runs the model on the probe batch: the helpers every pass shares.

``ProbeRunner`` holds the probe batch and the ways to run the model on it (``forward_fn``, the output adapter, the
loss, a re-parametrised call through ``functional_call``, per-sample normalisation); the passes (``grad_stats.py``,
``batch_pass.py``, ``synflow_flops.py``, ``author_passes.py``, ``vkdnw.py``) compute their shared results with it.
Which passes run, and which needs each one delivers, is planned in ``planner.py`` from the pass registry; a pass
never decides that for itself.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

import torch
from torch import nn
from torch.func import functional_call

from lswag_lightning.proxies.coverage import Coverage, ParameterCensus
from lswag_lightning.proxies.layers import weight_modules
from lswag_lightning.proxies.options import ScoringOptions
from lswag_lightning.proxies.results import ProxyError


class InvalidInput(ValueError):
    """Bad input found during a pass (e.g. a label out of range); the engine checks these before any pass, this
    is the fallback when that check could not run."""


class _ProbeCall(nn.Module):
    """``probe.forward(module, inputs, targets)`` as a module, so that ``functional_call`` can re-parametrise it."""

    def __init__(self, module: nn.Module, probe: ProbeRunner, targets: torch.Tensor | None) -> None:
        super().__init__()
        self.module = module
        self.probe = probe
        self.targets = targets

    def forward(self, inputs: torch.Tensor) -> Any:
        return self.probe.forward(self.module, inputs, self.targets)


def _one_value_per_channel(x: torch.Tensor) -> bool:
    """Whether a BatchNorm input has a single value per channel (batch × spatial positions == 1)."""
    return x.ndim >= 2 and x.shape[0] * math.prod(x.shape[2:]) == 1


def is_batch_norm(module: nn.Module) -> bool:
    return isinstance(module, nn.modules.batchnorm._BatchNorm)


class ProbeRunner:
    """Runs the model on the probe batch for the passes of one scoring session (each pass receives it as ``probe``).

    ``inputs`` (batch, ...) and ``targets`` are already on the model's device; ``adapter`` maps a model output to
    logits; ``reseed()`` restarts the pass's random streams (used after an extra forward, so the pass sees the
    same stream as without it). ``single_value_norm``: whether a BatchNorm sees one value per channel for a single
    sample (the engine's one-sample check sets it; see ``single_sample_normalisation``). ``census``: every parameter
    of the working model once, for a pass to record which share it measured (``probe.coverage(tensors, what)``).
    """

    def __init__(
        self,
        inputs: torch.Tensor,
        targets: torch.Tensor | None,
        batch_size: int,
        options: ScoringOptions,
        adapter: Callable[[Any], torch.Tensor],
        reseed: Callable[[], None],
        single_value_norm: bool = False,
        census: ParameterCensus | None = None,
    ) -> None:
        self.inputs = inputs
        self.targets = targets
        self.batch_size = batch_size
        self.options = options
        self.adapter = adapter
        self.reseed = reseed
        self.single_value_norm = single_value_norm
        self.census = census
        #: one sample's logits shape, e.g. ``(classes,)`` or ``(classes, H, W)`` (set by the engine's one-sample
        #: check; None when that forward failed)
        self.output_shape: tuple[int, ...] | None = None

    def coverage(self, measured: Iterable[torch.Tensor], what: str) -> Coverage | None:
        """The :class:`Coverage` of the parameters ``measured`` (None without a census)."""
        return None if self.census is None else self.census.coverage(measured, what)

    # ------------------------------------------------------------------ model calls
    def targets_at(self, index: torch.Tensor | slice) -> torch.Tensor | None:
        return None if self.targets is None else self.targets[index]

    def forward(self, work: nn.Module, inputs: torch.Tensor, targets: torch.Tensor | None) -> Any:
        """The raw model output: ``forward_fn(work, inputs, targets)`` or ``work(inputs)``."""
        if self.options.forward_fn is not None:
            return self.options.forward_fn(work, inputs, targets)
        return work(inputs)

    def functional_forward(
        self, work: nn.Module, state: dict[str, torch.Tensor], inputs: torch.Tensor, targets: torch.Tensor | None
    ) -> Any:
        """The raw output of ``forward`` with ``work``'s parameters and buffers replaced by ``state`` (names as in
        ``work.named_parameters()``/``named_buffers()``); ``work`` itself is never written."""
        prefixed = {f"module.{name}": value for name, value in state.items()}
        return functional_call(_ProbeCall(work, self, targets), prefixed, (inputs,))

    def logits(self, work: nn.Module, inputs: torch.Tensor, targets: torch.Tensor | None) -> torch.Tensor:
        logits = self.adapter(self.forward(work, inputs, targets))
        if not isinstance(logits, torch.Tensor):
            raise ProxyError(f"output_adapter returned {type(logits).__name__}, not a tensor of logits")
        return logits

    def loss(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        if self.options.loss_fn is not None:
            return self.options.loss_fn(logits, targets)
        check_logits_for_cross_entropy(logits, targets, InvalidInput)
        return nn.functional.cross_entropy(logits, targets)

    @contextlib.contextmanager
    def order_recorder(self, work: nn.Module) -> Iterator[dict[nn.Module, int]]:
        """Records the index of each weight layer's first call (the forward order of the layers)."""
        first_call: dict[nn.Module, int] = {}

        def record(module: nn.Module, _inputs: Any) -> None:
            first_call.setdefault(module, len(first_call))

        handles = [m.register_forward_pre_hook(record) for _, m in weight_modules(work)]
        try:
            yield first_call
        finally:
            for handle in handles:
                handle.remove()

    @staticmethod
    def weight_list(work: nn.Module) -> tuple[list[str], list[nn.Module]]:
        pairs = weight_modules(work)
        for _, m in pairs:
            m.weight.requires_grad_(True)
        return [n for n, _ in pairs], [m for _, m in pairs]

    def chunks(self, plan: str) -> list[torch.Tensor]:
        """Sample indices of the K gradient samples: single samples (``per_sample``) or the K split parts."""
        total = self.inputs.shape[0]
        index = torch.arange(total, device=self.inputs.device)
        if plan == "per_sample":
            return [index[i : i + 1] for i in range(min(total, self.options.per_sample_count))]
        return list(torch.tensor_split(index, self.options.lambda_k))

    @contextlib.contextmanager
    def single_sample_normalisation(
        self, work: nn.Module, index: torch.Tensor, enabled: bool
    ) -> Iterator[Callable[[], None]]:
        """Per-sample gradients through BatchNorm layers that see one value per channel on a single sample.

        Such a layer (BatchNorm1d on (batch, features), or a BatchNorm over a 1×1 map) cannot normalise one sample
        in train mode. It then uses the statistics it computes on the whole per-sample set (one no-grad forward of
        those samples first), held fixed: each sample is normalised exactly as in the batch forward, and its
        gradient is its own, without the coupling through the batch statistics. BatchNorm layers that normalise
        one sample over its spatial positions keep doing so (train mode, as before), so values on CNNs such as
        NB201 are unchanged. Yields a function to call before each sample's forward.
        """
        norms = [m for m in work.modules() if is_batch_norm(m)]
        if not (enabled and norms and self.single_value_norm):
            yield lambda: None
            return
        stats: dict[nn.Module, list[tuple[torch.Tensor, torch.Tensor]]] = {m: [] for m in norms}

        def capture(module: nn.Module, args: tuple[Any, ...]) -> None:
            x = args[0].detach()
            dims = [0, *range(2, x.ndim)]
            stats[module].append((x.mean(dims), x.var(dims, unbiased=False)))

        saved = [(b, b.detach().clone()) for b in work.buffers()]
        handles = [m.register_forward_pre_hook(capture) for m in norms]
        try:
            with torch.no_grad():
                self.forward(work, self.inputs[index], self.targets_at(index))
        finally:
            for handle in handles:
                handle.remove()
            with torch.no_grad():
                for buf, value in saved:
                    buf.copy_(value)
        self.reseed()  # the sample passes see the same random stream as without this extra forward
        calls = {m: 0 for m in norms}

        def frozen_forward(module: nn.Module) -> Callable[[torch.Tensor], torch.Tensor]:
            original = module.forward

            def forward(x: torch.Tensor) -> torch.Tensor:
                call = calls[module]
                calls[module] += 1
                if module.training and _one_value_per_channel(x) and call < len(stats[module]):
                    mean, var = stats[module][call]
                    return nn.functional.batch_norm(
                        x, mean, var, module.weight, module.bias, training=False, momentum=0.0, eps=module.eps
                    )
                return original(x)

            return forward

        def new_sample() -> None:
            for module in calls:
                calls[module] = 0

        for module in norms:
            module.forward = frozen_forward(module)
        try:
            yield new_sample
        finally:
            for module in norms:
                del module.forward


#: torch's default ``ignore_index``: a target position the cross-entropy leaves out (padding in masks and sequences)
IGNORE_INDEX = -100

SEQUENCE_LOSS_HINT = (
    "for a sequence model, loss_fn=lambda logits, y: F.cross_entropy(logits.flatten(0, 1), y.flatten())"
)


def cross_entropy_layout_problem(logits: torch.Tensor, targets: torch.Tensor) -> str | None:
    """Why the default cross-entropy cannot take these logits and targets (None: it can).

    It takes class logits (batch, classes) with targets (batch,), or dense logits (batch, classes, d1, ...) with
    targets (batch, d1, ...) (segmentation masks), as ``F.cross_entropy`` does."""
    if logits.ndim == 2 and targets.ndim == 1:
        return None
    if logits.ndim >= 3 and targets.ndim == logits.ndim - 1 and logits.shape[2:] == targets.shape[1:]:
        return None
    hint = SEQUENCE_LOSS_HINT if logits.ndim == 3 and targets.ndim == 2 and logits.shape[1] == targets.shape[1] else ""
    return (
        f"the default cross-entropy takes logits (batch, classes) with targets (batch,) or (batch, classes, d1, ...) "
        f"with targets (batch, d1, ...); the model gave {tuple(logits.shape)} for targets {tuple(targets.shape)}: "
        f"pass loss_fn=...{' (' + hint + ')' if hint else ''}"
    )


def check_logits_for_cross_entropy(logits: torch.Tensor, targets: torch.Tensor, error: type[Exception]) -> None:
    """The default loss's requirements: a layout it takes (see ``cross_entropy_layout_problem``) and labels below the
    class count (``IGNORE_INDEX`` aside)."""
    problem = cross_entropy_layout_problem(logits, targets)
    if problem is not None:
        raise error(problem)
    check_labels_below(logits.shape[1], targets, error)


def check_labels_below(num_classes: int, targets: torch.Tensor, error: type[Exception]) -> None:
    """Class indices must be below ``num_classes`` (positions marked ``IGNORE_INDEX`` aside)."""
    labels = targets[targets != IGNORE_INDEX]
    if labels.numel() and int(labels.max()) >= num_classes:
        raise error(
            f"targets contain label {int(labels.max())} but the model outputs {num_classes} "
            f"classes; labels must be in 0..{num_classes - 1} (check num_classes)"
        )


def default_output_adapter(output: Any) -> torch.Tensor:
    """Logits from a model output: a tensor, the first element of a tuple/list (``(logits, aux_logits)``),
    ``["logits"]`` of a mapping, or ``.logits`` (a ``ModelOutput``-like object)."""
    if isinstance(output, torch.Tensor):
        return output
    if isinstance(output, (tuple, list)) and output and isinstance(output[0], torch.Tensor):
        return output[0]
    if isinstance(output, Mapping) and isinstance(output.get("logits"), torch.Tensor):
        return output["logits"]
    if isinstance(getattr(output, "logits", None), torch.Tensor):
        return output.logits
    raise ValueError(
        f"the model returned {type(output).__name__}, not logits; pass output_adapter=callable "
        "mapping the model output to a (batch, classes) tensor"
    )
