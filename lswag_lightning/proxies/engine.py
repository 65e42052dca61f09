"""One scoring session: validation, isolation, and the shared passes every requested proxy reduces from.

The engine plans the fewest passes for the requested proxies (the ``needs`` they declare in the registry):

- ``grad_stats``: K forward+backward passes on K gradient samples (METHOD.md §2), Welford statistics per weight
  element (float64); shared by Λ (``lswag``) and ``zico``. ``per_sample_grad_stats`` is the same on single samples
  (``zico_ps``; also Λ with ``lambda_samples="per_sample"``).
- the batch pass: one forward of the whole batch with activation hooks (Ψ, SWAP: bit-packed patterns; NASWOT:
  Hamming kernel), followed, when needed, by the loss gradient w.r.t. the weights (``snip``, ``grad_norm``) and the
  gradient of the summed logits w.r.t. the inputs (``jacov``), both from the same graph.
- ``synflow``: its own float64 pass of an all-ones input through |weights| (eval mode, via ``functional_call``).
- ``flops``: one sample through ``torch.utils.flop_counter`` (eval mode, no grad).

Isolation: the session works on one deep copy of the model (``copy_model=True``, default) or on the model itself
with its buffers, modes and ``requires_grad`` flags restored (``copy_model=False``). Gradients are taken with
``torch.autograd.grad``, so no ``.grad`` field is touched. The global RNG (CPU and CUDA) is forked and restored;
every pass starts from the same buffers and the same seed, so a proxy's value does not depend on which other
proxies were requested.
"""
from __future__ import annotations

import contextlib
import copy
import functools
import logging
import math
import time
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any, Callable, Iterator, Sequence

import torch
from torch import nn
from torch.func import functional_call

from lswag_lightning.proxies.layers import (
    activation_modules,
    count_parameters,
    is_weight_layer,
    no_activation_message,
    order_weight_layers,
    pack_patterns,
    validate_interval,
    weight_modules,
)
from lswag_lightning.proxies.registry import ProxySpec, available_proxies, get_proxy
from lswag_lightning.proxies.report import ProxyReport

log = logging.getLogger(__name__)

_GRAD_NEEDS = {"grad_stats", "per_sample_grad_stats", "batch_grads", "synflow_pass"}
_BATCH_NEEDS = {"activations", "naswot_kernel", "batch_grads", "input_grads"}


class ProxyError(RuntimeError):
    """A proxy (or a pass it needs) cannot be computed on this model; the message says why."""


class _InvalidInput(ValueError):
    """Bad input found during a pass (e.g. a label out of range); always propagates to the caller."""


# --------------------------------------------------------------------------------------------------- options
@dataclass(frozen=True)
class ScoringOptions:
    """Every scoring knob, with the METHOD.md defaults.

    - ``layer_interval``: inclusive depth-decile bins (lo, hi) of the weight layers Λ sums over; None = all.
    - ``lambda_samples``: what Λ/ZiCo's K gradient samples are: ``"split"`` (the batch cut into K parts, default),
      ``"batches"`` (``inputs`` holds K whole batches; the other proxies use the first), ``"per_sample"``.
    - ``lambda_k``: K for split/batches (default 2). ``lambda_std``: std of the ``"signed"`` gradient (default,
      as ZiCo's code) or of ``"abs"`` |g| (the paper's formula).
    - ``per_sample_count``: samples used by ``zico_ps`` and per-sample Λ (default 32).
    - ``psi_layers``: activation points Ψ counts: ``"upto"`` (bins <= hi of ``layer_interval``, the paper's
      Definition 1, default), ``"interval"`` ([lo, hi]), ``"all"``, or an explicit (lo, hi).
    - ``activation_points``: module names whose outputs are binarised instead of the detected activations.
    - ``swap_mu``, ``swap_sigma``: regularised SWAP's µ and σ (parameters in thousands); needed by ``swap_reg``.
    - ``jacov_jitter``: k added to the eigenvalues in jacov, -Σ log(v + k) + 1/(v + k) (NASLib's 1e-5).
    - ``params_exclude``: regex of parameter names left out of ``params`` (auxiliary heads).
    - ``copy_model``: score a deep copy (default) or the model itself, restoring its state afterwards.
    - ``seed``: RNG seed of every pass (dropout, drop-path), so scores are reproducible.
    - ``output_adapter``: callable mapping the model output to logits (default: tensor, first element of a
      tuple/list, ``["logits"]`` of a mapping, ``.logits``).
    - ``loss_fn``: ``loss_fn(logits, targets) -> scalar``; default cross-entropy on class indices.
    """

    layer_interval: tuple[int, int] | None = None
    lambda_samples: str = "split"
    lambda_k: int = 2
    lambda_std: str = "signed"
    per_sample_count: int = 32
    psi_layers: str | tuple[int, int] = "upto"
    activation_points: tuple[str, ...] | None = None
    swap_mu: float | None = None
    swap_sigma: float | None = None
    jacov_jitter: float = 1e-5
    params_exclude: str | None = r"(^|\.)aux"
    copy_model: bool = True
    seed: int = 0
    output_adapter: Callable[[Any], torch.Tensor] | None = None
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None

    @classmethod
    def from_kwargs(cls, **kwargs: Any) -> "ScoringOptions":
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(kwargs) - known)
        if unknown:
            raise ValueError(f"unknown scoring option(s) {unknown}; valid options: {sorted(known)}")
        opts = dict(kwargs)
        opts["layer_interval"] = validate_interval(opts.get("layer_interval"))
        if opts.get("lambda_samples", "split") not in ("split", "batches", "per_sample"):
            raise ValueError(f"lambda_samples={opts['lambda_samples']!r}: use 'split', 'batches' or 'per_sample'")
        if opts.get("lambda_std", "signed") not in ("signed", "abs"):
            raise ValueError(f"lambda_std={opts['lambda_std']!r}: use 'signed' or 'abs'")
        k = opts.get("lambda_k", 2)
        if not isinstance(k, int) or k < 2:
            raise ValueError(f"lambda_k={k!r}: need an integer >= 2 gradient samples for a standard deviation")
        count = opts.get("per_sample_count", 32)
        if not isinstance(count, int) or count < 2:
            raise ValueError(f"per_sample_count={count!r}: need an integer >= 2")
        psi = opts.get("psi_layers", "upto")
        if isinstance(psi, str):
            if psi not in ("upto", "interval", "all"):
                raise ValueError(f"psi_layers={psi!r}: use 'upto', 'interval', 'all' or a bin pair (lo, hi)")
        else:
            opts["psi_layers"] = validate_interval(psi, "psi_layers")
        if opts.get("activation_points") is not None:
            points = opts["activation_points"]
            if isinstance(points, str) or not all(isinstance(p, str) for p in points):
                raise ValueError("activation_points must be a list of module names (strings)")
            opts["activation_points"] = tuple(points)
        for name in ("output_adapter", "loss_fn"):
            if opts.get(name) is not None and not callable(opts[name]):
                raise ValueError(f"{name} must be callable, got {type(opts[name]).__name__}")
        if opts.get("swap_sigma") is not None and not opts["swap_sigma"] > 0:
            raise ValueError(f"swap_sigma={opts['swap_sigma']!r} must be > 0")
        return cls(**opts)

    def psi_interval(self) -> tuple[int, int] | None:
        """The depth-bin interval of the activation points Ψ counts (None = all)."""
        if isinstance(self.psi_layers, tuple):
            return self.psi_layers
        if self.psi_layers == "all" or self.layer_interval is None:
            return None
        lo, hi = self.layer_interval
        return (0, hi) if self.psi_layers == "upto" else (lo, hi)

    def to_settings(self) -> dict[str, Any]:
        """JSON-ready view (callables by qualified name)."""
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if callable(value):
                value = getattr(value, "__qualname__", type(value).__name__)
            elif isinstance(value, tuple):
                value = list(value)
            out[f.name] = value
        out["psi_interval"] = None if self.psi_interval() is None else list(self.psi_interval())
        return out


# ---------------------------------------------------------------------------------------------- pass results
@dataclass
class LayerGradStats:
    """Statistics of one weight layer's gradient over K samples (s_w: population std of each element)."""

    name: str
    numel: int
    n_zero_std: int  # elements with s_w == 0 (dropped), for the Λ std variant
    inv_std_sum: float  # Σ_{s_w > 0} 1 / s_w   (Λ's inner sum, Λ std variant)
    zico_sum: float  # Σ_{s_w > 0} mean_K |g_w| / s_w   (ZiCo's inner sum, signed std)
    mean_log_std: float  # mean of log s_w over s_w > 0 (the per-layer statistic of METHOD.md §5)


@dataclass
class GradStatsResult:
    layers: list[LayerGradStats]  # forward order
    num_samples: int  # K
    sample_sizes: list[int]
    mean_grads: "WeightGrads | None" = None  # mean of the K gradients, kept when it is the batch gradient


@dataclass
class ActivationResult:
    points: list[str]  # one name per activation call, forward order
    neurons: list[int]  # neurons per point (per-sample size of its output)
    codes: list[torch.Tensor] | None  # bit-packed patterns per point, each (n, W) int64
    gram: torch.Tensor | None  # (S, S) float64, Σ over points of x xᵀ for binary codes x
    row_sums: torch.Tensor | None  # (S,) float64, active units per sample
    samples: int


@dataclass
class WeightGrads:
    names: list[str]
    weights: list[torch.Tensor]
    grads: list[torch.Tensor]


@dataclass
class SessionData:
    """Everything the proxies reduce from, plus what each need cost in seconds."""

    options: ScoringOptions
    params: int
    batch_size: int
    results: dict[str, Any] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    need_seconds: dict[str, float] = field(default_factory=dict)

    def get(self, need: str) -> Any:
        if need in self.errors:
            raise ProxyError(self.errors[need])
        return self.results[need]


@dataclass
class ProxyOutput:
    """What a proxy's ``compute`` returns: the value, named sub-values, details, and per-key problems."""

    value: float
    extras: dict[str, float] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)  # key (name or extra) -> why it could not be computed
    notes: dict[str, str] = field(default_factory=dict)  # key -> why a value is not finite
    extra_needs: dict[str, tuple[str, ...]] = field(default_factory=dict)  # extra -> the needs it used


# ------------------------------------------------------------------------------------------------- helpers
def default_output_adapter(output: Any) -> torch.Tensor:
    """Logits from a model output: a tensor, the first element of a tuple/list, ``["logits"]`` or ``.logits``."""
    if isinstance(output, torch.Tensor):
        return output
    if isinstance(output, (tuple, list)) and output and isinstance(output[0], torch.Tensor):
        return output[0]
    if isinstance(output, Mapping) and isinstance(output.get("logits"), torch.Tensor):
        return output["logits"]
    if isinstance(getattr(output, "logits", None), torch.Tensor):
        return output.logits
    raise ValueError(f"the model returned {type(output).__name__}, not logits; pass output_adapter=callable "
                     "mapping the model output to a (batch, classes) tensor")


def _resolve_proxies(proxies: str | Sequence[str]) -> list[ProxySpec]:
    names = [proxies] if isinstance(proxies, str) else list(proxies)
    if names == ["all"]:
        names = available_proxies()
    if not names:
        raise ValueError(f"no proxy requested; choose from {available_proxies()} (or 'all')")
    seen: dict[str, ProxySpec] = {}
    for name in names:
        if not isinstance(name, str):
            raise ValueError(f"proxy names must be strings, got {name!r}")
        seen.setdefault(name, get_proxy(name))
    return list(seen.values())


def _cuda_devices() -> list[int]:
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        return list(range(torch.cuda.device_count()))
    return []


def _seed_pass(seed: int, devices: list[int]) -> None:
    """Seed the CPU generator and the initialised CUDA generators only (no lazy CUDA seeding that would leak)."""
    torch.random.default_generator.manual_seed(seed)
    for index in devices:
        torch.cuda.default_generators[index].manual_seed(seed)


class _Welford:
    """Running mean and M2 (float64) of one gradient tensor over samples, plus the mean of |g|."""

    def __init__(self) -> None:
        self.count = 0
        self.mean: torch.Tensor | None = None
        self.m2: torch.Tensor | None = None
        self.abs_mean: torch.Tensor | None = None
        self.abs_m2: torch.Tensor | None = None

    def update(self, grad: torch.Tensor, track_abs_std: bool) -> None:
        g = grad.detach().to(torch.float64).flatten()
        self.count += 1
        a = g.abs()
        if self.count == 1:
            self.mean, self.m2 = g.clone(), torch.zeros_like(g)
            self.abs_mean = a.clone()
            self.abs_m2 = torch.zeros_like(g) if track_abs_std else None
            return
        delta = g - self.mean
        self.mean += delta / self.count
        self.m2 += delta * (g - self.mean)
        delta_abs = a - self.abs_mean
        self.abs_mean += delta_abs / self.count
        if track_abs_std:
            self.abs_m2 += delta_abs * (a - self.abs_mean)

    def reduce(self, name: str, lambda_std: str) -> LayerGradStats:
        std = torch.sqrt(self.m2 / self.count)
        keep = std > 0
        zico_sum = float((self.abs_mean[keep] / std[keep]).sum())
        lam_std = torch.sqrt(self.abs_m2 / self.count) if lambda_std == "abs" else std
        lam_keep = lam_std > 0
        kept = lam_std[lam_keep]
        return LayerGradStats(
            name=name,
            numel=int(std.numel()),
            n_zero_std=int((~lam_keep).sum()),
            inv_std_sum=float((1.0 / kept).sum()),
            zico_sum=zico_sum,
            mean_log_std=float(torch.log(kept).mean()) if kept.numel() else math.nan,
        )


# ------------------------------------------------------------------------------------------------- session
class ScoringSession:
    """Scores ``proxies`` on ``model`` with one batch; use ``score_network`` rather than this class directly."""

    def __init__(self, model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor | None,
                 proxies: str | Sequence[str], options: ScoringOptions) -> None:
        if not isinstance(model, nn.Module):
            raise ValueError(f"model must be a torch.nn.Module, got {type(model).__name__}")
        self.model = model
        self.specs = _resolve_proxies(proxies)
        self.options = options
        self.needs = set().union(*(spec.needs for spec in self.specs))
        self.adapter = options.output_adapter or default_output_adapter
        self._validate_inputs(inputs, targets)
        self._validate_model()

    # ------------------------------------------------------------------ validation
    def _validate_inputs(self, inputs: Any, targets: Any) -> None:
        opts = self.options
        if not isinstance(inputs, torch.Tensor):
            raise ValueError(f"inputs must be a tensor of shape (batch, ...), got {type(inputs).__name__}")
        if inputs.ndim < 2 or inputs.shape[0] == 0:
            raise ValueError(f"inputs must have a non-empty batch dimension first, got shape {tuple(inputs.shape)}")
        if not inputs.is_floating_point():
            raise ValueError(f"inputs have dtype {inputs.dtype}; convert images to float (and normalise) first")
        total = inputs.shape[0]
        if opts.lambda_samples == "batches":
            if total % opts.lambda_k:
                raise ValueError(f"lambda_samples='batches' needs inputs holding lambda_k={opts.lambda_k} equal "
                                 f"batches, but {total} samples do not divide by {opts.lambda_k}")
            batch = total // opts.lambda_k
        else:
            batch = total
        self.batch_size = batch
        needs_labels = [s.name for s in self.specs if s.needs_labels]
        if needs_labels:
            if targets is None:
                raise ValueError(f"proxies {needs_labels} need the batch's labels: pass targets")
        if targets is not None:
            if not isinstance(targets, torch.Tensor):
                raise ValueError(f"targets must be a tensor, got {type(targets).__name__}")
            if targets.shape[0] != total:
                raise ValueError(f"inputs hold {total} samples but targets hold {targets.shape[0]}; "
                                 "pass one label per input sample")
            if opts.loss_fn is None:
                if targets.ndim != 1 or targets.is_floating_point() or targets.dtype == torch.bool:
                    raise ValueError(f"targets must be class indices of shape (batch,) and an integer dtype for "
                                     f"the default cross-entropy (got shape {tuple(targets.shape)}, {targets.dtype});"
                                     " pass loss_fn=... for other targets")
                if targets.numel() and int(targets.min()) < 0:
                    raise ValueError(f"targets contain the negative label {int(targets.min())}; "
                                     "class indices must be in 0..num_classes-1")
        names = {s.name for s in self.specs}
        if self.needs & {"grad_stats"}:
            if opts.lambda_samples == "split" and total < opts.lambda_k:
                raise ValueError(f"{sorted(names & {'lswag', 'zico'})} split the batch into lambda_k="
                                 f"{opts.lambda_k} gradient samples, so they need a batch of at least "
                                 f"{opts.lambda_k}; got {total}. Use a larger batch (64 is the default)")
            if opts.lambda_samples == "per_sample" and min(total, opts.per_sample_count) < 2:
                raise ValueError(f"per-sample gradient statistics need at least 2 samples; got a batch of {total}")
        if "per_sample_grad_stats" in self.needs and total < 2:
            raise ValueError(f"zico_ps takes the std over per-sample gradients, so it needs a batch of at least 2;"
                             f" got {total}")
        if "input_grads" in self.needs and batch < 2:
            raise ValueError(f"jacov correlates the Jacobians of the samples, so it needs a batch of at least 2; "
                             f"got {batch}")
        self.inputs = inputs
        self.targets = targets

    def _validate_model(self) -> None:
        gradient_proxies = sorted(s.name for s in self.specs if s.needs & _GRAD_NEEDS)
        if gradient_proxies and not weight_modules(self.model):
            raise ValueError(f"{type(self.model).__name__} has no Conv1d/2d/3d or Linear layer, so the gradient "
                             f"proxies {gradient_proxies} have no weights to score")
        try:
            self.device = next(self.model.parameters()).device
            self.dtype = next(p for p in self.model.parameters() if p.is_floating_point()).dtype
        except StopIteration:
            raise ValueError(f"{type(self.model).__name__} has no parameters to score") from None

    # ------------------------------------------------------------------ isolation
    @contextlib.contextmanager
    def _working_model(self) -> Iterator[nn.Module]:
        model = self.model
        if self.options.copy_model:
            yield copy.deepcopy(model)
            return
        modes = [(m, m.training) for m in model.modules()]
        flags = [(p, p.requires_grad) for p in model.parameters()]
        buffers = [(b, b.detach().clone()) for b in model.buffers()]
        try:
            yield model
        finally:
            with torch.no_grad():
                for buf, saved in buffers:
                    buf.copy_(saved)
            for module, training in modes:
                module.training = training
            for param, flag in flags:
                param.requires_grad_(flag)

    # ------------------------------------------------------------------ passes
    def _logits(self, output: Any) -> torch.Tensor:
        return self.adapter(output)

    def _loss(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        if self.options.loss_fn is not None:
            return self.options.loss_fn(logits, targets)
        if logits.ndim != 2:
            raise _InvalidInput(f"the default cross-entropy needs logits of shape (batch, classes), the model gave "
                                f"{tuple(logits.shape)}; pass loss_fn=... or output_adapter=...")
        num_classes = logits.shape[1]
        if int(targets.max()) >= num_classes:
            raise _InvalidInput(f"targets contain label {int(targets.max())} but the model outputs {num_classes} "
                                f"classes; labels must be in 0..{num_classes - 1} (check num_classes)")
        return nn.functional.cross_entropy(logits, targets)

    @contextlib.contextmanager
    def _order_recorder(self, work: nn.Module) -> Iterator[dict[nn.Module, int]]:
        first_call: dict[nn.Module, int] = {}

        def record(module: nn.Module, _inputs: Any) -> None:
            first_call.setdefault(module, len(first_call))

        handles = [m.register_forward_pre_hook(record) for _, m in weight_modules(work)]
        try:
            yield first_call
        finally:
            for handle in handles:
                handle.remove()

    def _weight_list(self, work: nn.Module) -> tuple[list[str], list[nn.Module]]:
        pairs = weight_modules(work)
        for _, m in pairs:
            m.weight.requires_grad_(True)
        return [n for n, _ in pairs], [m for _, m in pairs]

    def _grad_stats_pass(self, work: nn.Module, chunks: list[torch.Tensor],
                         keep_mean: bool = False) -> GradStatsResult:
        names, modules = self._weight_list(work)
        weights = [m.weight for m in modules]
        accumulators = [_Welford() for _ in modules]
        track_abs = self.options.lambda_std == "abs"
        order: list[tuple[str, nn.Module]] = []
        for k, index in enumerate(chunks):
            with self._order_recorder(work) as first_call:
                logits = self._logits(work(self.inputs[index]))
            loss = self._loss(logits, self.targets[index])
            grads = torch.autograd.grad(loss, weights, allow_unused=True)
            if k == 0:
                used = {m for m, g in zip(modules, grads) if g is not None}
                if not used:
                    raise ProxyError("the loss does not depend on any Conv/Linear weight")
                order = order_weight_layers(work, first_call, used)
            for acc, grad in zip(accumulators, grads):
                if grad is not None:
                    acc.update(grad, track_abs)
        position = {m: i for i, m in enumerate(modules)}
        layers = [accumulators[position[m]].reduce(name, self.options.lambda_std) for name, m in order]
        mean_grads = None
        if keep_mean:
            mean_grads = WeightGrads(names=[n for n, _ in order], weights=[m.weight.detach() for _, m in order],
                                     grads=[accumulators[position[m]].mean.view_as(m.weight) for _, m in order])
        return GradStatsResult(layers=layers, num_samples=len(chunks), sample_sizes=[len(c) for c in chunks],
                               mean_grads=mean_grads)

    def _batch_pass(self, work: nn.Module, data: SessionData) -> None:
        """One forward of the batch: activation patterns / kernel, then weight and input gradients if needed."""
        needs = self.needs
        want_codes = "activations" in needs
        want_gram = "naswot_kernel" in needs
        want_wgrad = "batch_grads" in needs and not self._batch_grads_from_split
        want_igrad = "input_grads" in needs
        x = self.inputs[: self.batch_size]
        if want_igrad:
            x = x.detach().clone().requires_grad_(True)
        samples = x.shape[0]
        points: list[str] = []
        neurons: list[int] = []
        codes: list[torch.Tensor] = []
        gram = torch.zeros(samples, samples, dtype=torch.float64, device=self.device) if want_gram else None
        row_sums = torch.zeros(samples, dtype=torch.float64, device=self.device) if want_gram else None
        hook_seconds = {"pack": 0.0, "gram": 0.0}
        activation_error: list[str] = []
        handles = []
        if want_codes or want_gram:
            act_mods = activation_modules(work, self.options.activation_points)
            calls: dict[str, int] = {}

            def on_activation(name: str, _module: nn.Module, _inputs: Any, output: Any) -> None:
                if not isinstance(output, torch.Tensor) or activation_error:
                    return
                if output.ndim == 0 or output.shape[0] != samples:
                    activation_error.append(
                        f"activation point {name!r} has output shape {tuple(output.shape)}: the batch of {samples} "
                        "must be its first dimension (sequence-first layouts are not supported)")
                    return
                calls[name] = calls.get(name, 0) + 1
                points.append(name if calls[name] == 1 else f"{name}#{calls[name]}")
                with torch.no_grad():
                    active = output.detach().reshape(samples, -1) > 0
                    neurons.append(active.shape[1])
                    if want_codes:
                        start = time.perf_counter()
                        codes.append(pack_patterns(active))
                        hook_seconds["pack"] += time.perf_counter() - start
                    if want_gram:
                        start = time.perf_counter()
                        exact = torch.float32 if active.shape[1] < 2**24 else torch.float64
                        xf = active.to(exact)
                        gram.add_((xf @ xf.t()).to(torch.float64))
                        row_sums.add_(xf.sum(1, dtype=torch.float64))
                        hook_seconds["gram"] += time.perf_counter() - start

            for name, module in act_mods:
                handles.append(module.register_forward_hook(
                    lambda mod, inp, out, _name=name: on_activation(_name, mod, inp, out)))
            if not act_mods:
                activation_error.append(no_activation_message(work))
        names, modules = self._weight_list(work) if want_wgrad else ([], [])
        start = time.perf_counter()
        try:
            with torch.set_grad_enabled(want_wgrad or want_igrad), self._order_recorder(work) as first_call:
                logits = self._logits(work(x))
        finally:
            for handle in handles:
                handle.remove()
        forward_seconds = time.perf_counter() - start - hook_seconds["pack"] - hook_seconds["gram"]
        if (want_codes or want_gram) and not activation_error and not points:
            activation_error.append("activation modules exist but none was called in the forward pass; "
                                    + no_activation_message(work))
        for need, extra in (("activations", hook_seconds["pack"]), ("naswot_kernel", hook_seconds["gram"])):
            if need in needs:
                data.need_seconds[need] = forward_seconds + extra
                if activation_error:
                    data.errors[need] = activation_error[0]
        if (want_codes or want_gram) and not activation_error:
            result = ActivationResult(points=points, neurons=neurons, codes=codes if want_codes else None,
                                      gram=gram, row_sums=row_sums, samples=samples)
            data.results["activations"] = result
            data.results["naswot_kernel"] = result
        if want_wgrad:
            start = time.perf_counter()
            loss = self._loss(logits, self.targets[: self.batch_size])
            grads = torch.autograd.grad(loss, [m.weight for m in modules], allow_unused=True,
                                        retain_graph=want_igrad)
            used = {m for m, g in zip(modules, grads) if g is not None}
            order = order_weight_layers(work, first_call, used)
            by_module = {m: g for m, g in zip(modules, grads)}
            data.results["batch_grads"] = WeightGrads(
                names=[n for n, _ in order], weights=[m.weight.detach() for _, m in order],
                grads=[by_module[m] for _, m in order])
            data.need_seconds["batch_grads"] = forward_seconds + time.perf_counter() - start
        if want_igrad:
            start = time.perf_counter()
            (jacobian,) = torch.autograd.grad(logits.sum(), x)
            data.results["input_grads"] = jacobian.detach().reshape(samples, -1)
            data.need_seconds["input_grads"] = forward_seconds + time.perf_counter() - start

    def _synflow_pass(self, work: nn.Module) -> list[tuple[str, float]]:
        """Per weight layer Σ |θ ⊙ ∂R/∂θ| with θ -> |θ| (float64), R = sum of logits for an all-ones input."""
        work.eval()
        weight_ids = {id(m.weight) for _, m in weight_modules(work)}
        params = {}
        for name, p in work.named_parameters():
            params[name] = p.detach().to(torch.float64).abs().requires_grad_(id(p) in weight_ids)
        buffers = {name: (b.detach().to(torch.float64) if b.is_floating_point() else b)
                   for name, b in work.named_buffers()}
        ones = torch.ones((1, *self.inputs.shape[1:]), dtype=torch.float64, device=self.device)
        with self._order_recorder(work) as first_call:
            logits = self._logits(functional_call(work, {**params, **buffers}, (ones,)))
        names = [n for n, p in work.named_parameters() if id(p) in weight_ids]
        grads = torch.autograd.grad(logits.sum(), [params[n] for n in names], allow_unused=True)
        by_name = dict(zip(names, grads))
        module_of = {m: n + ".weight" for n, m in weight_modules(work)}
        used = {m for m, pname in module_of.items() if by_name.get(pname) is not None}
        order = order_weight_layers(work, first_call, used)
        out = []
        for layer_name, module in order:
            pname = module_of[module]
            out.append((layer_name, float((params[pname].detach() * by_name[pname]).abs().sum())))
        return out

    def _flops_pass(self, work: nn.Module) -> int:
        from torch.utils.flop_counter import FlopCounterMode

        work.eval()
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            self._logits(work(self.inputs[:1]))
        return int(counter.get_total_flops())

    def _chunks(self, plan: str) -> list[torch.Tensor]:
        total = self.inputs.shape[0]
        index = torch.arange(total, device=self.inputs.device)
        if plan == "per_sample":
            return [index[i: i + 1] for i in range(min(total, self.options.per_sample_count))]
        return list(torch.tensor_split(index, self.options.lambda_k))

    def _planned_passes(self) -> list[tuple[str, Callable[[nn.Module, SessionData], None]]]:
        needs, opts = self.needs, self.options
        passes: list[tuple[str, Callable]] = []
        lambda_plan = "per_sample" if opts.lambda_samples == "per_sample" else "split"

        def stats_pass(plan: str, targets: tuple[str, ...]) -> Callable:
            keep_mean = plan == "split" and self._batch_grads_from_split

            def run(work: nn.Module, data: SessionData) -> None:
                start = time.perf_counter()
                result = self._grad_stats_pass(work, self._chunks(plan), keep_mean=keep_mean)
                for need in targets:
                    data.results[need] = result
                    data.need_seconds[need] = time.perf_counter() - start
                if keep_mean:
                    data.results["batch_grads"] = result.mean_grads
                    data.need_seconds["batch_grads"] = time.perf_counter() - start
            return run

        if "grad_stats" in needs or self._batch_grads_from_split:
            shared = ("grad_stats", "per_sample_grad_stats") if (
                lambda_plan == "per_sample" and "per_sample_grad_stats" in needs) else ("grad_stats",)
            passes.append(("gradient statistics", stats_pass(lambda_plan, shared)))
        if "per_sample_grad_stats" in needs and not (lambda_plan == "per_sample" and "grad_stats" in needs):
            passes.append(("per-sample gradient statistics", stats_pass("per_sample", ("per_sample_grad_stats",))))
        if needs & _BATCH_NEEDS - ({"batch_grads"} if self._batch_grads_from_split else set()):
            passes.append(("batch", lambda work, data: self._batch_pass(work, data)))
        if "synflow_pass" in needs:
            def synflow(work: nn.Module, data: SessionData) -> None:
                start = time.perf_counter()
                data.results["synflow_pass"] = self._synflow_pass(work)
                data.need_seconds["synflow_pass"] = time.perf_counter() - start
            passes.append(("synflow", synflow))
        if "flops_pass" in needs:
            def flops(work: nn.Module, data: SessionData) -> None:
                start = time.perf_counter()
                data.results["flops_pass"] = self._flops_pass(work)
                data.need_seconds["flops_pass"] = time.perf_counter() - start
            passes.append(("flops", flops))
        return passes

    @functools.cached_property
    def _batch_grads_from_split(self) -> bool:
        """Whether the batch gradient (snip, grad_norm) is the mean of the K split gradients.

        True when the model has no BatchNorm (so a sample's output does not depend on the others) and the batch
        splits into K equal parts: the mean cross-entropy of the batch is then the mean of the parts' losses, and
        its gradient the mean of their gradients, so the split pass serves it without another backward.
        """
        opts = self.options
        return ("batch_grads" in self.needs and opts.lambda_samples == "split"
                and self.inputs.shape[0] % opts.lambda_k == 0
                and not any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in self.model.modules()))

    _PASS_NEEDS = {
        "gradient statistics": ("grad_stats", "per_sample_grad_stats", "batch_grads"),
        "per-sample gradient statistics": ("per_sample_grad_stats",),
        "batch": tuple(sorted(_BATCH_NEEDS)),
        "synflow": ("synflow_pass",),
        "flops": ("flops_pass",),
    }

    # ------------------------------------------------------------------ run
    def run(self) -> ProxyReport:
        session_start = time.perf_counter()
        opts = self.options
        devices = _cuda_devices()
        report = ProxyReport(settings=opts.to_settings())
        report.settings["batch_size"] = self.batch_size
        with torch.random.fork_rng(devices=devices), torch.enable_grad(), self._working_model() as work:
            data = SessionData(options=opts, params=count_parameters(work, opts.params_exclude),
                               batch_size=self.batch_size)
            data.need_seconds["labels"] = 0.0
            self.inputs = self.inputs.to(device=self.device, dtype=self.dtype)
            if self.targets is not None:
                self.targets = self.targets.to(self.device)
            initial_buffers = [(b, b.detach().clone()) for b in work.buffers()]
            for pass_name, run_pass in self._planned_passes():
                with torch.no_grad():
                    for buf, saved in initial_buffers:
                        buf.copy_(saved)
                work.train()
                _seed_pass(opts.seed, devices)
                start = time.perf_counter()
                try:
                    run_pass(work, data)
                except ValueError:  # bad input found during the pass (label range, output shape): caller's to fix
                    raise
                except Exception as exc:  # a model that cannot run this pass: the dependent proxies say why
                    log.debug("%s pass failed", pass_name, exc_info=True)
                    message = f"{pass_name} pass failed: {type(exc).__name__}: {exc}"
                    for need in self._PASS_NEEDS[pass_name]:
                        data.errors.setdefault(need, message)
                report.passes[pass_name] = time.perf_counter() - start
            for spec in self.specs:
                self._compute(spec, data, report)
        report.total_seconds = time.perf_counter() - session_start
        return report

    def _compute(self, spec: ProxySpec, data: SessionData, report: ProxyReport) -> None:
        keys = (spec.name, *spec.extra_values)
        start = time.perf_counter()
        try:
            missing = [need for need in spec.needs if need in data.errors]
            if missing and not spec.extra_values:
                raise ProxyError(data.errors[missing[0]])
            output = spec.compute(data, self.options)
        except ProxyError as exc:
            output = ProxyOutput(value=math.nan, extras={k: math.nan for k in spec.extra_values},
                                 errors={k: str(exc) for k in keys})
        own = time.perf_counter() - start

        def pass_seconds(needs: Sequence[str]) -> float:
            return sum(data.need_seconds.get(need, 0.0) for need in needs)

        values = {spec.name: output.value, **output.extras}
        for key in keys:
            value = float(values.get(key, math.nan))
            report.values[key] = value
            report.higher_is_better[key] = spec.higher_is_better
            needs = output.extra_needs.get(key, tuple(spec.needs))
            report.seconds[key] = pass_seconds(needs) + own
            if key in output.errors:
                report.status[key] = f"error: {output.errors[key]}"
            elif math.isnan(value):
                report.status[key] = f"nan: {output.notes.get(key, 'the value is not a number')}"
            elif math.isinf(value):
                report.status[key] = f"inf: {output.notes.get(key, 'the value is infinite')}"
            else:
                report.status[key] = "ok"
        if output.details:
            report.details[spec.name] = output.details


def score_network(model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor | None = None,
                  proxies: str | Sequence[str] = ("lswag",), *, loss_fn: Callable | None = None,
                  layer_interval: tuple[int, int] | None = None, **options: Any) -> ProxyReport:
    """Score an (untrained) network with zero-cost proxies on one batch, leaving the model untouched.

    Args:
        model: any ``nn.Module`` mapping ``inputs`` to logits (see ``output_adapter`` otherwise).
        inputs: float tensor (batch, ...), real training images; moved to the model's device and dtype.
        targets: int64 class indices (batch,); needed by the label-based proxies (lswag, zico, snip, ...).
        proxies: names from ``available_proxies()`` or ``"all"``.
        loss_fn: ``loss_fn(logits, targets) -> scalar`` replacing the default cross-entropy.
        layer_interval: inclusive depth-decile bins (lo, hi), 0..10, of the layers Λ uses (None: all).
        **options: see ``ScoringOptions`` (lambda_samples, lambda_k, lambda_std, psi_layers, activation_points,
            swap_mu, swap_sigma, copy_model, seed, output_adapter, ...).

    Returns:
        a ``ProxyReport``: ``values`` (higher is better unless ``higher_is_better`` says otherwise), ``status``,
        ``seconds``, ``details``. Raises ``ValueError`` on invalid arguments, naming what to change.
    """
    opts = ScoringOptions.from_kwargs(loss_fn=loss_fn, layer_interval=layer_interval, **options)
    return ScoringSession(model, inputs, targets, proxies, opts).run()
