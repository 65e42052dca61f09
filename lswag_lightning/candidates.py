"""A candidate network of a search space: the space's shipped build options, the seed of its weights, its build,
its score, its FLOPs.

Every tool that scores an architecture scores it here (:func:`score_candidate`), so one architecture gets the same
initial weights and the same values in ``lswag-bench``, ``lswag-search``, ``lswag-layers`` and the demo, in any
sample, run order and device: the torch seed is a hash of the encoded architecture and a base seed
(:func:`arch_seed`), the network is built on the CPU under that seed with the global RNG state restored afterwards
(:func:`build_candidate`), moved to the device and scored there by :func:`lswag_lightning.proxies.score_network`.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import yaml

from lswag_lightning.proxies import ProxyReport, score_network
from lswag_lightning.proxies.layers import count_parameters

#: the shipped space configs (``conf/space/<name>.yaml``), whose ``build_options`` are the spaces' defaults
SPACE_CONF_DIR = Path(__file__).resolve().parent / "conf" / "space"


def space_build_options(space_name: str) -> dict[str, Any]:
    """``build_options`` of the shipped ``conf/space/<space_name>.yaml`` ({} when the space has no config file);
    ``ValueError`` naming the file when it is not YAML or its ``build_options`` is not a mapping."""
    path = SPACE_CONF_DIR / f"{space_name}.yaml"
    if not path.is_file():
        return {}
    try:
        cfg = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        raise ValueError(f"{path}: not valid YAML: {err}") from None
    if cfg is not None and not isinstance(cfg, dict):
        raise ValueError(f"{path}: expected a mapping of settings, got {type(cfg).__name__}")
    options = (cfg or {}).get("build_options") or {}
    if not isinstance(options, dict):
        raise ValueError(f"{path}: build_options must be a mapping")
    return dict(options)


def arch_seed(arch: str, base: int = 0) -> int:
    """A torch seed (0..2**63-1) from the encoded architecture and ``base``: stable across runs and machines."""
    digest = hashlib.sha256(f"{int(base)}|{arch}".encode()).digest()
    return int.from_bytes(digest[:8], "little") & ((1 << 63) - 1)


def build_candidate(
    space: Any,
    arch: str,
    build_options: Mapping[str, Any] | None = None,
    *,
    seed: int | None = None,
    seed_base: int = 0,
    spec: Any = None,
) -> torch.nn.Module:
    """``space.build(spec, **build_options)`` on the CPU under torch seed ``seed`` (default
    ``arch_seed(arch, seed_base)``), the global RNG state restored afterwards. ``spec`` defaults to
    ``space.decode(arch)``; ``arch`` is the encoded architecture."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(arch_seed(arch, seed_base) if seed is None else seed)
        return space.build(space.decode(arch) if spec is None else spec, **dict(build_options or {}))


@dataclass
class ScoredCandidate:
    """One architecture scored by :func:`score_candidate`: the engine's ``report``, ``params`` (the built network's
    parameter count, auxiliary heads excluded as the ``params`` proxy counts them, also when that proxy was not
    asked for or failed) and ``build_seconds`` (wall seconds to build it and move it to the device)."""

    report: ProxyReport
    params: int
    build_seconds: float


def score_candidate(
    space: Any,
    arch: str,
    images: torch.Tensor,
    labels: torch.Tensor | None,
    proxies: Sequence[str],
    *,
    device: str | torch.device,
    build_options: Mapping[str, Any] | None = None,
    score_options: Mapping[str, Any] | None = None,
    seed: int | None = None,
    seed_base: int = 0,
    spec: Any = None,
) -> ScoredCandidate:
    """Score one architecture: :func:`build_candidate` (``seed``, ``seed_base``, ``spec`` as there), moved to
    ``device``, then ``score_network(model, images, labels, proxies, copy_model=False, **score_options)`` with the
    probe batch moved to ``device`` too. The network is built for this scoring only, so it is scored in place
    (no copy) and dropped afterwards."""
    start = time.perf_counter()
    model = build_candidate(space, arch, build_options, seed=seed, seed_base=seed_base, spec=spec).to(device)
    build_seconds = time.perf_counter() - start
    options = dict(score_options or {})
    options["copy_model"] = False
    labels = None if labels is None else labels.to(device)
    report = score_network(model, images.to(device), labels, proxies=proxies, **options)
    exclude = {"exclude": options["params_exclude"]} if "params_exclude" in options else {}  # else the proxy's default
    params = count_parameters(model, **exclude)
    return ScoredCandidate(report, params, build_seconds)


def count_flops(space: Any, spec: Any, build_options: Mapping[str, Any]) -> int:
    """FLOPs of one sample's forward pass (eval mode, CPU, a multiply-add = 2), without touching the global RNG."""
    from torch.utils.flop_counter import FlopCounterMode

    size = int(build_options.get("img_size", 32))
    chans = int(build_options.get("in_chans", 3))
    with torch.random.fork_rng(devices=[]):
        model = space.build(spec, **build_options).eval()
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(torch.zeros(1, chans, size, size))
    return int(counter.get_total_flops())
