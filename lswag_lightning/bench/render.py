"""Writing a benchmark report from its :class:`~lswag_lightning.bench.summary.BenchSummary`: the per-column
sub-reports (``report_<accuracy>/``), ``report.md`` with the protocol and the tables across columns, and
``summary.json``. :func:`write_bench_report` computes the summary, then renders it."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from lswag_lightning.bench.settings import BenchSettings
from lswag_lightning.bench.summary import BenchSummary, summarize_bench
from lswag_lightning.jsonio import write_json
from lswag_lightning.probe import PROBE_FILE


def _probe_line(settings: BenchSettings) -> str:
    """The protocol bullet that says which probe batch every architecture was scored on."""
    return (
        (
            f"Probe data: one batch of {settings.batch_size} CIFAR-10 training images with their labels "
            f"({PROBE_FILE}, JPEG-decoded copy of CIFAR-10; permutation seed {settings.probe_seed}), normalised "
            "with the "
            f"CIFAR-10 mean/std, at {settings.img_size}x{settings.img_size} px"
            + (" (bilinear resize from 32 px)" if settings.img_size != 32 else "")
            if settings.probe_protocol == "bench"
            else f"Probe data (the search protocol of lswag-search): one batch of {settings.batch_size} CIFAR-10 "
            f"training images with their labels drawn from images/cifar10_train*.npz (default_rng("
            f"{settings.probe_seed}).choice), normalised with the CIFAR-10 mean/std, at "
            f"{settings.img_size}x{settings.img_size} px"
        )
        + "; the same batch serves every "
        "architecture"
        + (
            " and all three NB201 tasks (CIFAR-10, CIFAR-100 and ImageNet16-120 accuracies are "
            "ranked against scores from the same CIFAR-10 images)"
            if settings.space == "nb201"
            else " and every accuracy column"
        )
        + "."
    )


def protocol_lines(
    settings: BenchSettings,
    meta: Mapping[str, Any],
    n_rows: int,
    n_planned_total: int | None,
    command: str | None = None,
) -> list[str]:
    """The protocol bullets every benchmark report states next to its numbers."""
    so = settings.score_options
    interval = so.get("layer_interval")
    psi = so.get("psi_layers", "upto")
    shards = meta.get("shards") or {}
    lines = [
        f"Benchmark `{settings.benchmark}`, space `{settings.space}`; ground truth: {settings.gt_source}.",
        (
            f"Architectures: {n_rows} scored"
            + (
                (
                    (f" ({n_rows} of" if shards.get("missing") else f" (the first {n_rows} of")
                    if n_rows < settings.sample
                    else ","
                )
                + f" a seeded random sample of {settings.sample} (numpy default_rng({settings.seed}).choice, without "
                f"replacement) of the {n_planned_total} in the ground truth" + (")" if n_rows < settings.sample else "")
                if settings.sample
                else f" (of all {n_planned_total} in the ground truth, in file order)"
            )
            + "."
        ),
        _probe_line(settings),
        f"Networks: `{settings.space}` built with {json.dumps(settings.build_options, sort_keys=True)}; weights "
        f"initialised on the CPU with torch seed = sha256('{settings.init_seed_base}|<arch>') (column "
        "`init_seed`); scored in train() mode.",
        f"Proxies: {', '.join(settings.proxies)}. Options: {json.dumps(so, sort_keys=True)} "
        f"(sources: {json.dumps(settings.score_options_source, sort_keys=True) or 'engine defaults'}); "
        f"L-SWAG layer interval: {interval if interval is not None else 'all layers (none set)'}, Ψ points: "
        f"{psi}; Λ/ZiCo from K = {so.get('lambda_k', 2)} {so.get('lambda_samples', 'split')} gradient samples "
        f"of the batch, {so.get('lambda_std', 'signed')} std.",
        "Device(s) that scored the rows: "
        + (
            ", ".join(sorted({_device_text(r) for r in meta.get("runs", [meta]) if r.get("rows_scored", 1) != 0}))
            or "?"
        )
        + "; TF32 off on CUDA.",
    ]
    if shards:
        missing = shards.get("missing") or {}
        lines.append(
            f"Scored in {shards['count']} shards (shard I holds the sample positions p with p mod "
            f"{shards['count']} = I), merged by sample position"
            + (
                f"; MISSING: {'; '.join(f'shard {i}: {why}' for i, why in missing.items())}"
                if missing
                else "; all complete"
            )
            + "."
        )
    if command:
        lines.append(f"Command: `{command}`")
    return lines


def _device_text(run: Mapping[str, Any]) -> str:
    name = f" ({run['device_name']})" if run.get("device_name") else ""
    return f"{run.get('device', '?')}{name}, torch {run.get('torch', '?')}, {run.get('threads', '?')} CPU thread(s)"


def write_bench_report(
    table: pd.DataFrame,
    out_dir: str | os.PathLike,
    settings: BenchSettings,
    *,
    accuracy_columns: Sequence[str],
    meta: Mapping[str, Any] | None = None,
    n_planned_total: int | None = None,
    command: str | None = None,
    n_boot: int = 1000,
    splits: int = 20,
    seed: int = 0,
) -> Path:
    """``<out>/report.md``: per accuracy column a full report (``report_<accuracy>/``: correlations with
    bootstrap CIs, scatter plots, LIBRA with held-out evaluation) and a summary table across columns; for nb201
    the L-SWAG paper's numbers beside ours. Returns the path of ``report.md``."""
    summary = summarize_bench(
        table, settings, accuracy_columns=accuracy_columns, n_boot=n_boot, splits=splits, seed=seed
    )
    protocol = protocol_lines(settings, dict(meta or {}), len(table), n_planned_total, command)
    return render_bench_report(summary, out_dir, protocol)


def render_bench_report(summary: BenchSummary, out_dir: str | os.PathLike, protocol: Sequence[str]) -> Path:
    """Write ``summary`` into ``out_dir`` (sub-reports, ``report.md``, ``summary.json``) under the ``protocol``
    bullets (:func:`protocol_lines`); returns the path of ``report.md``."""
    from lswag_lightning.analysis.report import render_report, safe_name

    out = Path(out_dir)
    s = summary
    protocol = [*protocol, *_run_lines(s)]
    sections: list[str] = []
    for acc in s.accuracy_columns:
        folder = f"report_{safe_name(acc)}"
        if acc in s.too_few:
            sections.append(f"- `{acc}`: {s.too_few[acc]} rows with a value; too few for an analysis")
            continue
        render_report(
            s.columns[acc].report,
            out / folder,
            title=f"{s.settings.benchmark}: zero-cost proxies vs `{acc}`",
            protocol_lines=protocol,
        )
        sections.append(
            f"- `{acc}` ({s.columns[acc].n} architectures): [report]({folder}/report.md), "
            f"![ρ per proxy]({folder}/spearman_bars.png)"
        )
    dup_text = ", ".join(f"{d} (= {k})" for d, k in s.duplicates().items())
    lines = [
        f"# lswag-bench `{s.settings.benchmark}`: zero-cost proxies against published accuracy",
        "",
        "## Protocol",
        "",
        *[f"- {p}" for p in protocol],
        f"- Statistics: Spearman ρ and Kendall τ of the oriented proxy (higher is better) with accuracy, 95% "
        f"percentile bootstrap intervals over {s.n_boot} resamples of the architectures (seed {s.seed}); LIBRA "
        f"selection + rank-mean fusion evaluated on held-out architectures over {s.splits} random 50/50 "
        f"splits (seed {s.seed}), mean ± std. LIBRA's pool leaves out columns that rank the architectures "
        f"exactly like an earlier one (z2 is the lowest-information-gain candidate, which a copy of z1 always "
        f"is){': ' + dup_text if dup_text else ''}.",
        "",
    ]
    if s.columns:
        lines += _correlation_tables(s)
        if s.settings.space == "nb201":
            lines += _paper_table(s)
    lines += [
        "## Reports per accuracy column",
        "",
        *sections,
        "",
        "Table: `table.csv` (one row per architecture; columns documented in `bench.json`).",
    ]
    path = out / "report.md"
    path.write_text("\n".join(lines) + "\n")
    write_json(out / "summary.json", s.to_json(), nonfinite="keep")
    return path


def _run_lines(s: BenchSummary) -> list[str]:
    """Protocol bullets from the table itself: scoring time, rows with a proxy that is not ok."""
    lines = []
    if s.seconds is not None:
        lines.append(
            f"Scoring time per architecture (all proxies together, shared passes once): median "
            f"{s.seconds['median']:.3f} s, mean {s.seconds['mean']:.3f} s "
            f"(+ building: mean {s.seconds['build_mean']:.3f} s)."
        )
    if s.n_bad:
        lines.append(
            f"{s.n_bad} of {s.n_rows} rows have a proxy that is not ok (see the `status` "
            "column); those values are NaN/inf and the analysis excludes them as reported."
        )
    return lines


def _cell(s: BenchSummary, acc: str, proxy: str, what: str = "spearman") -> str:
    corr = s.columns[acc].corr
    if proxy not in corr.index or not np.isfinite(corr.loc[proxy, what]):
        return "–"
    v, lo, hi = corr.loc[proxy, what], corr.loc[proxy, f"{what}_lo"], corr.loc[proxy, f"{what}_hi"]
    return f"{v:.3f} [{lo:.3f}, {hi:.3f}]" if np.isfinite(lo) and np.isfinite(hi) else f"{v:.3f}"


def _correlation_tables(s: BenchSummary) -> list[str]:
    """The Spearman table (with LIBRA's rows) and the Kendall table across accuracy columns."""
    accs, order = list(s.columns), s.order()
    head = ["| proxy | " + " | ".join(f"`{a}`" for a in accs) + " |", "|---|" + "---|" * len(accs)]
    lines = ["## Spearman ρ [95% CI] per accuracy column", "", *head]
    lines += [f"| {p} | " + " | ".join(_cell(s, a, p) for a in accs) + " |" for p in order]
    libra_cells, best_cells, az_cells, triple_cells = [], [], [], []
    for a in accs:
        ev = s.columns[a].libra
        if ev is None:
            libra_cells.append(s.columns[a].note or "–")
            best_cells.append("–"), az_cells.append("–"), triple_cells.append("–")
            continue
        m = ev.summary()
        libra_cells.append(f"{m['libra']['mean']:.3f} ± {m['libra']['std']:.3f}")
        best_cells.append(f"{m['best_single']['mean']:.3f} ± {m['best_single']['std']:.3f}")
        az_cells.append(f"{m['az_all']['mean']:.3f} ± {m['az_all']['std']:.3f}")
        triple_cells.append(", ".join(ev.selection.proxies))
    lines += [
        "| **LIBRA held-out ρ** (mean ± std over splits) | " + " | ".join(libra_cells) + " |",
        "| best single proxy, held-out | " + " | ".join(best_cells) + " |",
        "| AZ-NAS log-rank fusion of all, held-out | " + " | ".join(az_cells) + " |",
        "| LIBRA's choice on all rows | " + " | ".join(triple_cells) + " |",
        "",
    ]
    lines += ["## Kendall τ [95% CI] per accuracy column", "", *head]
    lines += [f"| {p} | " + " | ".join(_cell(s, a, p, "kendall") for a in accs) + " |" for p in order]
    return lines + [""]


def _paper_table(s: BenchSummary) -> list[str]:
    """Our ρ next to the L-SWAG paper's (nb201)."""
    lines = [
        "## Next to the L-SWAG paper (METHOD.md §7)",
        "",
        "The paper's ρ are on 1000 architectures against NAS-Bench-Suite-Zero **validation** "
        "accuracy; `*_test_acc` columns are the 200-epoch **test** accuracy, on which the same "
        "proxies score lower (compare the `*_val_acc` columns of `--nb201-set naslib_val` with the "
        "paper). Δ = ours − paper.",
        "",
        "| proxy | column | ours | paper | Δ |",
        "|---|---|---|---|---|",
    ]
    for proxy, acc, ours, paper in s.paper_comparison():
        ours_txt = f"{ours:.3f}" if np.isfinite(ours) else "–"
        delta = f"{ours - paper:+.3f}" if np.isfinite(ours) else "–"
        label = "LIBRA (held-out)" if proxy == "libra" else proxy
        lines.append(f"| {label} | `{acc}` | {ours_txt} | {paper:.2f} | {delta} |")
    return lines + [""]
