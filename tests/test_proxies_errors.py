"""Bad input gets a ValueError that names the problem and the fix."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from lswag_lightning import score_network


def net():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3))


X, Y = torch.randn(8, 4), torch.randint(0, 3, (8,))


@pytest.mark.parametrize("proxy", ["lswag", "zico", "zico_ps", "jacov"])
def test_batch_of_one_for_variance_based_proxies(proxy):
    with pytest.raises(ValueError, match="at least 2"):
        score_network(net(), X[:1], Y[:1], proxies=(proxy,))


def test_labels_out_of_range():
    with pytest.raises(ValueError, match=r"label 7 but the model outputs 3 classes"):
        score_network(net(), X, torch.full((8,), 7), proxies=("lswag",))
    with pytest.raises(ValueError, match="negative label"):
        score_network(net(), X, torch.full((8,), -1), proxies=("snip",))


def test_mismatched_batch_and_labels():
    with pytest.raises(ValueError, match="inputs hold 8 samples but targets hold 5"):
        score_network(net(), X, Y[:5], proxies=("lswag",))


def test_missing_or_unfitting_labels_are_the_label_proxies_status_and_the_rest_computes():
    """No targets, or targets the default cross-entropy cannot take (regression values): the proxies that need labels
    say so and name the fix; the targets-free values are computed."""
    proxies = ("lswag", "zico", "naswot", "params", "flops", "vkdnw_layers")
    free = {"params", "flops", "vkdnw_layers", "lswag.psi"}
    for targets, fix in ((None, "pass targets"), (Y.float(), "pass loss_fn=")):
        report = score_network(net(), X, targets, proxies=proxies)
        assert {k for k, s in report.status.items() if s == "ok"} - {"naswot"} == free, report.failed()
        assert not report.status["naswot"].startswith("error")
        for name in ("lswag.lambda", "zico"):
            assert report.status[name].startswith("error: ") and fix in report.status[name], report.status[name]
        assert "Λ: " in report.status["lswag"]


def test_model_without_weight_layers():
    with pytest.raises(ValueError, match="no Conv1d/2d/3d or Linear layer"):
        score_network(nn.Sequential(nn.ReLU(), nn.BatchNorm1d(4)), X, Y, proxies=("zico",))


def test_unknown_proxy_name_suggests_the_closest():
    with pytest.raises(ValueError, match=r"unknown proxy 'lswg'.*Did you mean 'lswag'"):
        score_network(net(), X, Y, proxies=("lswg",))


def test_invalid_options():
    with pytest.raises(ValueError, match=r"unknown scoring option\(s\) \['lamda_k'\]"):
        score_network(net(), X, Y, lamda_k=3)
    with pytest.raises(ValueError, match="0 <= lo <= hi <= 10"):
        score_network(net(), X, Y, layer_interval=(3, 11))
    with pytest.raises(ValueError, match="lambda_k"):
        score_network(net(), X, Y, lambda_k=1)
    with pytest.raises(ValueError, match="psi_layers"):
        score_network(net(), X, Y, psi_layers="below")
    with pytest.raises(ValueError, match="do not divide"):
        score_network(net(), X[:7], Y[:7], lambda_samples="batches")


def test_bad_inputs():
    nan_inputs = X.clone()
    nan_inputs[3, 1] = float("nan")
    with pytest.raises(ValueError, match=r"1 non-finite values \(NaN or inf\) in 1 of 8 samples; fix the probe"):
        score_network(net(), nan_inputs, Y, proxies=("jacov", "naswot"))
    with pytest.raises(ValueError, match="complex"):
        score_network(net(), X.to(torch.complex64), Y)
    with pytest.raises(ValueError, match="must be a tensor"):
        score_network(net(), X.tolist(), Y)
    with pytest.raises(ValueError, match="torch.nn.Module"):
        score_network(lambda t: t, X, Y)


def test_empty_interval_is_a_status_not_a_crash():
    report = score_network(net(), X, Y, proxies=("lswag",), layer_interval=(0, 0))  # D=2: bins 5 and 10
    assert report.status["lswag.lambda"].startswith("error: no weight layer falls in depth bins [0, 0]")
    assert report.status["lswag"].startswith("error: Λ: no weight layer")


def test_a_degenerate_value_is_a_status_never_a_number():
    """A proxy whose value is constant by construction raises DegenerateValue: NaN, status 'degenerate: ...', and
    every other proxy of the call is unaffected (the toy proxy is registered for this test only)."""
    from lswag_lightning.proxies import DegenerateValue
    from lswag_lightning.proxies.registry import register_proxy, temporary_registrations

    with temporary_registrations():

        @register_proxy("always_constant", higher_is_better=True, needs=("flops_pass",), description="test only")
        def _constant(data, options):
            raise DegenerateValue("one output class makes the value constant; score a model with 2+ outputs")

        torch.manual_seed(0)
        model = nn.Sequential(nn.Flatten(), nn.Linear(12, 8), nn.ReLU(), nn.Linear(8, 3))
        x, y = torch.randn(8, 12), torch.randint(0, 3, (8,))
        report = score_network(model, x, y, proxies=["always_constant", "params"])
    assert math.isnan(report.values["always_constant"])
    assert report.status["always_constant"] == (
        "degenerate: one output class makes the value constant; score a model with 2+ outputs"
    )
    assert report.status["params"] == "ok" and report.values["params"] == 12 * 8 + 8 + 8 * 3 + 3
