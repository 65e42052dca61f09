"""The report of a benchmark run: per accuracy column a full proxy report, and a summary across columns."""
from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from lswag_lightning.bench.run import PROBE_FILE
from lswag_lightning.bench.settings import BenchSettings, _jsonable, value_columns


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


def protocol_lines(settings: BenchSettings, meta: Mapping[str, Any], n_rows: int, n_planned_total: int | None,
                   command: str | None = None) -> list[str]:
    """The protocol bullets every benchmark report states next to its numbers."""
    so = settings.score_options
    interval = so.get("layer_interval")
    psi = so.get("psi_layers", "upto")
    shards = meta.get("shards") or {}
    lines = [
        f"Benchmark `{settings.benchmark}`, space `{settings.space}`; ground truth: {settings.gt_source}.",
        (f"Architectures: {n_rows} scored" + (
            ((f" ({n_rows} of" if shards.get("missing") else f" (the first {n_rows} of") if n_rows < settings.sample
             else ",")
            + f" a seeded random sample of {settings.sample} (numpy default_rng({settings.seed}).choice, without "
              f"replacement) of the {n_planned_total} in the ground truth" + (")" if n_rows < settings.sample else "")
            if settings.sample else f" (of all {n_planned_total} in the ground truth, in file order)") + "."),
        (f"Probe data: one batch of {settings.batch_size} CIFAR-10 training images with their labels "
         f"({PROBE_FILE}, JPEG-decoded copy of CIFAR-10; permutation seed {settings.probe_seed}), normalised with the "
         f"CIFAR-10 mean/std, at {settings.img_size}x{settings.img_size} px"
         + (" (bilinear resize from 32 px)" if settings.img_size != 32 else "") + "; the same batch serves every "
         "architecture" + (" and all three NB201 tasks (CIFAR-10, CIFAR-100 and ImageNet16-120 accuracies are "
                            "ranked against scores from the same CIFAR-10 images)" if settings.space == "nb201"
                            else " and every accuracy column") + "."),
        f"Networks: `{settings.space}` built with {json.dumps(settings.build_options, sort_keys=True)}; weights "
        f"initialised on the CPU with torch seed = sha256('{settings.init_seed_base}|<arch>') (column "
        "`init_seed`); scored in train() mode.",
        f"Proxies: {', '.join(settings.proxies)}. Options: {json.dumps(so, sort_keys=True)} "
        f"(sources: {json.dumps(settings.score_options_source, sort_keys=True) or 'engine defaults'}); "
        f"L-SWAG layer interval: {interval if interval is not None else 'all layers (none set)'}, Ψ points: "
        f"{psi}; Λ/ZiCo from K = {so.get('lambda_k', 2)} {so.get('lambda_samples', 'split')} gradient samples "
        f"of the batch, {so.get('lambda_std', 'signed')} std.",
        "Device(s) that scored the rows: " + (", ".join(sorted({_device_text(r) for r in meta.get("runs", [meta])
                                                                if r.get("rows_scored", 1) != 0})) or "?")
        + "; TF32 off on CUDA.",
    ]
    if shards:
        missing = shards.get("missing") or {}
        lines.append(f"Scored in {shards['count']} shards (shard I holds the sample positions p with p mod "
                     f"{shards['count']} = I), merged by sample position"
                     + (f"; MISSING: {'; '.join(f'shard {i}: {why}' for i, why in missing.items())}" if missing
                        else "; all complete") + ".")
    if command:
        lines.append(f"Command: `{command}`")
    return lines


def _device_text(run: Mapping[str, Any]) -> str:
    name = f" ({run['device_name']})" if run.get("device_name") else ""
    return f"{run.get('device', '?')}{name}, torch {run.get('torch', '?')}, {run.get('threads', '?')} CPU thread(s)"


def _paper_key(accuracy: str) -> str | None:
    for key in ("cifar100", "cifar10", "imagenet16_120"):
        if accuracy.startswith(key + "_"):
            return key
    return None


def write_bench_report(table: pd.DataFrame, out_dir: str | os.PathLike, settings: BenchSettings, *,
                       accuracy_columns: Sequence[str], meta: Mapping[str, Any] | None = None,
                       n_planned_total: int | None = None, command: str | None = None, n_boot: int = 1000,
                       libra_splits: int = 20, seed: int = 0) -> Path:
    """``<out>/report.md``: per accuracy column a full report (``report_<accuracy>/``: correlations with
    bootstrap CIs, scatter plots, LIBRA with held-out evaluation) and a summary table across columns; for nb201
    the L-SWAG paper's numbers beside ours. Returns the path of ``report.md``."""
    from lswag_lightning.analysis.libra import evaluate
    from lswag_lightning.analysis.report import safe_name, write_report

    out = Path(out_dir)
    meta = dict(meta or {})
    proxies = proxy_columns(table, settings.proxies)
    protocol = protocol_lines(settings, meta, len(table), n_planned_total, command)
    timing = [c for c in table.columns if c == "total_seconds"]
    if timing:
        secs = table["total_seconds"].to_numpy(dtype=float, na_value=np.nan)
        protocol.append(f"Scoring time per architecture (all proxies together, shared passes once): median "
                        f"{np.nanmedian(secs):.3f} s, mean {np.nanmean(secs):.3f} s "
                        f"(+ building: mean {np.nanmean(table['build_seconds']):.3f} s).")
    bad = table["status"].astype(str) != "ok"
    if bad.any():
        protocol.append(f"{int(bad.sum())} of {len(table)} rows have a proxy that is not ok (see the `status` "
                        "column); those values are NaN/inf and the analysis excludes them as reported.")
    summary: dict[str, dict[str, Any]] = {}
    sections: list[str] = []
    for acc in accuracy_columns:
        acc_values = table[acc].to_numpy(dtype=float, na_value=np.nan)
        sub = table[np.isfinite(acc_values)].reset_index(drop=True)
        folder = f"report_{safe_name(acc)}"
        if len(sub) < 10 or not proxies:
            sections.append(f"- `{acc}`: {len(sub)} rows with a value; too few for an analysis")
            continue
        libra_note = ""
        duplicates = rank_duplicates(sub, proxies)
        pool = [p for p in proxies if p not in duplicates]
        try:
            ev = evaluate(sub, pool, acc, "params", n_splits=libra_splits, seed=seed)
            if duplicates:
                ev.notes.append("left out of LIBRA's pool as exact rank copies: " + ", ".join(
                    f"{d} (= {k})" for d, k in duplicates.items()))
        except ValueError as exc:
            ev, libra_note = False, f"LIBRA skipped: {exc}"
        write_report(sub, out / folder, accuracy=acc, proxies=proxies, params="params",
                     title=f"{settings.benchmark}: zero-cost proxies vs `{acc}`", protocol_lines=protocol,
                     libra=ev, seed=seed, n_boot=n_boot)
        corr = pd.read_csv(out / folder / "correlations.csv")
        summary[acc] = {"corr": corr.set_index("proxy"), "libra": ev if ev else None, "n": len(sub),
                        "note": libra_note, "duplicates": duplicates}
        sections.append(f"- `{acc}` ({len(sub)} architectures): [report]({folder}/report.md), "
                        f"![ρ per proxy]({folder}/spearman_bars.png)")

    def cell(acc: str, proxy: str, what: str = "spearman") -> str:
        corr = summary[acc]["corr"]
        if proxy not in corr.index or not np.isfinite(corr.loc[proxy, what]):
            return "–"
        v, lo, hi = corr.loc[proxy, what], corr.loc[proxy, f"{what}_lo"], corr.loc[proxy, f"{what}_hi"]
        return f"{v:.3f} [{lo:.3f}, {hi:.3f}]" if np.isfinite(lo) and np.isfinite(hi) else f"{v:.3f}"

    accs = list(summary)
    all_dups = {d: k for a in accs for d, k in summary[a]["duplicates"].items()}
    dup_text = ", ".join(f"{d} (= {k})" for d, k in all_dups.items())
    lines = [f"# lswag-bench `{settings.benchmark}`: zero-cost proxies against published accuracy", "",
             "## Protocol", "", *[f"- {p}" for p in protocol],
             f"- Statistics: Spearman ρ and Kendall τ of the oriented proxy (higher is better) with accuracy, 95% "
             f"percentile bootstrap intervals over {n_boot} resamples of the architectures (seed {seed}); LIBRA "
             f"selection + rank-mean fusion evaluated on held-out architectures over {libra_splits} random 50/50 "
             f"splits (seed {seed}), mean ± std. LIBRA's pool leaves out columns that rank the architectures "
             f"exactly like an earlier one (z2 is the lowest-information-gain candidate, which a copy of z1 always "
             f"is){': ' + dup_text if dup_text else ''}.", ""]
    if accs:
        order = sorted(proxies, key=lambda p: -np.nan_to_num(summary[accs[0]]["corr"].loc[p, "spearman"], nan=-9))
        lines += ["## Spearman ρ [95% CI] per accuracy column", "",
                  "| proxy | " + " | ".join(f"`{a}`" for a in accs) + " |",
                  "|---|" + "---|" * len(accs)]
        for p in order:
            lines.append(f"| {p} | " + " | ".join(cell(a, p) for a in accs) + " |")
        libra_cells, best_cells, az_cells, triple_cells = [], [], [], []
        for a in accs:
            ev = summary[a]["libra"]
            if ev is None:
                libra_cells.append(summary[a]["note"] or "–")
                best_cells.append("–"), az_cells.append("–"), triple_cells.append("–")
                continue
            s = ev.summary()
            libra_cells.append(f"{s['libra']['mean']:.3f} ± {s['libra']['std']:.3f}")
            best_cells.append(f"{s['best_single']['mean']:.3f} ± {s['best_single']['std']:.3f}")
            az_cells.append(f"{s['az_all']['mean']:.3f} ± {s['az_all']['std']:.3f}")
            triple_cells.append(", ".join(ev.selection.proxies))
        lines += [f"| **LIBRA held-out ρ** (mean ± std over splits) | " + " | ".join(libra_cells) + " |",
                  f"| best single proxy, held-out | " + " | ".join(best_cells) + " |",
                  f"| AZ-NAS log-rank fusion of all, held-out | " + " | ".join(az_cells) + " |",
                  f"| LIBRA's choice on all rows | " + " | ".join(triple_cells) + " |", ""]
        lines += ["## Kendall τ [95% CI] per accuracy column", "",
                  "| proxy | " + " | ".join(f"`{a}`" for a in accs) + " |", "|---|" + "---|" * len(accs)]
        for p in order:
            lines.append(f"| {p} | " + " | ".join(cell(a, p, "kendall") for a in accs) + " |")
        lines.append("")
        if settings.space == "nb201":
            lines += ["## Next to the L-SWAG paper (METHOD.md §7)", "",
                      "The paper's ρ are on 1000 architectures against NAS-Bench-Suite-Zero **validation** "
                      "accuracy; `*_test_acc` columns are the 200-epoch **test** accuracy, on which the same "
                      "proxies score lower (compare the `*_val_acc` columns of `--nb201-set naslib_val` with the "
                      "paper). Δ = ours − paper.", "",
                      "| proxy | column | ours | paper | Δ |", "|---|---|---|---|---|"]
            for proxy, ref in PAPER_NB201.items():
                for a in accs:
                    key = _paper_key(a)
                    if key is None:
                        continue
                    if proxy == "libra":
                        ev = summary[a]["libra"]
                        ours = ev.summary()["libra"]["mean"] if ev is not None else math.nan
                    else:
                        corr = summary[a]["corr"]
                        ours = corr.loc[proxy, "spearman"] if proxy in corr.index else math.nan
                    paper = ref[key]
                    ours_txt = f"{ours:.3f}" if np.isfinite(ours) else "–"
                    delta = f"{ours - paper:+.3f}" if np.isfinite(ours) else "–"
                    label = "LIBRA (held-out)" if proxy == "libra" else proxy
                    lines.append(f"| {label} | `{a}` | {ours_txt} | {paper:.2f} | {delta} |")
            lines.append("")
    lines += ["## Reports per accuracy column", "", *sections, "",
              "Table: `table.csv` (one row per architecture; columns documented in `bench.json`)."]
    path = out / "report.md"
    path.write_text("\n".join(lines) + "\n")
    summary_json = {a: {"n": summary[a]["n"],
                        "spearman": {p: _nan_none(summary[a]["corr"].loc[p, "spearman"]) for p in proxies
                                     if p in summary[a]["corr"].index},
                        "kendall": {p: _nan_none(summary[a]["corr"].loc[p, "kendall"]) for p in proxies
                                    if p in summary[a]["corr"].index},
                        "libra": (summary[a]["libra"].summary() if summary[a]["libra"] is not None else None),
                        "libra_choice": (summary[a]["libra"].selection.proxies if summary[a]["libra"] is not None
                                         else None)}
                    for a in accs}
    (out / "summary.json").write_text(json.dumps(_jsonable(summary_json), indent=2))
    return path


def _nan_none(value: Any) -> float | None:
    value = float(value)
    return value if math.isfinite(value) else None

