"""Two toy proxies, added in this one file through the public API (docs/extending.md walks through it).

- ``logit_entropy`` needs a pass of its own: ``eval logits`` (one eval-mode, no-grad forward of the batch), registered
  here beside the code that computes it, with its option ``entropy_temperature``.
- ``active_fraction`` reuses a need an existing pass produces (``naswot_kernel``, from the batch pass): no new pass.

Toys: they show the mechanics, they make no claim to rank architectures.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from lswag_lightning.proxies import (
    ProbeRunner,
    ProxyOutput,
    ScoringOptions,
    SessionData,
    register_pass,
    register_proxy,
)


@register_pass(
    "eval logits",
    produces={"eval_logits": "the logits of the whole batch in eval mode, without gradient: one forward"},
)
def eval_logits(probe: ProbeRunner, work: nn.Module, products: frozenset[str]) -> torch.Tensor:
    """Logits (batch, classes) of the probe batch, BatchNorm on its running statistics."""
    work.eval()
    with torch.no_grad():
        return probe.logits(work, probe.inputs[: probe.batch_size], probe.targets_at(slice(0, probe.batch_size)))


@dataclass(frozen=True)
class LogitEntropyOptions:
    """The option of ``logit_entropy``.

    - ``entropy_temperature``: T > 0 dividing the logits before the softmax (default 1).
    """

    entropy_temperature: float = 1.0

    def __post_init__(self) -> None:
        if not self.entropy_temperature > 0:
            raise ValueError(f"entropy_temperature={self.entropy_temperature!r} must be > 0")


@register_proxy(
    "logit_entropy",
    higher_is_better=True,
    needs=("eval_logits",),
    description="toy: mean entropy (nats) of softmax(logits / T) of the initialised network over the probe batch",
    options=LogitEntropyOptions,
)
def logit_entropy(data: SessionData, options: ScoringOptions) -> ProxyOutput:
    logits = data.get("eval_logits").to(torch.float64)
    temperature = options.of(LogitEntropyOptions).entropy_temperature
    log_p = torch.log_softmax(logits / temperature, dim=1)
    entropy = -(log_p.exp() * log_p).sum(dim=1)
    return ProxyOutput(
        value=float(entropy.mean()), details={"max": math.log(logits.shape[1]), "temperature": temperature}
    )


@register_proxy(
    "active_fraction",
    higher_is_better=True,
    needs=("naswot_kernel",),
    description="toy: mean fraction of activation units that fire, per sample of the probe batch",
)
def active_fraction(data: SessionData, options: ScoringOptions) -> ProxyOutput:
    acts = data.get("naswot_kernel")  # row_sums: active units per sample, over every activation point
    units = sum(acts.neurons)
    return ProxyOutput(value=float(acts.row_sums.mean()) / units, details={"units": units, "points": len(acts.points)})
