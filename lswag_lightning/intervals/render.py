"""Rendering a :class:`~lswag_lightning.intervals.summary.LayerProfileResult`: ``layers.json``, ``networks.csv`` and
the plots (matplotlib, imported on first use). Computes nothing."""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from lswag_lightning.intervals.common import BINS, STAT_COLUMNS
from lswag_lightning.intervals.rule import BinStats, IntervalProposal
from lswag_lightning.intervals.summary import LayerProfileResult
from lswag_lightning.jsonio import write_json


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def _bin_labels() -> list[str]:
    return [f"{10 * b}" for b in BINS]


def plot_profile(
    path: str | os.PathLike, stats: BinStats, proposal: IntervalProposal, title: str, matrix: np.ndarray | None = None
) -> None:
    """Mean ± std of the per-bin statistic vs depth percentile, the robust trend, and the proposed interval."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.0, 3.8), dpi=110)
    xs = np.asarray(BINS, dtype=float)
    mean, std = np.asarray(stats.mean), np.asarray(stats.std)
    if matrix is not None and len(matrix):
        for row in np.asarray(matrix)[: min(30, len(matrix))]:
            ax.plot(xs, row, color="0.75", linewidth=0.5, zorder=1)
    ax.fill_between(xs, mean - std, mean + std, color="tab:blue", alpha=0.2, label="± std over networks", zorder=2)
    ax.plot(xs, mean, "o-", color="tab:blue", label="mean over networks", zorder=3)
    if np.isfinite(proposal.slope):
        cx = np.asarray(proposal.candidate_bins, dtype=float)
        ax.plot(
            cx,
            proposal.slope * cx + proposal.intercept,
            "--",
            color="tab:gray",
            label=f"Theil–Sen trend (candidate bins {proposal.candidate_bins[0]}–{proposal.candidate_bins[-1]})",
        )
    if proposal.interval is not None:
        lo, hi = proposal.interval
        ax.axvspan(lo - 0.4, hi + 0.4, color="tab:orange", alpha=0.25, label=f"proposed [l̂, L̂] = [{lo}, {hi}]")
    ax.set_xticks(xs, _bin_labels())
    ax.set_xlabel("depth percentile bin (%) of the weight layer, floor(l/D·100 // 10)·10")
    ax.set_ylabel("log σ of the gradient (mean over layer elements)")
    ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="best")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def plot_bin_correlation(
    path: str | os.PathLike,
    rho: Mapping[str, Sequence[float]],
    rho_all: Mapping[str, float],
    interval: tuple[int, int] | None,
    title: str,
) -> None:
    """Per accuracy column: ρ of Λ restricted to each single bin (paper Fig. 2a), and Λ over all layers (dashed)."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7.6, 3.8), dpi=110)
    xs = np.asarray(BINS, dtype=float)
    for i, (name, values) in enumerate(rho.items()):
        color = f"C{i % 10}"
        ax.plot(xs, values, "o-", color=color, markersize=4, label=name)
        if math.isfinite(rho_all.get(name, math.nan)):
            ax.axhline(rho_all[name], color=color, linestyle="--", linewidth=1)
    ax.plot([], [], "k--", linewidth=1, label="dashed: Λ on all layers")
    if interval is not None:
        ax.axvspan(interval[0] - 0.4, interval[1] + 0.4, color="tab:orange", alpha=0.2, label="rule's [l̂, L̂]")
    ax.set_xticks(xs, _bin_labels())
    ax.set_xlabel("depth percentile bin (%) — Λ restricted to this bin")
    ax.set_ylabel("Spearman ρ with accuracy")
    ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def write_outputs(result: LayerProfileResult, networks: pd.DataFrame, out_dir: str | os.PathLike) -> Path:
    """``layers.json``, ``networks.csv``, ``layer_profile.png`` and (with accuracies) ``bin_correlation.png``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    networks.to_csv(out / "networks.csv", index=False)
    title = f"{result.space}: per-layer gradient statistic over {result.n_networks} random networks; " + (
        f"proposed [{result.proposal.interval[0]}, {result.proposal.interval[1]}]"
        if result.proposal.interval
        else "no spike -> all layers"
    )
    plot_profile(
        out / "layer_profile.png", result.stats, result.proposal, title, networks[STAT_COLUMNS].to_numpy(dtype=float)
    )
    if result.per_bin_rho:
        rho_all = {a: c.get("in_sample_rho_all_layers", math.nan) for a, c in result.label_checks.items()}
        plot_bin_correlation(
            out / "bin_correlation.png",
            result.per_bin_rho,
            rho_all,
            result.proposal.interval,
            f"{result.space}: Spearman ρ of Λ restricted to one depth bin ({result.n_networks} nets)",
        )
    return write_json(out / "layers.json", result.to_dict(), indent=2)


def format_result(result: LayerProfileResult, device: str) -> str:
    """The terminal summary of ``lswag-layers``: per-bin mean ± std and residual, the proposal, the label checks."""
    p = result.proposal
    out = [
        f"{result.space}: {result.n_networks} networks ({result.seconds_per_network:.3f} s each on {device}); "
        f"depth {result.depth['min']:.0f}-{result.depth['max']:.0f} weight layers",
        "bin  mean log σ ± std   residual",
    ]
    for b in range(len(result.stats.mean)):
        r = p.residual[b]
        out.append(
            f"{b:>3}  {result.stats.mean[b]:8.3f} ± {result.stats.std[b]:6.3f}   "
            + ("     –" if r is None or not math.isfinite(r) else f"{r:+7.3f}")
        )
    out.append(
        f"proposed interval: {list(p.interval) if p.interval is not None else 'None (every layer)'} — {p.reason}"
    )
    for acc, check in result.label_checks.items():
        if "skipped" in check:
            out.append(f"  {acc}: label check skipped ({check['skipped']})")
            continue
        h = check["heldout"]
        top = check["chosen"][0]
        out.append(
            f"  {acc}: held-out ρ of Λ: all layers {h['all_layers']['mean']:.3f}, rule "
            f"{h['rule']['mean']:.3f}, label-chosen {h['label_chosen']['mean']:.3f} (most often "
            f"{top['interval']} x{top['count']})"
        )
    return "\n".join(out)
