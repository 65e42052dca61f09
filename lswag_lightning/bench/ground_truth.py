"""Ground truth of the public benchmarks: architectures of one space with their published accuracies.

The files are read at run time from the data folder (:mod:`lswag_lightning.paths`), never copied; which file
serves which benchmark is listed in :mod:`lswag_lightning.bench`.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from lswag_lightning.paths import resolve_data_dir

BENCHMARKS = ("nb201", "nb101", "nb301", "autoformer_ti", "custom")
#: the search space that scores each named benchmark (``custom`` takes ``--space``)
BENCHMARK_SPACES = {"nb201": "nb201", "nb101": "nb101", "nb301": "darts", "autoformer_ti": "autoformer_ti"}
NB201_SETS = ("all", "naslib_val")

NB201_TEST_FILE = "nb201/nasbench201_test_acc_200ep.csv"
NB201_VAL_FILE = "nb201/nb201_val_acc_naslib_subset.csv"
AUTOFORMER_FILE = "vit/autoprox_gt_autoformer.json"

#: NB201 accuracy columns of the table -> the column of the published 200-epoch test file.
NB201_TEST_COLUMNS = {
    "cifar10_test_acc": "CIFAR10TestAccuracy200Epochs",
    "cifar100_test_acc": "CIFAR100TestAccuracy200Epochs",
    "imagenet16_120_test_acc": "ImageNetTestAccuracy200Epochs",
}
NB201_VAL_COLUMNS = ("cifar10_val_acc", "cifar100_val_acc", "imagenet16_120_val_acc")


@dataclass
class GroundTruth:
    """Architectures of one space with their published accuracies, one row each.

    ``table`` holds ``arch`` (encoded by the space), optional id columns (``nb201_index``, ``gt_row``) and one
    numeric column per accuracy (in %). ``source`` describes where the values come from.
    """

    space: str
    table: pd.DataFrame
    accuracy_columns: list[str]
    id_columns: list[str]
    source: str

    def __len__(self) -> int:
        return len(self.table)


def load_nb201_ground_truth(data_dir: str | os.PathLike | None = None, subset: str = "all") -> GroundTruth:
    """NAS-Bench-201 accuracies; ``subset="all"`` (15,625 cells, test accuracy) or ``"naslib_val"`` (723 cells
    with NAS-Bench-Suite-Zero validation accuracy added). The arch strings are checked against the benchmark
    index rule of :mod:`lswag_lightning.spaces.nb201`."""
    from lswag_lightning.spaces.nb201 import NUM_ARCHS, index_to_arch

    if subset not in NB201_SETS:
        raise ValueError(f"nb201 subset {subset!r} is unknown; use one of {', '.join(NB201_SETS)}")
    root = resolve_data_dir(data_dir, must_contain=NB201_TEST_FILE)
    raw = read_csv_exact(root / NB201_TEST_FILE)
    if len(raw) != NUM_ARCHS:
        raise ValueError(f"{root / NB201_TEST_FILE}: expected {NUM_ARCHS} rows (one per NB201 cell), got {len(raw)}")
    table = pd.DataFrame({"arch": raw["ArchitectureString"].astype(str), "nb201_index": np.arange(len(raw))})
    for ours, theirs in NB201_TEST_COLUMNS.items():
        table[ours] = raw[theirs].astype(float)
    if table["arch"].iloc[0] != index_to_arch(0) or table["arch"].iloc[-1] != index_to_arch(NUM_ARCHS - 1):
        raise ValueError(f"{root / NB201_TEST_FILE}: row order is not the NB201 index order")
    accuracy = list(NB201_TEST_COLUMNS)
    source = f"{NB201_TEST_FILE} (200-epoch test accuracy, NATS-Bench tss)"
    if subset == "naslib_val":
        val = read_csv_exact(resolve_data_dir(data_dir, must_contain=NB201_VAL_FILE) / NB201_VAL_FILE)
        table = table.iloc[val["nb201_index"].to_numpy()].reset_index(drop=True)
        if not (table["arch"].to_numpy() == val["arch_str"].astype(str).to_numpy()).all():
            raise ValueError(f"{NB201_VAL_FILE}: arch_str does not match nb201_index in {NB201_TEST_FILE}")
        for col in NB201_VAL_COLUMNS:
            table[col] = val[col].astype(float).to_numpy()
        accuracy = [*NB201_VAL_COLUMNS, *accuracy]
        source += f"; {NB201_VAL_FILE} (NAS-Bench-Suite-Zero 200-epoch validation accuracy, 723 cells)"
    return GroundTruth("nb201", table, accuracy, ["nb201_index"], source)


def read_csv_exact(path: str | os.PathLike, **kwargs: Any) -> pd.DataFrame:
    """``pandas.read_csv`` parsing floats exactly (round trip): pandas >= 3 does by default, older needs asking."""
    if int(pd.__version__.split(".")[0]) < 3:
        kwargs.setdefault("float_precision", "round_trip")
    return pd.read_csv(path, **kwargs)


def _read_records(path: Path) -> pd.DataFrame:
    """A table file as a DataFrame; a JSON list of records keeps nested values (e.g. arch dicts) as objects."""
    from lswag_lightning.analysis.table import load_table

    if path.suffix.lower() == ".json":
        if not path.is_file():
            raise FileNotFoundError(f"ground-truth file not found: {path}")
        with path.open() as fh:
            data = json.load(fh)
        if isinstance(data, Mapping) and "records" in data:
            data = data["records"]
        if not isinstance(data, list) or not data or not all(isinstance(r, Mapping) for r in data):
            raise ValueError(f"{path}: expected a non-empty JSON list of records (objects)")
        return pd.DataFrame.from_records(data)
    return load_table(path)


def load_custom_ground_truth(
    path: str | os.PathLike,
    space_name: str,
    arch_column: str,
    accuracy_columns: Sequence[str],
    *,
    source: str | None = None,
) -> GroundTruth:
    """Architectures of ``space_name`` with accuracies from a user table.

    ``arch_column`` holds what ``space.decode`` accepts (arch strings, JSON strings, or dicts in a JSON list of
    records); each is re-encoded canonically. ``accuracy_columns`` must be numeric (%). Raises ``ValueError``
    naming the bad column / row.
    """
    from lswag_lightning.spaces import get_space

    path = Path(path)
    space = get_space(space_name)
    if not accuracy_columns:
        raise ValueError("give at least one accuracy column (--accuracy-column COL)")
    raw = _read_records(path)
    missing = [c for c in [arch_column, *accuracy_columns] if c not in raw.columns]
    if missing:
        raise ValueError(
            f"{path}: column(s) {', '.join(map(repr, missing))} not found; columns present: "
            f"{', '.join(map(str, raw.columns))}"
        )
    archs = []
    for row, value in enumerate(raw[arch_column]):
        try:
            archs.append(space.encode(space.decode(value)))
        except (ValueError, TypeError) as exc:
            raise ValueError(
                f"{path}: row {row}, column {arch_column!r} is not a {space_name} architecture: {exc}"
            ) from None
    table = pd.DataFrame({"arch": archs, "gt_row": np.arange(len(raw))})
    for col in accuracy_columns:
        values = pd.to_numeric(raw[col], errors="coerce")
        bad = raw[col].notna() & values.isna()
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            raise ValueError(
                f"{path}: accuracy column {col!r} has non-numeric values (row {row}: {raw[col].iloc[row]!r})"
            )
        if values.isna().all():
            raise ValueError(f"{path}: accuracy column {col!r} holds no values")
        table[col] = values.astype(float).to_numpy()
    return GroundTruth(space_name, table, list(accuracy_columns), ["gt_row"], source or str(path))


def load_naslib_ground_truth(benchmark: str, data_dir: str | os.PathLike | None = None) -> GroundTruth:
    """NAS-Bench-Suite-Zero's ``nb101`` (500 cells) or ``nb301`` (725 genotypes) subset with its CIFAR-10
    validation accuracy (%), read by :func:`lswag_lightning.analysis.published.load_published`; ``arch`` is the
    file's key, checked to decode in the benchmark's space. ``gt.table`` also holds ``published_params`` (the
    file's count), which is not written to table.csv (lswag-libra would take it for a proxy)."""
    from lswag_lightning.analysis.published import load_published
    from lswag_lightning.spaces import get_space

    published = load_published(benchmark, "cifar10", data_dir)
    raw = published.table
    table = pd.DataFrame({"arch": raw["arch"].astype(str), "gt_row": np.arange(len(raw))})
    ids = ["gt_row"]
    if "idx" in raw.columns:
        table["naslib_idx"] = raw["idx"].astype(int).to_numpy()
        ids.append("naslib_idx")
    table["cifar10_val_acc"] = raw["val_accuracy"].astype(float).to_numpy()
    table["published_params"] = raw["params"].astype(np.int64).to_numpy()
    space = get_space(BENCHMARK_SPACES[benchmark])
    for row, key in enumerate(table["arch"]):
        try:
            space.decode(key)
        except ValueError as exc:
            raise ValueError(f"{published.source}: row {row} is not a {space.name} architecture: {exc}") from None
    return GroundTruth(
        space.name,
        table,
        ["cifar10_val_acc"],
        ids,
        f"{published.source.relative_to(published.source.parents[1])} (NAS-Bench-Suite-Zero "
        f"{benchmark.upper()} subset, CIFAR-10 validation accuracy)",
    )


def load_autoformer_ground_truth(data_dir: str | os.PathLike | None = None) -> GroundTruth:
    """Auto-Prox's AutoFormer-Ti benchmark: 100 subnets and every accuracy field of the file (in %)."""
    root = resolve_data_dir(data_dir, must_contain=AUTOFORMER_FILE)
    with (root / AUTOFORMER_FILE).open() as fh:
        records = json.load(fh)
    accuracy = [k for k in records[0] if k != "arch"]
    return load_custom_ground_truth(
        root / AUTOFORMER_FILE,
        "autoformer_ti",
        "arch",
        accuracy,
        source=f"{AUTOFORMER_FILE} (Auto-Prox AAAI'24 AutoFormer-Ti ground truth)",
    )


def sample_ground_truth(gt: GroundTruth, sample: int | None, seed: int) -> GroundTruth:
    """``sample`` rows drawn without replacement (``numpy.random.default_rng(seed)``, in draw order), or all rows
    in file order when ``sample`` is None."""
    if sample is None:
        return gt
    if isinstance(sample, bool) or not isinstance(sample, (int, np.integer)) or sample < 1:
        raise ValueError(f"sample must be a positive integer, got {sample!r}")
    if sample > len(gt):
        raise ValueError(
            f"cannot sample {sample} architectures: the ground truth holds {len(gt)}; "
            f"use --sample {len(gt)} or fewer, or leave --sample out to score all"
        )
    rows = np.random.default_rng(seed).choice(len(gt), size=int(sample), replace=False)
    return GroundTruth(
        gt.space, gt.table.iloc[rows].reset_index(drop=True), gt.accuracy_columns, gt.id_columns, gt.source
    )


def benchmark_ground_truth(
    benchmark: str,
    data_dir: Any = None,
    *,
    nb201_set: str = "all",
    space: str | None = None,
    gt_file: str | os.PathLike | None = None,
    arch_column: str | None = None,
    accuracy_columns: Iterable[str] = (),
) -> GroundTruth:
    """The ground truth of ``benchmark`` (before sampling)."""
    if benchmark == "nb201":
        return load_nb201_ground_truth(data_dir, nb201_set)
    if benchmark == "autoformer_ti":
        return load_autoformer_ground_truth(data_dir)
    if benchmark in ("nb101", "nb301"):
        return load_naslib_ground_truth(benchmark, data_dir)
    if benchmark == "custom":
        if not (space and gt_file and arch_column):
            raise ValueError("custom benchmarks need space, gt_file, arch_column and accuracy_columns")
        return load_custom_ground_truth(gt_file, space, arch_column, list(accuracy_columns))
    raise ValueError(f"unknown benchmark {benchmark!r}; use one of {', '.join(BENCHMARKS)}")
