"""NAS-Bench-101: NASLib keys decode and round-trip, the cell rules, and parameter counts equal the published ones."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from lswag_lightning.spaces import get_space
from lswag_lightning.spaces.base import count_parameters
from lswag_lightning.spaces.nb101 import CONV1X1, CONV3X3, INPUT, MAXPOOL3X3, OUTPUT, prune, vertex_channels

NB101_FILE = "naslib_zc_subsets/zc_nasbench101_subset.json"

# The Inception-like example cell of the NAS-Bench-101 README (github.com/google-research/nasbench); the
# benchmark's query for it prints trainable_parameters: 2694282.
INCEPTION_LIKE = {
    "matrix": [
        [0, 1, 1, 1, 0, 1, 0],
        [0, 0, 0, 0, 0, 0, 1],
        [0, 0, 0, 0, 0, 0, 1],
        [0, 0, 0, 0, 1, 0, 0],
        [0, 0, 0, 0, 0, 0, 1],
        [0, 0, 0, 0, 0, 0, 1],
        [0, 0, 0, 0, 0, 0, 0],
    ],
    "ops": [INPUT, CONV1X1, CONV3X3, CONV3X3, CONV3X3, MAXPOOL3X3, OUTPUT],
}


@pytest.fixture(scope="module")
def space():
    return get_space("nb101")


@pytest.fixture(scope="module")
def naslib(shared_data_dir):
    path = shared_data_dir / NB101_FILE
    if not path.is_file():
        pytest.skip(f"{path} not found")
    return json.loads(path.read_text())["nasbench101"]["cifar10"]


def test_published_example_cell_has_the_published_parameter_count(space):
    spec = space.decode(INCEPTION_LIKE)
    assert space.param_count(spec) == 2_694_282
    with torch.device("meta"):
        assert count_parameters(space.build(spec)) == 2_694_282


def test_every_naslib_key_decodes_to_itself_and_has_the_published_params(space, naslib):
    # NASLib stores params in millions, rounded to the parameter (6 decimals): compare as integers.
    assert len(naslib) == 500
    for key, record in naslib.items():
        spec = space.decode(key)
        assert space.encode(spec) == key
        assert space.param_count(spec) == round(record["params"] * 1e6), key


def test_built_networks_match_the_closed_form_on_a_few_keys(space, naslib):
    keys = list(naslib)[:4] + [k for k in naslib if len(prune(space.decode(k)).ops) == 2][:1]
    for key in keys:
        spec = space.decode(key)
        with torch.device("meta"):
            assert count_parameters(space.build(spec)) == round(naslib[key]["params"] * 1e6)


def test_dict_and_list_forms_decode_like_the_key(space, naslib):
    key = next(iter(naslib))
    spec = space.decode(key)
    ints = [int(v) for v in key.strip("()").split(",")]
    assert space.decode(ints) == spec
    assert space.decode({"matrix": [ints[i * 7 : (i + 1) * 7] for i in range(7)], "ops": ints[49:]}) == spec
    assert space.decode(json.dumps(spec.to_dict())) == spec


def test_pruning_drops_dead_vertices_and_keeps_the_network(space):
    # vertex 5 reaches nothing: pruned, so the cell builds like the 6-vertex cell without it
    m = np.zeros((7, 7), int)
    m[0, 1] = m[1, 2] = m[2, 6] = m[0, 3] = m[3, 6] = m[1, 5] = m[0, 4] = m[4, 6] = 1
    ops = [INPUT, CONV3X3, CONV1X1, MAXPOOL3X3, CONV3X3, CONV3X3, OUTPUT]
    spec = space.decode({"matrix": m.tolist(), "ops": ops})
    small = space.decode({"matrix": np.delete(np.delete(m, 5, 0), 5, 1).tolist(), "ops": ops[:5] + [OUTPUT]})
    assert prune(spec) == prune(small) and spec != small
    assert space.param_count(spec) == space.param_count(small)
    assert space.encode(small).startswith("{")  # fewer than 7 vertices: JSON form


def test_vertex_channels_split_the_output_and_propagate_back():
    m = np.array(INCEPTION_LIKE["matrix"], dtype=bool)
    # four vertices feed the output: 128 = 32 * 4; vertex 3 takes its successor's width
    assert vertex_channels(128, 128, m) == [128, 32, 32, 32, 32, 32, 128]
    # 3 feeding vertices of 256: 86, 85, 85
    m3 = m.copy()
    m3[5, 6] = False
    m3[3, 5] = True  # vertex 3 now feeds 4 and 5; 5 feeds nothing (a pruned cell would drop it)
    assert vertex_channels(128, 256, m3)[1:5] == [86, 85, 85, 85]


def test_forward_gives_logits_and_uses_relu_modules(space, naslib):
    torch.manual_seed(0)
    net = space.build(next(iter(naslib)), num_classes=10, stem_channels=16, cells_per_stack=1).eval()
    with torch.no_grad():
        out = net(torch.randn(2, 3, 32, 32))
    assert out.shape == (2, 10) and torch.isfinite(out).all()
    assert any(isinstance(m, torch.nn.ReLU) for m in net.modules())


@pytest.mark.parametrize(
    "bad, message",
    [
        ("(0, 1)", "56 ints"),
        ("(" + ", ".join(["0"] * 49 + ["0", "2", "2", "2", "2", "2", "1"]) + ")", "not reachable"),
        ({"matrix": [[0, 1], [1, 0]], "ops": [INPUT, OUTPUT]}, "above the diagonal"),
        ({"matrix": [[0, 1], [0, 0]], "ops": [INPUT, "conv5x5"]}, "must be 'output'"),
        ({"matrix": [[0, 1, 0], [0, 0, 1], [0, 0, 0]], "ops": [INPUT, "conv5x5", OUTPUT]}, "unknown op"),
        ({"matrix": [[0, 1], [0, 0]], "ops": [INPUT, 9]}, "op code 9"),
        ({"matrix": [[0, 1]], "ops": [INPUT, OUTPUT]}, "2 x 2"),
        (
            {
                "matrix": np.triu(np.ones((7, 7), int), 1).tolist(),
                "ops": [INPUT, CONV3X3, CONV3X3, CONV3X3, CONV3X3, CONV3X3, OUTPUT],
            },
            "at most 9",
        ),
        ({"ops": [INPUT, OUTPUT]}, "exactly the keys"),
    ],
)
def test_bad_cells_name_the_problem(space, bad, message):
    with pytest.raises(ValueError, match=message):
        space.decode(bad)
