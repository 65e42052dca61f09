"""Public-benchmark reproduction: score architectures with zero-cost proxies and join their published accuracies.

The library behind ``lswag-bench`` (:mod:`lswag_lightning.cli.bench`). Pure PyTorch + pandas: no Lightning, Hydra
or W&B, so it runs on any machine with torch, timm, pandas, scipy, matplotlib and tqdm.

Benchmarks (the ground truth is read at run time from the data folder, never copied):

- ``nb201``: ``nb201/nasbench201_test_acc_200ep.csv``, the 200-epoch test accuracy (%) of all 15,625 NAS-Bench-201
  cells on CIFAR-10, CIFAR-100 and ImageNet16-120 -> columns ``cifar10_test_acc``, ``cifar100_test_acc``,
  ``imagenet16_120_test_acc`` (+ ``nb201_index``). With ``nb201_set="naslib_val"`` the architectures are the 723
  cells of ``nb201/nb201_val_acc_naslib_subset.csv`` and their validation accuracies (the paper's protocol) are
  added as ``cifar10_val_acc``, ``cifar100_val_acc``, ``imagenet16_120_val_acc``.
- ``nb101`` / ``nb301``: NAS-Bench-Suite-Zero's subsets (``naslib_zc_subsets/``, read by ``analysis.published``):
  500 NB101 cells (space ``nb101``) / 725 NB301 genotypes (space ``darts`` with :data:`NB301_BUILD_OPTIONS`),
  CIFAR-10 validation accuracy -> ``cifar10_val_acc``; ``arch`` is the file's key (the scored networks' ``params``
  equal the file's ``params``, which NASLib stores in millions).
- ``autoformer_ti``: ``vit/autoprox_gt_autoformer.json`` (Auto-Prox, 100 AutoFormer-Ti subnets), every accuracy
  field (``c100_base_acc``, ``c100_kd_acc``, ``flower_*``, ``chaoyang_*``, ``imagenet_super_acc``), in %.
- ``custom``: any table (CSV/TSV/parquet/JSONL, or a JSON list of records) of architectures of a shipped space.

Protocol (stated in every report): one probe batch of real CIFAR-10 training images (``images/
cifar10_train_part0.npz``, shuffled with ``probe_seed``, normalised with the CIFAR-10 channel mean/std, resized
bilinearly when the resolution is not 32) and their labels serves every architecture and every accuracy
column. Each network is built on the CPU from a seed derived from its encoded architecture (the same arch gets
the same initial weights in any sample, on any device), moved to the device, and scored in train() mode by
:func:`lswag_lightning.score_network` with the space's shipped proxy defaults (``space.proxy_defaults``) unless
overridden. On CUDA, TF32 is switched off so that values match float32 CPU scores up to summation order.

Resumable output: ``<out>/table.csv`` gets one flushed row per architecture (columns: :data:`TABLE_DOC`) and
``<out>/bench.json`` records the settings; a rerun with the same settings skips the done rows and ends with the
same table as an uninterrupted run (timing columns aside). A rerun with different settings is refused.
"""
from __future__ import annotations

import contextlib
import csv
import hashlib
import io
import json
import logging
import math
import os
import platform
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from lswag_lightning.images import CIFAR10_MEAN, CIFAR10_STD, read_image_npz
from lswag_lightning.paths import resolve_data_dir
from lswag_lightning.proxies.registry import available_proxies, get_proxy

log = logging.getLogger(__name__)

BENCHMARKS = ("nb201", "nb101", "nb301", "autoformer_ti", "custom")
#: the search space that scores each named benchmark (``custom`` takes ``--space``)
BENCHMARK_SPACES = {"nb201": "nb201", "nb101": "nb101", "nb301": "darts", "autoformer_ti": "autoformer_ti"}
NB201_SETS = ("all", "naslib_val")

NB201_TEST_FILE = "nb201/nasbench201_test_acc_200ep.csv"
NB201_VAL_FILE = "nb201/nb201_val_acc_naslib_subset.csv"
AUTOFORMER_FILE = "vit/autoprox_gt_autoformer.json"
PROBE_FILE = "images/cifar10_train_part0.npz"

#: NB201 accuracy columns of the table -> the column of the published 200-epoch test file.
NB201_TEST_COLUMNS = {
    "cifar10_test_acc": "CIFAR10TestAccuracy200Epochs",
    "cifar100_test_acc": "CIFAR100TestAccuracy200Epochs",
    "imagenet16_120_test_acc": "ImageNetTestAccuracy200Epochs",
}
NB201_VAL_COLUMNS = ("cifar10_val_acc", "cifar100_val_acc", "imagenet16_120_val_acc")

PROBE_CLASSES = 10

#: AutoFormer-Ti probe resolution when none is given: 112 px (7x7 patches of 16), which a CPU can afford
#: for 100 ViTs; the original training resolution is 224 (pass img_size=224 on a GPU).
AUTOFORMER_DEFAULT_IMG_SIZE = 112
AUTOFORMER_PATCH_SIZE = 16

#: The L-SWAG paper's NB201 Spearman ρ (1000 archs, batch 64, against NAS-Bench-Suite-Zero VALIDATION accuracy;
#: METHOD.md §7). Reference values printed next to ours, keyed by dataset.
PAPER_NB201 = {
    "lswag": {"cifar10": 0.79, "cifar100": 0.83, "imagenet16_120": 0.80},
    "lswag.lambda": {"cifar10": 0.78, "cifar100": 0.81, "imagenet16_120": 0.79},
    "lswag.psi": {"cifar10": 0.71, "cifar100": 0.75, "imagenet16_120": 0.71},
    "zico": {"cifar10": 0.75, "cifar100": 0.80, "imagenet16_120": 0.78},
    "libra": {"cifar10": 0.89, "cifar100": 0.90, "imagenet16_120": 0.87},
}

TABLE_DOC = {
    "sample_index": "position of the architecture in the planned sample (0-based); rows are in this order",
    "arch": "the architecture, encoded by the space (space.encode)",
    "space": "search space name",
    "nb201_index": "NAS-Bench-201 benchmark index (nb201 only)",
    "gt_row": "row of the ground-truth file the architecture came from (nb101 / nb301 / autoformer_ti / custom)",
    "naslib_idx": "NASLib's sample id of the architecture (nb301 only)",
    "init_seed": "torch seed the network was initialised with (derived from init_seed_base and the arch)",
    "params": "trainable parameters of the scored network (a count)",
    "<proxy>": "one column per proxy value under its registry name (lswag.lambda, lswag.psi for Λ and Ψ)",
    "<accuracy>": "one column per published accuracy, in %",
    "status": "'ok', or '; '-joined 'name: reason' for every value that is not ok",
    "seconds.<proxy>": "wall seconds of each proxy, counting the shared passes it used in full",
    "build_seconds": "wall seconds to build and initialise the network and move it to the device",
    "total_seconds": "wall seconds of the whole scoring session (all proxies, shared passes once)",
}


# ---------------------------------------------------------------------------------------------- ground truth
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


def load_custom_ground_truth(path: str | os.PathLike, space_name: str, arch_column: str,
                             accuracy_columns: Sequence[str], *, source: str | None = None) -> GroundTruth:
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
        raise ValueError(f"{path}: column(s) {', '.join(map(repr, missing))} not found; columns present: "
                         f"{', '.join(map(str, raw.columns))}")
    archs = []
    for row, value in enumerate(raw[arch_column]):
        try:
            archs.append(space.encode(space.decode(value)))
        except (ValueError, TypeError) as exc:
            raise ValueError(f"{path}: row {row}, column {arch_column!r} is not a {space_name} architecture: "
                             f"{exc}") from None
    table = pd.DataFrame({"arch": archs, "gt_row": np.arange(len(raw))})
    for col in accuracy_columns:
        values = pd.to_numeric(raw[col], errors="coerce")
        bad = raw[col].notna() & values.isna()
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            raise ValueError(f"{path}: accuracy column {col!r} has non-numeric values (row {row}: "
                             f"{raw[col].iloc[row]!r})")
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
    return GroundTruth(space.name, table, ["cifar10_val_acc"], ids,
                       f"{published.source.relative_to(published.source.parents[1])} (NAS-Bench-Suite-Zero "
                       f"{benchmark.upper()} subset, CIFAR-10 validation accuracy)")


def load_autoformer_ground_truth(data_dir: str | os.PathLike | None = None) -> GroundTruth:
    """Auto-Prox's AutoFormer-Ti benchmark: 100 subnets and every accuracy field of the file (in %)."""
    root = resolve_data_dir(data_dir, must_contain=AUTOFORMER_FILE)
    with (root / AUTOFORMER_FILE).open() as fh:
        records = json.load(fh)
    accuracy = [k for k in records[0] if k != "arch"]
    return load_custom_ground_truth(root / AUTOFORMER_FILE, "autoformer_ti", "arch", accuracy,
                                    source=f"{AUTOFORMER_FILE} (Auto-Prox AAAI'24 AutoFormer-Ti ground truth)")


def sample_ground_truth(gt: GroundTruth, sample: int | None, seed: int) -> GroundTruth:
    """``sample`` rows drawn without replacement (``numpy.random.default_rng(seed)``, in draw order), or all rows
    in file order when ``sample`` is None."""
    if sample is None:
        return gt
    if isinstance(sample, bool) or not isinstance(sample, (int, np.integer)) or sample < 1:
        raise ValueError(f"sample must be a positive integer, got {sample!r}")
    if sample > len(gt):
        raise ValueError(f"cannot sample {sample} architectures: the ground truth holds {len(gt)}; "
                         f"use --sample {len(gt)} or fewer, or leave --sample out to score all")
    rows = np.random.default_rng(seed).choice(len(gt), size=int(sample), replace=False)
    return GroundTruth(gt.space, gt.table.iloc[rows].reset_index(drop=True), gt.accuracy_columns,
                       gt.id_columns, gt.source)


# ------------------------------------------------------------------------------------------------- probe
def load_probe_batch(data_dir: str | os.PathLike | None = None, batch_size: int = 64, seed: int = 0,
                     img_size: int = 32) -> tuple[torch.Tensor, torch.Tensor]:
    """One probe batch of CIFAR-10 training images: float32 (B, 3, img_size, img_size), normalised with the
    CIFAR-10 mean/std, and int64 labels (B,) in 0..9.

    Images are drawn without replacement from ``images/cifar10_train_part0.npz`` (5,000 images, grouped by class)
    after a ``numpy.random.default_rng(seed)`` permutation; sizes other than 32 are bilinear resizes.
    """
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 2:
        raise ValueError(f"batch_size must be an integer >= 2, got {batch_size!r}")
    if isinstance(img_size, bool) or not isinstance(img_size, int) or img_size < 4:
        raise ValueError(f"img_size must be an integer >= 4 pixels, got {img_size!r}")
    root = resolve_data_dir(data_dir, must_contain=PROBE_FILE)
    images, labels = read_image_npz([root / PROBE_FILE])
    if batch_size > len(labels):
        raise ValueError(f"batch_size={batch_size} exceeds the {len(labels)} probe images in {PROBE_FILE}")
    index = np.random.default_rng(seed).permutation(len(labels))[:batch_size]
    x = torch.from_numpy(np.ascontiguousarray(images[index])).permute(0, 3, 1, 2).to(torch.float32) / 255.0
    if img_size != x.shape[-1]:
        x = torch.nn.functional.interpolate(x, size=(img_size, img_size), mode="bilinear", align_corners=False)
    mean = torch.tensor(CIFAR10_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(CIFAR10_STD).view(1, 3, 1, 1)
    return (x - mean) / std, torch.from_numpy(labels[index])


# ------------------------------------------------------------------------------------------------ settings
def shipped_build_options(space_name: str) -> dict[str, Any]:
    """``build_options`` of the shipped ``conf/space/<name>.yaml`` ({} when the file or PyYAML is absent)."""
    path = Path(__file__).resolve().parent / "conf" / "space" / f"{space_name}.yaml"
    if not path.is_file():
        return {}
    try:
        import yaml
    except ImportError:  # pragma: no cover - PyYAML ships with timm
        log.warning("PyYAML not installed: ignoring %s, using the space's build() defaults", path)
        return {}
    with path.open() as fh:
        cfg = yaml.safe_load(fh) or {}
    options = cfg.get("build_options") or {}
    if not isinstance(options, Mapping):
        raise ValueError(f"{path}: build_options must be a mapping")
    return dict(options)


def resolve_build_options(space_name: str, overrides: Mapping[str, Any] = (), *,
                          preset: Mapping[str, Any] = (), img_size: int | None = None,
                          num_classes: int | None = None) -> dict[str, Any]:
    """Build options of the scored networks, later entries winning: the shipped ``conf/space`` options, a
    benchmark ``preset``, ``--build-option`` ``overrides``, then explicit ``img_size`` / ``num_classes``;
    ``img_size`` defaults to 32 (the probe's native CIFAR-10 resolution)."""
    build = shipped_build_options(space_name)
    build.update(dict(preset))
    build.update(dict(overrides))
    if img_size is not None:
        build["img_size"] = img_size
    if num_classes is not None:
        build["num_classes"] = num_classes
    build.setdefault("img_size", 32)
    return build


def default_proxies(score_options: Mapping[str, Any]) -> list[str]:
    """Every registered proxy, except ``swap_reg`` when its µ and σ (``swap_mu``, ``swap_sigma``) are not set."""
    names = available_proxies()
    if score_options.get("swap_mu") is None or score_options.get("swap_sigma") is None:
        names = [n for n in names if n != "swap_reg"]
    return names


def value_columns(proxies: Sequence[str]) -> list[str]:
    """Table columns of the proxies' values: each name followed by its registered sub-values."""
    out: list[str] = []
    for name in proxies:
        spec = get_proxy(name)
        out += [spec.name, *spec.extra_values]
    return list(dict.fromkeys(out))


def arch_seed(arch: str, base: int = 0) -> int:
    """A torch seed (0..2**63-1) from the encoded architecture and ``base``: stable across runs and machines."""
    digest = hashlib.sha256(f"{int(base)}|{arch}".encode()).digest()
    return int.from_bytes(digest[:8], "little") & ((1 << 63) - 1)


def default_device() -> str:
    """``cuda`` when available, else ``cpu``."""
    return "cuda" if torch.cuda.is_available() else "cpu"


def _jsonable(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating,)):
        return float(value)
    return value


@dataclass
class BenchSettings:
    """Everything that decides the values in the table (compared on resume), plus how the run was made.

    ``score_options`` are the resolved ``score_network`` options (space defaults, then overrides);
    ``score_options_source`` says where each came from. ``build_options`` go to ``space.build``.
    """

    benchmark: str
    space: str
    proxies: list[str]
    build_options: dict[str, Any]
    score_options: dict[str, Any]
    batch_size: int = 64
    probe_seed: int = 0
    img_size: int = 32
    sample: int | None = None
    seed: int = 0
    init_seed_base: int = 0
    gt_source: str = ""
    gt_file: str = ""
    nb201_set: str = "all"
    score_options_source: dict[str, str] = field(default_factory=dict)

    #: fields that do not change any value in the table (a resume may differ in them)
    _INFORMATIVE = ("score_options_source", "gt_source")

    def fingerprint(self) -> dict[str, Any]:
        """The settings that must match for a resumed run to continue the same table."""
        return {k: v for k, v in _jsonable(asdict(self)).items() if k not in self._INFORMATIVE}


def resolve_score_options(space_defaults: Mapping[str, Any], overrides: Mapping[str, Any]
                          ) -> tuple[dict[str, Any], dict[str, str]]:
    """Space defaults overridden by the caller's options; intervals as lists (JSON), and the source of each."""
    from lswag_lightning.proxies.options import ScoringOptions

    merged: dict[str, Any] = {}
    source: dict[str, str] = {}
    for key, value in space_defaults.items():
        merged[key], source[key] = value, "space default (space.proxy_defaults)"
    for key, value in overrides.items():
        merged[key], source[key] = value, "command line"
    ScoringOptions.from_kwargs(**merged)  # validates: unknown names and bad values raise ValueError
    return _jsonable(merged), source


def _engine_options(score_options: Mapping[str, Any]) -> dict[str, Any]:
    opts = dict(score_options)
    for key in ("layer_interval", "psi_layers"):
        if isinstance(opts.get(key), list):
            opts[key] = tuple(opts[key])
    if isinstance(opts.get("activation_points"), list):
        opts["activation_points"] = tuple(opts["activation_points"])
    opts.setdefault("copy_model", False)  # each network is built for this scoring only
    return opts


# -------------------------------------------------------------------------------------------- the table file
def _fmt_cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, (bool, np.bool_)):
        return str(bool(value))
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        return repr(float(value))  # shortest round-trip text; nan / inf / -inf as such
    return str(value)


class TableFile:
    """``table.csv`` opened for appending one flushed row per architecture.

    On open, an existing file is checked (same header) and a partial last line (a run killed mid-write) is cut
    off; :attr:`done` holds the ``sample_index`` values already written.
    """

    def __init__(self, path: Path, columns: Sequence[str]) -> None:
        self.path = Path(path)
        self.columns = list(columns)
        self.done: dict[int, str] = {}
        if self.path.exists() and self.path.stat().st_size > 0:
            self._recover()
        else:
            with self.path.open("w", newline="") as fh:
                csv.writer(fh).writerow(self.columns)
                fh.flush()
                os.fsync(fh.fileno())

    def _recover(self) -> None:
        data = self.path.read_bytes()
        if not data.endswith(b"\n"):
            cut = data.rfind(b"\n") + 1
            log.warning("%s: dropping a partial last line (%d bytes) left by an interrupted run", self.path,
                        len(data) - cut)
            with self.path.open("r+b") as fh:
                fh.truncate(cut)
            data = data[:cut]
        reader = csv.reader(io.StringIO(data.decode()))
        header = next(reader, None)
        if header != self.columns:
            raise ValueError(f"{self.path} has columns {header} but this run writes {self.columns}; it was made "
                             "with other settings. Use another --out folder or delete the table")
        pos = self.columns.index("sample_index")
        arch = self.columns.index("arch")
        for row in reader:
            if row:
                self.done[int(row[pos])] = row[arch]

    def append(self, row: Mapping[str, Any]) -> None:
        buf = io.StringIO()
        csv.writer(buf).writerow([_fmt_cell(row.get(c)) for c in self.columns])
        with self.path.open("a", newline="") as fh:
            fh.write(buf.getvalue())  # one write per row: a kill leaves at most one partial line
            fh.flush()
            os.fsync(fh.fileno())


def read_table(path: str | os.PathLike) -> pd.DataFrame:
    """Read a benchmark ``table.csv`` exactly (round-trip floats), rows ordered by ``sample_index``."""
    table = read_csv_exact(path)
    if "status" in table.columns:
        table["status"] = table["status"].fillna("").astype(str)
    return table.sort_values("sample_index", kind="stable").reset_index(drop=True)


# ------------------------------------------------------------------------------------------------ scoring
@contextlib.contextmanager
def _float32_exact() -> Any:
    """Switch off TF32 on CUDA for the duration (restored afterwards)."""
    if not torch.cuda.is_available():
        yield
        return
    saved = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32)
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved


def score_architecture(space: Any, arch: str, x: torch.Tensor, y: torch.Tensor, proxies: Sequence[str],
                       build_options: Mapping[str, Any], score_options: Mapping[str, Any], device: torch.device,
                       init_seed: int) -> dict[str, Any]:
    """Build ``arch`` (CPU init from ``init_seed``, then moved to ``device``) and score it; one table row's values.

    ``x``/``y`` are the probe batch, already on ``device``. Returns ``params``, every value column, ``status``,
    ``seconds.<proxy>``, ``build_seconds`` and ``total_seconds``.
    """
    from lswag_lightning.proxies import score_network
    from lswag_lightning.proxies.layers import count_parameters

    start = time.perf_counter()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(init_seed)
        model = space.build(space.decode(arch), **build_options)
    model = model.to(device)
    build_seconds = time.perf_counter() - start
    report = score_network(model, x, y, proxies=proxies, **_engine_options(score_options))
    row: dict[str, Any] = {"params": int(report.values["params"]) if report.ok("params") else
                           count_parameters(model, score_options.get("params_exclude", r"(^|\.)aux"))}
    for key in value_columns(proxies):
        if key != "params":
            row[key] = float(report.values.get(key, math.nan))
    failed = report.failed()
    row["status"] = "ok" if not failed else "; ".join(f"{k}: {v}" for k, v in failed.items())
    for name in proxies:
        row[f"seconds.{name}"] = float(report.seconds.get(name, math.nan))
    row["build_seconds"] = build_seconds
    row["total_seconds"] = float(report.total_seconds)
    return row


def table_columns(gt: GroundTruth, proxies: Sequence[str]) -> list[str]:
    """The column order of ``table.csv`` (see :data:`TABLE_DOC`)."""
    values = [c for c in value_columns(proxies) if c != "params"]
    return ["sample_index", "arch", "space", *gt.id_columns, "init_seed", "params", *values, *gt.accuracy_columns,
            "status", *(f"seconds.{p}" for p in proxies), "build_seconds", "total_seconds"]


def check_settings(out_dir: str | os.PathLike, settings: BenchSettings, *, table_name: str = "table.csv",
                   meta_name: str = "bench.json") -> None:
    """Refuse (``ValueError`` naming every difference) an ``out_dir`` whose table was made with other settings.

    ``table_name`` / ``meta_name``: the table and its settings file inside ``out_dir`` (a shard has its own)."""
    out = Path(out_dir)
    meta_path, table_path = out / meta_name, out / table_name
    if not (table_path.exists() and table_path.stat().st_size > 0):
        return
    if not meta_path.exists():
        raise ValueError(f"{table_path} exists without {meta_path.name}; it was not written by lswag-bench. "
                         "Use another --out folder")
    previous = json.loads(meta_path.read_text()).get("settings", {})
    fingerprint = settings.fingerprint()
    diff = sorted(k for k in set(previous) | set(fingerprint) if previous.get(k) != fingerprint.get(k))
    if diff:
        details = "; ".join(f"{k}: was {previous.get(k)!r}, now {fingerprint.get(k)!r}" for k in diff)
        raise ValueError(f"{table_path} was made with other settings ({details}). Rerun with the same arguments "
                         "to resume, or choose another --out folder")


def load_run(out_dir: str | os.PathLike, settings: BenchSettings) -> tuple[pd.DataFrame, dict[str, Any]]:
    """The table and ``bench.json`` of an earlier run made with ``settings`` (for a report without scoring)."""
    out = Path(out_dir)
    if not (out / "table.csv").exists() or not (out / "bench.json").exists():
        raise ValueError(f"no lswag-bench run in {out} (table.csv and bench.json are needed)")
    check_settings(out, settings)
    columns = next(csv.reader(io.StringIO((out / "table.csv").open().readline())))
    TableFile(out / "table.csv", columns)  # cuts a partial last line left by a killed run
    return read_table(out / "table.csv"), json.loads((out / "bench.json").read_text())


class StopRun(Exception):
    """Raised by a row callback to stop a run early (the rows written so far stay; a rerun resumes)."""


class OutputBusyError(RuntimeError):
    """Another process is writing the same output folder."""


@contextlib.contextmanager
def exclusive_run(out_dir: Path, lock_name: str = ".lock", what: str | None = None, program: str = "lswag-bench"):
    """Hold ``<out_dir>/<lock_name>`` for the whole run, so two processes never append to one table (or, for
    ``lswag-search``, never write one checkpoint).

    Raises :class:`OutputBusyError` naming ``what`` (default: the folder) when another process holds it. The lock
    is an OS file lock (``fcntl.flock``): it is released when the process ends, even when killed. Where ``fcntl``
    is missing (Windows) no lock is taken.
    """
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        yield
        return
    with open(Path(out_dir) / lock_name, "w") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise OutputBusyError(f"{what or out_dir} is being written by another {program} process; wait for it "
                                  "to end (or stop it) before resuming, or use another --out folder") from None
        try:
            handle.write(str(os.getpid()))
            handle.flush()
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


@dataclass
class RunResult:
    """What :func:`run_benchmark` did: the full table (ordered), rows scored now / found done, failures."""

    table: pd.DataFrame
    scored: int
    resumed: int
    failed: int
    stopped: bool
    wall_seconds: float


def run_benchmark(settings: BenchSettings, gt: GroundTruth, out_dir: str | os.PathLike, *, data_dir: Any = None,
                  device: str | torch.device | None = None, progress: bool = True,
                  on_row: Callable[[int, dict[str, Any]], None] | None = None,
                  stop_after: int | None = None) -> RunResult:
    """Score every architecture of ``gt`` (already sampled) and append its row to ``<out_dir>/table.csv``.

    Resumes a table made with the same ``settings`` (``bench.json``); refuses one made with other settings.
    ``on_row(sample_index, row)`` is called after each row is written; it may raise :class:`StopRun`.
    ``stop_after`` stops after that many newly scored rows (for tests of resumption).
    A network whose scoring raises a runtime error (e.g. out of memory) gets a row of NaN with the error in
    ``status``; invalid settings (``ValueError``) stop the run. A second process on the same ``out_dir`` is
    refused while the first runs (:func:`exclusive_run`).
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    with exclusive_run(out):
        return run_rows(settings, gt, out, data_dir=data_dir, device=device, progress=progress, on_row=on_row,
                        stop_after=stop_after)


def run_rows(settings: BenchSettings, gt: GroundTruth, out: Path, *, data_dir: Any = None,
             device: str | torch.device | None = None, progress: bool = True,
             on_row: Callable[[int, dict[str, Any]], None] | None = None, stop_after: int | None = None,
             table_name: str = "table.csv", meta_name: str = "bench.json",
             positions: Sequence[int] | None = None, run_info: Mapping[str, Any] | None = None) -> RunResult:
    """The body of :func:`run_benchmark`, for a caller that already holds the folder's lock.

    ``positions``: the sample positions this table is for (default: all of ``gt``); ``table_name`` /
    ``meta_name``: its files in ``out``; ``run_info`` is added to the settings file (e.g. which shard).
    The returned table holds this table's rows only.
    """
    from tqdm.auto import tqdm

    from lswag_lightning.spaces import get_space

    meta_path = out / meta_name
    table_path = out / table_name
    check_settings(out, settings, table_name=table_name, meta_name=meta_name)
    dev = torch.device(device or default_device())
    previous_runs = json.loads(meta_path.read_text()).get("runs", []) if meta_path.exists() else []
    this_run = {"device": str(dev), "torch": torch.__version__, "python": platform.python_version(),
                "threads": torch.get_num_threads(), "started": time.strftime("%Y-%m-%d %H:%M:%S")}
    if dev.type == "cuda":
        this_run["device_name"] = torch.cuda.get_device_name(dev)
    meta = {"settings": settings.fingerprint(), "score_options_source": settings.score_options_source,
            "gt_source": settings.gt_source, "columns": TABLE_DOC, **dict(run_info or {}), **this_run,
            "runs": [*previous_runs, this_run]}
    meta_path.write_text(json.dumps(meta, indent=2))

    space = get_space(settings.space)
    columns = table_columns(gt, settings.proxies)
    table_file = TableFile(table_path, columns)
    archs = gt.table["arch"].tolist()
    planned = list(range(len(archs))) if positions is None else [int(p) for p in positions]
    wanted = set(planned)
    for index, arch in table_file.done.items():
        if index not in wanted or index >= len(archs) or archs[index] != arch:
            raise ValueError(f"{table_path}: row sample_index={index} holds {arch!r}, which is not a planned "
                             "architecture of this table; it belongs to another sample. Use another --out folder")
    todo = [i for i in planned if i not in table_file.done]
    x, y = load_probe_batch(data_dir, settings.batch_size, settings.probe_seed, settings.img_size)
    x, y = x.to(dev), y.to(dev)
    start = time.perf_counter()
    scored = failed = 0
    stopped = False
    bar = tqdm(total=len(planned), initial=len(planned) - len(todo), unit="arch", disable=not progress,
               desc=f"{settings.benchmark}", dynamic_ncols=True)
    try:
        with _float32_exact():
            for index in todo:
                record = gt.table.iloc[index]
                arch = archs[index]
                seed = arch_seed(arch, settings.init_seed_base)
                row: dict[str, Any] = {"sample_index": index, "arch": arch, "space": settings.space,
                                       "init_seed": seed}
                for col in (*gt.id_columns, *gt.accuracy_columns):
                    row[col] = record[col]
                try:
                    row.update(score_architecture(space, arch, x, y, settings.proxies, settings.build_options,
                                                  settings.score_options, dev, seed))
                except ValueError:
                    raise
                except (RuntimeError, MemoryError) as exc:  # e.g. CUDA out of memory: record and go on
                    log.warning("%s: scoring failed: %s", arch, exc)
                    row["status"] = f"error: {type(exc).__name__}: {str(exc).splitlines()[0][:300]}"
                    if dev.type == "cuda":
                        torch.cuda.empty_cache()
                    failed += 1
                table_file.append(row)
                scored += 1
                bar.update(1)
                bar.set_postfix(sec=f"{row.get('total_seconds', math.nan):.2f}", refresh=False)
                if on_row is not None:
                    on_row(index, row)
                if stop_after is not None and scored >= stop_after:
                    raise StopRun(f"stopped after {scored} architectures (stop_after)")
    except (StopRun, KeyboardInterrupt) as exc:
        stopped = True
        log.warning("run interrupted (%s); %d rows written, rerun the same command to resume",
                    type(exc).__name__, len(table_file.done) + scored)
    finally:
        bar.close()
    this_run["rows_scored"] = scored
    meta_path.write_text(json.dumps(meta, indent=2))
    return RunResult(read_table(table_path), scored, len(planned) - len(todo), failed, stopped,
                     time.perf_counter() - start)


# ------------------------------------------------------------------------------------------------- report
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


# ------------------------------------------------------------------------------------------- plan helpers
def benchmark_ground_truth(benchmark: str, data_dir: Any = None, *, nb201_set: str = "all",
                           space: str | None = None, gt_file: str | os.PathLike | None = None,
                           arch_column: str | None = None,
                           accuracy_columns: Iterable[str] = ()) -> GroundTruth:
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
