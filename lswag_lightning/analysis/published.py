"""Loaders for the published NAS-Bench-Suite-Zero (NASLib) zero-cost proxy tables in ``../shared/data``.

Each loader returns a :class:`PublishedTable`: a result table in this package's layout (``arch``, ``space``,
``task``, ``params`` as a count of parameters, one column per NASLib proxy as published, ``val_accuracy``) plus
the names needed to analyse it. Orientation: every NASLib proxy is taken as higher-is-better, as published
(NASLib already stores e.g. ``jacov`` and ``epe_nas`` so that higher is better).

Units: NASLib publishes ``params`` in millions; it is converted to a count (× 1e6, rounded). ``flops`` stays in
MFLOPs as published. ``val_accuracy`` is in % for classification tasks; for some TransNAS-Bench-101 tasks it is
another score (autoencoder / normal: SSIM-like in [0, 1]; room_layout: negative loss), higher always better.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from lswag_lightning.paths import resolve_data_dir

#: The zero-cost proxies of NAS-Bench-Suite-Zero that appear in the published files.
NASLIB_PROXIES = (
    "epe_nas",
    "fisher",
    "flops",
    "grad_norm",
    "grasp",
    "jacov",
    "l2_norm",
    "nwot",
    "params",
    "plain",
    "snip",
    "synflow",
    "zen",
)
#: Our proxy (registry name) -> the published NASLib column computing the same quantity, for the cross-checks of our
#: values against the published ones (``lswag-bench nb201|nb101|nb301 --vs-published``).
COUNTERPARTS: dict[str, str] = {
    "naswot": "nwot",
    "synflow": "synflow",
    "snip": "snip",
    "grad_norm": "grad_norm",
    "jacov": "jacov",
    "flops": "flops",
    "params": "params",
}
ACCURACY = "val_accuracy"
PARAMS_PER_MILLION = 1e6

NB201_FLAT = "nb201/zc_nasbench201_subset_naslib_flat.csv"
NB201_TASKS = ("cifar10", "cifar100", "ImageNet16-120")
_JSON_FILES = {
    "nb101": "naslib_zc_subsets/zc_nasbench101_subset.json",
    "nb301": "naslib_zc_subsets/zc_nasbench301_subset.json",
    "tnb101_micro": "naslib_zc_subsets/zc_transbench101_micro_subset.json",
    "tnb101_macro": "naslib_zc_subsets/zc_transbench101_macro_subset.json",
}
BENCHMARKS = ("nb201", *_JSON_FILES)
TNB101_TASKS = ("class_scene", "class_object", "autoencoder", "normal", "jigsaw", "room_layout", "segmentsemantic")
ACCURACY_UNITS = {"autoencoder": "SSIM", "normal": "SSIM", "room_layout": "negative loss"}


@dataclass
class PublishedTable:
    """A published table and how to analyse it: column names, proxies present, orientation, accuracy unit."""

    table: pd.DataFrame
    benchmark: str
    task: str
    source: Path
    proxies: list[str]
    accuracy: str = ACCURACY
    params: str = "params"
    higher_is_better: dict[str, bool] = field(default_factory=dict)
    accuracy_unit: str = "%"


def _finish(df: pd.DataFrame, benchmark: str, task: str, source: Path) -> PublishedTable:
    if "params" in df.columns:
        df["params"] = np.round(df["params"].astype(float) * PARAMS_PER_MILLION)
    proxies = [p for p in NASLIB_PROXIES if p in df.columns]
    front = [c for c in ("arch", "space", "task", ACCURACY) if c in df.columns]
    df = df[front + proxies + [c for c in df.columns if c not in front and c not in proxies]].reset_index(drop=True)
    return PublishedTable(
        df,
        benchmark,
        task,
        source,
        proxies,
        higher_is_better={p: True for p in proxies},
        accuracy_unit=ACCURACY_UNITS.get(task, "%"),
    )


def load_nb201_flat(task: str = "cifar10", data_dir: str | os.PathLike | None = None) -> PublishedTable:
    """NAS-Bench-201 NASLib subset (§3 of the data README) for ``task`` in cifar10 / cifar100 / ImageNet16-120.

    ``arch`` is the NB201 arch string; ``nb201_index`` and ``naslib_idx`` are kept; ``val_accuracy`` is the
    200-epoch validation accuracy (%).
    """
    if task not in NB201_TASKS:
        raise ValueError(f"unknown NB201 task {task!r}; choose from {', '.join(NB201_TASKS)}")
    root = resolve_data_dir(data_dir, must_contain=NB201_FLAT)
    path = root / NB201_FLAT
    raw = pd.read_csv(path)
    df = raw[raw["dataset"] == task].drop(columns=["dataset"]).rename(columns={"arch_str": "arch"})
    df.insert(1, "space", "nb201")
    df.insert(2, "task", task)
    return _finish(df, "nb201", task, path)


def flatten_naslib_json(data: Mapping, task: str | None = None) -> tuple[str, pd.DataFrame]:
    """Flatten a NASLib zero-cost JSON into (task, table) with one row per architecture.

    The JSON maps tasks (possibly nested, e.g. ``{"nasbench101": {"cifar10": {...}}}``) to ``{arch_key: record}``
    where a record holds ``val_accuracy`` and proxies as ``{"score", "time"}`` or plain floats. ``task=None``
    picks the only task (``ValueError`` listing them when there are several).
    """
    tasks: dict[str, Mapping] = {}

    def walk(node: Mapping, path: tuple[str, ...]) -> None:
        first = next(iter(node.values()), None)
        if isinstance(first, Mapping) and ACCURACY in first:
            tasks["/".join(path)] = node
            return
        for key, child in node.items():
            if isinstance(child, Mapping):
                walk(child, (*path, str(key)))

    walk(data, ())
    if not tasks:
        raise ValueError(f"no records with {ACCURACY!r} found in the JSON")
    by_leaf = {k.rsplit("/", 1)[-1]: k for k in tasks}
    if task is None:
        if len(tasks) > 1:
            raise ValueError(f"the JSON holds several tasks; pass task= one of {', '.join(by_leaf)}")
        key = next(iter(tasks))
    elif task in tasks:
        key = task
    elif task in by_leaf:
        key = by_leaf[task]
    else:
        raise ValueError(f"task {task!r} not in the JSON; tasks: {', '.join(by_leaf)}")
    rows = []
    for arch, record in tasks[key].items():
        row = {"arch": str(arch)}
        for name, value in record.items():
            if name == "arch":
                continue
            if isinstance(value, Mapping):
                row[name] = value.get("score", np.nan)
                if "time" in value:
                    row[f"{name}.time"] = value["time"]
            else:
                row[name] = value
        rows.append(row)
    df = pd.DataFrame(rows)
    for col in df.columns:
        if col != "arch" and df[col].dtype == object:
            df[col] = pd.to_numeric(df[col], errors="coerce") if col != "idx" else df[col]
    return key.rsplit("/", 1)[-1], df


def load_naslib_json(
    benchmark: str, task: str | None = None, data_dir: str | os.PathLike | None = None
) -> PublishedTable:
    """A NASLib subset JSON (data README §6): ``nb101``, ``nb301`` (task cifar10), ``tnb101_micro`` /
    ``tnb101_macro`` (task one of :data:`TNB101_TASKS`)."""
    if benchmark not in _JSON_FILES:
        raise ValueError(f"unknown benchmark {benchmark!r}; choose from {', '.join(_JSON_FILES)}")
    root = resolve_data_dir(data_dir, must_contain=_JSON_FILES[benchmark])
    path = root / _JSON_FILES[benchmark]
    with path.open() as fh:
        data = json.load(fh)
    task_name, df = flatten_naslib_json(data, task)
    df.insert(1, "space", benchmark)
    df.insert(2, "task", task_name)
    return _finish(df, benchmark, task_name, path)


def load_published(
    benchmark: str, task: str | None = None, data_dir: str | os.PathLike | None = None
) -> PublishedTable:
    """Any published table: ``nb201`` (task default cifar10), ``nb101``, ``nb301``, ``tnb101_micro``,
    ``tnb101_macro`` (TNB tasks: class_scene, class_object, autoencoder, normal, jigsaw, room_layout,
    segmentsemantic)."""
    if benchmark == "nb201":
        return load_nb201_flat(task or "cifar10", data_dir)
    return load_naslib_json(benchmark, task, data_dir)
