"""VKDNW (Týbl & Neumann, CVPR 2025): the entropy of the deciles of the Fisher information spectrum on sampled
weights, and ℵ, the number of parameter tensors (PROXIES2.md §2).

Protocol: Kaiming re-initialisation (as AZ-NAS, in a parameter dict: no module is written), eval mode with fresh
BatchNorm statistics (running mean 0, var 1), a Gaussian batch of the probe's shape. The sampled weights are element
0 of each of the first 128 parameter tensors in registration order (p = 1, the NB201 code behind the paper's
Table 1). Per sample n: J_n = ∂z_n/∂θ_S (K × P), π_n = (1 - α) softmax(z_n) + α/K with α = 0.05, and L_n the
closed-form Cholesky factor of diag(π_n) - π_n π_nᵀ (Tanabe & Sagae 1992). The Fisher is
F = (1/B) Σ_n (L_n J_n)ᵀ (L_n J_n) as the authors' code computes it (``vkdnw_fisher="repo"``, default; the exact
Fisher (1/B) Σ J_nᵀ L_n L_nᵀ J_n with ``"exact"``). VKDNW = -Σ_{k=1..9} q̂_k ln(q̂_k + 1e-10), q_k the k/10 quantiles
(linear interpolation) of F's eigenvalues and q̂ = q / (Σ|q| + 1e-10); at most ln 9.

The per-sample Jacobians come from ``torch.func``: ``jacrev`` with respect to one scalar added to element 0 of each
sampled tensor, ``vmap`` over samples (eval mode makes samples independent), in chunks to bound memory.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import torch
from torch import nn
from torch.func import jacrev, vmap

from lswag_lightning.proxies.author_passes import _generator, gaussian_like, kaiming_state
from lswag_lightning.proxies.forward import ProbeRunner
from lswag_lightning.proxies.options import ScoringOptions
from lswag_lightning.proxies.registry import register_pass, register_proxy
from lswag_lightning.proxies.results import ProxyError, ProxyOutput, SessionData

MAX_TENSORS = 128  # the authors' params_grad_len
ALPHA = 0.05  # the softmax smoothing of π
_EPS = 1e-10


def smoothed_probabilities(logits: torch.Tensor) -> torch.Tensor:
    """π = (1 - α) softmax(z) + α / K, rows of (B, K)."""
    k = logits.shape[-1]
    return (1 - ALPHA) * torch.softmax(logits, dim=-1) + ALPHA / k


def multinomial_cholesky(pi: torch.Tensor) -> torch.Tensor:
    """Closed-form lower Cholesky factor L of diag(π) - ππᵀ for each row π of (B, K) (Tanabe & Sagae 1992):
    Q_j = 1 - Σ_{k<=j} π_k, L_jj = sqrt(π_j Q_j / Q_{j-1}), L_ij = -π_i L_jj / Q_j (i > j); the last column is 0."""
    b, k = pi.shape
    q = 1.0 - torch.cumsum(pi, dim=1)
    q_prev = torch.cat([torch.ones(b, 1, dtype=pi.dtype, device=pi.device), q[:, :-1]], dim=1)
    q = q.clone()
    q[:, -1] = 0.0
    diag = torch.sqrt((pi * q / q_prev).clamp_min(0.0))
    safe_q = torch.where(q > 0, q, torch.ones_like(q))
    lower = -pi[:, :, None] * (diag / safe_q)[:, None, :]  # [b, i, j] = -π_i L_jj / Q_j
    mask = torch.tril(torch.ones(k, k, dtype=torch.bool, device=pi.device), diagonal=-1)
    factor = torch.where(mask, lower, torch.zeros_like(lower))
    factor = factor + torch.diag_embed(diag)
    factor[:, :, -1] = 0.0
    return factor


def decile_entropy(eigenvalues: torch.Tensor) -> float:
    """-Σ q̂ ln(q̂ + 1e-10) over the 9 deciles q of the eigenvalues, q̂ = q / (Σ|q| + 1e-10)."""
    q = torch.quantile(
        eigenvalues.to(torch.float64), torch.linspace(0.1, 0.9, 9, dtype=torch.float64, device=eigenvalues.device)
    )
    q_hat = q / (q.abs().sum() + _EPS)
    return float(-(q_hat * torch.log(q_hat + _EPS)).sum())


@dataclass(frozen=True)
class VKDNWOptions:
    """The options of the VKDNW pass (``vkdnw``, ``vkdnw_single``).

    - ``vkdnw_fisher``: ``"repo"`` (the authors' (LJ)ᵀ(LJ), default) or ``"exact"`` (Jᵀ L Lᵀ J = Jᵀ Σ J).
    - ``vkdnw_chunk``: samples per vectorised Jacobian chunk (memory: chunk × classes × sampled tensors' sizes).
    """

    vkdnw_fisher: str = "repo"
    vkdnw_chunk: int = 8

    def __post_init__(self) -> None:
        if self.vkdnw_fisher not in ("repo", "exact"):
            raise ValueError(f"vkdnw_fisher={self.vkdnw_fisher!r}: use 'repo' or 'exact'")
        chunk = self.vkdnw_chunk
        if isinstance(chunk, bool) or not isinstance(chunk, int) or chunk < 1:
            raise ValueError(f"vkdnw_chunk={chunk!r}: need an integer >= 1")


@dataclass
class VKDNWResult:
    entropy: float
    tensors: int  # ℵ: parameter tensors of the whole model
    sampled: list[str]  # the tensors whose element 0 was sampled
    eigenvalues: list[float]  # of F, ascending
    input: str = "gaussian"  # what was fed: the Gaussian batch, or the probe for integer inputs


@register_pass(
    "vkdnw",
    produces={
        "vkdnw_pass": "VKDNW: per-sample Jacobians of the logits on sampled weights, Gaussian batch, eval mode, "
        "Kaiming re-initialisation (vectorised reverse passes, one per class)"
    },
    weight_gradients=True,
    options=VKDNWOptions,
)
def vkdnw_pass(probe: ProbeRunner, work: nn.Module, products: frozenset[str]) -> VKDNWResult:
    """The Fisher spectrum on sampled weights (module docstring: the protocol)."""
    probe.require_class_logits("vkdnw")  # dense logits: one reverse pass per output element, then unreadable
    opts = probe.options
    vkdnw_options = opts.of(VKDNWOptions)
    names = [n for n, p in work.named_parameters() if p.is_floating_point()]
    if not names:
        raise ProxyError("the model has no floating-point parameters")
    state = kaiming_state(work, opts.seed)
    buffers = {}
    for name, buf in work.named_buffers():
        if name.endswith("running_mean"):
            buffers[name] = torch.zeros_like(buf)
        elif name.endswith("running_var"):
            buffers[name] = torch.ones_like(buf)
        else:
            buffers[name] = buf
    work.eval()
    sampled = names[:MAX_TENSORS]
    onehots = {}
    for name in sampled:
        e0 = torch.zeros_like(state[name]).reshape(-1)
        e0[0] = 1.0
        onehots[name] = e0.reshape(state[name].shape)
    generator = _generator(opts.seed)
    if probe.inputs.is_floating_point():
        x = gaussian_like(probe.inputs[: probe.batch_size].shape, generator, probe.inputs.device, probe.inputs.dtype)
        source = "gaussian"
    else:  # token ids or raw pixels cannot be Gaussian: the probe batch itself, as AZ-NAS does here
        x = probe.inputs[: probe.batch_size]
        source = "probe (integer inputs cannot be Gaussian)"
    targets = probe.targets_at(slice(0, 1))

    def logits_of(deltas: torch.Tensor, sample: torch.Tensor) -> torch.Tensor:
        params = dict(state)
        for index, name in enumerate(sampled):
            params[name] = state[name] + deltas[index] * onehots[name]
        return probe.adapter(probe.functional_forward(work, {**params, **buffers}, sample[None], targets))[0]

    deltas = torch.zeros(len(sampled), dtype=state[sampled[0]].dtype, device=x.device)
    with warnings.catch_warnings():  # one warning per op without a batching rule (attention): noise, not news
        warnings.filterwarnings("ignore", message=".*batching rule.*")
        jac = vmap(jacrev(logits_of), in_dims=(None, 0), chunk_size=vkdnw_options.vkdnw_chunk)(deltas, x)  # (B, K, P)
    with torch.no_grad():
        logits = vmap(logits_of, in_dims=(None, 0), chunk_size=vkdnw_options.vkdnw_chunk)(deltas, x)  # (B, K)
    jac, logits = jac.detach().to(torch.float64), logits.detach().to(torch.float64)
    factor = multinomial_cholesky(smoothed_probabilities(logits))  # (B, K, K)
    if vkdnw_options.vkdnw_fisher == "exact":
        factor = factor.transpose(1, 2)
    lj = factor @ jac  # (B, K, P)
    fisher = torch.einsum("bkp,bkq->pq", lj, lj) / jac.shape[0]
    try:
        eig = torch.linalg.eigvalsh(fisher)
    except RuntimeError:  # the authors' rule when the decomposition fails: VKDNW = 0
        return VKDNWResult(entropy=0.0, tensors=len(names), sampled=sampled, eigenvalues=[], input=source)
    return VKDNWResult(
        entropy=decile_entropy(eig),
        tensors=len(names),
        sampled=sampled,
        eigenvalues=[float(v) for v in eig],
        input=source,
    )


@register_proxy(
    "vkdnw",
    higher_is_better=True,
    needs=("vkdnw_pass",),
    description="VKDNW: entropy of the deciles of the Fisher spectrum on sampled weights (CVPR 2025)",
)
def vkdnw(data: SessionData, options: ScoringOptions) -> ProxyOutput:
    result: VKDNWResult = data.get("vkdnw_pass")
    return ProxyOutput(
        value=result.entropy,
        details={
            "max": math.log(9),
            "sampled_tensors": len(result.sampled),
            "fisher": options.of(VKDNWOptions).vkdnw_fisher,
            "input": result.input,
            "eigenvalues": result.eigenvalues,
        },
    )


@register_proxy(
    "vkdnw_layers",
    higher_is_better=True,
    needs=(),
    description="ℵ: the number of parameter tensors of the model (VKDNW's first ranking key)",
)
def vkdnw_layers(data: SessionData, options: ScoringOptions) -> ProxyOutput:
    return ProxyOutput(value=float(data.parameter_tensors))


def single_score(tensors: float, entropy: float) -> float:
    """VKDNW_single as one number: ℵ + VKDNW / (2 ln 9). VKDNW lies in [0, ln 9], so this orders networks by ℵ
    first and VKDNW second, exactly the authors' dense lexicographic rank of (ℵ, VKDNW); higher is better."""
    return float(tensors) + float(entropy) / (2.0 * math.log(9))


@register_proxy(
    "vkdnw_single",
    higher_is_better=True,
    needs=("vkdnw_pass",),
    description="VKDNW_single: networks ordered by ℵ, then by VKDNW (ℵ + VKDNW / (2 ln 9))",
)
def vkdnw_single(data: SessionData, options: ScoringOptions) -> ProxyOutput:
    result: VKDNWResult = data.get("vkdnw_pass")
    return ProxyOutput(
        value=single_score(data.parameter_tensors, result.entropy),
        details={"vkdnw_layers": data.parameter_tensors, "vkdnw": result.entropy},
    )
