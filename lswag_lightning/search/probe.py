"""The probe batch a search scores every architecture on: one fixed batch of real training images and labels.

``load_probe_batch(name, batch_size, img_size, in_chans, seed, data_dir)`` returns ``(images, labels)``:
``images`` float32 ``(batch_size, in_chans, img_size, img_size)``, normalised per channel; ``labels`` int64
``(batch_size,)`` class indices 0..9. The same arguments always give the same batch (the images are drawn
without replacement with ``numpy.random.default_rng(seed)`` and kept in the drawn, random order: the CIFAR files
are sorted by class and Λ splits the batch into contiguous parts), so scores are reproducible and cacheable.

Datasets (both 10 classes, no download):

- ``digits``: scikit-learn's 8x8 digits (1,797 images, ink 0..16), scaled to [0, 1], resized (bilinear,
  antialiased) to ``img_size`` and repeated to ``in_chans`` channels; normalised with the mean/std of all images.
- ``cifar10_npz``: the CIFAR-10 training images in ``<data_dir>/images/cifar10_train*.npz`` (10,000 images of
  the shared data folder, see :mod:`lswag_lightning.paths`), scaled to [0, 1], resized when ``img_size`` != 32,
  normalised with the standard CIFAR-10 channel statistics. Needs ``in_chans`` = 3.

Only numpy, torch and lswag_lightning.images are imported at module level (scikit-learn when ``digits`` is asked
for).
"""
from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from lswag_lightning.images import CIFAR10_MEAN, CIFAR10_STD, read_image_npz

PROBE_DATASETS = ("digits", "cifar10_npz")
NUM_CLASSES = 10


def _check(name: str, batch_size: int, img_size: int, in_chans: int) -> None:
    if name not in PROBE_DATASETS:
        raise ValueError(f"unknown probe dataset {name!r}; use one of {', '.join(PROBE_DATASETS)}")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 2:
        raise ValueError(f"batch_size must be an int >= 2 (Λ splits the batch in halves), got {batch_size!r}")
    if isinstance(img_size, bool) or not isinstance(img_size, int) or img_size < 4:
        raise ValueError(f"img_size must be an int >= 4, got {img_size!r}")
    if in_chans not in (1, 3):
        raise ValueError(f"in_chans must be 1 or 3, got {in_chans!r}")
    if name == "cifar10_npz" and in_chans != 3:
        raise ValueError("cifar10_npz images are RGB: the space's in_chans must be 3 (or use --data digits)")


def _digits() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = (digits.images / 16.0).astype(np.float32)[:, None]  # (N, 1, 8, 8) in [0, 1]
    return images, digits.target.astype(np.int64)


def _cifar10_npz(data_dir: str | os.PathLike | None) -> tuple[np.ndarray, np.ndarray]:
    from lswag_lightning.paths import resolve_data_dir

    folder = resolve_data_dir(data_dir, must_contain="images") / "images"
    files = sorted(folder.glob("cifar10_train*.npz"))
    if not files:
        raise FileNotFoundError(f"no cifar10_train*.npz in {folder}; pass --data-dir (the folder holding images/) "
                                "or use --data digits")
    return read_image_npz(files)


def load_probe_batch(name: str = "cifar10_npz", batch_size: int = 64, img_size: int = 32, in_chans: int = 3,
                     seed: int = 0, data_dir: str | os.PathLike | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """One reproducible probe batch ``(images (B, C, S, S) float32, labels (B,) int64)``; see the module docstring."""
    _check(name, batch_size, img_size, in_chans)
    if name == "digits":
        pool, labels = _digits()
    else:
        pool, labels = _cifar10_npz(data_dir)
    if batch_size > len(pool):
        raise ValueError(f"batch_size={batch_size} exceeds the {len(pool)} images of {name}")
    # Random order, not sorted: the source files are grouped by class and Λ splits the batch into contiguous parts.
    idx = np.random.default_rng(seed).choice(len(pool), size=batch_size, replace=False)
    if name == "digits":
        x = torch.from_numpy(pool[idx])
        mean, std = float(pool.mean()), float(pool.std())
        means, stds = (mean,) * in_chans, (std,) * in_chans
    else:
        x = torch.from_numpy(pool[idx]).permute(0, 3, 1, 2).float().div_(255.0)
        means, stds = CIFAR10_MEAN, CIFAR10_STD
    if x.shape[-1] != img_size:
        x = F.interpolate(x, size=(img_size, img_size), mode="bilinear", align_corners=False,
                          antialias=img_size < x.shape[-1])
    if x.shape[1] != in_chans:
        x = x.repeat(1, in_chans, 1, 1)
    m = torch.tensor(means, dtype=torch.float32).view(1, -1, 1, 1)
    s = torch.tensor(stds, dtype=torch.float32).view(1, -1, 1, 1)
    images = ((x - m) / s).contiguous()
    return images, torch.from_numpy(labels[idx].copy())


def probe_fingerprint(images: torch.Tensor, labels: torch.Tensor) -> str:
    """A short content hash of a probe batch (sha1 of its bytes, shape and dtype), for cache keys."""
    h = hashlib.sha1()
    for t in (images, labels):
        t = t.detach().cpu().contiguous()
        h.update(str((tuple(t.shape), str(t.dtype))).encode())
        h.update(t.numpy().tobytes())
    return h.hexdigest()[:16]


def describe_probe(name: str, batch_size: int, img_size: int, in_chans: int, seed: int,
                   data_dir: str | os.PathLike | None = None) -> dict:
    """A JSON-ready description of the probe batch arguments (for reports and checkpoints)."""
    return {"data": name, "batch_size": batch_size, "img_size": img_size, "in_chans": in_chans, "seed": seed,
            "data_dir": None if data_dir is None else str(Path(data_dir))}
