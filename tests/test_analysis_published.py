"""The published NAS-Bench-Suite-Zero tables (../shared/data): loaders, reference correlations, LIBRA runs."""

from __future__ import annotations

import math

import numpy as np
import pytest

from lswag_lightning.analysis.correlations import correlation_table
from lswag_lightning.analysis.libra import evaluate
from lswag_lightning.analysis.published import flatten_naslib_json, load_published

# Spearman(nwot, val_accuracy) listed in shared/data/README.md §3
README_NWOT = {"cifar10": 0.787, "cifar100": 0.814, "ImageNet16-120": 0.795}


@pytest.mark.parametrize("task", list(README_NWOT))
def test_nb201_nwot_matches_the_data_readme(shared_data_dir, task):
    pt = load_published("nb201", task, data_dir=shared_data_dir)
    t = pt.table
    assert len(t) in (724, 725) and set(t["task"]) == {task} and t["arch"].str.startswith("|").all()
    assert len(pt.proxies) == 12 and pt.higher_is_better == {p: True for p in pt.proxies}
    assert t["params"].between(1e4, 2e6).all()  # a count, converted from NASLib's millions
    ct = correlation_table(t, pt.proxies, pt.accuracy, higher_is_better=pt.higher_is_better, n_boot=0).set_index(
        "proxy"
    )
    assert ct.loc["nwot", "spearman"] == pytest.approx(README_NWOT[task], abs=0.005)
    assert ct.loc["nwot", "n_excluded"] == 1 and "-inf" in ct.loc["nwot", "excluded"]
    ranked = correlation_table(
        t, ["nwot"], pt.accuracy, n_boot=0, nonfinite="rank", higher_is_better=pt.higher_is_better
    )
    assert round(ranked["spearman"][0], 3) == README_NWOT[task]  # the README kept the -inf row as the lowest

    ev = evaluate(t, pt.proxies, pt.accuracy, pt.params, n_splits=4, higher_is_better=pt.higher_is_better)
    assert len(ev.selection.proxies) == 3
    assert all(math.isfinite(r) for r in ev.heldout["libra"])
    assert ev.summary()["libra"]["mean"] > 0.6


@pytest.mark.parametrize(
    "benchmark, task, n_rows",
    [
        ("nb101", None, 500),
        ("nb301", None, 725),
        ("tnb101_micro", "class_scene", 711),
        ("tnb101_macro", "autoencoder", 725),
    ],
)
def test_naslib_json_tables(shared_data_dir, benchmark, task, n_rows):
    pt = load_published(benchmark, task, data_dir=shared_data_dir)
    t = pt.table
    assert len(t) == n_rows and t["arch"].is_unique
    assert {"val_accuracy", "params", "flops", "nwot" if benchmark != "nb101" else "jacov"} <= set(t.columns)
    assert np.isfinite(t["val_accuracy"]).all()
    assert (t["params"] >= 1e3).all()
    ev = evaluate(t, pt.proxies, pt.accuracy, pt.params, n_splits=2, higher_is_better=pt.higher_is_better)
    assert 1 <= len(ev.selection.proxies) <= 3


def test_flatten_handles_scores_plain_floats_and_nesting():
    data = {
        "space": {
            "cifar10": {
                "(0, 1)": {"val_accuracy": 90.0, "nwot": {"score": 3.0, "time": 0.5}, "params": 1.5},
                "(1, 0)": {"val_accuracy": 80.0, "nwot": {"score": 2.0, "time": 0.4}, "params": 0.5},
            }
        }
    }
    task, df = flatten_naslib_json(data)
    assert task == "cifar10"
    assert list(df["arch"]) == ["(0, 1)", "(1, 0)"]
    assert list(df["nwot"]) == [3.0, 2.0] and list(df["nwot.time"]) == [0.5, 0.4] and list(df["params"]) == [1.5, 0.5]
    with pytest.raises(ValueError, match="not in the JSON"):
        flatten_naslib_json(data, "cifar100")
