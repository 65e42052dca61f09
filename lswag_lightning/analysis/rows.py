"""The rows and proxy values an analysis uses: oriented (higher is better), with the rows whose accuracy, params or
proxy values are not finite handled by one stated policy (``NONFINITE_POLICIES``), and every decision noted.

Policies (each decision leaves a line in the notes):
- ``nonfinite="drop_rows"`` (default): a proxy with more than ``max_nonfinite_fraction`` (5%) non-finite rows is
  excluded; rows where a remaining proxy is NaN/±inf are then dropped, and the count is noted;
- ``nonfinite="exclude_proxy"``: every proxy with any non-finite value is excluded;
- ``nonfinite="rank_last"``: every row is kept, a NaN/-inf (oriented) value ranks last and +inf first (AZ-NAS's rule
  for an identity block's -inf): each proxy is replaced by its average ranks, which changes no rank-based number
  (Spearman, equal-frequency bins, rank fusion);
- rows whose accuracy or params is not finite are dropped (noted); fewer than ``min_rows`` usable rows ->
  ``ValueError``.

Shared by LIBRA's selection and evaluation and by the label-budget curves, so all of them see the same rows and the
same proxy pool for the same options.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from lswag_lightning.analysis.table import Orientation, orient, oriented_values, validate_table

NONFINITE_POLICIES = ("drop_rows", "exclude_proxy", "rank_last")


@dataclass
class PreparedRows:
    """Oriented proxy values, accuracy and params on the usable rows (positions into the original table)."""

    values: dict[str, np.ndarray]
    accuracy: np.ndarray
    params: np.ndarray
    rows: np.ndarray  # positional indices of the kept rows in the original table
    orientation: Orientation
    excluded: dict[str, str]
    notes: list[str]
    n_input: int

    def subset(self, idx: np.ndarray) -> PreparedRows:
        return PreparedRows(
            {k: v[idx] for k, v in self.values.items()},
            self.accuracy[idx],
            self.params[idx],
            self.rows[idx],
            self.orientation,
            dict(self.excluded),
            list(self.notes),
            len(idx),
        )


def prepare_rows(
    table: pd.DataFrame,
    proxies: Sequence[str],
    accuracy: str,
    params: str,
    higher_is_better: Mapping[str, bool] | Orientation | None,
    nonfinite: str,
    max_nonfinite_fraction: float,
    min_rows: int,
) -> PreparedRows:
    if nonfinite not in NONFINITE_POLICIES:
        raise ValueError(f"nonfinite must be one of {NONFINITE_POLICIES}, got {nonfinite!r}")
    proxies = list(dict.fromkeys(proxies))
    if not proxies:
        raise ValueError("LIBRA needs at least one proxy column")
    validate_table(table, [*proxies, accuracy, params])
    orientation = orient(proxies, higher_is_better)
    notes: list[str] = []
    excluded: dict[str, str] = {}
    n = len(table)
    acc = table[accuracy].to_numpy(dtype=float, na_value=np.nan)
    par = table[params].to_numpy(dtype=float, na_value=np.nan)
    keep = np.isfinite(acc) & np.isfinite(par)
    if (~keep).any():
        notes.append(
            f"{_rows(int((~keep).sum()))} of {n} dropped: accuracy {accuracy!r} or params {params!r} not finite"
        )
    values = {name: oriented_values(table, name, orientation) for name in proxies}
    base = int(keep.sum())
    for name in proxies:
        bad = keep & ~np.isfinite(values[name])
        count = int(bad.sum())
        if not count or nonfinite == "rank_last":
            continue
        if nonfinite == "exclude_proxy" or count > max_nonfinite_fraction * base:
            rule = (
                "nonfinite='exclude_proxy'"
                if nonfinite == "exclude_proxy"
                else f"more than {max_nonfinite_fraction:.0%} of rows"
            )
            excluded[name] = f"{count} of {base} rows NaN/inf ({rule})"
            notes.append(f"{name} excluded: {excluded[name]}")
    pool = [p for p in proxies if p not in excluded]
    if nonfinite == "rank_last":
        changed = 0
        for name in pool:
            v = values[name].copy()
            bad = keep & ~np.isfinite(v)
            changed += int(bad.any())
            v[np.isnan(v)] = -np.inf
            values[name] = np.where(keep, stats.rankdata(np.where(keep, v, -np.inf), method="average"), np.nan)
        if changed:
            notes.append(f"non-finite values of {changed} proxies ranked last (+inf first): every row kept")
    if nonfinite == "drop_rows":
        before = keep.copy()
        for name in pool:
            keep &= np.isfinite(values[name])
        dropped = before & ~keep
        if dropped.any():
            who = [p for p in pool if (before & ~np.isfinite(values[p])).any()]
            notes.append(f"{_rows(int(dropped.sum()))} dropped: NaN/inf in {', '.join(who)}")
    rows = np.flatnonzero(keep)
    if len(rows) < min_rows:
        raise ValueError(
            f"LIBRA needs at least {min_rows} architectures with finite accuracy, params and proxy "
            f"values; {len(rows)} of {n} rows are usable"
        )
    prepared = PreparedRows(
        {p: values[p][rows] for p in pool}, acc[rows], par[rows], rows, orientation, excluded, notes, n
    )
    return prepared


def _rows(count: int) -> str:
    return f"{count} row" if count == 1 else f"{count} rows"


def jsonable(obj):
    """Recursively turn numpy scalars into Python ones, tuples into lists and NaN/inf into None."""
    if isinstance(obj, Mapping):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [jsonable(v) for v in obj]
    if isinstance(obj, (np.bool_, bool)):
        return bool(obj)
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        return float(obj) if math.isfinite(obj) else None
    return obj
