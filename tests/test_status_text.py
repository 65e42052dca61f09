"""Statuses are one line with a cause and a fix, whatever the exception looked like."""

from __future__ import annotations

import pytest
import torch
from model_kinds import CheckpointedResNet, class_labels, images
from torch import nn

from lswag_lightning import score_network
from lswag_lightning.proxies import working_model
from lswag_lightning.proxies.status_text import MAX_CHARS, one_line

DYNAMO_ERROR = """RuntimeError when making fake tensor call
  Explanation: Dynamo failed to run FX node with fake tensors: call_function conv2d: got RuntimeError('expected \
scalar type Double but found Float')
  Hint: This is likely to be a Dynamo bug. Please report an issue to PyTorch.

  Developer debug context: call_function conv2d

 from user code:
   File "/home/user/model.py", line 12, in forward
    return self.conv(x)

Set TORCH_LOGS="+dynamo" and TORCHDYNAMO_VERBOSE=1 for more information
"""


def test_one_line_keeps_the_cause_and_drops_stacks_and_bug_report_requests():
    assert one_line(DYNAMO_ERROR) == (
        "RuntimeError when making fake tensor call — Dynamo failed to run FX node with fake tensors: call_function "
        "conv2d: got RuntimeError('expected scalar type Double but found Float')"
    )
    assert (
        one_line(
            "Internal assert failed. This is a bug in PyTorch, please open an issue at "
            "https://github.com/pytorch/pytorch/issues. Thanks"
        )
        == "Internal assert failed."
    )
    assert one_line("x\n" * 3 + "y" * 1000).startswith("x") and "\n" not in one_line("a\nb")
    assert len(one_line("z" * 1000)) == MAX_CHARS and one_line("z" * 1000).endswith("…")


class BadForward(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 3)

    def forward(self, x):
        raise RuntimeError(DYNAMO_ERROR)


def test_a_failing_pass_gives_one_line_with_a_fix():
    report = score_network(BadForward(), torch.randn(8, 4), torch.randint(0, 3, (8,)), proxies=["snip", "naswot"])
    for status in report.status.values():
        assert "\n" not in status and "File " not in status and "Please report" not in status
        assert (
            status.startswith("error: ") and "pass failed: RuntimeError: RuntimeError when making fake tensor" in status
        )
        assert "(fix: the model's own code raised this" in status


def checkpointed_scores(proxies):
    torch.manual_seed(0)
    return score_network(CheckpointedResNet(use_reentrant=False), images()[:8], class_labels()[:8], proxies=proxies)


def test_without_the_checkpoint_bypass_the_failures_name_checkpointing(monkeypatch):
    """On a torch where checkpointed segments cannot run as plain calls, synflow's float64 pass meets the recomputed
    float32 segment: the status says so (it once blamed a float32 tensor made inside forward)."""
    monkeypatch.setattr(working_model, "checkpoint_bypass_available", lambda: False)
    report = checkpointed_scores(["synflow"])
    assert "a checkpointed segment recomputed in backward with the module's own weights" in report.status["synflow"]
    assert "float32 tensor met" not in report.status["synflow"]
    torch.manual_seed(0)
    reentrant = score_network(
        CheckpointedResNet(use_reentrant=True), images()[:8], class_labels()[:8], proxies=["snip"]
    )
    assert (
        "the model uses gradient checkpointing, which this torch cannot run as plain calls"
        in (reentrant.status["snip"])
    )


@pytest.mark.parametrize("proxies", [["synflow"], ["snip"]])
def test_with_the_bypass_the_same_models_score(proxies):
    assert not checkpointed_scores(proxies).failed()
