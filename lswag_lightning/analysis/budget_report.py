"""Learning curves on disk: ``learning_curve.csv`` (one row per table, accuracy, budget and method), the per-draw
values, auto's choices, a markdown summary and one plot per accuracy column (``lswag-libra --budgets``)."""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from lswag_lightning.analysis.budget import LearningCurve


def _f(v: float) -> str:
    return "–" if v is None or not math.isfinite(v) else f"{v:.3f}"


def curves_frame(curves: Sequence[LearningCurve], labels: Sequence[str] | None = None) -> pd.DataFrame:
    """The summaries of several curves in one frame; ``labels`` (one per curve) fill a leading ``table`` column."""
    frames = []
    for i, curve in enumerate(curves):
        frame = curve.frame()
        if labels is not None:
            frame.insert(0, "table", labels[i])
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)


def markdown(curve: LearningCurve, title: str = "") -> list[str]:
    """Markdown lines: held-out ρ (mean ± std) per method and budget, the paired differences of auto (or of every
    method when auto was not run) to #params and to the best single proxy, and auto's choices."""
    frame = curve.frame()
    budgets = curve.budgets
    lines = [
        f"**{title or curve.accuracy}**: held-out Spearman ρ on the unlabelled rows, mean ± std over {curve.draws} "
        f"draws of k labelled rows (of {curve.n_rows}; seed {curve.seed})",
        "",
        "| method | " + " | ".join(f"k = {k}" for k in budgets) + " |",
        "|---|" + "---|" * len(budgets),
    ]
    for method in curve.methods:
        cells = []
        for k in budgets:
            row = frame[(frame.budget == k) & (frame.method == method)].iloc[0]
            cells.append(f"{_f(row.rho_mean)} ± {_f(row.rho_std)}")
        lines.append(f"| {method} | " + " | ".join(cells) + " |")
    shown = ["auto"] if "auto" in curve.methods else [m for m in curve.methods if m not in ("params", "best_single")]
    for method in shown:
        for ref, col in (("params", "minus_params"), ("best_single", "minus_best_single")):
            if ref not in curve.methods:
                continue
            cells = []
            for k in budgets:
                row = frame[(frame.budget == k) & (frame.method == method)].iloc[0]
                cells.append(f"{_f(row[f'{col}_mean'])} ± {_f(row[f'{col}_std'])}")
            lines.append(f"| {method} − {ref} (paired) | " + " | ".join(cells) + " |")
    k = budgets[-1]
    for method in ("best_single", "libra_log_rank", "greedy"):
        counts = curve.chosen.get((k, method))
        if counts:
            top = "; ".join(f"{c} x{n}" for c, n in counts.most_common(3))
            lines.append(f"- {method} at k = {k} chose: {top}")
    auto = curve.auto_frame()
    if len(auto):
        lines += ["", "| k | auto held-out | auto expected (inner CV) | realised inside the interval | chosen |"]
        lines.append("|---|---|---|---|---|")
        for row in auto.itertuples():
            lines.append(
                f"| {row.budget} | {_f(row.rho_mean)} | {_f(row.expected_rho_mean)} | "
                f"{row.interval_coverage:.0%} | {row.chosen} |"
            )
    lines += [f"- note: {n}" for n in dict.fromkeys(curve.notes)]
    return lines


def write_curves(
    curves: Sequence[LearningCurve],
    out_dir: str | os.PathLike,
    labels: Sequence[str] | None = None,
    *,
    command: str = "",
    plots: bool = True,
) -> Path:
    """Write ``learning_curve.csv``, ``learning_curve_draws.csv``, ``auto.csv``, ``learning_curve.md`` and (with
    ``plots``) ``learning_curve_<label or accuracy>.png`` into ``out_dir``; returns the markdown path."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    curves_frame(curves, labels).to_csv(out / "learning_curve.csv", index=False)
    draws = [c.draws_frame() for c in curves]
    autos = [c.auto_frame() for c in curves]
    if labels is not None:
        for frame_list in (draws, autos):
            for label, frame in zip(labels, frame_list):
                frame.insert(0, "table", label)
    pd.concat(draws, ignore_index=True).to_csv(out / "learning_curve_draws.csv", index=False)
    pd.concat(autos, ignore_index=True).to_csv(out / "auto.csv", index=False)
    lines = [f"command: `{command}`", ""] if command else []
    for i, curve in enumerate(curves):
        name = labels[i] if labels is not None else curve.accuracy
        lines += [*markdown(curve, name), ""]
        if plots:
            from lswag_lightning.analysis.budget_plot import plot_curve
            from lswag_lightning.analysis.report import safe_name

            png = out / f"learning_curve_{safe_name(name)}.png"
            plot_curve(curve, png, title=name)
            lines += [f"![{name}]({png.name})", ""]
    path = out / "learning_curve.md"
    path.write_text("\n".join(lines) + "\n")
    return path
