"""Coverage and degenerate values: a value from a sliver of the model is ``partial``, a value constant by construction
is ``degenerate``; neither is a plain ``ok`` number."""

from __future__ import annotations

import math

import pytest
import torch
from model_kinds import RNNClassifier, SmallCNN, TinyLM, class_labels, images
from torch import nn

from lswag_lightning import score_network

GRADIENT = ("lswag", "zico", "zico_ps", "snip", "grad_norm", "synflow")
ACTIVATION = ("swap", "naswot")


def sequences(n=16):
    return torch.randn(n, 12, 6, generator=torch.Generator().manual_seed(0)), class_labels()[:n]


def test_the_gradient_proxies_on_an_lstm_measure_its_head_only_and_say_so():
    torch.manual_seed(0)
    net = RNNClassifier("lstm")
    x, y = sequences()
    report = score_network(net, x, y, proxies=GRADIENT)
    for key in ("lswag.lambda", "zico", "zico_ps", "snip", "grad_norm", "synflow"):
        status = report.status[key]
        assert status.startswith("partial: measured 64 of 1,604 parameters (4.0%, below min_coverage=0.5)"), status
        assert "not measured: LSTM (1,536)" in status and math.isfinite(report.values[key])
    coverage = report.details["zico"]["coverage"]
    assert coverage["share"] == 64 / 1604 and coverage["measured_types"] == {"Linear": 64}
    assert coverage["unmeasured_types"] == {"LSTM": 1536, "Linear": 4}  # the LSTM, and the head's bias
    accepted = score_network(net, x, y, proxies=GRADIENT, min_coverage=0.0)
    assert accepted.ok("zico") and accepted.values["zico"] == report.values["zico"]  # same value, accepted
    # Ψ reads the LSTM's outputs when named as an activation point: then it measures the LSTM (and not the head)
    psi = score_network(net, x, y, proxies=["swap"], activation_points=["rnn"])
    assert psi.ok("swap") and psi.details["swap"]["coverage"]["measured_types"] == {"LSTM": 1536}


def test_coverage_on_a_cnn_counts_every_parameter_once():
    torch.manual_seed(0)
    report = score_network(SmallCNN(), images()[:16], class_labels()[:16], proxies=[*GRADIENT, *ACTIVATION])
    assert not report.failed()
    weights = 3 * 8 * 9 + 8 * 16 * 9 + 16 * 4  # the Conv/Linear weights: what the gradient proxies measure
    assert report.details["snip"]["coverage"]["measured"] == weights
    assert report.details["snip"]["coverage"]["total"] == 1508
    # the activation patterns are shaped by everything before the last ReLU; the head is their readout
    swap = report.details["swap"]["coverage"]
    assert swap["share"] == 1.0 and swap["total"] == 1508 - 68 and swap["left_out_by_definition"] == {"Linear": 68}
    shares = {key: c["share"] for key, c in report.details["lswag"]["coverage"].items()}
    assert shares["lswag"] == min(shares["lswag.lambda"], shares["lswag.psi"])  # as covered as its less covered factor


def test_a_tied_embedding_is_one_parameter():
    tokens = torch.randint(0, 32, (8, 12), generator=torch.Generator().manual_seed(0))
    torch.manual_seed(0)
    report = score_network(TinyLM(), tokens, tokens, proxies=["snip", "params"], loss_fn=flat_cross_entropy)
    assert report.details["snip"]["coverage"]["total"] == report.values["params"] == 2672
    assert report.details["snip"]["coverage"]["measured_types"] == {"Linear": 2048, "Embedding": 512}  # tied: once


def flat_cross_entropy(logits, targets):
    return nn.functional.cross_entropy(logits.flatten(0, 1), targets.flatten())


def zero_initialised(first: bool):
    """An MLP whose classifier (and, with ``first``, its first layer) is zero-initialised."""
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(4, 32), nn.ReLU(), nn.Linear(32, 3))
    with torch.no_grad():
        net[2].weight.zero_()
        if first:
            net[0].weight.zero_()
            net[0].bias.zero_()
    return net


def test_a_zero_initialised_layer_cutting_every_path_is_degenerate_never_a_number():
    x, y = torch.randn(16, 4, generator=torch.Generator().manual_seed(1)), torch.arange(16) % 3
    head_only = score_network(zero_initialised(False), x, y, proxies=[*GRADIENT, *ACTIVATION])
    for key in ("snip", "synflow"):  # Σ|θ ⊙ g| and the flow are 0 through the zero head, whatever the architecture
        assert head_only.status[key].startswith("degenerate: ") and math.isnan(head_only.values[key])
        assert "zero-initialised weight layer(s) 2 cut every path" in head_only.status[key]
    # the head's own gradient depends on the features: grad_norm, Λ, ZiCo and the patterns stay informative
    assert all(head_only.ok(key) for key in ("grad_norm", "zico", "lswag", "swap", "naswot")), head_only.failed()
    dead = score_network(zero_initialised(True), x, y, proxies=[*GRADIENT, *ACTIVATION])
    assert all(status.startswith("degenerate: ") for status in dead.status.values()), dead.status
    assert "Λ: Λ is 0: the loss gradient is zero for every weight" in dead.status["lswag"]


def test_an_architecture_that_cuts_every_path_by_itself_keeps_its_minimum():
    """No zero weight, but no path either (a 'none' op): the minimum ranks it last, which is information."""

    class Cut(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc1, self.act, self.fc2 = nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3)

        def forward(self, x):
            return self.fc2(self.act(self.fc1(x)) * 0.0)

    torch.manual_seed(0)
    x, y = torch.randn(16, 4, generator=torch.Generator().manual_seed(1)), torch.arange(16) % 3
    report = score_network(Cut(), x, y, proxies=["snip", "synflow"])
    assert report.ok("snip") and report.values["snip"] == 0.0
    assert report.status["synflow"].startswith("inf: every layer's synaptic flow is 0")


@pytest.mark.parametrize("proxy", ["swap", "naswot", "lswag"])
def test_a_probe_that_cannot_show_patterns_is_degenerate(proxy):
    torch.manual_seed(0)
    net = SmallCNN()
    same = images()[:1].expand(16, -1, -1, -1).contiguous()
    report = score_network(net, same, class_labels()[:16], proxies=[proxy])
    key = "lswag.psi" if proxy == "lswag" else proxy
    assert report.status[key].startswith("degenerate: every probe sample is the same"), report.status[key]
    if proxy != "lswag":
        one = score_network(net, images()[:1], class_labels()[:1], proxies=[proxy])
        assert one.status[proxy].startswith("degenerate: one probe sample"), one.status[proxy]


def test_jacov_of_a_network_linear_in_its_input_is_degenerate():
    torch.manual_seed(0)
    x, y = torch.randn(16, 4, generator=torch.Generator().manual_seed(1)), torch.arange(16) % 3
    linear = score_network(nn.Sequential(nn.Linear(4, 8), nn.Linear(8, 3)), x, y, proxies=["jacov"])
    assert linear.status["jacov"].startswith("degenerate: every sample has the same input Jacobian")
    relu = nn.Sequential(nn.Linear(4, 32), nn.ReLU(), nn.Linear(32, 3))
    assert score_network(relu, x, y, proxies=["jacov"]).ok("jacov")
    # a zero-initialised head gives every sample the Jacobian 0: degenerate as well
    assert score_network(zero_initialised(False), x, y, proxies=["jacov"]).status["jacov"].startswith("degenerate")


def test_the_meco_rule_matches_the_correlation_it_describes():
    """MeCo's helper (its pass raises DegenerateValue with the text): a correlation of C channels over P positions has
    a smallest eigenvalue of exactly 0 when C >= P, whatever the values; the text names the widest layout and a fix."""
    from lswag_lightning.proxies.author_passes import channel_correlation_min_eigenvalue
    from lswag_lightning.proxies.degenerate import correlation_rank_deficient, meco_layout_degenerate

    g = torch.Generator().manual_seed(0)
    for channels, positions in ((16, 16), (16, 12), (4, 16), (8, 9)):
        value = channel_correlation_min_eigenvalue(torch.randn(channels, positions, generator=g))
        assert (value == 0.0) == correlation_rank_deficient(channels, positions), (channels, positions, value)
    text = meco_layout_degenerate([("embed", 16, 12), ("mlp.0", 64, 12)])
    assert (
        text.startswith(
            "every module output MeCo correlates has at least as many channels as positions (e.g. "
            "mlp.0: 64 channels over 12 positions)"
        )
        and "larger inputs" in text
    )
    assert meco_layout_degenerate([("embed", 16, 12), ("conv", 8, 64)]) is None  # one informative term is enough
