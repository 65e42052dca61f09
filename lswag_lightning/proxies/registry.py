"""The proxy registry: one source of truth for every zero-cost proxy's name and metadata.

Each proxy registers once, with what it needs from the scoring engine. The engine reads ``needs`` to plan the
fewest passes; analysis code reads ``higher_is_better`` to orient values before ranking.

A leaf, as timm's registry: this module imports none of its entries. The package (``lswag_lightning/proxies/
__init__.py``) imports every proxy module once, so any import under ``lswag_lightning.proxies`` fills the registry
before an accessor can run.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable
from dataclasses import dataclass, field

# What a proxy can need from the engine. The engine runs each needed pass once for all proxies.
NEEDS = {
    "labels": "the targets of the probe batch (a loss is computed)",
    "grad_stats": "per-element gradient statistics over K gradient samples (Λ, ZiCo): K forward+backward passes",
    "per_sample_grad_stats": "gradient statistics over single-sample gradients: one backward per sample",
    "batch_grads": "weight gradients of the loss on the whole batch: one forward+backward",
    "activations": "binarised outputs of every activation point on the whole batch: one forward",
    "naswot_kernel": "the Hamming kernel of activation codes on the whole batch (shares the activation forward)",
    "input_grads": "gradient of the summed logits with respect to the inputs (shares the batch forward)",
    "synflow_pass": "its own float64 forward+backward of an all-ones input with |weights|",
    "flops_pass": "a one-sample forward under torch.utils.flop_counter",
    "az_features": "AZ-NAS: a Gaussian batch through Kaiming re-initialised weights, block features and block-local "
    "Jacobian products (its own forward + one backward)",
    "meco_pass": "MeCo: one forward of the first probe sample (batch 1, the model's own weights)",
    "vkdnw_pass": "VKDNW: per-sample Jacobians of the logits on sampled weights, Gaussian batch, eval mode, "
    "Kaiming re-initialisation (vectorised reverse passes, one per class)",
}


@dataclass(frozen=True)
class ProxySpec:
    """Metadata of one registered proxy.

    ``compute(data, options) -> ProxyOutput`` reduces the engine's shared pass results to the proxy's value.
    ``higher_is_better`` says how to orient the value before ranking. ``extra_values`` lists the names of the
    sub-values reported next to the main one (e.g. ``lswag.lambda``).
    """

    name: str
    compute: Callable
    higher_is_better: bool
    needs: frozenset[str]
    description: str
    extra_values: tuple[str, ...] = field(default=())

    @property
    def needs_labels(self) -> bool:
        return "labels" in self.needs


_REGISTRY: dict[str, ProxySpec] = {}


def register_proxy(
    name: str,
    *,
    higher_is_better: bool,
    needs: tuple[str, ...] | frozenset[str],
    description: str,
    extra_values: tuple[str, ...] = (),
) -> Callable:
    """Decorator registering ``compute`` under ``name``. Registering a name twice is an error."""
    unknown = set(needs) - set(NEEDS)
    if unknown:
        raise ValueError(f"proxy {name!r} declares unknown needs {sorted(unknown)}; known: {sorted(NEEDS)}")

    def decorate(compute: Callable) -> Callable:
        if name in _REGISTRY:
            raise ValueError(f"a proxy named {name!r} is already registered")
        _REGISTRY[name] = ProxySpec(name, compute, higher_is_better, frozenset(needs), description, tuple(extra_values))
        return compute

    return decorate


def available_proxies() -> list[str]:
    """Names of all registered proxies, sorted."""
    return sorted(_REGISTRY)


def get_proxy(name: str) -> ProxySpec:
    """The spec of proxy ``name``; ``ValueError`` naming the closest registered names when unknown."""
    try:
        return _REGISTRY[name]
    except KeyError:
        close = difflib.get_close_matches(name, _REGISTRY, n=3)
        hint = f" Did you mean {', '.join(map(repr, close))}?" if close else ""
        raise ValueError(f"unknown proxy {name!r}.{hint} Available proxies: {', '.join(sorted(_REGISTRY))}") from None


def higher_is_better(name: str) -> bool | None:
    """Orientation of a proxy or sub-value name (``lswag.psi`` -> that of ``lswag``); None when unregistered."""
    base = name.split(".", 1)[0]
    spec = _REGISTRY.get(base)
    return None if spec is None else spec.higher_is_better
