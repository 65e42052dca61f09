"""The ranking for a new space with no trained architecture (k = 0): a fixed log-rank fusion chosen across benchmarks.

:func:`choose_across` grows a proxy set greedily to maximise the MEAN Spearman ρ over several labelled tables (each
table's accuracy columns averaged first, so a benchmark with seven columns weighs as much as one with one), under a
scoring-cost cap: the sum of the members' costs, each a ratio to one training step of the same network
(``results/proxy_costs.csv``), must stay at most ``max_cost``; the sum over-counts the passes the engine shares, so
the cap is conservative. :func:`leave_one_out` chooses on all benchmarks but one and scores the choice on the one
left out: the honest estimate of what the default gives on a space nobody labelled.

The shipped default (``lswag_lightning/conf/ranking/default.yaml``) is the set chosen on all benchmarks; its
leave-one-benchmark-out numbers and the command that chose it are written beside it. :func:`load_default` reads it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from lswag_lightning.analysis.correlations import spearman
from lswag_lightning.analysis.fusion import log_rank_sum
from lswag_lightning.analysis.table import orient, oriented_values

DEFAULT_FILE = Path(__file__).resolve().parents[1] / "conf" / "ranking" / "default.yaml"


@dataclass
class DefaultRanking:
    """The k = 0 ranking: ``proxies`` fused by ``fusion``, and where it came from."""

    proxies: list[str]
    fusion: str = "log_rank"
    source: str = ""
    info: dict = field(default_factory=dict)

    def score_table(self, table: pd.DataFrame) -> np.ndarray:
        """Log-rank score of every row of ``table`` (higher = better; NaN values rank last)."""
        orientation = orient(self.proxies)
        columns = []
        for name in self.proxies:
            v = oriented_values(table, name, orientation)
            columns.append(np.where(np.isnan(v), -np.inf, v))
        return log_rank_sum(columns)


def load_default(path: str | Path = DEFAULT_FILE) -> DefaultRanking:
    """The shipped k = 0 ranking (or the one in ``path``); ``ValueError`` naming the file when malformed."""
    path = Path(path)
    data = yaml.safe_load(path.read_text())
    if not isinstance(data, dict) or not isinstance(data.get("proxies"), list) or not data["proxies"]:
        raise ValueError(f"{path}: expected a mapping with a non-empty 'proxies' list")
    if data.get("fusion", "log_rank") != "log_rank":
        raise ValueError(f"{path}: only fusion log_rank is supported, got {data.get('fusion')!r}")
    info = {k: v for k, v in data.items() if k not in ("proxies", "fusion")}
    return DefaultRanking([str(p) for p in data["proxies"]], "log_rank", str(path), info)


@dataclass
class Benchmark:
    """A labelled table for the choice: its name, rows, accuracy columns (each averaged with equal weight)."""

    name: str
    table: pd.DataFrame
    accuracy: list[str]

    def rho(self, members: Sequence[str]) -> float:
        """Mean over the accuracy columns of Spearman ρ between the log-rank fusion of ``members`` and accuracy."""
        orientation = orient(members)
        cols = []
        for name in members:
            v = oriented_values(self.table, name, orientation)
            cols.append(np.where(np.isnan(v), -np.inf, v))
        score = log_rank_sum(cols)
        return float(np.mean([spearman(score, self.table[a].to_numpy(dtype=float)) for a in self.accuracy]))


def choose_across(
    benchmarks: Sequence[Benchmark],
    candidates: Sequence[str],
    costs: Mapping[str, float],
    *,
    max_cost: float = 3.0,
    max_size: int = 6,
    min_gain: float = 1e-3,
) -> tuple[list[str], float]:
    """The proxy set (and its mean ρ over ``benchmarks``) grown greedily from the best affordable single proxy,
    adding the proxy that raises the mean ρ most while the gain exceeds ``min_gain``, the set has fewer than
    ``max_size`` members and the summed cost stays at most ``max_cost``. Candidates without a cost are refused."""
    unknown = [c for c in candidates if c not in costs]
    if unknown:
        raise ValueError(f"no measured cost for {unknown}; measure them (python -m lswag_lightning.analysis.costs)")

    def mean_rho(members: Sequence[str]) -> float:
        return float(np.mean([b.rho(members) for b in benchmarks]))

    affordable = [c for c in candidates if costs[c] <= max_cost]
    if not affordable:
        raise ValueError(f"no candidate costs at most {max_cost}x a training step")
    scores = {c: mean_rho([c]) for c in affordable}
    chosen = [max(scores, key=lambda c: scores[c])]
    best = scores[chosen[0]]
    while len(chosen) < max_size:
        spent = sum(costs[c] for c in chosen)
        trial = {c: mean_rho([*chosen, c]) for c in affordable if c not in chosen and spent + costs[c] <= max_cost}
        trial = {c: r for c, r in trial.items() if math.isfinite(r)}
        if not trial:
            break
        name = max(trial, key=lambda c: trial[c])
        if trial[name] <= best + min_gain:
            break
        chosen.append(name)
        best = trial[name]
    return chosen, best


def leave_one_out(
    benchmarks: Sequence[Benchmark], candidates: Sequence[str], costs: Mapping[str, float], **options
) -> pd.DataFrame:
    """One row per benchmark left out: the set chosen on the others, its ρ there per accuracy column (and the mean),
    next to #params and L-SWAG on the same rows."""
    rows = []
    for held in benchmarks:
        others = [b for b in benchmarks if b is not held]
        chosen, fit_rho = choose_across(others, candidates, costs, **options)
        for acc in held.accuracy:
            one = Benchmark(held.name, held.table, [acc])
            rows.append(
                {
                    "held_out": held.name,
                    "accuracy": acc,
                    "default_set": ",".join(chosen),
                    "rho_chosen_on_others": fit_rho,
                    "rho_default": one.rho(chosen),
                    "rho_params": one.rho(["params"]),
                    "rho_lswag": one.rho(["lswag"]) if "lswag" in held.table.columns else math.nan,
                }
            )
    return pd.DataFrame(rows)
