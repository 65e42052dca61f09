"""jsonio: one normaliser, the non-finite policy named by each writer."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from lswag_lightning.jsonio import decode_values, dumps, encode_values, plain, write_json

VALUE = {"a": (1, np.int64(2), np.float32(0.5)), 3: [math.nan, -math.inf, np.bool_(True)], "p": Path("x/y")}


def test_policies():
    assert plain(VALUE) == {"a": [1, 2, 0.5], "3": [None, None, True], "p": "x/y"}
    assert plain(VALUE, "string")["3"] == ["nan", "-inf", True]
    kept = plain(VALUE, "keep")["3"]
    assert math.isnan(kept[0]) and kept[1] == -math.inf
    with pytest.raises(ValueError, match="nonfinite must be one of"):
        plain(1.0, "zero")


def test_round_trip_and_bytes(tmp_path):
    values = {"lswag": 1.5, "zico": math.nan, "synflow": math.inf}
    back = decode_values(json.loads(json.dumps(encode_values(values))))
    assert back["lswag"] == 1.5 and math.isnan(back["zico"]) and back["synflow"] == math.inf
    data = {"x": [1.0, 2], "y": "z"}
    assert write_json(tmp_path / "a.json", data).read_text() == json.dumps(data, indent=2)
    assert write_json(tmp_path / "b.json", data, newline=True).read_text() == json.dumps(data, indent=2) + "\n"
    assert dumps({"o": object}, fallback=str) == json.dumps({"o": str(object)})
