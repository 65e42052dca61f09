"""The batch pass: one forward of the batch with activation hooks (Ψ, SWAP codes; the NASWOT kernel), then the loss
gradient w.r.t. the weights (snip, grad_norm) and the gradient of the summed logits w.r.t. the inputs (jacov), both
from the same graph. One pass, several products: the planner gives it the wanted ones among its needs.
"""

from __future__ import annotations

import time
import weakref
from typing import Any

import torch
from torch import nn

from lswag_lightning.proxies.forward import ProbeRunner
from lswag_lightning.proxies.grad_stats import GRADIENT_COVERAGE
from lswag_lightning.proxies.layers import activation_modules, no_activation_message, order_weight_layers, pack_patterns
from lswag_lightning.proxies.options import ScoringOptions
from lswag_lightning.proxies.registry import register_pass
from lswag_lightning.proxies.results import ActivationResult, PassOutput, ProxyError, SessionContext, WeightGrads

ACTIVATION_NEEDS = frozenset({"activations", "naswot_kernel"})
#: what the activation proxies measure (the ``what`` of their coverage)
ACTIVATION_COVERAGE = "the parameters of the modules run before the last activation point (the readout left out)"


def _check_batch(context: SessionContext) -> dict[str, str]:
    """Input gradients need float inputs and two samples; named activation points must exist."""
    unavailable = {}
    if "input_grads" in context.needs:
        if not context.inputs.is_floating_point():
            # Only jacov differentiates with respect to the inputs; every other proxy scores integer inputs.
            unavailable["input_grads"] = (
                f"jacov differentiates the logits with respect to the inputs, so it needs floating-point inputs; "
                f"the probe inputs are {context.inputs.dtype} (token ids or raw pixels): leave jacov out, or pass "
                "float inputs (normalised images, or embeddings with model_fn/forward_fn)"
            )
        elif context.batch_size < 2:
            raise ValueError(
                f"jacov correlates the Jacobians of the samples, so it needs a batch of at least 2; got "
                f"{context.batch_size}"
            )
    if context.options.activation_points is not None and context.needs & ACTIVATION_NEEDS:
        activation_modules(context.model, context.options.activation_points)  # ValueError naming unknown modules
    return unavailable


@register_pass(
    "batch",
    produces={
        "activations": "binarised outputs of every activation point on the whole batch: one forward",
        "naswot_kernel": "the Hamming kernel of activation codes on the whole batch (shares the activation forward)",
        "batch_grads": "weight gradients of the loss on the whole batch: one forward+backward",
        "input_grads": "gradient of the summed logits with respect to the inputs (shares the batch forward)",
    },
    weight_gradients=("batch_grads",),
    loss=("batch_grads",),
    validate=_check_batch,
)
def batch_pass(probe: ProbeRunner, work: nn.Module, products: frozenset[str]) -> PassOutput:
    """One forward of the batch: activation patterns / kernel, then weight and input gradients if needed.

    Returns results, errors and seconds keyed by need; an activation-detection problem fails only the
    activation needs, never the gradients of the same forward.
    """
    want_codes = "activations" in products
    want_gram = "naswot_kernel" in products
    want_wgrad = "batch_grads" in products
    want_igrad = "input_grads" in products
    x = probe.inputs[: probe.batch_size]
    y = probe.targets_at(slice(0, probe.batch_size))
    if want_igrad:
        x = x.detach().clone().requires_grad_(True)
    samples = x.shape[0]
    results: dict[str, Any] = {}
    errors: dict[str, str] = {}
    seconds: dict[str, float] = {}
    hooks = _ActivationHooks(work, probe.options, samples, want_codes, want_gram, x.device)
    names, modules = probe.weight_list(work) if want_wgrad else ([], [])
    start = time.perf_counter()
    try:
        with torch.set_grad_enabled(want_wgrad or want_igrad), probe.order_recorder(work) as first_call:
            logits = probe.logits(work, x, y)
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
                    results[need] = hooks.result(probe, logits)
    if want_wgrad:
        start = time.perf_counter()
        loss = probe.loss(logits, y)
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
            coverage=probe.coverage([m.weight for _, m in order], GRADIENT_COVERAGE),
        )
        seconds["batch_grads"] = forward_seconds + time.perf_counter() - start
    if want_igrad:
        start = time.perf_counter()
        (jacobian,) = torch.autograd.grad(logits.sum(), x)
        results["input_grads"] = jacobian.detach().reshape(samples, -1)
        seconds["input_grads"] = forward_seconds + time.perf_counter() - start
    return PassOutput(results, errors, seconds)


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
        # the call order of the modules that hold parameters and of the activation points, for the coverage
        self.events = 0
        self.first_call: dict[nn.Module, int] = {}
        self.outputs: dict[nn.Module, weakref.ref] = {}  # each module's last output, to find the readout
        self.last_activation = -1
        if want_codes or want_gram:
            self.modules = activation_modules(work, options.activation_points)
            for name, module in self.modules:
                self.handles.append(
                    module.register_forward_hook(lambda mod, inp, out, _name=name: self.on_activation(_name, out))
                )
            for module in work.modules():
                if next(module.parameters(recurse=False), None) is not None:
                    self.handles.append(module.register_forward_pre_hook(lambda mod, _args: self.on_call(mod)))
                    self.handles.append(module.register_forward_hook(self.on_output))

    def on_call(self, module: nn.Module) -> None:
        self.first_call.setdefault(module, self.events)
        self.events += 1

    def on_output(self, module: nn.Module, _args: Any, output: Any) -> None:
        if isinstance(output, torch.Tensor):
            self.outputs[module] = weakref.ref(output)

    def on_activation(self, name: str, output: Any) -> None:
        if isinstance(output, (tuple, list)) and output and isinstance(output[0], torch.Tensor):
            output = output[0]  # a recurrent layer named in activation_points: (outputs, hidden state)
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
        self.last_activation = self.events
        self.events += 1
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

    def result(self, probe: ProbeRunner, logits: torch.Tensor) -> ActivationResult:
        """The patterns, with the coverage: the parameters of the modules called before the last activation point
        (only they can shape the patterns), out of all but the readout's (the modules whose output is the logits:
        they map the patterns to the outputs, which activation-pattern proxies leave out by definition)."""
        upstream = [m for m, index in self.first_call.items() if index < self.last_activation]
        measured = [p for m in upstream for p in m.parameters(recurse=False)]
        readout = [p for m, ref in self.outputs.items() if ref() is logits for p in m.parameters(recurse=False)]
        return ActivationResult(
            points=self.points,
            neurons=self.neurons,
            codes=self.codes if self.want_codes else None,
            gram=self.gram,
            row_sums=self.row_sums,
            samples=self.samples,
            coverage=None if probe.census is None else probe.census.coverage(measured, ACTIVATION_COVERAGE, readout),
        )
