"""DataModules (digits, CIFAR from .npz folders) and the CandidateClassifier LightningModule.

Hand checks: the digits split sizes and normalisation constants recomputed from scikit-learn's raw data; the
cosine schedule's learning rates recomputed by formula; the CIFAR .npz folder of ../shared/data read with its
documented sizes (10,000 training images, 2,000 test images, 10 classes).
"""

from __future__ import annotations

import math

import lightning.pytorch as pl
import numpy as np
import pytest
import torch

from lswag_lightning.lightning.data import (
    DIGITS_MEAN,
    DIGITS_STD,
    CIFARDataModule,
    DigitsDataModule,
    get_datamodule,
)
from lswag_lightning.lightning.module import CandidateClassifier

torch.set_num_threads(1)

NB201_ARCH = "|nor_conv_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|avg_pool_3x3~0|nor_conv_3x3~1|nor_conv_1x1~2|"


# ---------------------------------------------------------------------------------------------------- digits
def test_digits_fixed_split_sizes_disjoint_and_reproducible():
    a, b = DigitsDataModule(), DigitsDataModule()
    a.setup("fit")
    b.setup("fit")
    assert a.sizes == {"train": 1257, "val": 270, "test": 270}
    assert torch.equal(a.train_set.images, b.train_set.images) and torch.equal(a.test_set.labels, b.test_set.labels)
    # the three splits partition the 1797 images: together they are exactly the dataset, as a multiset
    from sklearn.datasets import load_digits

    full = np.round(load_digits().images * 255 / 16).astype(np.uint8).reshape(1797, -1)
    parts = torch.cat([a.train_set.images, a.val_set.images, a.test_set.images]).reshape(1797, -1).numpy()
    assert np.array_equal(
        np.unique(full, axis=0, return_counts=True)[1], np.unique(parts, axis=0, return_counts=True)[1]
    )
    assert np.array_equal(np.unique(full, axis=0), np.unique(parts, axis=0))
    other = DigitsDataModule(split_seed=1)
    other.setup("fit")
    assert not torch.equal(other.test_set.labels, a.test_set.labels)


def test_digits_normalisation_constants_match_the_training_split():
    from sklearn.datasets import load_digits

    digits = load_digits()
    perm = np.random.default_rng(0).permutation(len(digits.images))
    train = np.sort(perm[540:])  # test 270 + val 270 first, as DigitsDataModule draws them
    pixels = np.round(digits.images[train] * 255 / 16) / 255
    assert pixels.mean() == pytest.approx(DIGITS_MEAN, abs=1e-4)
    assert pixels.std() == pytest.approx(DIGITS_STD, abs=1e-4)
    native = DigitsDataModule(img_size=8, in_chans=1)
    native.setup("fit")
    x = torch.stack([native.train_set[i][0] for i in range(len(native.train_set))])
    assert x.shape == (1257, 1, 8, 8)
    assert float(x.mean()) == pytest.approx(0.0, abs=1e-3) and float(x.std()) == pytest.approx(1.0, abs=1e-3)


def test_digits_resize_channels_and_loader_options():
    dm = DigitsDataModule(batch_size=32, img_size=16, in_chans=3, num_workers=2, eval_batch_size=100)
    dm.setup("fit")
    x, y = dm.train_set[0]
    assert x.shape == (3, 16, 16) and x.dtype == torch.float32 and y.dtype == torch.int64
    assert torch.equal(x[0], x[1]) and torch.equal(x[1], x[2])  # grey repeated to RGB
    loader = dm.train_dataloader()
    assert loader.num_workers == 2 and loader.batch_size == 32
    assert dm.val_dataloader().batch_size == 100 and dm.test_dataloader().num_workers == 2
    assert (dm.num_classes, dm.in_chans, dm.img_size) == (10, 3, 16)


def test_digits_augmentation_only_on_training_split_and_seeded():
    dm = DigitsDataModule(img_size=16, augment=True, crop_padding=2)
    dm.setup("fit")
    torch.manual_seed(0)
    first = dm.train_set[5][0]
    torch.manual_seed(0)
    assert torch.equal(first, dm.train_set[5][0])
    assert torch.equal(dm.val_set[5][0], dm.val_set[5][0])
    crops = {bytes(dm.train_set[5][0].numpy()) for _ in range(20)}
    assert len(crops) > 1


@pytest.mark.parametrize(
    "kwargs,message",
    [
        (
            {"batch_size": 2000},
            r"batch_size=2000 is larger than the training set \(1257 samples\); lower data.batch_size",
        ),
        ({"num_workers": -1}, "num_workers must be an int >= 0"),
        ({"in_chans": 2}, "in_chans must be 1 or 3"),
        ({"img_size": 4}, "img_size must be an int >= 8"),
        ({"val_size": 900, "test_size": 900}, "leaves no training images"),
    ],
)
def test_digits_bad_options(kwargs, message):
    with pytest.raises(ValueError, match=message):
        DigitsDataModule(**kwargs).setup("fit")


# ----------------------------------------------------------------------------------------------------- cifar
def _write_npz_folder(folder, n_train=60, n_test=0, name="cifar10", classes=10):
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, size=(n_train, 32, 32, 3), dtype=np.uint8)
    np.savez(folder / f"{name}_train_part0.npz", x=x, y=np.arange(n_train) % classes)
    if n_test:
        np.savez(folder / f"{name}_test.npz", x=x[:n_test], y=np.arange(n_test) % classes)
    return x


def test_cifar_npz_folder_with_held_out_test_split(tmp_path):
    _write_npz_folder(tmp_path / "imgs", n_train=60)
    dm = CIFARDataModule(
        npz_dir=str(tmp_path / "imgs"), batch_size=8, val_size=10, test_size=20, augment=False, num_workers=0
    )
    dm.setup("fit")
    assert dm.sizes == {"train": 30, "val": 10, "test": 20}
    x, y = dm.train_set[0]
    assert x.shape == (3, 32, 32) and 0 <= int(y) < 10
    resized = CIFARDataModule(npz_dir=str(tmp_path / "imgs"), batch_size=8, val_size=10, test_size=20, img_size=16)
    resized.setup("fit")
    assert resized.train_set[0][0].shape == (3, 16, 16)


def test_cifar_missing_folder_fails_at_construction_naming_the_key(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"npz_dir=.*does not exist.*data.npz_dir"):
        CIFARDataModule(npz_dir=str(tmp_path / "nowhere"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match=r"no cifar10_train\*.npz file"):
        CIFARDataModule(npz_dir=str(tmp_path / "empty"))


def test_cifar_labels_out_of_range_and_batch_too_large(tmp_path):
    _write_npz_folder(tmp_path / "c100", n_train=40, name="cifar10", classes=100)
    with pytest.raises(ValueError, match="labels up to"):
        CIFARDataModule(npz_dir=str(tmp_path / "c100"), val_size=5, test_size=5).setup("fit")
    _write_npz_folder(tmp_path / "small", n_train=40)
    with pytest.raises(ValueError, match="lower data.batch_size"):
        CIFARDataModule(npz_dir=str(tmp_path / "small"), val_size=5, test_size=5, batch_size=64).setup("fit")


def test_cifar10_from_the_shared_npz_images(shared_data_dir):
    dm = CIFARDataModule(npz_dir=str(shared_data_dir / "images"), batch_size=64, num_workers=0)
    dm.setup("fit")
    assert dm.sizes == {"train": 9000, "val": 1000, "test": 2000}
    assert torch.bincount(dm.test_set.labels).tolist() == [200] * 10
    assert torch.bincount(torch.cat([dm.train_set.labels, dm.val_set.labels])).tolist() == [1000] * 10
    x, _ = dm.val_set[0]
    assert x.shape == (3, 32, 32)
    # normalised with the CIFAR-10 statistics: the shared (JPEG) subset is close to mean 0, std 1 per channel
    batch = torch.stack([dm.val_set[i][0] for i in range(500)])
    assert batch.mean(dim=(0, 2, 3)).abs().max() < 0.1 and (batch.std(dim=(0, 2, 3)) - 1).abs().max() < 0.1
    assert get_datamodule("cifar10", npz_dir=str(shared_data_dir / "images")).num_classes == 10


# -------------------------------------------------------------------------------------------------- module
def test_candidate_builds_from_space_and_arch_and_counts_parameters():
    from lswag_lightning.spaces import get_space

    module = CandidateClassifier(space="nb201", arch=NB201_ARCH, num_classes=10, in_chans=3, img_size=16)
    space = get_space("nb201")
    assert module.num_parameters == space.param_count(space.decode(NB201_ARCH), num_classes=10, in_chans=3, img_size=16)
    assert module(torch.randn(2, 3, 16, 16)).shape == (2, 10)
    assert module.hparams.arch == NB201_ARCH and module.hparams.space == "nb201"


@pytest.mark.parametrize(
    "kwargs,message",
    [
        ({"optimizer": "adam"}, "optimizer must be one of"),
        ({"scheduler": "step"}, "scheduler must be one of"),
        ({"lr": 0.0}, "lr must be > 0"),
        ({"warmup_fraction": 1.0}, r"warmup_fraction must be in \[0, 1\)"),
        ({"space": "nb201"}, "needs either net= or both space= and arch="),
    ],
)
def test_candidate_bad_options(kwargs, message):
    with pytest.raises(ValueError, match=message):
        CandidateClassifier(**kwargs)


def test_optimiser_groups_and_cosine_schedule_by_hand():
    net = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.BatchNorm1d(8), torch.nn.Linear(8, 3))
    module = CandidateClassifier(net, num_classes=3, lr=0.1, weight_decay=0.05, warmup_fraction=0.2, min_lr_ratio=0.1)

    class _Trainer:  # what configure_optimizers reads
        estimated_stepping_batches = 10

    module._trainer = _Trainer()
    config = module.configure_optimizers()
    optimizer, scheduler = config["optimizer"], config["lr_scheduler"]["scheduler"]
    assert isinstance(optimizer, torch.optim.AdamW) and config["lr_scheduler"]["interval"] == "step"
    decay, no_decay = optimizer.param_groups
    assert decay["weight_decay"] == 0.05 and no_decay["weight_decay"] == 0.0
    assert {p.ndim for p in decay["params"]} == {2} and {p.ndim for p in no_decay["params"]} == {1}
    lrs = []
    for _ in range(10):
        lrs.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    warmup, total = 2, 10  # round(0.2 * 10)
    expected = [
        0.1 * (s + 1) / (warmup + 1)
        if s < warmup
        else 0.1 * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * (s - warmup) / (total - warmup))))
        for s in range(10)
    ]
    assert lrs == pytest.approx(expected, rel=1e-12)

    sgd = CandidateClassifier(
        net, num_classes=3, optimizer="sgd", lr=0.05, scheduler="none", decay_norm_and_bias=True, weight_decay=5e-4
    )
    opt = sgd.configure_optimizers()
    assert isinstance(opt, torch.optim.SGD) and len(opt.param_groups) == 1
    assert opt.param_groups[0]["nesterov"] and opt.param_groups[0]["momentum"] == 0.9


def test_fit_and_test_record_final_metrics(tmp_path):
    pl.seed_everything(0, verbose=False)
    data = DigitsDataModule(batch_size=32, img_size=16, in_chans=3)
    module = CandidateClassifier(
        space="nb201",
        arch=NB201_ARCH,
        num_classes=10,
        in_chans=3,
        img_size=16,
        space_options={"C": 8, "N": 1},
        optimizer="sgd",
        lr=0.05,
    )
    trainer = pl.Trainer(
        accelerator="cpu",
        max_epochs=2,
        limit_train_batches=4,
        limit_val_batches=2,
        limit_test_batches=2,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
    )
    trainer.fit(module, datamodule=data)
    trainer.test(module, datamodule=data, verbose=False)
    metrics = module.final_metrics
    assert metrics["epochs"] == 2.0 and trainer.global_step == 8
    for key in ("train/loss", "train/acc", "val/loss", "val/acc", "val/acc_best", "test/loss", "test/acc"):
        assert key in metrics and math.isfinite(metrics[key]), key
    assert 0.0 <= metrics["test/acc"] <= 1.0 and metrics["val/acc_best"] >= metrics["val/acc"]
    # the test accuracy is the fraction of correct predictions on the first 2 test batches (64 images)
    module.eval()
    with torch.no_grad():
        xs, ys = zip(*[data.test_set[i] for i in range(64)])
        correct = (module(torch.stack(xs)).argmax(1) == torch.stack(ys)).float().mean()
    assert metrics["test/acc"] == pytest.approx(float(correct), abs=1e-6)
    # the module is re-created from its hyper-parameters (space + arch), weights from the checkpoint
    trainer.save_checkpoint(tmp_path / "m.ckpt")
    loaded = CandidateClassifier.load_from_checkpoint(tmp_path / "m.ckpt")
    assert all(torch.equal(a, b) for a, b in zip(loaded.state_dict().values(), module.state_dict().values()))
    assert loaded.hparams.space_options == {"C": 8, "N": 1}
