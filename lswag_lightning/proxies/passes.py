"""The engine's passes over the working model: what each one computes, given the probe batch.

``ProbePasses`` holds the probe batch and the ways to run the model on it (``forward_fn``, the output adapter, the
loss); each ``*_pass`` method computes one kind of shared result. Which passes run, and which needs each one
delivers, is planned in ``engine.py`` (passes declared as data); a pass never decides that for itself.

- gradient statistics: K forward+backward passes (K split parts, or single samples), Welford statistics per
  weight element in float64 (Λ, ZiCo; ``zico_ps`` on single samples).
- the batch pass: one forward of the batch with activation hooks (Ψ, SWAP codes; the NASWOT kernel), then the
  loss gradient w.r.t. the weights (snip, grad_norm) and the gradient of the summed logits w.r.t. the inputs
  (jacov), both from the same graph.
- synflow: a float64 pass of an all-ones input through |weights| (eval mode, via ``functional_call``).
- flops: one sample under ``torch.utils.flop_counter`` (eval mode, no grad).
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable, Iterator
from typing import Any

import torch
from torch import nn
from torch.func import functional_call

from lswag_lightning.proxies.layers import (
    activation_modules,
    no_activation_message,
    order_weight_layers,
    pack_patterns,
    weight_modules,
)
from lswag_lightning.proxies.options import ScoringOptions
from lswag_lightning.proxies.results import (
    ActivationResult,
    GradStatsResult,
    LayerGradStats,
    ProxyError,
    WeightGrads,
)


class InvalidInput(ValueError):
    """Bad input found during a pass (e.g. a label out of range); the engine checks these before any pass, this
    is the fallback when that check could not run."""


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


class _ProbeCall(nn.Module):
    """``probe.forward(module, inputs, targets)`` as a module, so that ``functional_call`` can re-parametrise it."""

    def __init__(self, module: nn.Module, probe: ProbePasses, targets: torch.Tensor | None) -> None:
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


class ProbePasses:
    """Runs the model on the probe batch: the shared passes of one scoring session.

    ``inputs`` (batch, ...) and ``targets`` are already on the model's device; ``adapter`` maps a model output to
    logits; ``reseed()`` restarts the pass's random streams (used after an extra forward, so the pass sees the
    same stream as without it). ``single_value_norm``: whether a BatchNorm sees one value per channel for a single
    sample (the engine's one-sample check sets it; see ``single_sample_normalisation``).
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
    ) -> None:
        self.inputs = inputs
        self.targets = targets
        self.batch_size = batch_size
        self.options = options
        self.adapter = adapter
        self.reseed = reseed
        self.single_value_norm = single_value_norm

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

    # ------------------------------------------------------------------ gradient statistics
    def grad_stats_pass(self, work: nn.Module, chunks: list[torch.Tensor], keep_mean: bool = False) -> GradStatsResult:
        """Welford statistics of each weight layer's loss gradient over the chunks (K gradient samples).

        Weight layers the loss never reaches (an auxiliary head whose output the adapter drops, an unused branch)
        get no gradient: they are left out of the statistics and listed in ``no_gradient``.
        """
        names, modules = self.weight_list(work)
        weights = [m.weight for m in modules]
        accumulators = [_Welford() for _ in modules]
        track_abs = self.options.lambda_std == "abs"
        order: list[tuple[str, nn.Module]] = []
        single = all(len(c) == 1 for c in chunks)
        with self.single_sample_normalisation(work, torch.cat(chunks), enabled=single) as new_sample:
            for k, index in enumerate(chunks):
                new_sample()
                with self.order_recorder(work) as first_call:
                    logits = self.logits(work, self.inputs[index], self.targets_at(index))
                loss = self.loss(logits, self.targets[index])
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
        order = [(name, m) for name, m in order if accumulators[position[m]].count > 0]
        kept = {m for _, m in order}
        layers = [accumulators[position[m]].reduce(name, self.options.lambda_std) for name, m in order]
        mean_grads = None
        if keep_mean:
            mean_grads = WeightGrads(
                names=[n for n, _ in order],
                weights=[m.weight.detach() for _, m in order],
                grads=[accumulators[position[m]].mean.view_as(m.weight) for _, m in order],
            )
        no_gradient = [n for n, m in zip(names, modules) if m not in kept]
        if mean_grads is not None:
            mean_grads.no_gradient = no_gradient
        return GradStatsResult(
            layers=layers,
            num_samples=len(chunks),
            sample_sizes=[len(c) for c in chunks],
            mean_grads=mean_grads,
            no_gradient=no_gradient,
        )

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

    # ------------------------------------------------------------------ the batch pass
    def batch_pass(
        self, work: nn.Module, products: frozenset[str]
    ) -> tuple[dict[str, Any], dict[str, str], dict[str, float]]:
        """One forward of the batch: activation patterns / kernel, then weight and input gradients if needed.

        Returns (results, errors, seconds) keyed by need; an activation-detection problem fails only the
        activation needs, never the gradients of the same forward.
        """
        want_codes = "activations" in products
        want_gram = "naswot_kernel" in products
        want_wgrad = "batch_grads" in products
        want_igrad = "input_grads" in products
        x = self.inputs[: self.batch_size]
        y = self.targets_at(slice(0, self.batch_size))
        if want_igrad:
            x = x.detach().clone().requires_grad_(True)
        samples = x.shape[0]
        results: dict[str, Any] = {}
        errors: dict[str, str] = {}
        seconds: dict[str, float] = {}
        hooks = _ActivationHooks(work, self.options, samples, want_codes, want_gram, x.device)
        names, modules = self.weight_list(work) if want_wgrad else ([], [])
        start = time.perf_counter()
        try:
            with torch.set_grad_enabled(want_wgrad or want_igrad), self.order_recorder(work) as first_call:
                logits = self.logits(work, x, y)
        finally:
            hooks.remove()
        forward_seconds = time.perf_counter() - start - hooks.seconds["pack"] - hooks.seconds["gram"]
        if want_codes or want_gram:
            problem = hooks.problem()
            for need, extra in (("activations", hooks.seconds["pack"]), ("naswot_kernel", hooks.seconds["gram"])):
                if need in products:
                    seconds[need] = forward_seconds + extra
                    if problem:
                        errors[need] = problem
                    else:
                        results[need] = hooks.result()
        if want_wgrad:
            start = time.perf_counter()
            loss = self.loss(logits, y)
            grads = torch.autograd.grad(loss, [m.weight for m in modules], allow_unused=True, retain_graph=want_igrad)
            used = {m for m, g in zip(modules, grads) if g is not None}
            if not used:
                raise ProxyError("the loss does not depend on any Conv/Linear weight")
            order = [(n, m) for n, m in order_weight_layers(work, first_call, used) if m in used]
            by_module = dict(zip(modules, grads))
            results["batch_grads"] = WeightGrads(
                names=[n for n, _ in order],
                weights=[m.weight.detach() for _, m in order],
                grads=[by_module[m] for _, m in order],
                no_gradient=[n for n, m in zip(names, modules) if m not in used],
            )
            seconds["batch_grads"] = forward_seconds + time.perf_counter() - start
        if want_igrad:
            start = time.perf_counter()
            (jacobian,) = torch.autograd.grad(logits.sum(), x)
            results["input_grads"] = jacobian.detach().reshape(samples, -1)
            seconds["input_grads"] = forward_seconds + time.perf_counter() - start
        return results, errors, seconds

    # ------------------------------------------------------------------ synflow and flops
    def synflow_pass(self, work: nn.Module) -> list[tuple[str, float]]:
        """Per weight layer Σ |θ ⊙ ∂R/∂θ| with θ -> |θ| (float64), R = sum of logits for an all-ones input.

        The all-ones input has the probe's own dtype when that is not floating point (token ids of 1), float64
        otherwise; with ``forward_fn`` the first sample's targets are passed along.
        """
        work.eval()
        weight_ids = {id(m.weight) for _, m in weight_modules(work)}
        params = {}
        for name, p in work.named_parameters():
            params[name] = p.detach().to(torch.float64).abs().requires_grad_(id(p) in weight_ids)
        buffers = {
            name: (b.detach().to(torch.float64) if b.is_floating_point() else b) for name, b in work.named_buffers()
        }
        dtype = torch.float64 if self.inputs.is_floating_point() else self.inputs.dtype
        ones = torch.ones((1, *self.inputs.shape[1:]), dtype=dtype, device=self.inputs.device)
        with self.order_recorder(work) as first_call:
            logits = self.adapter(
                self.functional_forward(work, {**params, **buffers}, ones, self.targets_at(slice(0, 1)))
            )
        names = [n for n, p in work.named_parameters() if id(p) in weight_ids]
        grads = torch.autograd.grad(logits.sum(), [params[n] for n in names], allow_unused=True)
        by_name = dict(zip(names, grads))
        module_of = {m: n + ".weight" for n, m in weight_modules(work)}
        used = {m for m, pname in module_of.items() if by_name.get(pname) is not None}
        out = []
        for layer_name, layer in order_weight_layers(work, first_call, used):
            if layer in used:
                pname = module_of[layer]
                out.append((layer_name, float((params[pname].detach() * by_name[pname]).abs().sum())))
        return out

    def flops_pass(self, work: nn.Module) -> int:
        from torch.utils.flop_counter import FlopCounterMode

        work.eval()
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            self.logits(work, self.inputs[:1], self.targets_at(slice(0, 1)))
        return int(counter.get_total_flops())


def check_logits_for_cross_entropy(logits: torch.Tensor, targets: torch.Tensor, error: type[Exception]) -> None:
    """The default loss's requirements: (batch, classes) logits and labels below the class count."""
    if logits.ndim != 2:
        raise error(
            f"the default cross-entropy needs logits of shape (batch, classes), the model gave "
            f"{tuple(logits.shape)}; pass loss_fn=... or output_adapter=..."
        )
    num_classes = logits.shape[1]
    if targets.numel() and int(targets.max()) >= num_classes:
        raise error(
            f"targets contain label {int(targets.max())} but the model outputs {num_classes} "
            f"classes; labels must be in 0..{num_classes - 1} (check num_classes)"
        )


class _ActivationHooks:
    """Forward hooks on the activation points of one batch forward: bit-packed patterns and the NASWOT kernel."""

    def __init__(
        self,
        work: nn.Module,
        options: ScoringOptions,
        samples: int,
        want_codes: bool,
        want_gram: bool,
        device: torch.device,
    ) -> None:
        self.samples = samples
        self.want_codes, self.want_gram = want_codes, want_gram
        self.points: list[str] = []
        self.neurons: list[int] = []
        self.codes: list[torch.Tensor] = []
        self.gram = torch.zeros(samples, samples, dtype=torch.float64, device=device) if want_gram else None
        self.row_sums = torch.zeros(samples, dtype=torch.float64, device=device) if want_gram else None
        self.seconds = {"pack": 0.0, "gram": 0.0}
        self.errors: list[str] = []
        self.calls: dict[str, int] = {}
        self.handles = []
        self.modules: list[tuple[str, nn.Module]] = []
        self.work = work
        if want_codes or want_gram:
            self.modules = activation_modules(work, options.activation_points)
            for name, module in self.modules:
                self.handles.append(
                    module.register_forward_hook(lambda mod, inp, out, _name=name: self.on_activation(_name, out))
                )

    def on_activation(self, name: str, output: Any) -> None:
        if not isinstance(output, torch.Tensor) or self.errors:
            return
        samples = self.samples
        if output.ndim == 0 or output.shape[0] != samples:
            self.errors.append(
                f"activation point {name!r} has output shape {tuple(output.shape)}: the batch of "
                f"{samples} must be its first dimension (sequence-first layouts are not supported)"
            )
            return
        self.calls[name] = self.calls.get(name, 0) + 1
        self.points.append(name if self.calls[name] == 1 else f"{name}#{self.calls[name]}")
        with torch.no_grad():
            active = output.detach().reshape(samples, -1) > 0
            self.neurons.append(active.shape[1])
            if self.want_codes:
                start = time.perf_counter()
                self.codes.append(pack_patterns(active))
                self.seconds["pack"] += time.perf_counter() - start
            if self.want_gram:
                start = time.perf_counter()
                exact = torch.float32 if active.shape[1] < 2**24 else torch.float64
                xf = active.to(exact)
                gram = (xf @ xf.t()).to(torch.float64)
                self.gram.add_(gram)
                self.row_sums.add_(gram.diagonal())  # x is 0/1, so Σ_j x_ij = Σ_j x_ij² (exact counts)
                self.seconds["gram"] += time.perf_counter() - start

    def remove(self) -> None:
        for handle in self.handles:
            handle.remove()

    def problem(self) -> str | None:
        if self.errors:
            return self.errors[0]
        if not self.modules:
            return no_activation_message(self.work)
        if not self.points:
            return "activation modules exist but none was called in the forward pass; " + no_activation_message(
                self.work
            )
        return None

    def result(self) -> ActivationResult:
        return ActivationResult(
            points=self.points,
            neurons=self.neurons,
            codes=self.codes if self.want_codes else None,
            gram=self.gram,
            row_sums=self.row_sums,
            samples=self.samples,
        )
