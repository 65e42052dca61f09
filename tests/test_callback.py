"""ZeroCostProxyCallback on real Lightning fits (CPU, tiny models, a few steps).

- isolation end to end: with and without the callback, the same seed gives bit-identical weights, buffers and
  training data order after 3 steps, for a ViT (autoformer_mini, dropout + drop-path consuming RNG, random-crop
  augmentation) and a CNN with BatchNorm (nb201); a deliberately leaky callback breaks both (the check is sensitive);
- the probe batch comes from the train dataloader: several loader batches when the loader's batch is smaller,
  exactly the start of the first epoch with ``probe_seed=None``, independent of the training seed with an int, and
  the loader's own generator is never advanced;
- adapters: dict batches + dict outputs + a custom loss give exactly ``score_network``'s values on the same batch;
- validation before any work, logging to a CSV logger, resume without re-scoring.
"""

from __future__ import annotations

import csv
import math

import lightning.pytorch as pl
import pytest
import torch
import torch.nn.functional as F
import yaml
from lightning.pytorch.loggers import CSVLogger
from torch import nn
from torch.utils.data import DataLoader, Dataset, IterableDataset

import lswag_lightning
import lswag_lightning.lightning.callback as callback_module
from lswag_lightning import ZeroCostProxyCallback, score_network
from lswag_lightning.lightning.data import DigitsDataModule
from lswag_lightning.lightning.module import CandidateClassifier
from lswag_lightning.spaces import get_space

torch.set_num_threads(1)
pytestmark = [
    pytest.mark.filterwarnings("ignore:.*does not have many workers.*"),
    pytest.mark.filterwarnings("ignore:.*smaller than the logging interval.*"),
]

QUIET = dict(
    accelerator="cpu",
    devices=1,
    enable_progress_bar=False,
    enable_model_summary=False,
    num_sanity_val_steps=0,
    enable_checkpointing=False,
)


class BatchRecorder(pl.Callback):
    """Records every training batch as the training step receives it."""

    def __init__(self) -> None:
        self.batches: list = []

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        self.batches.append([t.clone() for t in batch] if isinstance(batch, (list, tuple)) else batch)


class LeakyCallback(pl.Callback):
    """A negative control: consumes one draw of the global torch RNG at train start."""

    def on_train_start(self, trainer, pl_module):
        torch.rand(1)


def _fit_candidate(space_name, space_options, callbacks, steps=3, seed=0):
    space = get_space(space_name)
    arch = space.encode(space.sample(0))
    pl.seed_everything(seed, workers=True, verbose=False)
    data = DigitsDataModule(batch_size=16, img_size=16, in_chans=3, augment=True)  # random crops use the RNG
    module = CandidateClassifier(
        space=space_name, arch=arch, num_classes=10, in_chans=3, img_size=16, space_options=space_options
    )
    recorder = BatchRecorder()
    trainer = pl.Trainer(max_steps=steps, logger=False, limit_val_batches=0, callbacks=[recorder, *callbacks], **QUIET)
    trainer.fit(module, datamodule=data)
    return module, recorder


def _same_state(a: nn.Module, b: nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def _same_batches(a: BatchRecorder, b: BatchRecorder) -> bool:
    return len(a.batches) == len(b.batches) and all(
        torch.equal(x, y) for ba, bb in zip(a.batches, b.batches) for x, y in zip(ba, bb)
    )


CANDIDATES = [
    # ViT: dropout and drop-path make every training step consume the RNG
    ("autoformer_mini", {"patch_size": 4, "drop_rate": 0.1, "drop_path_rate": 0.1}),
    # CNN with BatchNorm (running statistics are buffers)
    ("nb201", {"C": 8, "N": 1}),
]


@pytest.mark.parametrize("space_name,space_options", CANDIDATES, ids=[c[0] for c in CANDIDATES])
def test_isolation_end_to_end_bit_identical(space_name, space_options):
    plain, plain_batches = _fit_candidate(space_name, space_options, [])
    zc = ZeroCostProxyCallback(proxies=["lswag", "naswot", "synflow", "snip"], batch_size=40)
    scored, scored_batches = _fit_candidate(space_name, space_options, [zc])

    assert zc.report is not None and zc.report.ok("lswag") and zc.scored_at_step == 0
    assert zc.probe_loader_batches == 3  # 40 samples from loader batches of 16
    assert _same_batches(plain_batches, scored_batches), "the callback changed the training data order"
    assert _same_state(plain, scored), "the callback changed the trained weights or buffers"
    if space_name == "nb201":
        assert any(k.endswith("running_mean") for k in scored.state_dict())

    # negative control: the same comparison catches one stray RNG draw
    leaky, leaky_batches = _fit_candidate(space_name, space_options, [LeakyCallback()])
    assert not _same_batches(plain_batches, leaky_batches)
    assert not _same_state(plain, leaky)


# ---------------------------------------------------------------------------------------------- probe batch
class IndexedDataset(Dataset):
    """Sample i: a fixed random feature vector, label i % 4, and the index i itself (to trace the order)."""

    def __init__(self, n: int = 50, dim: int = 6) -> None:
        self.x = torch.randn(n, dim, generator=torch.Generator().manual_seed(1))
        self.n = n

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i):
        return self.x[i], torch.tensor(i % 4), torch.tensor(i)


class TinyMLP(pl.LightningModule):
    def __init__(self, loader_kwargs=None) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(6, 64), nn.ReLU(), nn.Linear(64, 4))
        self.loader_kwargs = loader_kwargs or {}

    def forward(self, x):
        return self.net(x)

    def training_step(self, batch, batch_idx):
        return F.cross_entropy(self(batch[0]), batch[1])

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)

    def train_dataloader(self):
        return DataLoader(IndexedDataset(), **self.loader_kwargs)


def _fit_tiny(callbacks, *, seed=0, epochs=2, **loader_kwargs):
    pl.seed_everything(seed, verbose=False)
    module = TinyMLP(loader_kwargs)
    recorder = BatchRecorder()
    trainer = pl.Trainer(max_epochs=epochs, logger=False, callbacks=[recorder, *callbacks], **QUIET)
    trainer.fit(module)
    order = torch.cat([b[2] for b in recorder.batches]).tolist()
    return module, order


def test_probe_is_the_start_of_the_first_epoch_with_probe_seed_none():
    _, order = _fit_tiny([], batch_size=8, shuffle=True)
    zc = ZeroCostProxyCallback(proxies=["naswot", "params"], batch_size=20, probe_seed=None)
    _, order_zc = _fit_tiny([zc], batch_size=8, shuffle=True)
    assert order_zc == order  # two epochs, same order
    assert zc.probe_loader_batches == 3  # 8 + 8 + 4 of the third batch
    assert zc.probe_indices == order[:20]


def test_probe_never_advances_the_loaders_own_generator():
    def run(callbacks):
        generator = torch.Generator().manual_seed(123)
        _, order = _fit_tiny(callbacks, batch_size=8, shuffle=True, generator=generator)
        return order, generator.get_state()

    order, state = run([])
    zc = ZeroCostProxyCallback(proxies=["naswot"], batch_size=20, probe_seed=None)
    order_zc, state_zc = run([zc])
    assert order_zc == order and torch.equal(state, state_zc)
    assert zc.probe_indices == order[:20]


def test_probe_seed_makes_the_probe_independent_of_the_training_seed():
    probes = []
    for seed in (0, 1):
        zc = ZeroCostProxyCallback(proxies=["naswot"], batch_size=12, probe_seed=7)
        _, order = _fit_tiny([zc], seed=seed, epochs=1, batch_size=8, shuffle=True)
        probes.append(zc.probe_indices)
    assert probes[0] == probes[1]
    assert len(set(probes[0])) == 12 and probes[0] != order[:12]


def test_probe_batch_larger_than_one_epoch_fails_before_training():
    zc = ZeroCostProxyCallback(proxies=["naswot"], batch_size=60, on_error="raise")
    with pytest.raises(ValueError, match="batch_size=60 but one epoch of the train dataloader holds only 50"):
        _fit_tiny([zc], batch_size=8, shuffle=True)


def test_probe_batch_larger_than_one_epoch_is_a_status_under_warn():
    zc = ZeroCostProxyCallback(proxies=["naswot"], batch_size=60)
    with pytest.warns(UserWarning, match="1 of 1 zero-cost values could not be computed; training goes on"):
        _fit_tiny([zc], batch_size=8, shuffle=True)
    assert zc.report.status["naswot"].startswith(
        "error: scoring failed before any pass: ValueError: ZeroCostProxyCallback: batch_size=60 but one epoch"
    )
    assert math.isnan(zc.report.values["naswot"])


class StreamDataset(IterableDataset):
    """An iterable dataset: the first samples of ``IndexedDataset`` in order."""

    def __iter__(self):
        data = IndexedDataset(n=30)
        return iter(data[i] for i in range(len(data)))


def test_iterable_dataset_probe_is_its_first_samples():
    zc = ZeroCostProxyCallback(proxies=["naswot", "snip"], batch_size=12)
    pl.seed_everything(0, verbose=False)
    module = TinyMLP()
    module.train_dataloader = lambda: DataLoader(StreamDataset(), batch_size=8)
    recorder = BatchRecorder()
    pl.Trainer(max_epochs=1, logger=False, callbacks=[recorder, zc], **QUIET).fit(module)
    assert zc.probe_indices is None and zc.probe_loader_batches == 2 and zc.report.ok("snip")
    assert torch.cat([b[2] for b in recorder.batches]).tolist() == list(range(30))  # training saw every sample


# --------------------------------------------------------------------------------------------------- adapters
class DictDataset(Dataset):
    def __init__(self, n: int = 24) -> None:
        self.x = torch.randn(n, 6, generator=torch.Generator().manual_seed(2))

    def __len__(self):
        return len(self.x)

    def __getitem__(self, i):
        return {"pixels": self.x[i], "cls": torch.tensor(i % 3)}


class DictModule(pl.LightningModule):
    """Batches are dicts with unusual keys and forward returns a dict: needs both adapters."""

    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(6, 64), nn.ReLU(), nn.Linear(64, 3))

    def forward(self, x):
        return {"out": self.net(x)}

    def training_step(self, batch, batch_idx):
        return F.cross_entropy(self(batch["pixels"])["out"], batch["cls"])

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)

    def train_dataloader(self):
        return DataLoader(DictDataset(), batch_size=8, shuffle=False)


def test_batch_and_output_adapters_and_custom_loss_give_score_network_values():
    calls = []

    def smoothed_loss(logits, targets):
        calls.append(len(targets))
        return F.cross_entropy(logits, targets, label_smoothing=0.2)

    zc = ZeroCostProxyCallback(
        proxies=["lswag", "snip", "naswot"],
        batch_size=16,
        loss_fn=smoothed_loss,
        batch_adapter=lambda b: (b["pixels"], b["cls"]),
        output_adapter=lambda out: out["out"],
        probe_seed=None,
    )
    pl.seed_everything(0, verbose=False)
    module = DictModule()
    reference_model = DictModule()
    reference_model.load_state_dict(module.state_dict())
    pl.Trainer(max_steps=1, logger=False, callbacks=[zc], **QUIET).fit(module)

    assert zc.probe_indices == list(range(16)) and zc.probe_loader_batches == 2  # unshuffled: batches 0 and 1
    assert calls, "the custom loss was not used"
    data = DictDataset()
    x = torch.stack([data[i]["pixels"] for i in range(16)])
    y = torch.stack([data[i]["cls"] for i in range(16)])
    expected = score_network(
        reference_model,
        x,
        y,
        proxies=["lswag", "snip", "naswot"],
        loss_fn=smoothed_loss,
        output_adapter=lambda out: out["out"],
    )
    assert zc.report.values == expected.values
    assert all(zc.report.ok(name) for name in ("lswag", "snip", "naswot"))


def test_unknown_batch_layout_names_the_adapter_option():
    zc = ZeroCostProxyCallback(proxies=["naswot"], batch_size=8, on_error="raise")
    with pytest.raises(ValueError, match="batch_adapter"):
        pl.Trainer(max_steps=1, logger=False, callbacks=[zc], **QUIET).fit(DictModule())


def test_fixed_probe_batch_callable():
    x = torch.randn(10, 6, generator=torch.Generator().manual_seed(3))
    y = torch.arange(10) % 4
    zc = ZeroCostProxyCallback(proxies=["snip"], batch_size=10, probe_batch=lambda: (x, y))
    pl.seed_everything(0, verbose=False)
    module = TinyMLP({"batch_size": 8})
    reference = TinyMLP()
    reference.load_state_dict(module.state_dict())
    pl.Trainer(max_steps=1, logger=False, callbacks=[zc], **QUIET).fit(module)
    assert zc.report.values["snip"] == score_network(reference, x, y, proxies=["snip"]).values["snip"]
    assert zc.probe_indices is None


# ------------------------------------------------------------------------------------------------- validation
@pytest.mark.parametrize(
    "kwargs,message",
    [
        ({"proxies": ["lswag", "not_a_proxy"]}, r"unknown proxies \['not_a_proxy'\]"),
        ({"batch_size": 1}, "batch_size must be an int >= 2"),
        ({"score_options": {"loss_fn": None}}, "as the callback's own arguments"),
        ({"probe_seed": "0"}, "probe_seed must be an int or None"),
    ],
)
def test_bad_arguments_fail_before_training(kwargs, message):
    module = TinyMLP({"batch_size": 8})
    before = {k: v.clone() for k, v in module.state_dict().items()}
    with pytest.raises(ValueError, match=message):
        pl.Trainer(max_steps=2, logger=False, callbacks=[ZeroCostProxyCallback(**kwargs)], **QUIET).fit(module)
    assert all(torch.equal(before[k], v) for k, v in module.state_dict().items())


def test_all_expands_to_every_registered_proxy_and_top_level_export():
    assert lswag_lightning.ZeroCostProxyCallback is ZeroCostProxyCallback
    assert ZeroCostProxyCallback(proxies="all").proxies == tuple(lswag_lightning.available_proxies())


# ---------------------------------------------------------------------------------------------------- loggers
def _csv_rows(path):
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def test_csv_logger_receives_values_and_settings(tmp_path):
    zc = ZeroCostProxyCallback(proxies=["lswag", "naswot"], batch_size=16, layer_interval=(0, 10))
    pl.seed_everything(0, verbose=False)
    logger = CSVLogger(tmp_path, name="csv", version="")
    pl.Trainer(max_steps=2, logger=logger, callbacks=[zc], **QUIET).fit(TinyMLP({"batch_size": 8}))

    rows = _csv_rows(tmp_path / "csv" / "metrics.csv")
    logged = {k: float(v) for row in rows for k, v in row.items() if k.startswith("zc/") and v != ""}
    assert logged.keys() == {"zc/lswag", "zc/lswag.lambda", "zc/lswag.psi", "zc/naswot"}
    for name, value in logged.items():
        assert math.isclose(value, zc.report.values[name[3:]], rel_tol=1e-12)
    hparams = yaml.safe_load((tmp_path / "csv" / "hparams.yaml").read_text())
    assert hparams["zc"]["proxies"] == ["lswag", "naswot"] and hparams["zc"]["batch_size"] == 16
    assert hparams["zc"]["layer_interval"] == [0, 10] and hparams["zc"]["engine"]["layer_interval"] == [0, 10]
    assert hparams["zc"]["status"]["lswag"] == "ok"
    assert zc.summary_line().startswith("zero-cost proxies at init (batch 16")


# ----------------------------------------------------------------------------------------------------- resume
def test_resume_from_checkpoint_reports_the_original_scores_without_rescoring(tmp_path, monkeypatch):
    zc = ZeroCostProxyCallback(proxies=["lswag", "synflow"], batch_size=16)
    pl.seed_everything(0, verbose=False)
    module = TinyMLP({"batch_size": 8, "shuffle": True})
    trainer = pl.Trainer(max_steps=3, logger=False, callbacks=[zc], **QUIET)
    trainer.fit(module)
    ckpt = tmp_path / "step3.ckpt"
    trainer.save_checkpoint(ckpt)
    original = dict(zc.report.values)

    def must_not_score(*args, **kwargs):
        raise AssertionError("score_network called on resume")

    monkeypatch.setattr(callback_module, "score_network", must_not_score)
    resumed_zc = ZeroCostProxyCallback(proxies=["lswag", "synflow"], batch_size=16)
    logger = CSVLogger(tmp_path, name="resumed", version="")
    resumed = pl.Trainer(max_steps=6, logger=logger, callbacks=[resumed_zc], **QUIET)
    resumed.fit(TinyMLP({"batch_size": 8, "shuffle": True}), ckpt_path=ckpt)

    assert resumed.global_step == 6
    assert resumed_zc.restored
    assert resumed_zc.report.values == original and resumed_zc.scored_at_step == 0
    rows = _csv_rows(tmp_path / "resumed" / "metrics.csv")
    assert float(next(r["zc/lswag"] for r in rows if r.get("zc/lswag"))) == pytest.approx(original["lswag"], rel=1e-12)
    assert "restored from checkpoint" in resumed_zc.summary_line()


def test_resume_from_a_checkpoint_without_scores_does_not_score_trained_weights(tmp_path, monkeypatch):
    pl.seed_everything(0, verbose=False)
    trainer = pl.Trainer(max_steps=2, logger=False, **QUIET)
    trainer.fit(TinyMLP({"batch_size": 8}))
    ckpt = tmp_path / "plain.ckpt"
    trainer.save_checkpoint(ckpt)
    monkeypatch.setattr(callback_module, "score_network", lambda *a, **k: pytest.fail("scored trained weights"))
    zc = ZeroCostProxyCallback(proxies=["naswot"], batch_size=8)
    with pytest.warns(UserWarning, match="not scoring"):
        pl.Trainer(max_steps=3, logger=False, callbacks=[zc], **QUIET).fit(TinyMLP({"batch_size": 8}), ckpt_path=ckpt)
    assert zc.report is None


def test_state_dict_round_trip():
    zc = ZeroCostProxyCallback(proxies=["naswot"], batch_size=8)
    pl.seed_everything(0, verbose=False)
    pl.Trainer(max_steps=1, logger=False, callbacks=[zc], **QUIET).fit(TinyMLP({"batch_size": 8}))
    other = ZeroCostProxyCallback(proxies=["naswot"], batch_size=8)
    other.load_state_dict(zc.state_dict())
    assert other.report.values == zc.report.values and other.restored and other.probe_indices == zc.probe_indices
    assert other.state_key == zc.state_key
