"""The aggregate W&B run of a sweep (``job_type="collect"``): the table, one scatter chart per proxy, the
correlations, LIBRA's choice and auto's label-budget choice in ``run.summary``. ``wandb`` is imported only when a
run is written."""

from __future__ import annotations

import logging
import math
import os
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from lswag_lightning.collect.analyse import Analysis
from lswag_lightning.collect.results_table import ACCURACY_KEYS, PARAMS, wandb_group_of

log = logging.getLogger("lswag_lightning.collect")  # one logger name for the package (the CLI prints it)


def _wandb_name(column: str) -> str:
    """W&B chart fields are Vega paths, where a dot means nesting: ``lswag.lambda`` -> ``lswag_lambda``."""
    return column.replace(".", "_")


def sweep_wandb_settings(records: Sequence[Mapping[str, Any]]) -> dict[str, str | None]:
    """The W&B ``project`` / ``entity`` / ``group`` the jobs logged into (most common among the records)."""
    groups = Counter(g for g in (wandb_group_of(r) for r in records) if g)
    projects: Counter = Counter()
    entities: Counter = Counter()
    for record in records:
        logger = (record.get("config") or {}).get("logger") or {}
        for node in logger.values() if isinstance(logger, Mapping) else ():
            if isinstance(node, Mapping) and str(node.get("_target_", "")).endswith("WandbLogger"):
                if node.get("project"):
                    projects[str(node["project"])] += 1
                if node.get("entity"):
                    entities[str(node["entity"])] += 1
    if len(groups) > 1:
        log.warning(
            "the jobs logged into %d W&B groups (%s); the aggregate run goes to the most common",
            len(groups),
            ", ".join(groups),
        )

    def first(counts):
        return counts.most_common(1)[0][0] if counts else None

    return {"group": first(groups), "project": first(projects), "entity": first(entities)}


def _libra_summary(analysis: Analysis) -> dict[str, Any]:
    """The run summary's ``libra/...`` keys (the choice, its held-out ρ, or why it was skipped) and, per space,
    ``libra_<space>/...``."""
    summary: dict[str, Any] = {}
    if analysis.libra is not None:
        ev = analysis.libra
        sel = ev.selection
        s = ev.summary()
        summary.update(
            {
                "libra/proxies": list(sel.proxies),
                "libra/fusion": ev.fusion,
                "libra/heldout_rho_mean": s["libra"]["mean"],
                "libra/heldout_rho_std": s["libra"]["std"],
                "libra/in_sample_rho": ev.in_sample["libra"],
                "libra/best_single": ev.in_sample["best_single"],
                "libra/best_single_heldout_rho_mean": s["best_single"]["mean"],
                "libra/n_splits": ev.n_splits,
                "libra/n_rows": ev.n_rows,
            }
        )
        for role, proxy in zip(("z1", "z2", "z3"), sel.proxies):
            summary[f"libra/{role}"] = proxy
    else:
        summary["libra/skipped"] = analysis.libra_skipped or "LIBRA not run"
    for space, ev in analysis.per_space_libra.items():
        summary[f"libra_{space}/proxies"] = list(ev.selection.proxies)
        summary[f"libra_{space}/heldout_rho_mean"] = ev.summary()["libra"]["mean"]
    for space, why in analysis.per_space_libra_skipped.items():
        summary[f"libra_{space}/skipped"] = why
    return summary


def _run_summary(analysis: Analysis, extra: Mapping[str, Any] | None) -> dict[str, Any]:
    """``n_rows``, ``spearman/<proxy>``, LIBRA's keys, the label-budget keys and ``extra``."""
    summary: dict[str, Any] = {"n_rows": analysis.n_rows}
    if analysis.correlations is not None:
        for row in analysis.correlations.itertuples():
            if math.isfinite(row.spearman):
                summary[f"spearman/{row.proxy}"] = float(row.spearman)
    summary.update(_libra_summary(analysis))
    if analysis.ranking is not None:
        summary.update(analysis.ranking.summary())
    summary.update(dict(extra or {}))
    return summary


def write_wandb_run(
    table: pd.DataFrame,
    analysis: Analysis,
    out_dir: str | os.PathLike,
    *,
    project: str | None = None,
    entity: str | None = None,
    group: str | None = None,
    mode: str | None = None,
    name: str | None = None,
    extra_summary: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Log one aggregate W&B run (``job_type="collect"``) and return ``{"dir", "id", "mode", "group", ...}``.

    Logged: ``results`` (a ``wandb.Table`` of every row; dotted column names with ``_``), ``scatter/<proxy>``
    (``wandb.plot.scatter`` of the proxy against the accuracy), ``correlations`` (the correlation table), and in
    ``run.summary``: ``libra/proxies``, ``libra/z1``..``z3``, ``libra/heldout_rho_mean`` / ``_std``,
    ``libra/in_sample_rho``, ``libra/best_single``, ``libra/skipped`` (the reason, when skipped),
    ``spearman/<proxy>``, ``n_rows``, the label-budget keys (``auto/chosen``, ``auto/expected_rho``,
    ``auto/interval_p10`` / ``_p90``, ``auto/k``, ``learned/heldout_rho_mean`` / ``_se``, or ``auto/skipped``), plus
    ``extra_summary``. ``mode`` defaults to ``$WANDB_MODE`` or ``offline``.
    The run folder is under ``<out_dir>/wandb``.
    """
    import wandb

    mode = mode or os.environ.get("WANDB_MODE") or "offline"
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    accuracy = analysis.accuracy
    shown = list(dict.fromkeys(["arch", "space", PARAMS, *analysis.proxies, *ACCURACY_KEYS, "job", "candidate_index"]))
    frame = table[[c for c in shown if c in table.columns]].copy()
    frame["candidate_index"] = frame["candidate_index"].astype("float64")
    frame = frame.rename(columns={c: _wandb_name(c) for c in frame.columns})
    frame = frame.astype(object).where(pd.notna(frame), None)  # W&B tables want None, not NaN
    config = {"accuracy": accuracy, "proxies": analysis.proxies, "n_rows": analysis.n_rows, "source": "lswag-collect"}
    run = wandb.init(
        project=project or "lswag",
        entity=entity,
        group=group,
        job_type="collect",
        name=name or (f"collect-{group}" if group else "collect"),
        dir=str(out),
        mode=mode,
        config=config,
        reinit="finish_previous",
        settings=wandb.Settings(silent=True),
    )
    try:
        results = wandb.Table(dataframe=frame)
        logged: dict[str, Any] = {"results": results}
        for proxy in analysis.proxies:
            field_name = _wandb_name(proxy)
            logged[f"scatter/{proxy}"] = wandb.plot.scatter(
                results, field_name, _wandb_name(accuracy), title=f"{proxy} vs {accuracy} (%)"
            )
        if analysis.correlations is not None:
            corr = analysis.correlations.drop(columns=["excluded"], errors="ignore").copy()
            logged["correlations"] = wandb.Table(dataframe=corr.astype(object).where(pd.notna(corr), None))
        run.log(logged)
        summary = _run_summary(analysis, extra_summary)
        for key, value in summary.items():
            if isinstance(value, float) and not math.isfinite(value):
                value = None
            run.summary[key] = value
        info = {
            "dir": str(Path(run.dir).parent),
            "id": run.id,
            "mode": mode,
            "group": group,
            "project": project or "lswag",
            "name": run.name,
        }
    finally:
        run.finish()
    return info
