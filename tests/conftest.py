"""Shared fixtures. Tests that need ../shared/data skip without it, unless LSWAG_REQUIRE_SHARED_DATA=1 (CI)."""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

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


def load_recipe(relative_path: str):
    """Import a script under recipes/ (e.g. ``"search/nb201_search_eval.py"``) as a module, for testing its pieces."""
    path = Path(__file__).resolve().parents[1] / "recipes" / relative_path
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module
