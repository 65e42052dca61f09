"""The label-budget view of a sweep: the sweep's finished jobs are k trained candidates; which ranking should order
the candidates nobody trained yet, and what Spearman ρ should one expect from it?

:func:`rank_sweep` fits ``auto`` (:mod:`lswag_lightning.analysis.auto`) on the k jobs: it compares the ranking
methods by cross-validation inside those k rows (10 seeded splits, fit on two thirds, Spearman ρ on the last third),
picks one and refits it on all k. Reported: the choice, its expected held-out ρ with the [10th, 90th percentile]
interval of the inner splits, and the learned ranking's own inner held-out ρ (mean ± standard error over the same
splits, each fitted on two thirds of the k jobs). The fitted ranking is saved as ``ranking.json``, which
``lswag-search --fitness learned --ranking FILE`` and ``lswag-libra``'s Python API apply to any pool.

Proxies: every proxy the jobs recorded (and ``params``), NaN/-inf ranked last; the fixed sets (AZ-NAS's, VKDNW_agg's)
and the shipped k = 0 default compete when the jobs recorded their proxies. No structure features (the jobs do not
record them). With fewer than :data:`BUDGET_MIN_ROWS` jobs it is skipped, with the reason.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

#: auto's inner splits evaluate on a third of the rows; below 10 jobs that third has 3 rows or fewer
BUDGET_MIN_ROWS = 10


@dataclass
class SweepRanking:
    """What :func:`rank_sweep` found: ``k`` labelled jobs, auto's ``chosen`` method, ``expected_rho`` and its
    ``interval``, the learned ranking's inner held-out ρ (``learned_rho`` ± ``learned_se``), every candidate's inner
    summary (``inner``), the saved ``path``; or ``skipped`` with the reason."""

    k: int = 0
    chosen: str = ""
    expected_rho: float = math.nan
    interval: tuple[float, float] = (math.nan, math.nan)
    learned_rho: float = math.nan
    learned_se: float = math.nan
    inner: dict[str, dict[str, float]] = field(default_factory=dict)
    inputs: list[str] = field(default_factory=list)
    path: Path | None = None
    skipped: str = ""

    def summary(self) -> dict[str, Any]:
        """Flat keys for ``collect.json`` and the W&B run summary (``auto/...``, ``learned/...``)."""
        if self.skipped:
            return {"auto/skipped": self.skipped}
        return {
            "auto/k": self.k,
            "auto/chosen": self.chosen,
            "auto/expected_rho": self.expected_rho,
            "auto/interval_p10": self.interval[0],
            "auto/interval_p90": self.interval[1],
            "auto/ranking_file": str(self.path) if self.path else None,
            "learned/heldout_rho_mean": self.learned_rho,
            "learned/heldout_rho_se": self.learned_se,
        }


def rank_sweep(table: pd.DataFrame, proxies: Sequence[str], accuracy: str, out_dir: str | os.PathLike) -> SweepRanking:
    """Fit ``auto`` on the jobs with a finite ``accuracy`` (module docstring); writes ``out_dir/ranking.json`` and
    ``out_dir/ranking.csv`` (every job, its score and rank). Never raises for a small or degenerate sweep: the
    result says why it was skipped."""
    from lswag_lightning.analysis.defaults import load_default
    from lswag_lightning.analysis.rankers import save_ranking
    from lswag_lightning.analysis.ranking_run import fit_and_rank

    acc = table[accuracy].to_numpy(dtype=float, na_value=np.nan)
    k = int(np.isfinite(acc).sum())
    if k < BUDGET_MIN_ROWS:
        return SweepRanking(
            k=k,
            skipped=f"auto skipped: it needs at least {BUDGET_MIN_ROWS} finished jobs with a finite {accuracy} "
            f"(its inner splits score on a third of them); there are {k}",
        )
    default = load_default().proxies
    options: dict[str, Any] = {"nonfinite": "rank_last"}
    if all(p in proxies for p in default):
        options["default_set"] = list(default)
    try:
        ranking, ranked = fit_and_rank(table, list(proxies), accuracy, "auto", **options)
    except ValueError as err:
        return SweepRanking(k=k, skipped=f"auto skipped: {err}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    ranked.to_csv(out / "ranking.csv", index=False)
    path = save_ranking(ranking, out / "ranking.json", accuracy=accuracy, n_labelled=k, source="lswag-collect")
    detail = ranking.detail
    learned = detail["inner"].get("learned", {})
    return SweepRanking(
        k=k,
        chosen=str(detail["chosen"]),
        expected_rho=float(detail["expected_rho"]),
        interval=(float(detail["interval"][0]), float(detail["interval"][1])),
        learned_rho=float(learned.get("mean", math.nan)),
        learned_se=float(learned.get("se", math.nan)),
        inner={m: dict(s) for m, s in detail["inner"].items()},
        inputs=list(ranking.inputs),
        path=path,
    )


def _f(value: float) -> str:
    return f"{value:.3f}" if math.isfinite(value) else "–"


def format_sweep_ranking(result: SweepRanking) -> list[str]:
    """Plain lines (terminal and markdown): auto's choice at this k with its expected ρ and interval, the learned
    ranking's inner held-out ρ, the file to rank new candidates with."""
    if result.skipped:
        return [result.skipped]
    lo, hi = result.interval
    lines = [
        f"To rank untrained candidates with these k = {result.k} trained ones, auto picks {result.chosen}: expected "
        f"held-out Spearman ρ {_f(result.expected_rho)} [{_f(lo)}, {_f(hi)}] (mean [10th, 90th percentile] of 10 "
        "inner splits of the k jobs, fit on two thirds, scored on the last third).",
        f"The learned ranking on the same inner splits: held-out ρ {_f(result.learned_rho)} ± "
        f"{_f(result.learned_se)} (standard error).",
    ]
    others = sorted(result.inner.items(), key=lambda kv: -kv[1]["mean"])
    lines.append("Inner held-out ρ of every candidate: " + ", ".join(f"{m} {_f(s['mean'])}" for m, s in others) + ".")
    if result.path is not None:
        lines.append(
            f"Saved ranking: {result.path} (rank a new pool with it: lswag-search SPACE --fitness learned "
            f"--ranking {result.path} ...)."
        )
    return lines


def append_to_report(report: Path, result: SweepRanking) -> None:
    """Add the label-budget section to a ``report.md``."""
    lines = ["", "## Label budget: ranking the candidates not trained yet", ""]
    lines += [f"- {line}" for line in format_sweep_ranking(result)]
    lines += [
        "",
        "How much a budget of k trained candidates buys on the public benchmarks: `docs/results/label-budget.md`.",
    ]
    with report.open("a") as fh:
        fh.write("\n".join(lines) + "\n")
