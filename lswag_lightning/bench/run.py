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

import numpy as np
import pandas as pd
import torch

from lswag_lightning.bench.ground_truth import GroundTruth
from lswag_lightning.bench.settings import (TABLE_DOC, BenchSettings, _engine_options, arch_seed, default_device,
                                            table_columns, value_columns)
from lswag_lightning.bench.tables import TableFile, check_settings, exclusive_run, read_table
from lswag_lightning.images import CIFAR10_MEAN, CIFAR10_STD, read_image_npz
from lswag_lightning.paths import resolve_data_dir

log = logging.getLogger(__name__)

PROBE_FILE = "images/cifar10_train_part0.npz"


def load_probe_batch(data_dir: str | os.PathLike | None = None, batch_size: int = 64, seed: int = 0,
                     img_size: int = 32) -> tuple[torch.Tensor, torch.Tensor]:
    """One probe batch of CIFAR-10 training images: float32 (B, 3, img_size, img_size), normalised with the
    CIFAR-10 mean/std, and int64 labels (B,) in 0..9.

    Images are drawn without replacement from ``images/cifar10_train_part0.npz`` (5,000 images, grouped by class)
    after a ``numpy.random.default_rng(seed)`` permutation; sizes other than 32 are bilinear resizes.
    """
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 2:
        raise ValueError(f"batch_size must be an integer >= 2, got {batch_size!r}")
    if isinstance(img_size, bool) or not isinstance(img_size, int) or img_size < 4:
        raise ValueError(f"img_size must be an integer >= 4 pixels, got {img_size!r}")
    root = resolve_data_dir(data_dir, must_contain=PROBE_FILE)
    images, labels = read_image_npz([root / PROBE_FILE])
    if batch_size > len(labels):
        raise ValueError(f"batch_size={batch_size} exceeds the {len(labels)} probe images in {PROBE_FILE}")
    index = np.random.default_rng(seed).permutation(len(labels))[:batch_size]
    x = torch.from_numpy(np.ascontiguousarray(images[index])).permute(0, 3, 1, 2).to(torch.float32) / 255.0
    if img_size != x.shape[-1]:
        x = torch.nn.functional.interpolate(x, size=(img_size, img_size), mode="bilinear", align_corners=False)
    mean = torch.tensor(CIFAR10_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(CIFAR10_STD).view(1, 3, 1, 1)
    return (x - mean) / std, torch.from_numpy(labels[index])



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


def score_architecture(space: Any, arch: str, x: torch.Tensor, y: torch.Tensor, proxies: Sequence[str],
                       build_options: Mapping[str, Any], score_options: Mapping[str, Any], device: torch.device,
                       init_seed: int) -> dict[str, Any]:
    """Build ``arch`` (CPU init from ``init_seed``, then moved to ``device``) and score it; one table row's values.

    ``x``/``y`` are the probe batch, already on ``device``. Returns ``params``, every value column, ``status``,
    ``seconds.<proxy>``, ``build_seconds`` and ``total_seconds``.
    """
    from lswag_lightning.proxies import score_network
    from lswag_lightning.proxies.layers import count_parameters

    start = time.perf_counter()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(init_seed)
        model = space.build(space.decode(arch), **build_options)
    model = model.to(device)
    build_seconds = time.perf_counter() - start
    report = score_network(model, x, y, proxies=proxies, **_engine_options(score_options))
    row: dict[str, Any] = {"params": int(report.values["params"]) if report.ok("params") else
                           count_parameters(model, score_options.get("params_exclude", r"(^|\.)aux"))}
    for key in value_columns(proxies):
        if key != "params":
            row[key] = float(report.values.get(key, math.nan))
    failed = report.failed()
    row["status"] = "ok" if not failed else "; ".join(f"{k}: {v}" for k, v in failed.items())
    for name in proxies:
        row[f"seconds.{name}"] = float(report.seconds.get(name, math.nan))
    row["build_seconds"] = build_seconds
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


def run_benchmark(settings: BenchSettings, gt: GroundTruth, out_dir: str | os.PathLike, *, data_dir: Any = None,
                  device: str | torch.device | None = None, progress: bool = True,
                  on_row: Callable[[int, dict[str, Any]], None] | None = None,
                  stop_after: int | None = None) -> RunResult:
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
        return run_rows(settings, gt, out, data_dir=data_dir, device=device, progress=progress, on_row=on_row,
                        stop_after=stop_after)


def run_rows(settings: BenchSettings, gt: GroundTruth, out: Path, *, data_dir: Any = None,
             device: str | torch.device | None = None, progress: bool = True,
             on_row: Callable[[int, dict[str, Any]], None] | None = None, stop_after: int | None = None,
             table_name: str = "table.csv", meta_name: str = "bench.json",
             positions: Sequence[int] | None = None, run_info: Mapping[str, Any] | None = None) -> RunResult:
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
    previous_runs = json.loads(meta_path.read_text()).get("runs", []) if meta_path.exists() else []
    this_run = {"device": str(dev), "torch": torch.__version__, "python": platform.python_version(),
                "threads": torch.get_num_threads(), "started": time.strftime("%Y-%m-%d %H:%M:%S")}
    if dev.type == "cuda":
        this_run["device_name"] = torch.cuda.get_device_name(dev)
    meta = {"settings": settings.fingerprint(), "score_options_source": settings.score_options_source,
            "gt_source": settings.gt_source, "columns": TABLE_DOC, **dict(run_info or {}), **this_run,
            "runs": [*previous_runs, this_run]}
    meta_path.write_text(json.dumps(meta, indent=2))

    space = get_space(settings.space)
    columns = table_columns(gt, settings.proxies)
    table_file = TableFile(table_path, columns)
    archs = gt.table["arch"].tolist()
    planned = list(range(len(archs))) if positions is None else [int(p) for p in positions]
    wanted = set(planned)
    for index, arch in table_file.done.items():
        if index not in wanted or index >= len(archs) or archs[index] != arch:
            raise ValueError(f"{table_path}: row sample_index={index} holds {arch!r}, which is not a planned "
                             "architecture of this table; it belongs to another sample. Use another --out folder")
    todo = [i for i in planned if i not in table_file.done]
    x, y = load_probe_batch(data_dir, settings.batch_size, settings.probe_seed, settings.img_size)
    x, y = x.to(dev), y.to(dev)
    start = time.perf_counter()
    scored = failed = 0
    stopped = False
    bar = tqdm(total=len(planned), initial=len(planned) - len(todo), unit="arch", disable=not progress,
               desc=f"{settings.benchmark}", dynamic_ncols=True)
    try:
        with _float32_exact():
            for index in todo:
                record = gt.table.iloc[index]
                arch = archs[index]
                seed = arch_seed(arch, settings.init_seed_base)
                row: dict[str, Any] = {"sample_index": index, "arch": arch, "space": settings.space,
                                       "init_seed": seed}
                for col in (*gt.id_columns, *gt.accuracy_columns):
                    row[col] = record[col]
                try:
                    row.update(score_architecture(space, arch, x, y, settings.proxies, settings.build_options,
                                                  settings.score_options, dev, seed))
                except ValueError:
                    raise
                except (RuntimeError, MemoryError) as exc:  # e.g. CUDA out of memory: record and go on
                    log.warning("%s: scoring failed: %s", arch, exc)
                    row["status"] = f"error: {type(exc).__name__}: {str(exc).splitlines()[0][:300]}"
                    if dev.type == "cuda":
                        torch.cuda.empty_cache()
                    failed += 1
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
        log.warning("run interrupted (%s); %d rows written, rerun the same command to resume",
                    type(exc).__name__, len(table_file.done) + scored)
    finally:
        bar.close()
    this_run["rows_scored"] = scored
    meta_path.write_text(json.dumps(meta, indent=2))
    return RunResult(read_table(table_path), scored, len(planned) - len(todo), failed, stopped,
                     time.perf_counter() - start)

