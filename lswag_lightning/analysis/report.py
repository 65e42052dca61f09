"""A markdown + PNG report of how well each proxy ranks architectures, and of LIBRA's choice.

``write_report`` computes a :class:`ProxyReportSummary` (:func:`summarize_report`: correlations, LIBRA), then
renders it (:func:`render_report`) into ``out_dir``: ``report.md``, ``correlations.csv``, ``libra.json`` (when
LIBRA runs), ``scatter_<proxy>.png`` per proxy, ``spearman_bars.png`` and ``libra_fused.png``. Plots use
matplotlib's Agg backend (no display needed).
"""

from __future__ import annotations

import logging
import math
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from lswag_lightning.analysis.correlations import correlation_table
from lswag_lightning.analysis.fusion import rank_fusion
from lswag_lightning.analysis.libra import LibraEvaluation, evaluate
from lswag_lightning.analysis.table import Orientation, default_proxy_columns, orient, oriented_values, validate_table
from lswag_lightning.jsonio import write_json

log = logging.getLogger(__name__)

LOG_SCALE_DECADES = 3.0  # a positive oriented proxy spanning more than this many decades gets a log x-axis


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def safe_name(name: str) -> str:
    """A file-name-safe version of a column name (``lswag.psi`` -> ``lswag.psi``, ``a/b c`` -> ``a_b_c``)."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", str(name)).strip("_") or "column"


def _axis(name: str, values: np.ndarray, params: str, flipped: bool) -> tuple[np.ndarray, str]:
    """Values to plot and the axis label, with units: params in millions, otherwise the proxy's own units."""
    if name == params:
        return values / 1e6, f"{'−' if flipped else ''}#params (millions)"
    return values, (f"−{name} (lower is better, negated)" if flipped else f"{name} (higher is better)")


def _x_scale(values: np.ndarray) -> tuple[str, dict]:
    """``log`` for positive values spanning > 3 decades; ``symlog`` for such values with exact zeros and for signed
    heavy tails; else ``linear``."""
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return "linear", {}
    if finite.min() > 0:
        return ("log", {}) if math.log10(finite.max() / finite.min()) > LOG_SCALE_DECADES else ("linear", {})
    positive = finite[finite > 0]
    if finite.min() == 0 and positive.size and math.log10(positive.max() / positive.min()) > LOG_SCALE_DECADES:
        # non-negative with exact zeros (e.g. L-SWAG of a cell whose output ignores its input): log-like above the
        # smallest positive value, linear below it so the zeros stay on the plot
        return "symlog", {"linthresh": float(positive.min())}
    mag = np.abs(finite)
    typical = float(np.median(mag[mag > 0])) if (mag > 0).any() else 0.0
    if finite.min() < 0 < finite.max() and typical > 0 and mag.max() / typical > 10**LOG_SCALE_DECADES:
        return "symlog", {"linthresh": typical}
    return "linear", {}


def _fmt(v: float, digits: int = 3) -> str:
    return "–" if v is None or (isinstance(v, float) and not math.isfinite(v)) else f"{v:.{digits}f}"


def _ci(est: float, lo: float, hi: float) -> str:
    if not math.isfinite(est):
        return "–"
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return _fmt(est)
    return f"{est:.3f} [{lo:.3f}, {hi:.3f}]"


def _scatter(
    path: Path, x: np.ndarray, y: np.ndarray, xlabel: str, ylabel: str, title: str, groups: np.ndarray | None = None
) -> None:
    """Scatter of y against x; with ``groups`` (one label per point) each group gets its colour and a legend."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(4.8, 3.8), dpi=100)
    ok = np.isfinite(x) & np.isfinite(y)
    if groups is None:
        ax.scatter(x[ok], y[ok], s=8, alpha=0.6, linewidths=0)
    else:
        labels = np.asarray(groups, dtype=object)
        for label in sorted({str(g) for g in labels[ok]}):
            sel = ok & (labels.astype(str) == label)
            ax.scatter(x[sel], y[sel], s=14, alpha=0.75, linewidths=0, label=f"{label} ({int(sel.sum())})")
        ax.legend(fontsize=7, loc="best", frameon=False)
    scale, kwargs = _x_scale(x[ok])
    if scale != "linear":
        ax.set_xscale(scale, **kwargs)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def _bars(path: Path, corr: pd.DataFrame, accuracy: str) -> None:
    plt = _pyplot()
    data = corr[np.isfinite(corr["spearman"])].sort_values("spearman")
    fig, ax = plt.subplots(figsize=(5.5, 0.9 + 0.32 * max(1, len(data))), dpi=100)
    y = np.arange(len(data))
    lo = (data["spearman"] - data["spearman_lo"]).clip(lower=0).fillna(0).to_numpy()
    hi = (data["spearman_hi"] - data["spearman"]).clip(lower=0).fillna(0).to_numpy()
    ax.barh(y, data["spearman"], xerr=[lo, hi], capsize=2, color="tab:blue", alpha=0.8)
    ax.set_yticks(y, data["proxy"])
    ax.axvline(0, color="black", linewidth=0.8)
    ax.set_xlabel(f"Spearman ρ with {accuracy} (95% bootstrap interval)")
    low = np.nanmin(np.r_[data["spearman"].to_numpy(), data["spearman_lo"].to_numpy(), 0.0])
    ax.set_xlim(min(-0.05, float(low) - 0.05), 1.0)
    ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


@dataclass
class ProxyReportSummary:
    """The numbers of one proxy report, computed before anything is drawn or written.

    ``corr`` is :func:`correlation_table`'s output; ``evaluation`` LIBRA's (None when skipped, ``libra_error``
    says why); ``groups`` colours the scatter plots (one label per row, or None); ``table`` is kept for the plots.
    """

    table: pd.DataFrame
    accuracy: str
    proxies: list[str]
    params: str
    orientation: Orientation
    corr: pd.DataFrame
    evaluation: LibraEvaluation | None
    libra_error: str
    groups: np.ndarray | None
    n_boot: int
    seed: int


def summarize_report(
    table: pd.DataFrame,
    *,
    accuracy: str,
    proxies: Sequence[str] | None = None,
    params: str = "params",
    libra: bool | LibraEvaluation = True,
    seed: int = 0,
    higher_is_better: Mapping[str, bool] | Orientation | None = None,
    n_boot: int = 1000,
    libra_options: Mapping | None = None,
    color_by: str | None = None,
) -> ProxyReportSummary:
    """Correlations and LIBRA of ``table`` (arguments as :func:`write_report`), nothing written."""
    proxies = list(proxies) if proxies is not None else default_proxy_columns(table, accuracy)
    if not proxies:
        raise ValueError(f"no proxy columns to report; columns present: {', '.join(map(str, table.columns))}")
    validate_table(table, [*proxies, accuracy])
    if color_by is not None:
        validate_table(table, [color_by], numeric=False)
    groups = table[color_by].to_numpy(dtype=object) if color_by is not None else None
    orientation = orient(proxies, higher_is_better)
    corr = correlation_table(table, proxies, accuracy, higher_is_better=orientation, n_boot=n_boot, seed=seed)
    evaluation: LibraEvaluation | None = None
    libra_error = ""
    if isinstance(libra, LibraEvaluation):
        evaluation = libra
    elif libra:
        if params not in table.columns:
            libra_error = f"LIBRA skipped: params column {params!r} not in the table"
        else:
            options = {"seed": seed, **dict(libra_options or {})}
            try:
                evaluation = evaluate(table, proxies, accuracy, params, higher_is_better=orientation, **options)
            except ValueError as exc:
                libra_error = f"LIBRA skipped: {exc}"
        if libra_error:
            log.warning(libra_error)
    return ProxyReportSummary(
        table, accuracy, proxies, params, orientation, corr, evaluation, libra_error, groups, n_boot, seed
    )


def write_report(
    table: pd.DataFrame,
    out_dir: str | os.PathLike,
    *,
    accuracy: str,
    proxies: Sequence[str] | None = None,
    params: str = "params",
    title: str = "Zero-cost proxy report",
    protocol_lines: Iterable[str] = (),
    libra: bool | LibraEvaluation = True,
    seed: int = 0,
    higher_is_better: Mapping[str, bool] | Orientation | None = None,
    accuracy_unit: str = "%",
    n_boot: int = 1000,
    libra_options: Mapping | None = None,
    color_by: str | None = None,
) -> Path:
    """Write ``report.md`` and the plots for ``table`` into ``out_dir`` (created); return the markdown's path.

    ``proxies`` defaults to :func:`default_proxy_columns`. ``libra`` is True (run :func:`evaluate` with
    ``libra_options``: window, bins, fusion, n_splits, fit_fraction, nonfinite ...), False (skip LIBRA), or a
    precomputed :class:`LibraEvaluation`. ``protocol_lines`` (free text, one bullet each) describe how the table
    was made. ``accuracy_unit`` labels the accuracy axis (``%`` by default). ``color_by`` names a column (e.g.
    ``space``) whose values colour the scatter plots' points, with a legend; the numbers do not change.
    Computes with :func:`summarize_report`, then draws and writes with :func:`render_report`.
    """
    Path(out_dir).mkdir(parents=True, exist_ok=True)
    summary = summarize_report(
        table,
        accuracy=accuracy,
        proxies=proxies,
        params=params,
        libra=libra,
        seed=seed,
        higher_is_better=higher_is_better,
        n_boot=n_boot,
        libra_options=libra_options,
        color_by=color_by,
    )
    return render_report(summary, out_dir, title=title, protocol_lines=protocol_lines, accuracy_unit=accuracy_unit)


def render_report(
    summary: ProxyReportSummary,
    out_dir: str | os.PathLike,
    *,
    title: str = "Zero-cost proxy report",
    protocol_lines: Iterable[str] = (),
    accuracy_unit: str = "%",
) -> Path:
    """Write ``summary`` into ``out_dir``: ``correlations.csv``, ``libra.json``, the plots and ``report.md``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    s = summary
    s.corr.to_csv(out / "correlations.csv", index=False)
    acc = s.table[s.accuracy].to_numpy(dtype=float, na_value=np.nan)
    ylabel = f"{s.accuracy} ({accuracy_unit})" if accuracy_unit else s.accuracy
    scatter_files = {}
    for row in s.corr.itertuples():
        x, xlabel = _axis(
            row.proxy,
            oriented_values(s.table, row.proxy, s.orientation),
            s.params,
            not s.orientation.higher_is_better[row.proxy],
        )
        fname = f"scatter_{safe_name(row.proxy)}.png"
        _scatter(
            out / fname,
            x,
            acc,
            xlabel,
            ylabel,
            f"{row.proxy}: Spearman ρ = {_fmt(row.spearman)} (n = {row.n})",
            s.groups,
        )
        scatter_files[row.proxy] = fname
    _bars(out / "spearman_bars.png", s.corr, s.accuracy)
    evaluation = s.evaluation
    if evaluation is not None:
        sel = evaluation.selection
        write_json(out / "libra.json", evaluation.to_dict())
        lib_orient = orient(sel.proxies, sel.higher_is_better)
        fused = rank_fusion([oriented_values(s.table, p, lib_orient) for p in sel.proxies], evaluation.fusion)
        rho_in = evaluation.in_sample["libra"]
        _scatter(
            out / "libra_fused.png",
            fused,
            acc,
            f"LIBRA fused score ({evaluation.fusion}: {' + '.join(sel.proxies)})",
            ylabel,
            f"LIBRA, selection set (in-sample): ρ = {_fmt(rho_in)}",
            s.groups,
        )
    lines = [f"# {title}", ""]
    lines += [
        f"{len(s.table)} architectures; accuracy column `{s.accuracy}` ({accuracy_unit or 'no unit'}); "
        f"params column `{s.params}`; bootstrap: {s.n_boot} resamples of architectures, seed {s.seed}, 95% "
        "percentile intervals.",
        "",
    ]
    lines += ["## Protocol", ""]
    protocol_lines = [str(p) for p in protocol_lines]
    lines += [f"- {p}" for p in protocol_lines] if protocol_lines else ["- (no protocol given)"]
    lines += [""]
    lines += _correlation_lines(s)
    lines += _libra_lines(s)
    lines += ["## Scatter plots", ""]
    lines += [f"![{p}]({f})" for p, f in scatter_files.items()]
    lines += [""]
    path = out / "report.md"
    path.write_text("\n".join(lines))
    log.info("report written to %s", path)
    return path


def _correlation_lines(s: ProxyReportSummary) -> list[str]:
    """The markdown section of the correlation table."""
    lines = [
        "## Correlation with accuracy",
        "",
        "Proxies are oriented so that higher is better before ranking. Top-10% hit: the fraction of the 10% "
        "most accurate architectures that the proxy also places in its top 10%.",
        "",
        "| proxy | n | Spearman [95% CI] | Kendall [95% CI] | top-10% hit | excluded rows |",
        "|---|---|---|---|---|---|",
    ]
    for row in s.corr.sort_values("spearman", ascending=False, na_position="last").itertuples():
        excl = f"{row.n_excluded} ({row.excluded})" if row.n_excluded else "0"
        lines.append(
            f"| {row.proxy} | {row.n} | {_ci(row.spearman, row.spearman_lo, row.spearman_hi)} | "
            f"{_ci(row.kendall, row.kendall_lo, row.kendall_hi)} | {_fmt(row.top_hit)} | {excl} |"
        )
    lines += [""]
    flipped, assumed = s.orientation.flipped, s.orientation.assumed
    lines.append(f"Lower-is-better proxies (negated before ranking): {', '.join(flipped) if flipped else 'none'}.")
    if assumed:
        lines.append(
            f"Orientation ASSUMED higher-is-better (unknown to the proxy registry, no override): {', '.join(assumed)}."
        )
    lines += ["", "![Spearman per proxy](spearman_bars.png)", ""]
    return lines


def _libra_lines(s: ProxyReportSummary) -> list[str]:
    """The markdown section of LIBRA's selection and held-out evaluation."""
    lines = ["## LIBRA", ""]
    evaluation = s.evaluation
    if evaluation is None:
        return lines + [s.libra_error or "LIBRA not run.", ""]
    sel = evaluation.selection
    lines += [
        f"Selection on all {sel.n_rows} usable architectures (window {sel.window:g}, {sel.bins} "
        f"equal-frequency bins, IG in {sel.entropy_unit}, fusion `{evaluation.fusion}`): "
        f"**{', '.join(sel.proxies)}**.",
        "",
        f"b_val = Spearman({s.accuracy}, {s.params}) = {_fmt(sel.bias_accuracy)}; "
        f"H(acc | z1) = {_fmt(sel.h_accuracy_given_z1)} bits.",
        "",
        "| proxy | role | ρ | IG given z1 (bits) | bias b_z | abs(b_val − b_z) |",
        "|---|---|---|---|---|---|",
    ]
    roles = {p: r for p, r in zip(sel.proxies, ("z1 (best ρ)", "z2 (min IG)", "z3 (bias match)"))}
    for p in sorted(sel.rho, key=lambda q: -sel.rho[q]):
        role = roles.get(p, "window candidate" if p in sel.candidates else "")
        ig = _fmt(sel.info_gain[p]) if p in sel.info_gain else ""
        gap = _fmt(abs(sel.bias_accuracy - sel.bias[p])) if math.isfinite(sel.bias_accuracy) else "–"
        lines.append(f"| {p} | {role} | {_fmt(sel.rho[p])} | {ig} | {_fmt(sel.bias[p])} | {gap} |")
    lines += [""]
    if sel.excluded:
        lines += ["Excluded from LIBRA: " + "; ".join(f"{k}: {v}" for k, v in sel.excluded.items()) + ".", ""]
    for note in evaluation.notes:
        lines.append(f"- note: {note}")
    if evaluation.notes:
        lines.append("")
    summ = evaluation.summary()
    lines += [
        "### Held-out evaluation",
        "",
        f"{evaluation.n_splits} random splits (seed {evaluation.seed}): select on {evaluation.n_fit} "
        f"architectures, Spearman ρ on the other {evaluation.n_eval}; mean ± std over splits.",
        "",
        "| method | held-out ρ | selection-set ρ (in-sample) |",
        "|---|---|---|",
        f"| LIBRA ({evaluation.fusion}) | {_fmt(summ['libra']['mean'])} ± {_fmt(summ['libra']['std'])} "
        f"| {_fmt(evaluation.in_sample['libra'])} |",
        f"| best single proxy (chosen on the fit part) | {_fmt(summ['best_single']['mean'])} ± "
        f"{_fmt(summ['best_single']['std'])} | {_fmt(evaluation.in_sample['best_single_rho'])} "
        f"({evaluation.in_sample['best_single']}) |",
        f"| AZ-NAS-style log-rank fusion of all {len(evaluation.proxies)} proxies | "
        f"{_fmt(summ['az_all']['mean'])} ± {_fmt(summ['az_all']['std'])} | "
        f"{_fmt(evaluation.in_sample['az_all'])} |",
        "",
        f"LIBRA − best single, paired per split: {_fmt(summ['libra_minus_best']['mean'])} ± "
        f"{_fmt(summ['libra_minus_best']['std'])}.",
        "",
        "Selections over the splits: " + "; ".join(f"{', '.join(t)} ×{c}" for t, c in evaluation.triples) + ".",
        "",
        "![LIBRA fused score](libra_fused.png)",
        "",
    ]
    return lines
