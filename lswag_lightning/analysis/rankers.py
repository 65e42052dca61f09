"""Ranking methods as one interface: fitted on k labelled architectures, they rank any pool.

Every method takes oriented columns of the labelled rows (``values``: proxy and feature name -> array, higher is
better for proxies) and their accuracy, and returns a :class:`FittedRanking` whose :meth:`~FittedRanking.score`
ranks any rows (higher = better). Set fusions rank within the rows they score (:func:`rank_fusion`), the learned
ranking too (:mod:`lswag_lightning.analysis.learned`), so a fitted ranking applies to any pool.

Methods (:data:`BASE_METHODS`, plus ``fixed:<name>`` for each fixed set; ``auto``, which chooses among them, is in
:mod:`lswag_lightning.analysis.auto`, whose :func:`~lswag_lightning.analysis.auto.fit_ranking` fits any of them):

- ``params``: #params alone (nothing fitted; the baseline every zero-cost proxy must beat);
- ``best_single``: the proxy with the highest Spearman ρ on the labelled rows;
- ``libra_rank_mean`` / ``libra_log_rank``: LIBRA's triple chosen on the labelled rows, fused by mean rank / log-rank;
- ``greedy``: the log-rank set grown greedily on the labelled rows (:func:`greedy_log_rank`, seeded by the fixed
  sets when one of them ranks the labelled rows better);
- ``all_log_rank``: the log-rank fusion of every proxy of the pool (nothing fitted);
- ``fixed:<name>``: the log-rank fusion of a named set, e.g. AZ-NAS's or VKDNW_agg's (nothing fitted);
- ``learned``: the learned ranking on every proxy and structure feature;
- ``default``: the shipped ranking for a new space (``conf/ranking/default.yaml``, nothing fitted).
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from lswag_lightning.analysis.correlations import spearman
from lswag_lightning.analysis.fusion import FUSION_METHODS, greedy_log_rank, rank_fusion
from lswag_lightning.analysis.learned import LearnedConfig, LearnedRanking, fit_learned, learned_from_dict
from lswag_lightning.analysis.libra_select import select_rows
from lswag_lightning.analysis.rows import PreparedRows, jsonable
from lswag_lightning.analysis.table import Orientation

BASE_METHODS = (
    "params",
    "best_single",
    "libra_rank_mean",
    "libra_log_rank",
    "greedy",
    "all_log_rank",
    "learned",
)

#: the fixed sets of README "Beyond the paper": AZ-NAS's fusion and VKDNW_agg's, each used when its columns exist
PUBLISHED_FIXED_SETS = {
    "az": ("az_expressivity", "az_progressivity", "az_trainability", "flops"),
    "vkdnw_agg": ("vkdnw_single", "jacov", "az_expressivity", "az_trainability", "flops"),
}

#: how many things a method chooses from the labels; ``auto --auto-rule one_se`` prefers the simplest
COMPLEXITY = {"params": 0, "all_log_rank": 0, "default": 0, "best_single": 1, "libra_rank_mean": 2}
COMPLEXITY.update({"libra_log_rank": 2, "greedy": 3, "learned": 4})


def complexity(method: str) -> int:
    """0 for rankings that fit nothing (fixed sets included), up to 4 for the learned ranking."""
    return 0 if method.startswith("fixed:") else COMPLEXITY.get(method, 5)


RANKING_FORMAT = "lswag-ranking"
RANKING_FORMAT_VERSION = 1


@dataclass
class FittedRanking:
    """A ranking fitted on labelled rows. ``inputs``: the columns it reads; ``fusion``: how a set is fused (None for
    the learned ranking); ``detail``: what was chosen (a set, LIBRA's triple, auto's choice and estimate);
    ``higher_is_better``: the direction of each input, to orient raw table columns (:meth:`score_table`)."""

    method: str
    inputs: list[str]
    fusion: str | None = "log_rank"
    learned: LearnedRanking | None = None
    detail: dict = field(default_factory=dict)
    higher_is_better: dict[str, bool] = field(default_factory=dict)

    def score(self, values: Mapping[str, np.ndarray]) -> np.ndarray:
        """Score (higher = better) of each row of ``values`` (oriented columns of the rows to rank)."""
        if self.learned is not None:
            return self.learned.score(values)
        missing = [p for p in self.inputs if p not in values]
        if missing:
            raise ValueError(f"the pool lacks the ranking's inputs {missing}")
        return rank_fusion([np.asarray(values[p], dtype=float) for p in self.inputs], self.fusion)

    def oriented(self, table: pd.DataFrame, *, nan_last: bool = True) -> dict[str, np.ndarray]:
        """The inputs as oriented columns of ``table`` (NaN -> -inf, i.e. ranked last, when ``nan_last``)."""
        missing = [p for p in self.inputs if p not in table.columns]
        if missing:
            raise ValueError(f"the table lacks the ranking's inputs {missing}; columns: {', '.join(table.columns)}")
        out = {}
        for name in self.inputs:
            v = table[name].to_numpy(dtype=float, na_value=np.nan) * (
                1.0 if self.higher_is_better.get(name, True) else -1.0
            )
            out[name] = np.where(np.isnan(v), -np.inf, v) if nan_last else v
        return out

    def score_table(self, table: pd.DataFrame, *, nan_last: bool = True) -> np.ndarray:
        """Score every row of a result table (raw columns; oriented by :attr:`higher_is_better`)."""
        return self.score(self.oriented(table, nan_last=nan_last))

    def to_dict(self) -> dict:
        """Plain JSON-ready data with a format name and version (:func:`ranking_from_dict` reads it back)."""
        out = {
            "format": RANKING_FORMAT,
            "version": RANKING_FORMAT_VERSION,
            "method": self.method,
            "inputs": list(self.inputs),
            "fusion": self.fusion,
            "higher_is_better": dict(self.higher_is_better),
            "detail": jsonable(self.detail),
        }
        if self.learned is not None:
            out["learned"] = self.learned.to_dict()
        return out


def ranking_from_dict(data: Mapping) -> FittedRanking:
    """A :class:`FittedRanking` from :meth:`FittedRanking.to_dict` data; ``ValueError`` for another format."""
    if data.get("format") != RANKING_FORMAT or data.get("version") != RANKING_FORMAT_VERSION:
        raise ValueError(
            f"not a ranking of format {RANKING_FORMAT!r} version {RANKING_FORMAT_VERSION} "
            f"(got format {data.get('format')!r}, version {data.get('version')!r})"
        )
    learned = learned_from_dict(data["learned"]) if data.get("learned") is not None else None
    fusion = data.get("fusion")
    if learned is None and fusion not in FUSION_METHODS:
        raise ValueError(f"a fused ranking needs fusion in {FUSION_METHODS}, got {fusion!r}")
    return FittedRanking(
        method=str(data["method"]),
        inputs=[str(p) for p in data["inputs"]],
        fusion=fusion,
        learned=learned,
        detail=dict(data.get("detail") or {}),
        higher_is_better={str(k): bool(v) for k, v in (data.get("higher_is_better") or {}).items()},
    )


def load_ranking(path: str | os.PathLike) -> FittedRanking:
    """Read a ranking written by :func:`save_ranking` (or the ``ranking.json`` of ``lswag-libra --method``)."""
    with open(path) as fh:
        return ranking_from_dict(json.load(fh))


def save_ranking(ranking: FittedRanking, path: str | os.PathLike, **meta) -> Path:
    """Write ``ranking`` as JSON (plus ``meta`` entries such as the table and the accuracy it was fitted on)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({**ranking.to_dict(), **jsonable(meta)}, indent=1) + "\n")
    return path


@dataclass
class MethodContext:
    """What the methods may use: the proxy pool, structure features (learned ranking only), fixed sets, LIBRA's
    window and bins, the learned ranking's settings, the orientation of the columns and the k = 0 default set."""

    proxies: list[str]
    features: list[str] = field(default_factory=list)
    fixed_sets: dict[str, list[str]] = field(default_factory=dict)
    params: str = "params"
    window: float = 0.1
    bins: int = 24
    learned: LearnedConfig = field(default_factory=LearnedConfig)
    orientation: Orientation = field(default_factory=Orientation)
    default_set: list[str] = field(default_factory=list)
    auto_candidates: tuple[str, ...] = ()
    auto_repeats: int = 10
    auto_seed: int = 0
    auto_rule: str = "prefer_learned"

    def available(self, method: str) -> bool:
        """Whether ``method`` can run on this pool (its columns exist)."""
        if method.startswith("fixed:"):
            return method[6:] in self.fixed_sets
        if method == "default":
            return bool(self.default_set) and all(p in self.proxies for p in self.default_set)
        return method in (*BASE_METHODS, "auto")


def _single_rhos(values: Mapping[str, np.ndarray], accuracy: np.ndarray, names: Sequence[str]) -> dict[str, float]:
    rhos = {p: spearman(values[p], accuracy) for p in names}
    return {p: r for p, r in rhos.items() if math.isfinite(r)}


def _libra(values, accuracy, ctx: MethodContext, fusion: str) -> FittedRanking:
    prep = PreparedRows(
        {p: np.asarray(values[p], dtype=float) for p in ctx.proxies},
        np.asarray(accuracy, dtype=float),
        np.asarray(values[ctx.params], dtype=float),
        np.arange(len(accuracy)),
        ctx.orientation,
        {},
        [],
        len(accuracy),
    )
    sel = select_rows(prep, window=ctx.window, bins=ctx.bins)
    return FittedRanking(f"libra_{fusion}", list(sel.proxies), fusion, detail={"selection": list(sel.proxies)})


def fit_method(
    method: str, values: Mapping[str, np.ndarray], accuracy: np.ndarray, ctx: MethodContext
) -> FittedRanking:
    """Fit ``method`` (module docstring) on the labelled rows ``values`` / ``accuracy``; ``ValueError`` when it
    cannot be fitted there (e.g. every proxy constant on these rows). The ranking keeps its inputs' orientation."""
    ranking = _fit(method, values, np.asarray(accuracy, dtype=float), ctx)
    ranking.higher_is_better = {n: bool(ctx.orientation.higher_is_better.get(n, True)) for n in ranking.inputs}
    return ranking


def _fit(method: str, values: Mapping[str, np.ndarray], accuracy: np.ndarray, ctx: MethodContext) -> FittedRanking:
    if method == "params":
        return FittedRanking("params", [ctx.params])
    if method.startswith("fixed:"):
        return FittedRanking(method, list(ctx.fixed_sets[method[6:]]))
    if method == "all_log_rank":
        return FittedRanking(method, list(ctx.proxies))
    if method == "default":
        return FittedRanking(method, list(ctx.default_set))
    if method == "best_single":
        rhos = _single_rhos(values, accuracy, ctx.proxies)
        if not rhos:
            raise ValueError("no proxy has a finite Spearman ρ on the labelled rows")
        best = max(rhos, key=lambda p: rhos[p])
        return FittedRanking(method, [best], detail={"proxy": best, "rho_fit": rhos[best]})
    if method in ("libra_rank_mean", "libra_log_rank"):
        return _libra(values, accuracy, ctx, method[6:])
    if method == "greedy":
        chosen = greedy_log_rank({p: values[p] for p in ctx.proxies}, accuracy, starts=ctx.fixed_sets)
        return FittedRanking(method, chosen, detail={"set": chosen})
    if method == "learned":
        inputs = [*ctx.proxies, *[f for f in ctx.features if f not in ctx.proxies]]
        hib = {n: ctx.orientation.higher_is_better.get(n, True) for n in inputs}
        model = fit_learned(values, accuracy, inputs, ctx.learned, hib)
        return FittedRanking(method, inputs, None, learned=model)
    raise ValueError(
        f"unknown ranking method {method!r}; known: {', '.join(BASE_METHODS)}, default, fixed:<name> "
        "(auto: lswag_lightning.analysis.auto.fit_ranking)"
    )
