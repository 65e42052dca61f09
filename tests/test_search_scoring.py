"""Scorers, the score cache and the probe batch."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
import torch

from lswag_lightning.probe import probe_batch, probe_fingerprint
from lswag_lightning.search import (
    FunctionScorer,
    MergedScorer,
    ProxyScorer,
    ScoreCache,
    ScoreResult,
    TableScorer,
)
from lswag_lightning.spaces import get_space

NB201 = get_space("nb201")
TINY = {"num_classes": 10, "img_size": 8, "C": 4, "N": 1}  # a 3-cell NB201 network: milliseconds to score
A1 = "|nor_conv_3x3~0|+|none~0|skip_connect~1|+|avg_pool_3x3~0|nor_conv_1x1~1|none~2|"
A2 = "|nor_conv_1x1~0|+|nor_conv_3x3~0|skip_connect~1|+|nor_conv_3x3~0|skip_connect~1|nor_conv_3x3~2|"


@pytest.fixture(scope="module")
def probe():
    return probe_batch("search", data="digits", batch_size=16, img_size=8, in_chans=3, seed=0)


def scorer(probe, cache=None, **kw):
    images, labels = probe
    return ProxyScorer(
        NB201,
        kw.pop("proxies", ["synflow", "naswot", "params"]),
        images,
        labels,
        build_options=kw.pop("build_options", TINY),
        device="cpu",
        cache=cache,
        **kw,
    )


# -------------------------------------------------------------------------------------------------- probe
def test_digits_probe_is_reproducible_normalised_and_resized():
    x, y = probe_batch("search", data="digits", batch_size=64, img_size=16, in_chans=3, seed=1)
    x2, y2 = probe_batch("search", data="digits", batch_size=64, img_size=16, in_chans=3, seed=1)
    x3, _ = probe_batch("search", data="digits", batch_size=64, img_size=16, in_chans=3, seed=2)
    assert x.shape == (64, 3, 16, 16) and x.dtype == torch.float32 and y.dtype == torch.int64
    assert torch.equal(x, x2) and torch.equal(y, y2) and not torch.equal(x, x3)
    assert torch.equal(x[:, 0], x[:, 2])  # grey repeated to 3 channels
    assert abs(float(x.mean())) < 0.3 and 0.5 < float(x.std()) < 1.5
    assert y.min() >= 0 and y.max() <= 9 and len(set(y.tolist())) > 5


def test_cifar_probe_from_the_shared_images(shared_data_dir):
    x, y = probe_batch(
        "search", data="cifar10_npz", batch_size=32, img_size=32, in_chans=3, seed=0, data_dir=shared_data_dir
    )
    assert x.shape == (32, 3, 32, 32)
    assert list(y[:4]) != sorted(y[:4].tolist()) or len(set(y[:8].tolist())) > 1  # drawn order, not class order
    big, _ = probe_batch(
        "search", data="cifar10_npz", batch_size=4, img_size=64, in_chans=3, seed=0, data_dir=shared_data_dir
    )
    assert big.shape == (4, 3, 64, 64)


def test_probe_errors(tmp_path):
    with pytest.raises(ValueError, match="unknown probe dataset 'imagenet'"):
        probe_batch("search", data="imagenet")
    with pytest.raises(ValueError, match="in_chans must be 3"):
        probe_batch("search", data="cifar10_npz", in_chans=1)
    with pytest.raises(ValueError, match="batch_size must be an int >= 2"):
        probe_batch("search", data="digits", batch_size=1)
    with pytest.raises(FileNotFoundError, match="--data-dir"):
        probe_batch("search", data="cifar10_npz", data_dir=tmp_path)


# --------------------------------------------------------------------------------------------- live scorer
def test_proxy_scorer_gives_each_arch_the_same_weights_in_any_order(probe):
    s1, s2 = scorer(probe), scorer(probe)
    v1 = s1.score(NB201.decode(A1), A1).values
    s1.score(NB201.decode(A2), A2)
    v2a = s2.score(NB201.decode(A2), A2).values
    v2b = s2.score(NB201.decode(A1), A1).values
    assert v1 == v2b
    assert v2a != v1
    assert v1["params"] == NB201.param_count(NB201.decode(A1), **TINY)
    torch.manual_seed(123)
    before = torch.rand(1)
    torch.manual_seed(123)
    s1.score(NB201.decode(A2), A2)
    assert torch.equal(torch.rand(1), before)  # scoring leaves the global RNG alone


def test_cache_hit_returns_the_stored_values_without_scoring(probe, tmp_path):
    first = scorer(probe, cache=ScoreCache(tmp_path / "cache"))
    computed = first.score(NB201.decode(A1), A1)
    assert computed.source == "computed" and first.computed == 1
    second = scorer(probe, cache=ScoreCache(tmp_path / "cache"))  # a new process reading the folder
    hit = second.score(NB201.decode(A1), A1)
    assert hit.source == "cache" and second.computed == 0 and second.hits == 1
    assert hit.values == computed.values
    # a different probe batch or build option is a different key: no reuse
    images, labels = probe
    other = ProxyScorer(
        NB201,
        ["synflow"],
        images.flip(0),
        labels.flip(0),
        build_options=TINY,
        device="cpu",
        cache=ScoreCache(tmp_path / "cache"),
    )
    assert other.key != second.key
    wider = scorer(probe, cache=ScoreCache(tmp_path / "cache"), build_options={**TINY, "C": 8})
    assert wider.key != second.key
    # asking for a proxy the cache lacks scores again
    more = scorer(probe, cache=ScoreCache(tmp_path / "cache"), proxies=["synflow", "flops"])
    assert more.score(NB201.decode(A1), A1).source == "computed"


def test_proxy_scorer_rejects_labels_beyond_the_classifier(probe):
    images, labels = probe
    with pytest.raises(ValueError, match="num_classes=5"):
        ProxyScorer(NB201, ["synflow"], images, labels, build_options={**TINY, "num_classes": 5}, device="cpu")
    with pytest.raises(ValueError, match="unknown proxy"):
        ProxyScorer(NB201, ["nope"], images, labels, build_options=TINY, device="cpu")


# --------------------------------------------------------------------------------------------------- cache
def test_score_cache_keeps_nan_and_inf_and_skips_a_truncated_line(tmp_path):
    path = tmp_path / "scores.jsonl"
    cache = ScoreCache(path)
    cache.put("k", "a1", ScoreResult({"x": math.nan, "y": math.inf, "z": -math.inf, "w": 1.5}, {"x": "nan: why"}))
    cache.put("k", "a2", ScoreResult({"x": 2.0}))
    with path.open("a") as fh:
        fh.write('{"key": "k", "arch": "a3", "val')  # interrupted write
    again = ScoreCache(path)
    got = again.get("k", "a1", ["x", "y", "z", "w"])
    assert math.isnan(got.values["x"]) and got.values["y"] == math.inf and got.values["z"] == -math.inf
    assert got.values["w"] == 1.5 and got.status["x"] == "nan: why" and got.source == "cache"
    assert again.get("k", "a1", ["missing"]) is None and again.get("other", "a1", ["x"]) is None
    assert again.get("k", "a3", []) is None and len(again) == 2
    for line in path.read_text().splitlines()[:2]:
        json.loads(line)  # standard JSON (no bare NaN)


def test_score_cache_folder_merges_writers(tmp_path):
    ScoreCache(tmp_path, writer="w00").put("k", "a", ScoreResult({"x": 1.0}))
    ScoreCache(tmp_path, writer="w01").put("k", "a", ScoreResult({"y": 2.0}))
    merged = ScoreCache(tmp_path)
    assert merged.get("k", "a", ["x", "y"]).values == {"x": 1.0, "y": 2.0}
    assert sorted(p.name for p in tmp_path.glob("*.jsonl")) == ["w00.jsonl", "w01.jsonl"]


# --------------------------------------------------------------------------------------------------- table
def test_table_scorer_reads_only_proxy_columns_and_canonicalises():
    space = get_space("autoformer_mini")
    spec = space.sample(0)
    reordered = json.dumps(
        {
            "num_heads": list(spec.num_heads),
            "depth": spec.depth,
            "embed_dim": spec.embed_dim,
            "mlp_ratio": list(spec.mlp_ratio),
        }
    )
    table = pd.DataFrame(
        {"arch": [reordered], "lswag": [3.0], "lswag.psi": [7.0], "zico": [1.0], "cifar10_test_acc": [91.0]}
    )
    ts = TableScorer(space, table, ["lswag"])
    got = ts.score(spec, space.encode(spec))
    assert got.values == {"lswag": 3.0, "lswag.psi": 7.0} and got.source == "table"
    other = space.mutate(spec, 1)
    with pytest.raises(ValueError, match="not in the score table"):
        ts.score(other, space.encode(other))
    fallback = FunctionScorer(lambda s: {"lswag": -1.0}, ["lswag"])
    assert TableScorer(space, table, ["lswag"], fallback=fallback).score(other, space.encode(other)).values == {
        "lswag": -1.0
    }
    with pytest.raises(ValueError, match="no column for proxies \\['naswot'\\]"):
        TableScorer(space, table, ["naswot"])


def test_merged_scorer_takes_each_proxy_from_its_first_supplier():
    table = pd.DataFrame({"arch": [A1, A2], "lswag": [3.0, 4.0], "lswag.lambda": [0.5, 0.6], "naswot": [9.0, 9.5]})
    stored = TableScorer(NB201, table, ["lswag", "naswot"])
    calls = []

    def live(spec):
        calls.append(spec)
        return {"naswot": -1.0, "zico_ps": 2.0, "zico_ps.extra": 7.0}

    merged = MergedScorer([stored, FunctionScorer(live, ["naswot", "zico_ps"])])
    assert merged.proxies == ("lswag", "naswot", "zico_ps")
    got = merged.score(NB201.decode(A2), A2)
    # naswot and lswag's sub-value come from the table (listed first); zico_ps and its sub-value from the function
    assert got.values == {"lswag": 4.0, "lswag.lambda": 0.6, "naswot": 9.5, "zico_ps": 2.0, "zico_ps.extra": 7.0}
    assert got.source == "table+function" and len(calls) == 1
    other = MergedScorer([TableScorer(NB201, table, ["lswag"]), FunctionScorer(live, ["naswot", "zico_ps"])])
    assert other.score(NB201.decode(A1), A1).values["naswot"] == -1.0
    assert other.key != merged.key
    with pytest.raises(ValueError, match="supplies no proxy"):
        MergedScorer([stored, FunctionScorer(live, ["naswot"])])
    with pytest.raises(ValueError, match="at least one"):
        MergedScorer([])


def test_probe_fingerprint_is_content_based(probe):
    images, labels = probe
    assert probe_fingerprint(images, labels) == probe_fingerprint(images.clone(), labels.clone())
    assert probe_fingerprint(images, labels) != probe_fingerprint(images + 1e-3, labels)
    assert np.isfinite(images.numpy()).all()
