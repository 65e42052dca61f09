"""lswag-lightning: the L-SWAG zero-cost proxy and LIBRA for ViTs and CNNs, with Lightning, Hydra and W&B.

``score_network`` and ``ProxyReport`` are pure PyTorch. The Lightning callback is imported lazily so that the
proxies can be used from a notebook or another framework without importing Lightning.
"""

from __future__ import annotations

from lswag_lightning.proxies import ProxyReport, available_proxies, score_network

__version__ = "0.1.0"
__all__ = ["ProxyReport", "ZeroCostProxyCallback", "available_proxies", "score_network", "__version__"]


def __getattr__(name: str):
    if name == "ZeroCostProxyCallback":
        from lswag_lightning.lightning.callback import ZeroCostProxyCallback

        return ZeroCostProxyCallback
    raise AttributeError(f"module 'lswag_lightning' has no attribute {name!r}")
