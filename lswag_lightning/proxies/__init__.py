"""Zero-cost proxies: the registries, the scoring engine and every proxy. Pure PyTorch (no Lightning, no Hydra).

The registry (:mod:`~lswag_lightning.proxies.registry`) is a leaf; the pass modules, then the proxy modules, are
imported here, once, and their ``register_pass`` / ``@register_proxy`` calls fill it (a proxy's needs must be
produced by a pass registered before it). ``docs/extending.md`` shows how to add a proxy, a pass and a space.
"""

# The built-in passes, then the built-in proxies (their import registers them); the registry never imports them.
from lswag_lightning.proxies import grad_stats, batch_pass, synflow_flops, author_passes  # noqa: F401, I001
from lswag_lightning.proxies import az_nas, baselines, lswag, vkdnw  # noqa: F401
from lswag_lightning.proxies.coverage import Coverage
from lswag_lightning.proxies.forward import ProbeRunner
from lswag_lightning.proxies.options import ScoringOptions, available_options
from lswag_lightning.proxies.registry import (
    PassSpec,
    ProxySpec,
    available_needs,
    available_proxies,
    get_proxy,
    higher_is_better,
    register_pass,
    register_proxy,
    registered_passes,
    temporary_registrations,
)
from lswag_lightning.proxies.report import ProxyReport
from lswag_lightning.proxies.results import (
    DegenerateValue,
    PassOutput,
    ProxyError,
    ProxyOutput,
    SessionContext,
    SessionData,
)
from lswag_lightning.proxies.session import score_network

__all__ = [
    "Coverage",
    "PassOutput",
    "PassSpec",
    "ProbeRunner",
    "DegenerateValue",
    "ProxyError",
    "ProxyOutput",
    "ProxyReport",
    "ProxySpec",
    "ScoringOptions",
    "SessionContext",
    "SessionData",
    "available_needs",
    "available_options",
    "available_proxies",
    "get_proxy",
    "higher_is_better",
    "register_pass",
    "register_proxy",
    "registered_passes",
    "score_network",
    "temporary_registrations",
]
