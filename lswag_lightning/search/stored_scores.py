"""Stored scores as a scorer: :class:`TableScorer` looks proxy values up in a precomputed table,
:class:`MergedScorer` joins scorers proxy by proxy, and :func:`tables_then_live` builds the join a search's
``--score-table`` asks for (each proxy from the first table holding it, the rest scored live)."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from lswag_lightning.search.scoring import Scorer, ScoreResult, stable_hash


class TableScorer(Scorer):
    """Proxy values looked up in a table with an ``arch`` column and one column per proxy.

    Arch strings are canonicalised with ``space.encode(space.decode(...))`` on both sides. Sub-value columns of a
    requested proxy (``lswag.lambda`` for ``lswag``) are read too; nothing else is. An arch missing from the table
    is scored by ``fallback`` when one is given, else it is an error naming the table.
    """

    def __init__(
        self,
        space: Any,
        table: Any,
        proxies: Sequence[str],
        *,
        arch_column: str = "arch",
        fallback: Scorer | None = None,
        name: str | None = None,
    ) -> None:
        import pandas as pd

        if not isinstance(table, pd.DataFrame):
            path = Path(table)
            name = name or str(path)
            from lswag_lightning.analysis.table import load_table

            table = load_table(path)
        self.name = name or "table"
        self.space = space
        self.proxies = tuple(dict.fromkeys(proxies))
        if arch_column not in table.columns:
            raise ValueError(
                f"score table {self.name}: no {arch_column!r} column; columns: {', '.join(map(str, table.columns))}"
            )
        missing = [p for p in self.proxies if p not in table.columns]
        if missing:
            raise ValueError(
                f"score table {self.name}: no column for proxies {missing}; proxy columns must be "
                f"named by registry name; columns present: {', '.join(map(str, table.columns))}"
            )
        columns = [
            c for c in table.columns if c in self.proxies or any(str(c).startswith(p + ".") for p in self.proxies)
        ]
        columns = [
            c
            for c in columns
            if not str(c).startswith(("seconds.", "status.")) and pd.api.types.is_numeric_dtype(table[c])
        ]
        self.columns = columns
        self._rows: dict[str, dict[str, float]] = {}
        for arch, row in zip(table[arch_column], table[columns].to_numpy(dtype=float, na_value=np.nan)):
            canon = space.encode(space.decode(str(arch)))
            self._rows[canon] = {str(c): float(v) for c, v in zip(columns, row)}
        self.fallback = fallback
        if fallback is not None:
            lacking = [p for p in self.proxies if p not in fallback.proxies]
            if lacking:
                raise ValueError(f"the fallback scorer does not compute {lacking}")
        self._key = stable_hash(
            {
                "table": self.name,
                "columns": columns,
                "rows": len(self._rows),
                "fallback": None if fallback is None else fallback.key,
            }
        )
        self.hits = 0

    @property
    def key(self) -> str:
        return self._key

    def __contains__(self, arch: str) -> bool:
        return arch in self._rows

    def describe(self) -> dict[str, Any]:
        return {
            **super().describe(),
            "table": self.name,
            "rows": len(self._rows),
            "columns": self.columns,
            "fallback": None if self.fallback is None else self.fallback.describe(),
        }

    def score(self, spec: Any, arch: str) -> ScoreResult:
        row = self._rows.get(arch)
        if row is not None:
            self.hits += 1
            return ScoreResult(
                dict(row), {c: ("ok" if math.isfinite(v) else "nan: from table") for c, v in row.items()}, 0.0, "table"
            )
        if self.fallback is None:
            raise ValueError(
                f"architecture {arch} is not in the score table {self.name} ({len(self._rows)} rows) "
                "and no fallback scorer was given (score it live, or use a complete table)"
            )
        return self.fallback.score(spec, arch)


# --------------------------------------------------------------------------------------------- merged
class MergedScorer(Scorer):
    """Several scorers, each supplying the proxies it is listed first for: e.g. a :class:`TableScorer` with stored
    values of some proxies plus a :class:`ProxyScorer` that computes the ones the table lacks.

    ``proxies`` is the union in order; each proxy (and its sub-values, e.g. ``lswag.lambda``) is read from the
    first scorer that lists it. The scorers must agree on what they score (same probe and init), which the merged
    ``key`` cannot check: it is a hash of the parts' keys and of which proxy comes from which part.
    """

    def __init__(self, scorers: Sequence[Scorer]) -> None:
        if not scorers:
            raise ValueError("MergedScorer needs at least one scorer")
        self.scorers = list(scorers)
        self.space = getattr(self.scorers[0], "space", None)
        self.owner: dict[str, int] = {}
        for i, scorer in enumerate(self.scorers):
            for p in scorer.proxies:
                self.owner.setdefault(p, i)
        unused = [type(s).__name__ for i, s in enumerate(self.scorers) if i not in self.owner.values()]
        if unused:
            raise ValueError(f"MergedScorer: {', '.join(unused)} supplies no proxy that an earlier scorer does not")
        self.proxies = tuple(self.owner)
        self._key = stable_hash({"merged": [s.key for s in self.scorers], "owner": self.owner})

    @property
    def key(self) -> str:
        return self._key

    def describe(self) -> dict[str, Any]:
        return {
            **super().describe(),
            "parts": [
                {"proxies": [p for p, i in self.owner.items() if i == k], **s.describe()}
                for k, s in enumerate(self.scorers)
            ],
        }

    def _owner_of(self, name: str) -> int | None:
        base = name if name in self.owner else name.split(".", 1)[0]
        return self.owner.get(base)

    def score(self, spec: Any, arch: str) -> ScoreResult:
        values: dict[str, float] = {}
        status: dict[str, str] = {}
        seconds = 0.0
        sources = []
        for i, scorer in enumerate(self.scorers):
            part = scorer.score(spec, arch)
            seconds += part.seconds
            sources.append(part.source)
            for name, value in part.values.items():
                if self._owner_of(name) == i:
                    values[name] = value
            for name, state in part.status.items():
                if self._owner_of(name) == i:
                    status[name] = state
        return ScoreResult(values, status, seconds, "+".join(dict.fromkeys(sources)))


def columns_by_table(
    frames: Sequence[Any],
    names: Sequence[str] | None = None,
    *,
    taken: Iterable[str] = (),
    skip: Callable[[str], bool] = lambda name: False,
) -> list[list[str]]:
    """For each of ``frames`` (tables with an ``arch`` column), the columns it supplies: each of ``names`` (None:
    every column but ``arch``) from the first table with a column for it. ``taken`` names are supplied elsewhere and
    ``skip(name)`` keeps a name out of every table. The rule of ``--score-table`` in ``lswag-search`` and
    ``lswag-bench``."""
    served = set(taken)
    supplied = []
    for frame in frames:
        wanted = [c for c in frame.columns if c != "arch"] if names is None else names
        mine = [n for n in dict.fromkeys(wanted) if n in frame.columns and n not in served and not skip(n)]
        served.update(mine)
        supplied.append(mine)
    return supplied


def tables_then_live(
    space: Any,
    tables: Sequence[Any],
    proxies: Sequence[str],
    *,
    fallback: Scorer | None,
    live_for: Callable[[list[str]], Scorer] | None,
    skip: Callable[[str], bool] = lambda name: False,
) -> Scorer:
    """Each proxy read from the first of ``tables`` (paths or DataFrames) with a column for it, the others scored
    by ``live_for(names)``; archs a table lacks go to ``fallback`` (None: an error naming the table).

    ``skip(name)`` keeps a proxy out of every table (e.g. L-SWAG under another layer interval than the tables
    hold). Without ``live_for`` (tables only), a proxy no table holds is a ``ValueError`` naming the tables.
    """
    from lswag_lightning.analysis.table import load_table

    proxies = list(dict.fromkeys(proxies))
    parts: list[Scorer] = []
    names = [None if hasattr(table, "columns") else str(table) for table in tables]
    frames = [table if name is None else load_table(Path(table)) for table, name in zip(tables, names)]
    served: list[str] = []
    for frame, name, mine in zip(frames, names, columns_by_table(frames, proxies, skip=skip)):
        if mine:
            parts.append(TableScorer(space, frame, mine, fallback=fallback, name=name))
            served += mine
    extra = [p for p in proxies if p not in served]
    if extra:
        if live_for is None:
            raise ValueError(
                f"no score table holds {extra} (tables: {', '.join(map(str, tables))}); score them "
                "live (drop --table-only) or add a table with those columns"
            )
        parts.append(live_for(extra))
    return parts[0] if len(parts) == 1 else MergedScorer(parts)
