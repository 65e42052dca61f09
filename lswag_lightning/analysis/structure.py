"""Structure tables: :func:`lswag_lightning.proxies.architecture_stats.architecture_stats` for every architecture of
a table, one row per ``arch``, written resumably (the features of the learned ranking, joined on ``arch``).

The one module of ``analysis`` that builds networks: each architecture is built on the CPU under its arch seed
(:func:`lswag_lightning.candidates.build_candidate`), described from one forward/backward of a seeded random batch,
and dropped. Rows are appended to ``<out>.partial.csv`` as they are computed; a rerun skips the architectures
already there, and the finished table is written to ``out`` (parquet or CSV) in the order of the input.

    python -m lswag_lightning.analysis.structure nb201 --archs-from results/nb201_all_cells_scores.parquet \\
        --out results/nb201_structure.parquet
    python -m lswag_lightning.analysis.structure nb301 --archs-from results/nb301_scores.parquet \\
        --out results/nb301_structure.parquet     # nb301 = the darts space with NB301_BUILD_OPTIONS
"""

from __future__ import annotations

import argparse
import csv
import logging
import os
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

log = logging.getLogger(__name__)

#: benchmark names that stand for a space with fixed build options (NB301 genotypes are built as NASLib's)
SPACE_ALIASES = {"nb301": "darts"}


def benchmark_build(name: str, overrides: Mapping[str, Any] = ()) -> tuple[str, dict[str, Any]]:
    """(space name, build options) for ``name``: the space's shipped options, NB301's for ``nb301``, then
    ``overrides``."""
    from lswag_lightning.candidates import space_build_options

    space = SPACE_ALIASES.get(name, name)
    options = space_build_options(space)
    if name == "nb301":
        from lswag_lightning.spaces.nb301 import NB301_BUILD_OPTIONS

        options.update(NB301_BUILD_OPTIONS)
    options.update(dict(overrides))
    options.setdefault("num_classes", 10)
    return space, options


def describe_architecture(space, arch: str, build_options: Mapping[str, Any], batch: int = 2, seed: int = 0) -> dict:
    """The statistics of one encoded architecture, built under its arch seed; a random N(0, 1) input batch of
    ``batch`` images at the build's ``img_size`` (drawn from ``seed`` on the CPU)."""
    import torch

    from lswag_lightning.candidates import build_candidate
    from lswag_lightning.proxies.architecture_stats import architecture_stats

    model = build_candidate(space, arch, build_options)
    size = int(build_options.get("img_size", 32))
    chans = int(build_options.get("in_chans", 3))
    x = torch.randn(batch, chans, size, size, generator=torch.Generator().manual_seed(seed))
    return architecture_stats(model, x, seed=seed)


def structure_table(
    space_name: str,
    archs: Sequence[str],
    build_options: Mapping[str, Any],
    partial: str | os.PathLike | None = None,
    *,
    seed: int = 0,
) -> pd.DataFrame:
    """One row per architecture (``arch`` + :data:`STAT_NAMES`), in the order of ``archs``.

    With ``partial`` (a CSV path) each row is appended as soon as it is computed, and rows already there are
    reused, so an interrupted call resumes. An architecture that fails to build or describe raises, naming it.
    """
    from lswag_lightning.proxies.architecture_stats import STAT_NAMES
    from lswag_lightning.spaces import get_space

    space = get_space(space_name)
    archs = list(dict.fromkeys(archs))
    done: dict[str, dict] = {}
    if partial is not None and Path(partial).is_file():
        prior = pd.read_csv(partial, keep_default_na=True)
        done = {row["arch"]: row for row in prior.to_dict("records")}
        log.info("resuming: %d of %d architectures already in %s", len(done), len(archs), partial)
    writer = None
    handle = None
    if partial is not None:
        Path(partial).parent.mkdir(parents=True, exist_ok=True)
        fresh = not Path(partial).is_file()
        handle = open(partial, "a", newline="")  # noqa: SIM115 - closed in finally
        writer = csv.DictWriter(handle, fieldnames=["arch", *STAT_NAMES])
        if fresh:
            writer.writeheader()
    start, computed = time.perf_counter(), 0
    try:
        for arch in archs:
            if arch in done:
                continue
            try:
                stats = describe_architecture(space, arch, build_options, seed=seed)
            except Exception as err:
                raise RuntimeError(f"architecture {arch!r}: {type(err).__name__}: {err}") from err
            done[arch] = {"arch": arch, **stats}
            computed += 1
            if writer is not None:
                writer.writerow(done[arch])
                handle.flush()
            if computed % 200 == 0:
                log.info("%d computed, %.2f s each", computed, (time.perf_counter() - start) / computed)
    finally:
        if handle is not None:
            handle.close()
    return pd.DataFrame([done[a] for a in archs], columns=["arch", *STAT_NAMES])


def _archs_from(paths: Sequence[Path]) -> list[str]:
    from lswag_lightning.analysis.table import load_table

    archs: list[str] = []
    for path in paths:
        table = load_table(path)
        if "arch" not in table.columns:
            raise ValueError(f"{path} has no 'arch' column")
        archs += [str(a) for a in table["arch"]]
    return list(dict.fromkeys(archs))


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m lswag_lightning.analysis.structure BENCHMARK --archs-from TABLE --out FILE``."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("space", help="space name (nb201, nb101, autoformer_ti, ...) or nb301 (darts, NB301 options)")
    p.add_argument("--archs-from", type=Path, nargs="+", required=True, help="tables whose 'arch' column to describe")
    p.add_argument("--out", type=Path, required=True, help="the finished table (.parquet or .csv)")
    p.add_argument("--build-option", action="append", default=[], metavar="KEY=VALUE", help="e.g. img_size=112")
    p.add_argument("--seed", type=int, default=0, help="seed of the random input batch and output projection")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    import torch
    import yaml

    torch.set_num_threads(args.threads)
    overrides = {}
    for item in args.build_option:
        key, sep, value = item.partition("=")
        if not sep or not key:
            p.error(f"--build-option expects KEY=VALUE, got {item!r}")
        overrides[key] = yaml.safe_load(value)
    space, options = benchmark_build(args.space, overrides)
    archs = _archs_from(args.archs_from)
    partial = args.out.with_name(args.out.name + ".partial.csv")
    table = structure_table(space, archs, options, partial, seed=args.seed)
    from lswag_lightning.analysis.table import save_table

    save_table(table, args.out)
    partial.unlink()
    print(f"{len(table)} architectures ({space}, {options}) -> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
