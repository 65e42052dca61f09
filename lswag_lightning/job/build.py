"""From the config to the job's objects, each step checking what can be wrong before any training: the space and
the candidate, the data module, the callbacks (zero-cost arguments, probe size), the loggers, the trainer. A bad
configuration raises :class:`ConfigError` naming the key to change."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import hydra
from omegaconf import DictConfig, OmegaConf


class ConfigError(ValueError):
    """A configuration that cannot run; the message names the config key to change."""


def instantiate(node: Any, what: str, **kwargs: Any) -> Any:
    """``hydra.utils.instantiate`` with the error reduced to its cause, prefixed by the config group."""
    from hydra.errors import InstantiationException

    try:
        return hydra.utils.instantiate(node, _convert_="all", **kwargs)
    except InstantiationException as err:
        cause = err.__cause__ or err
        raise ConfigError(f"{what}: {type(cause).__name__}: {cause}") from cause


def plain(node: Any) -> Any:
    """A config node as plain Python containers (resolved); anything else as is."""
    return OmegaConf.to_container(node, resolve=True) if OmegaConf.is_config(node) else node


DATA_DECIDED = ("num_classes", "in_chans", "img_size")


def space_build_options(space_cfg: Any) -> dict[str, Any]:
    """The build options of a ``space/`` config (``space.build_options``) without ``num_classes``, ``in_chans``
    and ``img_size``: those always come from the data module, so the network matches the data."""
    options = plain(space_cfg.get("build_options")) or {}
    if not isinstance(options, dict):
        raise ConfigError(f"space.build_options must be a mapping, got {options!r}")
    return {k: v for k, v in options.items() if k not in DATA_DECIDED}


def select_candidate(space: Any, candidate_cfg: Any, space_name: str) -> tuple[Any, str, dict[str, Any]]:
    """``(spec, arch string, how)``: ``candidate.arch`` decoded, else the ``candidate.index``-th sample of the space.

    The index-th candidate is ``space.sample(numpy.random.default_rng([candidate.seed, candidate.index]))``: the same
    on every machine and independent of the other jobs of a sweep.
    """
    import numpy as np

    arch = candidate_cfg.get("arch")
    index = candidate_cfg.get("index")
    seed = candidate_cfg.get("seed", 0)
    if arch is not None:
        try:
            spec = space.decode(plain(arch))
        except ValueError as err:
            raise ConfigError(f"candidate.arch={arch!r} is not a valid {space_name} architecture: {err}") from err
        return spec, space.encode(spec), {"by": "arch", "arch": str(arch), "index": None, "seed": None}
    if isinstance(index, bool) or not isinstance(index, int) or index < 0:
        raise ConfigError(f"candidate.index must be an int >= 0 (or set candidate.arch), got {index!r}")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ConfigError(f"candidate.seed must be an int >= 0, got {seed!r}")
    spec = space.sample(np.random.default_rng([seed, index]))
    return spec, space.encode(spec), {"by": "index", "arch": None, "index": index, "seed": seed}


def resolve_space(cfg: DictConfig) -> Any:
    """The job's space (a :class:`~lswag_lightning.job.space_config.JobSpace`) from ``cfg.space``: a built-in
    space's name or a family file; also refuses ``ddp_spawn`` strategies (see the message)."""
    from lswag_lightning.job.space_config import space_from_job_config

    try:
        job_space = space_from_job_config(cfg.get("space"))
    except (ValueError, KeyError) as err:
        raise ConfigError(f"{_space_label(cfg.get('space'))}: {err}") from err
    strategy = str((cfg.get("trainer") or {}).get("strategy", "auto"))
    if "spawn" in strategy:
        # ddp_spawn runs fit and test in child processes and sends back only callback_metrics: the job's
        # callbacks, module metrics and loggers in this process would not see the run.
        raise ConfigError(
            f"trainer.strategy={strategy!r} is not supported by lswag-train; use trainer=ddp_cpu "
            "(strategy=ddp, which relaunches the job per process) or trainer.strategy=ddp"
        )
    return job_space


def _space_label(node: Any) -> str:
    """How a ``space`` node is named in an error: ``space.file=...``, ``space.name=...`` or ``space``."""
    for key in ("file", "name"):
        if node is not None and node.get(key) is not None:
            return f"space.{key}={str(node.get(key))!r}"
    return "space"


def setup_data(cfg: DictConfig) -> tuple[Any, Any]:
    """``(data module set up for fit, training-set size or None)``; data errors become :class:`ConfigError`."""
    datamodule = instantiate(cfg.data, "data")
    try:
        datamodule.prepare_data()
        datamodule.setup("fit")
    except (ValueError, FileNotFoundError, RuntimeError) as err:
        raise ConfigError(f"data: {err}") from err
    train_size = len(datamodule.train_set) if getattr(datamodule, "train_set", None) is not None else None
    return datamodule, train_size


def is_zero_cost(callback: Any) -> bool:
    from lswag_lightning.lightning.callback import ZeroCostProxyCallback

    return isinstance(callback, ZeroCostProxyCallback)


def build_callbacks(cfg: DictConfig, output_dir: Path) -> dict[str, Any]:
    """The ``callbacks/`` group instantiated, by config key; checkpoints default to ``<job folder>/checkpoints``."""
    from lightning.pytorch.callbacks import ModelCheckpoint

    callbacks: dict[str, Any] = {}
    for key, node in (cfg.get("callbacks") or {}).items():
        if node is None:
            continue
        if "_target_" not in node:
            raise ConfigError(f"callbacks.{key} has no _target_")
        callback = instantiate(node, f"callbacks.{key}")
        if isinstance(callback, ModelCheckpoint) and callback.dirpath is None:
            callback.dirpath = str(output_dir / "checkpoints")
        callbacks[str(key)] = callback
    return callbacks


def validate_zero_cost(named_callbacks: dict[str, Any], train_size: Any) -> None:
    """Each zero-cost callback's arguments (its own ``validate``) and probe size against the training set."""
    for key, cb in named_callbacks.items():
        if not is_zero_cost(cb):
            continue
        try:
            cb.validate()
        except ValueError as err:
            raise ConfigError(f"callbacks.{key}: {err}") from err
        if train_size is not None and cb.batch_size > train_size:
            raise ConfigError(
                f"callbacks.{key}: the zero-cost probe batch_size={cb.batch_size} is larger than "
                f"the training set ({train_size} samples); lower callbacks.{key}.batch_size"
            )


def build_loggers(cfg: DictConfig, output_dir: Path, run_name: str) -> list[Any]:
    """The ``logger/`` group instantiated: ``save_dir`` defaults to the job folder, a W&B run's name to
    ``run_name``."""
    loggers = []
    for key, node in (cfg.get("logger") or {}).items():
        if node is None:
            continue
        if "_target_" not in node:
            raise ConfigError(f"logger.{key} has no _target_")
        overrides: dict[str, Any] = {}
        if "save_dir" in node and node.get("save_dir") is None:
            overrides["save_dir"] = str(output_dir)
        if str(node.get("_target_")).endswith("WandbLogger") and node.get("name") is None:
            overrides["name"] = run_name
        loggers.append(instantiate(node, f"logger.{key}", **overrides))
    return loggers


def build_trainer(cfg: DictConfig, callbacks: list[Any], loggers: list[Any], output_dir: Path) -> Any:
    """The ``trainer/`` config instantiated with the job's callbacks and loggers (checkpointing on when a
    ``ModelCheckpoint`` is among them)."""
    from lightning.pytorch.callbacks import ModelCheckpoint

    trainer_overrides: dict[str, Any] = {
        "callbacks": callbacks,
        "logger": loggers or False,
        "default_root_dir": str(output_dir),
    }
    if any(isinstance(cb, ModelCheckpoint) for cb in callbacks):
        trainer_overrides["enable_checkpointing"] = True
    return instantiate(cfg.trainer, "trainer", **trainer_overrides)


def env_rank_zero() -> bool:
    """Whether this process is global rank 0, from the launcher's environment (before the trainer exists)."""
    for key in ("RANK", "SLURM_PROCID", "LOCAL_RANK", "NODE_RANK"):
        if int(os.environ.get(key, 0) or 0) != 0:
            return False
    return True


def one_console_handler() -> None:
    """The ``lightning`` package always adds its own console handler; under Hydra, whose root handlers already
    print (and write ``<job>.log``), drop it so each Lightning message appears once."""
    root = logging.getLogger()
    if not root.handlers:
        return
    lightning_logger = logging.getLogger("lightning")
    for handler in list(lightning_logger.handlers):
        if type(handler) is logging.StreamHandler:
            lightning_logger.removeHandler(handler)
