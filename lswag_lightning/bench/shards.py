"""Sharded ``lswag-bench``: disjoint parts of one benchmark sample scored by concurrent processes or machines that
share one ``--out`` folder, and their merge into the table and report of one unsharded run.

Shard ``I/N`` (``0 <= I < N``) holds the sample positions ``p`` with ``p % N == I``. The sample itself is fixed by
``--sample``/``--seed``, so a shard is a function of the architecture's position in it alone: shards are disjoint,
cover the sample, differ in size by at most one row, and do not depend on which shard runs first, on which machine,
or on how often it was resumed. Files, all in ``<out>/shards/``:

- ``table.I-of-N.csv``: the shard's rows (the columns and cell text of ``table.csv``), appended and flushed one by
  one, so a killed shard resumes like an unsharded run (rerun the same command);
- ``bench.I-of-N.json``: its settings (compared on resume and on merge) and each run's device;
- ``.lock.I-of-N``: an OS lock held while the shard runs: a second copy of the same shard is refused, other shards
  of the folder run side by side.

:func:`merge_shards` reads the shard files without changing them and writes ``<out>/table.csv`` (rows in sample
order, byte-identical cells) and ``<out>/bench.json`` only when every shard is complete, unless asked to accept a
partial merge; it names each missing or unfinished shard either way.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from lswag_lightning.bench.ground_truth import GroundTruth
from lswag_lightning.bench.score_rows import RunResult, run_rows
from lswag_lightning.bench.settings import TABLE_DOC, BenchSettings, table_columns
from lswag_lightning.bench.table_file import exclusive_run, read_table
from lswag_lightning.jsonio import write_json

SHARD_DIR = "shards"
_TABLE_RE = re.compile(r"^table\.(\d+)-of-(\d+)\.csv$")


@dataclass(frozen=True)
class Shard:
    """Shard ``index`` of ``count`` (0-based): the sample positions ``p`` with ``p % count == index``."""

    index: int
    count: int

    def __post_init__(self) -> None:
        if self.count < 1 or not 0 <= self.index < self.count:
            raise ValueError(
                f"shard {self.index}/{self.count} does not exist: shards are numbered 0..N-1, e.g. "
                f"--shard 0/{max(self.count, 2)} ... --shard {max(self.count, 2) - 1}/"
                f"{max(self.count, 2)}"
            )

    @classmethod
    def parse(cls, text: str) -> Shard:
        """``"I/N"`` -> Shard(I, N); ``ValueError`` naming the expected form otherwise."""
        match = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", str(text))
        if not match:
            raise ValueError(f"--shard expects I/N (shard I of N, 0 <= I < N), e.g. 0/4; got {text!r}")
        return cls(int(match.group(1)), int(match.group(2)))

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"

    @property
    def tag(self) -> str:
        """``I-of-N``, the suffix of this shard's files."""
        return f"{self.index}-of-{self.count}"

    def positions(self, n: int) -> list[int]:
        """This shard's positions in a sample of ``n`` architectures, ascending."""
        return list(range(self.index, int(n), self.count))


def shard_dir(out_dir: str | os.PathLike) -> Path:
    return Path(out_dir) / SHARD_DIR


def shard_files(out_dir: str | os.PathLike) -> dict[Shard, Path]:
    """Every shard table in ``<out>/shards/``, by shard."""
    folder = shard_dir(out_dir)
    found: dict[Shard, Path] = {}
    if folder.is_dir():
        for path in folder.iterdir():
            match = _TABLE_RE.match(path.name)
            if match:
                found[Shard(int(match.group(1)), int(match.group(2)))] = path
    return dict(sorted(found.items(), key=lambda kv: (kv[0].count, kv[0].index)))


def _is_unsharded_table(out: Path) -> bool:
    """``<out>/table.csv`` exists and was written by an unsharded run (not by a merge of shards)."""
    table, meta = out / "table.csv", out / "bench.json"
    if not (table.exists() and table.stat().st_size > 0):
        return False
    return not (meta.exists() and "shards" in json.loads(meta.read_text()))


def refuse_if_sharded(out_dir: str | os.PathLike) -> None:
    """An unsharded run must not append to a folder whose rows live in shard files (a later merge would replace
    its table): ``ValueError`` saying what to run instead."""
    found = shard_files(out_dir)
    if found:
        counts = sorted({s.count for s in found})
        raise ValueError(
            f"{out_dir} holds shards of this sample (N={', '.join(map(str, counts))}, in "
            f"{shard_dir(out_dir)}); run the missing ones with --shard I/N, merge them with "
            "--report-only, or use another --out folder"
        )


def run_shard(
    settings: BenchSettings, gt: GroundTruth, out_dir: str | os.PathLike, shard: Shard, **kwargs: Any
) -> RunResult:
    """Score shard ``shard`` of ``gt`` (already sampled) into ``<out>/shards/table.I-of-N.csv``.

    Resumes that shard's table; refuses other settings, a second copy of the same shard
    (:class:`~lswag_lightning.bench.table_file.OutputBusyError`) and a folder holding an unsharded table.
    ``kwargs`` go to :func:`lswag_lightning.bench.score_rows.run_rows` (``data_dir``, ``device``, ``progress``,
    ``on_row``, ``stop_after``).
    The returned table holds this shard's rows.
    """
    out = Path(out_dir)
    if _is_unsharded_table(out):
        raise ValueError(
            f"{out / 'table.csv'} was written by an unsharded run; finish it without --shard, or "
            "use another --out folder for the shards"
        )
    folder = shard_dir(out)
    folder.mkdir(parents=True, exist_ok=True)
    with exclusive_run(folder, f".lock.{shard.tag}", what=f"shard {shard} of {out}"):
        return run_rows(
            settings,
            gt,
            folder,
            table_name=f"table.{shard.tag}.csv",
            meta_name=f"bench.{shard.tag}.json",
            positions=shard.positions(len(gt)),
            run_info={"shard": str(shard)},
            **kwargs,
        )


def _shard_running(folder: Path, shard: Shard) -> bool:
    """Whether a process holds ``shard``'s lock now (it is still scoring)."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows: no locks, so nothing is known to run
        return False
    lock = folder / f".lock.{shard.tag}"
    if not lock.exists():
        return False
    with lock.open("a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(handle, fcntl.LOCK_UN)
    return False


def _complete_rows(path: Path) -> tuple[list[str], list[list[str]]]:
    """Header and complete rows (cells as text) of a shard table, read without modifying it: a shard may still
    be appending, and a partial last line (a shard killed mid-write, or writing now) is left out."""
    data = path.read_bytes()
    data = data[: data.rfind(b"\n") + 1]
    rows = [row for row in csv.reader(io.StringIO(data.decode(), newline="")) if row]
    return (rows[0] if rows else []), rows[1:]


@dataclass
class MergeResult:
    """What :func:`merge_shards` found: shard count, rows per complete shard, why each other shard is missing,
    and (when written) the merged table in sample order."""

    count: int
    complete: list[int]
    missing: dict[int, str]
    rows: int
    planned: int
    written: bool
    table: pd.DataFrame | None = None
    runs: list[dict[str, Any]] = field(default_factory=list)

    def missing_text(self) -> str:
        return "; ".join(f"shard {i}/{self.count}: {why}" for i, why in self.missing.items())


def _read_shard(
    folder: Path, shard: Shard, settings: BenchSettings, gt: GroundTruth, header: list[str]
) -> tuple[dict[int, list[str]], list[dict[str, Any]]]:
    """A shard's rows {sample position: cells as written} and its runs, checked against the planned sample."""
    meta_path = folder / f"bench.{shard.tag}.json"
    if not meta_path.exists():
        raise ValueError(
            f"{folder / f'table.{shard.tag}.csv'} has no {meta_path.name}; it was not written by "
            "lswag-bench --shard. Remove it or use another --out folder"
        )
    meta = json.loads(meta_path.read_text())
    previous, now = meta.get("settings", {}), settings.fingerprint()
    diff = sorted(k for k in set(previous) | set(now) if previous.get(k) != now.get(k))
    if diff:
        raise ValueError(
            f"shard {shard} in {folder} was made with other settings ("
            + "; ".join(f"{k}: {previous.get(k)!r}, now {now.get(k)!r}" for k in diff)
            + "); merge with the arguments the shards were run with"
        )
    first, lines = _complete_rows(folder / f"table.{shard.tag}.csv")
    if first != header:
        raise ValueError(
            f"{folder / f'table.{shard.tag}.csv'} has other columns than this run writes; it was "
            "made with other settings"
        )
    archs = gt.table["arch"].tolist()
    rows: dict[int, list[str]] = {}
    for cells in lines:
        position, arch = int(cells[0]), cells[1]
        if position % shard.count != shard.index or position >= len(archs) or archs[position] != arch:
            raise ValueError(
                f"shard {shard} holds row sample_index={position} ({arch!r}), which is not one of its "
                "planned architectures; it belongs to another sample. Use another --out folder"
            )
        rows[position] = cells
    return rows, list(meta.get("runs", []))


def merge_shards(
    out_dir: str | os.PathLike, settings: BenchSettings, gt: GroundTruth, *, allow_partial: bool = False
) -> MergeResult:
    """Merge ``<out>/shards/`` into ``<out>/table.csv`` + ``<out>/bench.json`` (the files of one unsharded run).

    Writes them when every shard holds all its rows, or with ``allow_partial`` (then ``bench.json`` and the
    report name the missing shards). Never changes a shard file. ``ValueError`` when there are no shards, when
    shards of different N share the folder, or when a shard was made with other settings.
    """
    out = Path(out_dir)
    folder = shard_dir(out)
    found = shard_files(out)
    if not found:
        raise ValueError(f"no shard tables in {folder}; run lswag-bench with --shard I/N first")
    counts = sorted({s.count for s in found})
    if len(counts) > 1:
        raise ValueError(
            f"{folder} holds shards of different splits (N = {', '.join(map(str, counts))}); one "
            "sample split two ways cannot be merged: keep one set of files (table.I-of-N.csv, "
            "bench.I-of-N.json) and remove the other"
        )
    count = counts[0]
    header = table_columns(gt, settings.proxies)
    rows: dict[int, list[str]] = {}
    runs: list[dict[str, Any]] = []
    complete, missing = [], {}
    for index in range(count):
        shard = Shard(index, count)
        planned = len(shard.positions(len(gt)))
        if shard not in found:
            missing[index] = f"not started (0 of {planned} rows)"
            continue
        part, part_runs = _read_shard(folder, shard, settings, gt, header)
        rows.update(part)
        runs += [{**r, "shard": str(shard)} for r in part_runs]
        if len(part) == planned:
            complete.append(index)
        else:
            running = " (its process is running now)" if _shard_running(folder, shard) else ""
            missing[index] = f"{len(part)} of {planned} rows{running}"
    result = MergeResult(count, complete, missing, len(rows), len(gt), False, runs=runs)
    if missing and not allow_partial:
        return result
    table_path = out / "table.csv"
    if _is_unsharded_table(out):
        raise ValueError(f"{table_path} was written by an unsharded run; not replacing it with a merge of shards")
    tmp = out / f".table.csv.merge-{os.getpid()}"
    with tmp.open("w", newline="") as fh:  # the csv module's own text: the cells of an unsharded table.csv
        writer = csv.writer(fh)
        writer.writerow(header)
        writer.writerows(rows[p] for p in sorted(rows))
    os.replace(tmp, table_path)  # readers never see a half-written merge
    meta = {
        "settings": settings.fingerprint(),
        "score_options_source": settings.score_options_source,
        "gt_source": settings.gt_source,
        "columns": TABLE_DOC,
        "runs": runs,
        "shards": {
            "count": count,
            "complete": complete,
            "missing": {str(k): v for k, v in missing.items()},
            "rows": len(rows),
            "planned": len(gt),
        },
    }
    write_json(out / "bench.json", meta, nonfinite="keep")
    result.written, result.table = True, read_table(table_path)
    return result
