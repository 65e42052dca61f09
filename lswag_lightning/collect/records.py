"""Finding and reading a sweep's job records: finished records and :class:`JobIssue` entries (failed, unfinished,
unreadable), each with its error. Reads files only; no pandas."""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

RESULT_FILE = "result.json"


@dataclass(frozen=True)
class JobIssue:
    """A job that did not finish with ``status: ok``.

    ``kind``: ``failed`` (result.json says so), ``unfinished`` (status ``running``, or a Hydra job folder with no
    result.json: still running, killed, or crashed before writing it), ``unreadable`` (result.json is not valid
    JSON or not a record). ``error`` is the job's own error message when it wrote one, else what is known.
    """

    job: str
    kind: str
    error: str
    result_file: str | None = None
    space: str | None = None
    arch: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "job": self.job,
            "kind": self.kind,
            "error": self.error,
            "result_file": self.result_file,
            "space": self.space,
            "arch": self.arch,
        }


@dataclass
class Collected:
    """What :func:`read_results` found: the finished records (each with ``_job`` = its folder) and the issues."""

    records: list[dict[str, Any]] = field(default_factory=list)
    issues: list[JobIssue] = field(default_factory=list)
    inputs: list[str] = field(default_factory=list)

    @property
    def n_jobs(self) -> int:
        return len(self.records) + len(self.issues)


def find_results(paths: Iterable[str | os.PathLike], result_name: str = RESULT_FILE) -> tuple[list[Path], list[Path]]:
    """``(result files, job folders without a result)`` under ``paths``, each sorted and without duplicates.

    A path may be a result file (any name; it is read as a result), or a folder searched recursively for
    ``result_name`` and for Hydra job folders (holding ``.hydra/``) that have no ``result_name``. Raises
    ``FileNotFoundError`` naming a path that does not exist.
    """
    files: dict[Path, None] = {}
    orphans: dict[Path, None] = {}
    for raw in paths:
        path = Path(raw)
        if path.is_file():
            files[path.resolve()] = None
            continue
        if not path.is_dir():
            raise FileNotFoundError(f"no such sweep folder or result file: {path}")
        for found in path.rglob(result_name):
            if found.is_file() and not _inside_hidden(found, path):
                files[found.resolve()] = None
        for hydra_dir in path.rglob(".hydra"):
            job = hydra_dir.parent
            if hydra_dir.is_dir() and not _inside_hidden(job, path) and not (job / result_name).is_file():
                orphans[job.resolve()] = None
    return sorted(files, key=_natural_key), sorted(orphans, key=_natural_key)


def _inside_hidden(path: Path, root: Path) -> bool:
    """True when ``path`` lies in a hidden folder below ``root`` (``.submitit``, ``.hydra`` of another job...)."""
    try:
        parts = path.resolve().relative_to(root.resolve()).parts[:-1]
    except ValueError:
        return False
    return any(p.startswith(".") for p in parts)


def _natural_key(path: Path) -> tuple:
    """Sort ``sweep/2`` before ``sweep/10``."""
    return tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in path.parts)


def _job_label(job: Path, roots: Sequence[Path]) -> str:
    """The job folder relative to the input folder holding it (``3``, ``vit/3``), else its full path."""
    for root in roots:
        try:
            rel = job.relative_to(root)
        except ValueError:
            continue
        return str(rel) if str(rel) != "." else job.name
    return str(job)


def _log_tail(job: Path) -> str:
    """The last error-looking line of the job's Hydra log (``<job>/*.log``), or ''."""
    for logfile in sorted(job.glob("*.log")):
        try:
            lines = logfile.read_text(errors="replace").splitlines()
        except OSError:
            continue
        for line in reversed(lines):
            if "Error" in line or "Exception" in line or "Traceback" in line:
                return line.strip()[:300]
    return ""


def read_results(paths: Iterable[str | os.PathLike], result_name: str = RESULT_FILE) -> Collected:
    """Read every job under ``paths`` (see :func:`find_results`) into finished records and issues."""
    paths = [Path(p) for p in paths]
    if not paths:
        raise ValueError("no sweep folder or result file given")
    files, orphans = find_results(paths, result_name)
    roots = [p.resolve() for p in paths if p.is_dir()]
    out = Collected(inputs=[str(p) for p in paths])
    for path in files:
        job = _job_label(path.parent, roots) if path.name == result_name else _job_label(path, roots)
        try:
            record = json.loads(path.read_text())
        except (OSError, ValueError) as err:
            out.issues.append(JobIssue(job, "unreadable", f"{type(err).__name__}: {err}", str(path)))
            continue
        if not isinstance(record, Mapping):
            out.issues.append(
                JobIssue(job, "unreadable", f"expected a JSON object, got {type(record).__name__}", str(path))
            )
            continue
        status = record.get("status")
        where = {"result_file": str(path), "space": record.get("space"), "arch": record.get("arch")}
        if status == "ok":
            out.records.append({**record, "_job": job, "_result_file": str(path)})
        elif status == "running":
            out.issues.append(
                JobIssue(
                    job,
                    "unfinished",
                    "status 'running': the job is still running or was killed before it finished",
                    **where,
                )
            )
        else:
            error = record.get("error") or f"status {status!r} and no error message"
            out.issues.append(JobIssue(job, "failed", str(error), **where))
    for job_dir in orphans:
        tail = _log_tail(job_dir)
        error = f"no {result_name}: the job is still running, was killed, or crashed before writing it"
        out.issues.append(
            JobIssue(_job_label(job_dir, roots), "unfinished", error + (f" (log: {tail})" if tail else ""))
        )
    out.records.sort(key=lambda r: _natural_key(Path(r["_job"])))
    out.issues.sort(key=lambda i: _natural_key(Path(i.job)))
    return out
