"""The check of a command's ``score_options`` by the dataclasses that own the keys: ``ScoringOptions`` for the
session-wide ones and each proxy's or pass's option group for theirs (:mod:`lswag_lightning.proxies.options`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def check_score_options(options: Mapping[str, Any]) -> dict[str, Any]:
    """``options`` (``score_network`` keywords) as a dict, checked key by key and then together; ``ValueError``
    naming the key for an unknown name or a bad value, a value of the wrong type included (``swap_sigma='abc'``),
    so a command reports a usage error instead of a traceback."""
    import lswag_lightning.proxies  # noqa: F401  (registers every proxy's option group)
    from lswag_lightning.proxies.options import ScoringOptions

    options = dict(options)
    for key, value in options.items():
        try:
            ScoringOptions.from_kwargs(**{key: value})
        except TypeError as err:
            raise ValueError(f"score option {key}={value!r} has the wrong type ({err})") from None
    try:
        ScoringOptions.from_kwargs(**options)
    except TypeError as err:  # pragma: no cover - every key passed alone
        raise ValueError(f"score options {options}: {err}") from None
    return options
