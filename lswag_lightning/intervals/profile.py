"""Per-network gradient statistics: score Λ on random networks of a space and bin its per-layer table by depth;
reload an earlier run's table for re-analysis."""

from __future__ import annotations

import json
import logging
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from lswag_lightning.intervals.common import LAMBDA_COLUMNS, N_BINS, NETWORK_COLUMNS, STAT_COLUMNS
from lswag_lightning.proxies.layers import MAX_BIN

log = logging.getLogger("lswag_lightning.intervals")


def bin_profile(layers: Sequence[Mapping[str, Any]]) -> tuple[np.ndarray, np.ndarray]:
    """Per-bin (stat, lambda) of one network from the engine's per-layer table (``details["lswag"]["lambda"]
    ["layers"]``: dicts with ``bin``, ``mean_log_std``, ``lambda_term``). Shapes (11,), (11,)."""
    stat = np.full(N_BINS, np.nan)
    lam = np.zeros(N_BINS)
    by_bin: dict[int, list[float]] = {}
    for layer in layers:
        b = int(layer["bin"])
        if not 0 <= b < N_BINS:
            raise ValueError(f"layer bin {b} outside 0..{MAX_BIN}")
        lam[b] += float(layer["lambda_term"])
        value = float(layer["mean_log_std"])
        if math.isfinite(value):
            by_bin.setdefault(b, []).append(value)
    for b, values in by_bin.items():
        stat[b] = float(np.mean(values))
    return stat, lam


def _lambda_options(score_options: Mapping[str, Any]) -> dict[str, Any]:
    """``score_options`` for Λ over every layer (no interval: the profile bins all of them)."""
    options = {k: v for k, v in score_options.items() if k not in ("layer_interval", "psi_layers")}
    return {**options, "layer_interval": None}


def profile_network(
    model: torch.nn.Module, inputs: torch.Tensor, targets: torch.Tensor, **score_options: Any
) -> dict[str, Any]:
    """Score Λ on ``model`` (all layers) and return its depth, per-bin statistic and per-bin Λ terms."""
    from lswag_lightning.proxies import score_network

    return profile_of(score_network(model, inputs, targets, proxies=("lswag",), **_lambda_options(score_options)))


def profile_of(report: Any) -> dict[str, Any]:
    """Depth, per-bin statistic and per-bin Λ terms from a :class:`~lswag_lightning.proxies.ProxyReport` of
    ``lswag`` over every layer; ``RuntimeError`` with the engine's status when it holds no gradient statistics."""
    details = report.details.get("lswag", {}).get("lambda")
    if details is None:
        raise RuntimeError(f"no gradient statistics for this network: {report.status.get('lswag.lambda')}")
    stat, lam = bin_profile(details["layers"])
    return {"depth": len(details["layers"]), "stat": stat, "lambda": lam, "seconds": report.total_seconds}


def profile_networks(
    space: Any,
    archs: Sequence[str],
    inputs: torch.Tensor,
    targets: torch.Tensor,
    *,
    build_options: Mapping[str, Any],
    score_options: Mapping[str, Any] | None = None,
    device: str | torch.device = "cpu",
    init_seed_base: int = 0,
    progress: bool = False,
) -> pd.DataFrame:
    """One row per architecture: ``arch``, ``depth`` (weight layers), ``stat_b0..10``, ``lambda_b0..10``,
    ``seconds``. Each network is scored by :func:`lswag_lightning.candidates.score_candidate` (initialised on the
    CPU from the seed of its arch string and ``init_seed_base``). An interrupt (Ctrl-C, SIGINT) stops the loop and
    returns the rows done so far (the first ones of ``archs``)."""
    from tqdm.auto import tqdm

    from lswag_lightning.candidates import score_candidate

    dev = torch.device(device)
    x, y = inputs.to(dev), targets.to(dev)
    options = _lambda_options(dict(score_options or {}))
    rows = []
    try:
        for arch in tqdm(archs, unit="net", disable=not progress, desc=f"{space.name} layers", dynamic_ncols=True):
            scored = score_candidate(
                space,
                arch,
                x,
                y,
                ("lswag",),
                device=dev,
                build_options=build_options,
                score_options=options,
                seed_base=init_seed_base,
            )
            result = profile_of(scored.report)
            rows.append(
                {
                    "arch": arch,
                    "depth": result["depth"],
                    **dict(zip(STAT_COLUMNS, result["stat"])),
                    **dict(zip(LAMBDA_COLUMNS, result["lambda"])),
                    "seconds": result["seconds"],
                }
            )
    except KeyboardInterrupt:  # Ctrl-C / SIGINT: keep the networks profiled so far
        log.warning("interrupted after %d of %d networks; analysing those", len(rows), len(archs))
        if not rows:
            raise
    return pd.DataFrame(rows, columns=["arch", "depth", *STAT_COLUMNS, *LAMBDA_COLUMNS, "seconds"])


def load_networks(out_dir: str | os.PathLike) -> tuple[pd.DataFrame, dict[str, Any], list[str]]:
    """An earlier run's ``networks.csv``, its ``layers.json`` and its accuracy columns (for re-analysis)."""
    out = Path(out_dir)
    if not (out / "networks.csv").is_file() or not (out / "layers.json").is_file():
        raise ValueError(f"no lswag-layers output in {out} (networks.csv and layers.json are needed)")
    networks = pd.read_csv(out / "networks.csv")
    missing = [c for c in NETWORK_COLUMNS if c not in networks.columns]
    if missing:
        raise ValueError(f"{out / 'networks.csv'} lacks the columns {missing}")
    previous = json.loads((out / "layers.json").read_text())
    return networks, previous, [c for c in networks.columns if c not in NETWORK_COLUMNS]
