"""Rescore the committed random-draw columns (AZ-NAS's three terms, VKDNW, ℵ) with today's engine on a CPU, so every
committed number reproduces, and measure their draw-to-draw rank stability (issue 22, item 7).

The committed values of ``az_expressivity``, ``az_progressivity``, ``az_trainability``, ``vkdnw`` (and
``vkdnw_layers``, ``vkdnw_single``, deterministic) came from a CUDA random draw the engine no longer makes. This recipe
rescores exactly the committed rows with the settings each table was made with, resumably, and writes the new columns
into the committed files:

    # NB201 subset (2,828 cells: the 723 validation cells first): the search scorer (key 25c87bc097271b2b) into a cache
    python benchmarks/drawn_stability.py nb201 --work /tmp/h7/rescore --worker 0 --workers 2 &
    python benchmarks/drawn_stability.py nb201 --work /tmp/h7/rescore --worker 1 --workers 2 &
    # NB101 / NB301 / AutoFormer-Ti: lswag-bench itself (resumable: rerun the same command)
    lswag-bench nb101 --out /tmp/h7/rescore/nb101 --proxies az_expressivity az_progressivity az_trainability \\
        vkdnw vkdnw_layers --device cpu --threads 1 --no-report --no-progress
    # draw-to-draw stability: the same cells with seed 1 (another scorer key, another cache entry)
    python benchmarks/drawn_stability.py nb201 --work /tmp/h7/rescore --seed 1 --limit 300
    # write the columns (other columns checked unchanged), then the stability table
    python benchmarks/drawn_stability.py replace --work /tmp/h7/rescore
    python benchmarks/drawn_stability.py stability --work /tmp/h7/rescore --seeds 0 1 2 3 --limit 300

``replace`` writes only tables whose every row was rescored (``--allow-partial`` also writes the rows rescored so far
and lists the others), and only the columns a run holds (a run of AZ-NAS's three leaves VKDNW's as they are).
Seconds per row are in each cache record / lswag-bench table.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

from lswag_lightning.bench.search_eval.scorers import make_live_scorer
from lswag_lightning.cli.options import parse_settings
from lswag_lightning.cli.search_eval import SearchEvalCommand
from lswag_lightning.cli.search_eval import build_parser as search_parser

ROOT = Path(__file__).resolve().parents[1]

#: the columns drawn at random (AZ-NAS, VKDNW) and the deterministic ℵ they are committed with
DRAWN = ["az_expressivity", "az_progressivity", "az_trainability", "vkdnw"]
PROXIES = [*DRAWN, "vkdnw_layers"]
NB201_TABLE = ROOT / "results" / "nb201_scored_subset_new_proxies.parquet"
BENCH_TABLES = {name: ROOT / "results" / f"{name}_scores.parquet" for name in ("autoformer_ti", "nb101", "nb301")}


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def scorer_for(work: Path, seed: int, writer: str, data_dir: Path | None):
    argv = ["--out", str(work / "nb201_run"), "--score-cache", str(work / "nb201_cache"), "--device", "cpu"]
    if data_dir:
        argv += ["--data-dir", str(data_dir)]
    scorer = make_live_scorer(parse_settings(SearchEvalCommand, search_parser(), argv), PROXIES, writer=writer)
    if seed:  # the draw's seed is a score option: another key, so both draws live in one cache
        from lswag_lightning.search import ProxyScorer

        scorer = ProxyScorer(
            scorer.space,
            PROXIES,
            scorer.images,
            scorer.labels,
            build_options=scorer.build_options,
            device="cpu",
            init_seed=scorer.init_seed,
            score_options={**scorer.score_options, "seed": seed},
            cache=scorer.cache,
            probe=scorer.probe,
        )
    return scorer


def nb201(args: argparse.Namespace) -> int:
    """Score this worker's share (positions p with p % workers == worker) of the committed cells, in file order."""
    import torch

    torch.set_num_threads(1)
    archs = list(pd.read_parquet(NB201_TABLE)["arch"])[: args.limit]
    scorer = scorer_for(args.work, args.seed, f"s{args.seed}w{args.worker}", args.data_dir)
    done = 0
    start = time.perf_counter()
    for position in range(args.worker, len(archs), args.workers):
        arch = archs[position]
        scorer.cache.refresh()
        if scorer.cache.get(scorer.key, arch, PROXIES) is not None:
            continue
        scorer.score(scorer.space.decode(arch), arch)
        done += 1
        if done % 20 == 0:
            log(f"worker {args.worker}: {done} cells, {(time.perf_counter() - start) / done:.1f} s per cell")
    log(f"worker {args.worker} (seed {args.seed}): {done} cells scored, key {scorer.key}")
    return 0


def nb201_values(work: Path, seed: int, data_dir: Path | None) -> pd.DataFrame:
    """The rescored NB201 values of every committed cell the cache holds (draw ``seed``), indexed by arch."""
    scorer = scorer_for(work, seed, "read", data_dir)
    rows = []
    for arch in pd.read_parquet(NB201_TABLE)["arch"]:
        hit = scorer.cache.get(scorer.key, arch, PROXIES)
        if hit is not None:
            rows.append({"arch": arch, **{p: hit.values[p] for p in PROXIES}})
    return pd.DataFrame(rows, columns=["arch", *PROXIES]).set_index("arch")


def bench_values(work: Path, name: str) -> pd.DataFrame:
    """The rescored rows of one lswag-bench table (merged table.csv, or the unsharded run's rows so far): the columns
    of ``PROXIES`` it holds (a run may rescore only some, e.g. AZ-NAS's three)."""
    path = work / name / "table.csv"
    if not path.exists():
        return pd.DataFrame(columns=PROXIES)
    table = pd.read_csv(path, keep_default_na=False, na_values=["nan", "NaN"])
    columns = [c for c in PROXIES if c in table]
    for column in columns:
        table[column] = pd.to_numeric(table[column].replace({"inf": math.inf, "-inf": -math.inf}))
    return table.set_index("arch")[columns]


def replace_columns(path: Path, new: pd.DataFrame, allow_partial: bool) -> dict:
    """Write ``new``'s columns into the committed table at ``path`` (rows by arch); every other column unchanged
    (``vkdnw_single``, where the table has it, rederived from the written ``vkdnw``)."""
    from lswag_lightning.analysis.table import save_table
    from lswag_lightning.proxies.vkdnw import single_score

    old = pd.read_parquet(path)
    missing = [a for a in old["arch"] if a not in new.index]
    if missing and not allow_partial:
        return {"table": path.name, "written": False, "missing_rows": len(missing)}
    table = old.copy()
    rescored = table["arch"].isin(new.index)
    written = [c for c in PROXIES if c in new.columns and c in table]
    for column in written:
        table.loc[rescored, column] = table.loc[rescored, "arch"].map(new[column]).astype(float)
    if "vkdnw_single" in table and "vkdnw" in written:
        written.append("vkdnw_single")
        table.loc[rescored, "vkdnw_single"] = [
            single_score(layers, entropy)
            for layers, entropy in zip(table.loc[rescored, "vkdnw_layers"], table.loc[rescored, "vkdnw"])
        ]
    kept = [c for c in table.columns if c not in written]
    assert table[kept].equals(old[kept]), f"{path.name}: a column outside the rescored ones changed"
    save_table(table, path)
    return {
        "table": path.name,
        "written": written,
        "rows_rescored": int(rescored.sum()),
        "rows_not_rescored": missing,
        "vkdnw_layers_unchanged": bool(np.array_equal(table["vkdnw_layers"], old["vkdnw_layers"])),
        "spearman_new_vs_old": {
            c: float(table.loc[rescored, c].rank().corr(old.loc[rescored, c].rank())) for c in DRAWN if c in written
        },
    }


def replace(args: argparse.Namespace) -> int:
    report = [replace_columns(NB201_TABLE, nb201_values(args.work, 0, args.data_dir), args.allow_partial)]
    for name, path in BENCH_TABLES.items():
        report.append(replace_columns(path, bench_values(args.work, name), args.allow_partial))
    print(json.dumps(report, indent=1, default=str))
    return 0


def stability(args: argparse.Namespace) -> int:
    """Draw-to-draw Spearman of each drawn column (seeds 0 and 1, and 2 and 3 when held), the same for the mean of
    two draws ((0, 1) against (2, 3): ``az_draws=2`` / ``vkdnw_draws=2``), and each variant's Spearman with the
    validation accuracies, on the committed cells every requested seed holds."""
    from lswag_lightning.paths import resolve_data_dir
    from lswag_lightning.spaces.nb201 import index_to_arch

    draws = {seed: nb201_values(args.work, seed, args.data_dir) for seed in args.seeds}
    cells = draws[args.seeds[0]].index
    for table in draws.values():
        cells = cells.intersection(table.index)
    cells = cells[: args.limit]
    nb201 = resolve_data_dir(args.data_dir, must_contain="nb201") / "nb201"
    accuracy = pd.read_csv(nb201 / "nb201_val_acc_naslib_subset.csv")
    accuracy.index = [index_to_arch(int(i)) for i in accuracy["nb201_index"]]
    validation = [c for c in cells if c in accuracy.index]

    def mean_of(seeds: tuple[int, ...], column: str) -> pd.Series:
        return sum(draws[seed].loc[cells, column] for seed in seeds) / len(seeds)  # a -inf draw keeps -inf

    def spearman(a: pd.Series, b: pd.Series) -> float:
        return float(a.rank().corr(b.rank()))  # average ranks, -inf ranked last as the fusion does

    out: dict = {"cells": len(cells), "validation_cells": len(validation), "seeds": list(args.seeds)}
    variants = {"one draw (seed 0)": (0,)}
    if len(args.seeds) >= 2:
        variants["mean of 2 draws (seeds 0, 1)"] = (0, 1)
    if len(args.seeds) >= 4:
        variants["mean of 4 draws (seeds 0-3)"] = (0, 1, 2, 3)
    for column in DRAWN:
        row = {}
        if len(args.seeds) >= 2:
            row["draw_to_draw (0 vs 1)"] = spearman(mean_of((0,), column), mean_of((1,), column))
        if len(args.seeds) >= 4:
            row["draw_to_draw (2 vs 3)"] = spearman(mean_of((2,), column), mean_of((3,), column))
            row["mean_of_2_to_mean_of_2 ((0,1) vs (2,3))"] = spearman(mean_of((0, 1), column), mean_of((2, 3), column))
        for label, seeds in variants.items():
            values = mean_of(seeds, column).loc[validation]
            row[f"rho_val_acc {label}"] = {
                acc: spearman(values, accuracy.loc[validation, acc])
                for acc in ("cifar10_val_acc", "cifar100_val_acc", "imagenet16_120_val_acc")
            }
        out[column] = row
    print(json.dumps(out, indent=1))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("what", choices=["nb201", "replace", "stability"])
    parser.add_argument("--work", type=Path, required=True, help="caches and lswag-bench folders")
    parser.add_argument("--worker", type=int, default=0)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0, help="the engine's seed option: AZ-NAS's and VKDNW's draw")
    parser.add_argument("--limit", type=int, default=None, help="the first N committed cells only")
    parser.add_argument("--allow-partial", action="store_true", help="replace: write the rows rescored so far")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1], help="stability: the draws to compare")
    parser.add_argument("--data-dir", type=Path, default=None)
    args = parser.parse_args(argv)
    return {"nb201": nb201, "replace": replace, "stability": stability}[args.what](args)


if __name__ == "__main__":
    sys.exit(main())
