"""What ``lswag-libra`` does beyond LIBRA's report: read its inputs (a result table, or NAS-Bench-Suite-Zero's published
tables by name), join structure features, fit one ranking method on the labelled rows and rank every row.

A table spec is a path (``.csv``, ``.parquet``, ...) or ``published:<benchmark>[:<task>]`` / ``published:all``
(:mod:`lswag_lightning.analysis.published`: the published proxies, ``val_accuracy``, their orientation).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from lswag_lightning.analysis.auto import fit_ranking
from lswag_lightning.analysis.budget import prepare_pool
from lswag_lightning.analysis.rankers import FittedRanking
from lswag_lightning.analysis.table import load_table

PUBLISHED_PREFIX = "published:"


@dataclass
class InputTable:
    """One table to analyse and what is known about it (published tables bring accuracy, proxies, orientation)."""

    label: str
    table: pd.DataFrame
    accuracy: list[str] = field(default_factory=list)
    proxies: list[str] = field(default_factory=list)
    higher_is_better: dict[str, bool] = field(default_factory=dict)
    params: str = "params"


def published_specs(spec: str) -> list[tuple[str, str | None]]:
    """(benchmark, task) pairs named by ``published:all``, ``published:<benchmark>`` or
    ``published:<benchmark>:<task>``; ``ValueError`` naming the known benchmarks."""
    from lswag_lightning.analysis.published import BENCHMARKS, NB201_TASKS, TNB101_TASKS

    def tasks(bench: str) -> list[str | None]:
        return list(NB201_TASKS) if bench == "nb201" else list(TNB101_TASKS) if bench.startswith("tnb101") else [None]

    name = spec[len(PUBLISHED_PREFIX) :]
    bench, _, task = name.partition(":")
    if bench == "all":
        return [(b, t) for b in BENCHMARKS for t in tasks(b)]
    if bench not in BENCHMARKS:
        raise ValueError(f"unknown published benchmark {bench!r} in {spec!r}; known: all, {', '.join(BENCHMARKS)}")
    return [(bench, task)] if task else [(bench, t) for t in tasks(bench)]


def read_inputs(spec: str | os.PathLike, data_dir: str | os.PathLike | None = None) -> list[InputTable]:
    """The tables named by ``spec`` (module docstring); ``FileNotFoundError`` / ``ValueError`` when unreadable."""
    text = str(spec)
    if not text.startswith(PUBLISHED_PREFIX):
        return [InputTable(text, load_table(spec))]
    from lswag_lightning.analysis.published import load_published

    out = []
    for bench, task in published_specs(text):
        pub = load_published(bench, task, data_dir)
        out.append(
            InputTable(
                f"{bench}:{pub.task}",
                pub.table,
                [pub.accuracy],
                list(pub.proxies),
                dict(pub.higher_is_better),
                pub.params,
            )
        )
    return out


def join_structure(table: pd.DataFrame, structure: str | os.PathLike) -> tuple[pd.DataFrame, list[str]]:
    """``table`` with the columns of a structure table (:mod:`lswag_lightning.analysis.structure`) joined on
    ``arch``, and their names; ``ValueError`` when an architecture of the table is missing there."""
    extra = load_table(structure)
    for frame, what in ((table, "the table"), (extra, str(structure))):
        if "arch" not in frame.columns:
            raise ValueError(f"{what} has no 'arch' column to join the structure features on")
    extra = extra.assign(arch=extra["arch"].astype(str))
    names = [c for c in extra.columns if c != "arch" and c not in table.columns]
    missing = sorted(set(table["arch"].astype(str)) - set(extra["arch"]))
    if missing:
        raise ValueError(f"{structure} lacks {len(missing)} architectures of the table (e.g. {missing[0]})")
    joined = table.assign(_arch=table["arch"].astype(str)).merge(
        extra[["arch", *names]].rename(columns={"arch": "_arch"}), on="_arch", how="left", validate="many_to_one"
    )
    return joined.drop(columns="_arch"), names


def fit_and_rank(
    table: pd.DataFrame,
    proxies: Sequence[str],
    accuracy: str,
    method: str,
    **pool_options,
) -> tuple[FittedRanking, pd.DataFrame]:
    """Fit ``method`` on the rows whose ``accuracy`` is finite (the trained architectures) and score EVERY row of
    ``table`` (raw columns, NaN ranked last). Returns the fitted ranking and ``table`` with ``labelled``, ``score``
    (higher = better) and ``rank`` (1 = best) columns, sorted by rank. ``pool_options`` as in
    :func:`lswag_lightning.analysis.budget.prepare_pool`."""
    acc = table[accuracy].to_numpy(dtype=float, na_value=np.nan) if accuracy in table.columns else None
    if acc is None:
        raise ValueError(f"accuracy column {accuracy!r} not in the table")
    labelled = np.isfinite(acc)
    pool = prepare_pool(table[labelled].reset_index(drop=True), proxies, accuracy, **pool_options)
    ranking = fit_ranking(method, pool.values, pool.accuracy, pool.ctx)
    scored = table.copy()
    scored["labelled"] = labelled
    scored["score"] = ranking.score_table(table)
    scored["rank"] = scored["score"].rank(ascending=False, method="min")
    return ranking, scored.sort_values("rank", kind="stable")


def rank_without_labels(table: pd.DataFrame, proxies: Sequence[str]) -> tuple[FittedRanking, pd.DataFrame]:
    """k = 0: the log-rank fusion of ``proxies`` (e.g. the shipped default,
    :func:`lswag_lightning.analysis.defaults.load_default`) scores every row; no accuracy is read. Returns the
    ranking and ``table`` with ``score`` and ``rank`` columns, sorted by rank."""
    from lswag_lightning.analysis.table import orient

    orientation = orient(proxies)
    ranking = FittedRanking("default", list(proxies), "log_rank", higher_is_better=dict(orientation.higher_is_better))
    scored = table.copy()
    scored["score"] = ranking.score_table(table)
    scored["rank"] = scored["score"].rank(ascending=False, method="min")
    return ranking, scored.sort_values("rank", kind="stable")


def ranking_summary(ranking: FittedRanking, n_labelled: int) -> list[str]:
    """Plain-text lines: the method, its inputs and, for ``auto``, its choice and expected held-out ρ."""
    lines = [f"ranking: {ranking.method} fitted on {n_labelled} labelled rows; inputs: {', '.join(ranking.inputs)}"]
    detail: Mapping = ranking.detail
    if ranking.method == "auto":
        lo, hi = detail["interval"]
        lines.append(
            f"auto chose {detail['chosen']} by inner cross-validation ({detail['repeats']} splits of the labelled "
            f"rows): expected held-out Spearman ρ {detail['expected_rho']:.3f} [{lo:.3f}, {hi:.3f}] "
            "(mean [10th, 90th percentile] of the inner splits)"
        )
        for name, s in sorted(detail["inner"].items(), key=lambda kv: -kv[1]["mean"]):
            lines.append(f"  {name:<18} inner ρ {s['mean']:.3f} ± {s['se']:.3f} (standard error)")
    return lines
