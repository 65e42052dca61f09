"""LightningDataModules for training candidates: ``digits`` (embedded), ``cifar10`` / ``cifar100``.

All of them hold the images as uint8 arrays in memory and apply the (optional) resize, augmentation and
normalisation per sample with plain tensor operations, so they are light on CPU and work with ``num_workers=0``.
Every module exposes ``num_classes``, ``in_chans`` and ``img_size`` before ``setup`` (what ``space.build`` needs),
fixes its train/val split with ``split_seed``, and checks at ``setup`` that ``batch_size`` fits the training set.

- :class:`DigitsDataModule`: scikit-learn's 8x8 digits (1797 images, 10 classes; no download), split 1257/270/270,
  optionally resized (e.g. to 16 or 32 px so a ViT with patch 4 has tokens) and repeated to 3 channels.
- :class:`CIFARDataModule`: CIFAR-10/100 from a local folder of ``.npz`` files (``npz_dir``; arrays ``x`` uint8
  NHWC and ``y`` int) or from torchvision (``data_dir``; downloaded when ``download`` and the network allow it).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path

import lightning.pytorch as pl
import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset

from lswag_lightning.images import CIFAR10_MEAN, CIFAR10_STD, CIFAR100_MEAN, CIFAR100_STD, read_image_npz

log = logging.getLogger(__name__)

DIGITS_MEAN = 0.3053  # of the [0, 1]-scaled 8x8 digits training split (split_seed 0)
DIGITS_STD = 0.3759

CACHE_ENV = "LSWAG_CACHE_DIR"


def default_cache_dir() -> Path:
    """Where torchvision downloads go when ``data_dir`` is not set: ``$LSWAG_CACHE_DIR`` or
    ``$XDG_CACHE_HOME/lswag_lightning`` (``~/.cache/lswag_lightning``)."""
    env = os.environ.get(CACHE_ENV)
    if env:
        return Path(env).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "lswag_lightning"


class ArrayImageDataset(Dataset):
    """Images held as a uint8 tensor ``(N, C, H, W)`` with integer labels; returns ``(float image, label)``.

    Per sample: scale to [0, 1], resize to ``img_size`` (bilinear, antialiased) when it differs, repeat a single
    channel to ``in_chans``, then (when ``augment``) random crop with ``crop_padding`` and horizontal flip, then
    normalise with ``mean`` / ``std``. Random draws use the global torch RNG (seeded per worker by the loader).
    """

    def __init__(
        self,
        images: torch.Tensor,
        labels: torch.Tensor,
        *,
        img_size: int | None = None,
        in_chans: int | None = None,
        augment: bool = False,
        crop_padding: int = 4,
        hflip: bool = True,
        mean: Sequence[float] = (0.0,),
        std: Sequence[float] = (1.0,),
    ) -> None:
        if images.dtype != torch.uint8 or images.ndim != 4:
            raise ValueError(f"images must be a uint8 tensor (N, C, H, W), got {images.dtype} {tuple(images.shape)}")
        if len(images) != len(labels):
            raise ValueError(f"{len(images)} images but {len(labels)} labels")
        self.images = images
        self.labels = labels.long()
        self.img_size = img_size or images.shape[-1]
        self.in_chans = in_chans or images.shape[1]
        if self.in_chans != images.shape[1] and images.shape[1] != 1:
            raise ValueError(f"cannot turn {images.shape[1]}-channel images into {self.in_chans} channels")
        self.augment = augment
        self.crop_padding = crop_padding
        self.hflip = hflip
        self.mean = torch.tensor(_per_channel(mean, self.in_chans)).view(-1, 1, 1)
        self.std = torch.tensor(_per_channel(std, self.in_chans)).view(-1, 1, 1)

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.images[index].float().div_(255.0)
        if x.shape[-1] != self.img_size or x.shape[-2] != self.img_size:
            x = F.interpolate(
                x[None], size=(self.img_size, self.img_size), mode="bilinear", align_corners=False, antialias=True
            )[0]
        if x.shape[0] != self.in_chans:
            x = x.expand(self.in_chans, -1, -1)
        if self.augment:
            x = self._augment(x)
        return (x - self.mean) / self.std, self.labels[index]

    def _augment(self, x: torch.Tensor) -> torch.Tensor:
        pad = self.crop_padding
        if pad > 0:
            size = x.shape[-1]
            padded = F.pad(x, (pad, pad, pad, pad))
            top, left = torch.randint(0, 2 * pad + 1, (2,)).tolist()
            x = padded[:, top : top + size, left : left + size]
        if self.hflip and bool(torch.rand(()) < 0.5):
            x = x.flip(-1)
        return x.contiguous()


def _per_channel(values: Sequence[float] | float, channels: int) -> list[float]:
    values = [float(values)] if isinstance(values, (int, float)) else [float(v) for v in values]
    if len(values) == 1:
        return values * channels
    if len(values) != channels:
        raise ValueError(f"{len(values)} normalisation values for {channels} channels")
    return values


def _split(n: int, val_size: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A fixed random (train, val) split of ``range(n)``."""
    if not 0 <= val_size < n:
        raise ValueError(f"val_size={val_size} must be in [0, {n})")
    perm = np.random.default_rng(seed).permutation(n)
    return np.sort(perm[val_size:]), np.sort(perm[:val_size])


class _ArrayDataModule(pl.LightningDataModule):
    """Shared loader logic: ``train_set`` / ``val_set`` / ``test_set`` are ``ArrayImageDataset``s."""

    num_classes: int
    in_chans: int
    img_size: int

    def __init__(
        self,
        *,
        batch_size: int,
        eval_batch_size: int | None,
        num_workers: int,
        pin_memory: bool,
        persistent_workers: bool,
        drop_last: bool,
    ) -> None:
        super().__init__()
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
        if not isinstance(num_workers, int) or num_workers < 0:
            raise ValueError(f"num_workers must be an int >= 0, got {num_workers!r}")
        self.batch_size = batch_size
        self.eval_batch_size = eval_batch_size or batch_size
        self.num_workers = num_workers
        self.pin_memory = pin_memory
        self.persistent_workers = persistent_workers and num_workers > 0
        self.drop_last = drop_last
        self.train_set: ArrayImageDataset | None = None
        self.val_set: ArrayImageDataset | None = None
        self.test_set: ArrayImageDataset | None = None

    def _check_batch_size(self) -> None:
        n = len(self.train_set)
        if self.batch_size > n:
            raise ValueError(
                f"{type(self).__name__}: batch_size={self.batch_size} is larger than the training set "
                f"({n} samples); lower data.batch_size"
            )

    def _loader(self, dataset: Dataset, *, train: bool) -> DataLoader:
        return DataLoader(
            dataset,
            batch_size=self.batch_size if train else self.eval_batch_size,
            shuffle=train,
            num_workers=self.num_workers,
            pin_memory=self.pin_memory,
            persistent_workers=self.persistent_workers,
            drop_last=self.drop_last and train,
        )

    def train_dataloader(self) -> DataLoader:
        return self._loader(self.train_set, train=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader(self.val_set, train=False)

    def test_dataloader(self) -> DataLoader:
        return self._loader(self.test_set, train=False)

    @property
    def sizes(self) -> dict[str, int]:
        """Number of samples per split (after ``setup``)."""
        return {
            name: len(ds)
            for name, ds in (("train", self.train_set), ("val", self.val_set), ("test", self.test_set))
            if ds is not None
        }


class DigitsDataModule(_ArrayDataModule):
    """scikit-learn's digits (8x8 grayscale, 1797 images, 10 classes), embedded: no download, seconds to train on.

    Args:
        batch_size: training batch size. ``eval_batch_size``: for val/test (default: ``batch_size``).
        img_size: side length after resizing (8 = native; 16 or 32 suit ViTs with patch size 4).
        in_chans: 1 (grayscale) or 3 (the channel repeated, for networks built for RGB).
        val_size, test_size: fixed split sizes (default 270/270, leaving 1257 for training), drawn with
            ``split_seed``.
        augment: random crop (padding ``crop_padding`` pixels, at the final size) during training; no flips
            (digits are not mirror-symmetric).
        normalize: subtract the training-set mean and divide by its std.
    """

    name = "digits"
    num_classes = 10

    def __init__(
        self,
        batch_size: int = 64,
        img_size: int = 16,
        in_chans: int = 1,
        *,
        val_size: int = 270,
        test_size: int = 270,
        split_seed: int = 0,
        augment: bool = False,
        crop_padding: int = 2,
        normalize: bool = True,
        eval_batch_size: int | None = None,
        num_workers: int = 0,
        pin_memory: bool = False,
        persistent_workers: bool = False,
        drop_last: bool = False,
    ) -> None:
        super().__init__(
            batch_size=batch_size,
            eval_batch_size=eval_batch_size,
            num_workers=num_workers,
            pin_memory=pin_memory,
            persistent_workers=persistent_workers,
            drop_last=drop_last,
        )
        if in_chans not in (1, 3):
            raise ValueError(f"in_chans must be 1 or 3, got {in_chans!r}")
        if not isinstance(img_size, int) or img_size < 8:
            raise ValueError(f"img_size must be an int >= 8 (digits are 8x8), got {img_size!r}")
        self.save_hyperparameters()
        self.img_size = img_size
        self.in_chans = in_chans
        self.val_size = val_size
        self.test_size = test_size
        self.split_seed = split_seed
        self.augment = augment
        self.crop_padding = crop_padding
        self.normalize = normalize

    def setup(self, stage: str | None = None) -> None:
        if self.train_set is not None:
            return
        from sklearn.datasets import load_digits

        digits = load_digits()
        # 0..16 ink levels -> uint8 0..255 (exact: 16 * 15 + 15 = 255)
        images = torch.from_numpy(np.round(digits.images * (255.0 / 16.0)).astype(np.uint8))[:, None]
        labels = torch.from_numpy(digits.target.astype(np.int64))
        n = len(images)
        if self.val_size + self.test_size >= n:
            raise ValueError(
                f"val_size + test_size = {self.val_size + self.test_size} leaves no training images (digits has {n})"
            )
        perm = np.random.default_rng(self.split_seed).permutation(n)
        test_idx = np.sort(perm[: self.test_size])
        val_idx = np.sort(perm[self.test_size : self.test_size + self.val_size])
        train_idx = np.sort(perm[self.test_size + self.val_size :])
        mean, std = (DIGITS_MEAN, DIGITS_STD) if self.normalize else (0.0, 1.0)
        common = dict(img_size=self.img_size, in_chans=self.in_chans, mean=(mean,), std=(std,))
        self.train_set = ArrayImageDataset(
            images[train_idx],
            labels[train_idx],
            augment=self.augment,
            crop_padding=self.crop_padding,
            hflip=False,
            **common,
        )
        self.val_set = ArrayImageDataset(images[val_idx], labels[val_idx], **common)
        self.test_set = ArrayImageDataset(images[test_idx], labels[test_idx], **common)
        self._check_batch_size()


class CIFARDataModule(_ArrayDataModule):
    """CIFAR-10 or CIFAR-100, from a local folder of ``.npz`` files or from torchvision.

    Sources (``npz_dir`` wins when both are set):
      - ``npz_dir``: a folder with ``<name>_train*.npz`` (concatenated in sorted order) and optionally
        ``<name>_test*.npz``; each file holds ``x`` (uint8, N x 32 x 32 x 3) and ``y`` (int labels). Without a test
        file, ``test_size`` images of the training files are held out as the test split. This is the layout of
        ``../shared/data/images`` (``cifar10_train_part0.npz``, ``cifar10_train_part1.npz``, ``cifar10_test_2k.npz``).
      - ``data_dir``: torchvision's CIFAR folder (default :func:`default_cache_dir`), downloaded when missing and
        ``download`` is true.

    Args:
        name: ``"cifar10"`` or ``"cifar100"``.
        val_size: images held out of the training set for validation (fixed by ``split_seed``). The training
            files may be sorted by class; the split is a random permutation, and the train loader shuffles.
        limit_train: keep only this many training images (random subset, after the val split), for quick runs.
        augment: random crop (``crop_padding``) + horizontal flip on the training split.
        img_size: resize (bilinear) when different from 32. ``in_chans`` is always 3.
    """

    def __init__(
        self,
        name: str = "cifar10",
        batch_size: int = 64,
        img_size: int = 32,
        *,
        npz_dir: str | None = None,
        data_dir: str | None = None,
        download: bool = True,
        val_size: int = 1000,
        test_size: int = 2000,
        limit_train: int | None = None,
        split_seed: int = 0,
        augment: bool = True,
        crop_padding: int = 4,
        hflip: bool = True,
        normalize: bool = True,
        eval_batch_size: int | None = None,
        num_workers: int = 0,
        pin_memory: bool = False,
        persistent_workers: bool = False,
        drop_last: bool = False,
    ) -> None:
        super().__init__(
            batch_size=batch_size,
            eval_batch_size=eval_batch_size,
            num_workers=num_workers,
            pin_memory=pin_memory,
            persistent_workers=persistent_workers,
            drop_last=drop_last,
        )
        if name not in ("cifar10", "cifar100"):
            raise ValueError(f"name must be 'cifar10' or 'cifar100', got {name!r}")
        if not isinstance(img_size, int) or img_size < 8:
            raise ValueError(f"img_size must be an int >= 8, got {img_size!r}")
        self.save_hyperparameters()
        self.name = name
        self.num_classes = 10 if name == "cifar10" else 100
        self.in_chans = 3
        self.img_size = img_size
        self.npz_dir = npz_dir
        self.data_dir = data_dir
        self.download = download
        self.val_size = val_size
        self.test_size = test_size
        self.limit_train = limit_train
        self.split_seed = split_seed
        self.augment = augment
        self.crop_padding = crop_padding
        self.hflip = hflip
        self.normalize = normalize
        # Fail at construction (the start of a job), not after minutes of work.
        if npz_dir is not None:
            self._npz_files()

    # ---- sources
    def _npz_files(self) -> tuple[list[Path], list[Path]]:
        folder = Path(os.path.expanduser(str(self.npz_dir)))
        if not folder.is_dir():
            raise FileNotFoundError(
                f"{self.name}: local data folder npz_dir={str(folder)!r} does not exist; point "
                f"data.npz_dir at a folder holding {self.name}_train*.npz (or set "
                "LSWAG_DATA_DIR), or set data.npz_dir=null to use torchvision"
            )
        train = sorted(folder.glob(f"{self.name}_train*.npz"))
        test = sorted(folder.glob(f"{self.name}_test*.npz"))
        if not train:
            raise FileNotFoundError(
                f"{self.name}: no {self.name}_train*.npz file in {folder} "
                f"(found: {sorted(p.name for p in folder.glob('*.npz'))})"
            )
        return train, test

    def _torchvision_root(self) -> Path:
        return Path(os.path.expanduser(str(self.data_dir))) if self.data_dir else default_cache_dir() / "torchvision"

    def _torchvision(self, train: bool) -> tuple[np.ndarray, np.ndarray]:
        from torchvision import datasets

        cls = datasets.CIFAR10 if self.name == "cifar10" else datasets.CIFAR100
        root = self._torchvision_root()
        try:
            ds = cls(str(root), train=train, download=False)
        except RuntimeError:
            if not self.download:
                raise FileNotFoundError(
                    f"{self.name} not found under {root} and data.download=false; set "
                    "data.data_dir to a torchvision CIFAR folder or data.npz_dir to .npz files"
                ) from None
            try:
                ds = cls(str(root), train=train, download=True)
            except Exception as err:
                raise RuntimeError(
                    f"{self.name}: download to {root} failed ({type(err).__name__}: {err}); "
                    "without network access point data.npz_dir at a folder of .npz files"
                ) from err
        return np.asarray(ds.data, dtype=np.uint8), np.asarray(ds.targets, dtype=np.int64)

    def prepare_data(self) -> None:
        if self.npz_dir is None:  # download once, on one process
            self._torchvision(train=True)
            self._torchvision(train=False)

    def setup(self, stage: str | None = None) -> None:
        if self.train_set is not None:
            return
        if self.npz_dir is not None:
            train_files, test_files = self._npz_files()
            x, y = read_image_npz(train_files)
            if test_files:
                x_test, y_test = read_image_npz(test_files)
            else:
                keep, held = _split(len(x), self.test_size, self.split_seed + 1)
                x_test, y_test, x, y = x[held], y[held], x[keep], y[keep]
        else:
            x, y = self._torchvision(train=True)
            x_test, y_test = self._torchvision(train=False)
        if y.max(initial=0) >= self.num_classes:
            raise ValueError(f"{self.name}: labels up to {int(y.max())} for {self.num_classes} classes")
        train_idx, val_idx = _split(len(x), self.val_size, self.split_seed)
        if self.limit_train is not None:
            rng = np.random.default_rng(self.split_seed + 2)
            train_idx = np.sort(rng.permutation(train_idx)[: self.limit_train])
        images = torch.from_numpy(x).permute(0, 3, 1, 2).contiguous()
        labels = torch.from_numpy(y)
        test_images = torch.from_numpy(x_test).permute(0, 3, 1, 2).contiguous()
        mean, std = (
            ((CIFAR10_MEAN, CIFAR10_STD) if self.name == "cifar10" else (CIFAR100_MEAN, CIFAR100_STD))
            if self.normalize
            else ((0.0,), (1.0,))
        )
        common = dict(img_size=self.img_size, in_chans=3, mean=mean, std=std)
        self.train_set = ArrayImageDataset(
            images[train_idx],
            labels[train_idx],
            augment=self.augment,
            crop_padding=self.crop_padding,
            hflip=self.hflip,
            **common,
        )
        self.val_set = ArrayImageDataset(images[val_idx], labels[val_idx], **common)
        self.test_set = ArrayImageDataset(test_images, torch.from_numpy(y_test), **common)
        self._check_batch_size()
        log.info(
            "%s: %s images (source: %s)",
            self.name,
            self.sizes,
            self.npz_dir if self.npz_dir is not None else self._torchvision_root(),
        )


def get_datamodule(name: str, **options) -> pl.LightningDataModule:
    """A data module by name: ``digits``, ``cifar10`` or ``cifar100``."""
    if name == "digits":
        return DigitsDataModule(**options)
    if name in ("cifar10", "cifar100"):
        return CIFARDataModule(name=name, **options)
    raise ValueError(f"unknown dataset {name!r}; choose digits, cifar10 or cifar100")


__all__ = ["ArrayImageDataset", "CIFARDataModule", "DigitsDataModule", "default_cache_dir", "get_datamodule"]
