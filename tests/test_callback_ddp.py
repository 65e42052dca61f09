"""ZeroCostProxyCallback under DDP on CPU: 2 processes, gloo, ``strategy="ddp_spawn"`` (slow).

Each rank writes what its callback ended with; both ranks hold the same values and settings, only rank 0 ran
``score_network``, the fit completes; a scoring failure on rank 0 stops both ranks instead of hanging rank 1.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import lightning.pytorch as pl
import pytest

from lswag_lightning import ZeroCostProxyCallback
from lswag_lightning.lightning.data import DigitsDataModule
from lswag_lightning.lightning.module import CandidateClassifier

pytestmark = pytest.mark.slow

ARCH = "|nor_conv_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|avg_pool_3x3~0|nor_conv_3x3~1|nor_conv_1x1~2|"


class RankReport(pl.Callback):
    """Writes, per rank, the zero-cost values its callback holds after training started and after fit."""

    def __init__(self, folder: str) -> None:
        self.folder = folder

    def on_fit_end(self, trainer, pl_module):
        zc = next(cb for cb in trainer.callbacks if isinstance(cb, ZeroCostProxyCallback))
        record = {
            "rank": trainer.global_rank,
            "world_size": trainer.world_size,
            "values": {k: (v if math.isfinite(v) else repr(v)) for k, v in zc.report.values.items()},
            "status": zc.report.status,
            "seconds": zc.seconds,
            "probe_indices": zc.probe_indices,
            "step": trainer.global_step,
            "callback_metric": float(trainer.callback_metrics["zc/lswag"]),
        }
        Path(self.folder, f"rank{trainer.global_rank}.json").write_text(json.dumps(record))


def failing_model_fn(module):
    raise RuntimeError("deliberate failure while scoring")


def _trainer(callbacks):
    return pl.Trainer(
        accelerator="cpu",
        devices=2,
        strategy="ddp_spawn",
        max_steps=3,
        limit_val_batches=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        callbacks=callbacks,
    )


def _module_and_data():
    pl.seed_everything(0, verbose=False)
    data = DigitsDataModule(batch_size=16, img_size=16, in_chans=3)
    module = CandidateClassifier(
        space="nb201", arch=ARCH, num_classes=10, in_chans=3, img_size=16, space_options={"C": 8, "N": 1}
    )
    return module, data


@pytest.mark.timeout(600)
def test_ddp_spawn_two_cpu_ranks_agree(tmp_path):
    module, data = _module_and_data()
    zc = ZeroCostProxyCallback(proxies=["lswag", "naswot", "synflow"], batch_size=32)
    trainer = _trainer([zc, RankReport(str(tmp_path))])
    trainer.fit(module, datamodule=data)

    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert [r["rank"] for r in ranks] == [0, 1] and all(r["world_size"] == 2 for r in ranks)
    assert ranks[0]["values"] == ranks[1]["values"] and ranks[0]["status"] == ranks[1]["status"]
    assert ranks[0]["probe_indices"] == ranks[1]["probe_indices"]
    # rank 0 scored, rank 1 received: the wall seconds measured on rank 0 arrive unchanged on rank 1
    assert ranks[0]["seconds"] == ranks[1]["seconds"] and ranks[0]["seconds"] > 0
    assert all(r["step"] == 3 for r in ranks)  # both completed the fit
    assert ranks[0]["status"]["lswag"] == "ok"
    # ddp_spawn returns only callback_metrics to this process: the value is there
    assert float(trainer.callback_metrics["zc/lswag"]) == pytest.approx(ranks[0]["values"]["lswag"], rel=1e-12)


@pytest.mark.timeout(600)
def test_ddp_spawn_failure_on_rank0_stops_every_rank(tmp_path):
    module, data = _module_and_data()
    zc = ZeroCostProxyCallback(proxies=["naswot"], batch_size=16, model_fn=failing_model_fn, on_error="raise")
    with pytest.raises(Exception, match="deliberate failure while scoring"):
        _trainer([zc]).fit(module, datamodule=data)


@pytest.mark.timeout(600)
def test_ddp_spawn_failure_on_rank0_under_warn_reaches_every_rank_and_training_completes(tmp_path):
    module, data = _module_and_data()
    zc = ZeroCostProxyCallback(proxies=["lswag"], batch_size=16, model_fn=failing_model_fn)
    _trainer([zc, RankReport(str(tmp_path))]).fit(module, datamodule=data)
    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert all(r["step"] == 3 for r in ranks)  # both ranks trained to the end
    assert ranks[0]["status"] == ranks[1]["status"]
    assert ranks[0]["status"]["lswag"] == (
        "error: scoring failed before any pass: RuntimeError: deliberate failure while scoring"
    )
