"""NAS-Bench-301 through the DARTS space: NASLib's compact keys decode and round-trip, and the NB301 networks have
the published parameter counts."""

from __future__ import annotations

import json

import pytest
import torch

from lswag_lightning.spaces import get_space
from lswag_lightning.spaces.darts import DARTS_V2
from lswag_lightning.spaces.nb301 import NB301_BUILD_OPTIONS, NB301_OPS, to_compact

NB301_FILE = "naslib_zc_subsets/zc_nasbench301_subset.json"
KEY = (
    "[[(0, 0), (1, 5), (1, 1), (0, 1), (1, 3), (0, 3), (1, 3), (3, 2)], "
    "[(1, 0), (0, 2), (1, 3), (0, 3), (3, 0), (0, 1), (2, 0), (3, 6)]]"
)


@pytest.fixture(scope="module")
def space():
    return get_space("darts")


@pytest.fixture(scope="module")
def naslib(shared_data_dir):
    path = shared_data_dir / NB301_FILE
    if not path.is_file():
        pytest.skip(f"{path} not found")
    return json.loads(path.read_text())["cifar10"]


def built_params(net: torch.nn.Module) -> int:
    return sum(p.numel() for n, p in net.named_parameters() if "auxiliary" not in n)


def test_compact_key_decodes_to_the_darts_genotype(space):
    g = space.decode(KEY)
    assert g.normal[:2] == (("max_pool_3x3", 0), ("dil_conv_3x3", 1))
    assert g.reduce[-1] == ("dil_conv_5x5", 3)
    assert g.normal_concat == g.reduce_concat == (2, 3, 4, 5)
    assert to_compact(g) == KEY
    assert space.decode(json.loads(KEY.replace("(", "[").replace(")", "]"))) == g  # nested lists
    assert space.decode(space.encode(g)) == g


def test_every_naslib_key_round_trips_and_has_the_published_params(space, naslib):
    # NASLib stores params in millions (6 decimals): compare as integers; closed form, no network built
    assert len(naslib) == 725
    for key, record in naslib.items():
        g = space.decode(key)
        assert record["arch"] == key and to_compact(g) == key
        assert space.param_count(g, **NB301_BUILD_OPTIONS) == round(record["params"]["score"] * 1e6), key


def test_built_nb301_networks_match_the_file_on_a_few_keys(space, naslib):
    for key in list(naslib)[:3]:
        with torch.device("meta"):
            net = space.build(key, **NB301_BUILD_OPTIONS)
        assert built_params(net) == round(naslib[key]["params"]["score"] * 1e6)


def test_a_decoded_naslib_key_builds_the_nb301_network_with_the_space_defaults(space, naslib):
    """decode(key) then build(spec) with no options gives NB301's network (C=32, 8 cells, op BNs without weights);
    explicit options still win, and a genotype written the DARTS way keeps the small default network."""
    for key, record in naslib.items():
        assert space.param_count(space.decode(key)) == round(record["params"]["score"] * 1e6), key
    key = next(iter(naslib))
    g = space.decode(key)
    with torch.device("meta"):
        assert built_params(space.build(g)) == round(naslib[key]["params"]["score"] * 1e6)
        assert built_params(space.build(space.decode(str(g)))) == space.param_count(str(g), C=16, layers=8)
    assert space.param_count(g, C=16, op_affine=True) == space.param_count(str(g))  # explicit options win
    assert space.decode(g).benchmark == "nb301" and space.mutate(g, 0).benchmark == "nb301"
    assert space.decode(str(g)) == g and space.decode(str(g)).benchmark is None  # identity ignores the benchmark


def test_op_affine_false_drops_only_the_op_batchnorm_weights(space):
    g = space.decode(KEY)
    with torch.device("meta"):
        affine = space.build(g, C=8, layers=5, op_affine=True)  # a NASLib key defaults to op_affine=False
        plain = space.build(g, C=8, layers=5, op_affine=False)
    missing = {n for n, _ in affine.named_parameters()} - {n for n, _ in plain.named_parameters()}
    assert missing and all(".ops." in n and n.endswith((".weight", ".bias")) for n in missing)
    assert all(p.dim() == 1 for n, p in affine.named_parameters() if n in missing)  # BatchNorm vectors only
    torch.manual_seed(0)
    net = space.build(g, C=8, layers=5, op_affine=False).eval()
    with torch.no_grad():
        assert net(torch.randn(2, 3, 32, 32)).shape == (2, 10)


def test_genotypes_outside_nb301_cannot_be_written_compactly():
    with pytest.raises(ValueError, match="not an NB301 op"):
        to_compact(
            get_space("darts").decode(
                {**DARTS_V2.to_dict(), "normal": [["none", 0]] + DARTS_V2.to_dict()["normal"][1:]}
            )
        )
    assert len(NB301_OPS) == 7


@pytest.mark.parametrize(
    "bad, message",
    [
        ("[[(0, 0)], [(0, 0)]]", "needs 8"),
        (KEY.replace("(3, 6)", "(3, 7)"), "op index 7"),
        (KEY.replace("(0, 0), (1, 5)", "(4, 0), (1, 5)"), "input 4 is invalid for node 2"),
        ("[[(0, 0), (1, 5)]]", "expected"),
        ([[(0, 0)] * 8], "2 cells"),
        ("[1, 2]", "expected"),
    ],
)
def test_bad_compact_keys_name_the_problem(space, bad, message):
    with pytest.raises(ValueError, match=message):
        space.decode(bad)
