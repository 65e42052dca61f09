"""Coverage: which share of a model's parameters a proxy measured, and the module types it could not measure.

The gradient proxies (Λ, ZiCo, zico_ps, snip, grad_norm, synflow) measure the weights of Conv/Linear layers that the
gradient reaches; the activation proxies (Ψ, SWAP, NASWOT) read patterns that only the modules run before the last
activation point can shape, out of every parameter but the readout's (the modules whose output is the logits, which
map the last patterns to the outputs: left out by the definition of these proxies). On a model whose parameters
live elsewhere (an LSTM's gates, an embedding table, an attention's fused input projection) the value describes a
part of the model, sometimes a sliver: Λ on an LSTM classifier measures its Linear head, 64 of 1,604 parameters.

Every such proxy records its :class:`Coverage` in ``details[<proxy>]["coverage"]``. Below ``min_coverage`` (a
scoring option, default 0.5) its status is ``partial: ...`` (the value is kept, never a plain ``ok``), naming the
share and the module types not measured; the callback warns with it and W&B shows it.

**Why 0.5.** Above half, what a proxy leaves out is what its definition leaves out on the networks it was designed
for: biases, normalisation affines, positional and class tokens (1-5 % on NAS-Bench-201, NAS-Bench-101, DARTS and
AutoFormer networks), an attention's fused input projection (a quarter of a transformer block) or an embedding table.
Below half, most of the model is invisible to the value: two architectures that differ only there get the same
number, so the value cannot rank them, which is what the user scores them for. Set ``min_coverage=0`` to accept
partial values as ``ok`` (the coverage is still recorded), or ``1`` to flag anything not fully measured.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from lswag_lightning.proxies.layers import weight_modules

#: the default ``min_coverage`` (see the module docstring for why)
DEFAULT_MIN_COVERAGE = 0.5


@dataclass(frozen=True)
class Coverage:
    """What a proxy measured: ``measured`` of ``total`` parameter elements (each parameter once, tied ones once),
    and the parameter elements measured and not measured per owning module type."""

    what: str
    measured: int
    total: int
    measured_types: dict[str, int] = field(default_factory=dict)
    unmeasured_types: dict[str, int] = field(default_factory=dict)
    by_definition: dict[str, int] = field(default_factory=dict)  # left out of ``total``: not the proxy's to measure

    @property
    def share(self) -> float:
        """measured / total, in [0, 1] (1 for a model without parameters)."""
        return self.measured / self.total if self.total else 1.0

    def details(self) -> dict[str, Any]:
        """JSON-ready: ``share``, ``measured``, ``total``, ``what``, the types measured and not measured."""
        return {
            "share": self.share,
            "measured": self.measured,
            "total": self.total,
            "what": self.what,
            "measured_types": dict(self.measured_types),
            "unmeasured_types": dict(self.unmeasured_types),
            "left_out_by_definition": dict(self.by_definition),
        }

    def not_measured(self) -> dict[str, int]:
        """The module types none of whose parameters were measured, largest first (e.g. ``{"LSTM": 1536}``)."""
        missing = {t: n for t, n in self.unmeasured_types.items() if t not in self.measured_types}
        return dict(sorted(missing.items(), key=lambda item: -item[1]))

    def shortfall(self, minimum: float) -> str | None:
        """The ``partial`` status text (cause; fix) when the share is below ``minimum``, else None."""
        if self.share >= minimum:
            return None
        missing = self.not_measured() or self.unmeasured_types
        types = ", ".join(f"{t} ({n:,})" for t, n in list(missing.items())[:4])
        return (
            f"measured {self.measured:,} of {self.total:,} parameters ({self.share:.1%}, below min_coverage="
            f"{minimum:g}): {self.what}; not measured: {types}. The value describes that part only: score a model "
            "whose parameters sit in Conv/Linear layers, or pass min_coverage=0 to accept it"
        )


class ParameterCensus:
    """Every parameter of a model once (a tied parameter once), with its name, size and owning module type."""

    def __init__(self, model: nn.Module) -> None:
        self._owner: dict[int, tuple[str, str, int]] = {}
        for module_name, module in model.named_modules():
            for param_name, param in module.named_parameters(recurse=False):
                if id(param) not in self._owner:
                    full = f"{module_name}.{param_name}" if module_name else param_name
                    self._owner[id(param)] = (full, type(module).__name__, param.numel())
        self.total = sum(numel for _, _, numel in self._owner.values())

    def coverage(
        self, measured: Iterable[torch.Tensor], what: str, by_definition: Iterable[torch.Tensor] = ()
    ) -> Coverage:
        """The coverage of the parameters ``measured`` (tensors of this model; others are ignored), out of every
        parameter but those ``by_definition`` not the proxy's to measure (e.g. the activation proxies' readout)."""
        ids = {id(p) for p in measured}
        outside = {id(p) for p in by_definition} - ids
        buckets: tuple[dict[str, int], dict[str, int], dict[str, int]] = ({}, {}, {})
        for key, (_, owner, numel) in self._owner.items():
            bucket = buckets[0] if key in ids else buckets[2] if key in outside else buckets[1]
            bucket[owner] = bucket.get(owner, 0) + numel
        measured_types, unmeasured_types, left_out = buckets
        total = self.total - sum(left_out.values())
        return Coverage(what, sum(measured_types.values()), total, measured_types, unmeasured_types, left_out)


def zero_weight_layers(model: nn.Module) -> list[str]:
    """Conv/Linear layers whose weight is all zeros (zero-initialised): they cut every path through them."""
    return [name for name, m in weight_modules(model) if not bool(m.weight.detach().any())]
