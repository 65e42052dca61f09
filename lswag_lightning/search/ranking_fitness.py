"""A saved ranking as a search fitness: ``--fitness learned --ranking FILE`` and ``--fitness default``.

``FILE`` is the ``ranking.json`` that ``lswag-libra TABLE --accuracy COL --method M --out DIR`` writes after fitting
``M`` (``auto``, ``learned``, ``greedy``, ``best_single``, ...) on the trained rows of a table
(:func:`lswag_lightning.analysis.load_ranking`); ``default`` is the shipped k = 0 ranking for a space nobody
labelled (``conf/ranking/default.yaml``, :func:`lswag_lightning.analysis.load_default`). Both rank within the pool
they score: every input is oriented, replaced by its rank among the pool's architectures and fed to the fitted
model (the learned ranking) or fused (a set), so the fitness of an architecture depends on the pool, like LIBRA's.

NaN and -inf inputs rank last within their column, as when the ranking was fitted (``--nonfinite rank_last``), so
an architecture with a failed proxy still gets a finite, low fitness.

Inputs must be values the search can obtain: registered proxies and their sub-values (``lswag.lambda`` comes with
``lswag``), or columns of the ``--score-table`` files when the search reads tables only (``--table-only``), e.g. the
structure statistics of ``results/<bench>_structure.parquet``. Anything else is refused with the fix.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from lswag_lightning.search.fitness_base import Fitness


def registered_base(name: str) -> str | None:
    """The registered proxy that computes ``name`` (itself, or ``lswag`` for ``lswag.lambda``); None when none."""
    from lswag_lightning.proxies import get_proxy

    for candidate in (name, name.split(".", 1)[0]):
        try:
            get_proxy(candidate)
            return candidate
        except ValueError:
            continue
    return None


class RankingFitness(Fitness):
    """A fitted :class:`~lswag_lightning.analysis.FittedRanking` applied to the search's pool (module docstring)."""

    pool_dependent = True

    def __init__(self, ranking: Any, name: str, source: str, *, tables_only: bool = False) -> None:
        self.ranking = ranking
        self.name = name
        self.source = source
        self.proxies = tuple(ranking.inputs)
        if not self.proxies:
            raise ValueError(f"the ranking of {source} has no inputs")
        unknown = [p for p in self.proxies if registered_base(p) is None]
        if unknown and not tables_only:
            raise ValueError(
                f"the ranking of {source} reads {unknown}, which are not registered proxies, so lswag-search cannot "
                "compute them for a new architecture; refit it on proxies only (lswag-libra ... --method M without "
                "--structure / --features), or give --score-table files holding those columns with --table-only"
            )

    @property
    def scored(self) -> tuple[str, ...]:
        """The names a scorer must compute: registered bases of the inputs (``lswag`` for ``lswag.lambda``), and
        the other inputs as they are (columns a score table supplies)."""
        return tuple(dict.fromkeys(registered_base(p) or p for p in self.proxies))

    def __call__(self, pool: pd.DataFrame) -> np.ndarray:
        if len(pool) == 0:
            return np.zeros(0)
        return np.asarray(self.ranking.score_table(pool, nan_last=True), dtype=float)

    def describe(self) -> dict[str, Any]:
        detail = self.ranking.detail or {}
        out = {
            "type": "ranking",
            "name": self.name,
            "method": self.ranking.method,
            "proxies": list(self.proxies),
            "fusion": self.ranking.fusion,
            "higher_is_better": dict(self.ranking.higher_is_better),
            "source": self.source,
        }
        if "chosen" in detail:
            out.update({"chosen": detail["chosen"], "expected_rho": detail.get("expected_rho")})
            out["interval"] = detail.get("interval")
        return out

    def explain(self) -> str:
        r = self.ranking
        detail = r.detail or {}
        if r.learned is not None:
            how = (
                f"a learned ranking ({r.learned.kind}, fitted on {r.learned.n_fit} trained architectures) of the "
                f"within-pool ranks r/M of its {len(self.proxies)} inputs"
            )
        else:
            how = f"the {r.fusion} fusion of the within-pool ranks r/M of {', '.join(f'`{p}`' for p in self.proxies)}"
        chosen = ""
        if "chosen" in detail:
            lo, hi = detail.get("interval", [float("nan")] * 2)
            chosen = (
                f" `auto` chose `{detail['chosen']}` by inner cross-validation on the trained rows, expecting a "
                f"held-out Spearman ρ of {detail.get('expected_rho', float('nan')):.3f} [{lo:.3f}, {hi:.3f}]."
            )
        return (
            f"Fitness = the saved ranking `{r.method}` from {self.source}: {how} (higher = better; each input oriented "
            f"as when it was fitted, NaN and -inf ranked last).{chosen} The ranks, hence the fitness, depend on the "
            "pool."
        )


def load_ranking_file(path: str | os.PathLike) -> Any:
    """The ranking saved in ``path`` (or ``path/ranking.json``); ``FileNotFoundError`` / ``ValueError`` naming the
    file and how such a file is made."""
    from lswag_lightning.analysis import load_ranking

    path = Path(path)
    if path.is_dir():
        path = path / "ranking.json"
    if not path.is_file():
        raise FileNotFoundError(
            f"ranking not found: {path} (give the ranking.json written by lswag-libra TABLE --accuracy COL "
            "--method auto --out DIR, or that folder)"
        )
    try:
        return load_ranking(path)
    except json.JSONDecodeError as err:
        raise ValueError(f"{path}: not valid JSON ({err.msg})") from None
    except (KeyError, TypeError) as err:
        raise ValueError(f"{path}: not a ranking written by lswag-libra --method ({err})") from None
    except ValueError as err:
        raise ValueError(f"{path}: {err}") from None


def ranking_fitness(
    fitness: str, ranking: str | os.PathLike | None, *, tables_only: bool = False, others: Sequence[str] = ()
) -> RankingFitness:
    """``--fitness learned --ranking FILE`` or ``--fitness default``; ``others``: the other fitness options given
    (refused: they belong to libra / fused)."""
    if others:
        raise ValueError(f"{', '.join(others)} do not apply to --fitness {fitness}")
    if fitness == "default":
        if ranking:
            raise ValueError("--fitness default is the shipped k = 0 ranking; for a saved one use --fitness learned")
        from lswag_lightning.analysis.defaults import DEFAULT_FILE, load_default
        from lswag_lightning.analysis.rankers import FittedRanking
        from lswag_lightning.analysis.table import orient

        default = load_default()
        hib = dict(orient(default.proxies).higher_is_better)
        fitted = FittedRanking("default", list(default.proxies), default.fusion, higher_is_better=hib)
        return RankingFitness(fitted, "default", f"the shipped k = 0 ranking ({DEFAULT_FILE.name})")
    if not ranking:
        raise ValueError(
            "--fitness learned needs --ranking FILE: the ranking.json of lswag-libra TABLE --accuracy COL "
            "--method auto|learned|... --out DIR"
        )
    return RankingFitness(load_ranking_file(ranking), "learned", f"ranking {ranking}", tables_only=tables_only)
