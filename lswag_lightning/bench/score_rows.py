"""Scoring the rows of a benchmark run: the probe batch, each architecture's seeded build and score, and the
resumable loop that appends them to the table."""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import platform
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import torch

from lswag_lightning.bench.ground_truth import GroundTruth
from lswag_lightning.bench.settings import (
    TABLE_DOC,
    BenchSettings,
    default_device,
    engine_options,
    table_columns,
    value_columns,
)
from lswag_lightning.bench.table_file import TableFile, check_settings, exclusive_run, read_table
from lswag_lightning.candidates import arch_seed, score_candidate
from lswag_lightning.jsonio import write_json

log = logging.getLogger(__name__)


@contextlib.contextmanager
def _float32_exact() -> Any:
    """Switch off TF32 on CUDA for the duration (restored afterwards)."""
    if not torch.cuda.is_available():
        yield
        return
    saved = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32)
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved


def table_row_values(
    space: Any,
    arch: str,
    x: torch.Tensor,
    y: torch.Tensor,
    proxies: Sequence[str],
    build_options: Mapping[str, Any],
    score_options: Mapping[str, Any],
    device: torch.device,
    init_seed: int,
) -> dict[str, Any]:
    """One table row's values of ``arch``, scored by :func:`lswag_lightning.candidates.score_candidate` (CPU init
    from ``init_seed``, then moved to ``device``).

    Returns ``params``, every value column, ``status``, ``seconds.<proxy>``, ``build_seconds`` and
    ``total_seconds``.
    """
    scored = score_candidate(
        space,
        arch,
        x,
        y,
        proxies,
        device=device,
        build_options=build_options,
        score_options=engine_options(score_options),
        seed=init_seed,
    )
    report = scored.report
    row: dict[str, Any] = {"params": scored.params}
    for key in value_columns(proxies):
        if key != "params":
            row[key] = float(report.values.get(key, math.nan))
    failed = report.failed()
    row["status"] = "ok" if not failed else "; ".join(f"{k}: {v}" for k, v in failed.items())
    for name in proxies:
        row[f"seconds.{name}"] = float(report.seconds.get(name, math.nan))
    row["build_seconds"] = scored.build_seconds
    row["total_seconds"] = float(report.total_seconds)
    return row


class StopRun(Exception):
    """Raised by a row callback to stop a run early (the rows written so far stay; a rerun resumes)."""


@dataclass
class RunResult:
    """What :func:`run_benchmark` did: the full table (ordered), rows scored now / found done, failures."""

    table: pd.DataFrame
    scored: int
    resumed: int
    failed: int
    stopped: bool
    wall_seconds: float


def run_benchmark(
    settings: BenchSettings,
    gt: GroundTruth,
    out_dir: str | os.PathLike,
    *,
    data_dir: Any = None,
    device: str | torch.device | None = None,
    progress: bool = True,
    on_row: Callable[[int, dict[str, Any]], None] | None = None,
    stop_after: int | None = None,
) -> RunResult:
    """Score every architecture of ``gt`` (already sampled) and append its row to ``<out_dir>/table.csv``.

    Resumes a table made with the same ``settings`` (``bench.json``); refuses one made with other settings.
    ``on_row(sample_index, row)`` is called after each row is written; it may raise :class:`StopRun`.
    ``stop_after`` stops after that many newly scored rows (for tests of resumption).
    A network whose scoring raises a runtime error (e.g. out of memory) gets a row of NaN with the error in
    ``status``; invalid settings (``ValueError``) stop the run. A second process on the same ``out_dir`` is
    refused while the first runs (:func:`exclusive_run`).
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    with exclusive_run(out):
        return run_rows(
            settings, gt, out, data_dir=data_dir, device=device, progress=progress, on_row=on_row, stop_after=stop_after
        )


def run_rows(
    settings: BenchSettings,
    gt: GroundTruth,
    out: Path,
    *,
    data_dir: Any = None,
    device: str | torch.device | None = None,
    progress: bool = True,
    on_row: Callable[[int, dict[str, Any]], None] | None = None,
    stop_after: int | None = None,
    table_name: str = "table.csv",
    meta_name: str = "bench.json",
    positions: Sequence[int] | None = None,
    run_info: Mapping[str, Any] | None = None,
) -> RunResult:
    """The body of :func:`run_benchmark`, for a caller that already holds the folder's lock.

    ``positions``: the sample positions this table is for (default: all of ``gt``); ``table_name`` /
    ``meta_name``: its files in ``out``; ``run_info`` is added to the settings file (e.g. which shard).
    The returned table holds this table's rows only.
    """
    from tqdm.auto import tqdm

    from lswag_lightning.spaces import get_space

    meta_path = out / meta_name
    table_path = out / table_name
    check_settings(out, settings, table_name=table_name, meta_name=meta_name)
    dev = torch.device(device or default_device())
    meta, this_run = _start_meta(meta_path, settings, dev, run_info)
    write_json(meta_path, meta, nonfinite="keep")

    space = get_space(settings.space)
    table_file = TableFile(table_path, table_columns(gt, settings.proxies))
    planned = list(range(len(gt))) if positions is None else [int(p) for p in positions]
    todo = _todo(table_file, gt, planned)
    x, y = settings.probe(data_dir)
    x, y = x.to(dev), y.to(dev)
    start = time.perf_counter()
    scored = failed = 0
    stopped = False
    bar = tqdm(
        total=len(planned),
        initial=len(planned) - len(todo),
        unit="arch",
        disable=not progress,
        desc=f"{settings.benchmark}",
        dynamic_ncols=True,
    )
    try:
        with _float32_exact():
            for index in todo:
                row, ok = _score_row(space, gt, index, x, y, settings, dev)
                failed += not ok
                table_file.append(row)
                scored += 1
                bar.update(1)
                bar.set_postfix(sec=f"{row.get('total_seconds', math.nan):.2f}", refresh=False)
                if on_row is not None:
                    on_row(index, row)
                if stop_after is not None and scored >= stop_after:
                    raise StopRun(f"stopped after {scored} architectures (stop_after)")
    except (StopRun, KeyboardInterrupt) as exc:
        stopped = True
        log.warning(
            "run interrupted (%s); %d rows written, rerun the same command to resume",
            type(exc).__name__,
            len(table_file.done) + scored,
        )
    finally:
        bar.close()
    this_run["rows_scored"] = scored
    write_json(meta_path, meta, nonfinite="keep")
    return RunResult(
        read_table(table_path), scored, len(planned) - len(todo), failed, stopped, time.perf_counter() - start
    )


def _start_meta(
    meta_path: Path, settings: BenchSettings, dev: torch.device, run_info: Mapping[str, Any] | None
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The settings file's content for this run (earlier runs kept) and this run's entry (updated at the end)."""
    previous_runs = json.loads(meta_path.read_text()).get("runs", []) if meta_path.exists() else []
    this_run = {
        "device": str(dev),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "threads": torch.get_num_threads(),
        "started": time.strftime("%Y-%m-%d %H:%M:%S"),
    }
    if dev.type == "cuda":
        this_run["device_name"] = torch.cuda.get_device_name(dev)
    meta = {
        "settings": settings.fingerprint(),
        "score_options_source": settings.score_options_source,
        "gt_source": settings.gt_source,
        "columns": TABLE_DOC,
        **dict(run_info or {}),
        **this_run,
        "runs": [*previous_runs, this_run],
    }
    return meta, this_run


def _todo(table_file: TableFile, gt: GroundTruth, planned: Sequence[int]) -> list[int]:
    """The planned positions not yet in the table; ``ValueError`` when the table holds rows of another sample."""
    archs = gt.table["arch"].tolist()
    wanted = set(planned)
    for index, arch in table_file.done.items():
        if index not in wanted or index >= len(archs) or archs[index] != arch:
            raise ValueError(
                f"{table_file.path}: row sample_index={index} holds {arch!r}, which is not a planned "
                "architecture of this table; it belongs to another sample. Use another --out folder"
            )
    return [i for i in planned if i not in table_file.done]


def _score_row(
    space: Any,
    gt: GroundTruth,
    index: int,
    x: torch.Tensor,
    y: torch.Tensor,
    settings: BenchSettings,
    dev: torch.device,
) -> tuple[dict[str, Any], bool]:
    """The table row of sample position ``index`` and whether it was scored: a runtime error (e.g. out of memory)
    gives a row of NaN with the error in ``status`` and False; a ``ValueError`` (invalid settings) propagates."""
    record = gt.table.iloc[index]
    arch = str(gt.table["arch"].iloc[index])
    seed = arch_seed(arch, settings.init_seed_base)
    row: dict[str, Any] = {"sample_index": index, "arch": arch, "space": settings.space, "init_seed": seed}
    for col in (*gt.id_columns, *gt.accuracy_columns):
        row[col] = record[col]
    try:
        row.update(
            table_row_values(
                space, arch, x, y, settings.proxies, settings.build_options, settings.score_options, dev, seed
            )
        )
    except ValueError:
        raise
    except (RuntimeError, MemoryError) as exc:  # e.g. CUDA out of memory: record and go on
        log.warning("%s: scoring failed: %s", arch, exc)
        row["status"] = f"error: {type(exc).__name__}: {str(exc).splitlines()[0][:300]}"
        if dev.type == "cuda":
            torch.cuda.empty_cache()
        return row, False
    return row, True
