"""LIBRA's choice of three proxies (METHOD.md §6) and the rank fusion of a chosen set.

1. Orient every proxy so that higher is better; ρ_z = Spearman(z, accuracy); z1 = the proxy with the highest ρ.
2. Window candidates: the other proxies with ρ_best − window < ρ_z ≤ ρ_best (window 0.1).
   IG(z) = H(y | z1) − H(y | z1, z), in bits (:mod:`lswag_lightning.analysis.entropy`, ``bins`` = 24
   equal-frequency bins). z2 = the candidate with the LOWEST information gain.
3. b_z = Spearman(oriented z, params), b_val = Spearman(accuracy, params); z3 = the remaining window candidate
   with the smallest |b_val − b_z|.
4. :func:`fuse` merges the chosen proxies by ranks within the pool being scored (``rank_mean``, the default, or
   the AZ-NAS style ``log_rank``).

Edge cases (each leaves a line in ``LibraSelection.notes``): rows and proxies with non-finite values as
:func:`lswag_lightning.analysis.rows.prepare_rows` decides; a proxy constant on the rows used is excluded; no other
proxy in the window -> [z1]; one candidate -> [z1, z2].
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd

from lswag_lightning.analysis.correlations import spearman
from lswag_lightning.analysis.entropy import ENTROPY_UNIT, conditional_entropy, rank_bins
from lswag_lightning.analysis.fusion import rank_fusion
from lswag_lightning.analysis.rows import PreparedRows, jsonable, prepare_rows
from lswag_lightning.analysis.table import Orientation, orient, oriented_values, validate_table


@dataclass
class LibraSelection:
    """The proxies LIBRA chose and the numbers behind the choice.

    ``proxies`` is [z1, z2, z3] (shorter when the window holds fewer candidates). ``rho`` is each usable proxy's
    Spearman ρ with accuracy (oriented), ``info_gain`` the IG in bits of each window candidate given z1, ``bias``
    each usable proxy's Spearman ρ with params (oriented), ``bias_accuracy`` = Spearman(accuracy, params).
    ``candidates`` are the proxies inside the window (z1 excluded). ``excluded`` maps left-out proxies to why.
    """

    proxies: list[str]
    rho: dict[str, float]
    info_gain: dict[str, float]
    bias: dict[str, float]
    bias_accuracy: float
    candidates: list[str]
    notes: list[str] = field(default_factory=list)
    excluded: dict[str, str] = field(default_factory=dict)
    higher_is_better: dict[str, bool] = field(default_factory=dict)
    orientation_source: dict[str, str] = field(default_factory=dict)
    accuracy: str = ""
    params: str = ""
    window: float = 0.1
    bins: int = 24
    n_rows: int = 0
    n_input_rows: int = 0
    h_accuracy_given_z1: float = math.nan
    entropy_unit: str = ENTROPY_UNIT

    @property
    def z1(self) -> str:
        return self.proxies[0]

    @property
    def assumed_orientation(self) -> list[str]:
        return [n for n, s in self.orientation_source.items() if s == "assumed"]

    def to_dict(self) -> dict:
        """JSON-ready dict (NaN becomes None)."""
        return jsonable(asdict(self))


def select_rows(
    prep: PreparedRows,
    *,
    window: float,
    bins: int,
    accuracy: str = "",
    params: str = "",
) -> LibraSelection:
    notes = list(prep.notes)
    excluded = dict(prep.excluded)
    acc, par = prep.accuracy, prep.params
    pool = []
    for name, v in prep.values.items():
        if np.all(v == v[0]):
            excluded[name] = f"constant on the {len(v)} rows used (ρ undefined)"
            notes.append(f"{name} excluded: {excluded[name]}")
        else:
            pool.append(name)
    if not pool:
        raise ValueError(f"no usable proxy left for LIBRA; excluded: {excluded}")
    if np.all(acc == acc[0]):
        raise ValueError(f"accuracy {accuracy!r} is constant on the rows used; correlations are undefined")
    rho = {p: spearman(prep.values[p], acc) for p in pool}
    bias = {p: spearman(prep.values[p], par) for p in pool}
    bias_acc = spearman(acc, par)
    z1 = max(pool, key=lambda p: rho[p])  # first of the given order on ties
    tied = [p for p in pool if p != z1 and rho[p] == rho[z1]]
    if tied:
        notes.append(f"z1 tie: {', '.join(tied)} have the same ρ as {z1}; {z1} kept (first in the order given)")
    best = rho[z1]
    candidates = [p for p in pool if p != z1 and best - window < rho[p] <= best]
    y_bins, z1_bins = rank_bins(acc, bins), rank_bins(prep.values[z1], bins)
    h_y_z1 = conditional_entropy(y_bins, z1_bins)
    info_gain = {p: h_y_z1 - conditional_entropy(y_bins, z1_bins, rank_bins(prep.values[p], bins)) for p in candidates}
    chosen = [z1]
    if len(pool) == 1:
        notes.append(f"only one usable proxy ({z1}); the selection is [{z1}]")
    elif not candidates:
        runner = max((p for p in pool if p != z1), key=lambda p: rho[p])
        notes.append(
            f"no other proxy within {window:g} of ρ_best = {best:.3f} (next: {runner}, ρ = "
            f"{rho[runner]:.3f}); the selection is [{z1}] alone"
        )
    else:
        order = {p: i for i, p in enumerate(pool)}
        z2 = min(candidates, key=lambda p: (info_gain[p], -rho[p], order[p]))
        chosen.append(z2)
        rest = [p for p in candidates if p != z2]
        if not rest:
            notes.append(f"one candidate in the window ({z2}); the selection is [{z1}, {z2}] (no z3)")
        else:
            if math.isnan(bias_acc):
                notes.append(f"params {params!r} is constant: bias undefined; z3 = highest-ρ remaining candidate")
                z3 = max(rest, key=lambda p: (rho[p], -order[p]))
            else:
                z3 = min(
                    rest,
                    key=lambda p: (abs(bias_acc - bias[p]) if not math.isnan(bias[p]) else math.inf, -rho[p], order[p]),
                )
            chosen.append(z3)
    return LibraSelection(
        proxies=chosen,
        rho=rho,
        info_gain=info_gain,
        bias=bias,
        bias_accuracy=bias_acc,
        candidates=candidates,
        notes=notes,
        excluded=excluded,
        higher_is_better={p: prep.orientation.higher_is_better[p] for p in prep.orientation.higher_is_better},
        orientation_source=dict(prep.orientation.source),
        accuracy=accuracy,
        params=params,
        window=window,
        bins=bins,
        n_rows=len(acc),
        n_input_rows=prep.n_input,
        h_accuracy_given_z1=h_y_z1,
    )


def check_select_options(window: float, bins: int) -> None:
    if not window > 0:
        raise ValueError(f"window must be > 0, got {window}")
    if int(bins) != bins or bins < 2:
        raise ValueError(f"bins must be an integer >= 2, got {bins}")


def select(
    table: pd.DataFrame,
    proxies: Sequence[str],
    accuracy: str,
    params: str = "params",
    window: float = 0.1,
    bins: int = 24,
    higher_is_better: Mapping[str, bool] | Orientation | None = None,
    *,
    nonfinite: str = "drop_rows",
    max_nonfinite_fraction: float = 0.05,
    min_rows: int = 10,
) -> LibraSelection:
    """Choose LIBRA's proxies [z1, z2, z3] on ``table`` (module docstring: algorithm and edge cases).

    ``accuracy`` and ``params`` are column names; ``higher_is_better`` overrides the registry's orientation
    (unknown names are assumed higher-is-better and listed in ``orientation_source``).
    """
    check_select_options(window, bins)
    prep = prepare_rows(table, proxies, accuracy, params, higher_is_better, nonfinite, max_nonfinite_fraction, min_rows)
    return select_rows(prep, window=window, bins=int(bins), accuracy=accuracy, params=params)


# ------------------------------------------------------------------------------------------------- fusion
def fuse(
    table: pd.DataFrame,
    selection: LibraSelection | Sequence[str],
    method: str = "rank_mean",
    higher_is_better: Mapping[str, bool] | Orientation | None = None,
) -> pd.Series:
    """One score per row (higher = better) from several proxies, by their ranks within ``table`` (the pool).

    Each proxy is oriented, ranked (average ranks for ties, rank M = best of the M rows) and normalised to
    r / M ∈ (0, 1]. ``rank_mean``: mean of r / M over proxies, in (0, 1]. ``log_rank`` (AZ-NAS): Σ log(r / M),
    ≤ 0. A row with NaN in any fused proxy gets NaN; ±inf are ranked as the extremes they are. A
    :class:`LibraSelection` brings its own orientation; ``higher_is_better`` overrides it.
    """
    if isinstance(selection, LibraSelection):
        names = list(selection.proxies)
        mapping = dict(selection.higher_is_better)
        if isinstance(higher_is_better, Orientation):
            higher_is_better = higher_is_better.higher_is_better
        mapping.update(higher_is_better or {})
    else:
        names = [selection] if isinstance(selection, str) else list(selection)
        mapping = higher_is_better
    validate_table(table, names)
    orientation = orient(names, mapping)
    fused = rank_fusion([oriented_values(table, n, orientation) for n in names], method)
    return pd.Series(fused, index=table.index, name=f"libra_{method}")
