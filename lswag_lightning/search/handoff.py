"""Hand-off of the best architectures to the Lightning training pipeline (``lswag-train``, a Hydra app).

One job per architecture, launched as a subprocess::

    python -m lswag_lightning.cli.train space=<space> candidate.arch='<encoded arch>' <overrides...>
        hydra.run.dir=<out>/train/rank<k>

so each job writes ``result.json`` into ``<out>/train/rank<k>/`` and ``lswag-collect <out>/train`` gathers them.
The same jobs as one Hydra multirun are given by :func:`multirun_command` (Hydra sweeps a comma-separated list).

Arch strings are passed as Hydra *quoted* values: single quotes when the arch holds double quotes (AutoFormer JSON),
double quotes when it holds single quotes (DARTS genotypes), backslash-escaped quotes when it holds both. An arch
containing ``${`` (an interpolation for Hydra) or a backslash is refused; no shipped space encodes either.
"""

from __future__ import annotations

import logging
import shlex
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from lswag_lightning.jsonio import write_json

log = logging.getLogger(__name__)

TRAIN_MODULE = "lswag_lightning.cli.train"


def hydra_quote(value: str) -> str:
    """``value`` as a quoted Hydra override value (see the module docstring)."""
    if "${" in value:
        raise ValueError(f"arch {value[:80]!r} contains '${{', which Hydra would read as an interpolation")
    if "\\" in value:
        raise ValueError(f"arch {value[:80]!r} contains a backslash; no search space encodes one")
    if "'" not in value:
        return f"'{value}'"
    if '"' not in value:
        return f'"{value}"'
    return "'" + value.replace("'", "\\'") + "'"


@dataclass
class TrainJob:
    """One hand-off job: ``rank`` (1 = best), ``arch``, ``run_dir`` (its ``result.json`` lands there) and
    ``command`` (argv); after running, ``returncode`` and whether ``result.json`` exists."""

    rank: int
    arch: str
    run_dir: str
    command: list[str]
    returncode: int | None = None
    result_json: bool = False

    def shell(self) -> str:
        return " ".join(shlex.quote(a) for a in self.command)


def train_jobs(
    space: str,
    archs: Sequence[str],
    out_dir: str | Path,
    *,
    data: str | None = "digits",
    overrides: Sequence[str] = (),
    python: str | None = None,
) -> list[TrainJob]:
    """The ``lswag-train`` job of each architecture (best first), in ``<out_dir>/train/rank<k>``."""
    root = Path(out_dir) / "train"
    jobs = []
    for rank, arch in enumerate(archs, start=1):
        run_dir = root / f"rank{rank:02d}"
        cmd = [python or sys.executable, "-m", TRAIN_MODULE, f"space={space}", f"candidate.arch={hydra_quote(arch)}"]
        if data:
            cmd.append(f"data={data}")
        cmd += [str(o) for o in overrides]
        cmd.append(f"hydra.run.dir={run_dir}")
        jobs.append(TrainJob(rank, arch, str(run_dir), cmd))
    return jobs


def multirun_command(
    space: str, archs: Sequence[str], out_dir: str | Path, *, data: str | None = "digits", overrides: Sequence[str] = ()
) -> str:
    """The equivalent single Hydra multirun, as a shell command line (one job per arch, ``hydra.sweep.dir`` in
    ``<out_dir>/train_multirun``)."""
    values = ",".join(hydra_quote(a) for a in archs)
    parts = ["lswag-train", "-m", f"space={space}", f"candidate.arch={values}"]
    if data:
        parts.append(f"data={data}")
    parts += [str(o) for o in overrides]
    parts.append(f"hydra.sweep.dir={Path(out_dir) / 'train_multirun'}")
    return " ".join(shlex.quote(p) for p in parts)


def run_train_jobs(
    jobs: Sequence[TrainJob], *, log_dir: str | Path | None = None, timeout: float | None = None
) -> list[TrainJob]:
    """Run the jobs one after another (stdout/stderr to ``<run_dir>/train.log``); a failing job does not stop the
    others. Writes ``<log_dir>/train_jobs.json`` with each job's command and return code."""
    for job in jobs:
        run_dir = Path(job.run_dir)
        run_dir.mkdir(parents=True, exist_ok=True)
        log.info("training rank %d: %s", job.rank, job.shell())
        with (run_dir / "train.log").open("w") as fh:
            try:
                proc = subprocess.run(job.command, stdout=fh, stderr=subprocess.STDOUT, check=False, timeout=timeout)
                job.returncode = int(proc.returncode)
            except subprocess.TimeoutExpired:
                job.returncode = -1
                fh.write(f"\n[lswag-search] timed out after {timeout} s\n")
        job.result_json = (run_dir / "result.json").is_file()
        if job.returncode != 0:
            log.warning("training of rank %d failed (exit %s); see %s", job.rank, job.returncode, run_dir / "train.log")
    if log_dir is not None:
        Path(log_dir).mkdir(parents=True, exist_ok=True)
        write_json(Path(log_dir) / "train_jobs.json", [asdict(j) for j in jobs], nonfinite="keep", indent=1)
    return list(jobs)
