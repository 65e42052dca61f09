"""The search's probe batch: the ``search`` protocol of :func:`lswag_lightning.probe.probe_batch`, its description
for reports and checkpoints, and its content hash for cache keys.

``load_probe_batch(name, batch_size, img_size, in_chans, seed, data_dir)`` keeps the search's argument order:
``name`` is ``digits`` or ``cifar10_npz`` (see :mod:`lswag_lightning.probe` for what each draws).
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import torch

from lswag_lightning.probe import probe_batch


def load_probe_batch(
    name: str = "cifar10_npz",
    batch_size: int = 64,
    img_size: int = 32,
    in_chans: int = 3,
    seed: int = 0,
    data_dir: str | os.PathLike | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """``probe_batch("search", data=name, ...)``: images (B, C, S, S) float32 and labels (B,) int64."""
    return probe_batch(
        "search", data=name, batch_size=batch_size, img_size=img_size, in_chans=in_chans, seed=seed, data_dir=data_dir
    )


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
    """A JSON-ready description of the probe batch arguments (for reports and checkpoints)."""
    return {
        "data": name,
        "batch_size": batch_size,
        "img_size": img_size,
        "in_chans": in_chans,
        "seed": seed,
        "data_dir": None if data_dir is None else str(Path(data_dir)),
    }
