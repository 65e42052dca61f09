"""Stored score tables (``results/*.parquet``: ``arch`` + one column per proxy value, no accuracies): written from a
benchmark run (:func:`export_scores`, ``lswag-bench ... --export FILE``) and joined with the benchmark's published
accuracies into a table for ``lswag-libra`` without scoring anything (:func:`join_score_tables`, ``lswag-bench ...
--score-table FILE [FILE ...]``).

Each proxy column comes from the first table holding it, as in ``lswag-search --score-table``
(:func:`lswag_lightning.search.stored_scores.columns_by_table`, the same code). A row a table lacks is an error,
never a NaN standing for a value nobody computed; ``covered_only`` keeps the rows every table holds instead.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from lswag_lightning.bench.ground_truth import GroundTruth

#: columns of a ``lswag-bench`` table that are not proxy values (ids, status, timings); accuracies end in ``_acc``
NOT_SCORES = {
    "sample_index",
    "arch",
    "space",
    "gt_row",
    "naslib_idx",
    "nb201_index",
    "init_seed",
    "status",
    "build_seconds",
    "total_seconds",
}
#: id columns a joined table keeps before ``arch``: the benchmark's own index of an architecture
KEPT_IDS = ("nb201_index",)


def score_columns(table: pd.DataFrame) -> list[str]:
    """The proxy value columns of a benchmark table: not ids, status, timings or accuracies."""
    return [
        c
        for c in table.columns
        if c not in NOT_SCORES and not c.startswith("seconds.") and not c.endswith("_acc") and "accuracy" not in c
    ]


def export_scores(table: pd.DataFrame) -> pd.DataFrame:
    """A stored score table from a benchmark table: ``arch`` (the benchmark's key string) and every proxy value
    column, rows in the table's order, non-finite values kept. ``vkdnw_single`` is derived from ``vkdnw_layers``
    and ``vkdnw`` when the table predates that registry entry (the number the engine computes from those two)."""
    from lswag_lightning.analysis.table import add_vkdnw_single

    table = add_vkdnw_single(table)
    return table[["arch", *score_columns(table)]]


def join_score_tables(
    gt: GroundTruth, tables: Sequence[str | os.PathLike | pd.DataFrame], *, covered_only: bool = False
) -> pd.DataFrame:
    """``gt``'s architectures with their accuracies and the stored proxy values of ``tables``, joined on ``arch``.

    Columns: ``nb201_index`` (nb201), ``arch``, the accuracy columns in ``gt``'s order, then each table's proxy
    columns that no earlier table holds, then ``vkdnw_single`` when derivable. Every row of ``gt`` must be in every
    table (``ValueError`` naming the table, how many rows it lacks and the fix); with ``covered_only`` the rows some
    table lacks are left out instead (rows stay in ``gt``'s order).
    """
    from lswag_lightning.analysis.table import add_vkdnw_single, load_table
    from lswag_lightning.search.stored_scores import columns_by_table

    frames = [t if isinstance(t, pd.DataFrame) else load_table(Path(t)) for t in tables]
    names = [getattr(t, "name", "table") if isinstance(t, pd.DataFrame) else str(t) for t in tables]
    ids = [c for c in KEPT_IDS if c in gt.id_columns]
    joined = gt.table[[*ids, "arch", *gt.accuracy_columns]]
    if covered_only:
        held = set.intersection(*(set(frame["arch"]) for frame in frames))
        joined = joined[joined["arch"].isin(held)].reset_index(drop=True)
    taken = set(joined.columns)
    for frame, name, columns in zip(frames, names, columns_by_table(frames, taken=taken)):
        missing = sorted(set(joined["arch"]) - set(frame["arch"]))
        if missing:
            raise ValueError(
                f"{name} lacks {len(missing)} of the {len(joined)} architectures (e.g. {missing[0]}); score them "
                "(lswag-bench ... --export FILE) or keep the rows every table holds with --covered-only"
            )
        joined = joined.merge(frame[["arch", *columns]], on="arch", how="left", validate="one_to_one")
    return add_vkdnw_single(joined)
