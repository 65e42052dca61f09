"""Text for a terminal (``lswag-collect``, ``make demo``): the issues, the correlation table, LIBRA's choices,
auto's label-budget choice, one line per job. Renders what the other modules computed; computes nothing."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from lswag_lightning.analysis.libra_text import format_summary
from lswag_lightning.collect.analyse import Analysis
from lswag_lightning.collect.records import JobIssue
from lswag_lightning.collect.results_table import ACCURACY_KEYS, _number


def _f(value: Any, digits: int = 3) -> str:
    try:
        value = float(value)
    except (TypeError, ValueError):
        return "–"
    return f"{value:.{digits}f}" if math.isfinite(value) else "–"


def _g(value: Any) -> str:
    value = _number(value)
    if not math.isfinite(value):
        return "nan"
    return f"{value:.4g}" if abs(value) < 1e5 else f"{value:.3e}"


def format_issues(issues: Sequence[JobIssue]) -> str:
    """One line per failed / unfinished job: ``  [failed] 7 nb201 |...|: ValueError: ...``."""
    if not issues:
        return "no failed or unfinished jobs"
    lines = [f"{len(issues)} failed or unfinished job(s):"]
    for issue in issues:
        what = f" {issue.space}" if issue.space else ""
        lines.append(f"  [{issue.kind}] job {issue.job}{what}: {issue.error}")
    return "\n".join(lines)


def format_correlations(analysis: Analysis) -> str:
    """The correlation table as text: proxy, n, Spearman [95% CI], Kendall, top-10% hit, and the per-space ρ."""
    if analysis.correlations is None:
        return "no correlation table: " + ("; ".join(analysis.notes) or "not computed")
    corr = analysis.correlations.sort_values("spearman", ascending=False, na_position="last")
    spaces = list(analysis.per_space)
    width = max(8, *(len(p) for p in corr["proxy"]))
    cols = [max(8, len(s) + 2) for s in spaces]
    head = f"{'proxy':<{width}}  {'n':>3}  {'Spearman [95% CI]':<24}  {'Kendall':>7}  {'top10%':>6}" + "".join(
        f"  {'ρ ' + s:>{w}}" for s, w in zip(spaces, cols)
    )
    lines = [
        f"Rank correlation with {analysis.accuracy} (%), all {analysis.n_rows} finished jobs"
        + (" pooled; then per space" if spaces else "")
        + ":",
        head,
        "-" * len(head),
    ]
    for row in corr.itertuples():
        ci = (
            f"{_f(row.spearman)} [{_f(row.spearman_lo)}, {_f(row.spearman_hi)}]"
            if math.isfinite(row.spearman_lo)
            else _f(row.spearman)
        )
        per = ""
        for s, w in zip(spaces, cols):
            sub = analysis.per_space[s]
            match = sub[sub["proxy"] == row.proxy]
            per += f"  {_f(match['spearman'].iloc[0]) if len(match) else '–':>{w}}"
        lines.append(f"{row.proxy:<{width}}  {row.n:>3}  {ci:<24}  {_f(row.kendall):>7}  {_f(row.top_hit, 2):>6}" + per)
    return "\n".join(lines)


def format_libra(analysis: Analysis) -> str:
    """LIBRA's choice and its held-out numbers (the ``lswag-libra`` summary), or why it was skipped."""
    if analysis.libra is None:
        return analysis.libra_skipped or "LIBRA not run"
    return format_summary(analysis.libra)


def format_ranking(analysis: Analysis) -> str:
    """The label-budget lines: auto's choice at this sweep's k, its expected ρ, the learned ranking's held-out ρ."""
    from lswag_lightning.collect.budget import format_sweep_ranking

    if analysis.ranking is None:
        return "label budget: not run"
    return "\n".join(["Label budget (rank the candidates not trained yet):", *format_sweep_ranking(analysis.ranking)])


def _libra_line(label: str, evaluation: Any) -> str:
    sel = evaluation.selection
    s = evaluation.summary()
    return (
        f"{label}: {', '.join(sel.proxies)}  (held-out ρ {_f(s['libra']['mean'])} ± {_f(s['libra']['std'])} "
        f"over {evaluation.n_splits} splits; best single proxy {_f(s['best_single']['mean'])} ± "
        f"{_f(s['best_single']['std'])})"
    )


def format_libra_choices(analysis: Analysis) -> str:
    """One line per scope (all jobs pooled, then each space): LIBRA's proxies and held-out ρ, or why skipped."""
    lines = []
    pooled = f"all {analysis.n_rows} jobs" + (" pooled" if analysis.per_space else "")
    if analysis.libra is not None:
        lines.append(_libra_line(f"LIBRA choice, {pooled}", analysis.libra))
    else:
        lines.append(f"LIBRA, {pooled}: {analysis.libra_skipped or 'not run'}")
    for space in analysis.per_space:
        if space in analysis.per_space_libra:
            lines.append(_libra_line(f"LIBRA choice, {space} only", analysis.per_space_libra[space]))
        else:
            lines.append(f"LIBRA, {space} only: {analysis.per_space_libra_skipped.get(space, 'not run')}")
    return "\n".join(lines)


def format_job_line(record: Mapping[str, Any], accuracy: str = "val_acc", proxies: Sequence[str] = ("lswag",)) -> str:
    """One line for a finished (or failed) job: space, candidate, params, accuracy, a few proxies, seconds."""
    candidate = record.get("candidate") or {}
    index = candidate.get("index")
    who = f"{record.get('space', '?')} #{index}" if index is not None else f"{record.get('space', '?')}"
    seconds = (record.get("seconds") or {}).get("total")
    took = f"{_number(seconds):5.1f} s" if math.isfinite(_number(seconds)) else "    ? s"
    if record.get("status") != "ok":
        error = str(record.get("error") or record.get("status"))
        return f"{who:<20} FAILED after {took}: {error[:160]}"
    values = record.get("proxies") or {}
    shown = "  ".join(f"{p}={_g(values.get(p))}" for p in proxies if p in values)
    acc = 100.0 * _number(record.get(ACCURACY_KEYS.get(accuracy, accuracy)))
    params = _number(record.get("params"))
    size = f"{int(params):>8,d}" if math.isfinite(params) else f"{'?':>8}"
    return f"{who:<20} params {size}  {accuracy} {acc:5.1f}%  {shown}  {took}"
