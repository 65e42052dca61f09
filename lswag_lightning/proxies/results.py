"""What the engine's passes see and deliver, and what a proxy's ``compute`` returns: plain data shared by every proxy
and pass."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from lswag_lightning.proxies.coverage import Coverage
from lswag_lightning.proxies.options import ScoringOptions


class ProxyError(RuntimeError):
    """A proxy (or a pass it needs) cannot be computed on this model; the message says why."""


#: the status prefix of a value that carries no information (see :class:`DegenerateValue`)
DEGENERATE = "degenerate: "
#: the status prefix of a value measured on less than ``min_coverage`` of the model (see ``coverage.py``)
PARTIAL = "partial: "


class DegenerateValue(ProxyError):
    """The value would be constant by construction for this model, so it carries no information about the
    architecture (e.g. VKDNW's Fisher with one output: its softmax is constant). Raised by a proxy's ``compute`` or
    by a pass (then every proxy reading that pass's product is degenerate); the session reports NaN with the status
    ``degenerate: <cause>; <fix>``, never a plain ``ok`` number. The message names the cause and the fix."""


@dataclass
class LayerGradStats:
    """Statistics of one weight layer's gradient over K samples (s_w: population std of each element)."""

    name: str
    numel: int
    n_zero_std: int  # elements with s_w == 0 (dropped), for the Λ std variant
    inv_std_sum: float  # Σ_{s_w > 0} 1 / s_w   (Λ's inner sum, Λ std variant)
    zico_sum: float  # Σ_{s_w > 0} mean_K |g_w| / s_w   (ZiCo's inner sum, signed std)
    mean_log_std: float  # mean of log s_w over s_w > 0 (the per-layer statistic of METHOD.md §5)


@dataclass
class GradStatsResult:
    layers: list[LayerGradStats]  # forward order
    num_samples: int  # K
    sample_sizes: list[int]
    mean_grads: WeightGrads | None = None  # mean of the K gradients, kept when it is the batch gradient
    no_gradient: list[str] = field(default_factory=list)  # weight layers the loss does not reach (skipped)
    coverage: Coverage | None = None  # the weights whose statistics were measured


@dataclass
class ActivationResult:
    points: list[str]  # one name per activation call, forward order
    neurons: list[int]  # neurons per point (per-sample size of its output)
    codes: list[torch.Tensor] | None  # bit-packed patterns per point, each (n, W) int64
    gram: torch.Tensor | None  # (S, S) float64, Σ over points of x xᵀ for binary codes x
    row_sums: torch.Tensor | None  # (S,) float64, active units per sample
    samples: int
    coverage: Coverage | None = None  # the parameters of the modules run before the last activation point


@dataclass
class WeightGrads:
    names: list[str]
    weights: list[torch.Tensor]
    grads: list[torch.Tensor]
    no_gradient: list[str] = field(default_factory=list)  # weight layers the loss does not reach (skipped)
    coverage: Coverage | None = None  # the weights that received a gradient


@dataclass
class SessionData:
    """Everything the proxies reduce from, plus what each need cost in seconds, and two facts about the model and
    the probe that decide whether a value is degenerate: the zero-initialised weight layers (they cut every path
    through them, whatever the architecture) and whether every probe sample is the same."""

    options: ScoringOptions
    params: int
    batch_size: int
    parameter_tensors: int = 0  # ℵ: parameter tensors of the whole model
    zero_weight_layers: list[str] = field(default_factory=list)  # Conv/Linear layers whose weight is all zeros
    identical_samples: bool = False  # every sample of the probe batch equals the first
    results: dict[str, Any] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    need_seconds: dict[str, float] = field(default_factory=dict)

    def get(self, need: str) -> Any:
        """The product of ``need``; the failure of the pass that should have made it, re-raised (a degenerate
        product as :class:`DegenerateValue`)."""
        if need in self.errors:
            message = self.errors[need]
            if message.startswith(DEGENERATE):
                raise DegenerateValue(message[len(DEGENERATE) :])
            raise ProxyError(message)
        return self.results[need]


@dataclass
class ProxyOutput:
    """What a proxy's ``compute`` returns: the value, named sub-values, details, and per-key problems.

    ``coverage``: what the value measured, for every key (one :class:`Coverage`) or per key (a mapping); the session
    records it in ``details[<proxy>]["coverage"]`` and reports a value below ``min_coverage`` as ``partial``."""

    value: float
    extras: dict[str, float] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)  # key (name or extra) -> why it could not be computed
    notes: dict[str, str] = field(default_factory=dict)  # key -> why a value is not finite
    extra_needs: dict[str, tuple[str, ...]] = field(default_factory=dict)  # extra -> the needs it used
    coverage: Coverage | Mapping[str, Coverage] | None = None


def no_gradient_details(layers: list[str]) -> dict[str, Any]:
    """``details`` entry for the weight layers that received no gradient from the loss (aux heads, unused
    branches): they are skipped by the gradient statistics, never an error."""
    return {"count": len(layers), "modules": list(layers)}


@dataclass
class PassOutput:
    """What a pass with several products returns: per-need results, per-need reasons it could not deliver one (the
    status of the proxies that need it), and per-need seconds (default: the whole pass's time)."""

    results: dict[str, Any] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class SessionContext:
    """What a pass's ``claims`` and ``validate`` see, before any pass runs.

    ``model`` is the caller's model (read it, never run or write it here); ``inputs`` (batch, ...) and ``targets`` the
    probe batch as given; ``batch_size`` the samples of one batch (``inputs`` holds ``lambda_k`` batches with
    ``lambda_samples="batches"``); ``needs`` every need of the requested proxies; ``proxies`` each requested proxy's
    needs.
    """

    model: nn.Module
    inputs: torch.Tensor
    targets: torch.Tensor | None
    options: ScoringOptions
    batch_size: int
    needs: frozenset[str]
    proxies: Mapping[str, frozenset[str]]

    def requesting(self, need: str) -> list[str]:
        """The requested proxies that need ``need``, sorted (for messages)."""
        return sorted(name for name, needs in self.proxies.items() if need in needs)
