"""The demo's published-truth section: NAS-Bench-201 cells scored on an embedded probe vs their published accuracy.

The sweep of ``make demo`` ranks candidates by accuracy after a short CPU budget; this section ranks them against a
ground truth nobody can argue with: the 200-epoch test accuracies NAS-Bench-201 publishes for CIFAR-10, CIFAR-100
and ImageNet16-120. It needs no data folder: the cells and their accuracies ship with the package
(``resources/nb201_demo_cells.csv``, provenance and licence in ``resources/README.md``) and the probe batch is made
from scikit-learn's digits (no download).

Protocol: every cell is built in a shortened benchmark skeleton (:data:`BUILD_OPTIONS`: the benchmark's C=16
channels, one cell per stage instead of five; the cell, the searched part, is the benchmark's), initialised from a
seed derived from its arch string (:func:`lswag_lightning.bench.arch_seed`), and scored in train() mode by
:func:`lswag_lightning.score_network` on one probe batch; the same batch serves all three accuracy columns. Then
Spearman ρ per proxy and accuracy column, and LIBRA's held-out ρ (20 random halves) beside the best single proxy.
Deterministic on one device: same cells, same seeds, same batch.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

CELLS_FILE = Path(__file__).resolve().parents[1] / "resources" / "nb201_demo_cells.csv"
#: Published accuracy columns of the cells file (%, NAS-Bench-201 200-epoch test accuracy).
ACCURACIES = ("cifar10_test_acc", "cifar100_test_acc", "imagenet16_120_test_acc")
#: The classic proxies the demo scores (the zero_cost callback's list).
PROXIES = ("lswag", "zico", "swap", "naswot", "synflow", "snip", "grad_norm", "jacov", "params", "flops")
#: Skeleton of the scored networks: benchmark width, one cell per stage (5x cheaper than N=5 on a CPU).
BUILD_OPTIONS = {"C": 16, "N": 1, "num_classes": 10, "in_chans": 3}
PROBE_SIZE = 32
PROBE_BATCH = 64


def load_cells(path: str | Path | None = None) -> pd.DataFrame:
    """The shipped cells: ``nb201_index``, ``arch`` and the three accuracies of :data:`ACCURACIES`, file order."""
    path = Path(path) if path is not None else CELLS_FILE
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} is missing; it ships with the package (reinstall, or regenerate it with draw_cells() "
            "from the NAS-Bench-201 table: resources/README.md)"
        )
    table = pd.read_csv(path)
    missing = [c for c in ("nb201_index", "arch", *ACCURACIES) if c not in table.columns]
    if missing:
        raise ValueError(f"{path} lacks the columns {missing}; expected nb201_index, arch, {', '.join(ACCURACIES)}")
    return table


def draw_cells(n: int = 200, seed: int = 0, data_dir: str | Path | None = None) -> pd.DataFrame:
    """How :data:`CELLS_FILE` was drawn: the ``n`` cells of ``lswag-bench nb201 --sample n --seed seed`` (indices
    ``numpy.random.default_rng(seed).choice(15625, n, replace=False)``), sorted by NB201 index, with their published
    test accuracies from the data folder's NB201 table. ``draw_cells().to_csv(CELLS_FILE, index=False)`` rewrites
    the shipped file byte for byte."""
    from lswag_lightning.bench.ground_truth import load_nb201_ground_truth, sample_ground_truth

    gt = sample_ground_truth(load_nb201_ground_truth(data_dir), n, seed)
    cells = gt.table.sort_values("nb201_index").reset_index(drop=True)
    return cells[["nb201_index", "arch", *ACCURACIES]]


def digits_probe(
    batch_size: int = PROBE_BATCH, img_size: int = PROBE_SIZE, seed: int = 0
) -> tuple[torch.Tensor, torch.Tensor]:
    """A probe batch from scikit-learn's digits: float32 (B, 3, img_size, img_size) and int64 labels (B,).

    ``batch_size`` images drawn without replacement (``numpy.random.default_rng(seed)``), scaled to [0, 1],
    resized bilinearly from 8x8, repeated to 3 channels and standardised to zero mean / unit std over the batch.
    """
    from sklearn.datasets import load_digits

    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or not 2 <= batch_size <= 1797:
        raise ValueError(f"batch_size must be an integer in 2..1797 (digits has 1797 images), got {batch_size!r}")
    if isinstance(img_size, bool) or not isinstance(img_size, int) or img_size < 8:
        raise ValueError(f"img_size must be an integer >= 8 (digits are 8x8), got {img_size!r}")
    digits = load_digits()
    index = np.random.default_rng(seed).permutation(len(digits.target))[:batch_size]
    x = torch.from_numpy(digits.images[index].astype(np.float32) / 16.0)[:, None]
    if img_size != 8:
        x = torch.nn.functional.interpolate(x, size=(img_size, img_size), mode="bilinear", align_corners=False)
    x = x.repeat(1, 3, 1, 1)
    x = (x - x.mean()) / x.std()
    return x, torch.from_numpy(digits.target[index].astype(np.int64))


def _score_chunk(
    archs: Sequence[str],
    x: torch.Tensor,
    y: torch.Tensor,
    proxies: Sequence[str],
    build_options: Mapping[str, Any],
    device: str,
) -> list[dict[str, Any]]:
    """Score ``archs`` one after the other in this process (1 torch thread on a CPU)."""
    from lswag_lightning.bench import arch_seed, table_row_values
    from lswag_lightning.spaces import get_space

    if device == "cpu":
        torch.set_num_threads(1)
    space, dev = get_space("nb201"), torch.device(device)
    x, y = x.to(dev), y.to(dev)
    return [table_row_values(space, arch, x, y, proxies, build_options, {}, dev, arch_seed(arch)) for arch in archs]


def score_cells(
    cells: pd.DataFrame,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    proxies: Sequence[str] = PROXIES,
    build_options: Mapping[str, Any] | None = None,
    device: str | None = None,
    jobs: int = 1,
) -> pd.DataFrame:
    """``cells`` with one column per proxy value (and ``params``, ``status``, timing columns) added, same order.

    On a CPU ``jobs`` worker processes score interleaved slices of the cells (1 thread each); on a GPU one
    process scores them all. Values do not depend on ``jobs``: each cell has its own init seed.
    """
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    options = dict(BUILD_OPTIONS, img_size=int(x.shape[-1]), **dict(build_options or {}))
    archs = list(cells["arch"])
    jobs = max(1, min(int(jobs), len(archs))) if device == "cpu" else 1
    if jobs == 1:
        rows = _score_chunk(archs, x, y, proxies, options, device)
    else:
        slices = [archs[k::jobs] for k in range(jobs)]
        with ProcessPoolExecutor(jobs, mp_context=get_context("spawn")) as pool:
            parts = list(
                pool.map(
                    _score_chunk, slices, [x] * jobs, [y] * jobs, [proxies] * jobs, [options] * jobs, [device] * jobs
                )
            )
        rows = [None] * len(archs)
        for k, part in enumerate(parts):
            rows[k::jobs] = part
    scores = pd.DataFrame(rows, index=cells.index)
    return pd.concat([cells, scores[[c for c in scores.columns if c not in cells.columns]]], axis=1)


def _finite(value: float) -> float | None:
    return float(value) if value is not None and math.isfinite(value) else None


def published_summary(
    table: pd.DataFrame, proxies: Sequence[str] = PROXIES, *, n_splits: int = 20, seed: int = 0
) -> dict[str, Any]:
    """``{"n", "spearman": {accuracy: {proxy: ρ}}, "libra_heldout": {accuracy: {...}}}`` of a scored table.

    ρ is over the rows where the proxy is finite (disconnected cells make NASWOT / synflow / jacov non-finite).
    ``libra_heldout[accuracy]``: ``libra`` and ``best_single`` (mean and std of the held-out ρ over ``n_splits``
    random halves), ``choice`` (LIBRA's proxies chosen on all rows) and ``n`` (rows used); ``error`` instead when
    LIBRA cannot run. None stands for an undefined ρ.
    """
    from lswag_lightning.analysis.correlations import spearman
    from lswag_lightning.analysis.libra import evaluate

    out: dict[str, Any] = {"n": int(len(table)), "spearman": {}, "libra_heldout": {}}
    for acc in ACCURACIES:
        y = table[acc].to_numpy(float)
        rhos = {}
        for proxy in proxies:
            v = table[proxy].to_numpy(float)
            ok = np.isfinite(v) & np.isfinite(y)
            rhos[proxy] = _finite(spearman(v[ok], y[ok])) if ok.sum() >= 3 else None
        out["spearman"][acc] = rhos
        try:
            ev = evaluate(table, list(proxies), acc, "params", n_splits=n_splits, seed=seed)
        except ValueError as err:
            out["libra_heldout"][acc] = {"error": str(err)}
            continue
        s = ev.summary()
        out["libra_heldout"][acc] = {
            "libra": {"mean": _finite(s["libra"]["mean"]), "std": _finite(s["libra"]["std"])},
            "best_single": {"mean": _finite(s["best_single"]["mean"]), "std": _finite(s["best_single"]["std"])},
            "choice": list(ev.selection.proxies),
            "n": int(ev.n_rows),
        }
    return out


def format_published(summary: Mapping[str, Any], proxies: Sequence[str] = PROXIES) -> str:
    """The published-truth table for a terminal: one row per proxy, one column per dataset, LIBRA below."""
    short = {
        "cifar10_test_acc": "CIFAR-10",
        "cifar100_test_acc": "CIFAR-100",
        "imagenet16_120_test_acc": "ImageNet16-120",
    }
    lines = [
        f"Spearman ρ with the published 200-epoch test accuracy, {summary['n']} NAS-Bench-201 cells:",
        f"{'proxy':<22}" + "".join(f"{short[a]:>16}" for a in ACCURACIES),
        "-" * 70,
    ]

    def fmt(v: Any) -> str:
        return "n/a" if v is None else f"{v:.3f}"

    order = sorted(proxies, key=lambda p: -(summary["spearman"][ACCURACIES[0]].get(p) or -2))
    for p in order:
        lines.append(f"{p:<22}" + "".join(f"{fmt(summary['spearman'][a].get(p)):>16}" for a in ACCURACIES))
    for label, key in (("LIBRA held-out", "libra"), ("best single held-out", "best_single")):
        cells = []
        for a in ACCURACIES:
            ev = summary["libra_heldout"][a]
            cells.append("n/a" if "error" in ev else f"{fmt(ev[key]['mean'])} ± {fmt(ev[key]['std'])}")
        lines.append(f"{label:<22}" + "".join(f"{c:>16}" for c in cells))
    choices = {a: summary["libra_heldout"][a].get("choice") for a in ACCURACIES}
    lines.append(
        "LIBRA's choice on all cells: "
        + "; ".join(f"{short[a]}: {', '.join(c) if c else 'n/a'}" for a, c in choices.items())
    )
    return "\n".join(lines)
