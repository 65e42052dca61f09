"""``ProxyReport``: the plain-data result of one scoring session, serialisable to JSON."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from lswag_lightning.jsonio import plain


@dataclass
class ProxyReport:
    """Values, status and timing of the proxies scored on one model and one batch.

    - ``values``: name -> float, including sub-values such as ``lswag.lambda`` (Λ) and ``lswag.psi`` (Ψ).
      NaN/inf are kept as such, never replaced.
    - ``status``: name -> ``"ok"`` or the reason it is not, one line: ``"nan: ..."``, ``"inf: ..."``, ``"error: ..."``
      (value NaN), ``"degenerate: ..."`` (value NaN: constant by construction for this model) or ``"partial: ..."``
      (the value, measured on less than ``min_coverage`` of the parameters).
    - ``seconds``: name -> wall seconds this proxy cost, counting the shared passes it used in full (so the sum
      over proxies exceeds ``total_seconds`` when passes are shared).
    - ``higher_is_better``: name -> orientation, from the registry.
    - ``details``: name -> per-layer tables and diagnostics (e.g. Ψ saturation, ``coverage``: the share of the
      parameters measured and the module types measured and not).
    - ``settings``: the resolved scoring options; ``passes``: pass name -> wall seconds.
    """

    values: dict[str, float] = field(default_factory=dict)
    status: dict[str, str] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    higher_is_better: dict[str, bool] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)
    settings: dict[str, Any] = field(default_factory=dict)
    passes: dict[str, float] = field(default_factory=dict)
    total_seconds: float = 0.0

    def ok(self, name: str) -> bool:
        return self.status.get(name) == "ok"

    def failed(self) -> dict[str, str]:
        """Status of every value that is not ok."""
        return {name: s for name, s in self.status.items() if s != "ok"}

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (non-finite values become None; ``status`` keeps the reason)."""
        return {
            "values": plain({k: float(v) for k, v in self.values.items()}),  # NaN/inf: null (status says why)
            "status": dict(self.status),
            "seconds": {k: float(v) for k, v in self.seconds.items()},
            "higher_is_better": dict(self.higher_is_better),
            "details": self.details,
            "settings": self.settings,
            "passes": {k: float(v) for k, v in self.passes.items()},
            "total_seconds": float(self.total_seconds),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ProxyReport:
        """Inverse of ``to_dict`` (None values come back as NaN)."""
        return cls(
            values={k: (math.nan if v is None else float(v)) for k, v in data.get("values", {}).items()},
            status=dict(data.get("status", {})),
            seconds=dict(data.get("seconds", {})),
            higher_is_better=dict(data.get("higher_is_better", {})),
            details=dict(data.get("details", {})),
            settings=dict(data.get("settings", {})),
            passes=dict(data.get("passes", {})),
            total_seconds=float(data.get("total_seconds", 0.0)),
        )
