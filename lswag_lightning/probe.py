"""The probe batch: the one fixed batch of real images and labels that every architecture is scored on.

:func:`probe_batch` draws it under a named protocol. The protocols read the same shared CIFAR-10 training images
(``<data_dir>/images/cifar10_train_part{0,1}.npz``, 5,000 JPEG-decoded images each, sorted by class; see
:mod:`lswag_lightning.paths`) but draw different images, so a number is only reproduced with its own protocol:

- ``bench`` (``lswag-bench``, ``lswag-layers``): ``batch_size`` images of ``cifar10_train_part0.npz`` taken in
  the order of ``numpy.random.default_rng(seed).permutation(5000)``, bilinear resize (no antialiasing) when
  ``img_size`` != 32, normalised with :data:`~lswag_lightning.images.CIFAR10_MEAN` / ``CIFAR10_STD``. The benchmark
  tables of ``docs/results/`` (``lswag-bench nb201|nb101|nb301|autoformer_ti``) depend on it.
- ``search`` (``lswag-search``, ``lswag-search-eval``, ``lswag-bench --probe-protocol search``):
  ``data="cifar10_npz"`` draws from all 10,000 images of ``cifar10_train*.npz`` with ``default_rng(seed).choice(n,
  batch_size, replace=False)``, in the drawn order, antialiased bilinear resize when shrinking, the same
  normalisation; ``data="digits"`` draws scikit-learn's 8x8 digits the same way (scaled to [0, 1], repeated to
  ``in_chans`` channels, normalised with the mean/std of all digits). ``lswag-search``'s rankings, the search
  evaluation's tables and ``results/nb201_*.parquet`` depend on it.
- ``naslib`` (``lswag-bench nb201 --vs-published``, NAS-Bench-Suite-Zero's protocol): images of both files in
  the order of ``default_rng(seed).permutation(10000)``, then, from the same generator, NASLib's training
  augmentation (4-pixel zero-padded random 32x32 crop, random horizontal flip; ``augment=False`` skips it) and
  NASLib's more precise CIFAR-10 mean/std; 32 px only, batch 32 in that recipe. Its agreement with the
  published NB201 proxy values (:mod:`lswag_lightning.bench.published_check`) depends on it.

The images come in the drawn, random order: the files are sorted by class and Λ splits the batch into contiguous
parts. Labels are int64 class indices 0..9. :func:`probe_fingerprint` hashes a batch's content (score-cache keys),
:func:`describe_probe` describes the ``search`` protocol's arguments (reports, checkpoints). Only numpy, torch and
:mod:`lswag_lightning.images` are imported at module level (scikit-learn for ``digits``).
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from lswag_lightning.images import CIFAR10_MEAN, CIFAR10_STD, read_image_npz
from lswag_lightning.paths import resolve_data_dir

PROTOCOLS = ("bench", "search", "naslib")
#: the ``search`` protocol's datasets
PROBE_DATASETS = ("digits", "cifar10_npz")
NUM_CLASSES = 10
#: the ``bench`` protocol's image file
PROBE_FILE = "images/cifar10_train_part0.npz"
#: the ``naslib`` protocol's image files, its CIFAR-10 mean/std (NASLib's ``_data_transforms_cifar10``) and padding
NASLIB_FILES = ("images/cifar10_train_part0.npz", "images/cifar10_train_part1.npz")
NASLIB_MEAN = (0.49139968, 0.48215827, 0.44653124)
NASLIB_STD = (0.24703233, 0.24348505, 0.26158768)
CROP_PADDING = 4


def probe_batch(
    protocol: str,
    *,
    batch_size: int = 64,
    seed: int = 0,
    img_size: int = 32,
    data_dir: str | os.PathLike | None = None,
    data: str = "cifar10_npz",
    in_chans: int = 3,
    augment: bool = True,
) -> tuple[torch.Tensor, torch.Tensor]:
    """One reproducible probe batch ``(images (B, C, S, S) float32, labels (B,) int64)`` under ``protocol``
    (``bench``, ``search`` or ``naslib``; see the module docstring). ``data`` and ``in_chans`` apply to
    ``search``, ``augment`` to ``naslib``; the same arguments always give the same batch."""
    if protocol not in PROTOCOLS:
        raise ValueError(f"unknown probe protocol {protocol!r}; use one of {', '.join(PROTOCOLS)}")
    if protocol == "search":
        return _search_batch(data, batch_size, img_size, in_chans, seed, data_dir)
    _check_sizes(batch_size, img_size)
    if protocol == "bench":
        return _bench_batch(data_dir, batch_size, seed, img_size)
    if img_size != 32:
        raise ValueError(f"the naslib protocol scores 32x32 images, got img_size={img_size!r}")
    return _naslib_batch(data_dir, batch_size, seed, augment)


def _check_sizes(batch_size: int, img_size: int) -> None:
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 2:
        raise ValueError(f"batch_size must be an int >= 2 (Λ splits the batch in halves), got {batch_size!r}")
    if isinstance(img_size, bool) or not isinstance(img_size, int) or img_size < 4:
        raise ValueError(f"img_size must be an int >= 4, got {img_size!r}")


def _bench_batch(
    data_dir: str | os.PathLike | None, batch_size: int, seed: int, img_size: int
) -> tuple[torch.Tensor, torch.Tensor]:
    root = resolve_data_dir(data_dir, must_contain=PROBE_FILE)
    images, labels = read_image_npz([root / PROBE_FILE])
    if batch_size > len(labels):
        raise ValueError(f"batch_size={batch_size} exceeds the {len(labels)} probe images in {PROBE_FILE}")
    index = np.random.default_rng(seed).permutation(len(labels))[:batch_size]
    x = torch.from_numpy(np.ascontiguousarray(images[index])).permute(0, 3, 1, 2).to(torch.float32) / 255.0
    if img_size != x.shape[-1]:
        x = F.interpolate(x, size=(img_size, img_size), mode="bilinear", align_corners=False)
    mean = torch.tensor(CIFAR10_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(CIFAR10_STD).view(1, 3, 1, 1)
    return (x - mean) / std, torch.from_numpy(labels[index])


def _search_batch(
    name: str, batch_size: int, img_size: int, in_chans: int, seed: int, data_dir: str | os.PathLike | None
) -> tuple[torch.Tensor, torch.Tensor]:
    if name not in PROBE_DATASETS:
        raise ValueError(f"unknown probe dataset {name!r}; use one of {', '.join(PROBE_DATASETS)}")
    _check_sizes(batch_size, img_size)
    if in_chans not in (1, 3):
        raise ValueError(f"in_chans must be 1 or 3, got {in_chans!r}")
    if name == "cifar10_npz" and in_chans != 3:
        raise ValueError("cifar10_npz images are RGB: the space's in_chans must be 3 (or use --data digits)")
    pool, labels = _digits() if name == "digits" else _cifar10_npz(data_dir)
    if batch_size > len(pool):
        raise ValueError(f"batch_size={batch_size} exceeds the {len(pool)} images of {name}")
    idx = np.random.default_rng(seed).choice(len(pool), size=batch_size, replace=False)
    if name == "digits":
        x = torch.from_numpy(pool[idx])
        mean, std = float(pool.mean()), float(pool.std())
        means, stds = (mean,) * in_chans, (std,) * in_chans
    else:
        x = torch.from_numpy(pool[idx]).permute(0, 3, 1, 2).float().div_(255.0)
        means, stds = CIFAR10_MEAN, CIFAR10_STD
    if x.shape[-1] != img_size:
        x = F.interpolate(
            x, size=(img_size, img_size), mode="bilinear", align_corners=False, antialias=img_size < x.shape[-1]
        )
    if x.shape[1] != in_chans:
        x = x.repeat(1, in_chans, 1, 1)
    m = torch.tensor(means, dtype=torch.float32).view(1, -1, 1, 1)
    s = torch.tensor(stds, dtype=torch.float32).view(1, -1, 1, 1)
    return ((x - m) / s).contiguous(), torch.from_numpy(labels[idx].copy())


def _digits() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = (digits.images / 16.0).astype(np.float32)[:, None]  # (N, 1, 8, 8) in [0, 1]
    return images, digits.target.astype(np.int64)


def _cifar10_npz(data_dir: str | os.PathLike | None) -> tuple[np.ndarray, np.ndarray]:
    folder = resolve_data_dir(data_dir, must_contain="images") / "images"
    files = sorted(folder.glob("cifar10_train*.npz"))
    if not files:
        raise FileNotFoundError(
            f"no cifar10_train*.npz in {folder}; pass --data-dir (the folder holding images/) or use --data digits"
        )
    return read_image_npz(files)


def _naslib_batch(
    data_dir: str | os.PathLike | None, batch_size: int, seed: int, augment: bool
) -> tuple[torch.Tensor, torch.Tensor]:
    root = resolve_data_dir(data_dir, must_contain=NASLIB_FILES[0])
    missing = [name for name in NASLIB_FILES if not (root / name).exists()]
    if missing:
        raise FileNotFoundError(f"{root / missing[0]} is missing; the data README (§7) lists the CIFAR-10 image files")
    images, labels = read_image_npz([root / name for name in NASLIB_FILES])
    if batch_size > len(labels):
        raise ValueError(f"batch_size={batch_size} exceeds the {len(labels)} shared training images")
    rng = np.random.default_rng(seed)
    index = rng.permutation(len(labels))[:batch_size]
    batch = images[index]
    if augment:
        offsets = rng.integers(0, 2 * CROP_PADDING + 1, size=(batch_size, 2))
        flips = rng.random(batch_size) < 0.5
        batch = crop_and_flip(batch, offsets, flips)
    return naslib_normalise(batch), torch.from_numpy(labels[index])


def naslib_normalise(images: np.ndarray) -> torch.Tensor:
    """uint8 (N, H, W, 3) RGB -> float32 (N, 3, H, W): ``(pixel / 255 - NASLIB_MEAN) / NASLIB_STD`` per channel."""
    if images.dtype != np.uint8 or images.ndim != 4 or images.shape[-1] != 3:
        raise ValueError(f"expected uint8 RGB images (N, H, W, 3), got {images.dtype} {images.shape}")
    x = torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).to(torch.float32) / 255.0
    mean = torch.tensor(NASLIB_MEAN, dtype=torch.float32)[:, None, None]
    std = torch.tensor(NASLIB_STD, dtype=torch.float32)[:, None, None]
    return (x - mean) / std


def crop_and_flip(
    images: np.ndarray, offsets: np.ndarray, flips: np.ndarray, padding: int = CROP_PADDING
) -> np.ndarray:
    """NASLib's training augmentation with given randomness, on uint8 (N, H, W, C) images.

    Each image is zero-padded by ``padding`` pixels on every side and cropped back to H x W at ``offsets[i] =
    (top, left)`` in 0..2*padding (torchvision ``RandomCrop(H, padding)``), then mirrored left-right where
    ``flips[i]`` is true (``RandomHorizontalFlip``). Offsets (padding, padding) and no flip return the input.
    """
    n, h, w, _ = images.shape
    offsets, flips = np.asarray(offsets), np.asarray(flips, dtype=bool)
    if offsets.shape != (n, 2) or flips.shape != (n,):
        raise ValueError(
            f"need offsets of shape ({n}, 2) and flips of shape ({n},), got {offsets.shape} and {flips.shape}"
        )
    if offsets.min(initial=0) < 0 or offsets.max(initial=0) > 2 * padding:
        raise ValueError(f"crop offsets must lie in 0..{2 * padding}")
    padded = np.pad(images, ((0, 0), (padding, padding), (padding, padding), (0, 0)))
    out = np.stack([padded[i, top : top + h, left : left + w] for i, (top, left) in enumerate(offsets)])
    out[flips] = out[flips, :, ::-1]
    return out


def probe_fingerprint(images: torch.Tensor, labels: torch.Tensor) -> str:
    """A short content hash of a probe batch (sha1 of its bytes, shape and dtype), for cache keys."""
    h = hashlib.sha1()
    for t in (images, labels):
        t = t.detach().cpu().contiguous()
        h.update(str((tuple(t.shape), str(t.dtype))).encode())
        h.update(t.numpy().tobytes())
    return h.hexdigest()[:16]


def describe_probe(
    name: str, batch_size: int, img_size: int, in_chans: int, seed: int, data_dir: str | os.PathLike | None = None
) -> dict:
    """A JSON-ready description of the ``search`` protocol's arguments (``name`` is its ``data``), for reports and
    checkpoints."""
    return {
        "data": name,
        "batch_size": batch_size,
        "img_size": img_size,
        "in_chans": in_chans,
        "seed": seed,
        "data_dir": None if data_dir is None else str(Path(data_dir)),
    }
