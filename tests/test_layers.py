"""lswag-layers: the per-bin statistic by hand, the interval rule on synthetic curves, the label check, a tiny run."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from torch import nn

from lswag_lightning.cli.layers import main
from lswag_lightning.intervals import (
    BinStats,
    all_intervals,
    bin_profile,
    interval_lambda,
    label_check,
    per_bin_correlation,
    profile_network,
    propose_interval,
    theil_sen,
)


def _stats(mean, std=0.5) -> BinStats:
    mean = np.asarray(mean, dtype=float)
    return BinStats(
        mean.tolist(), np.broadcast_to(np.asarray(std, dtype=float), mean.shape).tolist(), [100] * len(mean)
    )


# ------------------------------------------------------------------------------------ the statistic by hand
def test_profile_network_matches_a_hand_computation():
    """Two Linear layers (D = 2: bins 5 and 10); K = 2 halves of the batch; s_w = population std of the signed
    gradient over the halves; stat = mean of log s_w, Λ term = log Σ 1/s_w."""
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(6, 5), nn.ReLU(), nn.Linear(5, 3))
    x, y = torch.randn(8, 6), torch.randint(0, 3, (8,))
    grads = []
    for half in (slice(0, 4), slice(4, 8)):
        loss = nn.functional.cross_entropy(net(x[half]), y[half])
        grads.append(torch.autograd.grad(loss, [net[0].weight, net[2].weight]))
    expected = {}
    for layer, b in ((0, 5), (1, 10)):
        g = torch.stack([grads[0][layer], grads[1][layer]]).double()
        s = g.std(dim=0, unbiased=False).flatten()
        s = s[s > 0]
        expected[b] = (float(torch.log(s).mean()), float(torch.log((1 / s).sum())))
    result = profile_network(net, x, y)
    assert result["depth"] == 2
    for b in range(11):
        if b in expected:
            assert result["stat"][b] == pytest.approx(expected[b][0], rel=1e-9)
            assert result["lambda"][b] == pytest.approx(expected[b][1], rel=1e-9)
        else:
            assert math.isnan(result["stat"][b]) and result["lambda"][b] == 0.0


def test_bin_profile_averages_stats_and_sums_lambda_terms_per_bin():
    layers = [
        {"bin": 0, "mean_log_std": -2.0, "lambda_term": 1.0},
        {"bin": 0, "mean_log_std": -4.0, "lambda_term": 2.0},
        {"bin": 5, "mean_log_std": float("nan"), "lambda_term": 0.0},
        {"bin": 10, "mean_log_std": -1.0, "lambda_term": 5.0},
    ]
    stat, lam = bin_profile(layers)
    assert stat[0] == -3.0 and stat[10] == -1.0 and math.isnan(stat[5]) and math.isnan(stat[3])
    assert lam.tolist() == [3.0, 0, 0, 0, 0, 0.0, 0, 0, 0, 0, 5.0]
    with pytest.raises(ValueError, match="outside 0..10"):
        bin_profile([{"bin": 11, "mean_log_std": 0.0, "lambda_term": 0.0}])


def test_bin_stats_ignore_networks_without_the_bin():
    m = np.full((3, 11), np.nan)
    m[:, 0] = [1.0, 2.0, 3.0]
    m[0, 4] = 7.0
    stats = BinStats.from_matrix(m)
    assert stats.mean[0] == 2.0 and stats.std[0] == pytest.approx(np.std([1, 2, 3]))
    assert stats.count[:5] == [3, 0, 0, 0, 1] and stats.mean[4] == 7.0 and math.isnan(stats.mean[1])
    with pytest.raises(ValueError, match="matrix"):
        BinStats.from_matrix(np.zeros((3, 10)))


def test_theil_sen_is_exact_on_a_line_and_ignores_one_outlier():
    x = np.arange(10.0)
    assert theil_sen(x, 2 * x - 1) == pytest.approx((2.0, -1.0))
    y = 2 * x - 1
    y[4] += 50
    assert theil_sen(x, y) == pytest.approx((2.0, -1.0))


# ------------------------------------------------------------------------------------------------- the rule
TREND = -4.0 - 0.4 * np.arange(11)  # steadily falling with depth, like NB201


def test_a_spike_above_the_trend_gives_its_bins():
    mean = TREND + 0.02 * np.sin(np.arange(11))  # a little wiggle
    mean[3:6] += 2.0
    p = propose_interval(_stats(mean))
    assert p.spike and p.interval == (3, 5) and p.spike_bins == [3, 4, 5]
    assert "spike over bins 3..5" in p.reason


def test_a_steady_trend_and_the_classifier_jump_are_no_spike():
    mean = TREND.copy()
    mean[10] = 0.0  # the last layer (bin 10) always jumps: excluded from the search
    p = propose_interval(_stats(mean))
    assert not p.spike and p.interval is None
    assert "no spike" in p.reason and "every layer" in p.reason
    assert 10 not in p.candidate_bins and math.isnan(p.residual[10])


def test_a_bump_lost_in_the_spread_of_networks_is_no_spike():
    mean = TREND.copy()
    mean[4] += 0.3  # 3 robust sigmas above the (exact) trend, but small next to a between-network std of 2
    assert propose_interval(_stats(mean, std=2.0)).interval is None
    assert propose_interval(_stats(mean, std=0.2)).interval == (4, 4)


def test_the_largest_of_two_spikes_wins_and_dips_do_not_count():
    mean = TREND.copy()
    mean[1] += 1.0
    mean[6:8] += 1.5
    mean[9] -= 3.0  # a dip (smaller gradient std) is not a spike
    p = propose_interval(_stats(mean, std=0.5))
    assert p.interval == (6, 7) and p.runs == [[1], [6, 7]]
    assert "1 smaller spike run(s) ignored" in p.reason


def test_the_input_bin_is_a_boundary_like_the_classifier():
    mean = TREND + 0.02 * np.sin(np.arange(11))
    mean[0] += 2.0  # the stem / patch embedding stands out in every network (as on AutoFormer-Ti)
    default = propose_interval(_stats(mean))
    assert default.interval is None and default.candidate_bins == list(range(1, 10))
    assert propose_interval(_stats(mean), boundary=True).interval == (0, 0)


def test_too_few_bins_and_bad_thresholds():
    mean = np.full(11, np.nan)
    mean[[0, 5, 10]] = [1.0, 2.0, 3.0]  # a 2-layer network: bins 5 and 10 only
    p = propose_interval(_stats(mean))
    assert p.interval is None and "only 1 bins" in p.reason
    with pytest.raises(ValueError, match="k > 0"):
        propose_interval(_stats(TREND), k=0)


# ------------------------------------------------------------------------------------------ with accuracies
def test_interval_lambda_and_per_bin_correlation():
    rng = np.random.default_rng(0)
    lam = rng.normal(size=(50, 11))
    assert np.allclose(interval_lambda(lam, (2, 4)), lam[:, 2:5].sum(1))
    assert np.allclose(interval_lambda(lam, None), lam.sum(1))
    acc = 3 * lam[:, 3] + 1
    present = np.ones((50, 11), dtype=bool)
    present[:, 7] = False
    rho = per_bin_correlation(lam, present, acc)
    assert (
        rho[3] == pytest.approx(1.0)
        and math.isnan(rho[7])
        and max(abs(r) for i, r in enumerate(rho) if i not in (3, 7)) < 0.5
    )
    assert len(all_intervals()) == 66


def test_label_check_finds_the_informative_interval_on_held_out_splits():
    rng = np.random.default_rng(1)
    lam = rng.normal(size=(200, 11))
    acc = lam[:, 2:5].sum(1) + 0.3 * rng.normal(size=200)  # accuracy follows Λ on bins 2..4
    check = label_check(lam, acc, rule_interval=None, n_splits=10, seed=0)
    assert check["chosen"][0]["interval"] == [2, 4] and check["chosen"][0]["count"] >= 8
    assert check["heldout"]["label_chosen"]["mean"] > 0.9 > 0.6 > check["heldout"]["all_layers"]["mean"]
    assert check["heldout"]["rule"] == check["heldout"]["all_layers"]  # rule None = every layer
    assert check["in_sample_best"] == [2, 4]
    with pytest.raises(ValueError, match="too few"):
        label_check(lam[:8], acc[:8], None)


# ------------------------------------------------------------------------------------------------ tiny runs
def test_cli_without_ground_truth(capsys, tmp_path, shared_data_dir):
    out = tmp_path / "mini"
    code = main(
        [
            "autoformer_mini",
            "--sample",
            "4",
            "--seed",
            "0",
            "--out",
            str(out),
            "--no-progress",
            "--threads",
            "1",
            "--data-dir",
            str(shared_data_dir),
        ]
    )
    assert code == 0
    stdout = capsys.readouterr().out
    assert "proposed interval" in stdout
    data = json.loads((out / "layers.json").read_text())
    assert data["n_networks"] == 4 and data["space"] == "autoformer_mini"
    assert set(data) >= {"proposed_interval", "spike", "reason", "rule", "stat", "proposal", "settings"}
    assert len(data["stat"]["mean"]) == 11 and data["stat"]["count"][10] == 4  # every net has a last layer
    assert data["per_bin_rho"] == {} and (out / "layer_profile.png").stat().st_size > 0
    assert not (out / "bin_correlation.png").exists()


def test_cli_with_nb201_ground_truth(capsys, tmp_path, shared_data_dir):
    out = tmp_path / "nb201"
    code = main(
        [
            "nb201",
            "--sample",
            "12",
            "--seed",
            "1",
            "--out",
            str(out),
            "--no-progress",
            "--threads",
            "1",
            "--build-option",
            "C=8",
            "--build-option",
            "N=1",
            "--splits",
            "3",
            "--data-dir",
            str(shared_data_dir),
        ]
    )
    assert code == 0
    data = json.loads((out / "layers.json").read_text())
    assert set(data["per_bin_rho"]) == {"cifar10_test_acc", "cifar100_test_acc", "imagenet16_120_test_acc"}
    assert all(len(v) == 11 for v in data["per_bin_rho"].values())
    assert data["label_checks"]["cifar10_test_acc"]["n"] == 12
    assert (out / "bin_correlation.png").stat().st_size > 0
    assert "held-out ρ of Λ" in capsys.readouterr().out


def test_reanalyse_applies_the_rule_again_without_scoring(capsys, tmp_path, shared_data_dir):
    out = tmp_path / "mini"
    assert (
        main(
            [
                "autoformer_mini",
                "--sample",
                "3",
                "--out",
                str(out),
                "--no-progress",
                "--threads",
                "1",
                "--data-dir",
                str(shared_data_dir),
            ]
        )
        == 0
    )
    first = json.loads((out / "layers.json").read_text())
    again = tmp_path / "again"
    assert main(["autoformer_mini", "--reanalyse", str(out), "--out", str(again), "--boundary", "--k", "1"]) == 0
    second = json.loads((again / "layers.json").read_text())
    assert second["stat"] == first["stat"] and second["proposal"]["k"] == 1.0
    assert second["proposal"]["candidate_bins"][0] == 0 and "reanalysed" in second["settings"]
    assert main(["nb201", "--reanalyse", str(out)]) == 2
    assert "holds a run of 'autoformer_mini'" in capsys.readouterr().err


def test_cli_argument_errors(capsys, tmp_path):
    with pytest.raises(SystemExit):
        main(["nb201", "--sample", "0"])
    assert "must be an integer >= 1" in capsys.readouterr().err
    assert main(["nb210", "--sample", "2", "--out", str(tmp_path)]) == 2
    assert "Did you mean 'nb201'" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["darts", "--gt", str(tmp_path / "x.csv"), "--out", str(tmp_path)])
    assert "--gt FILE needs --arch-column" in capsys.readouterr().err
