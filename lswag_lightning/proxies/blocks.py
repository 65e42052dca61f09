"""Block boundaries of a network: the chain of feature maps F_0, F_1, ..., F_L that AZ-NAS reads.

AZ-NAS (Lee & Ham, CVPR 2024) needs features that form a chain, F_l a function of F_{l-1} (its trainability term is a
block-local Jacobian). Where they are found (``block_features``):

- ``block_points=[module names]``: the outputs of exactly these modules, in call order, F_0 being the first; they must
  be applied one after the other.
- otherwise the network's block container: the direct child that is an ``nn.Sequential`` / ``nn.ModuleList`` with the
  most (>= 2) parametrised children (NB201's and DARTS' ``cells``, a ViT's ``blocks``, a ResNet's ``layers``), or the
  model itself when it is such a container (a plain ``nn.Sequential``). F_0 is the input of the first block (the stem
  output; for a block taking several tensors, such as a DARTS cell's (s0, s1), the last one); then, per block, the
  residual stream after attention when the block is pre-norm with a ``norm2`` (x + attn(norm1 x), the input of
  ``norm2``: two points per transformer block, as AZ-NAS does on AutoFormer) and the block's output.

A DARTS cell reads the two previous cell outputs; its block-local Jacobian is taken with respect to the previous one
(s1), holding s0 fixed.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from lswag_lightning.proxies.results import ProxyError


def find_block_container(model: nn.Module) -> tuple[str, nn.Module] | None:
    """(name, container) of the blocks: the model itself when it is a Sequential/ModuleList of >= 2 modules, else
    its direct child of that kind with the most children (a parameter-free block, e.g. an NB201 cell of skips,
    is still a block); None when there is none."""

    def blocks_in(module: nn.Module) -> int:
        if not isinstance(module, (nn.Sequential, nn.ModuleList)):
            return 0
        count = len(module)
        return count if count >= 2 else 0

    if blocks_in(model):
        return "", model
    best: tuple[int, str, nn.Module] | None = None
    for name, child in model.named_children():
        count = blocks_in(child)
        if count and (best is None or count > best[0]):
            best = (count, name, child)
    return None if best is None else (best[1], best[2])


def no_blocks_message(model: nn.Module) -> str:
    return (
        f"no blocks found in {type(model).__name__}: AZ-NAS needs a chain of block outputs (a direct child "
        "nn.Sequential/nn.ModuleList of >= 2 blocks, such as `cells` or `blocks`); pass block_points=[module "
        "names applied one after the other, e.g. the stem and each block]"
    )


def first_tensor(value: Any) -> torch.Tensor | None:
    """A module output as one tensor: the tensor itself, or the first element of a tuple/list; None otherwise."""
    if isinstance(value, torch.Tensor):
        return value
    if isinstance(value, (tuple, list)) and value and isinstance(value[0], torch.Tensor):
        return value[0]
    return None


@dataclass
class BlockFeatures:
    """The feature maps F_0..F_L of one forward (tensors in the autograd graph), their names, and ``measure(F)`` of
    each taken when it is produced (before a later in-place operation could change it)."""

    measure: Callable[[torch.Tensor], float]
    names: list[str] = field(default_factory=list)
    tensors: list[torch.Tensor] = field(default_factory=list)
    measures: list[float] = field(default_factory=list)

    def add(self, name: str, tensor: Any) -> None:
        tensor = first_tensor(tensor)
        if tensor is not None:
            self.names.append(name)
            self.tensors.append(tensor)
            self.measures.append(self.measure(tensor))


@contextlib.contextmanager
def block_features(
    model: nn.Module, block_points: Sequence[str] | None, measure: Callable[[torch.Tensor], float]
) -> Iterator[BlockFeatures]:
    """Hooks that collect F_0..F_L during the forward run inside the ``with``; ``ProxyError`` when the model has
    no detectable blocks or ``block_points`` names a module it does not have."""
    features = BlockFeatures(measure=measure)
    handles = []
    if block_points is not None:
        modules = dict(model.named_modules())
        missing = [n for n in block_points if n not in modules]
        if missing:
            raise ProxyError(
                f"block_points names {missing} are not modules of the model; use names from model.named_modules()"
            )
        for name in block_points:
            handles.append(
                modules[name].register_forward_hook(lambda _m, _args, out, _name=name: features.add(_name, out))
            )
    else:
        found = find_block_container(model)
        if found is None:
            raise ProxyError(no_blocks_message(model))
        prefix, container = found
        blocks = [(f"{prefix}.{n}" if prefix else n, m) for n, m in container.named_children()]
        first_name, first = blocks[0]

        def stem_output(_module: nn.Module, args: tuple[Any, ...]) -> None:
            if not features.tensors:
                tensors = [a for a in args if isinstance(a, torch.Tensor)]
                if tensors:
                    features.add(f"{first_name}:input", tensors[-1])

        handles.append(first.register_forward_pre_hook(stem_output))
        for name, block in blocks:
            norm2 = getattr(block, "norm2", None)
            if isinstance(norm2, nn.Module):
                handles.append(
                    norm2.register_forward_pre_hook(lambda _m, args, _name=name: features.add(f"{_name}:attn", args[0]))
                )
            handles.append(block.register_forward_hook(lambda _m, _args, out, _name=name: features.add(_name, out)))
    try:
        yield features
    finally:
        for handle in handles:
            handle.remove()
