"""What a search writes into its output folder.

- ``ranked.csv``: every evaluated architecture, best first (columns in :meth:`Search.ranked`: ``rank``, ``arch``,
  ``params``, [``flops``], ``fitness``, every proxy value computed, ``evaluation``, ``parent``, ``source``).
- ``report.md``: the settings, exactly how the fitness was computed, the budget accounting, the top architectures
  and the best-so-far curve.
- ``fitness.png``: best fitness so far against the number of evaluations (matplotlib, imported on use).
- ``summary.json``: the best architecture, its values, the settings and the counters (for scripts).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from lswag_lightning.jsonio import dumps, encode_float, write_json
from lswag_lightning.search.evaluation import SearchResult
from lswag_lightning.search.loop import Search

TOP_ROWS = 10


def _fmt(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if isinstance(value, (int, np.integer)):
        return f"{int(value):,}"
    if isinstance(value, (float, np.floating)):
        v = float(value)
        if math.isinf(v):
            return "inf" if v > 0 else "-inf"
        return f"{v:.4g}" if abs(v) < 1e5 else f"{v:.4e}"
    return str(value)


def _md_table(frame: pd.DataFrame) -> list[str]:
    cols = [str(c) for c in frame.columns]
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for _, row in frame.iterrows():
        cells = []
        for c in frame.columns:
            text = _fmt(row[c])
            cells.append(f"`{text}`" if c == "arch" else text.replace("|", "\\|"))
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def plot_trajectory(trajectory: Sequence[tuple[int, float]], path: Path, title: str, ylabel: str) -> Path:
    """Best fitness so far against evaluations, saved as a PNG."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    x = np.arange(1, len(trajectory) + 1)
    y = np.array([f for _, f in trajectory], dtype=float)
    fig, ax = plt.subplots(figsize=(6.4, 3.8))
    ax.plot(x, y, lw=1.6)
    ax.set_xlabel("architectures scored (evaluations)")
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def write_outputs(
    search: Search,
    result: SearchResult,
    out_dir: str | Path,
    *,
    command: str | None = None,
    extra_lines: Sequence[str] = (),
) -> dict[str, Path]:
    """Write ``ranked.csv``, ``report.md``, ``fitness.png`` and ``summary.json`` into ``out_dir``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {
        "ranked": out / "ranked.csv",
        "report": out / "report.md",
        "plot": out / "fitness.png",
        "summary": out / "summary.json",
    }
    result.ranked.to_csv(paths["ranked"], index=False)
    s, fit = search.settings, search.fitness
    ylabel = (
        f"best fused fitness ({fit.describe().get('method')}, pool = first t archs)"
        if fit.pool_dependent
        else f"best {fit.name} (oriented)"
    )
    if result.trajectory:
        plot_trajectory(
            result.trajectory,
            paths["plot"],
            f"{s.space}: {s.strategy} search, fitness {fit.name}, seed {s.seed}",
            ylabel,
        )
    write_json(paths["summary"], _summary(search, result), nonfinite="keep", fallback=str, indent=1)
    lines = [f"# lswag-search: {s.space}, {s.strategy}, fitness {fit.name}", ""]
    if command:
        lines += ["```", command, "```", ""]
    best = result.best
    if best:
        lines += [
            f"**Best architecture** (fitness {_fmt(best.get('fitness'))}, {_fmt(best.get('params'))} parameters):",
            "",
            "```",
            str(best.get("arch")),
            "```",
            "",
        ]
    lines += _settings_lines(search) + _accounting_lines(search, result)
    if len(result.ranked):
        show = [col for col in result.ranked.columns if col not in ("source",)]
        lines += [
            f"## Top {min(TOP_ROWS, len(result.ranked))}",
            "",
            *_md_table(result.ranked[show].head(TOP_ROWS)),
            "",
            "![best fitness over evaluations](fitness.png)",
            "",
        ]
    lines += list(extra_lines)
    paths["report"].write_text("\n".join(lines) + "\n")
    return paths


def _summary(search: Search, result: SearchResult) -> dict:
    """``summary.json``: settings, fitness, scorer, counters, the best architecture and the best-so-far curve."""
    s = search.settings
    return {
        "space": s.space,
        "strategy": s.strategy,
        "seed": s.seed,
        "budget": s.budget,
        "evaluations": len(search.history),
        "complete": result.complete,
        "stopped": result.stopped,
        "best": {
            k: (encode_float(v) if isinstance(v, float) else (None if v is pd.NA else v))
            for k, v in result.best.items()
        },
        "fitness": search.fitness.describe(),
        "settings": s.to_dict(),
        "scorer": search.scorer.describe(),
        "counters": result.counters,
        "resumed_from": result.resumed_from,
        "seconds": result.seconds,
        "trajectory": [[int(i) + 1, encode_float(v)] for i, v in result.trajectory],
    }


def _settings_lines(search: Search) -> list[str]:
    """The report's "Settings" and "Fitness" sections."""
    s, fit = search.settings, search.fitness
    lines = [
        "## Settings",
        "",
        f"- space `{s.space}`, build options `{dumps(s.build_options, nonfinite='keep')}`",
        f"- strategy `{s.strategy}`"
        + (
            f": population P = {s.population}, tournament S = {s.tournament}, aging (the oldest member leaves)"
            if s.strategy == "evolution"
            else ""
        ),
        f"- budget: {s.budget} architectures scored; seed {s.seed}",
        f"- constraints: max params {_fmt(s.max_params) if s.max_params else 'none'}, max FLOPs "
        f"{_fmt(s.max_flops) if s.max_flops else 'none'} (checked before scoring; rejected proposals cost no "
        "budget)",
        f"- scorer: `{dumps(search.scorer.describe(), nonfinite='keep', fallback=str)}`",
        "",
        "## Fitness",
        "",
        fit.explain(),
        "",
    ]
    if fit.pool_dependent:
        lines += [
            f"Rank pool: `{s.rank_pool}`. "
            + (
                "During the search the ranks are taken among all architectures scored so far (recomputed after every "
                "evaluation)."
                if s.rank_pool == "history"
                else "During the search the tournament compares ranks among the current population members only."
            )
            + f" The ranking below and `ranked.csv` use all {len(search.history)} architectures scored as the pool; "
            "the curve in `fitness.png` shows, after t evaluations, the best fused fitness with the first t "
            "architectures as the pool.",
            "",
        ]
    return lines


def _accounting_lines(search: Search, result: SearchResult) -> list[str]:
    """The report's "Budget accounting" section."""
    s, c = search.settings, result.counters
    status = "budget spent" if result.complete else (result.stopped or "interrupted; rerun the same command to resume")
    return [
        "## Budget accounting",
        "",
        f"- {len(search.history)} of {s.budget} architectures scored ({status})",
        f"- proposals {c.get('proposals')}: duplicates {c.get('duplicates')}, over the parameter budget "
        f"{c.get('over_params')}, over the FLOPs budget {c.get('over_flops')}",
        f"- values computed now: {c.get('computed')}; reused from a cache/table: {c.get('reused')}; scoring "
        f"time {c.get('scoring_seconds', 0.0):.1f} s; search wall time {result.seconds:.1f} s"
        + (f"; resumed after {result.resumed_from} evaluations" if result.resumed_from else ""),
        "",
    ]
