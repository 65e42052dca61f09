"""The numbers of a benchmark report, computed before anything is drawn: per accuracy column the proxies'
correlations and LIBRA's held-out evaluation, the timing of the run, and the comparison with the L-SWAG paper.
:mod:`lswag_lightning.bench.render` writes them."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from lswag_lightning.analysis.report import ProxyReportSummary
from lswag_lightning.bench.settings import BenchSettings, value_columns

#: The L-SWAG paper's NB201 Spearman ρ (1000 archs, batch 64, against NAS-Bench-Suite-Zero VALIDATION accuracy;
#: METHOD.md §7). Reference values printed next to ours, keyed by dataset.
PAPER_NB201 = {
    "lswag": {"cifar10": 0.79, "cifar100": 0.83, "imagenet16_120": 0.80},
    "lswag.lambda": {"cifar10": 0.78, "cifar100": 0.81, "imagenet16_120": 0.79},
    "lswag.psi": {"cifar10": 0.71, "cifar100": 0.75, "imagenet16_120": 0.71},
    "zico": {"cifar10": 0.75, "cifar100": 0.80, "imagenet16_120": 0.78},
    "libra": {"cifar10": 0.89, "cifar100": 0.90, "imagenet16_120": 0.87},
}


def proxy_columns(table: pd.DataFrame, proxies: Sequence[str]) -> list[str]:
    """Value columns of ``proxies`` present in ``table`` and holding at least one finite value."""
    out = []
    for col in value_columns(proxies):
        if col in table.columns and np.isfinite(table[col].to_numpy(dtype=float, na_value=np.nan)).any():
            out.append(col)
    return out


def rank_duplicates(table: pd.DataFrame, columns: Sequence[str]) -> dict[str, str]:
    """Columns that rank the rows exactly like another of ``columns`` (same non-finite rows, same average ranks
    of the oriented values): {duplicate: the column kept}. Kept first: ``params``, then main proxy names, then
    sub-values, each in the order given.

    E.g. ``lswag.psi`` equals ``swap`` when Ψ counts every activation point, and ``flops`` ranks NB201 cells as
    ``params`` does. LIBRA's z2 is the candidate with the LOWEST information gain given z1 (METHOD.md §6), which
    an exact copy of z1 always is, so the copies are left out of LIBRA's pool.
    """
    from scipy.stats import rankdata

    from lswag_lightning.analysis.table import orient, oriented_values

    orientation = orient(columns)
    seen: list[tuple[str, np.ndarray, np.ndarray]] = []
    out: dict[str, str] = {}
    # keep params (LIBRA's bias variable) first, then main proxy names, then sub-values (lswag.psi, ...)
    order = sorted(range(len(columns)), key=lambda i: (columns[i] != "params", "." in columns[i], i))
    for col in (columns[i] for i in order):
        v = oriented_values(table, col, orientation)
        finite = np.isfinite(v)
        ranks = rankdata(v[finite])
        match = next((name for name, f, r in seen if np.array_equal(f, finite) and np.array_equal(r, ranks)), None)
        if match is None:
            seen.append((col, finite, ranks))
        else:
            out[col] = match
    return out


@dataclass
class AccuracySummary:
    """One accuracy column: ``n`` rows with a value, the proxy report's numbers (``report``), LIBRA's held-out
    evaluation (None when skipped, ``note`` says why) and the columns left out of LIBRA's pool as rank copies."""

    accuracy: str
    n: int
    report: ProxyReportSummary
    libra: Any
    note: str
    duplicates: dict[str, str]

    @property
    def corr(self) -> pd.DataFrame:
        """The correlation table indexed by proxy."""
        return self.report.corr.set_index("proxy")

    def to_json(self, proxies: Sequence[str]) -> dict[str, Any]:
        """This column's entry of ``summary.json`` (non-finite correlations as None)."""
        corr = self.corr
        return {
            "n": self.n,
            "spearman": {p: _nan_none(corr.loc[p, "spearman"]) for p in proxies if p in corr.index},
            "kendall": {p: _nan_none(corr.loc[p, "kendall"]) for p in proxies if p in corr.index},
            "libra": self.libra.summary() if self.libra is not None else None,
            "libra_choice": self.libra.selection.proxies if self.libra is not None else None,
        }


@dataclass
class BenchSummary:
    """Everything a benchmark report shows, computed: ``columns`` holds the analysed accuracy columns (in order),
    ``too_few`` the others with their row counts; ``seconds`` the timing (None without timing columns) and
    ``n_bad`` the rows whose status is not ok."""

    settings: BenchSettings
    n_rows: int
    proxies: list[str]
    accuracy_columns: list[str]
    columns: dict[str, AccuracySummary] = field(default_factory=dict)
    too_few: dict[str, int] = field(default_factory=dict)
    seconds: dict[str, float] | None = None
    n_bad: int = 0
    n_boot: int = 1000
    splits: int = 20
    seed: int = 0

    def duplicates(self) -> dict[str, str]:
        """Columns left out of LIBRA's pool as exact rank copies, over every accuracy column."""
        return {d: k for a in self.columns.values() for d, k in a.duplicates.items()}

    def order(self) -> list[str]:
        """The proxies by Spearman ρ on the first analysed column, best first (NaN last)."""
        first = next(iter(self.columns.values())).corr
        return sorted(self.proxies, key=lambda p: -np.nan_to_num(first.loc[p, "spearman"], nan=-9))

    def paper_comparison(self) -> list[tuple[str, str, float, float]]:
        """(proxy or ``libra``, accuracy column, ours, the paper's) for nb201 columns the paper reports."""
        rows = []
        for proxy, ref in PAPER_NB201.items():
            for acc, col in self.columns.items():
                key = paper_key(acc)
                if key is None:
                    continue
                if proxy == "libra":
                    ours = col.libra.summary()["libra"]["mean"] if col.libra is not None else math.nan
                else:
                    ours = col.corr.loc[proxy, "spearman"] if proxy in col.corr.index else math.nan
                rows.append((proxy, acc, ours, ref[key]))
        return rows

    def to_json(self) -> dict[str, Any]:
        """The content of ``summary.json``."""
        return {a: col.to_json(self.proxies) for a, col in self.columns.items()}


def paper_key(accuracy: str) -> str | None:
    """The dataset of :data:`PAPER_NB201` an accuracy column belongs to (``cifar10_val_acc`` -> ``cifar10``)."""
    for key in ("cifar100", "cifar10", "imagenet16_120"):
        if accuracy.startswith(key + "_"):
            return key
    return None


def summarize_bench(
    table: pd.DataFrame,
    settings: BenchSettings,
    *,
    accuracy_columns: Sequence[str],
    n_boot: int = 1000,
    splits: int = 20,
    seed: int = 0,
) -> BenchSummary:
    """Correlations (bootstrap CIs) and LIBRA (held-out) of ``table`` against each accuracy column."""
    from lswag_lightning.analysis.libra import evaluate
    from lswag_lightning.analysis.report import summarize_report

    proxies = proxy_columns(table, settings.proxies)
    summary = BenchSummary(
        settings, len(table), proxies, list(accuracy_columns), n_boot=n_boot, splits=splits, seed=seed
    )
    if "total_seconds" in table.columns:
        secs = table["total_seconds"].to_numpy(dtype=float, na_value=np.nan)
        summary.seconds = {
            "median": float(np.nanmedian(secs)),
            "mean": float(np.nanmean(secs)),
            "build_mean": float(np.nanmean(table["build_seconds"])),
        }
    summary.n_bad = int((table["status"].astype(str) != "ok").sum())
    for acc in accuracy_columns:
        acc_values = table[acc].to_numpy(dtype=float, na_value=np.nan)
        sub = table[np.isfinite(acc_values)].reset_index(drop=True)
        if len(sub) < 10 or not proxies:
            summary.too_few[acc] = len(sub)
            continue
        libra_note = ""
        duplicates = rank_duplicates(sub, proxies)
        pool = [p for p in proxies if p not in duplicates]
        try:
            ev = evaluate(sub, pool, acc, "params", n_splits=splits, seed=seed)
            if duplicates:
                ev.notes.append(
                    "left out of LIBRA's pool as exact rank copies: "
                    + ", ".join(f"{d} (= {k})" for d, k in duplicates.items())
                )
        except ValueError as exc:
            ev, libra_note = False, f"LIBRA skipped: {exc}"
        report = summarize_report(
            sub, accuracy=acc, proxies=proxies, params="params", libra=ev, seed=seed, n_boot=n_boot
        )
        summary.columns[acc] = AccuracySummary(acc, len(sub), report, ev if ev else None, libra_note, duplicates)
    return summary


def _nan_none(value: Any) -> float | None:
    value = float(value)
    return value if math.isfinite(value) else None
