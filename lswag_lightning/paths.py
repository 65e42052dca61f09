"""Locating the public ground-truth data folder (NAS-Bench-201 tables, AutoFormer accuracies, CIFAR-10 images).

The data are never copied into the project. They are read at run time from, in order of precedence:
an explicit path argument, the ``LSWAG_DATA_DIR`` environment variable, or ``../shared/data`` next to the
source checkout (the layout of this project's development machines and CI).
"""

from __future__ import annotations

import os
from pathlib import Path

DATA_DIR_ENV = "LSWAG_DATA_DIR"
_CHECKOUT_ROOT = Path(__file__).resolve().parent.parent


def default_data_dir() -> Path:
    """The data folder used when no path is given: ``$LSWAG_DATA_DIR`` or ``<checkout>/../shared/data``."""
    env = os.environ.get(DATA_DIR_ENV)
    if env:
        return Path(env).expanduser()
    return _CHECKOUT_ROOT.parent / "shared" / "data"


def resolve_data_dir(data_dir: str | os.PathLike | None = None, *, must_contain: str | None = None) -> Path:
    """Return the ground-truth data folder, checking that it (and ``must_contain`` inside it) exists.

    Raises ``FileNotFoundError`` naming the folder that was tried and how to point at another one.
    """
    path = Path(data_dir).expanduser() if data_dir is not None else default_data_dir()
    target = path / must_contain if must_contain else path
    if not target.exists():
        raise FileNotFoundError(
            f"ground-truth data not found at {target}. Pass --data-dir (or data_dir=...) or set "
            f"{DATA_DIR_ENV} to the folder that holds nb201/, vit/ and images/ (e.g. ../shared/data)."
        )
    return path
