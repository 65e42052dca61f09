"""The plot of a learning curve: held-out ρ against the label budget k, one line per method with a ±1 std band
(matplotlib's Agg backend, no display needed)."""

from __future__ import annotations

import os
from pathlib import Path

from lswag_lightning.analysis.budget import LearningCurve

#: methods drawn bold; the rest thin
EMPHASIS = ("auto", "learned", "params", "best_single")


def plot_curve(curve: LearningCurve, path: str | os.PathLike, title: str = "") -> Path:
    """Save the plot of ``curve`` to ``path`` (PNG)."""
    from lswag_lightning.analysis.report import _pyplot

    plt = _pyplot()
    frame = curve.frame()
    fig, ax = plt.subplots(figsize=(7.5, 4.8), dpi=110)
    for method in curve.methods:
        rows = frame[frame.method == method].sort_values("budget")
        style = {"linewidth": 2.2} if method in EMPHASIS else {"linewidth": 1.0, "alpha": 0.8}
        if method == "params":
            style.update(color="black", linestyle="--")
        line = ax.plot(rows.budget, rows.rho_mean, marker="o", markersize=3, label=method, **style)[0]
        ax.fill_between(
            rows.budget,
            rows.rho_mean - rows.rho_std,
            rows.rho_mean + rows.rho_std,
            color=line.get_color(),
            alpha=0.12,
        )
    ax.set_xscale("log")
    ax.set_xticks(curve.budgets)
    ax.set_xticklabels([str(k) for k in curve.budgets])
    ax.set_xlabel("labelled architectures k (log scale)")
    ax.set_ylabel("Spearman ρ on the unlabelled rest")
    ax.set_title(title or curve.accuracy)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, ncol=2, loc="lower right")
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path)
    plt.close(fig)
    return path
