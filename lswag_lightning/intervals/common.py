"""Depth bins and columns shared by the layer-profile modules (JSON: :func:`lswag_lightning.jsonio.plain`, NaN/inf
-> null)."""

from __future__ import annotations

from lswag_lightning.proxies.layers import MAX_BIN

N_BINS = MAX_BIN + 1
BINS = list(range(N_BINS))
STAT_COLUMNS = [f"stat_b{b}" for b in BINS]
LAMBDA_COLUMNS = [f"lambda_b{b}" for b in BINS]
#: Columns of ``networks.csv``: one row per profiled network.
NETWORK_COLUMNS = ("arch", "depth", *STAT_COLUMNS, *LAMBDA_COLUMNS, "seconds")
