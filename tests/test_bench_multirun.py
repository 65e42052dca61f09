"""lswag_lightning.cli.bench_multirun (conf/bench_multirun*.yaml): lswag-bench's shards as one Hydra multirun, then
the merge.

Fast tests compose the configs and check the command each job runs; the slow test runs the multirun end to end with
the submitit_local launcher (2 shard jobs in their own processes, then the merge) on 6 tiny NB201 cells and compares
the merged table with one unsharded run.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from lswag_lightning.bench import read_table
from lswag_lightning.cli import bench_multirun

ROOT = Path(__file__).resolve().parents[1]
CONF_DIR = ROOT / "lswag_lightning" / "conf"
TINY_ARGS = 'args=[--proxies,params,naswot,swap,--build-option,"C=8",--build-option,"N=1",--n-boot,"20"]'


def _compose(name: str, *overrides: str):
    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        return compose(name, overrides=list(overrides), return_hydra_config=True)


def test_local_config_sweeps_one_job_per_shard_and_builds_each_jobs_command():
    cfg = _compose("bench_multirun", "shards=3", "shard=2", "sample=40", "gpus=[0,1]", "args=[--proxies,lswag,params]")
    assert cfg.hydra.launcher._target_.endswith("JoblibLauncher")
    assert OmegaConf.to_container(cfg.hydra.sweeper.params, resolve=True) == {"shard": "range(0,3)"}
    assert cfg.out == "runs/bench/nb201_40_seed0_sharded" and cfg.hydra.sweep.dir == f"{cfg.out}/hydra"
    assert bench_multirun.bench_argv(cfg) == [
        "nb201",
        "--out",
        cfg.out,
        "--no-progress",
        "--sample",
        "40",
        "--seed",
        "0",
        "--proxies",
        "lswag",
        "params",
        "--shard",
        "2/3",
        "--threads",
        "1",
    ]
    assert bench_multirun.job_gpu(cfg) == "0"  # shard 2 of 3 on GPUs [0, 1]: round robin
    merge = _compose("bench_multirun", "shards=3", "sample=40", "merge=true", "allow_partial=true")
    assert (
        bench_multirun.bench_argv(merge)[-2:] == ["--report-only", "--allow-partial"]
        and bench_multirun.job_gpu(merge) is None
    )
    with pytest.raises(ValueError, match="shard=3 is not one of 0..2"):
        bench_multirun.bench_argv(_compose("bench_multirun", "shards=3", "shard=3"))


def test_slurm_config_shows_partition_gpus_time_and_requeues_timeouts():
    cfg = _compose("bench_multirun_slurm", "shards=16", "hydra.launcher.partition=gpu")
    launcher = OmegaConf.to_container(cfg.hydra.launcher, resolve=True)
    assert launcher["_target_"].endswith("SlurmLauncher") and launcher["partition"] == "gpu"
    assert launcher["gpus_per_task"] == 1 and launcher["timeout_min"] == 240 and launcher["max_num_timeout"] == 3
    assert launcher["array_parallelism"] == 16 and cfg.device == "cuda" and cfg.gpus is None
    assert "--device" in bench_multirun.bench_argv(cfg) and "0/16" in bench_multirun.bench_argv(cfg)


@pytest.mark.slow
def test_submitit_local_runs_the_sharded_multirun_end_to_end(tmp_path, shared_data_dir, capsys):
    out = tmp_path / "sharded"
    env = {
        **os.environ,
        "HYDRA_FULL_ERROR": "1",
        "OMP_NUM_THREADS": "1",
        "PYTHONPATH": os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p),
    }
    common = ["shards=2", "sample=6", f"out={out}", f"data_dir={shared_data_dir}", TINY_ARGS]
    jobs = subprocess.run(
        [
            sys.executable,
            "-m",
            "lswag_lightning.cli.bench_multirun",
            "-m",
            "hydra/launcher=submitit_local",
            "hydra.launcher.timeout_min=10",
            *common,
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert jobs.returncode == 0, (jobs.stdout + jobs.stderr)[-3000:]
    assert (out / "hydra" / ".submitit").is_dir()  # real submitit jobs, one per shard
    assert sorted(p.name for p in (out / "shards").glob("table.*.csv")) == ["table.0-of-2.csv", "table.1-of-2.csv"]
    from lswag_lightning.cli.bench import main

    # the merge step (merge=true), in this process to spare a second Hydra start-up
    assert main(bench_multirun.bench_argv(_compose("bench_multirun", *common, "merge=true"))) == 0
    assert "merged 2 of 2 shards complete: 6 of 6 rows" in capsys.readouterr().out and (out / "report.md").is_file()
    single = tmp_path / "single"
    assert (
        main(
            [
                "nb201",
                "--sample",
                "6",
                "--seed",
                "0",
                "--proxies",
                "params",
                "naswot",
                "swap",
                "--build-option",
                "C=8",
                "--build-option",
                "N=1",
                "--threads",
                "1",
                "--no-progress",
                "--no-report",
                "--data-dir",
                str(shared_data_dir),
                "--out",
                str(single),
            ]
        )
        == 0
    )

    def values(table: pd.DataFrame) -> pd.DataFrame:
        return table.drop(columns=[c for c in table.columns if c.startswith("seconds.") or c.endswith("_seconds")])

    pd.testing.assert_frame_equal(values(read_table(out / "table.csv")), values(read_table(single / "table.csv")))
