"""The files of a benchmark run: ``table.csv`` appended one flushed row at a time, its settings check on resume,
and the lock that keeps two processes from writing one folder."""

from __future__ import annotations

import contextlib
import csv
import io
import json
import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from lswag_lightning.bench.ground_truth import read_csv_exact
from lswag_lightning.bench.settings import BenchSettings

log = logging.getLogger(__name__)


def _fmt_cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, (bool, np.bool_)):
        return str(bool(value))
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        return repr(float(value))  # shortest round-trip text; nan / inf / -inf as such
    return str(value)


class TableFile:
    """``table.csv`` opened for appending one flushed row per architecture.

    On open, an existing file is checked (same header) and a partial last line (a run killed mid-write) is cut
    off; :attr:`done` holds the ``sample_index`` values already written.
    """

    def __init__(self, path: Path, columns: Sequence[str]) -> None:
        self.path = Path(path)
        self.columns = list(columns)
        self.done: dict[int, str] = {}
        if self.path.exists() and self.path.stat().st_size > 0:
            self._recover()
        else:
            with self.path.open("w", newline="") as fh:
                csv.writer(fh).writerow(self.columns)
                fh.flush()
                os.fsync(fh.fileno())

    def _recover(self) -> None:
        data = self.path.read_bytes()
        if not data.endswith(b"\n"):
            cut = data.rfind(b"\n") + 1
            log.warning(
                "%s: dropping a partial last line (%d bytes) left by an interrupted run", self.path, len(data) - cut
            )
            with self.path.open("r+b") as fh:
                fh.truncate(cut)
            data = data[:cut]
        reader = csv.reader(io.StringIO(data.decode()))
        header = next(reader, None)
        if header != self.columns:
            raise ValueError(
                f"{self.path} has columns {header} but this run writes {self.columns}; it was made "
                "with other settings. Use another --out folder or delete the table"
            )
        pos = self.columns.index("sample_index")
        arch = self.columns.index("arch")
        for row in reader:
            if row:
                self.done[int(row[pos])] = row[arch]

    def append(self, row: Mapping[str, Any]) -> None:
        buf = io.StringIO()
        csv.writer(buf).writerow([_fmt_cell(row.get(c)) for c in self.columns])
        with self.path.open("a", newline="") as fh:
            fh.write(buf.getvalue())  # one write per row: a kill leaves at most one partial line
            fh.flush()
            os.fsync(fh.fileno())


def read_table(path: str | os.PathLike) -> pd.DataFrame:
    """Read a benchmark ``table.csv`` exactly (round-trip floats), rows ordered by ``sample_index``."""
    table = read_csv_exact(path)
    if "status" in table.columns:
        table["status"] = table["status"].fillna("").astype(str)
    return table.sort_values("sample_index", kind="stable").reset_index(drop=True)


def check_settings(
    out_dir: str | os.PathLike, settings: BenchSettings, *, table_name: str = "table.csv", meta_name: str = "bench.json"
) -> None:
    """Refuse (``ValueError`` naming every difference) an ``out_dir`` whose table was made with other settings.

    ``table_name`` / ``meta_name``: the table and its settings file inside ``out_dir`` (a shard has its own)."""
    out = Path(out_dir)
    meta_path, table_path = out / meta_name, out / table_name
    if not (table_path.exists() and table_path.stat().st_size > 0):
        return
    if not meta_path.exists():
        raise ValueError(
            f"{table_path} exists without {meta_path.name}; it was not written by lswag-bench. Use another --out folder"
        )
    previous = json.loads(meta_path.read_text()).get("settings", {})
    fingerprint = settings.fingerprint()
    diff = sorted(k for k in set(previous) | set(fingerprint) if previous.get(k) != fingerprint.get(k))
    if diff:
        details = "; ".join(f"{k}: was {previous.get(k)!r}, now {fingerprint.get(k)!r}" for k in diff)
        raise ValueError(
            f"{table_path} was made with other settings ({details}). Rerun with the same arguments "
            "to resume, or choose another --out folder"
        )


def load_run(out_dir: str | os.PathLike, settings: BenchSettings) -> tuple[pd.DataFrame, dict[str, Any]]:
    """The table and ``bench.json`` of an earlier run made with ``settings`` (for a report without scoring)."""
    out = Path(out_dir)
    if not (out / "table.csv").exists() or not (out / "bench.json").exists():
        raise ValueError(f"no lswag-bench run in {out} (table.csv and bench.json are needed)")
    check_settings(out, settings)
    columns = next(csv.reader(io.StringIO((out / "table.csv").open().readline())))
    TableFile(out / "table.csv", columns)  # cuts a partial last line left by a killed run
    return read_table(out / "table.csv"), json.loads((out / "bench.json").read_text())


class OutputBusyError(RuntimeError):
    """Another process is writing the same output folder."""


@contextlib.contextmanager
def exclusive_run(out_dir: Path, lock_name: str = ".lock", what: str | None = None, program: str = "lswag-bench"):
    """Hold ``<out_dir>/<lock_name>`` for the whole run, so two processes never append to one table (or, for
    ``lswag-search``, never write one checkpoint).

    Raises :class:`OutputBusyError` naming ``what`` (default: the folder) when another process holds it. The lock
    is an OS file lock (``fcntl.flock``): it is released when the process ends, even when killed. Where ``fcntl``
    is missing (Windows) no lock is taken.
    """
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        yield
        return
    with open(Path(out_dir) / lock_name, "w") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise OutputBusyError(
                f"{what or out_dir} is being written by another {program} process; wait for it "
                "to end (or stop it) before resuming, or use another --out folder"
            ) from None
        try:
            handle.write(str(os.getpid()))
            handle.flush()
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
