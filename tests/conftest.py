"""Shared fixtures. Tests that need ../shared/data skip without it, unless LSWAG_REQUIRE_SHARED_DATA=1 (CI)."""

from __future__ import annotations

import os

import pytest
import torch

from lswag_lightning.paths import default_data_dir

REQUIRE_SHARED_DATA = os.environ.get("LSWAG_REQUIRE_SHARED_DATA", "") == "1"


@pytest.fixture(scope="session")
def shared_data_dir():
    """The ground-truth data folder; skips (or fails under LSWAG_REQUIRE_SHARED_DATA=1) when it is absent."""
    path = default_data_dir()
    if not (path / "nb201").is_dir():
        message = (
            f"shared ground-truth data not found at {path}; set LSWAG_DATA_DIR to the folder "
            "holding nb201/, vit/ and images/"
        )
        if REQUIRE_SHARED_DATA:
            pytest.fail(message + " (LSWAG_REQUIRE_SHARED_DATA=1 makes this an error)")
        pytest.skip(message)
    return path


@pytest.fixture(autouse=True)
def _seed_everything():
    torch.manual_seed(0)
    yield
