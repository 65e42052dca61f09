"""The markdown + PNG report writer."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from lswag_lightning.analysis import table as table_mod
from lswag_lightning.analysis.libra import evaluate
from lswag_lightning.analysis.report import _x_scale, write_report


@pytest.fixture(autouse=True)
def _no_registry(monkeypatch):
    monkeypatch.setattr(table_mod, "registry_higher_is_better", lambda name: None)


def _table(n: int = 80) -> pd.DataFrame:
    rng = np.random.default_rng(1)
    u, v = rng.normal(size=(2, n))
    return pd.DataFrame(
        {
            "arch": [f"net{i}" for i in range(n)],
            "space": "toy",
            "params": 1e6 * np.exp(u + v),
            "lswag": np.exp(3 * u + 0.3 * rng.normal(size=n)),  # positive, > 3 decades -> log axis
            "zico": u + 0.5 * rng.normal(size=n),
            "latency": -u + rng.normal(size=n),
            "top1": 70 + 5 * u,
        }
    )


def test_write_report_files_and_markdown(tmp_path):
    t = _table()
    out = tmp_path / "rep"
    path = write_report(
        t,
        out,
        accuracy="top1",
        params="params",
        title="Toy report",
        protocol_lines=["80 toy nets", "batch 64"],
        n_boot=100,
        higher_is_better={"latency": False},
        libra_options={"n_splits": 3, "window": 0.3},
    )
    assert path == out / "report.md"
    for name in (
        "report.md",
        "correlations.csv",
        "libra.json",
        "spearman_bars.png",
        "libra_fused.png",
        "scatter_params.png",
        "scatter_lswag.png",
        "scatter_zico.png",
        "scatter_latency.png",
    ):
        assert (out / name).is_file() and (out / name).stat().st_size > 0, name
    md = path.read_text()
    assert md.startswith("# Toy report")
    assert "- 80 toy nets" in md and "- batch 64" in md
    for proxy in ("params", "lswag", "zico", "latency"):
        assert f"| {proxy} | 80 | " in md
    assert "Lower-is-better proxies (negated before ranking): latency." in md
    assert "ASSUMED higher-is-better" in md and "lswag" in md
    assert "### Held-out evaluation" in md and "selection-set" in md and "AZ-NAS" in md
    libra = json.loads((out / "libra.json").read_text())
    assert 1 <= len(libra["selection"]["proxies"]) <= 3 and libra["n_splits"] == 3


def test_write_report_with_precomputed_libra_or_without(tmp_path):
    t = _table()
    ev = evaluate(t, ["lswag", "zico", "params"], "top1", "params", n_splits=2, window=0.3)
    md = write_report(
        t, tmp_path / "a", accuracy="top1", proxies=["lswag", "zico", "params"], libra=ev, n_boot=0
    ).read_text()
    assert f"**{', '.join(ev.selection.proxies)}**" in md
    md = write_report(t, tmp_path / "b", accuracy="top1", proxies=["zico"], libra=False, n_boot=0).read_text()
    assert "LIBRA not run." in md and not (tmp_path / "b" / "libra_fused.png").exists()
    with pytest.raises(ValueError, match="'nope'"):
        write_report(t, tmp_path / "c", accuracy="nope")


def test_x_scale_rule():
    assert _x_scale(np.array([1.0, 10.0, 1e5]))[0] == "log"
    assert _x_scale(np.array([1.0, 10.0, 100.0]))[0] == "linear"
    assert _x_scale(np.array([-1e5, -1.0, 1.0, 2.0]))[0] == "symlog"
    assert _x_scale(np.array([-3.0, 1.0]))[0] == "linear"
    # non-negative with zeros and > 3 decades among the positive values: symlog, linear below the smallest positive
    assert _x_scale(np.array([0.0, 0.0, 1e3, 1e5, 7e8])) == ("symlog", {"linthresh": 1e3})
    assert _x_scale(np.array([0.0, 1.0, 50.0]))[0] == "linear"
