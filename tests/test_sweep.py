"""Real sweeps of the proxy-vs-accuracy sweep config through Hydra's joblib and submitit_local launchers, then
collect.

Each test launches ``lswag-train -m --config-name proxy_vs_accuracy`` (a config shipped in the package) in a
subprocess (a tiny budget: 8 px digits, two training batches, one val/test batch) and checks that every job wrote its
result, that the jobs ran in separate processes (joblib workers, submitit jobs), and that ``lswag-collect`` turns the
sweep into a table.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from lswag_lightning.collect import collect

CONF_DIR = Path(__file__).resolve().parents[1] / "lswag_lightning" / "conf"

TINY = [
    "data.img_size=8",
    "trainer.max_epochs=1",
    "trainer.limit_train_batches=2",
    "trainer.limit_val_batches=1",
    "trainer.limit_test_batches=1",
    "callbacks.zero_cost.batch_size=32",
    "callbacks.zero_cost.proxies=[lswag,zico,naswot,synflow,params]",
]


def run_sweep(tmp_path: Path, *overrides: str, timeout: int = 540) -> subprocess.CompletedProcess:
    env = {**os.environ, "WANDB_MODE": "offline", "WANDB_SILENT": "true", "HYDRA_FULL_ERROR": "1"}
    command = [
        sys.executable,
        "-m",
        "lswag_lightning.cli.train",
        "-m",
        "--config-name",
        "proxy_vs_accuracy",
        *TINY,
        *overrides,
    ]
    return subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=timeout)


def results(sweep: Path) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted(sweep.glob("*/result.json"))]


def test_sweep_config_composes_both_arms():
    """The sweep's config: lswag-train's config + the sweep over the ViT and the CNN arm (no job is run)."""
    from hydra import compose, initialize_config_dir

    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        vit = compose("proxy_vs_accuracy", overrides=["experiment=pva_vit_digits"], return_hydra_config=True)
        cnn = compose(
            "proxy_vs_accuracy",
            overrides=["experiment=pva_nb201_digits", "logger=wandb_sweep", "sweep_id=abc"],
            return_hydra_config=True,
        )
    assert vit.space.name == "autoformer_mini" and vit.model.optimizer == "adamw" and vit.data.img_size == 16
    assert cnn.space.name == "nb201" and cnn.model.optimizer == "sgd" and cnn.space.build_options.N == 3
    assert vit.trainer.max_epochs > cnn.trainer.max_epochs >= 1
    params = vit.hydra.sweeper.params
    assert params["experiment"] == "pva_vit_digits,pva_nb201_digits" and params["candidate.index"].startswith("range")
    assert cnn.logger.wandb.group == "abc" and cnn.logger.wandb.offline is True  # one W&B group per sweep
    assert cnn.hydra.sweep.dir == "multirun/proxy_vs_accuracy/abc"


@pytest.mark.slow
def test_joblib_sweep_two_parallel_jobs_and_a_failed_one_then_collect(tmp_path):
    sweep = tmp_path / "sweep"
    done = run_sweep(
        tmp_path,
        "hydra/launcher=joblib",
        "hydra.launcher.n_jobs=2",
        f"hydra.sweep.dir={sweep}",
        "experiment=pva_vit_digits,pva_nb201_digits",
        "candidate.index=0,-1",
        "logger=csv",
    )
    # the job with candidate.index=-1 fails on purpose; Hydra reports it after the others finished
    assert done.returncode != 0, done.stdout[-2000:]
    records = results(sweep)
    ok = [r for r in records if r["status"] == "ok"]
    assert len(records) == 4 and len(ok) == 2, [r.get("error") for r in records]
    assert {r["space"] for r in ok} == {"autoformer_mini", "nb201"}
    assert all(r["candidate"]["index"] == 0 and r["val_acc"] is not None for r in ok)
    for r in ok:
        assert (Path(r["output_dir"]) / "csv" / "metrics.csv").is_file()
    assert "Joblib.Parallel(n_jobs=2" in done.stdout + done.stderr  # the joblib launcher ran them, 2 at a time

    result = collect([sweep], tmp_path / "collect")
    assert len(result.table) == 2 and set(result.table["space"]) == {"autoformer_mini", "nb201"}
    assert result.table[["lswag", "zico", "naswot", "synflow", "params", "val_acc"]].notna().all().all()
    failed = [i for i in result.collected.issues if i.kind == "failed"]
    assert len(failed) == 2 and all("candidate.index must be an int >= 0" in i.error for i in failed)
    assert result.analysis.correlations is None  # 2 rows: table only, said so
    assert pd.read_csv(result.paths["problems"])["kind"].tolist() == ["failed", "failed"]


@pytest.mark.slow
def test_submitit_local_sweep_two_jobs_shares_a_wandb_group_then_collect(tmp_path):
    sweep = tmp_path / "sweep"
    done = run_sweep(
        tmp_path,
        "hydra/launcher=submitit_local",
        "hydra.launcher.timeout_min=10",
        f"hydra.sweep.dir={sweep}",
        "experiment=pva_vit_digits,pva_nb201_digits",
        "candidate.index=1",
        "logger=wandb_sweep",
        "sweep_id=submitit_test",
    )
    assert done.returncode == 0, (done.stdout + done.stderr)[-3000:]
    assert (sweep / ".submitit").is_dir() and len(list((sweep / ".submitit").iterdir())) >= 1  # real submitit
    records = results(sweep)
    assert [r["status"] for r in records] == ["ok", "ok"]
    groups = {r["config"]["logger"]["wandb"]["group"] for r in records}
    assert groups == {"submitit_test"}
    for r in records:  # each job closed its own offline W&B run
        runs = list((Path(r["output_dir"]) / "wandb").glob("offline-run-*"))
        assert len(runs) == 1

    result = collect([sweep], tmp_path / "collect", wandb=True, wandb_mode="offline")
    assert len(result.table) == 2 and not result.collected.issues
    assert result.wandb["group"] == "submitit_test"
    assert Path(result.wandb["dir"]).is_dir()


def test_slurm_launcher_config_makes_a_valid_sbatch_script(tmp_path, monkeypatch):
    """hydra/launcher=submitit_slurm_cluster through the real plugin and submitit, stopped before ``sbatch``
    (no cluster here): every key maps onto an sbatch option and the sweep becomes one array of 2 tasks."""
    import submitit
    from hydra import compose, initialize_config_dir
    from hydra_plugins.hydra_submitit_launcher.submitit_launcher import SlurmLauncher
    from omegaconf import OmegaConf

    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        cfg = compose(
            "proxy_vs_accuracy_cifar10",
            return_hydra_config=True,
            overrides=[
                "hydra/launcher=submitit_slurm_cluster",
                "hydra.launcher.partition=gpu",
                "sweep_id=slurm_test",
                f"hydra.sweep.dir={tmp_path / 'sweep'}",
                "hydra.launcher.setup=[source .venv/bin/activate]",
            ],
        )
    assert cfg.hydra.sweeper.params.experiment == "vit_cifar10,nb201_cifar10"
    params = OmegaConf.to_container(cfg.hydra.launcher, resolve=True)
    assert params.pop("_target_").endswith("SlurmLauncher")
    monkeypatch.setattr(submitit.SlurmExecutor, "affinity", classmethod(lambda cls: 1))  # pretend srun exists
    captured = {}

    def no_submit(executor, fn, *job_args):
        captured["executor"], captured["n_jobs"] = executor, len(job_args[0])
        return []

    monkeypatch.setattr(submitit.AutoExecutor, "map_array", no_submit)
    launcher = SlurmLauncher(**params)
    launcher.config = cfg
    assert launcher.launch([["candidate.index=0"], ["candidate.index=1"]], initial_job_idx=0) == []
    assert captured["n_jobs"] == 2
    script = captured["executor"]._executor._make_submission_file_text("python -m lswag_lightning.cli.train", "u")
    for line in (
        "#SBATCH --partition=gpu",
        "#SBATCH --gpus-per-node=1",
        "#SBATCH --cpus-per-task=8",
        "#SBATCH --mem=32GB",
        "#SBATCH --time=120",
        f"{tmp_path / 'sweep'}/.submitit/%j",
        "source .venv/bin/activate",
    ):
        assert line in script, script


@pytest.mark.slow
def test_demo_runs_the_sweep_prints_one_line_per_job_and_writes_the_summary(tmp_path, capsys, monkeypatch):
    """``make demo`` at a tiny size: 3 candidates per space, both seeds, 24 published cells; summary.json schema."""
    from lswag_lightning.cli import demo

    monkeypatch.setenv("WANDB_MODE", "offline")
    assert (
        demo.main(
            [
                "--sample",
                "3",
                "--seed-check",
                "3",
                "--published",
                "24",
                "--jobs",
                "2",
                "--out",
                str(tmp_path),
                "--no-wandb",
                *TINY,
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    lines = [line for line in out.splitlines() if line.startswith("[")]
    assert len(lines) == 12 and lines[0].startswith("[  1/6 ") and lines[-1].startswith("[  6/6 ")
    assert "sweeps done" in out and "12 jobs wrote a result" in out and "total " in out
    assert out.index("autoformer_mini: 3 candidates") < out.index("Pooled view") < out.index("published truth")
    (run,) = tmp_path.iterdir()
    assert len(list((run / "sweep").glob("*/seed*/*/result.json"))) == 12
    summary = json.loads((run / "summary.json").read_text())
    assert set(summary) == {"spaces", "published", "seconds"} and summary["seconds"] > 0
    assert set(summary["spaces"]) == {"autoformer_mini", "nb201"}
    for space in summary["spaces"].values():
        assert space["n"] == 3 and set(space) == {"n", "seed_agreement_rho", "spearman"}
        assert space["seed_agreement_rho"] is None or -1 <= space["seed_agreement_rho"] <= 1
        assert {"lswag", "params"} <= set(space["spearman"])
    published = summary["published"]
    assert published["n"] == 24 and set(published["spearman"]) == set(published["libra_heldout"]) == {
        "cifar10_test_acc",
        "cifar100_test_acc",
        "imagenet16_120_test_acc",
    }
    assert "lswag" in published["spearman"]["cifar10_test_acc"]
    # the label-budget lines: the shipped k = 0 default and a short curve on the 24 cells (k = 10, 20)
    budget = published["label_budget"]
    assert set(budget["default"]["rho"]) == set(published["spearman"]) and budget["curve"]["budgets"] == [10, 20]
    assert "k = 0 (nothing trained)" in out and "k trained cells" in out
