"""The job record: :class:`JobRecord`, a context manager that writes ``result.json`` when the job ends, on success
and failure alike, and closes the job's W&B run; the record's proxy fields and its JSON (one NaN policy: null)."""

from __future__ import annotations

import datetime as _dt
import platform
import sys
import time
import traceback
from importlib import metadata
from pathlib import Path
from types import TracebackType
from typing import Any

from lswag_lightning.job.build import env_rank_zero
from lswag_lightning.jsonio import dumps, plain

RESULT_SCHEMA_VERSION = 1


def _item_or_repr(value: Any) -> Any:
    """The record's fallback for objects JSON lacks: numpy / torch scalars by ``.item()``, anything else its repr."""
    if hasattr(value, "item") and callable(value.item):
        try:
            return plain(value.item(), fallback=_item_or_repr)
        except (TypeError, ValueError):
            pass
    return repr(value)


def write_json(path: Path, record: dict[str, Any]) -> None:
    """``record`` as strict JSON (:func:`~lswag_lightning.jsonio.plain`: non-finite floats null, other objects by
    :func:`_item_or_repr`), written through a temporary file and renamed."""
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(dumps(record, fallback=_item_or_repr, indent=2, allow_nan=False) + "\n")
    tmp.replace(path)


def versions() -> dict[str, str | None]:
    """Versions of python and of the packages that decide the numbers."""
    out: dict[str, str | None] = {"python": platform.python_version()}
    for package in (
        "lswag-lightning",
        "torch",
        "lightning",
        "torchmetrics",
        "timm",
        "numpy",
        "hydra-core",
        "omegaconf",
        "wandb",
        "scikit-learn",
        "torchvision",
    ):
        try:
            out[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            out[package] = None
    return out


def _utc_now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def _finish_wandb(failed: bool) -> None:
    """Close the W&B run of this job (if any), so the next job of a multirun process starts its own."""
    wandb = sys.modules.get("wandb")
    if wandb is not None and getattr(wandb, "run", None) is not None:
        wandb.finish(exit_code=1 if failed else 0)


def proxy_fields(zero_cost: list[Any]) -> tuple[dict[str, Any], float]:
    """The record's proxy fields from the zero-cost callbacks, and the seconds this job spent scoring.

    ``proxies`` (name -> value, None when not finite), ``proxy_status``, ``proxy_seconds``, ``proxy_settings``,
    ``proxies_restored``; ``report`` (the full report, for ``proxy_report.json``) when a callback has one."""
    fields: dict[str, Any] = {
        "proxies": {},
        "proxy_status": {},
        "proxy_seconds": {},
        "proxy_settings": {},
        "proxies_restored": any(cb.restored for cb in zero_cost),
    }
    scoring_seconds = 0.0
    for cb in zero_cost:
        fields["proxy_settings"].update(cb.hyperparameters())
        if cb.report is None:
            continue
        report = cb.report.to_dict()
        fields["proxies"].update(report["values"])
        fields["proxy_status"].update(report["status"])
        fields["proxy_seconds"].update(report["seconds"])
        fields["report"] = report
        if not cb.restored:
            scoring_seconds += float(cb.seconds or 0.0)
    return fields, scoring_seconds


class JobRecord:
    """``with JobRecord(output_dir, result_file, seed) as job:`` the record of one job (fields:
    :func:`~lswag_lightning.job.train_job.train`), written to ``<output_dir>/<result_file>`` when the block ends, by the
    writer only (global rank 0: from the launcher's environment until the job sets :attr:`is_writer` from the
    trainer).

    On an exception (any, Ctrl-C included) the record says ``status: failed`` with the ``error`` and ``traceback``,
    keeps the scores of :attr:`zero_cost` computed before the failure, and the exception propagates. Either way the
    record gets ``finished`` (UTC ISO) and, when unset, ``seconds.total``; then the job's W&B run is finished.
    """

    def __init__(self, output_dir: Path, result_file: str, seed: Any) -> None:
        self.t_start = time.perf_counter()
        started = _utc_now()
        self.output_dir = output_dir
        output_dir.mkdir(parents=True, exist_ok=True)
        self.path = output_dir / result_file
        self.record: dict[str, Any] = {
            "schema": RESULT_SCHEMA_VERSION,
            "status": "running",
            "started": started,
            "output_dir": str(output_dir),
            "seed": seed,
            "versions": versions(),
        }
        self.is_writer = env_rank_zero()
        #: The job's zero-cost callbacks (their scores go into the record).
        self.zero_cost: list[Any] = []

    def __enter__(self) -> JobRecord:
        return self

    def succeed(
        self, module: Any, trainer: Any, fit_seconds: float, test_seconds: float, config: Any
    ) -> dict[str, Any]:
        """Fill the record of a finished job (and write ``proxy_report.json``); returns the record."""
        fields, scoring_seconds = proxy_fields(self.zero_cost)
        if self.is_writer and "report" in fields:
            write_json(self.output_dir / "proxy_report.json", fields["report"])
        metrics = dict(module.final_metrics)
        self.record.update(
            status="ok",
            **{k: v for k, v in fields.items() if k != "report"},
            metrics=metrics,
            val_acc=metrics.get("val/acc"),
            val_acc_best=metrics.get("val/acc_best"),
            test_acc=metrics.get("test/acc"),
            steps=int(trainer.global_step),
            epochs=int(trainer.current_epoch),
            seconds={
                "scoring": scoring_seconds,
                "training": max(0.0, fit_seconds - scoring_seconds),
                "fit": fit_seconds,
                "test": test_seconds,
                "total": time.perf_counter() - self.t_start,
            },
            config=config,
        )
        return self.record

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> bool:
        failed = exc_type is not None
        if failed:
            self.record.update(
                status="failed",
                error=f"{exc_type.__name__}: {exc}",
                traceback="".join(traceback.format_exception(exc_type, exc, tb, limit=20)),
            )
            if self.zero_cost and "proxies" not in self.record:  # scores computed before the failure are kept
                fields, _ = proxy_fields(self.zero_cost)
                self.record.update({k: v for k, v in fields.items() if k != "report"})
        self.record["finished"] = _utc_now()
        self.record.setdefault("seconds", {"total": time.perf_counter() - self.t_start})
        try:
            if self.is_writer:
                write_json(self.path, self.record)
        finally:
            _finish_wandb(failed)
        return False  # the exception, if any, propagates
