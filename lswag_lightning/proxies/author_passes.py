"""Passes on their authors' own inputs: AZ-NAS (Gaussian batch, Kaiming re-initialisation, block features) and
MeCo (one real image, the model's own initialisation). PROXIES2.md §1 and §3 define them.

Re-initialised weights are never written into a module: they live in a parameter dict used through
``torch.func.functional_call`` (``ProbeRunner.functional_forward``), so the caller's model (and the engine's copy,
which other passes use) keeps its weights. Every random draw (weights, Gaussian input, Rademacher vectors) comes from
a CPU ``torch.Generator`` seeded with the session's ``seed`` and is then moved to the model's device, so values are
reproducible, the same on a CPU and a GPU (up to floating-point round-off; a CUDA generator would draw other
numbers), and the global random streams are not touched.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from lswag_lightning.proxies.blocks import BlockFeatures, block_features, first_tensor, no_blocks_message
from lswag_lightning.proxies.forward import ProbeRunner
from lswag_lightning.proxies.options import module_names
from lswag_lightning.proxies.registry import register_pass
from lswag_lightning.proxies.results import ProxyError
from lswag_lightning.proxies.swapped import checkpoint_fix, run_swapped, unwrap_compiled

_EPS_ENTROPY = 1e-8  # AZ-NAS: E = -Σ p ln(p + 1e-8)
_EPS_SIGMA = 1e-6  # AZ-NAS: t = 2 - σ - 1 / (σ + 1e-6)


def _generator(seed: int) -> torch.Generator:
    """A CPU generator: draws are made on the CPU and moved, so they do not depend on the device."""
    generator = torch.Generator()
    generator.manual_seed(seed)
    return generator


def gaussian_like(
    shape: torch.Size, generator: torch.Generator, device: torch.device, dtype: torch.dtype
) -> torch.Tensor:
    """Standard normal draws of ``shape`` from ``generator`` (CPU), on ``device``."""
    return torch.randn(shape, generator=generator, dtype=dtype).to(device)


def kaiming_state(work: nn.Module, seed: int) -> dict[str, torch.Tensor]:
    """AZ-NAS/VKDNW re-initialisation as a parameter dict: Conv/Linear weights Kaiming-normal (fan_in, ReLU gain,
    std sqrt(2 / fan_in)), their biases 0; affine BatchNorm/GroupNorm weight 1, bias 0; other parameters unchanged.

    Keys as in ``work.named_parameters()``: a tensor shared by several modules (tied input/output embeddings) is one
    entry, under its first name, initialised by the rule of the first module holding it."""
    state: dict[str, torch.Tensor] = {}
    generator = _generator(seed)
    first_name = {id(p): n for n, p in work.named_parameters()}
    for module in work.modules():
        for param_name, param in module.named_parameters(recurse=False):
            key = first_name[id(param)]
            if key in state:  # tied: already initialised where it first appears
                continue
            if isinstance(module, (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear)) and param_name == "weight":
                fan_in = param[0].numel()
                value = gaussian_like(param.shape, generator, param.device, param.dtype)
                state[key] = value * math.sqrt(2.0 / fan_in)
            elif param_name == "bias" and isinstance(module, (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear)):
                state[key] = torch.zeros_like(param)
            elif isinstance(module, (nn.modules.batchnorm._BatchNorm, nn.GroupNorm)):
                state[key] = torch.ones_like(param) if param_name == "weight" else torch.zeros_like(param)
            else:
                state[key] = param.detach()
    return state


def covariance_entropy(feature: torch.Tensor) -> float:
    """AZ-NAS expressivity of one feature map: the entropy of the normalised eigenvalues of the covariance of its
    channels over every position (rows: B·H·W for (B, C, H, W), B·T for tokens (B, T, C), B for (B, C)).

    Eigenvalues in float64, clamped at 0 (tiny negatives from round-off are not spread mass); a covariance with zero
    trace (a constant map) gives NaN, which the proxy reports as -inf."""
    x = feature.detach().to(torch.float64)
    if x.ndim == 4:
        rows = x.permute(0, 2, 3, 1).reshape(-1, x.shape[1])
    elif x.ndim == 3:
        rows = x.reshape(-1, x.shape[2])
    else:
        rows = x.reshape(x.shape[0], -1)
    rows = rows - rows.mean(dim=0, keepdim=True)
    cov = rows.t() @ rows / rows.shape[0]
    eig = torch.linalg.eigvalsh(cov).clamp_min(0.0)
    total = eig.sum()
    if not float(total) > 0:
        return math.nan
    p = eig / total
    return float(-(p * torch.log(p + _EPS_ENTROPY)).sum())


def block_trainability(grad: torch.Tensor | None, v: torch.Tensor, previous: torch.Tensor) -> float:
    """t = 2 - σ - 1/(σ + 1e-6) from the Monte-Carlo block Jacobian M = mean over positions of G vᵀ (AZ-NAS).

    ``grad`` is G = ∂⟨F_l, v⟩/∂F_{l-1} (None: F_l does not depend on F_{l-1}, so G = 0); an identity block (G equal
    to v) gives -inf. At a whole-stride reduction, G is folded space-to-depth to F_l's resolution first; when the
    layout changes otherwise (a flatten), each sample's G and v are flattened (one row per sample)."""
    if grad is None:
        grad = torch.zeros_like(previous)
    if grad.shape == v.shape and torch.equal(grad, v):
        return -math.inf
    g, v = grad.to(torch.float64), v.to(torch.float64)
    if g.ndim == 4 and v.ndim == 4 and g.shape[-2:] != v.shape[-2:]:
        stride = g.shape[-1] // v.shape[-1]
        if stride >= 1 and g.shape[-1] == v.shape[-1] * stride and g.shape[-2] == v.shape[-2] * stride:
            g = nn.functional.pixel_unshuffle(g, stride)
    if g.ndim == 4 and v.ndim == 4 and g.shape[-2:] == v.shape[-2:]:
        m = torch.einsum("bihw,bjhw->ij", g, v) / (g.shape[0] * g.shape[2] * g.shape[3])
    elif g.ndim == 3 and v.ndim == 3 and g.shape[1] == v.shape[1]:
        m = torch.einsum("bti,btj->ij", g, v) / (g.shape[0] * g.shape[1])
    else:  # a change of layout (flatten, global pooling to a vector): one row per sample
        m = g.reshape(g.shape[0], -1).t() @ v.reshape(v.shape[0], -1) / g.shape[0]
    sigma = float(torch.linalg.matrix_norm(m, ord=2))
    return 2.0 - sigma - 1.0 / (sigma + _EPS_SIGMA)


@dataclass(frozen=True)
class AZOptions:
    """The options of the AZ-NAS pass (``az_expressivity``, ``az_progressivity``, ``az_trainability``).

    - ``block_points``: module names whose outputs are AZ-NAS's chain of block features (default: found from the
      network's block container; see ``blocks.py``).
    - ``az_protocol``: ``"cnn"`` (Kaiming re-init, train mode), ``"vit"`` (own init, eval mode) or ``"auto"``.
    - ``az_draws``: random draws averaged (default 1, the authors' single draw): each term is the mean of its value
      over draws d = 0..D-1, draw d using seed ``seed + d`` for the Kaiming weights, the Gaussian batch and the
      Rademacher vectors (D times the cost; docs/proxies/az-nas.md measures the rank stability it buys).
    """

    block_points: tuple[str, ...] | None = None
    az_protocol: str = "auto"
    az_draws: int = 1

    def __post_init__(self) -> None:
        object.__setattr__(self, "block_points", module_names(self.block_points, "block_points"))
        if self.az_protocol not in ("auto", "cnn", "vit"):
            raise ValueError(f"az_protocol={self.az_protocol!r}: use 'auto', 'cnn' or 'vit'")
        check_draws(self.az_draws, "az_draws")


def check_draws(draws: object, name: str) -> None:
    if isinstance(draws, bool) or not isinstance(draws, int) or draws < 1:
        raise ValueError(f"{name}={draws!r}: need an integer >= 1 (random draws averaged)")


@dataclass
class AZResult:
    """Per-feature expressivity E_0..E_L, per-block trainability t_1..t_L, and how they were computed."""

    names: list[str]
    entropies: list[float]
    trainability: list[float]
    protocol: dict[str, Any] = field(default_factory=dict)
    widths: list[int] = field(default_factory=list)  # channels of each feature (the covariance's size)
    more_draws: list[tuple[list[float], list[float]]] = field(default_factory=list)  # (E, t) of draws 1..D-1

    def draws(self) -> list[tuple[list[float], list[float]]]:
        """(entropies, trainability) of every draw, the first one first."""
        return [(self.entropies, self.trainability), *self.more_draws]


def az_protocol(work: nn.Module, option: str) -> str:
    """``az_protocol`` resolved: ``"auto"`` is ``"vit"`` for transformers (a pre-norm block with a ``norm2``, or
    LayerNorm without any BatchNorm), else ``"cnn"``."""
    if option != "auto":
        return option
    modules = list(work.modules())
    if any(isinstance(getattr(m, "norm2", None), nn.Module) for m in modules):
        return "vit"
    layer_norm = any(isinstance(m, nn.LayerNorm) for m in modules)
    batch_norm = any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in modules)
    return "vit" if layer_norm and not batch_norm else "cnn"


def az_pass(probe: ProbeRunner, work: nn.Module, products: frozenset[str]) -> AZResult:
    """One forward of a Gaussian batch (the probe's shape and size) with AZ-NAS's protocol, then one block-local
    vector-Jacobian product per block, from the last block to the first.

    ``az_protocol``: ``"cnn"`` (Kaiming re-initialisation, train mode: BatchNorm on batch statistics), ``"vit"``
    (the model's own initialisation, eval mode: AZ-NAS's AutoFormer variant), ``"auto"`` (``az_protocol``). Integer
    inputs (token ids) cannot be Gaussian: the probe batch itself is used, and ``protocol["input"]`` says so. The
    forward and the products run under one re-parametrisation (``swapped.run_swapped``), so a checkpointed forward
    recomputed during the backward reads the same weights.
    """
    opts = probe.options
    az = opts.of(AZOptions)
    work = unwrap_compiled(work)
    protocol = az_protocol(work, az.az_protocol)
    if not any(p.is_floating_point() for p in work.parameters()):
        raise ProxyError("the model has no floating-point parameters")
    work.train(protocol == "cnn")
    results = [_az_draw(probe, work, protocol, opts.seed + draw) for draw in range(az.az_draws)]
    result = results[0]
    result.more_draws = [(r.entropies, r.trainability) for r in results[1:]]
    return result


def _az_draw(probe: ProbeRunner, work: nn.Module, protocol: str, seed: int) -> AZResult:
    """One draw of AZ-NAS's random quantities (weights for ``"cnn"``, the Gaussian batch, the Rademacher vectors)."""
    az = probe.options.of(AZOptions)
    state = kaiming_state(work, seed) if protocol == "cnn" else {n: p.detach() for n, p in work.named_parameters()}
    for value in state.values():
        if value.is_floating_point():
            value.requires_grad_(True)
    buffers = dict(work.named_buffers())
    generator = _generator(seed)
    if probe.inputs.is_floating_point():
        x = gaussian_like(probe.inputs[: probe.batch_size].shape, generator, probe.inputs.device, probe.inputs.dtype)
        x.requires_grad_(True)  # F_0 may be the input itself (a plain nn.Sequential)
        source = "gaussian"
    else:
        x = probe.inputs[: probe.batch_size]
        source = "probe (integer inputs cannot be Gaussian)"
    y = probe.targets_at(slice(0, probe.batch_size))

    def forward_and_products() -> tuple[list[str], list[float], list[float], list[int]]:
        with block_features(work, az.block_points, covariance_entropy, batch=x.shape[0]) as features:
            output = probe.forward(work, x, y)
            features.finish(_logits_or_none(probe, output))
        _check_features(work, features)
        widths = [feature_width(t) for t in features.tensors]
        return features.names, features.measures, _trainability(features.tensors, generator), widths

    names, entropies, trainability, widths = run_swapped(work, {**state, **buffers}, forward_and_products)
    return AZResult(
        names=names,
        entropies=entropies,
        trainability=trainability,
        protocol={"protocol": protocol, "input": source, "batch": int(x.shape[0]), "draws": az.az_draws},
        widths=widths,
    )


def feature_width(feature: torch.Tensor) -> int:
    """Channels of a feature as ``covariance_entropy`` reads them: C of (B, C, H, W) or (B, T, C), else the
    per-sample size."""
    if feature.ndim == 4:
        return int(feature.shape[1])
    if feature.ndim == 3:
        return int(feature.shape[2])
    return int(feature[0].numel()) if feature.ndim >= 1 and feature.shape[0] else 0


def _logits_or_none(probe: ProbeRunner, output: Any) -> torch.Tensor | None:
    try:
        return probe.adapter(output)
    except Exception:  # the head is then kept as a feature; the passes that need logits report the adapter
        return None


def _check_features(work: nn.Module, features: BlockFeatures) -> None:
    if features.without_autograd:
        raise ProxyError(
            f"block features {features.without_autograd} are computed with gradients disabled (torch.no_grad() "
            "inside forward, or torch.utils.checkpoint with use_reentrant=True), so their Jacobians cannot be "
            "taken; use use_reentrant=False, or run those blocks with autograd while scoring"
        )
    if len(features.tensors) < 2:
        raise ProxyError(no_blocks_message(work, len(features.tensors), features.names))


def _trainability(tensors: list[torch.Tensor], generator: torch.Generator) -> list[float]:
    """t_l for l = L..1 (drawn in that order, AZ-NAS's), returned in block order."""
    trainability: list[float] = [math.nan] * (len(tensors) - 1)
    for index in range(len(tensors) - 1, 0, -1):
        current, previous = tensors[index], tensors[index - 1]
        v = (torch.randint(0, 2, current.shape, generator=generator) * 2 - 1).to(current.device, current.dtype)
        if not (current.requires_grad and previous.requires_grad):
            grad = None
        else:
            (grad,) = torch.autograd.grad(current, previous, grad_outputs=v, retain_graph=True, allow_unused=True)
        trainability[index - 1] = block_trainability(grad, v, previous)
    return trainability


def channel_correlation_min_eigenvalue(sample: torch.Tensor) -> float:
    """MeCo's term for one module output of one sample, channels as rows: (C, positions). The smallest eigenvalue
    of the Pearson correlation between channels across positions; NaN/inf entries (constant channels) become 0.
    With more channels than positions the value is exactly 0 and no eigen-solver runs."""
    rows = sample.detach().to(torch.float64)
    if singular_by_construction(rows):
        # At least as many channels as centred positions: the correlation has rank <= positions - 1 < C, so its
        # smallest eigenvalue is exactly 0 (an eigen-solver would return round-off around it, at O(C³) cost).
        return 0.0
    corr = torch.nan_to_num(torch.corrcoef(rows), nan=0.0, posinf=0.0, neginf=0.0)
    return float(torch.linalg.eigvalsh(corr)[0])


def singular_by_construction(rows: torch.Tensor) -> bool:
    """Whether a (C, positions) channel correlation is singular whatever the values: C >= positions (rank at most
    positions - 1 after centring), or fewer than two positions."""
    return rows.shape[1] < 2 or rows.shape[0] < 1 or rows.shape[0] > rows.shape[1] - 1


@dataclass
class MeCoResult:
    terms: list[tuple[str, float]]  # (module name, min eigenvalue) per hooked call with a channel layout
    dropped: int  # calls whose term was not finite
    singular: int = 0  # terms exactly 0 by construction (channels >= positions)


def meco_pass(probe: ProbeRunner, work: nn.Module, products: frozenset[str]) -> MeCoResult:
    """MeCo (PROXIES2.md §3): one forward of the first probe sample in train mode with the model's own
    initialisation; every module call with a (1, C, H, W) output adds the smallest eigenvalue of its channel
    correlation, and a (1, T, C) token output (a transformer) its C×T channel correlation (MeCo's code would
    correlate tokens; channels follow the definition). BatchNorm1d on one sample holds the probe's statistics fixed,
    as the per-sample gradients do."""
    work = unwrap_compiled(work)
    terms: list[tuple[str, float]] = []
    dropped, singular = [0], [0]

    def on_output(name: str, module: nn.Module, output: Any) -> None:
        tensor = first_tensor(output)
        if tensor is None or not tensor.is_floating_point() or tensor.shape[0] != 1:
            return
        if tensor.ndim == 4:
            rows = tensor[0].reshape(tensor.shape[1], -1)
        elif tensor.ndim == 3 and not isinstance(module, (nn.Conv1d, nn.BatchNorm1d, nn.MaxPool1d, nn.AvgPool1d)):
            rows = tensor[0].t()
        else:
            return
        singular[0] += singular_by_construction(rows)
        value = channel_correlation_min_eigenvalue(rows)
        if math.isfinite(value):
            terms.append((name, value))
        else:
            dropped[0] += 1

    index = torch.arange(min(probe.inputs.shape[0], probe.options.per_sample_count), device=probe.inputs.device)
    # the statistics forward of single_sample_normalisation (if any) runs on entry, before the hooks exist
    with probe.single_sample_normalisation(work, index, enabled=True) as new_sample, torch.no_grad():
        handles = [
            module.register_forward_hook(lambda m, _a, out, _n=name: on_output(_n or "<model>", m, out))
            for name, module in work.named_modules()
        ]
        try:
            new_sample()
            probe.forward(work, probe.inputs[:1], probe.targets_at(slice(0, 1)))
        finally:
            for handle in handles:
                handle.remove()
    if not terms:
        raise ProxyError(
            "MeCo found no module output with a channel layout ((1, C, H, W) feature maps or (1, T, C) "
            "tokens) to correlate; it measures convolutional or token models: leave meco out for this model (an MLP "
            "or a model whose layers see one vector per sample)"
        )
    return MeCoResult(terms=terms, dropped=dropped[0], singular=singular[0])


# Registered here, in the order the engine runs them (MeCo, then AZ-NAS).
register_pass(
    "meco", produces={"meco_pass": "MeCo: one forward of the first probe sample (batch 1, the model's own weights)"}
)(meco_pass)
register_pass(
    "az-nas",
    produces={
        "az_features": "AZ-NAS: a Gaussian batch through Kaiming re-initialised weights, block features and "
        "block-local Jacobian products (its own forward + one backward)"
    },
    weight_gradients=True,
    explain=checkpoint_fix,
    options=AZOptions,
)(az_pass)
