"""Cross-check of the proxy engine against NAS-Bench-Suite-Zero's published NAS-Bench-201 proxy values.

For the CIFAR-10 rows of ``nb201/zc_nasbench201_subset_naslib_flat.csv`` (724 random NB201 cells with the values
NASLib computed), this script builds each exact NB201 network with ``get_space("nb201")``, scores it with
``lswag_lightning.score_network`` on one fixed batch of real CIFAR-10 training images, and reports per proxy the
Spearman ρ and Kendall τ between our values and the published ones. Agreement is about *rankings*: units may
differ (FLOPs: we count a multiply-add as 2 FLOPs, NASLib reports MFLOPs of its own counter; params: a count vs
millions) without changing ρ.

Protocol (NASLib's, reconstructed from its code and from the published values themselves):
- Data: CIFAR-10 *training* images (``images/cifar10_train_part{0,1}.npz``, shuffled with ``--seed``; the files
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
second time with another batch and init and adds our own seed-to-seed ρ, the ceiling sampling noise allows):

    .venv/bin/python recipes/nb201_published_check.py --threads 1 --out runs/nb201_published
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from lswag_lightning import score_network
from lswag_lightning.analysis.correlations import kendall, spearman
from lswag_lightning.analysis.published import COUNTERPARTS, load_nb201_flat
from lswag_lightning.probe import crop_and_flip  # noqa: F401 (NASLib's transform)
from lswag_lightning.probe import naslib_normalise as normalise  # noqa: F401 (re-exported for the tests)
from lswag_lightning.probe import probe_batch as draw_probe
from lswag_lightning.spaces import get_space

#: factor bringing our value into the published unit before the ratio ours/published (FLOPs -> MFLOPs).
UNIT_SCALE: dict[str, float] = {"flops": 1e-6}
#: the proxies the issue requires to reach ``TARGET_SPEARMAN``.
TARGET_PROXIES: tuple[str, ...] = ("naswot", "synflow", "snip", "grad_norm")
TARGET_SPEARMAN = 0.9
#: NASLib's ZeroCost predictor stores this value when a score is NaN or infinite.
NASLIB_FAILURE = -1e8
#: CIFAR-10 channel mean and std (RGB, in [0, 1] units) as in NASLib's ``_data_transforms_cifar10``.
NASLIB_BATCH_SIZE = 32


# ----------------------------------------------------------------------------------------------------- data
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


def probe_batch(
    data_dir: str | Path | None = None, batch_size: int = NASLIB_BATCH_SIZE, seed: int = 0, augment: bool = True
) -> tuple[torch.Tensor, torch.Tensor]:
    """One fixed batch: ``batch_size`` shuffled training images (seeded), augmented as NASLib, normalised: the
    ``naslib`` protocol of :func:`lswag_lightning.probe.probe_batch`. Returns float32 (batch_size, 3, 32, 32)
    inputs and int64 (batch_size,) labels."""
    return draw_probe("naslib", data_dir=data_dir, batch_size=batch_size, seed=seed, augment=augment)


def default_device() -> str:
    return "cuda" if torch.cuda.is_available() else "cpu"


# ---------------------------------------------------------------------------------------------------- scoring
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

    Each network is built with ``torch.manual_seed(seed)`` just before ``get_space("nb201").build`` (10
    classes), so its initialisation does not depend on which other architectures were scored; the caller's CPU
    random state is restored afterwards. ``progress(i, n, seconds_so_far)`` is called after each architecture.
    A ``seconds`` column holds each scoring session's wall time.
    """
    proxies = validate_proxies(proxies)
    space = get_space("nb201")
    inputs, targets = inputs.to(device), targets.to(device)
    rows, start = [], time.perf_counter()
    with torch.random.fork_rng(devices=[]):  # the caller's CPU generator is left as it was
        for i, arch in enumerate(archs):
            torch.manual_seed(seed)
            model = space.build(arch, num_classes=10).to(device)
            report = score_network(model, inputs, targets, proxies, seed=seed, copy_model=False)
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
    inputs, targets = probe_batch(data_dir, batch_size, seed, augment)
    ours = score_architectures(archs, inputs, targets, proxies, device=device, seed=seed, progress=progress)
    summary = compare(ours, published, proxies)
    values = pd.DataFrame({"arch": published["arch"], "nb201_index": published["nb201_index"]})
    for proxy in proxies:
        values[f"ours.{proxy}"] = ours[proxy]
        values[f"published.{COUNTERPARTS[proxy]}"] = published[COUNTERPARTS[proxy]]
    values["seconds"] = ours["seconds"]
    if noise_seed is not None:
        inputs2, targets2 = probe_batch(data_dir, batch_size, noise_seed, augment)
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


# -------------------------------------------------------------------------------------------------------- CLI
def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--data-dir",
        default=None,
        help="ground-truth folder holding nb201/ and images/ (default: $LSWAG_DATA_DIR or ../shared/data)",
    )
    parser.add_argument(
        "--limit",
        type=_positive_int,
        default=None,
        help="score the first N CIFAR-10 rows of the published file (default: all 724)",
    )
    parser.add_argument(
        "--batch-size",
        type=_positive_int,
        default=NASLIB_BATCH_SIZE,
        help=f"probe batch size (default {NASLIB_BATCH_SIZE}: the one NASLib used for the file)",
    )
    parser.add_argument("--device", default=None, help="torch device (default: cuda if available, else cpu)")
    parser.add_argument(
        "--proxies",
        nargs="+",
        default=list(COUNTERPARTS),
        help=f"our proxies to check (default: all with a counterpart: {' '.join(COUNTERPARTS)})",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the batch, the augmentation and each init")
    parser.add_argument(
        "--noise-seed",
        type=int,
        default=None,
        help="also score every architecture with this second seed (another batch and init) and "
        "report our own seed-to-seed Spearman, the ceiling NASLib's per-arch sampling allows",
    )
    parser.add_argument(
        "--no-augment", dest="augment", action="store_false", help="skip NASLib's random crop + flip of the probe batch"
    )
    parser.add_argument("--threads", type=_positive_int, default=1, help="torch CPU threads (default 1)")
    parser.add_argument(
        "--out", default=None, help="folder for values.csv (per architecture), summary.csv and summary.md"
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    torch.set_num_threads(args.threads)
    proxies = validate_proxies(args.proxies)

    def progress(done: int, total: int, seconds: float) -> None:
        if done % 50 == 0 or done == total:
            print(f"[{done}/{total}] {seconds:.0f} s", file=sys.stderr, flush=True)

    values, summary = run_check(
        args.data_dir,
        limit=args.limit,
        batch_size=args.batch_size,
        proxies=proxies,
        device=args.device,
        seed=args.seed,
        augment=args.augment,
        noise_seed=args.noise_seed,
        progress=progress,
    )
    protocol = (
        f"{len(values)} NB201 CIFAR-10 architectures, batch {args.batch_size} of CIFAR-10 training images"
        f" ({'random crop + flip, ' if args.augment else ''}CIFAR mean/std), seed {args.seed}, "
        f"{values['seconds'].sum():.0f} s of scoring"
        + (f" (noise seed {args.noise_seed})" if args.noise_seed is not None else "")
    )
    table = markdown_table(summary)
    print(protocol)
    print(table)
    if args.out:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        values.to_csv(out / "values.csv", index=False)
        summary.to_csv(out / "summary.csv", index=False)
        (out / "summary.md").write_text(f"{protocol}\n\n{table}\n")
        print(f"wrote {out / 'values.csv'}, {out / 'summary.csv'}, {out / 'summary.md'}")
    missed = summary[summary["meets_target"] == False]  # noqa: E712 (None = no target)
    return 1 if len(missed) else 0


if __name__ == "__main__":
    sys.exit(main())
