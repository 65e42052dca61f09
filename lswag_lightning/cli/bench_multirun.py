"""``lswag-bench``'s shards as one Hydra multirun: each job of the multirun runs ``lswag-bench ... --shard I/N``,
then ``merge=true`` runs the merge (``--report-only``). The shards are lswag-bench's own (one mechanism); Hydra's
launchers only start them (joblib on one machine, submitit on a SLURM cluster), from the configs
``conf/bench_multirun.yaml`` / ``conf/bench_multirun_slurm.yaml`` shipped in the package::

    python -m lswag_lightning.cli.bench_multirun -m shards=4 sample=1000          # 4 shard jobs at once (joblib)
    python -m lswag_lightning.cli.bench_multirun shards=4 sample=1000 merge=true  # merge + report, names missing ones
    python -m lswag_lightning.cli.bench_multirun -m --config-name bench_multirun_slurm shards=16 \
        hydra.launcher.partition=gpu                                               # one SLURM array task per shard

A shard job that fails raises, so Hydra reports it after the others finished; its table stays and the same command
resumes it. The merge exits with 1 (and writes no table) while shards are missing, unless ``allow_partial=true``.
"""

from __future__ import annotations

import logging
import os
import sys
from typing import Any

import hydra
from omegaconf import DictConfig

log = logging.getLogger("lswag_lightning.cli.bench_multirun")


def bench_argv(cfg: Any) -> list[str]:
    """The ``lswag-bench`` arguments of this job: the shard's run, or the merge (``--report-only``)."""
    argv = [str(cfg.benchmark), "--out", str(cfg.out), "--no-progress"]
    if cfg.sample is not None:
        argv += ["--sample", str(cfg.sample), "--seed", str(cfg.seed)]
    if cfg.data_dir is not None:
        argv += ["--data-dir", str(cfg.data_dir)]
    argv += [str(a) for a in cfg.args]
    if cfg.merge:
        return [*argv, "--report-only", *(["--allow-partial"] if cfg.allow_partial else [])]
    if not 0 <= int(cfg.shard) < int(cfg.shards):
        raise ValueError(f"shard={cfg.shard} is not one of 0..{int(cfg.shards) - 1} (shards={cfg.shards})")
    argv += ["--shard", f"{int(cfg.shard)}/{int(cfg.shards)}", "--threads", str(cfg.threads)]
    if cfg.device is not None:
        argv += ["--device", str(cfg.device)]
    return argv


def job_gpu(cfg: Any) -> str | None:
    """The ``CUDA_VISIBLE_DEVICES`` of this shard's job when ``gpus`` lists local GPUs (round robin), else None."""
    if not cfg.gpus or cfg.merge:
        return None
    return str(list(cfg.gpus)[int(cfg.shard) % len(cfg.gpus)])


@hydra.main(version_base="1.3", config_path="pkg://lswag_lightning.conf", config_name="bench_multirun")
def main(cfg: DictConfig) -> None:
    from lswag_lightning.cli import bench

    gpu = job_gpu(cfg)
    if gpu is not None:  # before torch touches CUDA in this process
        os.environ["CUDA_VISIBLE_DEVICES"] = gpu
    argv = bench_argv(cfg)
    log.info("lswag-bench %s%s", " ".join(argv), f" (CUDA_VISIBLE_DEVICES={gpu})" if gpu else "")
    code = bench.main(argv)
    if code != 0 and cfg.merge:
        sys.exit(code)  # 1: shards missing (named on stderr), 2: bad arguments
    if code != 0:
        raise RuntimeError(
            f"shard {cfg.shard}/{cfg.shards} stopped with exit code {code}; rerun the multirun (or "
            "this shard alone) to resume it"
        )


if __name__ == "__main__":
    main()
