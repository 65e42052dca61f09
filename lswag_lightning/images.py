"""Image files and statistics shared by the data modules, the search probe and the benchmark probe.

Imports only numpy, so it serves code that must not pull in Lightning (search, bench).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

#: Channel mean and std of the CIFAR training sets, pixels scaled to [0, 1].
CIFAR10_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR10_STD = (0.2470, 0.2435, 0.2616)
CIFAR100_MEAN = (0.5071, 0.4865, 0.4409)
CIFAR100_STD = (0.2673, 0.2564, 0.2762)


def read_image_npz(files: Sequence[Path]) -> tuple[np.ndarray, np.ndarray]:
    """Concatenate ``.npz`` files holding ``x`` (uint8 images, N×H×W×3) and ``y`` (labels).

    Returns (images uint8 (N, H, W, 3), labels int64 (N,)) in file order. A file without ``x``/``y`` or with
    images that are not NHWC RGB is a ``ValueError`` naming it.
    """
    xs, ys = [], []
    for path in files:
        with np.load(path) as data:
            if "x" not in data or "y" not in data:
                raise ValueError(f"{path} must hold arrays 'x' (uint8 NHWC) and 'y' (labels), has {data.files}")
            xs.append(np.asarray(data["x"], dtype=np.uint8))
            ys.append(np.asarray(data["y"], dtype=np.int64))
    x, y = np.concatenate(xs), np.concatenate(ys)
    if x.ndim != 4 or x.shape[-1] != 3:
        raise ValueError(f"expected NHWC RGB images in {[Path(p).name for p in files]}, got shape {x.shape}")
    return x, y
