"""Per-sample derivatives of a module's output with respect to element 0 of its weight and bias, from the module's
input and the gradient at its output: the rules of the standard layers, with no per-sample weight copies.

For a layer called on a batch whose rows are samples (``x`` of shape (B, ...), ``grad`` = ∂⟨read logits, c⟩/∂output
of shape (B, ...)), the derivative of sample n's term with respect to one weight element is a sum over that
sample's positions of (output gradient) × (the input element that weight multiplies). VKDNW samples element 0
(flat index 0) of each tensor, so only channel 0 of the input and of the gradient are read:

- ``Linear`` W[0, 0]: Σ_pos grad[..., 0]·x[..., 0]; b[0]: Σ_pos grad[..., 0].
- ``Conv1d/2d/3d`` W[0, 0, 0, ...]: Σ_pos grad[:, 0, pos]·x̃[:, 0, pos·stride], x̃ the padded input (the kernel's first
  tap reads the padded input at pos·stride); b[0]: Σ_pos grad[:, 0].
- ``BatchNorm`` (eval, running statistics), ``LayerNorm``, ``GroupNorm``: γ[0]: Σ_pos grad[:, 0]·x̂[:, 0], x̂ the
  normalised input; β[0]: Σ_pos grad[:, 0].
- ``Embedding`` W[0, 0]: Σ over the positions holding index 0 of grad[..., 0] (0 when ``padding_idx`` is 0, whose
  row gets no gradient).

A subclass that overrides ``forward`` qualifies on a call where it gives the base layer's output (``same_as_base``);
the caller checks the rest (that a tensor is used only inside these calls, that rows are samples).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

#: a rule: (module, input rows, output-gradient rows) -> {"weight"/"bias": per-row derivative of element 0}
Rule = Callable[[nn.Module, torch.Tensor, torch.Tensor], dict[str, torch.Tensor]]


def _per_sample_sum(value: torch.Tensor) -> torch.Tensor:
    """(B, ...) -> (B,) float64: the sum over everything but the sample dimension."""
    return value.to(torch.float64).reshape(value.shape[0], -1).sum(dim=1)


def _f64(*tensors: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """The channel-0 slices the rules multiply, in float64: the sums over positions lose no precision."""
    return tuple(t.to(torch.float64) for t in tensors)


def _linear(module: nn.Linear, x: torch.Tensor, grad: torch.Tensor) -> dict[str, torch.Tensor]:
    g0, x0 = _f64(grad[..., 0], x[..., 0])
    out = {"weight": _per_sample_sum(g0 * x0)}
    if module.bias is not None:
        out["bias"] = _per_sample_sum(g0)
    return out


def _left_padding(module: nn.modules.conv._ConvNd, x: torch.Tensor) -> list[int]:
    """Zeros added before each spatial dimension of the input, as the convolution pads it."""
    padding = module.padding
    if padding == "valid":
        return [0] * (x.ndim - 2)
    if padding == "same":
        return [d * (k - 1) // 2 for d, k in zip(module.dilation, module.kernel_size)]
    return list(padding)


def _conv(module: nn.modules.conv._ConvNd, x: torch.Tensor, grad: torch.Tensor) -> dict[str, torch.Tensor]:
    spatial = grad.shape[2:]
    x0 = x[:, :1]  # input channel 0 of group 0: what W[0, 0, 0, ...] multiplies
    if module.padding_mode != "zeros":
        x0 = F.pad(x0, module._reversed_padding_repeated_twice, mode=module.padding_mode)
    else:
        left = _left_padding(module, x)
        pads: list[int] = []
        for dim, (before, size_out, stride) in enumerate(zip(left, spatial, module.stride)):
            needed = (size_out - 1) * stride + 1 - (x0.shape[2 + dim] + before)
            pads = [before, max(needed, 0), *pads]  # F.pad lists the last dimension first
        if any(pads):
            x0 = F.pad(x0, pads)
    index = (slice(None), 0) + tuple(
        slice(0, (size - 1) * stride + 1, stride) for size, stride in zip(spatial, module.stride)
    )
    g0, x0 = _f64(grad[:, 0], x0[index])
    out = {"weight": _per_sample_sum(g0 * x0)}
    if module.bias is not None:
        out["bias"] = _per_sample_sum(g0)
    return out


def _affine(normalised0: torch.Tensor, g0: torch.Tensor, module: nn.Module) -> dict[str, torch.Tensor]:
    normalised0, g0 = _f64(normalised0, g0)
    out = {}
    if getattr(module, "weight", None) is not None:
        out["weight"] = _per_sample_sum(g0 * normalised0)
    if getattr(module, "bias", None) is not None:
        out["bias"] = _per_sample_sum(g0)
    return out


def _batch_norm(module: nn.modules.batchnorm._BatchNorm, x: torch.Tensor, grad: torch.Tensor) -> dict:
    if module.training or module.running_mean is None or module.running_var is None:
        raise NotImplementedError("a BatchNorm on batch statistics couples the samples")
    x0, mean, var = _f64(x[:, 0], module.running_mean[0], module.running_var[0])
    return _affine((x0 - mean) / torch.sqrt(var + module.eps), grad[:, 0], module)


def _layer_norm(module: nn.LayerNorm, x: torch.Tensor, grad: torch.Tensor) -> dict[str, torch.Tensor]:
    shape = tuple(module.normalized_shape)
    normalised = F.layer_norm(x, shape, None, None, module.eps)
    width = math.prod(shape)
    lead = x.shape[: x.ndim - len(shape)]
    return _affine(normalised.reshape(*lead, width)[..., 0], grad.reshape(*lead, width)[..., 0], module)


def _group_norm(module: nn.GroupNorm, x: torch.Tensor, grad: torch.Tensor) -> dict[str, torch.Tensor]:
    normalised = F.group_norm(x, module.num_groups, None, None, module.eps)
    return _affine(normalised[:, 0], grad[:, 0], module)


def _embedding(module: nn.Embedding, x: torch.Tensor, grad: torch.Tensor) -> dict[str, torch.Tensor]:
    if module.max_norm is not None or module.scale_grad_by_freq:
        raise NotImplementedError("max_norm / scale_grad_by_freq make the gradient batch-dependent")
    if module.padding_idx == 0:
        return {"weight": torch.zeros(x.shape[0], dtype=torch.float64, device=grad.device)}
    return {"weight": _per_sample_sum(grad[..., 0].to(torch.float64) * (x == 0))}


RULES: tuple[tuple[type, Rule], ...] = (
    (nn.Linear, _linear),
    (nn.Conv1d, _conv),
    (nn.Conv2d, _conv),
    (nn.Conv3d, _conv),
    (nn.modules.batchnorm._BatchNorm, _batch_norm),
    (nn.LayerNorm, _layer_norm),
    (nn.GroupNorm, _group_norm),
    (nn.Embedding, _embedding),
)


def _base(module: nn.Module) -> type | None:
    for base, _ in RULES:
        if isinstance(module, base):
            return base
    return None


def rule_for(module: nn.Module) -> Rule | None:
    """The rule of a standard layer or a subclass of one (None otherwise); see ``same_as_base``."""
    for base, rule in RULES:
        if isinstance(module, base):
            return rule
    return None


def overrides_forward(module: nn.Module) -> bool:
    """Whether the module's class replaces its standard base's ``forward`` (timm's ``LayerNorm``, a LoRA layer)."""
    base = _base(module)
    return base is not None and type(module).forward is not base.forward


def same_as_base(module: nn.Module, x: torch.Tensor, output: torch.Tensor) -> bool:
    """Whether a subclass that overrides ``forward`` gave, on this input, the base layer's output (to round-off):
    then its weight and bias enter as the base's do and the rule holds (timm's ``LayerNorm`` calls
    ``F.layer_norm``); otherwise (an extra term, a re-parametrised weight) the tensor takes another path."""
    base = _base(module)
    with torch.no_grad():
        expected = base.forward(module, x)
    if not isinstance(expected, torch.Tensor) or expected.shape != output.shape:
        return False
    scale = expected.abs().amax().clamp_min(1e-30)
    return bool((expected - output.detach()).abs().amax() <= 1e-6 * scale)


def statically_eligible(module: nn.Module) -> bool:
    """Whether ``module``'s rule can apply at all (not for options that make the gradient batch-dependent)."""
    if rule_for(module) is None:
        return False
    if isinstance(module, nn.Embedding):
        return module.max_norm is None and not module.scale_grad_by_freq
    if isinstance(module, nn.modules.batchnorm._BatchNorm):
        return module.running_mean is not None and module.running_var is not None
    return True
