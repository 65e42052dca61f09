"""Depth bins and columns shared by the layer-profile modules, and their JSON policy (NaN/inf -> null)."""
from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from lswag_lightning.proxies.layers import MAX_BIN

N_BINS = MAX_BIN + 1
BINS = list(range(N_BINS))
STAT_COLUMNS = [f"stat_b{b}" for b in BINS]
LAMBDA_COLUMNS = [f"lambda_b{b}" for b in BINS]
#: Columns of ``networks.csv``: one row per profiled network.
NETWORK_COLUMNS = ("arch", "depth", *STAT_COLUMNS, *LAMBDA_COLUMNS, "seconds")


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, Mapping):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        return float(obj) if math.isfinite(obj) else None
    if isinstance(obj, np.bool_):
        return bool(obj)
    return obj

