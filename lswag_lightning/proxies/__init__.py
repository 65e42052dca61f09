"""Zero-cost proxies: the registry, the scoring engine and every proxy. Pure PyTorch (no Lightning, no Hydra).

The registry (:mod:`~lswag_lightning.proxies.registry`) is a leaf; the proxy modules are imported here, once, and
their ``@register_proxy`` decorators fill it.
"""

# The built-in proxies (their import registers them); the registry never imports them itself.
from lswag_lightning.proxies import az_nas, baselines, lswag, vkdnw  # noqa: F401
from lswag_lightning.proxies.engine import ScoringOptions, score_network
from lswag_lightning.proxies.registry import (
    ProxySpec,
    available_proxies,
    get_proxy,
    higher_is_better,
    register_proxy,
)
from lswag_lightning.proxies.report import ProxyReport

__all__ = [
    "ProxyReport",
    "ProxySpec",
    "ScoringOptions",
    "available_proxies",
    "get_proxy",
    "higher_is_better",
    "register_proxy",
    "score_network",
]
