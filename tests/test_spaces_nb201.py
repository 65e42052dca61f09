"""NAS-Bench-201: benchmark index order, arch strings, and parameter counts equal to the published ones."""

from __future__ import annotations

import dataclasses
from collections import Counter

import pandas as pd
import pytest
import torch
from torch import nn

from lswag_lightning.spaces import get_space
from lswag_lightning.spaces.nb201 import (
    EDGES,
    NUM_ARCHS,
    OPS,
    NB201Arch,
    arch_to_index,
    index_to_arch,
    parse_arch_string,
)

BEST_C100 = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|"
NUM_CLASSES = {"cifar10": 10, "cifar100": 100, "ImageNet16-120": 120}


@pytest.fixture(scope="module")
def space():
    return get_space("nb201")


@pytest.fixture(scope="module")
def naslib_table(shared_data_dir):
    return pd.read_csv(shared_data_dir / "nb201" / "zc_nasbench201_subset_naslib_flat.csv")


def n_params(net: nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())


def test_known_benchmark_indices_without_data():
    # Indices checked against the published 200-epoch table (data README §1).
    assert index_to_arch(0) == (
        "|avg_pool_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|nor_conv_1x1~0|skip_connect~1|skip_connect~2|"
    )
    assert index_to_arch(9) == "|avg_pool_3x3~0|+|none~0|none~1|+|skip_connect~0|none~1|nor_conv_3x3~2|"
    assert arch_to_index(BEST_C100) == 9930
    assert index_to_arch(15624) == ("|nor_conv_1x1~0|+|none~0|nor_conv_1x1~1|+|none~0|nor_conv_1x1~1|nor_conv_1x1~2|")


def test_index_string_round_trip_for_all_cells(space):
    strings = [index_to_arch(i) for i in range(NUM_ARCHS)]
    assert len(set(strings)) == NUM_ARCHS == 5**6
    for i, s in enumerate(strings):
        spec = space.decode(s)
        assert space.encode(spec) == s
        assert arch_to_index(s) == i and space.arch_to_index(spec) == i
        assert space.decode({"index": i}) == spec
    with pytest.raises(ValueError, match="0..15624"):
        index_to_arch(NUM_ARCHS)
    with pytest.raises(ValueError):
        index_to_arch(-1)


def test_benchmark_order_matches_published_table(shared_data_dir):
    table = pd.read_csv(shared_data_dir / "nb201" / "nasbench201_test_acc_200ep.csv")
    assert len(table) == NUM_ARCHS
    assert list(table["ArchitectureString"]) == [index_to_arch(i) for i in range(NUM_ARCHS)]
    best = table["CIFAR100TestAccuracy200Epochs"].idxmax()
    assert index_to_arch(int(best)) == BEST_C100


def test_naslib_table_indices_agree(naslib_table):
    for idx, arch in zip(naslib_table["nb201_index"], naslib_table["arch_str"]):
        assert arch_to_index(arch) == idx


def test_param_counts_equal_published_for_every_architecture(space, naslib_table):
    # NASLib / NAS-Bench-Suite-Zero report params in millions with 6 decimals, i.e. exact counts.
    assert len(naslib_table) == 2173  # 724 CIFAR-10 + 725 CIFAR-100 + 724 ImageNet16-120
    for row in naslib_table.itertuples():
        count = space.param_count(row.arch_str, num_classes=NUM_CLASSES[row.dataset])
        assert round(count / 1e6, 6) == pytest.approx(row.params, abs=1e-9), (row.dataset, row.arch_str)
    # The closed form equals the built network: parameters depend only on the numbers of 3x3 / 1x1 convs,
    # so one built net per (n3x3, n1x1) group present in the table covers every row's count.
    c10 = naslib_table[naslib_table["dataset"] == "cifar10"]
    assert len(c10) == 724
    groups = {}
    for arch in c10["arch_str"]:
        ops = Counter(parse_arch_string(arch).ops)
        groups.setdefault((ops["nor_conv_3x3"], ops["nor_conv_1x1"]), arch)
    assert len(groups) >= 20
    for arch in groups.values():
        assert n_params(space.build(arch)) == space.param_count(arch)


@pytest.mark.slow
def test_built_param_counts_equal_published_for_all_cifar10_rows(space, naslib_table):
    c10 = naslib_table[naslib_table["dataset"] == "cifar10"]
    with torch.device("meta"):
        for row in c10.itertuples():
            assert round(n_params(space.build(row.arch_str)) / 1e6, 6) == pytest.approx(row.params, abs=1e-9)


def test_published_extremes(space):
    # CIFAR-10 extremes of the benchmark (0.073306M and 1.531546M): the all-none cell (only stem, reductions,
    # lastact BN and classifier) and the all-3x3-conv cell
    assert space.param_count("|none~0|+|none~0|none~1|+|none~0|none~1|none~2|") == 73_306
    assert (
        space.param_count("|" + "|+|".join("|".join(f"nor_conv_3x3~{j}" for j in range(i)) for i in (1, 2, 3)) + "|")
        == 1_531_546
    )


def test_network_structure(space):
    net = space.build(BEST_C100).eval()
    cells = [m for m in net.modules() if type(m).__name__ == "NB201Cell"]
    reductions = [m for m in net.modules() if type(m).__name__ == "ResidualReduction"]
    assert len(cells) == 15 and len(reductions) == 2
    assert net.stem[0].out_channels == 16 and net.classifier.in_features == 64
    convs = [m for m in net.modules() if isinstance(m, nn.Conv2d)]
    assert {m.bias is None for m in convs} == {True}
    assert all(m.affine for m in net.modules() if isinstance(m, nn.BatchNorm2d))
    # ReLU-Conv-BN ops: 5 conv edges x 15 cells + 2 x 2 in reductions + lastact
    assert sum(isinstance(m, nn.ReLU) for m in net.modules()) == 5 * 15 + 4 + 1
    x = torch.randn(3, 3, 32, 32)
    with torch.no_grad():
        assert net(x).shape == (3, 10)
    # the none op outputs zeros: a cell of only none edges maps anything to zero
    zero_net = space.build("|none~0|+|none~0|none~1|+|none~0|none~1|none~2|", C=4, N=1).eval()
    with torch.no_grad():
        assert torch.count_nonzero(zero_net.cells[0](torch.randn(1, 4, 8, 8))) == 0


def test_build_options(space):
    spec = space.sample(0)
    for kwargs in ({"C": 8, "N": 2}, {"affine": False}, {"in_chans": 1, "num_classes": 3}):
        net = space.build(spec, **kwargs)
        assert n_params(net) == space.param_count(spec, **kwargs)
    with torch.no_grad():
        assert space.build(spec, in_chans=1, num_classes=3).eval()(torch.randn(2, 1, 8, 8)).shape == (2, 3)


def test_sample_covers_ops_and_specs_are_frozen(space):
    specs = [space.sample(s) for s in range(200)]
    assert {op for spec in specs for op in spec.ops} == set(OPS)
    assert all(len(spec.ops) == len(EDGES) for spec in specs)
    with pytest.raises(dataclasses.FrozenInstanceError):
        specs[0].ops = ("none",) * 6


@pytest.mark.parametrize(
    "bad, field",
    [
        ("|nor_conv_3x3~0|+|nor_conv_3x3~0|conv_5x5~1|+|none~0|none~1|none~2|", "edge 2<-1"),
        ("|nor_conv_3x3~0|+|nor_conv_3x3~0|none~1|+|none~0|none~2|none~2|", "edge 3<-1"),
        ("|nor_conv_3x3~0|+|nor_conv_3x3~0|+|none~0|none~1|none~2|", "node 2"),
        ("|nor_conv_3x3~0|+|none~0|none~1|", "3 '\\+'-separated node groups"),
        ("|nor_conv_3x3-0|+|none~0|none~1|+|none~0|none~1|none~2|", "edge 1<-0"),
    ],
)
def test_bad_arch_strings_name_the_field(space, bad, field):
    with pytest.raises(ValueError, match=field):
        space.decode(bad)
    with pytest.raises(ValueError, match="allowed ops"):
        space.decode({"ops": ["none"] * 5 + ["conv"]})
    with pytest.raises(ValueError, match="exactly one of the keys"):
        space.decode({"arch": BEST_C100})


def test_decode_accepts_dict_forms(space):
    spec = space.decode(BEST_C100)
    assert isinstance(spec, NB201Arch)
    assert space.decode({"arch_str": BEST_C100}) == spec
    assert space.decode({"ops": list(spec.ops)}) == spec
    assert space.decode('{"index": 9930}') == spec
