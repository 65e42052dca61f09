"""``lswag-train``: the Hydra entry point, its configs and its result.json.

Fast: the ViT (autoformer_mini) and NB201 jobs run as real console-script subprocesses from an empty temporary
working directory and write a complete result.json; bad configurations fail before training with a message naming
the key (in process, composing the shipped config; and once through the CLI); ``--help`` lists the groups; the
config search path is the package (``pkg://``), not the working directory; a W&B job that fails is still finished,
and the next job in the same process gets its own run; a job resumed with ``ckpt_path`` reports the checkpoint's
scores without re-scoring.
Slow: a 2-job joblib multirun; DDP on 2 CPU processes through ``trainer=ddp_cpu``; a built wheel (non-editable
layout) running from another folder.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_module

from lswag_lightning.cli import train as train_cli
from lswag_lightning.cli.train import ConfigError, train

torch.set_num_threads(1)

BIN = Path(sys.executable).parent
LSWAG_TRAIN = str(BIN / "lswag-train")
WANDB_CLI = str(BIN / "wandb")
REPO = Path(__file__).resolve().parents[1]
CONF = REPO / "lswag_lightning" / "conf"

# keep CPU jobs short: a few batches, small probe
QUICK = [
    "trainer.max_epochs=1",
    "trainer.limit_train_batches=2",
    "trainer.limit_val_batches=1",
    "trainer.limit_test_batches=1",
    "callbacks.zero_cost.batch_size=32",
]
DEFAULT_PROXIES = ["lswag", "zico", "swap", "naswot", "synflow", "snip", "grad_norm", "jacov", "params", "flops"]


def _env(tmp_path: Path) -> dict:
    env = dict(os.environ, WANDB_MODE="offline", WANDB_SILENT="true", WANDB_DIR=str(tmp_path), HYDRA_FULL_ERROR="0")
    env.pop("PYTHONPATH", None)
    return env


def _run_cli(args, cwd: Path, timeout=300):
    return subprocess.run([LSWAG_TRAIN, *args], cwd=cwd, env=_env(cwd), capture_output=True, text=True, timeout=timeout)


def _compose(overrides):
    with initialize_config_module("lswag_lightning.conf", version_base="1.3"):
        return compose("train", overrides=list(overrides))


def _check_complete(record: dict, space: str) -> None:
    assert record["status"] == "ok", record.get("error")
    assert record["space"] == space and isinstance(record["arch"], str) and record["arch"]
    assert record["params"] > 0 and record["params"] == record["params_space"]
    assert set(DEFAULT_PROXIES) <= set(record["proxies"]) and set(record["proxies"]) == set(record["proxy_status"])
    assert all(record["proxy_status"][p] == "ok" for p in DEFAULT_PROXIES), record["proxy_status"]
    assert record["proxies"]["params"] == record["params"]
    settings = record["proxy_settings"]["zc"]
    assert settings["proxies"] == DEFAULT_PROXIES and settings["batch_size"] == 32
    assert settings["engine"]["batch_size"] == 32 and "lambda_k" in settings["engine"]
    for key in ("val_acc", "test_acc"):
        assert 0.0 <= record[key] <= 1.0
    assert record["seconds"]["scoring"] > 0 and record["seconds"]["training"] > 0
    assert record["seconds"]["total"] >= record["seconds"]["fit"] >= record["seconds"]["scoring"]
    assert record["steps"] == 2 and record["dataset"]["sizes"] == {"train": 1257, "val": 270, "test": 270}
    for package in ("python", "torch", "lightning", "lswag-lightning", "hydra-core"):
        assert record["versions"][package], package
    assert record["candidate"] == {"by": "index", "arch": None, "index": 0, "seed": 0}
    assert record["proxies_restored"] is False


# ------------------------------------------------------------------------------------------ real CLI jobs
@pytest.mark.parametrize(
    "space,extra",
    [
        ("autoformer_mini", []),
        ("nb201", ["model=sgd"]),
    ],
    ids=["vit", "nb201"],
)
def test_cli_job_from_an_empty_folder_writes_a_complete_result(tmp_path, space, extra):
    out = tmp_path / "job"
    proc = _run_cli([f"space={space}", "data=digits", *extra, *QUICK, f"hydra.run.dir={out}"], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    record = json.loads((out / "result.json").read_text())
    _check_complete(record, space)
    report = json.loads((out / "proxy_report.json").read_text())
    assert report["values"]["lswag"] == record["proxies"]["lswag"]
    assert (out / "csv" / "metrics.csv").exists()  # logger=csv is the default
    header = (out / "csv" / "metrics.csv").read_text().splitlines()[0].split(",")
    assert "zc/lswag" in header and "val/acc" in header
    assert sorted(p.name for p in tmp_path.iterdir()) == ["job"]  # nothing written outside the job folder


def test_cli_bad_config_fails_at_start_naming_the_key(tmp_path):
    out = tmp_path / "job"
    proc = _run_cli(["space=nb201", "candidate.arch=not_an_arch", f"hydra.run.dir={out}"], cwd=tmp_path)
    assert proc.returncode != 0
    assert "candidate.arch='not_an_arch' is not a valid nb201 architecture" in proc.stderr
    record = json.loads((out / "result.json").read_text())
    assert record["status"] == "failed" and "candidate.arch" in record["error"] and "steps" not in record


def test_cli_help_lists_usage_and_groups(tmp_path):
    proc = _run_cli(["--help"], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    text = proc.stdout
    assert text.startswith("lswag-train: build one candidate")
    for line in (
        "space: autoformer_mini, autoformer_s, autoformer_ti, darts, nb101, nb201, tnb101_macro, tnb101_micro",
        "logger: csv, csv_wandb, none, wandb",
        "trainer: cpu, ddp_cpu, default",
        "data: cifar10, cifar100, cifar10_npz, digits",
    ):
        assert line in text
    assert not any(tmp_path.iterdir())  # --help writes nothing


# ---------------------------------------------------------------------------------- config location
def test_configs_are_found_through_the_package_not_the_working_directory(tmp_path, monkeypatch):
    assert train_cli.CONFIG_PATH == "pkg://lswag_lightning.conf"
    monkeypatch.chdir(tmp_path)  # an unrelated folder
    cfg = _compose(["space=nb201", "data=cifar10_npz"])
    assert cfg.space.name == "nb201" and cfg.data.name == "cifar10"
    # every config file is package data (pyproject: lswag_lightning = ["conf/**/*.yaml"]) of a real package
    import importlib.resources

    package_files = {str(p.relative_to(CONF)) for p in CONF.rglob("*.yaml")}
    assert {"train.yaml", "space/nb201.yaml", "data/digits.yaml", "logger/wandb.yaml"} <= package_files
    assert importlib.resources.files("lswag_lightning.conf").joinpath("train.yaml").is_file()


def test_composed_defaults_document_every_group():
    cfg = _compose([])
    assert cfg.space.name == "autoformer_mini" and cfg.data._target_.endswith("DigitsDataModule")
    assert cfg.trainer._target_ == "lightning.pytorch.Trainer" and cfg.trainer.accelerator == "cpu"
    assert list(cfg.logger) == ["csv"] and list(cfg.callbacks) == ["zero_cost"]
    assert cfg.callbacks.zero_cost.proxies == DEFAULT_PROXIES
    assert _compose(["logger=wandb"]).logger.wandb.offline is True  # W&B is offline unless configured
    assert _compose(["experiment=digits_nb201"]).space.name == "nb201"


# --------------------------------------------------------------------------------------- bad configs
@pytest.mark.parametrize(
    "overrides,message",
    [
        (["space.name=resnet"], r"space.name='resnet': unknown search space 'resnet'"),
        (["space=nb201", "candidate.arch='|bogus~0|+|none~0|none~1|+|none~0|none~1|none~2|'"], r"candidate.arch="),
        (["candidate.arch={depth:2,embed_dim:65,mlp_ratio:[2.0,2.0],num_heads:[2,2]}"], r"candidate.arch="),
        (["candidate.index=-1"], r"candidate.index must be an int >= 0"),
        (
            ["data.batch_size=5000"],
            r"batch_size=5000 is larger than the training set \(1257 samples\); lower "
            r"data.batch_size",
        ),
        (["data=cifar10_npz", "data.npz_dir=/nonexistent/images"], r"npz_dir='/nonexistent/images' does not exist"),
        (["callbacks.zero_cost.batch_size=5000"], r"lower callbacks.zero_cost.batch_size"),
        (["callbacks.zero_cost.proxies=[lswag,nope]"], r"callbacks.zero_cost: .*unknown proxies \['nope'\]"),
        (["trainer=ddp_cpu", "trainer.strategy=ddp_spawn"], r"trainer.strategy='ddp_spawn' is not supported"),
    ],
    ids=["space", "nb201-arch", "vit-arch", "index", "batch", "npz-dir", "probe-batch", "proxy", "spawn"],
)
def test_bad_configs_fail_before_training(tmp_path, overrides, message, monkeypatch):
    import lightning.pytorch as pl

    def no_fit(*args, **kwargs):
        raise AssertionError("training started")

    monkeypatch.setattr(pl.Trainer, "fit", no_fit)
    cfg = _compose([*overrides, "logger=none"])
    with pytest.raises(ConfigError, match=message):
        train(cfg, output_dir=tmp_path)
    record = json.loads((tmp_path / "result.json").read_text())
    assert record["status"] == "failed" and "ConfigError" in record["error"]


def test_valid_dict_arch_selects_that_candidate(tmp_path, monkeypatch):
    import lightning.pytorch as pl

    monkeypatch.setattr(pl.Trainer, "fit", lambda *a, **k: None)  # only the build is checked here
    cfg = _compose(
        ["candidate.arch={depth:2,embed_dim:64,mlp_ratio:[2.0,3.0],num_heads:[2,4]}", "logger=none", "test=false"]
    )
    record = train(cfg, output_dir=tmp_path)
    assert record["arch"] == '{"depth":2,"embed_dim":64,"mlp_ratio":[2.0,3.0],"num_heads":[2,4]}'
    assert record["candidate"]["by"] == "arch"


# ------------------------------------------------------------------------------------------------- W&B
def _inspect(run_dir: Path) -> dict:
    out = subprocess.run(
        [WANDB_CLI, "leet", "inspect", "--summary", "--json", str(run_dir)],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return json.loads(out.stdout)


def test_wandb_run_is_finished_on_failure_and_the_next_job_gets_its_own_run(tmp_path, monkeypatch):
    wandb = pytest.importorskip("wandb")
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    from lswag_lightning.lightning.module import CandidateClassifier

    overrides = ["space=nb201", "model=sgd", "space.build_options.N=1", "logger=wandb", *QUICK]
    original_step = CandidateClassifier.training_step

    def broken_step(self, batch, batch_idx):
        raise RuntimeError("deliberate failure in training_step")

    monkeypatch.setattr(CandidateClassifier, "training_step", broken_step)
    with pytest.raises(RuntimeError, match="deliberate failure"):
        train(_compose(overrides), output_dir=tmp_path / "job0")
    assert wandb.run is None  # finished by the job, not left open for the next one
    failed = json.loads((tmp_path / "job0" / "result.json").read_text())
    assert failed["status"] == "failed" and "deliberate failure" in failed["error"]
    assert failed["proxy_status"]["lswag"] == "ok"  # scored before the failure: kept in the record

    monkeypatch.setattr(CandidateClassifier, "training_step", original_step)
    record = train(_compose(overrides), output_dir=tmp_path / "job1")
    assert wandb.run is None
    runs = [sorted((tmp_path / f"job{i}" / "wandb").glob("offline-run-*")) for i in (0, 1)]
    assert [len(r) for r in runs] == [1, 1] and runs[0][0].name != runs[1][0].name

    first, second = _inspect(runs[0][0]), _inspect(runs[1][0])
    assert first["exit_code"] == 1 and second["exit_code"] == 0 and second["state"] == "finished"
    summary, config = second["summary"], second["config"]
    assert summary["zc/lswag"] == pytest.approx(record["proxies"]["lswag"], rel=1e-12)
    assert summary["zc_status/lswag"] == "ok"

    def value(dotted):
        node = config.get(dotted, None)
        if node is None:
            node = config
            for part in dotted.split("."):
                node = node[part]
        return node["value"] if isinstance(node, dict) and set(node) == {"value"} else node

    assert value("candidate.arch") == record["arch"] and value("arch") == record["arch"]
    assert value("zc.proxies") == DEFAULT_PROXIES and value("zc.batch_size") == 32


# ------------------------------------------------------------------------------------------------ slow
def test_resumed_job_reports_the_checkpoint_scores(tmp_path, monkeypatch):
    import lswag_lightning.lightning.callback as callback_module

    overrides = ["space=nb201", "model=sgd", "space.build_options.N=1", "callbacks=checkpoint", "logger=none", *QUICK]
    first = train(_compose(overrides), output_dir=tmp_path / "first")
    ckpt = tmp_path / "first" / "checkpoints" / "last.ckpt"
    assert ckpt.exists() and first["steps"] == 2 and not first["proxies_restored"]
    monkeypatch.setattr(callback_module, "score_network", lambda *a, **k: pytest.fail("re-scored on resume"))
    resumed = train(
        _compose([*overrides, "trainer.max_epochs=2", f"ckpt_path={ckpt}"]), output_dir=tmp_path / "resumed"
    )
    assert resumed["steps"] == 4 and resumed["proxies_restored"]
    assert resumed["proxies"] == first["proxies"] and resumed["proxy_status"] == first["proxy_status"]
    assert resumed["seconds"]["scoring"] == 0.0


@pytest.mark.slow
def test_joblib_multirun_two_jobs(tmp_path):
    sweep = tmp_path / "sweep"
    proc = _run_cli(
        [
            "-m",
            "candidate.index=0,1",
            "hydra/launcher=joblib",
            "hydra.launcher.n_jobs=2",
            f"hydra.sweep.dir={sweep}",
            "logger=csv_wandb",
            *QUICK,
        ],
        cwd=tmp_path,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    records = [json.loads((sweep / str(i) / "result.json").read_text()) for i in (0, 1)]
    for i, record in enumerate(records):
        _check_complete(
            {**record, "candidate": {"by": "index", "arch": None, "index": 0, "seed": 0}}, "autoformer_mini"
        )
        assert record["candidate"]["index"] == i
        assert len(list((sweep / str(i) / "wandb").glob("offline-run-*"))) == 1  # one W&B run per job
    assert records[0]["arch"] != records[1]["arch"]


@pytest.mark.slow
def test_ddp_two_cpu_processes_through_the_cli(tmp_path):
    out = tmp_path / "job"
    proc = _run_cli(
        ["trainer=ddp_cpu", "space=nb201", "model=sgd", "space.build_options.N=1", *QUICK, f"hydra.run.dir={out}"],
        cwd=tmp_path,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    record = json.loads((out / "result.json").read_text())
    assert record["status"] == "ok" and record["proxy_status"]["lswag"] == "ok"
    assert record["config"]["trainer"]["strategy"] == "ddp" and record["config"]["trainer"]["devices"] == 2
    assert math.isfinite(record["val_acc"]) and record["steps"] == 2
    assert (out / "train_ddp_process_1.log").exists()  # rank 1 ran, in the same job folder


@pytest.mark.slow
def test_built_wheel_runs_from_another_folder(tmp_path):
    """A non-editable layout: build the wheel (no install), unpack it, run the job with only the wheel's files."""
    src = tmp_path / "src"
    tracked = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    for rel in tracked:
        if (REPO / rel).is_file():
            (src / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / rel, src / rel)
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(tmp_path / "dist"),
            str(src),
        ],
        check=True,
        capture_output=True,
        timeout=600,
    )
    wheel = next((tmp_path / "dist").glob("lswag_lightning-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    expected = {f"lswag_lightning/conf/{p.relative_to(CONF)}" for p in CONF.rglob("*.yaml")}
    assert expected <= set(names)
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    work = tmp_path / "work"
    work.mkdir()
    env = dict(_env(work), PYTHONPATH=str(site))
    quick = ", ".join(repr(q) for q in QUICK)
    code = (
        f"import sys, lswag_lightning; assert lswag_lightning.__file__.startswith({str(site)!r}), "
        "lswag_lightning.__file__; "
        f"sys.argv = ['lswag-train', 'space=nb201', 'model=sgd', 'space.build_options.N=1', {quick}, "
        "'hydra.run.dir=job']; from lswag_lightning.cli.train import main; main()"
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=work, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert json.loads((work / "job" / "result.json").read_text())["status"] == "ok"
