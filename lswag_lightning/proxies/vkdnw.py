"""VKDNW (Týbl & Neumann, CVPR 2025): the entropy of the deciles of the Fisher information spectrum on sampled
weights, and ℵ, the number of parameter tensors (PROXIES2.md §2).

Protocol: Kaiming re-initialisation (as AZ-NAS, in a parameter dict: no module is written), eval mode with fresh
BatchNorm statistics (running mean 0, var 1), a Gaussian batch of the probe's shape. The sampled weights are element
0 of each of the first 128 parameter tensors in registration order (p = 1, the NB201 code behind the paper's
Table 1; a tied tensor counts once). Per sample n: J_n = ∂r_n/∂θ_S (K × P), r_n the read logits (below),
π_n = (1 - α) softmax(r_n) + α/K with α = 0.05, and L_n the closed-form Cholesky factor of diag(π_n) - π_n π_nᵀ
(Tanabe & Sagae 1992). The Fisher is F = (1/B) Σ_n (L_n J_n)ᵀ (L_n J_n) as the authors' code computes it
(``vkdnw_fisher="repo"``, default; the exact Fisher (1/B) Σ J_nᵀ L_n L_nᵀ J_n with ``"exact"``). VKDNW =
-Σ_{k=1..9} q̂_k ln(q̂_k + 1e-10), q_k the k/10 quantiles (linear interpolation) of F's eigenvalues and
q̂ = q / (Σ|q| + 1e-10); at most ln 9.

**Readings of the output** (``vkdnw_output``): the authors' models are classifiers with (B, K) logits and a softmax.

- ``"softmax"``: a categorical over K >= 2 classes (the paper). Dense logits (B, K, *positions), as a segmentation
  model gives them (classes at dim 1, PyTorch's cross-entropy layout; classes last when the targets are
  (B, *positions) = the logits' shape without the last dimension, as a language model gives (B, T, V)), are read as
  the logits **averaged over the positions**: the image-level class distribution. Why: the per-pixel Fisher
  (1/HW) Σ_pos J_posᵀ Σ_pos J_pos would need K reverse passes per position (HW times a classifier's cost), pooling
  keeps VKDNW's cost and equals the classifier's value for a (B, K, 1, 1) output; the spectrum still reflects every
  weight that shapes the dense map.
- ``"sigmoid"``: independent Bernoulli outputs (multi-label, or a binary classifier with one logit):
  p = (1 - α) σ(r) + α/2 and L = diag(sqrt(p (1 - p))), the Bernoulli Fisher Σ_k p_k(1 - p_k) ∇r_k ∇r_kᵀ.
- ``"gaussian"``: regression outputs, the Fisher of a unit-variance Gaussian likelihood: L = I, F = (1/B) Σ J_nᵀ J_n.
- ``"auto"`` (default): ``"sigmoid"`` when the targets are multi-hot (float 0/1 of the logits' shape, not one-hot),
  else ``"softmax"``. A softmax over one output is constant (its Fisher is 0): a ``degenerate:`` status naming
  ``vkdnw_output="gaussian"`` (regression) or ``"sigmoid"`` (a binary classifier) as the fix.

The per-sample Jacobians come from ``jacobians.py`` (no ``vmap``): K backward passes of the batch with each standard
layer's per-sample derivative read from its input and output gradient, forward-mode products for the other
parameters, a per-sample loop when the samples are not independent; ``details["methods"]`` counts each.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import nn

from lswag_lightning.proxies.author_passes import _generator, check_draws, gaussian_like, kaiming_state
from lswag_lightning.proxies.forward import ProbeRunner
from lswag_lightning.proxies.jacobians import JacobianResult, per_sample_jacobians
from lswag_lightning.proxies.options import ScoringOptions
from lswag_lightning.proxies.registry import register_pass, register_proxy
from lswag_lightning.proxies.results import DegenerateValue, ProxyError, ProxyOutput, SessionData
from lswag_lightning.proxies.swapped import checkpoint_fix, run_swapped, unwrap_compiled

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


READINGS = ("auto", "softmax", "sigmoid", "gaussian")


@dataclass(frozen=True)
class VKDNWOptions:
    """The options of the VKDNW pass (``vkdnw``, ``vkdnw_single``).

    - ``vkdnw_fisher``: ``"repo"`` (the authors' (LJ)ᵀ(LJ), default) or ``"exact"`` (Jᵀ L Lᵀ J = Jᵀ Σ J).
    - ``vkdnw_output``: how the logits are read: ``"auto"`` (default), ``"softmax"``, ``"sigmoid"`` (independent
      Bernoulli outputs) or ``"gaussian"`` (regression); the module docstring defines each.
    - ``vkdnw_chunk``: samples per batch forward of the Jacobian passes (memory: that forward's graph is kept for
      K backward passes); None (default): the whole batch at once. The value does not depend on it.
    - ``vkdnw_draws``: random draws averaged (default 1, the authors' single draw): VKDNW is the mean of the entropy
      over draws d = 0..D-1, draw d using seed ``seed + d`` for the Kaiming weights and the Gaussian batch (D times
      the cost; docs/proxies/vkdnw.md measures the rank stability it buys).
    """

    vkdnw_fisher: str = "repo"
    vkdnw_output: str = "auto"
    vkdnw_chunk: int | None = None
    vkdnw_draws: int = 1

    def __post_init__(self) -> None:
        if self.vkdnw_fisher not in ("repo", "exact"):
            raise ValueError(f"vkdnw_fisher={self.vkdnw_fisher!r}: use 'repo' or 'exact'")
        if self.vkdnw_output not in READINGS:
            raise ValueError(f"vkdnw_output={self.vkdnw_output!r}: use one of {list(READINGS)}")
        chunk = self.vkdnw_chunk
        if chunk is not None and (isinstance(chunk, bool) or not isinstance(chunk, int) or chunk < 1):
            raise ValueError(f"vkdnw_chunk={chunk!r}: need an integer >= 1, or None for the whole batch")
        check_draws(self.vkdnw_draws, "vkdnw_draws")


@dataclass
class VKDNWResult:
    entropy: float
    tensors: int  # ℵ: parameter tensors of the whole model
    sampled: list[str]  # the tensors whose element 0 was sampled
    eigenvalues: list[float]  # of F, ascending
    input: str = "gaussian"  # what was fed: the Gaussian batch, or the probe for integer inputs
    reading: dict = field(default_factory=dict)  # how the logits were read (kind, class dim, positions averaged)
    methods: dict = field(default_factory=dict)  # Jacobian method -> number of sampled tensors
    draw_entropies: list[float] = field(default_factory=list)  # with vkdnw_draws > 1: each draw's entropy


class LogitReader:
    """Maps the model's logits to the read logits (n, K) of ``vkdnw_output`` (module docstring); decides the
    reading on the first call from the logits' shape and the probe's targets."""

    def __init__(self, option: str, targets: torch.Tensor | None) -> None:
        self.option, self.targets = option, targets
        self.kind: str | None = None
        self.class_dim = 1
        self.positions = 1

    def __call__(self, logits: torch.Tensor, samples: int) -> torch.Tensor:
        if not isinstance(logits, torch.Tensor) or logits.ndim < 2 or logits.shape[0] != samples:
            shape = tuple(logits.shape) if isinstance(logits, torch.Tensor) else type(logits).__name__
            raise ProxyError(
                f"VKDNW needs logits (batch, outputs, ...) with one row per sample, the model gave {shape} for "
                f"{samples} samples; pass output_adapter= mapping the output to that shape"
            )
        if self.kind is None:
            self._decide(logits)
        if logits.ndim > 2:
            logits = logits.movedim(self.class_dim, 1).reshape(logits.shape[0], logits.shape[self.class_dim], -1)
            logits = logits.mean(dim=2)
        return logits

    def _decide(self, logits: torch.Tensor) -> None:
        targets = self.targets
        if logits.ndim > 2:
            last = targets is not None and tuple(targets.shape) == tuple(logits.shape[:-1])
            self.class_dim = logits.ndim - 1 if last else 1
            self.positions = logits[0].numel() // logits.shape[self.class_dim]
        classes = logits.shape[self.class_dim]
        kind = self.option
        if kind == "auto":
            kind = "sigmoid" if _multi_hot(targets, logits) else "softmax"
        if kind == "softmax" and classes < 2:
            raise DegenerateValue(
                "VKDNW's softmax over 1 output is constant, so its Fisher is 0; pass vkdnw_output='gaussian' for "
                "a regression model (the Fisher of a unit-variance Gaussian) or 'sigmoid' for a binary classifier"
            )
        self.kind = kind

    def describe(self) -> dict:
        return {"kind": self.kind, "class_dim": self.class_dim, "positions_averaged": self.positions}


def _multi_hot(targets: torch.Tensor | None, logits: torch.Tensor) -> bool:
    """Float 0/1 targets of the logits' (B, K) shape that are not all one-hot rows: multi-label (or one logit)."""
    if targets is None or not targets.is_floating_point() or tuple(targets.shape) != tuple(logits.shape):
        return False
    binary = bool(((targets == 0) | (targets == 1)).all())
    one_hot = targets.shape[-1] >= 2 and bool((targets.sum(dim=-1) == 1).all())
    return binary and not one_hot


def fisher_factor(logits: torch.Tensor, kind: str, fisher: str) -> torch.Tensor:
    """(B, K, K) factor M_n with F = (1/B) Σ (M_n J_n)ᵀ (M_n J_n), for the reading ``kind`` (float64 logits)."""
    if kind == "sigmoid":
        p = (1 - ALPHA) * torch.sigmoid(logits) + ALPHA / 2
        return torch.diag_embed(torch.sqrt(p * (1 - p)))
    if kind == "gaussian":
        eye = torch.eye(logits.shape[1], dtype=logits.dtype, device=logits.device)
        return eye.expand(logits.shape[0], -1, -1)
    factor = multinomial_cholesky(smoothed_probabilities(logits))
    return factor.transpose(1, 2) if fisher == "exact" else factor


def protocol_state(work: nn.Module, seed: int) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """Kaiming-initialised parameters and fresh BatchNorm statistics (running mean 0, var 1)."""
    state = kaiming_state(work, seed)
    buffers = {}
    for name, buf in work.named_buffers():
        if name.endswith("running_mean"):
            buffers[name] = torch.zeros_like(buf)
        elif name.endswith("running_var"):
            buffers[name] = torch.ones_like(buf)
        else:
            buffers[name] = buf
    return state, buffers


def _jacobians(
    probe: ProbeRunner, work: nn.Module, state: dict, sampled: list[str], x: torch.Tensor, reader: LogitReader
) -> JacobianResult:
    """Per-sample Jacobians of the read logits, chunk by chunk (``vkdnw_chunk``), weights swapped throughout."""

    def forward_of(offset: int) -> Callable[[torch.Tensor, slice], torch.Tensor]:
        def forward(inputs: torch.Tensor, samples: slice) -> torch.Tensor:
            targets = probe.targets_at(slice(offset + samples.start, offset + samples.stop))
            return reader(probe.adapter(probe.forward(work, inputs, targets)), inputs.shape[0])

        return forward

    options = probe.options.of(VKDNWOptions)

    def outputs_needed(classes: int) -> list[int]:
        # the authors' factor L has a zero last column: (L J) never reads J's last row
        skip = reader.kind == "softmax" and options.vkdnw_fisher == "repo"
        return list(range(classes - 1 if skip else classes))

    chunk = options.vkdnw_chunk or x.shape[0]
    parts = [
        per_sample_jacobians(work, state, sampled, x[start : start + chunk], forward_of(start), outputs_needed)
        for start in range(0, x.shape[0], chunk)
    ]
    if len(parts) == 1:
        return parts[0]
    return JacobianResult(
        jacobian=torch.cat([p.jacobian for p in parts]),
        logits=torch.cat([p.logits for p in parts]),
        methods=parts[0].methods,
        independent=all(p.independent for p in parts),
    )


@register_pass(
    "vkdnw",
    produces={
        "vkdnw_pass": "VKDNW: per-sample Jacobians of the logits on sampled weights, Gaussian batch, eval mode, "
        "Kaiming re-initialisation (one forward and K backward passes of the batch, forward-mode products for "
        "parameters outside standard layers)"
    },
    weight_gradients=True,
    explain=checkpoint_fix,
    options=VKDNWOptions,
)
def vkdnw_pass(probe: ProbeRunner, work: nn.Module, products: frozenset[str]) -> VKDNWResult:
    """The Fisher spectrum on sampled weights (module docstring: the protocol), averaged over ``vkdnw_draws``."""
    opts = probe.options
    work = unwrap_compiled(work)
    names = [n for n, p in work.named_parameters() if p.is_floating_point()]
    if not names:
        raise ProxyError("the model has no floating-point parameters")
    work.eval()
    draws = [_vkdnw_draw(probe, work, names, opts.seed + draw) for draw in range(opts.of(VKDNWOptions).vkdnw_draws)]
    result = draws[0]
    if len(draws) > 1:
        result.draw_entropies = [d.entropy for d in draws]
        result.entropy = float(sum(result.draw_entropies) / len(draws))
    return result


def _vkdnw_draw(probe: ProbeRunner, work: nn.Module, names: list[str], seed: int) -> VKDNWResult:
    """One draw: Kaiming weights and the Gaussian batch of ``seed``."""
    vkdnw_options = probe.options.of(VKDNWOptions)
    state, buffers = protocol_state(work, seed)
    sampled = names[:MAX_TENSORS]
    for name in sampled:
        state[name] = state[name].detach().requires_grad_(True)
    generator = _generator(seed)
    if probe.inputs.is_floating_point():
        x = gaussian_like(probe.inputs[: probe.batch_size].shape, generator, probe.inputs.device, probe.inputs.dtype)
        source = "gaussian"
    else:  # token ids or raw pixels cannot be Gaussian: the probe batch itself, as AZ-NAS does here
        x = probe.inputs[: probe.batch_size]
        source = "probe (integer inputs cannot be Gaussian)"
    reader = LogitReader(vkdnw_options.vkdnw_output, probe.targets_at(slice(0, x.shape[0])))
    result = run_swapped(work, {**state, **buffers}, lambda: _jacobians(probe, work, state, sampled, x, reader))
    if not bool(result.jacobian.any()):
        raise DegenerateValue(
            "no sampled weight (element 0 of the first 128 parameter tensors) reaches the logits, so the Fisher is "
            "0; score a model whose first parameter tensors are used by its forward"
        )
    methods: dict[str, int] = {}
    for how in result.methods.values():
        methods[how] = methods.get(how, 0) + 1
    lj = fisher_factor(result.logits, reader.kind, vkdnw_options.vkdnw_fisher) @ result.jacobian  # (B, K, P)
    fisher = torch.einsum("bkp,bkq->pq", lj, lj) / result.jacobian.shape[0]
    common = {"tensors": len(names), "sampled": sampled, "input": source, "reading": reader.describe()}
    try:
        eig = torch.linalg.eigvalsh(fisher)
    except RuntimeError:  # the authors' rule when the decomposition fails: VKDNW = 0
        return VKDNWResult(entropy=0.0, eigenvalues=[], methods=methods, **common)
    return VKDNWResult(entropy=decile_entropy(eig), eigenvalues=[float(v) for v in eig], methods=methods, **common)


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
            "reading": result.reading,
            "methods": result.methods,
            "draws": result.draw_entropies or [result.entropy],
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
