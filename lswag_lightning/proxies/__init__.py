"""Zero-cost proxies: the registry, the scoring engine and every proxy. Pure PyTorch (no Lightning, no Hydra)."""
from lswag_lightning.proxies.engine import ScoringOptions, score_network
from lswag_lightning.proxies.registry import (
    ProxySpec,
    available_proxies,
    get_proxy,
    higher_is_better,
    register_proxy,
)
from lswag_lightning.proxies.report import ProxyReport

__all__ = ["ProxyReport", "ProxySpec", "ScoringOptions", "available_proxies", "get_proxy", "higher_is_better",
           "register_proxy", "score_network"]
