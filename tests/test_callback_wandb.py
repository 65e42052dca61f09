"""ZeroCostProxyCallback with an offline WandbLogger (and a CSV logger beside it).

The offline run is read back with ``wandb leet inspect --summary --json <run dir>`` (the command-line reader of a
run's ``.wandb`` transaction log): its summary holds ``zc/<name>`` (the exact values of the callback's report) and
``zc_status/<name>``, and its config holds the architecture (the module's hyper-parameters) and the proxy settings.
"""

from __future__ import annotations

import csv
import json
import math
import subprocess
import sys
from pathlib import Path

import lightning.pytorch as pl
import pytest
import torch
from lightning.pytorch.loggers import CSVLogger, WandbLogger

from lswag_lightning import ZeroCostProxyCallback
from lswag_lightning.lightning.data import DigitsDataModule
from lswag_lightning.lightning.module import CandidateClassifier
from lswag_lightning.spaces import get_space

wandb = pytest.importorskip("wandb")
torch.set_num_threads(1)

WANDB_CLI = Path(sys.executable).with_name("wandb")


def inspect_summary(run_dir: Path) -> dict:
    """``wandb leet inspect --summary --json`` of an offline run folder, as a dict."""
    assert WANDB_CLI.exists(), f"{WANDB_CLI} not found"
    out = subprocess.run(
        [str(WANDB_CLI), "leet", "inspect", "--summary", "--json", str(run_dir)],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return json.loads(out.stdout)


def config_value(config: dict, dotted: str):
    """A config entry whether the reader nests it ({"zc": {"batch_size": ...}}) or flattens it ("zc.batch_size")."""
    if dotted in config:
        value = config[dotted]
    else:
        value = config
        for part in dotted.split("."):
            value = value[part]
    return value["value"] if isinstance(value, dict) and set(value) == {"value"} else value


def test_offline_wandb_run_holds_scores_and_settings(tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    space = get_space("nb201")
    arch = space.encode(space.sample(0))
    pl.seed_everything(0, verbose=False)
    data = DigitsDataModule(batch_size=16, img_size=16, in_chans=3)
    module = CandidateClassifier(
        space="nb201", arch=arch, num_classes=10, in_chans=3, img_size=16, space_options={"C": 8, "N": 1}
    )
    # swap_reg fails; min_coverage=1 makes Λ (which leaves BatchNorm affines out) a partial value, kept with its status
    zc = ZeroCostProxyCallback(
        proxies=["lswag", "naswot", "params", "swap_reg"], batch_size=16, score_options={"min_coverage": 1.0}
    )
    wandb_logger = WandbLogger(offline=True, save_dir=str(tmp_path), project="lswag-test")
    csv_logger = CSVLogger(tmp_path, name="csv", version="")
    trainer = pl.Trainer(
        max_steps=2,
        limit_val_batches=1,
        accelerator="cpu",
        logger=[wandb_logger, csv_logger],
        callbacks=[zc],
        enable_progress_bar=False,
        enable_model_summary=False,
        enable_checkpointing=False,
        num_sanity_val_steps=0,
    )
    try:
        trainer.fit(module, datamodule=data)
        run_dir = Path(wandb_logger.experiment.dir).parent
    finally:
        wandb.finish()

    record = inspect_summary(run_dir)
    assert record["state"] == "finished" and record["exit_code"] == 0
    summary, config = record["summary"], record["config"]
    for name in ("lswag", "lswag.lambda", "lswag.psi", "naswot", "params"):
        assert math.isclose(summary[f"zc/{name}"], zc.report.values[name], rel_tol=1e-12), name
        assert summary[f"zc_status/{name}"] == zc.report.status[name]
    assert summary["zc_status/params"] == summary["zc_status/lswag.psi"] == "ok"
    assert (
        summary["zc_status/lswag.lambda"].startswith("partial: measured ")
        and "below min_coverage=1" in (summary["zc_status/lswag.lambda"])
    )
    assert summary["zc/params"] == module.num_parameters
    assert summary["zc_status/swap_reg"].startswith("error: swap_reg needs swap_mu and swap_sigma")
    # the architecture (module hyper-parameters) and the proxy settings are in the run config
    assert config_value(config, "arch") == arch and config_value(config, "space") == "nb201"
    assert config_value(config, "zc.proxies") == ["lswag", "naswot", "params", "swap_reg"]
    assert config_value(config, "zc.batch_size") == 16
    assert config_value(config, "zc.engine.lambda_k") == 2

    # the CSV logger got the same values
    with open(tmp_path / "csv" / "metrics.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    lswag = [float(r["zc/lswag"]) for r in rows if r.get("zc/lswag")]
    assert lswag == [pytest.approx(zc.report.values["lswag"], rel=1e-12)]
