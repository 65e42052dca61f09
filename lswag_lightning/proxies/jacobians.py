"""Per-sample Jacobians of read logits (B, K) with respect to single parameter elements, without ``vmap``.

VKDNW needs J[n, k, p] = ∂r_{n,k}/∂θ_p[0] for every sample n, output k and sampled tensor p (element 0 of each).
In eval mode the samples of a batch are independent, so the batch is run once and these come from, per tensor:

- ``hooks`` (the fast path, most tensors): K backward passes of the batch (cotangent: output k of every sample), with
  no weight gradient computed; each standard layer's per-sample derivative is read from its input and the gradient at
  its output (``element_grads.py``). A tensor takes this path only when every use of it in the forward is inside a
  call of a standard layer that owns it (a ``TorchFunctionMode`` records the uses: a tied embedding used again by a
  functional head, or ``MultiheadAttention``'s ``out_proj`` weight read by the attention function, are not), and
  every such call keeps each sample in its own block of rows: on a forward of two samples, the gradient of sample
  0's logits must be 0 outside the call's first block of rows and sample 1's outside the second (a (T, B, C)
  layout, interleaved (B·T, C) rows or a batch-independent input fail it). The derivative of a tensor used in
  several calls is the sum over its calls.
- ``jvp`` (parameters used outside a standard layer: a class token, a position embedding, LSTM/GRU weights, custom
  layers): one forward-mode product per tensor (tangent: element 0) gives its column for every sample and output at
  once; attention runs the math kernel and MKL-DNN is off during it (their fused CPU kernels have no forward-mode
  rule).
- ``loop`` (the fallback): one sample at a time, K backward passes each: when forward mode fails for an operation, or
  when the samples are not independent (changing sample 0 changed sample 1's logits: a BatchNorm without running
  statistics in eval mode normalises over the batch), in which case each sample's logits are its own forward's, as
  a batch of one.

A forward that runs part of the model with gradients disabled (``torch.no_grad()`` inside ``forward``, or
``torch.utils.checkpoint(..., use_reentrant=True)``) cannot be differentiated there: a ``ProxyError`` says so.

Every method computes the same number, up to floating-point summation order; ``methods`` reports which one each
tensor took. Run ``per_sample_jacobians`` inside ``swapped.run_swapped`` (weights swapped for the backward too).
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import torch
from torch import nn
from torch.autograd import forward_ad
from torch.overrides import TorchFunctionMode
from torch.utils._pytree import tree_leaves

from lswag_lightning.proxies.element_grads import overrides_forward, rule_for, same_as_base, statically_eligible
from lswag_lightning.proxies.results import ProxyError
from lswag_lightning.proxies.swapped import run_swapped

Forward = Callable[[torch.Tensor, slice], torch.Tensor]  # (inputs, sample slice) -> read logits (n, K)


@dataclass
class JacobianResult:
    jacobian: torch.Tensor  # (B, K, P) float64
    logits: torch.Tensor  # (B, K) read logits of the batch forward, float64
    methods: dict[str, str]  # sampled tensor -> "hooks" | "jvp" | "loop" | "unused"
    independent: bool = True  # whether changing one sample left the others' logits unchanged


@dataclass
class _Call:
    module: nn.Module
    inputs: torch.Tensor
    output: torch.Tensor


@dataclass
class _Recorder:
    """Forward hooks on the layers owning sampled tensors, and the record of every use of a sampled tensor."""

    owners: dict[nn.Module, list[str]]  # standard layer -> its sampled tensors' names (as "weight"/"bias" -> name)
    names_by_id: dict[int, str]  # id(sampled tensor) -> name
    calls: list[_Call] = field(default_factory=list)
    outside: set[str] = field(default_factory=set)  # tensors used outside a call of a layer owning them
    stack: list[nn.Module] = field(default_factory=list)
    active: bool = False
    without_autograd: set[str] = field(default_factory=set)  # tensors of calls run with gradients disabled

    @contextlib.contextmanager
    def recording(self) -> Iterator[list[_Call]]:
        self.calls, self.active = [], True
        handles = []
        for module in self.owners:
            handles.append(module.register_forward_pre_hook(self._enter))
            handles.append(module.register_forward_hook(self._leave))
        try:
            with _UseTracker(self):
                yield self.calls
        finally:
            self.active = False
            for handle in handles:
                handle.remove()

    def _enter(self, module: nn.Module, args: tuple) -> None:
        if self.active:
            self.stack.append(module)

    def _leave(self, module: nn.Module, args: tuple, output: torch.Tensor) -> torch.Tensor | None:
        if not self.active:
            return None
        self.stack.pop()
        if not torch.is_grad_enabled():  # torch.no_grad() in the forward, or reentrant checkpointing
            self.without_autograd.update(self.owners[module])
        if not (args and isinstance(args[0], torch.Tensor) and isinstance(output, torch.Tensor)):
            self.outside.update(self.owners[module])  # a call this rule cannot read
            return None
        if overrides_forward(module):
            self.active = False  # the check below reads the tensors: not a use
            try:
                if not same_as_base(module, args[0], output):
                    self.outside.update(self.owners[module])
                    return None
            finally:
                self.active = True
        self.calls.append(_Call(module, args[0], output))
        # the next layer may modify the output in place (ReLU(inplace=True)): it gets a copy, ours stays intact
        return output.clone()


class _UseTracker(TorchFunctionMode):
    """Marks a sampled tensor as used outside its layers when an operation outside a call of a layer owning it takes
    it and returns a tensor (metadata reads such as ``.shape`` return none)."""

    def __init__(self, recorder: _Recorder) -> None:
        super().__init__()
        self.recorder = recorder

    def __torch_function__(self, func, types, args=(), kwargs=None):
        result = func(*args, **(kwargs or {}))
        recorder = self.recorder
        if recorder.active and any(isinstance(r, torch.Tensor) for r in tree_leaves(result)):
            current = recorder.stack[-1] if recorder.stack else None
            for leaf in tree_leaves((args, kwargs)):
                name = recorder.names_by_id.get(id(leaf)) if isinstance(leaf, torch.Tensor) else None
                if name is not None and (current is None or name not in recorder.owners.get(current, ())):
                    recorder.outside.add(name)
        return result


def _owners(work: nn.Module, state: dict[str, torch.Tensor], sampled: list[str]) -> dict[nn.Module, dict[str, str]]:
    """Standard layers -> {their attribute ("weight"/"bias") -> sampled tensor name}; tied tensors have several."""
    first_name = {id(p): n for n, p in work.named_parameters()}
    wanted = set(sampled)
    owners: dict[nn.Module, dict[str, str]] = {}
    for module in work.modules():
        for attr, param in module.named_parameters(recurse=False):
            name = first_name.get(id(param))
            if name in wanted and statically_eligible(module):
                owners.setdefault(module, {})[attr] = name
    return owners


def _changed_rows(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Rows (dim 0) where two runs differ beyond round-off (relative to the tensor's scale)."""
    diff = (a.detach() - b.detach()).abs().reshape(a.shape[0], -1)
    if not a.is_floating_point():
        return diff.amax(dim=1) > 0
    scale = a.detach().abs().amax().clamp_min(1e-30)
    return diff.amax(dim=1) > 1e-5 * scale


#: one forward-mode product (``_jvp_column``) costs 3 to 7 backward passes of the batch (``benchmarks/vkdnw_check.py
#: paths``, docs/proxies/vkdnw.md); the hook path costs one backward pass per needed output, so with more needed
#: outputs than this many per hook tensor (a 1000-class head and fewer than 125 hook tensors) forward mode is cheaper
FORWARD_MODE_FACTOR = 8

#: rows per sample of a call whose output gradient was 0 on the two check samples: its rows cannot be told apart;
#: its tensors keep the hook path only if the gradient is 0 on the whole batch too (then it adds nothing)
UNSEEN = -1


def _nonzero_rows(grad: torch.Tensor | None, rows: int) -> torch.Tensor:
    if grad is None:
        return torch.zeros(rows, dtype=torch.bool)
    return (grad.detach().reshape(rows, -1) != 0).any(dim=1).cpu()


def _rows_per_sample(main: _Call, pair: _Call, influence: tuple[torch.Tensor | None, ...], batch: int) -> int | None:
    """Rows of each sample in this call of the batch forward when rows are samples (sample n = the n-th block of
    rows), else None. ``pair``: the same call on samples (0, 1); ``influence``: the gradients at its output of
    sample 0's and of sample 1's logits. Rows are samples when sample 0's logits depend on the first block of rows
    only and sample 1's on the second only (in eval mode these gradients are exactly 0 elsewhere)."""
    if main.module is not pair.module or pair.output.shape[0] != pair.inputs.shape[0]:
        return None
    rows = pair.output.shape[0]
    if rows % 2 or main.output.shape[0] != batch * (rows // 2) or main.inputs.shape[0] != main.output.shape[0]:
        return None
    per = rows // 2
    first, second = (_nonzero_rows(g, rows) for g in influence)
    if not (bool(first.any()) or bool(second.any())):
        # nothing reaches the logits from this call on these samples: without a gradient path any layout gives 0;
        # with a path whose gradient is 0 here (an output multiplied by 0), the batch's own gradients decide
        return per if all(g is None for g in influence) else UNSEEN
    return per if not bool(first[per:].any()) and not bool(second[:per].any()) else None


def _element(tensor: torch.Tensor) -> torch.Tensor:
    """A one-hot tangent at flat index 0 of ``tensor``."""
    onehot = torch.zeros_like(tensor).reshape(-1)
    onehot[0] = 1
    return onehot.reshape(tensor.shape)


def _hook_columns(
    logits: torch.Tensor,
    calls: list[_Call],
    rows: list[int | None],
    owners: dict[nn.Module, dict[str, str]],
    names: set[str],
    outputs_needed: list[int],
) -> tuple[dict[str, torch.Tensor], set[str]]:
    """(B, K) columns of the hook-path tensors ``names``: one backward pass per needed output to the calls' outputs;
    and the tensors of an ``UNSEEN`` call whose gradient is not 0 on the batch (their rows cannot be attributed)."""
    batch, classes = logits.shape
    columns = {name: torch.zeros(batch, classes, dtype=torch.float64, device=logits.device) for name in names}
    used = [(call, per) for call, per in zip(calls, rows) if per and set(owners[call.module].values()) & names]
    outputs = [call.output for call, _ in used]
    unattributed: set[str] = set()
    if not outputs:
        return columns, unattributed
    for k in outputs_needed:
        grads = torch.autograd.grad(logits[:, k].sum(), outputs, retain_graph=True, allow_unused=True)
        for (call, per), grad in zip(used, grads):
            if grad is None:
                continue
            if per == UNSEEN:
                if bool(grad.any()):
                    unattributed.update(owners[call.module].values())
                continue
            values = rule_for(call.module)(call.module, call.inputs.detach(), grad)
            for attr, value in values.items():
                name = owners[call.module].get(attr)
                if name in names:
                    columns[name][:, k] += value.to(torch.float64).reshape(batch, per).sum(dim=1)
    return columns, unattributed


@contextlib.contextmanager
def _forward_mode_kernels() -> Iterator[None]:
    """Kernels with forward-mode rules: the math attention, no MKL-DNN and no fused multi-head-attention inference
    path (``nn.MultiheadAttention``, ``nn.TransformerEncoderLayer``: their fused CPU kernels have none)."""
    from torch.nn.attention import SDPBackend, sdpa_kernel

    fastpath = torch.backends.mha.get_fastpath_enabled()
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*TF32 acceleration on top of oneDNN.*")
        with sdpa_kernel(SDPBackend.MATH), torch.backends.mkldnn.flags(enabled=False):
            torch.backends.mha.set_fastpath_enabled(False)
            try:
                yield
            finally:
                torch.backends.mha.set_fastpath_enabled(fastpath)


def _jvp_column(
    work: nn.Module, state: dict[str, torch.Tensor], name: str, forward: Forward, x: torch.Tensor
) -> torch.Tensor:
    """(B, K): ∂r/∂θ_name[0] for every sample, one forward-mode product."""
    # without autograd: with it, every primal and tangent operation is also recorded for a backward never taken
    # (twice the time); the fused inference paths this would enable are off in _forward_mode_kernels
    with _forward_mode_kernels(), forward_ad.dual_level(), torch.no_grad():
        dual = forward_ad.make_dual(state[name].detach(), _element(state[name]))
        out = run_swapped(work, {name: dual}, lambda: forward(x, slice(0, x.shape[0])))
        tangent = forward_ad.unpack_dual(out).tangent
    if tangent is None:  # the output does not depend on this tensor
        return torch.zeros(out.shape, dtype=torch.float64, device=out.device)
    return tangent.detach().to(torch.float64)


def _loop_columns(
    state: dict[str, torch.Tensor], names: list[str], forward: Forward, x: torch.Tensor, outputs_needed: list[int]
) -> tuple[torch.Tensor, torch.Tensor]:
    """One sample at a time (a batch of one), a backward pass per needed output: the (B, K, len(names)) columns
    (element 0 of the full gradients) and each sample's own logits (B, K)."""
    tensors = [state[name] for name in names]
    columns, logits = [], []
    for n in range(x.shape[0]):
        out = forward(x[n : n + 1], slice(n, n + 1))[0]
        rows = torch.zeros(out.shape[0], len(names), dtype=torch.float64, device=x.device)
        for k in outputs_needed:
            grads = torch.autograd.grad(out[k], tensors, retain_graph=True, allow_unused=True)
            for i, grad in enumerate(grads):
                if grad is not None:
                    rows[k, i] = grad.reshape(-1)[0].to(torch.float64)
        columns.append(rows)
        logits.append(out.detach())
    return torch.stack(columns), torch.stack(logits)


def per_sample_jacobians(
    work: nn.Module,
    state: dict[str, torch.Tensor],
    sampled: list[str],
    x: torch.Tensor,
    forward: Forward,
    outputs_needed: Callable[[int], list[int]] = lambda k: list(range(k)),
) -> JacobianResult:
    """J (B, K, P) of the read logits ``forward(x, samples)`` with respect to element 0 of each ``sampled`` tensor of
    ``state`` (leaves requiring grad), ``work`` re-parametrised with ``state`` (call inside ``run_swapped``).
    ``outputs_needed(K)``: the outputs whose rows of J are used (the others may be left 0)."""
    owner_attrs = _owners(work, state, sampled)
    recorder = _Recorder(
        owners={m: list(attrs.values()) for m, attrs in owner_attrs.items()},
        names_by_id={id(state[name]): name for name in sampled},
    )
    batch = x.shape[0]
    with recorder.recording() as calls:
        logits = forward(x, slice(0, batch))
    if recorder.without_autograd:
        raise ProxyError(
            "part of the forward runs with gradients disabled (torch.no_grad() inside forward, or "
            "torch.utils.checkpoint with use_reentrant=True), so its weights' Jacobian cannot be taken; use "
            "use_reentrant=False, or run that part with autograd while scoring"
        )
    needed = outputs_needed(logits.shape[1])
    rows, independent = _sample_layout(recorder, calls, x, forward)
    methods = _classify(recorder, calls, rows, owner_attrs, sampled, independent)
    hooks = {name for name, how in methods.items() if how == "hooks"}
    forward_mode: dict[str, torch.Tensor] = {}  # hook tensors taken by forward mode instead (many outputs)
    if len(needed) > FORWARD_MODE_FACTOR * len(hooks):  # many outputs: one forward-mode product per tensor is cheaper
        for name in sorted(hooks, key=sampled.index):
            try:
                forward_mode[name] = _jvp_column(work, state, name, forward, x)
            except (NotImplementedError, RuntimeError):  # no forward-mode rule: the hook path still works
                pass
        methods.update(dict.fromkeys(forward_mode, "jvp"))
        hooks -= set(forward_mode)
    columns, unattributed = _hook_columns(logits, calls, rows, owner_attrs, hooks, needed)
    columns.update(forward_mode)
    methods.update(dict.fromkeys(unattributed, "jvp"))
    for name, how in list(methods.items()):
        if how == "jvp" and name not in forward_mode:
            try:
                columns[name] = _jvp_column(work, state, name, forward, x)
            except (NotImplementedError, RuntimeError):  # an operation without a forward-mode rule
                methods[name] = "loop"
    looped = [name for name in sampled if methods[name] == "loop"]
    if looped:
        block, own_logits = _loop_columns(state, looped, forward, x, needed)
        columns.update({name: block[:, :, i] for i, name in enumerate(looped)})
        if not independent:  # each sample's logits are its own forward's
            logits = own_logits
    zeros = torch.zeros(batch, logits.shape[1], dtype=torch.float64, device=x.device)
    jacobian = torch.stack([columns.get(name, zeros) for name in sampled], dim=2)
    return JacobianResult(jacobian, logits.detach().to(torch.float64), methods, independent)


def _sample_layout(
    recorder: _Recorder, calls: list[_Call], x: torch.Tensor, forward: Forward
) -> tuple[list[int | None], bool]:
    """Rows per sample of each recorded call (None: rows are not samples) and whether the samples are independent,
    from a forward of samples (0, 1) with two backward passes (``_rows_per_sample``) and one of (1, 1) (changing
    sample 0 must leave sample 1's logits unchanged): cheap next to the batch forward."""
    batch = x.shape[0]
    if batch == 1:
        return [call.output.shape[0] or None for call in calls], True
    pair = x[:2]
    with recorder.recording() as pair_calls:
        first = forward(pair, slice(0, 2))
    with torch.no_grad():  # logits only: not recorded
        second = forward(x[1:2].expand_as(pair).clone(), slice(0, 2))
    independent = not bool(_changed_rows(first[1:], second[1:]).any())
    if len(pair_calls) != len(calls):
        return [None] * len(calls), independent
    outputs = [call.output for call in pair_calls]
    graded = [o.requires_grad for o in outputs]
    influences = []
    for sample in range(2):
        grads = iter(
            torch.autograd.grad(
                first[sample].sum(), [o for o, g in zip(outputs, graded) if g], retain_graph=True, allow_unused=True
            )
            if any(graded) and first.requires_grad
            else ()
        )
        influences.append([next(grads) if g else None for g in graded])
    return [
        _rows_per_sample(main, pair_call, (g0, g1), batch)
        for main, pair_call, g0, g1 in zip(calls, pair_calls, *influences)
    ], independent


def _classify(
    recorder: _Recorder,
    calls: list[_Call],
    rows: list[int | None],
    owner_attrs: dict[nn.Module, dict[str, str]],
    sampled: list[str],
    independent: bool,
) -> dict[str, str]:
    """Each sampled tensor's method (module docstring)."""
    if not independent:
        return dict.fromkeys(sampled, "loop")
    hookable = {name for attrs in owner_attrs.values() for name in attrs.values()} - recorder.outside
    called: set[str] = set()
    for call, per in zip(calls, rows):
        names = set(owner_attrs[call.module].values())
        called |= names
        if per is None:
            hookable -= names
    used = called | recorder.outside
    return {
        name: "hooks" if name in hookable and name in called else ("jvp" if name in used else "unused")
        for name in sampled
    }
