"""The proxies L-SWAG is compared against, each a reduction of the engine's shared passes.

Conventions follow the reference code where it matters for rankings (NASLib / NAS-Bench-Suite-Zero, ZiCo, SWAP,
NASWOT); where a value is reported differently (e.g. synflow in log space) the docstring says so.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from lswag_lightning.proxies.degenerate import check_patterns_can_differ, zero_layers_cut_every_path
from lswag_lightning.proxies.lswag import expressivity
from lswag_lightning.proxies.options import ScoringOptions
from lswag_lightning.proxies.registry import register_proxy
from lswag_lightning.proxies.results import (
    DegenerateValue,
    ProxyError,
    ProxyOutput,
    SessionData,
    no_gradient_details,
)
from lswag_lightning.proxies.synflow_flops import SynflowResult


def _zico(data: SessionData, need: str, name: str) -> ProxyOutput:
    stats = data.get(need)
    terms = [math.log(layer.zico_sum) if layer.zico_sum > 0 else 0.0 for layer in stats.layers]
    if not any(layer.zico_sum > 0 for layer in stats.layers):
        zero_layers_cut_every_path(data, "the loss gradient is zero for every weight", name)
    return ProxyOutput(
        value=float(sum(terms)),
        details={
            "gradient_samples": stats.num_samples,
            "layers": [{"name": layer.name, "zico_term": t} for layer, t in zip(stats.layers, terms)],
            "no_gradient": no_gradient_details(stats.no_gradient),
        },
        coverage=stats.coverage,
    )


@register_proxy(
    "zico",
    higher_is_better=True,
    needs=("labels", "grad_stats"),
    description="ZiCo: Σ_layers log Σ_w mean|g_w| / std(g_w) over K gradient samples (ICLR 2023)",
)
def zico(data: SessionData, options: ScoringOptions) -> ProxyOutput:
    return _zico(data, "grad_stats", "zico")


@register_proxy(
    "zico_ps",
    higher_is_better=True,
    needs=("labels", "per_sample_grad_stats"),
    description="ZiCo on per-sample gradients (mean and std over per_sample_count single samples)",
)
def zico_ps(data: SessionData, options: ScoringOptions) -> ProxyOutput:
    return _zico(data, "per_sample_grad_stats", "zico_ps")


@register_proxy(
    "swap",
    higher_is_better=True,
    needs=("activations",),
    description="SWAP: distinct sample-wise activation patterns over all activation points (ICLR 2024)",
)
def swap(data: SessionData, options: ScoringOptions) -> ProxyOutput:
    acts = data.get("activations")
    check_patterns_can_differ(data, acts, "swap")
    value, details = expressivity(acts, None)
    return ProxyOutput(value=value, details=details, coverage=acts.coverage)


@dataclass(frozen=True)
class SwapRegOptions:
    """The options of ``swap_reg``: regularised SWAP's µ and σ (parameters in thousands); no default, as they depend
    on the space (e.g. swap_mu=1500, swap_sigma=1e6).

    - ``swap_mu``: the target size µ, in thousands of parameters.
    - ``swap_sigma``: the width σ (> 0), in thousands of parameters squared.
    """

    swap_mu: float | None = None
    swap_sigma: float | None = None

    def __post_init__(self) -> None:
        if self.swap_sigma is not None and not self.swap_sigma > 0:
            raise ValueError(f"swap_sigma={self.swap_sigma!r} must be > 0")


@register_proxy(
    "swap_reg",
    higher_is_better=True,
    needs=("activations",),
    description="regularised SWAP: SWAP × exp(-(P - µ)² / σ), P = #params in thousands",
    options=SwapRegOptions,
)
def swap_reg(data: SessionData, options: ScoringOptions) -> ProxyOutput:
    reg = options.of(SwapRegOptions)
    if reg.swap_mu is None or reg.swap_sigma is None:
        raise ProxyError(
            "swap_reg needs swap_mu and swap_sigma (the target size µ and the width σ, in "
            "thousands of parameters), e.g. swap_mu=1500, swap_sigma=1e6"
        )
    acts = data.get("activations")
    check_patterns_can_differ(data, acts, "swap_reg")
    value, details = expressivity(acts, None)
    thousands = data.params / 1e3
    factor = math.exp(-((thousands - reg.swap_mu) ** 2) / reg.swap_sigma)
    details.update(params_thousands=thousands, regulariser=factor)
    return ProxyOutput(value=value * factor, details=details, coverage=acts.coverage)


@register_proxy(
    "naswot",
    higher_is_better=True,
    needs=("naswot_kernel",),
    description="NASWOT: log|det K_H|, K_H[i,j] = #units - Hamming(c_i, c_j) of binary codes (ICML 2021)",
)
def naswot(data: SessionData, options: ScoringOptions) -> ProxyOutput:
    acts = data.get("naswot_kernel")
    check_patterns_can_differ(data, acts, "naswot")
    units = float(sum(acts.neurons))
    r = acts.row_sums
    kernel = units - r[:, None] - r[None, :] + 2.0 * acts.gram  # = x xᵀ + (1-x)(1-x)ᵀ summed over points
    sign, logdet = torch.linalg.slogdet(kernel)
    value = float(logdet)
    notes = {}
    if float(sign) == 0.0 or math.isinf(value):
        notes["naswot"] = (
            "the Hamming kernel is singular: at least two samples share the same activation code "
            "(duplicate inputs, or a network that maps them identically)"
        )
    return ProxyOutput(
        value=value,
        notes=notes,
        details={"units": int(units), "points": len(acts.points), "kernel_sign": float(sign)},
        coverage=acts.coverage,
    )


@register_proxy(
    "synflow",
    higher_is_better=True,
    needs=("synflow_pass",),
    description="SynFlow, reported as log Σ_layers Σ |θ ⊙ ∂R/∂θ| (θ -> |θ|, float64, all-ones input)",
)
def synflow(data: SessionData, options: ScoringOptions) -> ProxyOutput:
    """Natural log of the SynFlow sum (same ranking as NASLib's raw sum, without overflow in tables)."""
    result: SynflowResult = data.get("synflow_pass")
    layers = result.layers
    total = sum(v for _, v in layers)
    notes = {}
    if total == 0:
        zero_layers_cut_every_path(data, "every layer's synaptic flow is 0", "synflow")
        notes["synflow"] = "every layer's synaptic flow is 0 (the output does not depend on the weights)"
    elif math.isinf(total):
        notes["synflow"] = "the synaptic flow overflows float64"
    value = math.log(total) if total > 0 else -math.inf
    return ProxyOutput(
        value=value,
        notes=notes,
        details={"log_space": True, "layers": [{"name": n, "synflow": v} for n, v in layers]},
        coverage=result.coverage,
    )


def _weight_gradient_reduction(data: SessionData, per_layer, name: str) -> ProxyOutput:
    grads = data.get("batch_grads")
    terms = [float(per_layer(w.to(torch.float64), g.to(torch.float64))) for w, g in zip(grads.weights, grads.grads)]
    if not any(terms):
        zero_layers_cut_every_path(data, f"{name} is 0: the loss gradient is zero wherever a weight is not", name)
    return ProxyOutput(
        value=float(sum(terms)),
        details={
            "layers": [{"name": n, "term": t} for n, t in zip(grads.names, terms)],
            "no_gradient": no_gradient_details(grads.no_gradient),
        },
        coverage=grads.coverage,
    )


@register_proxy(
    "snip",
    higher_is_better=True,
    needs=("labels", "batch_grads"),
    description="SNIP: Σ |θ ⊙ ∂L/∂θ| over Conv/Linear weights, loss on the whole batch",
)
def snip(data: SessionData, options: ScoringOptions) -> ProxyOutput:
    return _weight_gradient_reduction(data, lambda w, g: (w * g).abs().sum(), "snip")


@register_proxy(
    "grad_norm",
    higher_is_better=True,
    needs=("labels", "batch_grads"),
    description="grad_norm: Σ_layers ||∂L/∂θ_l||₂ over Conv/Linear weights, loss on the whole batch",
)
def grad_norm(data: SessionData, options: ScoringOptions) -> ProxyOutput:
    return _weight_gradient_reduction(data, lambda w, g: g.norm(), "grad_norm")


@dataclass(frozen=True)
class JacovOptions:
    """The option of ``jacov``.

    - ``jacov_jitter``: k added to the eigenvalues, -Σ log(v + k) + 1/(v + k) (NASLib's 1e-5).
    """

    jacov_jitter: float = 1e-5


@register_proxy(
    "jacov",
    higher_is_better=True,
    needs=("input_grads",),
    description="Jacobian covariance: -Σ log(v+k) + 1/(v+k) over eigenvalues of corr(J) (NASWOT v1)",
    options=JacovOptions,
)
def jacov(data: SessionData, options: ScoringOptions) -> ProxyOutput:
    jac = data.get("input_grads").to(torch.float64)
    if data.identical_samples or bool((jac == jac[:1]).all()):
        raise DegenerateValue(
            "every sample has the same input Jacobian (identical probe samples, or a network linear in its input), so "
            "their correlation is 1 everywhere and jacov is the same for every such network; score distinct samples "
            "through a nonlinear network, or leave jacov out"
        )
    centred = jac - jac.mean(dim=1, keepdim=True)
    norms = centred.norm(dim=1)
    if bool((norms == 0).any()):
        flat = int((norms == 0).nonzero()[0])
        return ProxyOutput(
            value=math.nan,
            notes={
                "jacov": f"the Jacobian of sample {flat} is constant, so its correlation with the others is undefined"
            },
        )
    unit = centred / norms[:, None]
    corr = unit @ unit.t()
    eig = torch.linalg.eigvalsh(corr)
    k = options.of(JacovOptions).jacov_jitter
    value = float(-(torch.log(eig + k) + 1.0 / (eig + k)).sum())
    return ProxyOutput(value=value, details={"jitter": k, "min_eigenvalue": float(eig.min())})


@register_proxy(
    "params",
    higher_is_better=True,
    needs=(),
    description="number of parameters (names matching params_exclude, e.g. auxiliary heads, left out)",
)
def params(data: SessionData, options: ScoringOptions) -> ProxyOutput:
    return ProxyOutput(value=float(data.params), details={"exclude": options.params_exclude})


@register_proxy(
    "flops",
    higher_is_better=True,
    needs=("flops_pass",),
    description="FLOPs of one sample's forward pass (torch.utils.flop_counter; a multiply-add = 2)",
)
def flops(data: SessionData, options: ScoringOptions) -> ProxyOutput:
    return ProxyOutput(value=float(data.get("flops_pass")))
