"""The engine against NAS-Bench-Suite-Zero's published proxy values: NB201 under NASLib's protocol
(lswag_lightning.bench.published_check, ``lswag-bench nb201 --vs-published``) and the NB101 / NB301 tables
(lswag_lightning.bench.published_agreement, ``lswag-bench nb101|nb301 --vs-published``).

The main test scores the first 100 CIFAR-10 architectures of the published NASLib table with NASLib's protocol
(batch of 32 CIFAR-10 training images, crop + flip, CIFAR mean/std) and requires Spearman ρ >= 0.9 with the
published nwot / synflow / snip / grad_norm, plus a median ratio near 1 where the values share a unit (so the
protocol, not only the ranking, is reproduced). The other tests check the pieces by hand.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from lswag_lightning import available_proxies
from lswag_lightning.analysis.published import COUNTERPARTS
from lswag_lightning.bench import published_check as check
from lswag_lightning.cli.bench import main
from lswag_lightning.probe import crop_and_flip, naslib_normalise, probe_batch
from lswag_lightning.spaces.nb201 import arch_to_index

RESULTS = Path(__file__).resolve().parents[1] / "results"


# ------------------------------------------------------------------------------------- the cross-check itself
@pytest.fixture(scope="module")
def first_100(shared_data_dir):
    return check.run_check(shared_data_dir, limit=100, proxies=check.TARGET_PROXIES, device="cpu", seed=0)


@pytest.mark.parametrize("proxy", check.TARGET_PROXIES)
def test_spearman_with_published_values_reaches_target(first_100, proxy):
    _, summary = first_100
    row = summary.set_index("proxy").loc[proxy]
    assert row["n"] >= 100 and row["n_excluded"] == 0
    assert row["spearman"] >= check.TARGET_SPEARMAN, summary.to_string()
    assert bool(row["meets_target"])


@pytest.mark.parametrize("proxy, tolerance", [("naswot", 0.03), ("synflow", 0.01)])
def test_values_match_published_magnitude(first_100, proxy, tolerance):
    # NASWOT's log-det grows with the batch (≈ 405 at 32, 805 at 64 samples) and synflow is log-space on both
    # sides: a median ratio near 1 shows the batch size and the log convention are NASLib's.
    _, summary = first_100
    ratio = summary.set_index("proxy").loc[proxy, "median_ratio"]
    assert abs(ratio - 1.0) < tolerance, summary.to_string()


def test_values_table_holds_both_sides_per_architecture(first_100):
    values, _ = first_100
    assert len(values) == 100
    assert {
        "arch",
        "nb201_index",
        "ours.naswot",
        "published.nwot",
        "ours.synflow",
        "published.synflow",
        "seconds",
    } <= set(values.columns)
    assert np.isfinite(values["ours.naswot"]).all()


# ------------------------------------------------------------------------------------------- protocol pieces
def test_counterparts_are_registered_proxies_and_published_columns(shared_data_dir):
    published = check.load_published(shared_data_dir)
    assert set(COUNTERPARTS) <= set(available_proxies())
    assert set(COUNTERPARTS.values()) <= set(published.columns)
    assert set(check.TARGET_PROXIES) <= set(COUNTERPARTS)


def test_published_rows_are_the_cifar10_rows_in_file_order(shared_data_dir):
    raw = pd.read_csv(shared_data_dir / "nb201" / "zc_nasbench201_subset_naslib_flat.csv")
    raw = raw[raw["dataset"] == "cifar10"].reset_index(drop=True)
    published = check.load_published(shared_data_dir)
    assert len(published) == len(raw) == 724
    assert list(published["arch"]) == list(raw["arch_str"])
    # column mapping: each arch string is the cell of its NB201 index, and the proxies are carried unchanged
    assert [arch_to_index(a) for a in published["arch"]] == list(published["nb201_index"])
    for column in ("nwot", "synflow", "snip", "grad_norm", "jacov"):
        np.testing.assert_array_equal(published[column].to_numpy(), raw[column].to_numpy())
    np.testing.assert_allclose(published["params"], raw["params"] * 1e6)
    head = check.load_published(shared_data_dir, limit=5)
    assert list(head["arch"]) == list(raw["arch_str"][:5])


def test_normalise_by_hand():
    image = np.zeros((1, 2, 2, 3), dtype=np.uint8)
    image[..., 0], image[..., 1], image[..., 2] = 255, 0, 128
    x = naslib_normalise(image)
    assert x.shape == (1, 3, 2, 2) and x.dtype == torch.float32
    expected = [(1.0 - 0.49139968) / 0.24703233, (0.0 - 0.48215827) / 0.24348505, (128 / 255 - 0.44653124) / 0.26158768]
    for channel, value in enumerate(expected):
        assert torch.allclose(x[0, channel], torch.full((2, 2), value), atol=1e-6)
    with pytest.raises(ValueError, match="uint8"):
        naslib_normalise(image.astype(np.float32))


def test_crop_and_flip_by_hand():
    rng = np.random.default_rng(0)
    images = rng.integers(1, 256, size=(3, 8, 8, 3), dtype=np.uint8)
    centre = np.full((3, 2), 4)
    np.testing.assert_array_equal(crop_and_flip(images, centre, np.zeros(3, bool)), images)
    np.testing.assert_array_equal(crop_and_flip(images, centre, np.ones(3, bool)), images[:, :, ::-1])
    shifted = crop_and_flip(images, np.zeros((3, 2), int), np.zeros(3, bool))
    assert (shifted[:, :4] == 0).all() and (shifted[:, :, :4] == 0).all()  # the zero padding enters
    np.testing.assert_array_equal(shifted[:, 4:, 4:], images[:, :4, :4])
    with pytest.raises(ValueError, match="offsets"):
        crop_and_flip(images, np.full((3, 2), 9), np.zeros(3, bool))


def test_probe_batch_is_shuffled_seeded_and_normalised(shared_data_dir):
    x, y = probe_batch("naslib", data_dir=shared_data_dir, batch_size=32, seed=0)
    assert x.shape == (32, 3, 32, 32) and x.dtype == torch.float32 and y.dtype == torch.int64
    assert 0 <= int(y.min()) and int(y.max()) <= 9
    assert len(set(y.tolist())) >= 6  # the files are sorted by class: a shuffled batch mixes them
    x2, y2 = probe_batch("naslib", data_dir=shared_data_dir, batch_size=32, seed=0)
    assert torch.equal(x, x2) and torch.equal(y, y2)
    x3, _ = probe_batch("naslib", data_dir=shared_data_dir, batch_size=32, seed=1)
    assert not torch.equal(x, x3)
    # the standard CIFAR-10 statistics make the (unaugmented) training images zero-mean, unit-std per channel
    big, _ = probe_batch("naslib", data_dir=shared_data_dir, batch_size=1000, seed=0, augment=False)
    mean, std = big.mean(dim=(0, 2, 3)), big.std(dim=(0, 2, 3))
    assert torch.all(mean.abs() < 0.05), mean
    assert torch.all((std - 1.0).abs() < 0.05), std
    with pytest.raises(ValueError, match="batch_size"):
        probe_batch("naslib", data_dir=shared_data_dir, batch_size=1)


def test_compare_by_hand():
    archs = [f"a{i}" for i in range(6)]
    ours = pd.DataFrame({"arch": archs, "naswot": [1.0, 2.0, 3.0, 4.0, 5.0, math.nan]})
    published = pd.DataFrame({"arch": archs, "nwot": [10.0, 30.0, 20.0, 40.0, check.NASLIB_FAILURE, -math.inf]})
    row = check.compare(ours, published, ["naswot"]).iloc[0]
    assert (row["n"], row["n_excluded"], row["n_both_failed"]) == (4, 2, 1)
    assert row["spearman"] == pytest.approx(1 - 6 * 2 / (4 * 15))  # ranks 1,2,3,4 vs 1,3,2,4
    assert row["kendall"] == pytest.approx(4 / 6)  # 5 concordant, 1 discordant pair
    assert row["median_ratio"] == pytest.approx(0.1)
    assert not row["meets_target"]
    # NASLib stores a zero SynFlow sum as 0 (not logged): it fails on both sides like our log 0 = -inf
    ours = pd.DataFrame({"arch": archs[:3], "synflow": [-math.inf, 40.0, 50.0]})
    published = pd.DataFrame({"arch": archs[:3], "synflow": [0.0, 41.0, 49.0]})
    row = check.compare(ours, published, ["synflow"]).iloc[0]
    assert (row["n"], row["n_excluded"], row["n_both_failed"]) == (2, 1, 1)
    with pytest.raises(ValueError, match="same architectures"):
        check.compare(ours.iloc[::-1].reset_index(drop=True), published, ["synflow"])


def test_bad_options_are_rejected(shared_data_dir):
    with pytest.raises(ValueError, match="no published NASLib counterpart"):
        check.validate_proxies(["lswag"])
    with pytest.raises(ValueError, match="limit"):
        check.load_published(shared_data_dir, limit=0)
    with pytest.raises(ValueError, match="noise_seed"):
        check.run_check(shared_data_dir, limit=2, seed=3, noise_seed=3)


def test_cli_writes_the_tables(shared_data_dir, tmp_path, capsys):
    out = tmp_path / "check"
    args = ["nb201", "--vs-published", "--data-dir", str(shared_data_dir), "--first", "4", "--proxies", "params"]
    code = main([*args, "flops", "--device", "cpu", "--noise-seed", "1", "--no-progress", "--out", str(out)])
    assert code == 0  # no target proxy requested, so nothing can be missed
    values = pd.read_csv(out / "values.csv")
    assert len(values) == 4 and {"ours.params", "published.params", "ours.flops", "published.flops"} <= set(values)
    np.testing.assert_array_equal(values["ours.params"], values["published.params"])  # exact counts
    assert {"ours_noise.params", "ours_noise.flops"} <= set(values)
    summary = pd.read_csv(out / "summary.csv")
    assert list(summary["proxy"]) == ["params", "flops"]
    assert (summary["spearman_self"] == 1.0).all()  # size and cost do not depend on the batch or the init
    assert "| params | params | 4 |" in (out / "summary.md").read_text()
    assert "batch 32 of CIFAR-10 training images" in capsys.readouterr().out  # NASLib's batch by default


@pytest.mark.parametrize(
    "args, message",
    [
        (["nb201", "--first", "4"], "only apply to nb201 --vs-published"),
        (["autoformer_ti", "--vs-published"], "applies to nb201, nb101 and nb301"),
        (["nb201", "--vs-published", "--workers", "2"], "leave --workers out"),
    ],
)
def test_published_options_that_do_not_apply_are_usage_errors(capsys, tmp_path, args, message):
    with pytest.raises(SystemExit) as exc:
        main([*args, "--out", str(tmp_path)])
    assert exc.value.code == 2 and message in capsys.readouterr().err


def test_nb101_table_against_the_published_values(shared_data_dir, tmp_path, capsys):
    """The committed NB101 scores joined and compared with NB-Suite-Zero's: our #params and FLOPs rank the cells
    as the published ones do (README: 1.000 / 0.999), and L-SWAG is below #params on NB101."""
    out = tmp_path / "nb101"
    args = ["nb101", "--score-table", str(RESULTS / "nb101_scores.parquet"), "--vs-published"]
    assert main([*args, "--data-dir", str(shared_data_dir), "--out", str(out)]) == 0
    report = (out / "published.md").read_text()
    assert report.startswith("nb101: 500 cells, Spearman ρ with the published validation accuracy")
    rows = {line.split(" | ")[0][2:]: line for line in report.splitlines() if line.startswith("| ")}
    assert rows["params"].endswith("| 1.000 |") and rows["flops"].endswith("| 0.999 |")
    assert "L-SWAG − params: -0.173" in report
    empty = ["nb101", "--vs-published", "--data-dir", str(shared_data_dir), "--out", str(tmp_path / "empty")]
    assert main(empty) == 2 and "score the benchmark first" in capsys.readouterr().err
