"""NAS-Bench-Suite-Zero's NAS-Bench-101 and NAS-Bench-301 subsets as plain tables (ground truth for ``lswag-bench``).

Read at run time from the data folder (``naslib_zc_subsets/``; data README §6), never copied:

- ``zc_nasbench101_subset.json``: 500 NB101 cells, ``{"nasbench101": {"cifar10": {key: {val_accuracy, params, ...
  proxies}}}}``; the key is NASLib's 56-int tuple string, which ``get_space("nb101").decode`` reads.
- ``zc_nasbench301_subset.json``: 725 NB301 genotypes, ``{"cifar10": {key: {idx, arch, val_accuracy, <proxy>:
  {score, time}}}}``; the key is NASLib's compact string, which ``get_space("darts").decode`` reads. NB301 is a
  surrogate benchmark: these accuracies are probably the surrogate's predictions.

Each loader returns a DataFrame with ``arch`` (the key exactly as in the file), ``gt_row`` (position in the file),
``cifar10_val_acc`` (validation accuracy, %) and ``published_params`` (the file's ``params``, converted from
millions to a count), plus ``naslib_idx`` for NB301. Pure pandas/json: no torch, no other module of the package.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import pandas as pd

NB101_FILE = "naslib_zc_subsets/zc_nasbench101_subset.json"
NB301_FILE = "naslib_zc_subsets/zc_nasbench301_subset.json"
ACCURACY_COLUMN = "cifar10_val_acc"


def _read(path: Path) -> dict:
    if not path.is_file():
        raise FileNotFoundError(f"ground-truth file not found: {path} (data README §6; set --data-dir or "
                                "$LSWAG_DATA_DIR to the folder holding naslib_zc_subsets/)")
    with path.open() as fh:
        return json.load(fh)


def _value(record: dict, name: str, path: Path, key: str) -> float:
    """A field that is a plain number (NB101) or ``{"score": number}`` (NB301)."""
    if name not in record:
        raise ValueError(f"{path}: architecture {key[:60]!r} has no {name!r}")
    value = record[name]
    return float(value["score"] if isinstance(value, dict) else value)


def load_nb101_subset(root: str | os.PathLike) -> pd.DataFrame:
    """The 500 NB101 cells of NAS-Bench-Suite-Zero, in file order (see the module docstring for the columns)."""
    path = Path(root) / NB101_FILE
    data = _read(path)
    try:
        cells = data["nasbench101"]["cifar10"]
    except (KeyError, TypeError):
        raise ValueError(f"{path}: expected {{'nasbench101': {{'cifar10': {{key: record}}}}}}") from None
    rows = [{"arch": key, "gt_row": i, ACCURACY_COLUMN: _value(rec, "val_accuracy", path, key),
             "published_params": round(_value(rec, "params", path, key) * 1e6)}
            for i, (key, rec) in enumerate(cells.items())]
    return pd.DataFrame(rows)


def load_nb301_subset(root: str | os.PathLike) -> pd.DataFrame:
    """The 725 NB301 genotypes of NAS-Bench-Suite-Zero, in file order (see the module docstring for the columns)."""
    path = Path(root) / NB301_FILE
    data = _read(path)
    cells = data.get("cifar10") if isinstance(data, dict) else None
    if not isinstance(cells, dict):
        raise ValueError(f"{path}: expected {{'cifar10': {{key: record}}}}")
    rows = []
    for i, (key, rec) in enumerate(cells.items()):
        if rec.get("arch", key) != key:
            raise ValueError(f"{path}: row {i}: 'arch' {rec.get('arch')!r} differs from its key {key!r}")
        rows.append({"arch": key, "gt_row": i, "naslib_idx": int(rec["idx"]),
                     ACCURACY_COLUMN: _value(rec, "val_accuracy", path, key),
                     "published_params": round(_value(rec, "params", path, key) * 1e6)})
    return pd.DataFrame(rows)
