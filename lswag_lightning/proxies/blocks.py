"""Block boundaries of a network: the chain of feature maps F_0, F_1, ..., F_L that AZ-NAS reads.

AZ-NAS (Lee & Ham, CVPR 2024) needs features that form a chain, F_l a function of F_{l-1} (its trainability term is a
block-local Jacobian). ``block_plan`` finds them in any model (a ``torch.compile`` wrapper is unwrapped first), by the
first rule that applies; ``docs/proxies/az-nas.md`` explains the rule with examples:

1. ``block_points=[module names]``: the outputs of exactly these modules, in call order, F_0 being the first; they
   must be applied one after the other.
2. **Block containers** (an ``nn.Sequential`` / ``nn.ModuleList`` of >= 2 modules is a container; the parameter
   shares count each tensor once):

   a. the model itself when it is a container (a plain ``nn.Sequential``);
   b. several direct-child containers whose modules are blocks (>= 2 modules with sub-modules of their own), together
      holding at least half of the parameters: a network in stages (a ResNet's ``layer1`` ... ``layer4``), every
      block of every stage in call order;
   c. the direct-child container with the most modules among those holding at least half of the parameters
      (NB201's and DARTS' ``cells``, a ViT's ``blocks``, NB101's ``layers``);
   d. the shallowest nested container holding at least half of the parameters (a HuggingFace model's
      ``vit.encoder.layer``, an ``nn.TransformerEncoder``'s ``layers``), ties to the one with the most modules.

   A container's children that only reshape or pass their input through (``Flatten``, ``Unflatten``,
   ``Identity``, ``Dropout``) are not blocks: as blocks they would be identities, AZ-NAS's -inf trainability for
   every MLP written as ``nn.Sequential(nn.Flatten(), ...)``.
   F_0 is the input of the first block (the stem output; for a block taking several tensors, such as a DARTS cell's
   (s0, s1), the last one); then, per block, the residual stream after attention when the block is pre-norm with a
   ``norm2`` (x + attn(norm1 x), the input of ``norm2``: two points per transformer block, as AZ-NAS does on
   AutoFormer) and the block's output.
3. **The forward chain** of the model's direct children that hold parameters (an LSTM classifier's embedding and
   LSTM, a plain MLP's hidden layers): their outputs in call order, keeping a per-sample output (batch first, or
   second for sequence-first tensors) that depends on the previous kept one (a position embedding of shape (T, C)
   is not on the chain); the call that produces the logits (the head) is dropped, as AZ-NAS leaves the head out.
   A model with fewer than three such children (a backbone and a head) is searched inside its largest child; when
   that child is a single layer (an ``nn.LSTM`` under a Linear head), F_0 is the model's input to the chain's first
   child, so the chain is input -> backbone output (the head dropped).

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

Named = list[tuple[str, nn.Module]]
#: children of a block container that are not blocks: they reshape or pass their input through
PASS_THROUGH = (nn.Flatten, nn.Unflatten, nn.Identity, nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.Dropout3d)


def _numel(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def _is_container(module: nn.Module) -> bool:
    return isinstance(module, (nn.Sequential, nn.ModuleList)) and len(module) >= 2


def _holds_half(module: nn.Module, total: int) -> bool:
    return 2 * _numel(module) >= total


def _prefixed(prefix: str, name: str) -> str:
    return f"{prefix}.{name}" if prefix else name


def _blocks_of(prefix: str, container: nn.Module) -> Named:
    """The blocks of a container: its children but those that only reshape or pass their input through."""
    return [(_prefixed(prefix, n), m) for n, m in container.named_children() if not isinstance(m, PASS_THROUGH)]


def find_block_container(model: nn.Module) -> tuple[str, nn.Module] | None:
    """(name, container) of rule 2a, 2c or 2d (module docstring); None when there is none."""
    if _is_container(model):
        return "", model
    total = _numel(model)
    best: tuple[int, str, nn.Module] | None = None
    for name, child in model.named_children():
        if _is_container(child) and _holds_half(child, total) and (best is None or len(child) > best[0]):
            best = (len(child), name, child)
    if best is not None:
        return best[1], best[2]
    level = [(n, c) for n, c in model.named_children()]
    while level:
        found = [(n, c) for n, c in level if _is_container(c) and _holds_half(c, total)]
        if found:
            return max(found, key=lambda item: len(item[1]))  # max keeps the first of equals
        level = [(_prefixed(n, cn), cc) for n, c in level for cn, cc in c.named_children()]
    return None


def _stages(model: nn.Module) -> Named | None:
    """Rule 2b: the blocks of several direct-child containers of blocks holding half of the parameters together."""
    stages = [
        (name, child)
        for name, child in model.named_children()
        if _is_container(child) and sum(1 for block in child if next(block.children(), None) is not None) >= 2
    ]
    if len(stages) < 2 or 2 * sum(_numel(c) for _, c in stages) < _numel(model):
        return None
    return [block for name, child in stages for block in _blocks_of(name, child)]


def block_plan(model: nn.Module) -> tuple[str, Named]:
    """``("blocks", blocks)`` (rule 2) or ``("chain", candidates)`` (rule 3), names relative to ``model``;
    ``"chain_from_input"``: rule 3 with F_0 the first child's input (a one-layer backbone and a head)."""
    if _is_container(model):
        return "blocks", _blocks_of("", model)
    stages = _stages(model)
    if stages is not None:
        return "blocks", stages
    found = find_block_container(model)
    if found is not None:
        return "blocks", _blocks_of(*found)
    children = [(n, c) for n, c in model.named_children() if _numel(c) > 0]
    if len(children) >= 3 or not children:
        return "chain", children
    name, largest = max(children, key=lambda item: _numel(item[1]))  # a backbone and a head: the backbone's plan
    if not any(_numel(c) > 0 for c in largest.children()):  # the backbone is one layer (an LSTM): chain from the input
        return "chain_from_input", children
    kind, found = block_plan(largest)
    return kind, [(_prefixed(name, n), m) for n, m in found]


def no_blocks_message(model: nn.Module, found: int, names: list[str]) -> str:
    return (
        f"no chain of blocks found in {type(model).__name__}: AZ-NAS needs at least two block features, the block "
        f"rule found {found} {names}; pass block_points=[module names applied one after the other, e.g. the stem "
        "and each block]"
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
    each taken when it is produced (before a later in-place operation could change it).

    Collection stops at ``finish`` (a checkpointed forward recomputed during the backward adds nothing);
    ``without_autograd`` names features produced with gradients disabled (their Jacobian cannot be taken)."""

    measure: Callable[[torch.Tensor], float]
    names: list[str] = field(default_factory=list)
    tensors: list[torch.Tensor] = field(default_factory=list)
    measures: list[float] = field(default_factory=list)
    without_autograd: list[str] = field(default_factory=list)
    chain: bool = False  # rule 3: candidates filtered at ``finish``
    batch: int = 0
    open: bool = True

    def add(self, name: str, tensor: Any) -> None:
        tensor = first_tensor(tensor)
        if not self.open or tensor is None:
            return
        if self.chain and not _per_sample(tensor, self.batch):
            return
        if not torch.is_grad_enabled():
            self.without_autograd.append(name)
        self.names.append(name)
        self.tensors.append(tensor)
        self.measures.append(self.measure(tensor))

    def finish(self, logits: Any) -> None:
        """Stop collecting; for the forward chain, drop the head (the call whose output is the logits) and the
        candidates that do not depend on the previous kept feature."""
        self.open = False
        if not self.chain:
            return
        if self.tensors and isinstance(logits, torch.Tensor) and _same_storage(self.tensors[-1], logits):
            self._keep([*range(len(self.tensors) - 1)])
        kept: list[int] = []
        for index, tensor in enumerate(self.tensors):
            if not kept or _depends_on(tensor, self.tensors[kept[-1]]):
                kept.append(index)
        self._keep(kept)

    def _keep(self, indices: list[int]) -> None:
        self.names = [self.names[i] for i in indices]
        self.tensors = [self.tensors[i] for i in indices]
        self.measures = [self.measures[i] for i in indices]


def _per_sample(tensor: torch.Tensor, batch: int) -> bool:
    """A floating tensor with the batch first, or second for a sequence-first (T, B, C) output."""
    if not tensor.is_floating_point() or tensor.ndim < 2:
        return False
    return tensor.shape[0] == batch or (tensor.ndim >= 3 and tensor.shape[1] == batch)


def _same_storage(a: torch.Tensor, b: torch.Tensor) -> bool:
    return a is b or a.untyped_storage().data_ptr() == b.untyped_storage().data_ptr()


def _depends_on(tensor: torch.Tensor, source: torch.Tensor) -> bool:
    """Whether ``source`` is in ``tensor``'s autograd graph (a walk of the recorded graph, nothing computed)."""
    target = source.grad_fn
    if tensor.grad_fn is None or (target is None and not source.requires_grad):
        return False

    def is_source(node: Any) -> bool:  # a leaf (the input) is reached through its AccumulateGrad node
        return node is target if target is not None else getattr(node, "variable", None) is source

    seen, frontier = set(), [tensor.grad_fn]
    while frontier:
        node = frontier.pop()
        if is_source(node):
            return True
        for parent, _ in node.next_functions:
            if parent is not None and id(parent) not in seen:
                seen.add(id(parent))
                frontier.append(parent)
    return False


def _hook_blocks(features: BlockFeatures, blocks: Named) -> list[Any]:
    """F_0 = the first block's input, then per block its attention point (``norm2`` input) and its output."""
    handles = []
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
    return handles


@contextlib.contextmanager
def block_features(
    model: nn.Module, block_points: Sequence[str] | None, measure: Callable[[torch.Tensor], float], batch: int = 0
) -> Iterator[BlockFeatures]:
    """Hooks that collect F_0..F_L during the forward run inside the ``with`` (call ``finish`` after it);
    ``ProxyError`` when ``block_points`` names a module the model does not have."""
    features = BlockFeatures(measure=measure, batch=batch)
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
        kind, modules = block_plan(model)
        if kind == "blocks":
            handles = _hook_blocks(features, modules)
        else:
            features.chain = True
            if kind == "chain_from_input":
                first_name, first = modules[0]
                handles.append(
                    first.register_forward_pre_hook(
                        lambda _m, args: None if features.tensors else features.add(f"{first_name}:input", args[0])
                    )
                )
            for name, child in modules:
                handles.append(child.register_forward_hook(lambda _m, _a, out, _name=name: features.add(_name, out)))
    try:
        yield features
    finally:
        for handle in handles:
            handle.remove()
