"""Cross-check of the proxy engine against NAS-Bench-Suite-Zero's published NAS-Bench-201 proxy values.

For the CIFAR-10 rows of ``nb201/zc_nasbench201_subset_naslib_flat.csv`` (724 random NB201 cells with the values NASLib
computed), ``lswag-bench nb201 --vs-published`` builds each exact NB201 network with ``get_space("nb201")``, scores it
with ``lswag_lightning.score_network`` on one fixed batch of real CIFAR-10 training images, and reports per proxy the
Spearman ρ and Kendall τ between our values and the published ones. Agreement is about *rankings*: units may differ
(FLOPs: we count a multiply-add as 2 FLOPs, NASLib reports MFLOPs of its own counter; params: a count vs millions)
without changing ρ.

Protocol (NASLib's, reconstructed from its code and from the published values themselves):
- Data: CIFAR-10 *training* images (``images/cifar10_train_part{0,1}.npz``, shuffled with ``--probe-seed``; the files
  are sorted by class), NASLib's training transform: 4-pixel zero-padded random 32x32 crop and random horizontal
  flip (``--no-augment`` turns it off), then the standard CIFAR-10 mean/std normalisation NASLib uses.
- Batch: 32 images. NASLib's ``zc_config.yaml`` sets ``batch_size: 32``, and the published values confirm it:
  NASLib's jacov is ``-Σ_i log(v_i + k) + 1/(v_i + k)`` over the eigenvalues of the batch's Jacobian correlation
  matrix, and each term is >= 1, so the published maximum of -32.23 implies 32 samples (batch 64 would cap it
  at -64); NASWOT's log-determinant is about 405 at batch 32 and 805 at batch 64 for the same cell, and the file
  holds ~406. (METHOD.md's batch of 64 is the L-SWAG paper's setting, not this file's.)
- Model: default PyTorch initialisation, seeded per architecture (``torch.manual_seed(seed)`` before building),
  train() mode for the batch proxies (BatchNorm on batch statistics), loss = cross-entropy with the true labels.
- Proxies (``COUNTERPARTS``): our ``naswot`` vs their ``nwot`` (the same Hamming kernel of ReLU codes, log|det|),
  ``synflow`` (both report the natural log of the SynFlow sum; we run it in eval mode, where freshly initialised
  BatchNorms are the identity up to 1/sqrt(1 + eps), NASLib replaces BatchNorm by the identity), ``snip`` and
  ``grad_norm`` (Σ |θ ⊙ g| and Σ_layers ||g||₂ over Conv2d/Linear weights, as NASLib), ``jacov`` (same formula,
  NASLib's jitter k = 1e-5), ``flops`` and ``params``.
- NASLib drew a new random batch and a new initialisation for every architecture; we use one batch and one seed
  for all, so part of the remaining disagreement is NASLib's own sampling noise.

Rows where either side is not a finite number (NASLib stores -1e8 for a NaN/inf score, -inf for a singular
NWOT kernel and an unlogged 0 for a zero SynFlow sum; we report NaN / -inf) are left out of that proxy's
correlation and counted (``n_excluded``; ``n_both_failed`` says how many of them failed on both sides). The
summary also gives the median of ours / published (ours in the published unit): near 1 means the same quantity
on the same kind of batch, not only the same ranking.

Run (about 0.5-1 s per architecture for all proxies on one CPU thread; ``--noise-seed 1`` scores everything a
second time with another batch and init and adds our own seed-to-seed ρ, the ceiling sampling noise allows)::

    lswag-bench nb201 --vs-published --threads 1 --out runs/nb201_published
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from lswag_lightning.analysis.correlations import kendall, spearman
from lswag_lightning.analysis.published import COUNTERPARTS, load_nb201_flat
from lswag_lightning.bench.settings import default_device
from lswag_lightning.candidates import score_candidate
from lswag_lightning.probe import probe_batch
from lswag_lightning.spaces import get_space

#: factor bringing our value into the published unit before the ratio ours/published (FLOPs -> MFLOPs).
UNIT_SCALE: dict[str, float] = {"flops": 1e-6}
#: the proxies that must reach ``TARGET_SPEARMAN``.
TARGET_PROXIES: tuple[str, ...] = ("naswot", "synflow", "snip", "grad_norm")
TARGET_SPEARMAN = 0.9
#: NASLib's ZeroCost predictor stores this value when a score is NaN or infinite.
NASLIB_FAILURE = -1e8
#: NASLib's probe batch size for the published values (its ``zc_config.yaml``; confirmed by the values, see above).
NASLIB_BATCH_SIZE = 32


def load_published(data_dir: str | Path | None = None, limit: int | None = None) -> pd.DataFrame:
    """The CIFAR-10 rows of the NASLib NB201 table, in file order, at most ``limit`` of them.

    Columns: ``arch`` (NB201 arch string), ``nb201_index``, ``val_accuracy`` and the published proxy columns
    named in :data:`COUNTERPARTS` (``params`` as a count of parameters).
    """
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        raise ValueError(f"limit must be a positive integer (or None for all rows), got {limit!r}")
    table = load_nb201_flat("cifar10", data_dir).table
    missing = [c for c in ("arch", "nb201_index", *COUNTERPARTS.values()) if c not in table.columns]
    if missing:
        raise ValueError(
            f"the published NB201 table lacks the columns {missing}; expected the NASLib flat CSV "
            "described in the data README (§3)"
        )
    table = table.reset_index(drop=True)
    return table if limit is None else table.head(limit).reset_index(drop=True)


def validate_proxies(proxies: Sequence[str]) -> list[str]:
    """Our proxy names, checked against :data:`COUNTERPARTS` (``ValueError`` naming the valid ones)."""
    names = list(dict.fromkeys(proxies))
    unknown = [p for p in names if p not in COUNTERPARTS]
    if unknown or not names:
        raise ValueError(
            f"proxies {unknown or '(none)'} have no published NASLib counterpart; choose from {', '.join(COUNTERPARTS)}"
        )
    return names


def score_architectures(
    archs: Sequence[str],
    inputs: torch.Tensor,
    targets: torch.Tensor,
    proxies: Sequence[str],
    *,
    device: str | torch.device = "cpu",
    seed: int = 0,
    progress: Callable[[int, int, float], None] | None = None,
) -> pd.DataFrame:
    """Our values of ``proxies`` for each NB201 arch string: a frame with ``arch`` and one column per proxy.

    Each network is built by :func:`lswag_lightning.candidates.score_candidate` under torch seed ``seed`` (10 classes;
    NASLib seeds every architecture alike, not from its arch string), so its initialisation does not depend on which
    other architectures were scored; the caller's CPU random state is left as it was. ``progress(i, n, seconds_so_far)``
    is called after each architecture. A ``seconds`` column holds each scoring session's wall time.
    """
    proxies = validate_proxies(proxies)
    space = get_space("nb201")
    inputs, targets = inputs.to(device), targets.to(device)
    rows, start = [], time.perf_counter()
    for i, arch in enumerate(archs):
        scored = score_candidate(
            space,
            arch,
            inputs,
            targets,
            proxies,
            device=device,
            build_options={"num_classes": 10},
            score_options={"seed": seed},
            seed=seed,
        )
        report = scored.report
        rows.append({"arch": arch, **{p: report.values[p] for p in proxies}, "seconds": report.total_seconds})
        if progress is not None:
            progress(i + 1, len(archs), time.perf_counter() - start)
    return pd.DataFrame(rows, columns=["arch", *proxies, "seconds"])


def _usable(values: np.ndarray) -> np.ndarray:
    return np.isfinite(values) & (values != NASLIB_FAILURE)


def compare(ours: pd.DataFrame, published: pd.DataFrame, proxies: Sequence[str]) -> pd.DataFrame:
    """Per proxy: Spearman ρ and Kendall τ-b between our values and the published counterpart, row by row.

    ``ours`` and ``published`` are aligned by position and must hold the same ``arch`` column. Rows where
    either value is not finite (or is NASLib's failure marker -1e8; a published synflow of exactly 0 is NASLib's
    unlogged zero sum, i.e. log 0 = -inf) are left out and counted in
    ``n_excluded``; ``n_both_failed`` counts those that failed on both sides. ``median_ratio`` is the median of
    ours / published over the kept rows with a non-zero published value, ours first put in the published unit
    (:data:`UNIT_SCALE`): close to 1 when both sides compute the same quantity on the same kind of batch, not
    just the same ranking. ``meets_target`` is set for :data:`TARGET_PROXIES` only.
    """
    proxies = validate_proxies(proxies)
    if len(ours) != len(published) or list(ours["arch"]) != list(published["arch"]):
        raise ValueError("ours and published must list the same architectures in the same order")
    rows = []
    for proxy in proxies:
        column = COUNTERPARTS[proxy]
        a = ours[proxy].to_numpy(dtype=float)
        b = published[column].to_numpy(dtype=float)
        if column == "synflow":  # NASLib logs the SynFlow sum but returns a zero sum unlogged: that is log 0
            b = np.where(b == 0, -np.inf, b)
        ok_a, ok_b = _usable(a), _usable(b)
        keep = ok_a & ok_b
        rho = spearman(a[keep], b[keep])
        nonzero = keep & (b != 0)
        scaled = a[nonzero] * UNIT_SCALE.get(proxy, 1.0)
        ratio = float(np.median(scaled / b[nonzero])) if nonzero.any() else math.nan
        rows.append(
            {
                "proxy": proxy,
                "published": column,
                "n": int(keep.sum()),
                "n_excluded": int((~keep).sum()),
                "n_both_failed": int((~ok_a & ~ok_b).sum()),
                "spearman": rho,
                "kendall": kendall(a[keep], b[keep]),
                "median_ratio": ratio,
                "meets_target": (bool(rho >= TARGET_SPEARMAN) if proxy in TARGET_PROXIES else None),
            }
        )
    return pd.DataFrame(rows)


def markdown_table(summary: pd.DataFrame) -> str:
    """The summary as a markdown table (proxy, published column, n, excluded, Spearman, Kendall, [our
    seed-to-seed Spearman,] median ratio, target)."""
    noise = "spearman_self" in summary.columns
    header = [
        "our proxy",
        "NASLib column",
        "n",
        "excluded",
        "Spearman ρ",
        "Kendall τ",
        *(["ρ ours vs ours (other seed)"] if noise else []),
        "median ours/published",
        "target ρ ≥ 0.9",
    ]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in summary.itertuples():
        target = "—" if row.proxy not in TARGET_PROXIES else ("met" if row.meets_target else "MISSED")
        excluded = f"{row.n_excluded} ({row.n_both_failed} failed on both sides)" if row.n_excluded else "0"
        cells = [
            row.proxy,
            row.published,
            str(row.n),
            excluded,
            f"{row.spearman:.3f}",
            f"{row.kendall:.3f}",
            *([f"{row.spearman_self:.3f}"] if noise else []),
            f"{row.median_ratio:.3f}",
            target,
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def run_check(
    data_dir: str | Path | None = None,
    *,
    limit: int | None = None,
    batch_size: int = NASLIB_BATCH_SIZE,
    proxies: Sequence[str] = tuple(COUNTERPARTS),
    device: str | torch.device | None = None,
    seed: int = 0,
    augment: bool = True,
    noise_seed: int | None = None,
    progress: Callable[[int, int, float], None] | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Score the first ``limit`` published CIFAR-10 architectures and compare; returns (values, summary).

    ``values`` has per architecture ``arch``, ``nb201_index``, ``ours.<proxy>``, ``published.<column>`` and
    ``seconds``; ``summary`` is :func:`compare`'s table. With ``noise_seed`` every architecture is scored a
    second time with another batch and initialisation (that seed): ``values`` gains ``ours_noise.<proxy>``
    and ``summary`` gains ``spearman_self``, Spearman ρ between our two runs — the agreement the proxy's own
    sampling noise allows, to read a low ρ against (NASLib drew a new batch and init for every architecture).
    """
    proxies = validate_proxies(proxies)
    if noise_seed is not None and noise_seed == seed:
        raise ValueError(f"noise_seed must differ from seed ({seed}) to measure the proxies' sampling noise")
    device = device or default_device()
    published = load_published(data_dir, limit)
    archs = list(published["arch"])
    inputs, targets = probe_batch("naslib", data_dir=data_dir, batch_size=batch_size, seed=seed, augment=augment)
    ours = score_architectures(archs, inputs, targets, proxies, device=device, seed=seed, progress=progress)
    summary = compare(ours, published, proxies)
    values = pd.DataFrame({"arch": published["arch"], "nb201_index": published["nb201_index"]})
    for proxy in proxies:
        values[f"ours.{proxy}"] = ours[proxy]
        values[f"published.{COUNTERPARTS[proxy]}"] = published[COUNTERPARTS[proxy]]
    values["seconds"] = ours["seconds"]
    if noise_seed is not None:
        inputs2, targets2 = probe_batch(
            "naslib", data_dir=data_dir, batch_size=batch_size, seed=noise_seed, augment=augment
        )
        again = score_architectures(
            archs, inputs2, targets2, proxies, device=device, seed=noise_seed, progress=progress
        )
        self_rho = []
        for proxy in proxies:
            values[f"ours_noise.{proxy}"] = again[proxy]
            a, b = ours[proxy].to_numpy(dtype=float), again[proxy].to_numpy(dtype=float)
            keep = np.isfinite(a) & np.isfinite(b)
            self_rho.append(spearman(a[keep], b[keep]))
        summary.insert(summary.columns.get_loc("kendall") + 1, "spearman_self", self_rho)
    return values, summary
