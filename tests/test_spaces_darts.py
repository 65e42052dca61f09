"""DARTS: the genotype parser, the published DARTS-V2 network and its parameter count, sampling."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from torch import nn

from lswag_lightning.spaces import get_space
from lswag_lightning.spaces.darts import DARTS_V1, DARTS_V2, OPS, Genotype, parse_genotype

# Verbatim from the DARTS code (genotypes.py).
DARTS_V2_TEXT = (
    "Genotype(normal=[('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('sep_conv_3x3', 1), "
    "('sep_conv_3x3', 1), ('skip_connect', 0), ('skip_connect', 0), ('dil_conv_3x3', 2)], "
    "normal_concat=[2, 3, 4, 5], reduce=[('max_pool_3x3', 0), ('max_pool_3x3', 1), ('skip_connect', 2), "
    "('max_pool_3x3', 1), ('max_pool_3x3', 0), ('skip_connect', 2), ('skip_connect', 2), "
    "('max_pool_3x3', 1)], reduce_concat=[2, 3, 4, 5])"
)
PUBLISHED_CIFAR10 = {"num_classes": 10, "C": 36, "layers": 20}


@pytest.fixture(scope="module")
def space():
    return get_space("darts")


def test_darts_v2_parses_and_prints_verbatim(space):
    genotype = space.decode(DARTS_V2_TEXT)
    assert genotype == DARTS_V2
    assert space.encode(genotype) == DARTS_V2_TEXT


def test_darts_v2_has_the_published_parameter_count(space):
    # DARTS paper: 3.3M parameters (CIFAR-10, C=36, 20 cells); the DARTS code logs "param size = 3.349342MB"
    # (auxiliary head excluded).
    count = space.param_count(DARTS_V2, **PUBLISHED_CIFAR10)
    assert count == 3_349_342
    assert abs(count / 3.3e6 - 1) < 0.02  # within the rounding of the paper's "3.3M"
    # The auxiliary head adds 476,426 parameters, all named auxiliary_head.*; param_count leaves them out.
    assert space.param_count(DARTS_V2, auxiliary=True, **PUBLISHED_CIFAR10) == 3_349_342
    assert space.param_count(DARTS_V2, auxiliary=True, include_auxiliary=True, **PUBLISHED_CIFAR10) == 3_825_768
    # DARTS-V1 (first order) is reported as 3.3M as well
    assert abs(space.param_count(DARTS_V1, **PUBLISHED_CIFAR10) / 3.3e6 - 1) < 0.05


def test_darts_v2_network_builds_and_runs(space):
    net = space.build(DARTS_V2, **PUBLISHED_CIFAR10)
    assert sum(p.numel() for p in net.parameters()) == 3_349_342
    assert len(net.cells) == 20 and net.stem[0].out_channels == 3 * 36
    assert [i for i, c in enumerate(net.cells) if c.reduction] == [6, 13]
    assert net.classifier.in_features == 4 * 36 * 4
    small = space.build(DARTS_V2, C=8, layers=5).eval()
    with torch.no_grad():
        assert small(torch.randn(2, 3, 32, 32)).shape == (2, 10)


def test_auxiliary_head_train_and_eval_outputs(space):
    net = space.build(DARTS_V2, num_classes=4, C=8, layers=6, auxiliary=True, drop_path_prob=0.2)
    assert all(("aux" in name) == name.startswith("auxiliary_head.") for name, _ in net.named_parameters())
    assert any(name.startswith("auxiliary_head.") for name, _ in net.named_parameters())
    x = torch.randn(2, 3, 32, 32)
    net.train()
    logits, aux_logits = net(x)
    assert logits.shape == aux_logits.shape == (2, 4)
    net.eval()
    with torch.no_grad():
        out = net(x)
    assert isinstance(out, torch.Tensor) and out.shape == (2, 4)
    with pytest.raises(ValueError, match="auxiliary"):
        space.build(DARTS_V2, img_size=224, auxiliary=True)
    plain = space.build(DARTS_V2, C=8, layers=6).train()
    assert isinstance(plain(x), torch.Tensor)


def test_ops_and_activations(space):
    genotype = space.decode(
        {
            "normal": [[op, i] for op, i in zip(OPS, [0, 1, 0, 2, 3, 1, 4, 0])],
            "normal_concat": [2, 3, 4, 5],
            "reduce": [[op, i] for op, i in zip(OPS, [1, 0, 2, 1, 0, 3, 4, 2])],
            "reduce_concat": [3, 5],
        }
    )
    net = space.build(genotype, C=4, layers=3).eval()
    with torch.no_grad():
        assert net(torch.randn(1, 3, 16, 16)).shape == (1, 10)
    relus = [m for m in net.modules() if isinstance(m, nn.ReLU)]
    assert relus and len({id(m) for m in relus}) == len(relus)
    assert all(
        isinstance(m, (nn.Conv2d, nn.Linear))
        for m in net.modules()
        if hasattr(m, "weight") and not isinstance(m, nn.BatchNorm2d)
    )


def test_sampled_genotypes_are_valid_and_round_trip(space):
    for seed in range(50):
        genotype = space.sample(seed)
        for cell in (genotype.normal, genotype.reduce):
            assert len(cell) == 8
            assert all(op != "none" for op, _ in cell)
            for step in range(4):
                (_, a), (_, b) = cell[2 * step], cell[2 * step + 1]
                assert a != b and 0 <= a < step + 2 and 0 <= b < step + 2
        assert genotype.normal_concat == genotype.reduce_concat == (2, 3, 4, 5)
        text = space.encode(genotype)
        assert text.startswith("Genotype(normal=[(")
        assert parse_genotype(text) == genotype and space.decode(genotype.to_dict()) == genotype


def test_parser_accepts_darts_log_variants():
    text = (
        'Genotype( normal = (("sep_conv_3x3", 0), ("sep_conv_3x3", 1), ("sep_conv_3x3", 0), '
        '("sep_conv_3x3", 1), ("sep_conv_3x3", 1), ("skip_connect", 0), ("skip_connect", 0), '
        '("dil_conv_3x3", 2),), normal_concat=range(2, 6), reduce_concat=range(2, 6), '
        "reduce=[('max_pool_3x3', 0), ('max_pool_3x3', 1), ('skip_connect', 2), ('max_pool_3x3', 1), "
        "('max_pool_3x3', 0), ('skip_connect', 2), ('skip_connect', 2), ('max_pool_3x3', 1)])\n"
    )
    assert parse_genotype(text) == DARTS_V2


def _replace(text: str, old: str, new: str) -> str:
    assert old in text
    return text.replace(old, new, 1)


@pytest.mark.parametrize(
    "bad, message",
    [
        (_replace(DARTS_V2_TEXT, "('dil_conv_3x3', 2)", "('conv_9x9', 2)"), r"normal\[7\]: unknown op 'conv_9x9'"),
        (
            _replace(
                DARTS_V2_TEXT, "('sep_conv_3x3', 1), ('sep_conv_3x3', 0)", "('sep_conv_3x3', 2), ('sep_conv_3x3', 0)"
            ),
            r"normal\[1\]: input 2 is invalid for node 2; allowed inputs: 0..1",
        ),
        (
            _replace(
                DARTS_V2_TEXT, "('skip_connect', 2), ('skip_connect', 2)", "('skip_connect', 2), ('skip_connect', 5)"
            ),
            r"reduce\[6\]: input 5 is invalid for node 5",
        ),
        (_replace(DARTS_V2_TEXT, ", ('max_pool_3x3', 1)]", "]"), r"reduce must list 8 \(op, input\) pairs"),
        (
            _replace(DARTS_V2_TEXT, "normal_concat=[2, 3, 4, 5]", "normal_concat=[2, 3, 6]"),
            r"normal_concat: node 6 is invalid",
        ),
        (
            _replace(DARTS_V2_TEXT, "reduce_concat=[2, 3, 4, 5]", "reduce_concat=[3, 2]"),
            "reduce_concat must be strictly",
        ),
        (_replace(DARTS_V2_TEXT, "normal_concat=[2, 3, 4, 5], ", ""), r"missing field\(s\) \['normal_concat'\]"),
        (_replace(DARTS_V2_TEXT, "normal_concat", "normal_cat"), "unknown field 'normal_cat'"),
        (
            _replace(
                DARTS_V2_TEXT,
                "Genotype(",
                "Genotype_(",
            ),
            "expected 'Genotype'",
        ),
        (DARTS_V2_TEXT + " + 1", "unexpected character"),
        (DARTS_V2_TEXT[:-1], "expected"),
        (_replace(DARTS_V2_TEXT, "2, 3, 4, 5", "range(2, 6).__class__"), "unexpected character"),
        ("Genotype(normal=[(op, 0)])", "expected a quoted op name"),
    ],
)
def test_bad_genotypes_name_the_field(space, bad, message):
    with pytest.raises(ValueError, match=message):
        space.decode(bad)


def test_genotype_dataclass_is_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        DARTS_V2.normal = ()
    assert isinstance(DARTS_V2, Genotype)
