"""The score cache of the search: proxy values keyed by (scorer key, arch string), stored as JSON lines, shared by
any number of processes (:class:`ScoreCache`)."""

from __future__ import annotations

import contextlib
import json
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from lswag_lightning.jsonio import decode_values, dumps, encode_values
from lswag_lightning.search.scoring import ScoreResult

log = logging.getLogger(__name__)


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
