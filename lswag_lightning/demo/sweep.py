"""The demo's sweep ground truth: candidates spread over model size, and the seed-agreement check.

A proxy-vs-accuracy correlation only means something when the accuracy ranking it is compared with is real, i.e.
reproduces when the same candidates are trained again with another training seed. Two things decide that on a
short CPU budget: how different the candidates are (uniform samples of a space are mostly alike, so their short-
budget accuracies differ by less than seed noise) and the budget itself. This module does the first and measures
the second:

- :func:`spread_indices` picks ``n`` candidates of a space whose parameter counts are spread evenly in rank over a
  pool of the space's own samples. The candidates are still the space's samples: it returns their sampler indices
  (``candidate.index`` of ``lswag-train``, ``space.sample(numpy.random.default_rng([seed, index]))``), so any job
  can be rerun alone with ``lswag-train candidate.index=<i>``.
- :func:`seed_agreement` is the Spearman ρ between the accuracies of the same candidates trained with two seeds.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from lswag_lightning.analysis.correlations import spearman


def spread_indices(
    space: Any, n: int, *, pool: int = 256, seed: int = 0, build_options: Mapping[str, Any] | None = None
) -> list[int]:
    """``n`` sampler indices in ``0..pool-1`` whose candidates span the pool's range of parameter counts.

    The pool is the first ``pool`` samples (``space.sample(default_rng([seed, i]))``); duplicates of an
    architecture keep their first index. Candidates are ordered by (params, arch string) and the ones at ``n``
    evenly spaced rank positions (both ends included) are taken. Returned in ascending index order. Deterministic;
    ``ValueError`` when the pool holds fewer than ``n`` distinct architectures.
    """
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be a positive integer, got {n!r}")
    if isinstance(pool, bool) or not isinstance(pool, int) or pool < n:
        raise ValueError(f"pool must be an integer >= n ({n}), got {pool!r}")
    options = dict(build_options or {})
    seen: dict[str, tuple[int, int]] = {}
    for index in range(pool):
        spec = space.sample(np.random.default_rng([seed, index]))
        arch = space.encode(spec)
        if arch not in seen:
            seen[arch] = (space.param_count(spec, **options), index)
    if len(seen) < n:
        raise ValueError(
            f"the first {pool} samples hold only {len(seen)} distinct architectures, fewer than n={n}; raise pool"
        )
    ordered = sorted(seen.items(), key=lambda item: (item[1][0], item[0]))
    positions = np.unique(np.round(np.linspace(0, len(ordered) - 1, n)).astype(int))
    return sorted(ordered[int(p)][1][1] for p in positions)


def seed_agreement(
    first: pd.DataFrame, second: pd.DataFrame, accuracy: str = "val_acc", key: Sequence[str] = ("space", "arch")
) -> dict[str, dict[str, Any]]:
    """Per space: ``{"n": candidates trained with both seeds, "rho": Spearman of their two accuracies}``.

    ``first`` / ``second`` are result tables (:func:`lswag_lightning.collect.results_table`) of the same
    candidates trained with two training seeds; rows are matched on ``key``. ``rho`` is NaN below 3 pairs.
    """
    for name, table in (("first", first), ("second", second)):
        missing = [c for c in (*key, accuracy) if c not in table.columns]
        if missing:
            raise ValueError(f"the {name} table lacks the columns {missing}")
    pairs = first[[*key, accuracy]].merge(second[[*key, accuracy]], on=list(key), suffixes=("_a", "_b"))
    out: dict[str, dict[str, Any]] = {}
    for space, rows in pairs.groupby("space", sort=True):
        a, b = rows[f"{accuracy}_a"].to_numpy(float), rows[f"{accuracy}_b"].to_numpy(float)
        ok = np.isfinite(a) & np.isfinite(b)
        rho = spearman(a[ok], b[ok]) if ok.sum() >= 3 else math.nan
        out[str(space)] = {"n": int(ok.sum()), "rho": float(rho)}
    return out


def arm_candidates(
    config_dir: str | Path, config_name: str, arm: str, n: int, *, pool: int = 256, overrides: Sequence[str] = ()
) -> tuple[str, list[int]]:
    """``(space name, sampler indices)`` of ``n`` size-spread candidates for one arm (experiment) of a sweep
    config.

    The arm's config is composed as ``lswag-train`` would compose it (Hydra compose API, ``experiment=<arm>``
    plus ``overrides``), so the parameter counts use its build options and its data's image size and channels.
    """
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    from lswag_lightning.job import space_build_options
    from lswag_lightning.spaces import get_space

    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(config_dir=str(Path(config_dir).resolve()), version_base=None):
            cfg = compose(config_name=config_name, overrides=[f"experiment={arm}", *overrides])
    finally:
        GlobalHydra.instance().clear()
    space = get_space(str(cfg.space.name))
    options = space_build_options(cfg.space)
    data = cfg.get("data") or {}
    options.update(img_size=int(data.get("img_size", 32)), in_chans=int(data.get("in_chans", 3)))
    seed = int((cfg.get("candidate") or {}).get("seed", 0))
    return str(cfg.space.name), spread_indices(space, n, pool=pool, seed=seed, build_options=options)


def seed_check_subset(indices: Sequence[int], k: int) -> list[int]:
    """``k`` of ``indices`` at evenly spaced positions of the list (all of them when ``k >= len(indices)``)."""
    indices = list(indices)
    if k >= len(indices):
        return indices
    positions = np.unique(np.round(np.linspace(0, len(indices) - 1, k)).astype(int))
    return [indices[int(p)] for p in positions]


def records_table(records: Sequence[Mapping[str, Any]], accuracy: str = "val_acc") -> pd.DataFrame:
    """``space``, ``arch``, ``seed`` and ``accuracy`` (in %) of finished result.json records."""
    rows = [
        {
            "space": r.get("space"),
            "arch": r.get("arch"),
            "seed": r.get("seed"),
            accuracy: 100.0 * float(r[accuracy]) if r.get(accuracy) is not None else math.nan,
        }
        for r in records
        if r.get("status") == "ok"
    ]
    return pd.DataFrame(rows, columns=["space", "arch", "seed", accuracy])


def _finite(value: Any) -> float | None:
    return float(value) if value is not None and math.isfinite(float(value)) else None


def spaces_summary(
    table: pd.DataFrame, proxies: Sequence[str], accuracy: str, agreement: Mapping[str, Mapping[str, Any]]
) -> dict[str, dict[str, Any]]:
    """``{space: {"n", "seed_agreement_rho", "spearman": {proxy: ρ}}}`` of a collected sweep, spaces sorted.

    ``table`` is the collected result table (:func:`lswag_lightning.collect.results_table`: ``space``, the proxy
    columns, ``accuracy`` in %); ρ per proxy over the space's rows where proxy and accuracy are finite (None when
    undefined or fewer than 3 rows). ``seed_agreement_rho`` comes from :func:`seed_agreement` (None: not measured).
    """
    out = {}
    for space, rows in table.groupby("space", sort=True):
        y = rows[accuracy].to_numpy(float)
        rhos = {}
        for proxy in proxies:
            v = rows[proxy].to_numpy(float) if proxy in rows.columns else np.full(len(rows), math.nan)
            ok = np.isfinite(v) & np.isfinite(y)
            rhos[str(proxy)] = _finite(spearman(v[ok], y[ok])) if ok.sum() >= 3 else None
        out[str(space)] = {
            "n": int(len(rows)),
            "seed_agreement_rho": _finite((agreement.get(str(space)) or {}).get("rho")),
            "spearman": rhos,
        }
    return out


def format_spaces(spaces: Mapping[str, Mapping[str, Any]], accuracy: str = "val_acc", target: float = 0.8) -> str:
    """The per-space headline: candidates, seed agreement (vs ``target``), then proxies by Spearman ρ."""
    lines = []
    for space, s in spaces.items():
        agree = s.get("seed_agreement_rho")
        verdict = (
            "not measured"
            if agree is None
            else f"{agree:.3f} ({'>=' if agree >= target else 'BELOW'} {target}: the accuracy ranking "
            + ("reproduces" if agree >= target else "is partly seed noise; read the ρ below with care")
            + ")"
        )
        rhos = sorted(s["spearman"].items(), key=lambda kv: -(kv[1] if kv[1] is not None else -2))
        lines.append(
            f"{space}: {s['n']} candidates; {accuracy} rank agreement between training seeds 0 and 1: {verdict}"
        )
        lines.append(
            "  Spearman ρ with "
            + accuracy
            + ": "
            + ", ".join(f"{p} {'n/a' if r is None else f'{r:.3f}'}" for p, r in rhos)
        )
    return "\n".join(lines)
