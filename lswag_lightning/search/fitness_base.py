"""The interface every search fitness implements (:class:`Fitness`); the fitnesses themselves are in
:mod:`lswag_lightning.search.fitness` and :mod:`lswag_lightning.search.ranking_fitness`."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd


class Fitness:
    """Base class. ``name``, ``proxies`` (the proxy values it reads) and ``__call__(pool) -> ndarray``."""

    name: str = ""
    proxies: tuple[str, ...] = ()
    pool_dependent: bool = False

    @property
    def scored(self) -> tuple[str, ...]:
        """The names a scorer must compute for this fitness (``proxies`` unless a sub-value such as
        ``lswag.lambda`` comes with its proxy)."""
        return self.proxies

    def __call__(self, pool: pd.DataFrame) -> np.ndarray:
        """Fitness of each row of ``pool`` (a DataFrame with one column per name in ``proxies``)."""
        raise NotImplementedError

    def describe(self) -> dict[str, Any]:
        raise NotImplementedError

    def explain(self) -> str:
        """One markdown paragraph saying exactly how the fitness is computed."""
        raise NotImplementedError
