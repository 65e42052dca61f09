"""The result table of a sweep: one row per finished job (columns: :mod:`lswag_lightning.collect`), and the files
it is written to (``table.csv``, ``table.parquet``, ``problems.csv``)."""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from lswag_lightning.collect.records import JobIssue

PARAMS = "params"
#: Bookkeeping columns of the table, never analysed.
META_COLUMNS = ("job", "candidate_index", "seconds.scoring", "seconds.total", "wandb_group")
#: Accuracy columns of the table (in %), from these result.json keys (fractions in [0, 1]).
ACCURACY_KEYS = {"val_acc": "val_acc", "val_acc_best": "val_acc_best", "test_acc": "test_acc"}
ACCURACY_CHOICES = tuple(ACCURACY_KEYS)


def _number(value: Any) -> float:
    """A finite float, else NaN (None, strings, NaN and ±inf all become NaN)."""
    if isinstance(value, bool) or value is None:
        return math.nan
    try:
        value = float(value)
    except (TypeError, ValueError):
        return math.nan
    return value if math.isfinite(value) else math.nan


def wandb_group_of(record: Mapping[str, Any]) -> str | None:
    """The W&B group a job logged into (``config.logger.wandb.group``), else its ``config.sweep_id``, else None."""
    config = record.get("config") or {}
    logger = (config.get("logger") or {}) if isinstance(config, Mapping) else {}
    for node in logger.values() if isinstance(logger, Mapping) else ():
        if isinstance(node, Mapping) and str(node.get("_target_", "")).endswith("WandbLogger") and node.get("group"):
            return str(node["group"])
    sweep_id = config.get("sweep_id") if isinstance(config, Mapping) else None
    return str(sweep_id) if sweep_id else None


def proxy_names(records: Iterable[Mapping[str, Any]]) -> list[str]:
    """Proxy names present in the records' ``proxies``, in the order the jobs listed them (the callback's order),
    each proxy's sub-values (``lswag.lambda``) right after it."""
    seen: dict[str, None] = {}
    for record in records:
        for name in record.get("proxies") or {}:
            seen[str(name)] = None
    first = {name: i for i, name in enumerate(seen)}

    def key(name: str) -> tuple[int, int, int]:
        parent = name.split(".", 1)[0]
        return (first.get(parent, first[name]), 0 if name == parent else 1, first[name])

    return sorted(seen, key=key)


def results_table(records: Sequence[Mapping[str, Any]], proxies: Sequence[str] | None = None) -> pd.DataFrame:
    """One row per finished job (columns: module docstring). ``proxies`` restricts the proxy columns (every name
    must occur in some record; ``ValueError`` lists the ones present otherwise)."""
    present = proxy_names(records)
    if proxies is None:
        proxies = present
    else:
        proxies = list(dict.fromkeys(proxies))
        missing = [p for p in proxies if p not in present]
        if missing:
            raise ValueError(
                f"proxy column(s) {', '.join(missing)} not in any result; proxies present: "
                f"{', '.join(present) or 'none'}"
            )
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
        row.update(
            {
                "job": record.get("_job"),
                "candidate_index": candidate.get("index"),
                "seconds.scoring": _number(seconds.get("scoring")),
                "seconds.total": _number(seconds.get("total")),
                "wandb_group": wandb_group_of(record),
            }
        )
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
    pd.DataFrame(
        [i.to_dict() for i in issues], columns=["job", "kind", "error", "result_file", "space", "arch"]
    ).to_csv(path, index=False)
    return path
