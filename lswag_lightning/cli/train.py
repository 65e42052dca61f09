"""``lswag-train``: one Hydra job = one candidate of a search space, scored at init, trained, tested, recorded.

    lswag-train space=autoformer_mini data=digits trainer.max_epochs=1
    lswag-train -m experiment=digits_vit candidate.index='range(0,24)' hydra/launcher=joblib num_threads=1

The job seeds everything (``seed``), builds the data module (``data/``), picks the candidate deterministically
(``candidate.arch``, or ``candidate.index`` with ``candidate.seed``), builds it with the space's options
(``space/``), attaches the callbacks (``callbacks/``: the zero-cost proxies by default) and loggers (``logger/``),
fits, tests, and writes ``result.json`` in the job's output folder (see :func:`train` for its fields). Bad
configurations (unknown space, malformed arch, batch larger than the training set, missing data folder) stop the
job before any training with a :class:`ConfigError` naming the key to fix. W&B runs are finished at job end, also
on failure, so the jobs of a multirun never share a run.
"""
from __future__ import annotations

import datetime as _dt
import json
import logging
import math
import os
import platform
import sys
import time
import traceback
from importlib import metadata
from pathlib import Path
from typing import Any, Optional

import hydra
from omegaconf import DictConfig, OmegaConf

from lswag_lightning.paths import default_data_dir

log = logging.getLogger(__name__)

RESULT_SCHEMA_VERSION = 1


class ConfigError(ValueError):
    """A configuration that cannot run; the message names the config key to change."""


def register_resolvers() -> None:
    """``${lswag_data_dir:}``: ``$LSWAG_DATA_DIR`` or ``<checkout>/../shared/data`` (see :mod:`lswag_lightning.paths`)."""
    if not OmegaConf.has_resolver("lswag_data_dir"):
        OmegaConf.register_new_resolver("lswag_data_dir", lambda: str(default_data_dir()))


register_resolvers()


# ---------------------------------------------------------------------------------------------------- helpers
def _instantiate(node: Any, what: str, **kwargs: Any) -> Any:
    """``hydra.utils.instantiate`` with the error reduced to its cause, prefixed by the config group."""
    from hydra.errors import InstantiationException

    try:
        return hydra.utils.instantiate(node, _convert_="all", **kwargs)
    except InstantiationException as err:
        cause = err.__cause__ or err
        raise ConfigError(f"{what}: {type(cause).__name__}: {cause}") from cause


def _plain(node: Any) -> Any:
    return OmegaConf.to_container(node, resolve=True) if OmegaConf.is_config(node) else node


def _json_safe(value: Any) -> Any:
    """Plain JSON: non-finite floats become None, tuples lists, unknown objects their repr."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, (str, int, bool)) or value is None:
        return value
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if hasattr(value, "item") and callable(value.item):  # numpy / torch scalars
        try:
            return _json_safe(value.item())
        except (TypeError, ValueError):
            pass
    return repr(value)


def versions() -> dict[str, Optional[str]]:
    """Versions of python and of the packages that decide the numbers."""
    out: dict[str, Optional[str]] = {"python": platform.python_version()}
    for package in ("lswag-lightning", "torch", "lightning", "torchmetrics", "timm", "numpy", "hydra-core",
                    "omegaconf", "wandb", "scikit-learn", "torchvision"):
        try:
            out[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            out[package] = None
    return out


DATA_DECIDED = ("num_classes", "in_chans", "img_size")


def space_build_options(space_cfg: Any) -> dict[str, Any]:
    """The build options of a ``space/`` config (``space.build_options``) without ``num_classes``, ``in_chans``
    and ``img_size``: those always come from the data module, so the network matches the data."""
    options = _plain(space_cfg.get("build_options")) or {}
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
            spec = space.decode(_plain(arch))
        except ValueError as err:
            raise ConfigError(f"candidate.arch={arch!r} is not a valid {space_name} architecture: {err}") from err
        return spec, space.encode(spec), {"by": "arch", "arch": str(arch), "index": None, "seed": None}
    if isinstance(index, bool) or not isinstance(index, int) or index < 0:
        raise ConfigError(f"candidate.index must be an int >= 0 (or set candidate.arch), got {index!r}")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ConfigError(f"candidate.seed must be an int >= 0, got {seed!r}")
    spec = space.sample(np.random.default_rng([seed, index]))
    return spec, space.encode(spec), {"by": "index", "arch": None, "index": index, "seed": seed}


def _is_zero_cost(callback: Any) -> bool:
    from lswag_lightning.callback import ZeroCostProxyCallback

    return isinstance(callback, ZeroCostProxyCallback)


def _build_callbacks(cfg: DictConfig, space: Any, output_dir: Path) -> dict[str, Any]:
    """The ``callbacks/`` group instantiated, by config key; zero-cost callbacks get the space's proxy defaults
    where the config leaves them open, checkpoints default to ``<job folder>/checkpoints``."""
    from lightning.pytorch.callbacks import ModelCheckpoint

    defaults = dict(getattr(space, "proxy_defaults", None) or {})
    callbacks: dict[str, Any] = {}
    for key, node in (cfg.get("callbacks") or {}).items():
        if node is None:
            continue
        if "_target_" not in node:
            raise ConfigError(f"callbacks.{key} has no _target_")
        callback = _instantiate(node, f"callbacks.{key}")
        if _is_zero_cost(callback):
            # The space's proxy defaults fill what the config leaves open (e.g. its layer interval).
            if callback.layer_interval is None and defaults.get("layer_interval") is not None:
                callback.layer_interval = defaults["layer_interval"]
            for option, value in defaults.items():
                if option != "layer_interval":
                    callback.score_options.setdefault(option, value)
        if isinstance(callback, ModelCheckpoint) and callback.dirpath is None:
            callback.dirpath = str(output_dir / "checkpoints")
        callbacks[str(key)] = callback
    return callbacks


def _build_loggers(cfg: DictConfig, output_dir: Path, run_name: str) -> list[Any]:
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
        loggers.append(_instantiate(node, f"logger.{key}", **overrides))
    return loggers


def _env_rank_zero() -> bool:
    """Whether this process is global rank 0, from the launcher's environment (before the trainer exists)."""
    for key in ("RANK", "SLURM_PROCID", "LOCAL_RANK", "NODE_RANK"):
        if int(os.environ.get(key, 0) or 0) != 0:
            return False
    return True


def _one_console_handler() -> None:
    """The ``lightning`` package always adds its own console handler; under Hydra, whose root handlers already
    print (and write ``<job>.log``), drop it so each Lightning message appears once."""
    root = logging.getLogger()
    if not root.handlers:
        return
    lightning_logger = logging.getLogger("lightning")
    for handler in list(lightning_logger.handlers):
        if type(handler) is logging.StreamHandler:
            lightning_logger.removeHandler(handler)


def _finish_wandb(failed: bool) -> None:
    """Close the W&B run of this job (if any), so the next job of a multirun process starts its own."""
    wandb = sys.modules.get("wandb")
    if wandb is not None and getattr(wandb, "run", None) is not None:
        wandb.finish(exit_code=1 if failed else 0)


def _proxy_fields(zero_cost: list[Any]) -> tuple[dict[str, Any], float]:
    """The record's proxy fields from the zero-cost callbacks, and the seconds this job spent scoring.

    ``proxies`` (name -> value, None when not finite), ``proxy_status``, ``proxy_seconds``, ``proxy_settings``,
    ``proxies_restored``; ``report`` (the full report, for ``proxy_report.json``) when a callback has one."""
    fields: dict[str, Any] = {"proxies": {}, "proxy_status": {}, "proxy_seconds": {}, "proxy_settings": {},
                              "proxies_restored": any(cb.restored for cb in zero_cost)}
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


def _write_json(path: Path, record: dict[str, Any]) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(_json_safe(record), indent=2, allow_nan=False) + "\n")
    tmp.replace(path)


# ---------------------------------------------------------------------------------------------------- the job
def train(cfg: DictConfig, output_dir: str | os.PathLike | None = None) -> dict[str, Any]:
    """Run one job and return its record (also written to ``<output_dir>/<result_file>`` on global rank 0).

    Record fields: ``status`` ("ok" | "failed" + ``error``), ``space``, ``space_options``, ``arch`` (encoded),
    ``candidate`` (how it was chosen), ``params`` (trainable parameters of the built network), ``params_space``
    (``space.param_count``), ``dataset`` (name, classes, channels, size, split sizes), ``proxies`` (name -> value,
    None when not finite), ``proxy_status``, ``proxy_seconds``, ``proxy_settings`` (callback + engine settings),
    ``proxies_restored`` (True when the scores came from ``ckpt_path``'s checkpoint, scored at that run's start),
    ``metrics`` (final ``train/*``, ``val/*``, ``test/*``), ``val_acc``, ``val_acc_best``, ``test_acc``,
    ``seconds`` (``scoring``, ``training`` = fit minus scoring, ``test``, ``total``), ``steps``, ``epochs``,
    ``seed``, ``versions``, ``started``/``finished`` (UTC ISO), ``output_dir``, ``config`` (resolved, no hydra).
    The full proxy report (per-layer details) goes to ``proxy_report.json`` beside it.
    """
    import torch

    from lswag_lightning.spaces import get_space

    t_start = time.perf_counter()
    started = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    if output_dir is None:
        from hydra.core.hydra_config import HydraConfig

        output_dir = HydraConfig.get().runtime.output_dir
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    result_path = output_dir / cfg.get("result_file", "result.json")
    record: dict[str, Any] = {"schema": RESULT_SCHEMA_VERSION, "status": "running", "started": started,
                              "output_dir": str(output_dir), "seed": cfg.get("seed"), "versions": versions()}
    is_writer = _env_rank_zero()
    failed = False
    zero_cost: list[Any] = []
    try:
        # ---- everything that can be wrong with the config is checked here, before any training
        if cfg.get("space") is None or cfg.space.get("name") is None:
            raise ConfigError("space.name is missing; choose a space with space=<name> (conf/space/)")
        space_name = str(cfg.space.name)
        try:
            space = get_space(space_name)
        except (ValueError, KeyError) as err:
            raise ConfigError(f"space.name={space_name!r}: {err}") from err
        strategy = str((cfg.get("trainer") or {}).get("strategy", "auto"))
        if "spawn" in strategy:
            # ddp_spawn runs fit and test in child processes and sends back only callback_metrics: the job's
            # callbacks, module metrics and loggers in this process would not see the run.
            raise ConfigError(f"trainer.strategy={strategy!r} is not supported by lswag-train; use trainer=ddp_cpu "
                              "(strategy=ddp, which relaunches the job per process) or trainer.strategy=ddp")
        space_options = space_build_options(cfg.space)
        spec, arch, how = select_candidate(space, cfg.candidate, space_name)
        record.update(space=space_name, space_options=space_options, arch=arch, candidate=how)
        # (Lightning is imported only once the space and the candidate are known to be valid.)
        import lightning.pytorch as pl

        _one_console_handler()
        if cfg.get("num_threads"):
            torch.set_num_threads(int(cfg.num_threads))
        pl.seed_everything(int(cfg.get("seed", 0)), workers=True, verbose=False)

        datamodule = _instantiate(cfg.data, "data")
        try:
            datamodule.prepare_data()
            datamodule.setup("fit")
        except (ValueError, FileNotFoundError, RuntimeError) as err:
            raise ConfigError(f"data: {err}") from err
        train_size = len(datamodule.train_set) if getattr(datamodule, "train_set", None) is not None else None

        log.info("candidate %s of %s: %s", how["index"] if how["by"] == "index" else "(arch)", space_name, arch)

        named_callbacks = _build_callbacks(cfg, space, output_dir)
        callbacks = list(named_callbacks.values())
        zero_cost = [cb for cb in callbacks if _is_zero_cost(cb)]
        for key, cb in named_callbacks.items():
            if not _is_zero_cost(cb):
                continue
            try:
                cb.validate()
            except ValueError as err:
                raise ConfigError(f"callbacks.{key}: {err}") from err
            if train_size is not None and cb.batch_size > train_size:
                raise ConfigError(f"callbacks.{key}: the zero-cost probe batch_size={cb.batch_size} is larger than "
                                  f"the training set ({train_size} samples); lower callbacks.{key}.batch_size")

        module = _instantiate(cfg.model, "model", space=space_name, arch=arch, num_classes=datamodule.num_classes,
                              in_chans=datamodule.in_chans, img_size=datamodule.img_size,
                              space_options=space_options)
        params = int(module.num_parameters)
        try:
            params_space = int(space.param_count(spec, num_classes=datamodule.num_classes,
                                                 in_chans=datamodule.in_chans, img_size=datamodule.img_size,
                                                 **space_options))
        except Exception as err:  # informative only
            log.warning("space.param_count failed: %s", err)
            params_space = None
        record.update(params=params, params_space=params_space, dataset={
            "name": getattr(datamodule, "name", type(datamodule).__name__), "num_classes": datamodule.num_classes,
            "in_chans": datamodule.in_chans, "img_size": datamodule.img_size,
            "sizes": getattr(datamodule, "sizes", None)})

        run_name = f"{space_name}-{how['index'] if how['by'] == 'index' else arch}"
        loggers = _build_loggers(cfg, output_dir, run_name)
        from lightning.pytorch.callbacks import ModelCheckpoint

        trainer_overrides: dict[str, Any] = {"callbacks": callbacks, "logger": loggers or False,
                                             "default_root_dir": str(output_dir)}
        if any(isinstance(cb, ModelCheckpoint) for cb in callbacks):
            trainer_overrides["enable_checkpointing"] = True
        trainer = _instantiate(cfg.trainer, "trainer", **trainer_overrides)
        is_writer = trainer.is_global_zero
        config = _plain(cfg)
        for logger in trainer.loggers:
            logger.log_hyperparams({"candidate": {**how, "space": space_name, "arch": arch, "params": params},
                                    "config": config})

        # ---- fit (+ test)
        t_fit = time.perf_counter()
        trainer.fit(module, datamodule=datamodule, ckpt_path=cfg.get("ckpt_path"))
        fit_seconds = time.perf_counter() - t_fit
        test_seconds = 0.0
        if cfg.get("test", True):
            t_test = time.perf_counter()
            trainer.test(module, datamodule=datamodule, verbose=False)
            test_seconds = time.perf_counter() - t_test

        # ---- the record
        proxy_fields, scoring_seconds = _proxy_fields(zero_cost)
        if is_writer and "report" in proxy_fields:
            _write_json(output_dir / "proxy_report.json", proxy_fields["report"])
        metrics = dict(module.final_metrics)
        record.update(
            status="ok", **{k: v for k, v in proxy_fields.items() if k != "report"}, metrics=metrics,
            val_acc=metrics.get("val/acc"),
            val_acc_best=metrics.get("val/acc_best"), test_acc=metrics.get("test/acc"),
            steps=int(trainer.global_step), epochs=int(trainer.current_epoch),
            seconds={"scoring": scoring_seconds, "training": max(0.0, fit_seconds - scoring_seconds),
                     "fit": fit_seconds, "test": test_seconds, "total": time.perf_counter() - t_start},
            config=config)
        return record
    except BaseException as err:
        failed = True
        record.update(status="failed", error=f"{type(err).__name__}: {err}",
                      traceback=traceback.format_exc(limit=20))
        if zero_cost and "proxies" not in record:  # scores computed before the failure are kept
            fields, _ = _proxy_fields(zero_cost)
            record.update({k: v for k, v in fields.items() if k != "report"})
        raise
    finally:
        record["finished"] = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
        record.setdefault("seconds", {"total": time.perf_counter() - t_start})
        try:
            if is_writer:
                _write_json(result_path, record)
        finally:
            _finish_wandb(failed)


# The configs are found through the package (pkg://), never through the working directory, so an installed
# (non-editable) package and a source checkout behave the same from any folder.
CONFIG_PATH = "pkg://lswag_lightning.conf"


@hydra.main(config_path=CONFIG_PATH, config_name="train", version_base="1.3")
def _hydra_main(cfg: DictConfig) -> Optional[float]:
    record = train(cfg)
    log.info("result: %s", {k: record.get(k) for k in ("space", "arch", "params", "val_acc", "test_acc")})
    value = record.get("val_acc")  # the objective for Hydra sweepers (e.g. Optuna)
    return float(value) if value is not None else None


def main() -> None:
    """Console entry point ``lswag-train``."""
    _hydra_main()


if __name__ == "__main__":
    main()
