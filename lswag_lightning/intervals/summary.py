"""The summary object of a layer-profile run (:class:`LayerProfileResult`, what ``layers.json`` holds), computed
by :func:`analyse` from a per-network table; :mod:`lswag_lightning.intervals.render` writes it out."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from lswag_lightning.intervals.check import label_check, per_bin_correlation
from lswag_lightning.intervals.common import BINS, LAMBDA_COLUMNS, N_BINS, STAT_COLUMNS
from lswag_lightning.intervals.rule import DEFAULT_K, DEFAULT_VISIBLE, BinStats, IntervalProposal, propose_interval
from lswag_lightning.jsonio import plain


@dataclass
class LayerProfileResult:
    """Everything ``lswag-layers`` writes to ``layers.json``."""

    space: str
    n_networks: int
    proposal: IntervalProposal
    stats: BinStats
    settings: dict[str, Any]
    depth: dict[str, float]
    per_bin_rho: dict[str, list[float]] = field(default_factory=dict)
    label_checks: dict[str, dict[str, Any]] = field(default_factory=dict)
    seconds_per_network: float = math.nan

    def to_dict(self) -> dict:
        return plain(
            {
                "space": self.space,
                "n_networks": self.n_networks,
                "proposed_interval": list(self.proposal.interval) if self.proposal.interval is not None else None,
                "spike": self.proposal.spike,
                "reason": self.proposal.reason,
                "rule": self.proposal.rule,
                "proposal": self.proposal.to_dict(),
                "bins": BINS,
                "stat": {
                    "name": "mean over layer elements of log σ_w (σ_w: population std of the gradient over K "
                    "samples), averaged over the layers of the bin",
                    **asdict(self.stats),
                },
                "depth": self.depth,
                "settings": self.settings,
                "per_bin_rho": self.per_bin_rho,
                "label_checks": self.label_checks,
                "seconds_per_network": self.seconds_per_network,
            }
        )


def analyse(
    networks: pd.DataFrame,
    space: str,
    settings: Mapping[str, Any],
    *,
    accuracy_columns: Sequence[str] = (),
    k: float = DEFAULT_K,
    visible: float = DEFAULT_VISIBLE,
    boundary: bool = False,
    splits: int = 20,
    seed: int = 0,
) -> LayerProfileResult:
    """Aggregate a :func:`profile_networks` table (plus accuracy columns), apply the rule, check it on labels."""
    matrix = networks[STAT_COLUMNS].to_numpy(dtype=float)
    stats = BinStats.from_matrix(matrix)
    proposal = propose_interval(stats, k=k, visible=visible, boundary=boundary)
    depth = networks["depth"].astype(float)
    result = LayerProfileResult(
        space=space,
        n_networks=len(networks),
        proposal=proposal,
        stats=stats,
        settings=dict(settings),
        depth={"min": float(depth.min()), "median": float(depth.median()), "max": float(depth.max())},
        seconds_per_network=float(networks["seconds"].mean()),
    )
    lam = networks[LAMBDA_COLUMNS].to_numpy(dtype=float)
    has_bin = _bins_present(networks["depth"].to_numpy(dtype=int))
    for acc in accuracy_columns:
        values = networks[acc].to_numpy(dtype=float)
        result.per_bin_rho[acc] = per_bin_correlation(lam, has_bin, values)
        try:
            result.label_checks[acc] = label_check(lam, values, proposal.interval, n_splits=splits, seed=seed)
        except ValueError as exc:
            result.label_checks[acc] = {"skipped": str(exc)}
    return result


def _bins_present(depths: np.ndarray) -> np.ndarray:
    """bool (networks, 11): whether a network of depth D has a layer in each bin."""
    from lswag_lightning.proxies.layers import depth_bins

    cache: dict[int, np.ndarray] = {}
    out = np.zeros((len(depths), N_BINS), dtype=bool)
    for i, d in enumerate(depths):
        if d not in cache:
            row = np.zeros(N_BINS, dtype=bool)
            row[sorted(set(depth_bins(int(d))))] = True
            cache[d] = row
        out[i] = cache[d]
    return out
