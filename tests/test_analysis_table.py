"""Result-table loading, validation, default proxy columns and orientation."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from lswag_lightning.analysis import table as table_mod
from lswag_lightning.analysis.table import default_proxy_columns, load_table, orient, oriented_values, validate_table

_REAL_REGISTRY_LOOKUP = table_mod.registry_higher_is_better
FAKE_REGISTRY = {"lswag": True, "params": True, "latency_ms": False}


@pytest.fixture(autouse=True)
def _fake_registry(monkeypatch):
    """Orientation comes from a fake registry, so these tests do not depend on the proxy engine."""
    monkeypatch.setattr(table_mod, "registry_higher_is_better", lambda name: FAKE_REGISTRY.get(name.split(".", 1)[0]))


def _table() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "arch": ["a", "b", "c"],
            "space": ["s"] * 3,
            "params": [1e5, 2e5, 3e5],
            "lswag": [1.0, 2.0, 3.0],
            "lswag.psi": [4.0, 5.0, 6.0],
            "fisher": [0.1, 0.3, 0.2],
            "cifar10_test_acc": [90.0, 91.0, 92.0],
            "nb201_index": [5, 6, 7],
            "lswag.time": [0.1, 0.1, 0.1],
        }
    )


@pytest.mark.parametrize("fmt", ["csv", "parquet", "json", "jsonl"])
def test_load_table_formats_round_trip(tmp_path, fmt):
    df = _table()
    path = tmp_path / f"t.{fmt}"
    if fmt == "csv":
        df.to_csv(path, index=False)
    elif fmt == "parquet":
        df.to_parquet(path, index=False)
    elif fmt == "json":
        path.write_text(json.dumps(df.to_dict(orient="records")))
    else:
        df.to_json(path, orient="records", lines=True)
    loaded = load_table(path)
    pd.testing.assert_frame_equal(loaded[df.columns], df, check_dtype=False)


def test_load_table_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="not found"):
        load_table(tmp_path / "missing.csv")
    bad = tmp_path / "t.json"
    bad.write_text(json.dumps({"a": 1}))
    with pytest.raises(ValueError, match="list of records"):
        load_table(bad)
    with pytest.raises(ValueError, match="unsupported"):
        (tmp_path / "t.xlsx").write_text("x")
        load_table(tmp_path / "t.xlsx")


def test_validate_names_missing_column_and_columns_present():
    with pytest.raises(ValueError) as err:
        validate_table(_table(), ["lswag", "zico"])
    assert "'zico'" in str(err.value) and "columns present" in str(err.value) and "lswag.psi" in str(err.value)
    with pytest.raises(ValueError, match="not numeric"):
        validate_table(_table(), ["arch"])
    validate_table(_table(), ["lswag", "params"])


def test_default_proxy_columns_skip_ids_accuracies_and_times():
    cols = default_proxy_columns(_table(), "cifar10_test_acc")
    assert cols == ["params", "lswag", "lswag.psi", "fisher"]
    with_row = _table().assign(gt_row=range(len(_table())))  # lswag-bench's row in the ground-truth file
    assert default_proxy_columns(with_row, "cifar10_test_acc") == cols
    # lswag-collect's table: the job number is numeric when Hydra numbers the jobs, and is no proxy
    sweep = _table().assign(job=range(len(_table())), candidate_index=range(len(_table())), epochs=3)
    assert default_proxy_columns(sweep, "cifar10_test_acc") == cols


def test_orientation_override_registry_and_assumed():
    o = orient(["lswag", "lswag.psi", "latency_ms", "fisher", "params"], {"params": False})
    assert o.higher_is_better == {
        "lswag": True,
        "lswag.psi": True,
        "latency_ms": False,
        "fisher": True,
        "params": False,
    }
    assert o.source["params"] == "override" and o.source["lswag.psi"] == "registry"
    assert o.assumed == ["fisher"]
    assert sorted(o.flipped) == ["latency_ms", "params"]
    np.testing.assert_array_equal(oriented_values(_table(), "params", o), [-1e5, -2e5, -3e5])


def test_registry_failure_means_unknown(monkeypatch):
    """If the registry cannot load its proxy modules, names are unknown (None), not an import crash."""
    from lswag_lightning.proxies import registry

    def broken(name):
        raise ImportError("proxy modules not importable")

    monkeypatch.setattr(registry, "higher_is_better", broken)
    assert _REAL_REGISTRY_LOOKUP("lswag") is None
