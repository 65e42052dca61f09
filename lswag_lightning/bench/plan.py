"""Planning a benchmark run from its arguments: the sample of the ground truth to score and the
:class:`~lswag_lightning.bench.settings.BenchSettings` that decide its values (what ``lswag-bench`` parses into)."""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lswag_lightning.bench.ground_truth import (
    BENCHMARK_SPACES,
    GroundTruth,
    benchmark_ground_truth,
    sample_ground_truth,
)
from lswag_lightning.bench.settings import (
    AUTOFORMER_DEFAULT_IMG_SIZE,
    AUTOFORMER_PATCH_SIZE,
    BENCH_PROBES,
    PROBE_CLASSES,
    BenchSettings,
    default_proxies,
    resolve_build_options,
    resolve_score_options,
)


@dataclass
class BenchPlan:
    """A planned run: its ``settings``, the ground-truth sample ``gt`` (in sample order) and ``total``, the number
    of architectures in the whole ground truth."""

    settings: BenchSettings
    gt: GroundTruth
    total: int


def _build_options(
    benchmark: str,
    space_name: str,
    overrides: Iterable[tuple[str, Any]] | Mapping[str, Any],
    img_size: int | None,
    num_classes: int | None,
) -> dict[str, Any]:
    """The scored networks' build options: the benchmark's preset (AutoFormer-Ti's probe patch and resolution,
    NB301's network) under the command line's; ``ValueError`` for fewer outputs than the probe has classes."""
    from lswag_lightning.spaces.nb301 import NB301_BUILD_OPTIONS

    preset = (
        {"patch_size": AUTOFORMER_PATCH_SIZE, "img_size": AUTOFORMER_DEFAULT_IMG_SIZE}
        if benchmark == "autoformer_ti"
        else dict(NB301_BUILD_OPTIONS)
        if benchmark == "nb301"
        else {}
    )
    build = resolve_build_options(space_name, overrides, preset=preset, img_size=img_size, num_classes=num_classes)
    build.setdefault("num_classes", PROBE_CLASSES)
    if int(build["num_classes"]) < PROBE_CLASSES:
        raise ValueError(
            f"num_classes={build['num_classes']}: the probe labels are the {PROBE_CLASSES} CIFAR-10 "
            f"classes, so the networks need at least {PROBE_CLASSES} outputs (--num-classes)"
        )
    return build


def plan_benchmark(
    benchmark: str,
    *,
    space: str | None = None,
    data_dir: Any = None,
    nb201_set: str = "all",
    gt_file: str | os.PathLike | None = None,
    arch_column: str | None = None,
    accuracy_columns: Iterable[str] = (),
    sample: int | None = None,
    seed: int | None = None,
    proxies: Sequence[str] | None = None,
    score_overrides: Mapping[str, Any] | None = None,
    build_overrides: Iterable[tuple[str, Any]] | Mapping[str, Any] = (),
    img_size: int | None = None,
    num_classes: int | None = None,
    batch_size: int = 64,
    probe_seed: int = 0,
    init_seed: int = 0,
    probe_protocol: str = "bench",
) -> BenchPlan:
    """The plan of ``lswag-bench BENCHMARK`` with these arguments (``space``, ``gt_file``, ``arch_column`` and
    ``accuracy_columns`` for ``custom``; ``proxies`` None: :func:`default_proxies`, ``["all"]``: every registered
    one). ``ValueError`` / ``FileNotFoundError`` for what cannot be planned (unknown space or proxy, missing data,
    too large a sample, fewer than 10 classes, an unknown ``probe_protocol``)."""
    from lswag_lightning.proxies.registry import available_proxies, get_proxy
    from lswag_lightning.spaces import get_space

    if probe_protocol not in BENCH_PROBES:
        raise ValueError(f"unknown probe protocol {probe_protocol!r}; use one of {', '.join(BENCH_PROBES)}")
    space_name = BENCHMARK_SPACES.get(benchmark, space)
    get_space(space_name)  # an unknown space fails here, before the ground truth is read
    gt = benchmark_ground_truth(
        benchmark,
        data_dir,
        nb201_set=nb201_set,
        space=space_name,
        gt_file=gt_file,
        arch_column=arch_column,
        accuracy_columns=accuracy_columns,
    )
    total = len(gt)
    seed = 0 if seed is None else seed
    gt = sample_ground_truth(gt, sample, seed)
    score_options, sources = resolve_score_options(dict(score_overrides or {}))
    proxies = list(proxies or default_proxies(score_options))
    if proxies == ["all"]:
        proxies = available_proxies()
    for name in proxies:
        get_proxy(name)
    build = _build_options(benchmark, space_name, build_overrides, img_size, num_classes)
    settings = BenchSettings(
        benchmark=benchmark,
        space=space_name,
        proxies=list(proxies),
        build_options=build,
        score_options=score_options,
        batch_size=batch_size,
        probe_seed=probe_seed,
        probe_protocol=probe_protocol,
        img_size=int(build["img_size"]),
        sample=sample,
        seed=seed,
        init_seed_base=init_seed,
        gt_source=gt.source,
        gt_file=str(Path(gt_file).resolve()) if gt_file else "",
        nb201_set=nb201_set,
        score_options_source=sources,
    )
    return BenchPlan(settings, gt, total)
