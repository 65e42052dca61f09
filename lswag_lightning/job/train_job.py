"""One ``lswag-train`` job: the candidate built, scored at init by the callback, trained, tested, recorded."""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from lswag_lightning.job.build import (
    ConfigError,
    build_callbacks,
    build_loggers,
    build_trainer,
    instantiate,
    is_zero_cost,
    one_console_handler,
    plain,
    resolve_space,
    select_candidate,
    setup_data,
    space_build_options,
    validate_zero_cost,
)
from lswag_lightning.job.record import JobRecord

# The job's messages keep the console script's logger name (Hydra writes it in each line of <job>.log).
log = logging.getLogger("lswag_lightning.cli.train")


def _threads(cfg: DictConfig) -> int | None:
    """The job's torch threads: ``threads``, or the deprecated ``num_threads`` when it is set (with a warning)."""
    if cfg.get("num_threads") is not None:
        log.warning("num_threads is deprecated; use threads=%s (renamed, see CHANGELOG.md)", cfg.num_threads)
        return int(cfg.num_threads)
    return int(cfg.threads) if cfg.get("threads") else None


__all__ = ["ConfigError", "train"]


def _job_dir(output_dir: str | os.PathLike | None) -> Path:
    """``output_dir``, else Hydra's output folder of this job."""
    if output_dir is None:
        from hydra.core.hydra_config import HydraConfig

        output_dir = HydraConfig.get().runtime.output_dir
    return Path(output_dir)


def _build_net(space: Any, spec: Any, datamodule: Any, space_options: dict[str, Any]) -> Any:
    """The candidate's network, built by the job's own space object (so a family composed from a config node, with
    its overrides, is what trains), sized by the data module."""
    try:
        return space.build(
            spec,
            num_classes=datamodule.num_classes,
            in_chans=datamodule.in_chans,
            img_size=datamodule.img_size,
            **space_options,
        )
    except (ValueError, TypeError) as err:
        raise ConfigError(f"space: the candidate does not build: {err}") from err


def _params_space(space: Any, spec: Any, datamodule: Any, space_options: dict[str, Any]) -> int | None:
    """``space.param_count`` of the candidate (informative only: None, with a warning, when it fails)."""
    try:
        return int(
            space.param_count(
                spec,
                num_classes=datamodule.num_classes,
                in_chans=datamodule.in_chans,
                img_size=datamodule.img_size,
                **space_options,
            )
        )
    except Exception as err:  # informative only
        log.warning("space.param_count failed: %s", err)
        return None


def _dataset_fields(datamodule: Any) -> dict[str, Any]:
    return {
        "name": getattr(datamodule, "name", type(datamodule).__name__),
        "num_classes": datamodule.num_classes,
        "in_chans": datamodule.in_chans,
        "img_size": datamodule.img_size,
        "sizes": getattr(datamodule, "sizes", None),
    }


def _fit_and_test(cfg: DictConfig, trainer: Any, module: Any, datamodule: Any) -> tuple[float, float]:
    """Fit (from ``ckpt_path`` when set) and, unless ``test=false``, test; returns their wall seconds."""
    t_fit = time.perf_counter()
    trainer.fit(module, datamodule=datamodule, ckpt_path=cfg.get("ckpt_path"))
    fit_seconds = time.perf_counter() - t_fit
    test_seconds = 0.0
    if cfg.get("test", True):
        t_test = time.perf_counter()
        trainer.test(module, datamodule=datamodule, verbose=False)
        test_seconds = time.perf_counter() - t_test
    return fit_seconds, test_seconds


def train(cfg: DictConfig, output_dir: str | os.PathLike | None = None) -> dict[str, Any]:
    """Run one job and return its record (also written to ``<output_dir>/<result_file>`` on global rank 0).

    Record fields: ``status`` ("ok" | "failed" + ``error``), ``space`` (its name), ``space_file`` (a family's YAML
    file, absolute; only for a family), ``space_options``, ``arch`` (encoded),
    ``candidate`` (how it was chosen), ``params`` (trainable parameters of the built network), ``params_space``
    (``space.param_count``), ``dataset`` (name, classes, channels, size, split sizes), ``proxies`` (name -> value,
    None when not finite), ``proxy_status``, ``proxy_seconds``, ``proxy_settings`` (callback + engine settings),
    ``proxies_restored`` (True when the scores came from ``ckpt_path``'s checkpoint, scored at that run's start),
    ``metrics`` (final ``train/*``, ``val/*``, ``test/*``), ``val_acc``, ``val_acc_best``, ``test_acc``,
    ``seconds`` (``scoring``, ``training`` = fit minus scoring, ``test``, ``total``), ``steps``, ``epochs``,
    ``seed``, ``versions``, ``started``/``finished`` (UTC ISO), ``output_dir``, ``config`` (resolved, no hydra).
    The full proxy report (per-layer details) goes to ``proxy_report.json`` beside it. Everything that can be
    wrong with the config is checked before any training (:mod:`lswag_lightning.job.build`); the record is
    written by :class:`~lswag_lightning.job.record.JobRecord`, on failure too.
    """
    import torch

    with JobRecord(_job_dir(output_dir), cfg.get("result_file", "result.json"), cfg.get("seed")) as job:
        job_space = resolve_space(cfg)
        space, space_name = job_space.space, job_space.name
        space_options = space_build_options(cfg.space)
        spec, arch, how = select_candidate(space, cfg.candidate, space_name)
        job.record.update(space=space_name, space_options=space_options, arch=arch, candidate=how)
        if job_space.file is not None:
            job.record["space_file"] = job_space.file
        # (Lightning is imported only once the space and the candidate are known to be valid.)
        import lightning.pytorch as pl

        one_console_handler()
        threads = _threads(cfg)
        if threads:
            torch.set_num_threads(threads)
        pl.seed_everything(int(cfg.get("seed", 0)), workers=True, verbose=False)
        datamodule, train_size = setup_data(cfg)
        log.info("candidate %s of %s: %s", how["index"] if how["by"] == "index" else "(arch)", space_name, arch)

        named_callbacks = build_callbacks(cfg, job.output_dir)
        callbacks = list(named_callbacks.values())
        job.zero_cost = [cb for cb in callbacks if is_zero_cost(cb)]
        validate_zero_cost(named_callbacks, train_size)

        module = instantiate(
            cfg.model,
            "model",
            net=_build_net(space, spec, datamodule, space_options),
            space=job_space.ref,
            arch=arch,
            num_classes=datamodule.num_classes,
            in_chans=datamodule.in_chans,
            img_size=datamodule.img_size,
            space_options=space_options,
        )
        params = int(module.num_parameters)
        job.record.update(
            params=params,
            params_space=_params_space(space, spec, datamodule, space_options),
            dataset=_dataset_fields(datamodule),
        )

        run_name = f"{space_name}-{how['index'] if how['by'] == 'index' else arch}"
        trainer = build_trainer(cfg, callbacks, build_loggers(cfg, job.output_dir, run_name), job.output_dir)
        job.is_writer = trainer.is_global_zero
        config = plain(cfg)
        for logger in trainer.loggers:
            logger.log_hyperparams(
                {"candidate": {**how, "space": space_name, "arch": arch, "params": params}, "config": config}
            )
        fit_seconds, test_seconds = _fit_and_test(cfg, trainer, module, datamodule)
        return job.succeed(module, trainer, fit_seconds, test_seconds, config)
