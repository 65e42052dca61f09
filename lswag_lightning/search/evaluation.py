"""What a search produces: one :class:`Evaluation` per scored architecture (with its JSON form, for checkpoints) and
the :class:`SearchResult` of a run (:mod:`.loop`)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

import pandas as pd

from lswag_lightning.jsonio import decode_values, encode_float, encode_values


@dataclass
class Evaluation:
    """One scored architecture: ``arch`` (encoded), ``params``, ``flops`` (None unless a FLOPs bound is set),
    proxy ``values`` and ``status``, scoring ``seconds`` and ``source``, and ``parent`` (history index of the
    parent for an evolution child, else None)."""

    arch: str
    params: int
    flops: float | None
    values: dict[str, float]
    status: dict[str, str]
    seconds: float
    source: str
    parent: int | None = None

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["values"] = encode_values(self.values)
        d["flops"] = None if self.flops is None else encode_float(self.flops)
        return d

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> Evaluation:
        return cls(
            arch=str(d["arch"]),
            params=int(d["params"]),
            flops=None if d.get("flops") is None else float(d["flops"]),
            values=decode_values(d.get("values", {})),
            status=dict(d.get("status", {})),
            seconds=float(d.get("seconds", 0.0)),
            source=str(d.get("source", "")),
            parent=None if d.get("parent") is None else int(d["parent"]),
        )


@dataclass
class SearchResult:
    """The outcome: ``ranked`` (DataFrame, best first; see :meth:`Search.ranked`), the ``best`` row as a dict,
    ``trajectory`` (best-so-far ``(history index, fitness)`` after each evaluation), ``counters``, ``complete``
    (the budget was spent) and ``stopped`` (why it ended early, else None)."""

    ranked: pd.DataFrame
    best: dict[str, Any]
    trajectory: list[tuple[int, float]]
    counters: dict[str, Any]
    complete: bool
    stopped: str | None
    resumed_from: int
    seconds: float
