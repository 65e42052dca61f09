"""Run a piece of work (forwards *and* backwards) with a module's parameters and buffers replaced.

``torch.func.functional_call`` swaps the tensors in for one call only. Gradient checkpointing
(``torch.utils.checkpoint`` with ``use_reentrant=False``) recomputes the checkpointed forward during the backward,
after such a call has returned, so the recomputation would read the module's own weights: a silently different value.
``run_swapped`` keeps the swap for the whole ``body`` (every forward and every ``torch.autograd.grad`` it runs), so
the recomputation reads the same tensors as the forward. The module's own tensors are never written.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import torch
from torch import nn
from torch.func import functional_call

Result = TypeVar("Result")


class _Scope(nn.Module):
    """``body()`` as the forward of a module holding ``module``, so ``functional_call`` can re-parametrise it."""

    def __init__(self, module: nn.Module, body: Callable[[], Any]) -> None:
        super().__init__()
        self.module = module
        self.body = body

    def forward(self) -> Any:
        return self.body()


def run_swapped(module: nn.Module, tensors: Mapping[str, torch.Tensor], body: Callable[[], Result]) -> Result:
    """``body()`` with ``module``'s parameters and buffers named in ``tensors`` (names as in
    ``named_parameters()`` / ``named_buffers()``) replaced by those tensors; tied tensors follow their first name."""
    prefixed = {f"module.{name}": value for name, value in tensors.items()}
    return functional_call(_Scope(module, body), prefixed, ())


def unwrap_compiled(module: nn.Module) -> nn.Module:
    """The module a ``torch.compile`` wrapper holds (``_orig_mod``), or ``module`` itself: the authors' passes run
    the eager module, with its own parameter names, hooks and autograd (a compiled graph recompiles for every
    re-parametrisation and cannot run forward-mode or per-call hooks)."""
    while isinstance(module, torch._dynamo.eval_frame.OptimizedModule):
        module = module._orig_mod
    return module


def checkpoint_fix(exc: BaseException, options: Any) -> str | None:
    """The fix for a pass that takes ``torch.autograd.grad`` through reentrant gradient checkpointing."""
    if "Checkpointing is not compatible" in str(exc):
        return (
            "the model uses torch.utils.checkpoint with use_reentrant=True, which allows only .backward(): "
            "checkpoint with use_reentrant=False, or turn checkpointing off while scoring"
        )
    return None
