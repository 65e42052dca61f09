"""Scorers: how a search turns an architecture into zero-cost proxy values.

A scorer has ``proxies`` (the registry names it computes), a ``key`` (a string identifying everything that decides
its values, so cached values are only reused under the same settings) and ``score(spec, arch) -> ScoreResult``.

- :class:`ProxyScorer` scores the network with :func:`lswag_lightning.candidates.score_candidate` (initialised
  from a seed derived from ``init_seed`` and the arch string, so an architecture gets the same weights in every run,
  order and device, and in ``lswag-bench``) on a fixed probe batch. With a
  :class:`~lswag_lightning.search.score_cache.ScoreCache` an architecture is scored once per key, across runs, seeds
  and strategies.
- :class:`~lswag_lightning.search.stored_scores.TableScorer` looks proxy values up in a precomputed table (e.g.
  ``lswag-bench``'s ``table.csv``: an ``arch`` column and one column per proxy), falling back to another scorer for
  archs it lacks. It reads only the proxy columns it is asked for, so accuracy columns never reach the search.
- :class:`~lswag_lightning.search.stored_scores.MergedScorer` joins scorers proxy by proxy (a table's stored
  proxies + live scoring of the others); :func:`~lswag_lightning.search.stored_scores.tables_then_live` builds that
  join from several tables.
- :class:`FunctionScorer` wraps a plain function ``fn(spec) -> {proxy: value}`` (tests, synthetic fitness).

Values are floats as the proxies return them (NaN / ±inf kept, never replaced); ``ScoreResult.values`` also holds
sub-values such as ``lswag.lambda``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import torch

from lswag_lightning.candidates import score_candidate
from lswag_lightning.probe import probe_fingerprint

if TYPE_CHECKING:
    from lswag_lightning.search.score_cache import ScoreCache

log = logging.getLogger(__name__)

SCORER_FORMAT = 1


# ----------------------------------------------------------------------------------------------- numbers
def stable_hash(obj: Any, length: int = 16) -> str:
    """sha1 of the canonical JSON of ``obj`` (sorted keys), first ``length`` hex digits."""
    text = json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha1(text.encode()).hexdigest()[:length]


# ---------------------------------------------------------------------------------------------- results
@dataclass
class ScoreResult:
    """Proxy values of one architecture.

    ``values``: name -> float (sub-values included, NaN/inf kept); ``status``: name -> "ok" or why not;
    ``seconds``: wall seconds spent computing them now (0 for cache/table hits); ``source``: ``"computed"``,
    ``"cache"``, ``"table"`` or ``"function"``.
    """

    values: dict[str, float]
    status: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0
    source: str = "computed"


class Scorer:
    """Base class: ``proxies``, ``key`` and ``score(spec, arch)``; see the module docstring."""

    proxies: tuple[str, ...] = ()

    @property
    def key(self) -> str:
        raise NotImplementedError

    def describe(self) -> dict[str, Any]:
        """JSON-ready description (for reports and checkpoints)."""
        return {"type": type(self).__name__, "proxies": list(self.proxies), "key": self.key}

    def score(self, spec: Any, arch: str) -> ScoreResult:
        raise NotImplementedError

    def missing(self, result: ScoreResult, proxies: Sequence[str] | None = None) -> list[str]:
        """Requested proxies absent from ``result.values``."""
        return [p for p in (proxies or self.proxies) if p not in result.values]


class FunctionScorer(Scorer):
    """``fn(spec) -> {proxy: value}`` as a scorer. ``name`` enters the key, so give different functions names."""

    def __init__(self, fn: Callable[[Any], Mapping[str, float]], proxies: Sequence[str], name: str = "function"):
        if not callable(fn):
            raise ValueError("FunctionScorer needs a callable fn(spec) -> {proxy: value}")
        self.fn = fn
        self.proxies = tuple(proxies)
        self.name = name

    @property
    def key(self) -> str:
        return stable_hash({"function": self.name, "proxies": list(self.proxies)})

    def score(self, spec: Any, arch: str) -> ScoreResult:
        start = time.perf_counter()
        values = {str(k): float(v) for k, v in dict(self.fn(spec)).items()}
        missing = [p for p in self.proxies if p not in values]
        if missing:
            raise ValueError(f"scoring function {self.name!r} returned no value for {missing}")
        return ScoreResult(values, {p: "ok" for p in values}, time.perf_counter() - start, "function")


# ------------------------------------------------------------------------------------------ live scoring
class ProxyScorer(Scorer):
    """Build and score architectures of ``space`` on a probe batch with :func:`lswag_lightning.score_network`.

    Args:
        space: a :class:`lswag_lightning.spaces.SearchSpace`.
        proxies: registry names to compute (sub-values such as ``lswag.lambda`` come with their proxy).
        images, labels: the probe batch, ``(B, C, S, S)`` float and ``(B,)`` int64 (see :mod:`.probe`).
        build_options: keyword arguments of ``space.build`` (``num_classes``, ``img_size``, ...).
        device: torch device to score on (default: cuda if available, else cpu).
        init_seed: seeds the weights: each arch is initialised from ``arch_seed(arch, init_seed)``, on the CPU
            (the same weights on every device), then moved to ``device``.
        score_options: extra keyword arguments of ``score_network`` (``layer_interval``, ``lambda_k``, ...).
        cache: a :class:`ScoreCache` shared across runs, or None.
        probe: JSON-ready description of the probe batch (enters the report, not the key: the key uses the
            batch's content hash).
    """

    def __init__(
        self,
        space: Any,
        proxies: Sequence[str],
        images: torch.Tensor,
        labels: torch.Tensor,
        *,
        build_options: Mapping[str, Any] | None = None,
        device: str | torch.device | None = None,
        init_seed: int = 0,
        score_options: Mapping[str, Any] | None = None,
        cache: ScoreCache | None = None,
        probe: Mapping[str, Any] | None = None,
    ) -> None:
        from lswag_lightning.proxies import get_proxy

        self.proxies = tuple(dict.fromkeys(proxies))
        if not self.proxies:
            raise ValueError("ProxyScorer needs at least one proxy name")
        for p in self.proxies:
            get_proxy(p)  # ValueError naming the available proxies
        self.space = space
        self.build_options = dict(build_options or {})
        self.device = torch.device(device if device is not None else ("cuda" if torch.cuda.is_available() else "cpu"))
        self.init_seed = int(init_seed)
        self.score_options = dict(score_options or {})
        self.cache = cache
        self.probe = dict(probe or {})
        if images.ndim != 4 or labels.ndim != 1 or len(images) != len(labels):
            raise ValueError(
                f"probe batch must be images (B, C, S, S) and labels (B,), got {tuple(images.shape)} "
                f"and {tuple(labels.shape)}"
            )
        num_classes = int(self.build_options.get("num_classes", 10))
        if int(labels.max()) >= num_classes:
            raise ValueError(
                f"probe labels go up to {int(labels.max())} but the networks have num_classes="
                f"{num_classes}; use num_classes >= {int(labels.max()) + 1}"
            )
        self.images = images.to(self.device)
        self.labels = labels.to(self.device)
        self._key = stable_hash(
            {
                "format": SCORER_FORMAT,
                "space": getattr(space, "name", type(space).__name__),
                "build_options": self.build_options,
                "init_seed": self.init_seed,
                "score_options": {k: (list(v) if isinstance(v, tuple) else v) for k, v in self.score_options.items()},
                "probe": probe_fingerprint(images, labels),
            }
        )
        self.seconds = 0.0
        self.computed = 0
        self.hits = 0

    @property
    def key(self) -> str:
        return self._key

    def describe(self) -> dict[str, Any]:
        return {
            **super().describe(),
            "device": str(self.device),
            "init_seed": self.init_seed,
            "build_options": self.build_options,
            "score_options": self.score_options,
            "probe": self.probe,
            "cache": None if self.cache is None else str(self.cache.path),
        }

    def score(self, spec: Any, arch: str) -> ScoreResult:
        if self.cache is not None:
            hit = self.cache.get(self.key, arch, self.proxies)
            if hit is not None:
                self.hits += 1
                return hit
        start = time.perf_counter()
        report = score_candidate(
            self.space,
            arch,
            self.images,
            self.labels,
            list(self.proxies),
            device=self.device,
            build_options=self.build_options,
            score_options=self.score_options,
            seed_base=self.init_seed,
            spec=spec,
        ).report
        result = ScoreResult(
            {k: float(v) for k, v in report.values.items()},
            dict(report.status),
            time.perf_counter() - start,
            "computed",
        )
        self.seconds += result.seconds
        self.computed += 1
        if self.cache is not None:
            self.cache.put(self.key, arch, result, device=str(self.device))
        return result
