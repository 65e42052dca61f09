"""What defines one search: :class:`SearchSettings` (strategy, budget, seed, evolution's P and S, constraints, build
options), validated once; all but the budget must match to resume a checkpoint (:mod:`.loop`)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from lswag_lightning.jsonio import plain

STRATEGIES = ("evolution", "random")
RANK_POOLS = ("history", "population")


@dataclass
class SearchSettings:
    """What defines a search (all but ``budget`` must match to resume a checkpoint).

    ``budget``: distinct architectures to score. ``population`` (P) and ``tournament`` (S, 1 <= S <= P) are used
    by ``evolution``. ``max_params`` / ``max_flops``: upper bounds (inclusive) or None. ``build_options``: the
    keyword arguments of ``space.build`` / ``space.param_count`` (``num_classes``, ``img_size``, ...), so the
    constraint is checked on the network that is scored.
    """

    space: str
    strategy: str = "evolution"
    budget: int = 100
    seed: int = 0
    population: int = 50
    tournament: int = 10
    max_params: float | None = None
    max_flops: float | None = None
    rank_pool: str = "history"
    max_failed_proposals: int = 2000
    build_options: dict[str, Any] = field(default_factory=dict)

    def validate(self) -> SearchSettings:
        def positive_int(name: str, value: Any, minimum: int = 1) -> None:
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
                raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")

        if self.strategy not in STRATEGIES:
            raise ValueError(f"strategy must be one of {', '.join(STRATEGIES)}, got {self.strategy!r}")
        if self.rank_pool not in RANK_POOLS:
            raise ValueError(f"rank_pool must be one of {', '.join(RANK_POOLS)}, got {self.rank_pool!r}")
        positive_int("budget", self.budget)
        positive_int("seed", self.seed, 0)
        positive_int("max_failed_proposals", self.max_failed_proposals)
        if self.strategy == "evolution":
            positive_int("population", self.population, 2)
            positive_int("tournament", self.tournament)
            if self.tournament > self.population:
                raise ValueError(
                    f"tournament (sample size S={self.tournament}) must be <= population (P={self.population})"
                )
        for name in ("max_params", "max_flops"):
            value = getattr(self, name)
            if value is not None and (
                isinstance(value, bool)
                or not isinstance(value, (int, float, np.number))
                or not value > 0
                or not math.isfinite(value)
            ):
                raise ValueError(f"{name} must be a positive number or None, got {value!r}")
        if not isinstance(self.build_options, Mapping):
            raise ValueError(f"build_options must be a mapping, got {type(self.build_options).__name__}")
        self.build_options = dict(self.build_options)
        return self

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def identity(self) -> dict[str, Any]:
        """The settings a resumed search must share with its checkpoint (all but ``budget``)."""
        d = self.to_dict()
        d.pop("budget")
        return plain(d, nonfinite="keep", fallback=str)
