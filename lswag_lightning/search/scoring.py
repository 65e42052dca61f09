"""Scorers: how a search turns an architecture into zero-cost proxy values, and the cache that keeps them.

A scorer has ``proxies`` (the registry names it computes), a ``key`` (a string identifying everything that decides
its values, so cached values are only reused under the same settings) and ``score(spec, arch) -> ScoreResult``.

- :class:`ProxyScorer` builds the network with :func:`lswag_lightning.candidates.build_candidate` (initialised from
  a seed derived from ``init_seed`` and the arch string, so an architecture gets the same weights in every run,
  order and device, and in ``lswag-bench``) and scores it with
  :func:`lswag_lightning.score_network` on a fixed probe batch. With a :class:`ScoreCache` an architecture is
  scored once per key, across runs, seeds and strategies.
- :class:`TableScorer` looks proxy values up in a precomputed table (e.g. ``lswag-bench``'s ``table.csv``: an
  ``arch`` column and one column per proxy), falling back to another scorer for archs it lacks. It reads only the
  proxy columns it is asked for, so accuracy columns of such a table never reach the search.
- :class:`MergedScorer` joins scorers proxy by proxy (a table's stored proxies + live scoring of the others);
  :func:`tables_then_live` builds that join from several tables.
- :class:`FunctionScorer` wraps a plain function ``fn(spec) -> {proxy: value}`` (tests, synthetic fitness).

Values are floats as the proxies return them (NaN / ±inf kept, never replaced); ``ScoreResult.values`` also holds
sub-values such as ``lswag.lambda``.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import math
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from lswag_lightning.candidates import build_candidate

# encode_float / decode_float are re-exported for search.engine and search.output
from lswag_lightning.jsonio import decode_float, decode_values, dumps, encode_float, encode_values  # noqa: F401
from lswag_lightning.probe import probe_fingerprint

log = logging.getLogger(__name__)

SCORER_FORMAT = 1


# ----------------------------------------------------------------------------------------------- numbers
def stable_hash(obj: Any, length: int = 16) -> str:
    """sha1 of the canonical JSON of ``obj`` (sorted keys), first ``length`` hex digits."""
    text = json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha1(text.encode()).hexdigest()[:length]


# ---------------------------------------------------------------------------------------------- results
@dataclass
class ScoreResult:
    """Proxy values of one architecture.

    ``values``: name -> float (sub-values included, NaN/inf kept); ``status``: name -> "ok" or why not;
    ``seconds``: wall seconds spent computing them now (0 for cache/table hits); ``source``: ``"computed"``,
    ``"cache"``, ``"table"`` or ``"function"``.
    """

    values: dict[str, float]
    status: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0
    source: str = "computed"


class Scorer:
    """Base class: ``proxies``, ``key`` and ``score(spec, arch)``; see the module docstring."""

    proxies: tuple[str, ...] = ()

    @property
    def key(self) -> str:
        raise NotImplementedError

    def describe(self) -> dict[str, Any]:
        """JSON-ready description (for reports and checkpoints)."""
        return {"type": type(self).__name__, "proxies": list(self.proxies), "key": self.key}

    def score(self, spec: Any, arch: str) -> ScoreResult:
        raise NotImplementedError

    def missing(self, result: ScoreResult, proxies: Sequence[str] | None = None) -> list[str]:
        """Requested proxies absent from ``result.values``."""
        return [p for p in (proxies or self.proxies) if p not in result.values]


class FunctionScorer(Scorer):
    """``fn(spec) -> {proxy: value}`` as a scorer. ``name`` enters the key, so give different functions names."""

    def __init__(self, fn: Callable[[Any], Mapping[str, float]], proxies: Sequence[str], name: str = "function"):
        if not callable(fn):
            raise ValueError("FunctionScorer needs a callable fn(spec) -> {proxy: value}")
        self.fn = fn
        self.proxies = tuple(proxies)
        self.name = name

    @property
    def key(self) -> str:
        return stable_hash({"function": self.name, "proxies": list(self.proxies)})

    def score(self, spec: Any, arch: str) -> ScoreResult:
        start = time.perf_counter()
        values = {str(k): float(v) for k, v in dict(self.fn(spec)).items()}
        missing = [p for p in self.proxies if p not in values]
        if missing:
            raise ValueError(f"scoring function {self.name!r} returned no value for {missing}")
        return ScoreResult(values, {p: "ok" for p in values}, time.perf_counter() - start, "function")


# ------------------------------------------------------------------------------------------------- cache
class ScoreCache:
    """Proxy values keyed by (scorer key, arch string), stored as JSON lines; safe for concurrent writers.

    ``path`` is a ``.jsonl`` file or a folder; a folder holds any number of ``*.jsonl`` files (e.g. one per worker
    process or shard), all read at start, and new records go to ``<folder>/<writer>.jsonl``. Each line is
    ``{"key", "arch", "values", "status", "seconds", "device"}`` with non-finite numbers as strings. Lookups merge
    every record of a (key, arch).

    Concurrency: any number of processes, on one machine or several sharing the folder, may append to the same
    file. Each record is one ``write`` under an exclusive POSIX lock (``fcntl.lockf``, which network file systems
    honour, unlike ``O_APPEND`` alone), after a newline when a killed writer left a partial line, so no record is
    torn or glued to another. Readers take a shared lock and only consume complete lines; :meth:`refresh` reads
    what other processes appended since. A partial last line (a writer killed mid-write) is skipped with a warning.
    """

    def __init__(self, path: str | os.PathLike, writer: str = "main") -> None:
        self.path = Path(path)
        if self.path.suffix == ".jsonl":
            self.write_path = self.path
        else:
            self.path.mkdir(parents=True, exist_ok=True)
            self.write_path = self.path / f"{writer}.jsonl"
        self._data: dict[tuple[str, str], dict[str, Any]] = {}
        self._offsets: dict[Path, int] = {}  # bytes of each file consumed (complete lines only)
        self.refresh()

    @property
    def files(self) -> list[Path]:
        """The record files read so far."""
        return sorted(self._offsets)

    def refresh(self) -> int:
        """Read the records appended (by any process) since the last read, and files new in the folder; returns
        how many records were read."""
        if self.path.suffix == ".jsonl":
            files = [self.path] if self.path.exists() else []
        else:
            files = sorted(self.path.glob("*.jsonl"))
        return sum(self._load(file) for file in files)

    def _load(self, file: Path) -> int:
        offset = self._offsets.get(file, 0)
        with file.open("rb") as fh, _file_lock(fh, shared=True):
            fh.seek(offset)
            data = fh.read()
        complete = data[: data.rfind(b"\n") + 1]
        if len(complete) < len(data):
            log.warning("score cache %s: incomplete last line (a writer killed mid-write?); skipped", file)
        self._offsets[file] = offset + len(complete)
        n = 0
        for line in complete.decode().split("\n"):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
                key, arch = str(rec["key"]), str(rec["arch"])
            except (json.JSONDecodeError, KeyError, TypeError):
                log.warning("score cache %s: unreadable line (an interrupted write?) skipped: %.80s", file, line)
                continue
            self._merge(key, arch, decode_values(rec.get("values", {})), dict(rec.get("status", {})))
            n += 1
        return n

    def _merge(self, key: str, arch: str, values: dict, status: dict) -> None:
        entry = self._data.setdefault((key, arch), {"values": {}, "status": {}})
        entry["values"].update(values)
        entry["status"].update(status)

    def __len__(self) -> int:
        return len(self._data)

    def archs(self, key: str) -> list[str]:
        """Arch strings with a record under ``key``."""
        return [a for (k, a) in self._data if k == key]

    def get(self, key: str, arch: str, proxies: Sequence[str]) -> ScoreResult | None:
        """The cached result when every name in ``proxies`` is there, else None."""
        entry = self._data.get((key, arch))
        if entry is None or any(p not in entry["values"] for p in proxies):
            return None
        return ScoreResult(dict(entry["values"]), dict(entry["status"]), 0.0, "cache")

    def put(self, key: str, arch: str, result: ScoreResult, device: str | None = None) -> None:
        """Store ``result``: appended to the writer's file at once, under the file's lock (see the class)."""
        self._merge(key, arch, dict(result.values), dict(result.status))
        record = {
            "key": key,
            "arch": arch,
            "values": encode_values(result.values),
            "status": result.status,
            "seconds": round(float(result.seconds), 6),
            "device": device,
        }
        data = (dumps(record, nonfinite="keep", separators=(",", ":")) + "\n").encode()  # values encoded
        self.write_path.parent.mkdir(parents=True, exist_ok=True)
        with self.write_path.open("a+b") as fh, _file_lock(fh, shared=False):
            end = fh.seek(0, os.SEEK_END)
            if end:
                fh.seek(end - 1)
                if fh.read(1) != b"\n":  # a killed writer's partial line: do not glue this record to it
                    data = b"\n" + data
            fh.write(data)
            fh.flush()


@contextlib.contextmanager
def _file_lock(handle: Any, shared: bool):
    """A POSIX record lock on the whole of an open file for the duration (no-op where ``fcntl`` is missing)."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows: appends of one record are not interleaved there either
        yield
        return
    fcntl.lockf(handle, fcntl.LOCK_SH if shared else fcntl.LOCK_EX)
    try:
        yield
    finally:
        fcntl.lockf(handle, fcntl.LOCK_UN)


# ------------------------------------------------------------------------------------------ live scoring
class ProxyScorer(Scorer):
    """Build and score architectures of ``space`` on a probe batch with :func:`lswag_lightning.score_network`.

    Args:
        space: a :class:`lswag_lightning.spaces.SearchSpace`.
        proxies: registry names to compute (sub-values such as ``lswag.lambda`` come with their proxy).
        images, labels: the probe batch, ``(B, C, S, S)`` float and ``(B,)`` int64 (see :mod:`.probe`).
        build_options: keyword arguments of ``space.build`` (``num_classes``, ``img_size``, ...).
        device: torch device to score on (default: cuda if available, else cpu).
        init_seed: seeds the weights: each arch is initialised from ``arch_seed(arch, init_seed)``, on the CPU
            (the same weights on every device), then moved to ``device``.
        score_options: extra keyword arguments of ``score_network`` (``layer_interval``, ``lambda_k``, ...).
        cache: a :class:`ScoreCache` shared across runs, or None.
        probe: JSON-ready description of the probe batch (enters the report, not the key: the key uses the
            batch's content hash).
    """

    def __init__(
        self,
        space: Any,
        proxies: Sequence[str],
        images: torch.Tensor,
        labels: torch.Tensor,
        *,
        build_options: Mapping[str, Any] | None = None,
        device: str | torch.device | None = None,
        init_seed: int = 0,
        score_options: Mapping[str, Any] | None = None,
        cache: ScoreCache | None = None,
        probe: Mapping[str, Any] | None = None,
    ) -> None:
        from lswag_lightning.proxies import get_proxy

        self.proxies = tuple(dict.fromkeys(proxies))
        if not self.proxies:
            raise ValueError("ProxyScorer needs at least one proxy name")
        for p in self.proxies:
            get_proxy(p)  # ValueError naming the available proxies
        self.space = space
        self.build_options = dict(build_options or {})
        self.device = torch.device(device if device is not None else ("cuda" if torch.cuda.is_available() else "cpu"))
        self.init_seed = int(init_seed)
        self.score_options = dict(score_options or {})
        self.cache = cache
        self.probe = dict(probe or {})
        if images.ndim != 4 or labels.ndim != 1 or len(images) != len(labels):
            raise ValueError(
                f"probe batch must be images (B, C, S, S) and labels (B,), got {tuple(images.shape)} "
                f"and {tuple(labels.shape)}"
            )
        num_classes = int(self.build_options.get("num_classes", 10))
        if int(labels.max()) >= num_classes:
            raise ValueError(
                f"probe labels go up to {int(labels.max())} but the networks have num_classes="
                f"{num_classes}; use num_classes >= {int(labels.max()) + 1}"
            )
        self.images = images.to(self.device)
        self.labels = labels.to(self.device)
        self._key = stable_hash(
            {
                "format": SCORER_FORMAT,
                "space": getattr(space, "name", type(space).__name__),
                "build_options": self.build_options,
                "init_seed": self.init_seed,
                "score_options": {k: (list(v) if isinstance(v, tuple) else v) for k, v in self.score_options.items()},
                "probe": probe_fingerprint(images, labels),
            }
        )
        self.seconds = 0.0
        self.computed = 0
        self.hits = 0

    @property
    def key(self) -> str:
        return self._key

    def describe(self) -> dict[str, Any]:
        return {
            **super().describe(),
            "device": str(self.device),
            "init_seed": self.init_seed,
            "build_options": self.build_options,
            "score_options": self.score_options,
            "probe": self.probe,
            "cache": None if self.cache is None else str(self.cache.path),
        }

    def build(self, spec: Any, arch: str) -> torch.nn.Module:
        """The freshly initialised network of ``arch`` (seeded, built on the CPU, moved to ``device``)."""
        return build_candidate(self.space, arch, self.build_options, seed_base=self.init_seed, spec=spec).to(
            self.device
        )

    def score(self, spec: Any, arch: str) -> ScoreResult:
        if self.cache is not None:
            hit = self.cache.get(self.key, arch, self.proxies)
            if hit is not None:
                self.hits += 1
                return hit
        from lswag_lightning.proxies import score_network

        start = time.perf_counter()
        model = self.build(spec, arch)
        report = score_network(
            model, self.images, self.labels, proxies=list(self.proxies), copy_model=False, **self.score_options
        )
        del model
        result = ScoreResult(
            {k: float(v) for k, v in report.values.items()},
            dict(report.status),
            time.perf_counter() - start,
            "computed",
        )
        self.seconds += result.seconds
        self.computed += 1
        if self.cache is not None:
            self.cache.put(self.key, arch, result, device=str(self.device))
        return result


# --------------------------------------------------------------------------------------------- table
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
    served: list[str] = []
    for table in tables:
        name = None if hasattr(table, "columns") else str(table)
        frame = table if name is None else load_table(Path(table))
        mine = [p for p in proxies if p in frame.columns and p not in served and not skip(p)]
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
