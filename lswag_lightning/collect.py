"""Collect a sweep: every job's ``result.json`` into one result table, the analysis report, an optional W&B run.

A sweep (``lswag-train -m ...``) leaves one folder per job; a job that finished writes ``result.json`` (see
:func:`lswag_lightning.cli.train.train` for its fields), a job that failed writes one with ``status: failed`` and
its ``error``, and a job that was killed or is still running leaves a Hydra folder (``.hydra/``) with no result, or
a result with ``status: running``. :func:`collect` reads them all without stopping at the bad ones:

1. :func:`find_results` walks the given folders (recursively) and files; :func:`read_results` sorts the jobs into
   finished records and :class:`JobIssue` entries (failed, unfinished, unreadable), each with its error.
2. :func:`results_table` builds the analysis table (columns as in :mod:`lswag_lightning.analysis.table`): ``arch``,
   ``space``, ``params`` (trainable parameters, a count), one column per proxy under its registry name (sub-values
   such as ``lswag.lambda`` too; a proxy whose status is not ``ok`` is NaN), and the accuracies ``val_acc``,
   ``val_acc_best``, ``test_acc`` in % (100 × the fractions in result.json), plus bookkeeping columns that the
   analysis ignores (``job``, ``candidate_index``, ``seconds.scoring``, ``seconds.total``, ``wandb_group``).
3. :func:`analyse` writes the report (:func:`lswag_lightning.analysis.report.write_report`: Spearman / Kendall with
   bootstrap intervals, LIBRA with its held-out evaluation, plots) on all rows, and one per search space when the
   sweep holds several. LIBRA's held-out evaluation needs :data:`LIBRA_MIN_ROWS` usable rows; below that it is
   skipped and the reason is written in the report and returned.
4. :func:`write_wandb_run` (optional) logs one aggregate W&B run: a ``wandb.Table`` of all rows, one scatter chart
   per proxy against the accuracy, the correlation table, and LIBRA's selection in ``run.summary``. Offline unless
   ``WANDB_MODE`` (or ``mode``) says otherwise; no account is needed.

Plain functions returning data; the text for a terminal comes from :func:`format_issues`,
:func:`format_correlations`, :func:`format_libra`, :func:`format_libra_choices` and :func:`format_job_line`
(``lswag-collect`` and ``make demo`` print them).
"""
from __future__ import annotations

import json
import logging
import math
import os
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import numpy as np
import pandas as pd

log = logging.getLogger(__name__)

RESULT_FILE = "result.json"
PARAMS = "params"
#: Bookkeeping columns of the table, never analysed.
META_COLUMNS = ("job", "candidate_index", "seconds.scoring", "seconds.total", "wandb_group")
#: Accuracy columns of the table (in %), from these result.json keys (fractions in [0, 1]).
ACCURACY_KEYS = {"val_acc": "val_acc", "val_acc_best": "val_acc_best", "test_acc": "test_acc"}
ACCURACY_CHOICES = tuple(ACCURACY_KEYS)
#: Held-out LIBRA selects on half the rows and needs 10 rows there (lswag_lightning.analysis.libra.evaluate).
LIBRA_MIN_ROWS = 20
#: Fewer finished jobs than this: the table is written, the correlations are not (a bootstrap needs a few rows).
CORRELATION_MIN_ROWS = 3
#: A search space gets its own report when the sweep holds several spaces and it has at least this many rows.
PER_SPACE_MIN_ROWS = 5


# ------------------------------------------------------------------------------------------------ finding
@dataclass(frozen=True)
class JobIssue:
    """A job that did not finish with ``status: ok``.

    ``kind``: ``failed`` (result.json says so), ``unfinished`` (status ``running``, or a Hydra job folder with no
    result.json: still running, killed, or crashed before writing it), ``unreadable`` (result.json is not valid
    JSON or not a record). ``error`` is the job's own error message when it wrote one, else what is known.
    """

    job: str
    kind: str
    error: str
    result_file: Optional[str] = None
    space: Optional[str] = None
    arch: Optional[str] = None

    def to_dict(self) -> dict[str, Any]:
        return {"job": self.job, "kind": self.kind, "error": self.error, "result_file": self.result_file,
                "space": self.space, "arch": self.arch}


@dataclass
class Collected:
    """What :func:`read_results` found: the finished records (each with ``_job`` = its folder) and the issues."""

    records: list[dict[str, Any]] = field(default_factory=list)
    issues: list[JobIssue] = field(default_factory=list)
    inputs: list[str] = field(default_factory=list)

    @property
    def n_jobs(self) -> int:
        return len(self.records) + len(self.issues)


def find_results(paths: Iterable[str | os.PathLike], result_name: str = RESULT_FILE
                 ) -> tuple[list[Path], list[Path]]:
    """``(result files, job folders without a result)`` under ``paths``, each sorted and without duplicates.

    A path may be a result file (any name; it is read as a result), or a folder searched recursively for
    ``result_name`` and for Hydra job folders (holding ``.hydra/``) that have no ``result_name``. Raises
    ``FileNotFoundError`` naming a path that does not exist.
    """
    files: dict[Path, None] = {}
    orphans: dict[Path, None] = {}
    for raw in paths:
        path = Path(raw)
        if path.is_file():
            files[path.resolve()] = None
            continue
        if not path.is_dir():
            raise FileNotFoundError(f"no such sweep folder or result file: {path}")
        for found in path.rglob(result_name):
            if found.is_file() and not _inside_hidden(found, path):
                files[found.resolve()] = None
        for hydra_dir in path.rglob(".hydra"):
            job = hydra_dir.parent
            if hydra_dir.is_dir() and not _inside_hidden(job, path) and not (job / result_name).is_file():
                orphans[job.resolve()] = None
    return sorted(files, key=_natural_key), sorted(orphans, key=_natural_key)


def _inside_hidden(path: Path, root: Path) -> bool:
    """True when ``path`` lies in a hidden folder below ``root`` (``.submitit``, ``.hydra`` of another job...)."""
    try:
        parts = path.resolve().relative_to(root.resolve()).parts[:-1]
    except ValueError:
        return False
    return any(p.startswith(".") for p in parts)


def _natural_key(path: Path) -> tuple:
    """Sort ``sweep/2`` before ``sweep/10``."""
    return tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in path.parts)


def _job_label(job: Path, roots: Sequence[Path]) -> str:
    """The job folder relative to the input folder holding it (``3``, ``vit/3``), else its full path."""
    for root in roots:
        try:
            rel = job.relative_to(root)
        except ValueError:
            continue
        return str(rel) if str(rel) != "." else job.name
    return str(job)


def _log_tail(job: Path) -> str:
    """The last error-looking line of the job's Hydra log (``<job>/*.log``), or ''."""
    for logfile in sorted(job.glob("*.log")):
        try:
            lines = logfile.read_text(errors="replace").splitlines()
        except OSError:
            continue
        for line in reversed(lines):
            if "Error" in line or "Exception" in line or "Traceback" in line:
                return line.strip()[:300]
    return ""


def read_results(paths: Iterable[str | os.PathLike], result_name: str = RESULT_FILE) -> Collected:
    """Read every job under ``paths`` (see :func:`find_results`) into finished records and issues."""
    paths = [Path(p) for p in paths]
    if not paths:
        raise ValueError("no sweep folder or result file given")
    files, orphans = find_results(paths, result_name)
    roots = [p.resolve() for p in paths if p.is_dir()]
    out = Collected(inputs=[str(p) for p in paths])
    for path in files:
        job = _job_label(path.parent, roots) if path.name == result_name else _job_label(path, roots)
        try:
            record = json.loads(path.read_text())
        except (OSError, ValueError) as err:
            out.issues.append(JobIssue(job, "unreadable", f"{type(err).__name__}: {err}", str(path)))
            continue
        if not isinstance(record, Mapping):
            out.issues.append(JobIssue(job, "unreadable", f"expected a JSON object, got {type(record).__name__}",
                                       str(path)))
            continue
        status = record.get("status")
        where = {"result_file": str(path), "space": record.get("space"), "arch": record.get("arch")}
        if status == "ok":
            out.records.append({**record, "_job": job, "_result_file": str(path)})
        elif status == "running":
            out.issues.append(JobIssue(job, "unfinished", "status 'running': the job is still running or was "
                                       "killed before it finished", **where))
        else:
            error = record.get("error") or f"status {status!r} and no error message"
            out.issues.append(JobIssue(job, "failed", str(error), **where))
    for job_dir in orphans:
        tail = _log_tail(job_dir)
        error = f"no {result_name}: the job is still running, was killed, or crashed before writing it"
        out.issues.append(JobIssue(_job_label(job_dir, roots), "unfinished", error + (f" (log: {tail})" if tail
                                                                                      else "")))
    out.records.sort(key=lambda r: _natural_key(Path(r["_job"])))
    out.issues.sort(key=lambda i: _natural_key(Path(i.job)))
    return out


# ------------------------------------------------------------------------------------------------- the table
def _number(value: Any) -> float:
    """A finite float, else NaN (None, strings, NaN and ±inf all become NaN)."""
    if isinstance(value, bool) or value is None:
        return math.nan
    try:
        value = float(value)
    except (TypeError, ValueError):
        return math.nan
    return value if math.isfinite(value) else math.nan


def wandb_group_of(record: Mapping[str, Any]) -> Optional[str]:
    """The W&B group a job logged into (``config.logger.wandb.group``), else its ``config.sweep_id``, else None."""
    config = record.get("config") or {}
    logger = (config.get("logger") or {}) if isinstance(config, Mapping) else {}
    for node in (logger.values() if isinstance(logger, Mapping) else ()):
        if isinstance(node, Mapping) and str(node.get("_target_", "")).endswith("WandbLogger") and node.get("group"):
            return str(node["group"])
    sweep_id = config.get("sweep_id") if isinstance(config, Mapping) else None
    return str(sweep_id) if sweep_id else None


def proxy_names(records: Iterable[Mapping[str, Any]]) -> list[str]:
    """Proxy names present in the records' ``proxies``, in the order the jobs listed them (the callback's order),
    each proxy's sub-values (``lswag.lambda``) right after it."""
    seen: dict[str, None] = {}
    for record in records:
        for name in (record.get("proxies") or {}):
            seen[str(name)] = None
    first = {name: i for i, name in enumerate(seen)}

    def key(name: str) -> tuple[int, int, int]:
        parent = name.split(".", 1)[0]
        return (first.get(parent, first[name]), 0 if name == parent else 1, first[name])

    return sorted(seen, key=key)


def results_table(records: Sequence[Mapping[str, Any]], proxies: Optional[Sequence[str]] = None) -> pd.DataFrame:
    """One row per finished job (columns: module docstring). ``proxies`` restricts the proxy columns (every name
    must occur in some record; ``ValueError`` lists the ones present otherwise)."""
    present = proxy_names(records)
    if proxies is None:
        proxies = present
    else:
        proxies = list(dict.fromkeys(proxies))
        missing = [p for p in proxies if p not in present]
        if missing:
            raise ValueError(f"proxy column(s) {', '.join(missing)} not in any result; proxies present: "
                             f"{', '.join(present) or 'none'}")
    rows = []
    for record in records:
        values = record.get("proxies") or {}
        status = record.get("proxy_status") or {}
        candidate = record.get("candidate") or {}
        seconds = record.get("seconds") or {}
        params = _number(record.get("params"))
        if not math.isfinite(params):  # a record without the count: the params proxy is the same number
            params = _number(values.get(PARAMS)) if status.get(PARAMS, "ok") == "ok" else math.nan
        row: dict[str, Any] = {"arch": record.get("arch"), "space": record.get("space"), PARAMS: params}
        for name in proxies:
            if name == PARAMS:
                continue  # the params column is the #params proxy (one column, the job's trainable count)
            ok = status.get(name, "ok") == "ok"
            row[name] = _number(values.get(name)) if ok else math.nan
        for column, key in ACCURACY_KEYS.items():
            row[column] = 100.0 * _number(record.get(key))
        row.update({"job": record.get("_job"), "candidate_index": candidate.get("index"),
                    "seconds.scoring": _number(seconds.get("scoring")),
                    "seconds.total": _number(seconds.get("total")), "wandb_group": wandb_group_of(record)})
        rows.append(row)
    columns = ["arch", "space", PARAMS, *(p for p in proxies if p != PARAMS), *ACCURACY_KEYS, *META_COLUMNS]
    table = pd.DataFrame(rows, columns=columns)
    table["candidate_index"] = table["candidate_index"].astype("Int64")
    return table


def table_proxies(table: pd.DataFrame) -> list[str]:
    """The proxy columns of a :func:`results_table`: ``params`` (the #params baseline) and every proxy column."""
    return [c for c in table.columns if c not in ("arch", "space", *ACCURACY_KEYS, *META_COLUMNS)]


def write_table(table: pd.DataFrame, out_dir: str | os.PathLike) -> dict[str, Path]:
    """``table.csv`` and ``table.parquet`` in ``out_dir`` (created); returns their paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"csv": out / "table.csv", "parquet": out / "table.parquet"}
    table.to_csv(paths["csv"], index=False)
    table.to_parquet(paths["parquet"], index=False)
    return paths


def write_issues(issues: Sequence[JobIssue], out_dir: str | os.PathLike) -> Path:
    """``problems.csv`` in ``out_dir``: one row per failed or unfinished job (header only when there are none)."""
    path = Path(out_dir) / "problems.csv"
    pd.DataFrame([i.to_dict() for i in issues],
                 columns=["job", "kind", "error", "result_file", "space", "arch"]).to_csv(path, index=False)
    return path


# ---------------------------------------------------------------------------------------------- the analysis
@dataclass
class Analysis:
    """The numbers behind the report.

    ``correlations``: :func:`lswag_lightning.analysis.correlation_table` on all rows (None when fewer than
    :data:`CORRELATION_MIN_ROWS`); ``per_space``: the same per search space (only with several spaces);
    ``libra``: the :class:`~lswag_lightning.analysis.LibraEvaluation` on all rows, or None with ``libra_skipped``
    saying why; ``per_space_libra`` / ``per_space_libra_skipped``: the same per space; ``reports``:
    ``{"all" | space: report.md path}``; ``notes``: what was skipped and why.
    """

    accuracy: str
    proxies: list[str]
    n_rows: int
    correlations: Optional[pd.DataFrame] = None
    per_space: dict[str, pd.DataFrame] = field(default_factory=dict)
    libra: Any = None
    libra_skipped: str = ""
    per_space_libra: dict[str, Any] = field(default_factory=dict)
    per_space_libra_skipped: dict[str, str] = field(default_factory=dict)
    reports: dict[str, Path] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def _usable_rows(table: pd.DataFrame, proxies: Sequence[str], accuracy: str) -> int:
    """Rows with a finite accuracy and params (what LIBRA starts from before its own NaN rules)."""
    acc = table[accuracy].to_numpy(dtype=float, na_value=np.nan)
    par = table["params"].to_numpy(dtype=float, na_value=np.nan)
    return int((np.isfinite(acc) & np.isfinite(par)).sum())


def _run_libra(table: pd.DataFrame, proxies: Sequence[str], accuracy: str, *, n_splits: int, seed: int,
               options: Mapping[str, Any]) -> tuple[Any, str]:
    """``(evaluation, "")`` or ``(None, why it was skipped)``."""
    from lswag_lightning.analysis.libra import evaluate

    usable = _usable_rows(table, proxies, accuracy)
    if usable < LIBRA_MIN_ROWS:
        return None, (f"LIBRA skipped: its held-out evaluation needs at least {LIBRA_MIN_ROWS} finished jobs with a "
                      f"finite {accuracy} (it selects on half of them and needs 10 there); there are {usable}. "
                      f"Run more candidates (candidate.index='range(0,{max(LIBRA_MIN_ROWS, 2 * usable)})').")
    try:
        return evaluate(table, proxies, accuracy, "params", n_splits=n_splits, seed=seed, **dict(options)), ""
    except ValueError as err:
        return None, f"LIBRA skipped: {err}"


def analyse(table: pd.DataFrame, out_dir: str | os.PathLike, *, accuracy: str = "val_acc",
            proxies: Optional[Sequence[str]] = None, n_boot: int = 1000, n_splits: int = 20, seed: int = 0,
            per_space: bool = True, protocol_lines: Iterable[str] = (), title: str = "Proxy vs accuracy",
            libra_options: Optional[Mapping[str, Any]] = None) -> Analysis:
    """Correlations, LIBRA and plots for ``table`` (from :func:`results_table`) in ``out_dir``.

    Writes ``<out_dir>/report/`` (all rows) and ``<out_dir>/report_<space>/`` per space when ``per_space`` and the
    table holds several spaces with at least :data:`PER_SPACE_MIN_ROWS` rows each. Small tables are handled
    explicitly: below :data:`CORRELATION_MIN_ROWS` rows no report is written; below :data:`LIBRA_MIN_ROWS` the
    report has correlations but no LIBRA. Each such decision is in ``Analysis.notes``.
    """
    from lswag_lightning.analysis.correlations import correlation_table
    from lswag_lightning.analysis.report import write_report

    if accuracy not in ACCURACY_KEYS:
        raise ValueError(f"accuracy must be one of {', '.join(ACCURACY_CHOICES)}, got {accuracy!r}")
    if proxies is None:
        proxies = table_proxies(table)
    proxies = list(proxies)
    # A proxy with no finite value at all cannot be ranked; keep it out of the report instead of failing.
    dead = [p for p in proxies if not np.isfinite(table[p].to_numpy(dtype=float, na_value=np.nan)).any()]
    analysis = Analysis(accuracy=accuracy, proxies=[p for p in proxies if p not in dead], n_rows=len(table))
    if dead:
        analysis.notes.append(f"left out (no finite value in any job): {', '.join(dead)}")
    if not analysis.proxies:
        analysis.notes.append("no proxy values in the results: nothing to correlate")
        return analysis
    if len(table) < CORRELATION_MIN_ROWS:
        analysis.notes.append(f"{len(table)} finished job(s): correlations need at least {CORRELATION_MIN_ROWS}; "
                              "only the table was written")
        analysis.libra_skipped = f"LIBRA skipped: {len(table)} finished job(s), it needs {LIBRA_MIN_ROWS}"
        return analysis
    out = Path(out_dir)
    proxies = analysis.proxies
    spaces = sorted(str(s) for s in table["space"].dropna().unique())
    protocol = list(protocol_lines)
    protocol.append(f"accuracy `{accuracy}` in % (100 × the fraction in result.json); params = trainable "
                    f"parameters of the built network; spaces: {', '.join(spaces) or 'unknown'}")
    if len(spaces) > 1:
        protocol.append("all spaces pooled: a proxy is ranked across every candidate of the sweep (per-space "
                        "reports beside this one)")

    analysis.correlations = correlation_table(table, proxies, accuracy, n_boot=n_boot, seed=seed)
    evaluation, why = _run_libra(table, proxies, accuracy, n_splits=n_splits, seed=seed,
                                 options=libra_options or {})
    analysis.libra, analysis.libra_skipped = evaluation, why
    if why:
        analysis.notes.append(why)
    analysis.reports["all"] = write_report(
        table, out / "report", accuracy=accuracy, proxies=proxies, params="params", title=title,
        protocol_lines=protocol + ([why] if why else []), libra=evaluation if evaluation is not None else False,
        seed=seed, n_boot=n_boot, color_by="space" if len(spaces) > 1 else None)

    if per_space and len(spaces) > 1:
        for space in spaces:
            sub = table[table["space"] == space].reset_index(drop=True)
            usable = [p for p in proxies if np.isfinite(sub[p].to_numpy(dtype=float, na_value=np.nan)).any()]
            if len(sub) < PER_SPACE_MIN_ROWS or not usable:
                analysis.notes.append(f"{space}: {len(sub)} finished job(s), no per-space report (needs "
                                      f"{PER_SPACE_MIN_ROWS})")
                continue
            analysis.per_space[space] = correlation_table(sub, usable, accuracy, n_boot=n_boot, seed=seed)
            sub_eval, sub_why = _run_libra(sub, usable, accuracy, n_splits=n_splits, seed=seed,
                                           options=libra_options or {})
            if sub_eval is not None:
                analysis.per_space_libra[space] = sub_eval
            else:
                analysis.per_space_libra_skipped[space] = sub_why
                analysis.notes.append(f"{space}: {sub_why}")
            analysis.reports[space] = write_report(
                sub, out / f"report_{space}", accuracy=accuracy, proxies=usable, params="params",
                title=f"{title}: {space}", protocol_lines=[*protocol_lines, f"search space {space} only"]
                + ([sub_why] if sub_why else []), libra=sub_eval if sub_eval is not None else False, seed=seed,
                n_boot=n_boot)
    return analysis


# ------------------------------------------------------------------------------------------------------ W&B
def _wandb_name(column: str) -> str:
    """W&B chart fields are Vega paths, where a dot means nesting: ``lswag.lambda`` -> ``lswag_lambda``."""
    return column.replace(".", "_")


def sweep_wandb_settings(records: Sequence[Mapping[str, Any]]) -> dict[str, Optional[str]]:
    """The W&B ``project`` / ``entity`` / ``group`` the jobs logged into (most common among the records)."""
    groups = Counter(g for g in (wandb_group_of(r) for r in records) if g)
    projects: Counter = Counter()
    entities: Counter = Counter()
    for record in records:
        logger = ((record.get("config") or {}).get("logger") or {})
        for node in (logger.values() if isinstance(logger, Mapping) else ()):
            if isinstance(node, Mapping) and str(node.get("_target_", "")).endswith("WandbLogger"):
                if node.get("project"):
                    projects[str(node["project"])] += 1
                if node.get("entity"):
                    entities[str(node["entity"])] += 1
    if len(groups) > 1:
        log.warning("the jobs logged into %d W&B groups (%s); the aggregate run goes to the most common",
                    len(groups), ", ".join(groups))
    first = (lambda c: c.most_common(1)[0][0] if c else None)
    return {"group": first(groups), "project": first(projects), "entity": first(entities)}


def write_wandb_run(table: pd.DataFrame, analysis: Analysis, out_dir: str | os.PathLike, *,
                    project: Optional[str] = None, entity: Optional[str] = None, group: Optional[str] = None,
                    mode: Optional[str] = None, name: Optional[str] = None,
                    extra_summary: Optional[Mapping[str, Any]] = None) -> dict[str, Any]:
    """Log one aggregate W&B run (``job_type="collect"``) and return ``{"dir", "id", "mode", "group", ...}``.

    Logged: ``results`` (a ``wandb.Table`` of every row; dotted column names with ``_``), ``scatter/<proxy>``
    (``wandb.plot.scatter`` of the proxy against the accuracy), ``correlations`` (the correlation table), and in
    ``run.summary``: ``libra/proxies``, ``libra/z1``..``z3``, ``libra/heldout_rho_mean`` / ``_std``,
    ``libra/in_sample_rho``, ``libra/best_single``, ``libra/skipped`` (the reason, when skipped),
    ``spearman/<proxy>``, ``n_rows``, plus ``extra_summary``. ``mode`` defaults to ``$WANDB_MODE`` or ``offline``.
    The run folder is under ``<out_dir>/wandb``.
    """
    import wandb

    mode = mode or os.environ.get("WANDB_MODE") or "offline"
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    accuracy = analysis.accuracy
    shown = list(dict.fromkeys(["arch", "space", PARAMS, *analysis.proxies, *ACCURACY_KEYS, "job",
                                "candidate_index"]))
    frame = table[[c for c in shown if c in table.columns]].copy()
    frame["candidate_index"] = frame["candidate_index"].astype("float64")
    frame = frame.rename(columns={c: _wandb_name(c) for c in frame.columns})
    frame = frame.astype(object).where(pd.notna(frame), None)  # W&B tables want None, not NaN
    config = {"accuracy": accuracy, "proxies": analysis.proxies, "n_rows": analysis.n_rows,
              "source": "lswag-collect"}
    run = wandb.init(project=project or "lswag", entity=entity, group=group, job_type="collect",
                     name=name or (f"collect-{group}" if group else "collect"), dir=str(out), mode=mode,
                     config=config, reinit="finish_previous", settings=wandb.Settings(silent=True))
    try:
        results = wandb.Table(dataframe=frame)
        logged: dict[str, Any] = {"results": results}
        for proxy in analysis.proxies:
            field_name = _wandb_name(proxy)
            logged[f"scatter/{proxy}"] = wandb.plot.scatter(results, field_name, _wandb_name(accuracy),
                                                            title=f"{proxy} vs {accuracy} (%)")
        summary: dict[str, Any] = {"n_rows": analysis.n_rows}
        if analysis.correlations is not None:
            corr = analysis.correlations.drop(columns=["excluded"], errors="ignore").copy()
            corr = corr.astype(object).where(pd.notna(corr), None)
            logged["correlations"] = wandb.Table(dataframe=corr)
            for row in analysis.correlations.itertuples():
                if math.isfinite(row.spearman):
                    summary[f"spearman/{row.proxy}"] = float(row.spearman)
        run.log(logged)
        if analysis.libra is not None:
            ev = analysis.libra
            sel = ev.selection
            s = ev.summary()
            summary.update({
                "libra/proxies": list(sel.proxies), "libra/fusion": ev.fusion,
                "libra/heldout_rho_mean": s["libra"]["mean"], "libra/heldout_rho_std": s["libra"]["std"],
                "libra/in_sample_rho": ev.in_sample["libra"], "libra/best_single": ev.in_sample["best_single"],
                "libra/best_single_heldout_rho_mean": s["best_single"]["mean"], "libra/n_splits": ev.n_splits,
                "libra/n_rows": ev.n_rows})
            for role, proxy in zip(("z1", "z2", "z3"), sel.proxies):
                summary[f"libra/{role}"] = proxy
        else:
            summary["libra/skipped"] = analysis.libra_skipped or "LIBRA not run"
        for space, ev in analysis.per_space_libra.items():
            summary[f"libra_{space}/proxies"] = list(ev.selection.proxies)
            summary[f"libra_{space}/heldout_rho_mean"] = ev.summary()["libra"]["mean"]
        for space, why in analysis.per_space_libra_skipped.items():
            summary[f"libra_{space}/skipped"] = why
        summary.update(dict(extra_summary or {}))
        for key, value in summary.items():
            if isinstance(value, float) and not math.isfinite(value):
                value = None
            run.summary[key] = value
        info = {"dir": str(Path(run.dir).parent), "id": run.id, "mode": mode, "group": group,
                "project": project or "lswag", "name": run.name}
    finally:
        run.finish()
    return info


# ------------------------------------------------------------------------------------------------ orchestration
@dataclass
class CollectResult:
    """Everything :func:`collect` produced: the table, the issues, the analysis and the paths written."""

    table: pd.DataFrame
    collected: Collected
    analysis: Optional[Analysis]
    paths: dict[str, Path]
    wandb: Optional[dict[str, Any]] = None


def default_out_dir(paths: Sequence[str | os.PathLike]) -> Path:
    """``<first folder>/collect`` (or ``<folder of the first file>/collect``)."""
    first = Path(paths[0])
    return (first if first.is_dir() else first.parent) / "collect"


def collect(paths: Sequence[str | os.PathLike], out_dir: Optional[str | os.PathLike] = None, *,
            accuracy: str = "val_acc", proxies: Optional[Sequence[str]] = None, report: bool = True,
            per_space: bool = True, n_boot: int = 1000, n_splits: int = 20, seed: int = 0,
            wandb: bool = False, wandb_mode: Optional[str] = None, wandb_project: Optional[str] = None,
            wandb_group: Optional[str] = None, result_name: str = RESULT_FILE,
            libra_options: Optional[Mapping[str, Any]] = None) -> CollectResult:
    """Read the sweep(s), write ``table.csv``/``table.parquet``/``problems.csv``/``collect.json`` in ``out_dir``
    (default :func:`default_out_dir`), then the report (``report``) and the aggregate W&B run (``wandb``).

    Failed and unfinished jobs never stop it: they are in ``problems.csv`` and ``CollectResult.collected.issues``.
    Raises ``ValueError`` when no job finished (after writing ``problems.csv``), naming the first errors.
    """
    if accuracy not in ACCURACY_KEYS:
        raise ValueError(f"accuracy must be one of {', '.join(ACCURACY_CHOICES)}, got {accuracy!r}")
    collected = read_results(paths, result_name)
    out = Path(out_dir) if out_dir is not None else default_out_dir(paths)
    out.mkdir(parents=True, exist_ok=True)
    written: dict[str, Path] = {"problems": write_issues(collected.issues, out)}
    if not collected.records:
        first = "; ".join(f"{i.job}: {i.error}" for i in collected.issues[:3])
        raise ValueError(f"no finished job (status ok) under {', '.join(map(str, paths))}: "
                         f"{len(collected.issues)} failed or unfinished" + (f" ({first})" if first else ""))
    table = results_table(collected.records, proxies)
    written.update(write_table(table, out))
    analysis = None
    if report:
        analysis = analyse(table, out, accuracy=accuracy, proxies=proxies, n_boot=n_boot, n_splits=n_splits,
                           seed=seed, per_space=per_space, libra_options=libra_options,
                           protocol_lines=[f"sweep: {', '.join(map(str, paths))}",
                                           f"{len(collected.records)} finished jobs, {len(collected.issues)} failed "
                                           "or unfinished (problems.csv)"])
        written.update({f"report_{k}" if k != "all" else "report": v for k, v in analysis.reports.items()})
    groups = sorted(str(g) for g in table["wandb_group"].dropna().unique())
    if len(groups) > 1:
        note = (f"the jobs recorded {len(groups)} different W&B groups / sweep ids ({', '.join(groups[:3])}"
                f"{', ...' if len(groups) > 3 else ''}); launch with sweep_id=<name> to keep one sweep in one group")
        log.warning(note)
        if analysis is not None:
            analysis.notes.append(note)
    wandb_info = None
    if wandb:
        if analysis is None:
            analysis = Analysis(accuracy=accuracy, proxies=table_proxies(table), n_rows=len(table),
                                libra_skipped="LIBRA not run (no report asked for)")
        settings = sweep_wandb_settings(collected.records)
        wandb_info = write_wandb_run(
            table, analysis, out, project=wandb_project or settings["project"], entity=settings["entity"],
            group=wandb_group or settings["group"], mode=wandb_mode,
            extra_summary={"n_failed": len(collected.issues)})
    summary = {"inputs": collected.inputs, "out_dir": str(out), "n_ok": len(collected.records),
               "issues": [i.to_dict() for i in collected.issues], "accuracy": accuracy,
               "paths": {k: str(v) for k, v in written.items()}, "wandb": wandb_info}
    if analysis is not None:
        summary.update(notes=analysis.notes, libra_skipped=analysis.libra_skipped or None,
                       libra=analysis.libra.selection.proxies if analysis.libra is not None else None)
    written["summary"] = out / "collect.json"
    written["summary"].write_text(json.dumps(summary, indent=2, default=str) + "\n")
    return CollectResult(table=table, collected=collected, analysis=analysis, paths=written, wandb=wandb_info)


# ------------------------------------------------------------------------------------------------ text output
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
    head = (f"{'proxy':<{width}}  {'n':>3}  {'Spearman [95% CI]':<24}  {'Kendall':>7}  {'top10%':>6}"
            + "".join(f"  {'ρ ' + s:>{w}}" for s, w in zip(spaces, cols)))
    lines = [f"Rank correlation with {analysis.accuracy} (%), all {analysis.n_rows} finished jobs"
             + (" pooled; then per space" if spaces else "") + ":", head, "-" * len(head)]
    for row in corr.itertuples():
        ci = (f"{_f(row.spearman)} [{_f(row.spearman_lo)}, {_f(row.spearman_hi)}]"
              if math.isfinite(row.spearman_lo) else _f(row.spearman))
        per = ""
        for s, w in zip(spaces, cols):
            sub = analysis.per_space[s]
            match = sub[sub["proxy"] == row.proxy]
            per += f"  {_f(match['spearman'].iloc[0]) if len(match) else '–':>{w}}"
        lines.append(f"{row.proxy:<{width}}  {row.n:>3}  {ci:<24}  {_f(row.kendall):>7}  {_f(row.top_hit, 2):>6}"
                     + per)
    return "\n".join(lines)


def format_libra(analysis: Analysis) -> str:
    """LIBRA's choice and its held-out numbers (the ``lswag-libra`` summary), or why it was skipped."""
    if analysis.libra is None:
        return analysis.libra_skipped or "LIBRA not run"
    from lswag_lightning.cli.libra import format_summary

    return format_summary(analysis.libra)


def _libra_line(label: str, evaluation: Any) -> str:
    sel = evaluation.selection
    s = evaluation.summary()
    return (f"{label}: {', '.join(sel.proxies)}  (held-out ρ {_f(s['libra']['mean'])} ± {_f(s['libra']['std'])} "
            f"over {evaluation.n_splits} splits; best single proxy {_f(s['best_single']['mean'])} ± "
            f"{_f(s['best_single']['std'])})")


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


def format_job_line(record: Mapping[str, Any], accuracy: str = "val_acc", proxies: Sequence[str] = ("lswag",)
                    ) -> str:
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
