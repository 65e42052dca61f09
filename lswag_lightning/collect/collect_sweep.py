"""Collect a sweep end to end: read the records, write the table, the problems and ``collect.json``, then the
report and the optional W&B run."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from lswag_lightning.collect.analyse import Analysis, analyse
from lswag_lightning.collect.records import RESULT_FILE, Collected, read_results
from lswag_lightning.collect.results_table import (
    ACCURACY_CHOICES,
    ACCURACY_KEYS,
    results_table,
    table_proxies,
    write_issues,
    write_table,
)
from lswag_lightning.collect.wandb_run import sweep_wandb_settings, write_wandb_run
from lswag_lightning.jsonio import write_json

log = logging.getLogger("lswag_lightning.collect")  # one logger name for the package (the CLI prints it)


@dataclass
class CollectResult:
    """Everything :func:`collect` produced: the table, the issues, the analysis and the paths written."""

    table: pd.DataFrame
    collected: Collected
    analysis: Analysis | None
    paths: dict[str, Path]
    wandb: dict[str, Any] | None = None


def default_out_dir(paths: Sequence[str | os.PathLike]) -> Path:
    """``<first folder>/collect`` (or ``<folder of the first file>/collect``)."""
    first = Path(paths[0])
    return (first if first.is_dir() else first.parent) / "collect"


def collect(
    paths: Sequence[str | os.PathLike],
    out_dir: str | os.PathLike | None = None,
    *,
    accuracy: str = "val_acc",
    proxies: Sequence[str] | None = None,
    report: bool = True,
    per_space: bool = True,
    n_boot: int = 1000,
    n_splits: int = 20,
    seed: int = 0,
    wandb: bool = False,
    wandb_mode: str | None = None,
    wandb_project: str | None = None,
    wandb_group: str | None = None,
    result_name: str = RESULT_FILE,
    libra_options: Mapping[str, Any] | None = None,
) -> CollectResult:
    """Read the sweep(s), write ``table.csv``/``table.parquet``/``problems.csv``/``collect.json`` in ``out_dir``
    (default :func:`default_out_dir`), then the report (``report``) and the aggregate W&B run (``wandb``).

    Failed and unfinished jobs never stop it: they are in ``problems.csv`` and ``CollectResult.collected.issues``.
    Raises ``ValueError`` when no job finished (after writing ``problems.csv``), naming the first errors.
    """
    if accuracy not in ACCURACY_KEYS:
        raise ValueError(f"accuracy must be one of {', '.join(ACCURACY_CHOICES)}, got {accuracy!r}")
    collected = read_results(paths, result_name)
    out = Path(out_dir) if out_dir is not None else default_out_dir(paths)
    out.mkdir(parents=True, exist_ok=True)
    written: dict[str, Path] = {"problems": write_issues(collected.issues, out)}
    if not collected.records:
        first = "; ".join(f"{i.job}: {i.error}" for i in collected.issues[:3])
        raise ValueError(
            f"no finished job (status ok) under {', '.join(map(str, paths))}: "
            f"{len(collected.issues)} failed or unfinished" + (f" ({first})" if first else "")
        )
    table = results_table(collected.records, proxies)
    written.update(write_table(table, out))
    analysis = None
    if report:
        analysis = analyse(
            table,
            out,
            accuracy=accuracy,
            proxies=proxies,
            n_boot=n_boot,
            n_splits=n_splits,
            seed=seed,
            per_space=per_space,
            libra_options=libra_options,
            protocol_lines=[
                f"sweep: {', '.join(map(str, paths))}",
                f"{len(collected.records)} finished jobs, {len(collected.issues)} failed or unfinished (problems.csv)",
            ],
        )
        written.update({f"report_{k}" if k != "all" else "report": v for k, v in analysis.reports.items()})
    _note_mixed_groups(table, analysis)
    wandb_info = None
    if wandb:
        if analysis is None:
            analysis = Analysis(
                accuracy=accuracy,
                proxies=table_proxies(table),
                n_rows=len(table),
                libra_skipped="LIBRA not run (no report asked for)",
            )
        settings = sweep_wandb_settings(collected.records)
        wandb_info = write_wandb_run(
            table,
            analysis,
            out,
            project=wandb_project or settings["project"],
            entity=settings["entity"],
            group=wandb_group or settings["group"],
            mode=wandb_mode,
            extra_summary={"n_failed": len(collected.issues)},
        )
    written["summary"] = _write_summary(out, collected, accuracy, written, wandb_info, analysis)
    return CollectResult(table=table, collected=collected, analysis=analysis, paths=written, wandb=wandb_info)


def _note_mixed_groups(table: pd.DataFrame, analysis: Analysis | None) -> None:
    """Warn (and note in the analysis) when the jobs recorded more than one W&B group / sweep id."""
    groups = sorted(str(g) for g in table["wandb_group"].dropna().unique())
    if len(groups) > 1:
        note = (
            f"the jobs recorded {len(groups)} different W&B groups / sweep ids ({', '.join(groups[:3])}"
            f"{', ...' if len(groups) > 3 else ''}); launch with sweep_id=<name> to keep one sweep in one group"
        )
        log.warning(note)
        if analysis is not None:
            analysis.notes.append(note)


def _write_summary(
    out: Path,
    collected: Collected,
    accuracy: str,
    written: Mapping[str, Path],
    wandb_info: Any,
    analysis: Analysis | None,
) -> Path:
    """``collect.json``: inputs, counts, issues, the files written, the W&B run and the analysis's notes."""
    summary = {
        "inputs": collected.inputs,
        "out_dir": str(out),
        "n_ok": len(collected.records),
        "issues": [i.to_dict() for i in collected.issues],
        "accuracy": accuracy,
        "paths": {k: str(v) for k, v in written.items()},
        "wandb": wandb_info,
    }
    if analysis is not None:
        summary.update(
            notes=analysis.notes,
            libra_skipped=analysis.libra_skipped or None,
            libra=analysis.libra.selection.proxies if analysis.libra is not None else None,
            label_budget=analysis.ranking.summary() if analysis.ranking is not None else None,
        )
    path = out / "collect.json"
    write_json(path, summary, nonfinite="keep", fallback=str, newline=True)
    return path
