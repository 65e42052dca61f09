"""Search fitness: one zero-cost proxy, or several proxies fused by their ranks within a pool (METHOD.md §6).

A fitness maps the proxy values of a *pool* of architectures to one score per architecture, higher = better,
NaN when it cannot be computed (a NaN fitness ranks below every finite one).

- :class:`ProxyFitness` (``--fitness <proxy>``, e.g. ``lswag``): the proxy's value, negated when the registry
  says lower is better. It does not depend on the pool.
- :class:`LibraFitness` (``--fitness libra``): :func:`lswag_lightning.analysis.libra.fuse` of the chosen proxies
  over the pool: each proxy is oriented, ranked among the pool's architectures (average ranks for ties; rank M =
  best of the M architectures with a finite value), and normalised to r / M in (0, 1]; ``rank_mean`` (default)
  averages those over the proxies, ``log_rank`` (AZ-NAS) sums their logs. An architecture with a NaN in any of the
  proxies gets NaN. Because ranks depend on the pool, the fused fitness of every architecture is recomputed each
  time the pool changes; the search engine documents which pool it uses (all architectures scored so far, by
  default).
- :class:`~lswag_lightning.search.ranking_fitness.RankingFitness` (``--fitness learned --ranking FILE``, ``--fitness
  default``): a ranking fitted by ``lswag-libra --method`` (the learned ranking, ``auto``'s choice, ...) or the
  shipped k = 0 ranking, applied to the pool (:mod:`lswag_lightning.search.ranking_fitness`).
- :class:`FusedFitness` (``--fitness fused``): the same rank fusion over a set of any size (two or more), by
  default ``log_rank``: e.g. the greedy log-rank set that ``lswag-libra --greedy`` grows on validation data
  (:func:`load_greedy_set`), the strongest held-out ranking the tool measures on NAS-Bench-201.

The LIBRA proxies come from the command line (``--libra-proxies a,b,c``) or from a ``lswag-libra`` result
(:func:`load_libra_result`: its ``libra.json``, which holds the selection, the proxies' orientation and the fusion).
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from lswag_lightning.analysis.libra import FUSION_METHODS, fuse
from lswag_lightning.search.fitness_base import Fitness


def _orientation(name: str) -> bool:
    from lswag_lightning.proxies import get_proxy, higher_is_better

    base = name.split(".", 1)[0]
    get_proxy(base)  # ValueError naming the available proxies when unknown
    value = higher_is_better(name)
    return True if value is None else bool(value)


class ProxyFitness(Fitness):
    """A single registered proxy, oriented so that higher is better (``higher_is_better`` overrides the registry)."""

    pool_dependent = False

    def __init__(self, proxy: str, higher_is_better: bool | None = None) -> None:
        self.name = proxy
        self.proxies = (proxy,)
        self.higher_is_better = _orientation(proxy) if higher_is_better is None else bool(higher_is_better)

    def __call__(self, pool: pd.DataFrame) -> np.ndarray:
        values = pool[self.name].to_numpy(dtype=float, na_value=np.nan)
        return values if self.higher_is_better else -values

    def describe(self) -> dict[str, Any]:
        return {
            "type": "proxy",
            "name": self.name,
            "proxies": list(self.proxies),
            "higher_is_better": self.higher_is_better,
        }

    def explain(self) -> str:
        sign = "its value" if self.higher_is_better else "minus its value (the registry says lower is better)"
        return (
            f"Fitness = the zero-cost proxy `{self.name}`: {sign}. It does not depend on the other architectures; "
            "NaN ranks last."
        )


class LibraFitness(Fitness):
    """LIBRA's proxies fused by ranks within the pool (``rank_mean`` or ``log_rank``); see the module docstring."""

    pool_dependent = True
    kind = "libra"

    @staticmethod
    def _check_size(names: list[str]) -> None:
        if not 2 <= len(names) <= 3:
            raise ValueError(
                f"LIBRA fuses 3 proxies (2 when its window held only one candidate); got {len(names)}: "
                f"{names}. Give --libra-proxies a,b,c (or --fitness fused for a set of any size)"
            )

    def __init__(
        self,
        proxies: Sequence[str],
        method: str = "rank_mean",
        higher_is_better: Mapping[str, bool] | None = None,
        source: str = "command line",
    ) -> None:
        names = [str(p).strip() for p in proxies]
        if any(not n for n in names):
            raise ValueError(f"empty proxy name in the LIBRA proxies {list(proxies)}")
        if len(set(names)) != len(names):
            raise ValueError(f"the LIBRA proxies must be distinct, got {names}")
        self._check_size(names)
        if method not in FUSION_METHODS:
            raise ValueError(f"LIBRA fusion must be one of {FUSION_METHODS}, got {method!r}")
        given = dict(higher_is_better or {})
        self.orientation = {n: bool(given[n]) if n in given else _orientation(n) for n in names}
        self.name = self.kind
        self.proxies = tuple(names)
        self.method = method
        self.source = source

    def __call__(self, pool: pd.DataFrame) -> np.ndarray:
        if len(pool) == 0:
            return np.zeros(0)
        return fuse(pool, list(self.proxies), method=self.method, higher_is_better=self.orientation).to_numpy(
            dtype=float
        )

    def describe(self) -> dict[str, Any]:
        return {
            "type": self.kind,
            "name": self.name,
            "proxies": list(self.proxies),
            "method": self.method,
            "higher_is_better": dict(self.orientation),
            "source": self.source,
        }

    def explain(self) -> str:
        flips = [p for p, h in self.orientation.items() if not h]
        how = (
            "the mean of r/M over the proxies, in (0, 1]"
            if self.method == "rank_mean"
            else "the sum of log(r/M) over the proxies (AZ-NAS style), <= 0"
        )
        what = "LIBRA fusion" if self.kind == "libra" else "rank fusion"
        return (
            f"Fitness = {what} of {', '.join(f'`{p}`' for p in self.proxies)} (from {self.source}), "
            f"method `{self.method}`: each proxy is oriented (negated: {', '.join(flips) or 'none'}), ranked "
            "among the M architectures of the pool that have a finite value (average ranks for ties, rank M = "
            f"best) and normalised to r/M; the fitness is {how}. An architecture with a NaN in any proxy gets "
            "NaN and ranks last."
        )


class FusedFitness(LibraFitness):
    """A set of two or more proxies fused by ranks within the pool (``log_rank`` by default, as the greedy sets of
    ``lswag-libra --greedy`` are grown and evaluated); otherwise the same as :class:`LibraFitness`."""

    kind = "fused"

    @staticmethod
    def _check_size(names: list[str]) -> None:
        if len(names) < 2:
            raise ValueError(
                f"a fused fitness needs two or more proxies, got {names}; for one proxy use --fitness "
                f"{names[0] if names else '<proxy>'}"
            )

    def __init__(
        self,
        proxies: Sequence[str],
        method: str = "log_rank",
        higher_is_better: Mapping[str, bool] | None = None,
        source: str = "command line",
    ) -> None:
        super().__init__(proxies, method, higher_is_better, source)


def _read_libra_json(path: str | os.PathLike) -> tuple[Path, Mapping]:
    path = Path(path)
    if path.is_dir():
        path = path / "libra.json"
    if not path.is_file():
        raise FileNotFoundError(
            f"LIBRA result not found: {path} (give the libra.json written by lswag-libra --out DIR, or that folder)"
        )
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise ValueError(f"{path}: not valid JSON ({err.msg})") from None
    if not isinstance(data, Mapping):
        raise ValueError(f"{path}: expected a JSON object, got {type(data).__name__}")
    return path, data


def load_greedy_set(path: str | os.PathLike) -> list[str]:
    """The greedy log-rank set that ``lswag-libra --greedy`` grew on all rows of its table (``in_sample.greedy_set``
    of its ``libra.json``, or that folder); ``ValueError`` when the result has none (run lswag-libra with --greedy)."""
    path, data = _read_libra_json(path)
    text = (data.get("in_sample") or {}).get("greedy_set") if isinstance(data.get("in_sample"), Mapping) else None
    if not text:
        raise ValueError(f"{path}: no greedy set (in_sample.greedy_set); run lswag-libra with --greedy")
    return [p for p in str(text).split(",") if p]


def load_libra_result(path: str | os.PathLike) -> tuple[list[str], dict[str, bool], str]:
    """``(proxies, higher_is_better, fusion)`` from a ``lswag-libra`` result.

    ``path`` is the ``libra.json`` that ``lswag-libra`` writes into its report folder (or that folder). Both its
    full evaluation record (``{"selection": {"proxies": ...}, "fusion": ...}``) and a bare selection
    (``{"proxies": [...], "higher_is_better": {...}}``) are accepted.
    """
    path, data = _read_libra_json(path)
    selection = data.get("selection", data)
    if not isinstance(selection, Mapping) or not isinstance(selection.get("proxies"), list):
        raise ValueError(f"{path}: no LIBRA selection found (expected 'selection.proxies' as written by lswag-libra)")
    proxies = [str(p) for p in selection["proxies"]]
    hib = {str(k): bool(v) for k, v in (selection.get("higher_is_better") or {}).items() if str(k) in proxies}
    fusion = str(data.get("fusion", "rank_mean"))
    if fusion not in FUSION_METHODS:
        fusion = "rank_mean"
    return proxies, hib, fusion


def make_fitness(
    fitness: str,
    *,
    libra_proxies: Sequence[str] | str | None = None,
    libra_result: str | os.PathLike | None = None,
    fusion: str | None = None,
    fused_proxies: Sequence[str] | str | None = None,
    ranking: str | os.PathLike | None = None,
    tables_only: bool = False,
) -> Fitness:
    """The fitness named on the command line: ``libra``, ``fused``, ``learned``, ``default`` or a proxy name
    (``lswag`` is the L-SWAG proxy).

    ``fused`` takes ``fused_proxies`` (two or more) or the greedy set of ``libra_result`` (``lswag-libra --greedy``),
    fused with ``fusion`` (default ``log_rank``). ``learned`` applies the saved ``ranking`` (``lswag-libra
    --method``); ``default`` the shipped k = 0 ranking; ``tables_only``: the search reads score tables only, so the
    ranking may read their non-proxy columns (:mod:`lswag_lightning.search.ranking_fitness`)."""
    if not fitness or not isinstance(fitness, str):
        raise ValueError("--fitness must be 'libra', 'fused', 'learned', 'default' or a proxy name (e.g. lswag)")
    if fitness in ("learned", "default"):
        from lswag_lightning.search.ranking_fitness import ranking_fitness

        given = {
            "--libra-proxies": libra_proxies,
            "--libra-result": libra_result,
            "--fusion": fusion,
            "--fused-proxies": fused_proxies,
        }
        others = [flag for flag, value in given.items() if value]
        return ranking_fitness(fitness, ranking, tables_only=tables_only, others=others)
    if ranking:
        raise ValueError(f"--ranking only applies to --fitness learned (got --fitness {fitness})")
    if fused_proxies and fitness != "fused":
        raise ValueError(f"--fused-proxies only applies to --fitness fused (got --fitness {fitness})")
    if fitness == "fused":
        if libra_proxies:
            raise ValueError("--libra-proxies applies to --fitness libra; give a fused set with --fused-proxies")
        if fused_proxies and libra_result:
            raise ValueError("give either --fused-proxies or --libra-result (its greedy set), not both")
        if libra_result:
            return FusedFitness(
                load_greedy_set(libra_result),
                fusion or "log_rank",
                source=f"the greedy set of lswag-libra result {libra_result}",
            )
        if not fused_proxies:
            raise ValueError(
                "--fitness fused needs its proxies: --fused-proxies a,b,c,... or --libra-result "
                "<lswag-libra --greedy out>/libra.json"
            )
        if isinstance(fused_proxies, str):
            fused_proxies = fused_proxies.split(",")
        return FusedFitness([p for p in fused_proxies], fusion or "log_rank")
    if fitness != "libra":
        if libra_proxies or libra_result:
            raise ValueError(
                f"--libra-proxies / --libra-result only apply to --fitness libra or fused (got --fitness {fitness})"
            )
        return ProxyFitness(fitness)
    if libra_proxies and libra_result:
        raise ValueError("give either --libra-proxies or --libra-result, not both")
    if libra_result:
        proxies, hib, method = load_libra_result(libra_result)
        return LibraFitness(proxies, fusion or method, hib, source=f"lswag-libra result {libra_result}")
    if not libra_proxies:
        raise ValueError(
            "--fitness libra needs its proxies: --libra-proxies a,b,c or --libra-result <lswag-libra out>/libra.json"
        )
    if isinstance(libra_proxies, str):
        libra_proxies = [p for p in libra_proxies.split(",")]
    return LibraFitness(list(libra_proxies), fusion or "rank_mean")


def finite_or_worst(values: np.ndarray) -> np.ndarray:
    """``values`` with NaN replaced by -inf, for argmax-style selection (NaN ranks last)."""
    out = np.asarray(values, dtype=float).copy()
    out[np.isnan(out)] = -math.inf
    return out
