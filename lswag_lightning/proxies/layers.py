"""Finding weight layers and activation points, depth-decile bins and interval selection (METHOD.md §1).

Weight layers are Conv1d/2d/3d and Linear modules (subclasses included), ordered by first use in the forward
pass. Activation points are the *calls* of activation modules in forward order: a module applied twice is two
points. Depth bin of layer l (1-based) among D: ``floor((l / D) * 100 // 10)``, a decile 0..10.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

import numpy as np
import torch
from torch import nn

WEIGHT_LAYER_TYPES: tuple[type[nn.Module], ...] = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear)

# Activations whose output is > 0 exactly where their input is > 0, so binarising the output at 0 gives the
# sample-wise activation pattern of METHOD.md §3 (for ReLU, GELU, SiLU, ... alike).
ACTIVATION_TYPES: tuple[type[nn.Module], ...] = (
    nn.ReLU,
    nn.ReLU6,
    nn.LeakyReLU,
    nn.PReLU,
    nn.RReLU,
    nn.ELU,
    nn.CELU,
    nn.SELU,
    nn.GELU,
    nn.SiLU,
    nn.Hardswish,
    nn.Mish,
)
# timm's own activation modules (matched by module and class name, so timm is not imported here).
_TIMM_ACTIVATION_NAMES = {"GELU", "GELUTanh", "QuickGELU", "Swish", "Mish", "HardSwish", "HardMish", "PReLU"}

MAX_BIN = 10


def is_weight_layer(module: nn.Module) -> bool:
    return isinstance(module, WEIGHT_LAYER_TYPES) and isinstance(getattr(module, "weight", None), nn.Parameter)


def is_activation(module: nn.Module) -> bool:
    if isinstance(module, ACTIVATION_TYPES):
        return True
    cls = type(module)
    return cls.__module__.startswith("timm.") and cls.__name__ in _TIMM_ACTIVATION_NAMES


def weight_modules(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """(name, module) of every weight layer in ``named_modules`` order."""
    return [(name, m) for name, m in model.named_modules() if is_weight_layer(m)]


def activation_modules(model: nn.Module, names: Sequence[str] | None = None) -> list[tuple[str, nn.Module]]:
    """The modules whose outputs are activation points: automatic detection, or exactly ``names``.

    ``names`` are dotted module names (as in ``model.named_modules()``); an unknown name is a ``ValueError``.
    """
    if names is None:
        return [(name, m) for name, m in model.named_modules() if is_activation(m)]
    modules = dict(model.named_modules())
    missing = [n for n in names if n not in modules]
    if missing:
        raise ValueError(
            f"activation_points names {missing} are not modules of the model; use names from "
            "model.named_modules(), e.g. the Linear layers whose outputs feed a functional GELU"
        )
    return [(n, modules[n]) for n in names]


def no_activation_message(model: nn.Module) -> str:
    kinds = ", ".join(t.__name__ for t in ACTIVATION_TYPES)
    recurrent = [name for name, m in model.named_modules() if isinstance(m, nn.RNNBase)]
    hint = (
        f"; a recurrent layer keeps its nonlinearities inside: activation_points={recurrent[:2]!r} binarises its "
        "outputs (their sign pattern)"
        if recurrent
        else ""
    )
    return (
        f"no activation module found in {type(model).__name__} (looked for nn.{kinds.replace(', ', ', nn.')} "
        "and timm's activation layers); an activation applied as a plain function (F.gelu, F.relu, "
        "torch.relu) cannot be hooked — use activation modules such as nn.GELU, or pass "
        f"activation_points=[names of the modules whose outputs feed the activation]{hint}"
    )


def depth_bin(position: int, depth: int) -> int:
    """Decile bin (0..10) of the layer at 1-based ``position`` among ``depth`` layers (METHOD.md §1)."""
    if not 1 <= position <= depth:
        raise ValueError(f"layer position {position} outside 1..{depth}")
    return int((position / depth) * 100 // 10)


def depth_bins(depth: int) -> list[int]:
    """Bins of layers 1..depth."""
    return [depth_bin(pos, depth) for pos in range(1, depth + 1)]


def validate_interval(interval: Iterable[int] | None, name: str = "layer_interval") -> tuple[int, int] | None:
    """Check an inclusive bin interval ``(lo, hi)`` with 0 <= lo <= hi <= 10; None means every bin."""
    if interval is None:
        return None
    try:
        lo, hi = (int(v) for v in interval)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a pair (lo, hi) of depth bins 0..{MAX_BIN}, got {interval!r}") from None
    if not 0 <= lo <= hi <= MAX_BIN:
        raise ValueError(f"{name}=({lo}, {hi}) is invalid: need 0 <= lo <= hi <= {MAX_BIN} (depth deciles)")
    return lo, hi


def select_by_bins(depth: int, interval: tuple[int, int] | None) -> list[bool]:
    """Mask over layers 1..depth keeping those whose bin lies in the inclusive ``interval`` (None keeps all)."""
    if interval is None:
        return [True] * depth
    lo, hi = interval
    return [lo <= b <= hi for b in depth_bins(depth)]


def order_weight_layers(
    model: nn.Module, first_call: dict[nn.Module, int], used: set[nn.Module]
) -> list[tuple[str, nn.Module]]:
    """Weight layers that take part in the forward pass, in forward order.

    ``first_call`` maps a module to the index of its first call; ``used`` are the modules whose weight received
    a gradient. A used module that is never called as a module (e.g. the ``out_proj`` of nn.MultiheadAttention,
    whose weight is applied functionally) is placed right after the last called layer that precedes it in
    ``named_modules`` order.
    """
    ordered: list[tuple[float, int, str, nn.Module]] = []
    last_position = -1.0
    for rank, (name, module) in enumerate(weight_modules(model)):
        if module in first_call:
            last_position = float(first_call[module])
            ordered.append((last_position, rank, name, module))
        elif module in used:
            ordered.append((last_position + 0.5, rank, name, module))
    ordered.sort(key=lambda item: (item[0], item[1]))
    return [(name, module) for _, _, name, module in ordered if module in used or module in first_call]


def count_parameters(model: nn.Module, exclude: str | None = r"(^|\.)aux") -> int:
    """Number of parameter elements; names matching the regex ``exclude`` (auxiliary heads) are left out."""
    pattern = re.compile(exclude) if exclude else None
    seen: set[int] = set()
    total = 0
    for name, param in model.named_parameters():
        if pattern is not None and pattern.search(name):
            continue
        if id(param) in seen:
            continue
        seen.add(id(param))
        total += param.numel()
    return total


def pack_patterns(active: torch.Tensor) -> torch.Tensor:
    """Bit-pack sample-wise activation patterns.

    ``active``: bool (S, n), S samples × n neurons. Returns int64 (n, W) with W = ceil(S / 64): row j holds
    neuron j's S-bit pattern (sample s is bit s % 8 of byte s // 8, bytes in memory order). Two neurons have equal
    rows exactly when their patterns are equal. On the CPU numpy's packbits does it (about 6x faster than the
    tensor arithmetic on the NB201 and ViT activation points; the same bits).
    """
    samples, neurons = active.shape
    words = max(1, -(-samples // 64))
    if active.device.type == "cpu":
        packed = np.packbits(active.t().contiguous().numpy(), axis=1, bitorder="little")  # (n, ceil(S / 8))
        if packed.shape[1] < words * 8:
            packed = np.pad(packed, ((0, 0), (0, words * 8 - packed.shape[1])))
        return torch.from_numpy(np.ascontiguousarray(packed)).view(torch.int64).reshape(neurons, words)
    bits = active.t().to(torch.uint8)
    pad = words * 64 - samples
    if pad:
        bits = torch.nn.functional.pad(bits, (0, pad))
    weights = torch.tensor([1, 2, 4, 8, 16, 32, 64, 128], dtype=torch.uint8, device=active.device)
    packed = (bits.reshape(neurons, words * 8, 8) * weights).sum(-1, dtype=torch.int64).to(torch.uint8)
    return packed.contiguous().view(torch.int64).reshape(neurons, words)


def count_distinct_patterns(codes: Sequence[torch.Tensor]) -> int:
    """Number of distinct rows over the concatenation of packed pattern blocks (each (n_i, W))."""
    if not codes:
        return 0
    stacked = torch.cat(list(codes), dim=0)
    if stacked.shape[1] == 1:
        return int(torch.unique(stacked.view(-1)).numel())
    return int(torch.unique(stacked, dim=0).shape[0])
