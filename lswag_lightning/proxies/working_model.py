"""The model the passes run on: isolated from the caller, uncompiled, its gradient checkpointing run directly.

**Isolation.** One deep copy of the model (``copy_model=True``, default), or the model itself with its buffers,
train/eval modes and ``requires_grad`` flags restored on exit (``copy_model=False``).

**Compiled models are scored uncompiled.** ``torch.compile`` returns an ``OptimizedModule`` wrapping the original
module (``_orig_mod``, the same parameters); Lightning's ``from_compiled`` (``trainer.fit(torch.compile(module))``)
replaces the module's ``forward`` by a compiled wrapper of the *original object's* bound method, which a deep copy
still calls (so the copy's weights would never be used). The working model replaces each wrapper by the module it
wraps and drops such a ``forward``: the same function of the same weights, without a recompilation per pass (the
hooks, the float64 and functional calls of the passes would each trigger one: minutes on a CPU) and without the
hooks being traced into a graph. With ``copy_model=False`` the caller's model is given back exactly as it was.

**Gradient checkpointing runs directly.** ``torch.utils.checkpoint`` recomputes a segment's activations during the
backward pass. A pass that runs the model under swapped weights (``functional_call``: re-initialised or float64
weights) would then recompute with the module's own weights, outside the call that swapped them in (a silently
different value); the reentrant variant (``use_reentrant=True``) cannot be differentiated with
``torch.autograd.grad`` at all, and ``torch.func`` transforms refuse the non-reentrant one. Checkpointing changes
memory, never the function, so while the engine runs the passes (:func:`checkpoints_run_directly`) a checkpointed
segment on the engine's thread runs as a plain call: every value is the value of the same model without
checkpointing. Other threads keep the ordinary behaviour.
"""

from __future__ import annotations

import contextlib
import copy
import threading
from collections.abc import Callable, Iterator
from typing import Any

import torch
import torch.utils.checkpoint as torch_checkpoint
from torch import nn

# ------------------------------------------------------------------------------------------------- compiled models


def is_compiled_wrapper(module: nn.Module) -> bool:
    """Whether ``module`` is the ``OptimizedModule`` that ``torch.compile`` returns (duck-typed: no dynamo import)."""
    return type(module).__name__ == "OptimizedModule" and isinstance(getattr(module, "_orig_mod", None), nn.Module)


def _compiled_forward(module: nn.Module) -> bool:
    """Whether ``module`` carries a compiled ``forward`` of its own (Lightning's ``from_compiled``)."""
    forward = module.__dict__.get("forward")
    return forward is not None and getattr(forward, "_torchdynamo_orig_callable", None) is not None


def compiled_parts(model: nn.Module) -> list[str]:
    """Names of the compiled wrappers and compiled ``forward`` methods inside ``model`` (``""``: the model itself)."""
    found = []
    for name, module in model.named_modules():
        if is_compiled_wrapper(module) or _compiled_forward(module):
            found.append(name)
    return found


@contextlib.contextmanager
def uncompiled(model: nn.Module) -> Iterator[nn.Module]:
    """``model`` with every compiled wrapper replaced by the module it wraps and every compiled ``forward`` dropped,
    restored on exit (so the caller's model, when it is the working model, is given back unchanged)."""
    undo: list[Callable[[], None]] = []
    while is_compiled_wrapper(model):
        model = model._orig_mod
    try:
        _uncompile_children(model, undo)
        yield model
    finally:
        for step in reversed(undo):
            step()


def _uncompile_children(module: nn.Module, undo: list[Callable[[], None]]) -> None:
    if _compiled_forward(module):
        compiled = module.__dict__.pop("forward")
        undo.append(lambda m=module, f=compiled: m.__dict__.__setitem__("forward", f))
    for name, child in list(module._modules.items()):
        if child is None:
            continue
        inner = child
        while is_compiled_wrapper(inner):
            inner = inner._orig_mod
        if inner is not child:
            module._modules[name] = inner
            undo.append(lambda m=module, n=name, c=child: m._modules.__setitem__(n, c))
        _uncompile_children(inner, undo)


# ------------------------------------------------------------------------------------------------- checkpointing
class _DirectCheckpoints(threading.local):
    depth = 0


_direct = _DirectCheckpoints()
_install_lock = threading.Lock()
_installed: dict[str, Any] = {"count": 0, "original": None}


def checkpoint_bypass_available() -> bool:
    """Whether this torch routes every ``torch.utils.checkpoint.checkpoint`` call through ``_checkpoint_impl``
    (torch >= 2.6), the one place where the engine can run checkpointed segments directly."""
    return callable(getattr(torch_checkpoint, "_checkpoint_impl", None))


def _run_directly(original: Callable[..., Any]) -> Callable[..., Any]:
    def checkpoint_impl(function: Callable[..., Any], args: tuple, kwargs: dict | None, **options: Any) -> Any:
        if _direct.depth > 0:
            return function(*args, **(kwargs or {}))
        return original(function, args, kwargs, **options)

    checkpoint_impl.__wrapped__ = original  # type: ignore[attr-defined]
    return checkpoint_impl


@contextlib.contextmanager
def checkpoints_run_directly() -> Iterator[bool]:
    """Inside the block, a ``torch.utils.checkpoint`` segment called on this thread runs as a plain call (no
    recomputation in backward); yields whether that is in force (False on a torch without ``_checkpoint_impl``,
    where the passes report what fails). Nested and concurrent blocks are safe: the hook is installed once and
    removed by the last block to leave."""
    if not checkpoint_bypass_available():
        yield False
        return
    with _install_lock:
        if _installed["count"] == 0:
            _installed["original"] = torch_checkpoint._checkpoint_impl
            torch_checkpoint._checkpoint_impl = _run_directly(_installed["original"])
        _installed["count"] += 1
    _direct.depth += 1
    try:
        yield True
    finally:
        _direct.depth -= 1
        with _install_lock:
            _installed["count"] -= 1
            if _installed["count"] == 0:
                torch_checkpoint._checkpoint_impl = _installed["original"]
                _installed["original"] = None


# ------------------------------------------------------------------------------------------------- isolation
@contextlib.contextmanager
def working_model(model: nn.Module, copy_model: bool) -> Iterator[nn.Module]:
    """The uncompiled model the passes run on: a deep copy, or ``model`` itself with its buffers, modes and
    ``requires_grad`` flags restored on exit."""
    if copy_model:
        with uncompiled(copy.deepcopy(model)) as work:
            yield work
        return
    modes = [(m, m.training) for m in model.modules()]
    flags = [(p, p.requires_grad) for p in model.parameters()]
    buffers = [(b, b.detach().clone()) for b in model.buffers()]
    try:
        with uncompiled(model) as work:
            yield work
    finally:
        with torch.no_grad():
            for buf, saved in buffers:
                buf.copy_(saved)
        for module, training in modes:
            module.training = training
        for param, flag in flags:
            param.requires_grad_(flag)
