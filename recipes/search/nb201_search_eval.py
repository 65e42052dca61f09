"""NAS-Bench-201 search evaluation: what the architecture each zero-shot search returns scores once trained.

For every seed, strategy (regularised evolution, random search) and fitness (L-SWAG, LIBRA) it runs
``lswag_lightning.search`` on NB201 with the same budget of scored architectures, then looks up the 200-epoch test
accuracy of the returned architecture (the top of its ``ranked.csv``) on CIFAR-10, CIFAR-100 and ImageNet16-120 in
``<data>/nb201/nasbench201_test_acc_200ep.csv`` and reports mean ± std over seeds next to the benchmark optimum
(94.37 / 73.51 / 47.31). The test accuracies are read only after all searches have finished, in
:func:`evaluate_runs`; the searches see nothing but proxy values.

Search setting: one probe batch of 64 CIFAR-10 training images (``cifar10_npz``), 10-class NB201 networks, so one
search serves all three datasets (the returned cell is evaluated on each, as in transfer protocols). Random search
returns the best of its samples under the same fitness.

Scores are shared: every architecture is scored once, with the union of the proxies all fitnesses need, into a
score cache (``--score-cache``, JSON lines keyed by arch string + scoring settings) reused across seeds, strategies,
fitnesses and later runs. ``--score-table`` reuses ``lswag-bench nb201``'s ``table.csv`` instead (archs it lacks are
scored live). ``--prescore-all`` first scores all 15,625 cells with ``--workers`` processes (for a GPU machine),
after which every search is a lookup. ``--shard I/N`` pre-scores only shard I of N of the cells (the positions p of
the pre-scoring order with p % N == I), so N processes or machines sharing the score cache folder split the space;
each shard resumes (cells in the cache are skipped), and the cache merges every writer's file when read.

LIBRA's proxies: ``--libra-proxies a,b,c``, or ``--libra-result`` (a ``lswag-libra`` libra.json), or by default
``--libra-select naslib-val``: LIBRA's selection (:func:`lswag_lightning.analysis.libra.select`) on the 723
architectures of ``nb201_val_acc_naslib_subset.csv`` (NAS-Bench-Suite-Zero's labelled set, the paper's protocol),
among ``--libra-candidates``, once per dataset with that dataset's *validation* accuracy: LIBRA is fitted per
benchmark (search space, dataset), so the search for ImageNet16-120 uses the trio chosen on ImageNet16-120 labels.
Datasets that choose the same trio share one search. ``naslib-val-cifar10`` selects once, on CIFAR-10, for all
three. Either way validation labels of 723 architectures choose the proxies, never the test accuracies used for
the evaluation; the report says so.

``--fitnesses fused``: a set of any size fused by log-rank (:class:`lswag_lightning.search.fitness.FusedFitness`),
from ``--fused-proxies a,b,c,...`` or ``--fused-result`` (the greedy set of a ``lswag-libra --greedy`` libra.json,
e.g. grown on the same 723 validation accuracies; see the README's "Beyond the paper"). One fused search serves
all three datasets.

    # the full protocol (5 seeds x budget 1000), e.g. on a GPU machine:
    python recipes/search/nb201_search_eval.py --out runs/nb201_search --prescore-all --workers 12 --device cuda
    # the same split over machines sharing runs/cache (one command per machine, I = 0..3), then the searches:
    python recipes/search/nb201_search_eval.py --out runs/pre --score-cache runs/cache --prescore-all \
        --prescore-only --shard I/4 --device cuda
    # a small CPU run:
    python recipes/search/nb201_search_eval.py --out runs/nb201_small --seeds 0,1 --budget 100 \\
        --libra-proxies lswag,synflow,naswot --threads 1
"""

from __future__ import annotations

import argparse
import logging
import math
import multiprocessing as mp
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

from lswag_lightning.jsonio import write_json
from lswag_lightning.paths import resolve_data_dir

log = logging.getLogger("nb201_search_eval")

OPTIMUM = {"cifar10": 94.37, "cifar100": 73.51, "imagenet16_120": 47.31}
TARGET_GAP = {"cifar10": 1.0, "cifar100": 2.5, "imagenet16_120": 2.5}
TEST_COLUMNS = {
    "cifar10": "CIFAR10TestAccuracy200Epochs",
    "cifar100": "CIFAR100TestAccuracy200Epochs",
    "imagenet16_120": "ImageNetTestAccuracy200Epochs",
}
DEFAULT_CANDIDATES = "lswag,zico,naswot,synflow,jacov,snip,grad_norm,flops,params"


# ------------------------------------------------------------------------------------------------ scoring
def make_live_scorer(args, proxies, writer: str = "main", cache=None):
    """The cached live scorer of the recipe (the same key in every process: same probe, options, seeds)."""
    import torch

    from lswag_lightning.probe import describe_probe, probe_batch
    from lswag_lightning.search import ProxyScorer, ScoreCache
    from lswag_lightning.spaces import get_space

    space = get_space("nb201")
    images, labels = probe_batch(
        "search",
        data="cifar10_npz",
        batch_size=args.batch_size,
        img_size=32,
        seed=args.data_seed,
        data_dir=args.data_dir,
    )
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    score_options = {}
    if args.layer_interval:
        score_options["layer_interval"] = tuple(int(v) for v in args.layer_interval.split(","))
    if args.psi_layers:
        score_options["psi_layers"] = (
            tuple(int(v) for v in args.psi_layers.split(",")) if "," in args.psi_layers else args.psi_layers
        )
    return ProxyScorer(
        space,
        proxies,
        images,
        labels,
        build_options={"num_classes": 10, "img_size": 32},
        device=device,
        init_seed=args.init_seed,
        score_options=score_options,
        cache=cache if cache is not None else ScoreCache(args.score_cache, writer=writer),
        probe=describe_probe("cifar10_npz", args.batch_size, 32, 3, args.data_seed, args.data_dir),
    )


def prescore_order(data_dir, seed: int = 0, bench_sample: tuple[int, int] | None = None) -> list[str]:
    """All 15,625 NB201 arch strings: first the 723 of the NASLib validation subset (LIBRA's default selection set),
    then the rest in a seeded random order, so a partial pre-scoring is still useful.

    ``bench_sample=(N, S)``: only the N cells of ``lswag-bench nb201 --sample N --seed S``, in its draw order."""
    from lswag_lightning.spaces.nb201 import NUM_ARCHS, index_to_arch

    if bench_sample is not None:
        from lswag_lightning.bench.ground_truth import load_nb201_ground_truth, sample_ground_truth

        count, sample_seed = bench_sample
        gt = sample_ground_truth(load_nb201_ground_truth(data_dir), count, sample_seed)
        return [str(a) for a in gt.table["arch"]]

    first: list[str] = []
    try:
        path = resolve_data_dir(data_dir, must_contain="nb201") / "nb201" / "nb201_val_acc_naslib_subset.csv"
        first = [index_to_arch(int(i)) for i in pd.read_csv(path)["nb201_index"]]
    except FileNotFoundError:
        pass
    seen = set(first)
    order = np.random.default_rng(seed).permutation(NUM_ARCHS)
    return first + [a for a in (index_to_arch(int(i)) for i in order) if a not in seen]


def prescore_share(order: list[str], shard, worker: int = 0, workers: int = 1) -> list[str]:
    """The archs of one pre-scoring worker: shard ``shard`` of ``order`` (positions p with p % N == I), then
    every ``workers``-th of those from ``worker``."""
    return [order[p] for p in shard.positions(len(order))][worker::workers]


def _prescore_worker(job: tuple) -> tuple[int, int, float]:
    """Score this worker's share of the archs until the deadline; returns (worker, scored now, seconds)."""
    args, proxies, worker, workers, deadline = job
    import torch

    torch.set_num_threads(1)
    shard = args.shard
    writer = f"w{worker:02d}" if shard.count == 1 else f"s{shard.tag}-w{worker:02d}"
    scorer = make_live_scorer(args, proxies, writer=writer)
    space = scorer.space
    start = time.perf_counter()
    done = 0
    for arch in prescore_share(
        prescore_order(args.data_dir, bench_sample=args.prescore_bench_sample), shard, worker, workers
    ):
        if time.time() > deadline:
            break
        if scorer.cache.get(scorer.key, arch, proxies) is not None:
            continue
        try:
            scorer.score(space.decode(arch), arch)
        except Exception as err:  # keep going: one failing cell must not stop the others
            log.error("worker %d: %s failed: %s: %s", worker, arch, type(err).__name__, err)
            continue
        done += 1
    return worker, done, time.perf_counter() - start


def prescore_all(args, proxies) -> None:
    deadline = time.time() + args.deadline if args.deadline else math.inf
    jobs = [(args, proxies, w, args.workers, deadline) for w in range(args.workers)]
    start = time.perf_counter()
    if args.workers == 1:
        results = [_prescore_worker(jobs[0])]
    else:
        with mp.get_context("spawn").Pool(args.workers) as pool:
            results = pool.map(_prescore_worker, jobs)
    total = sum(r[1] for r in results)
    wall = time.perf_counter() - start
    print(
        f"pre-scored {total} archs with {args.workers} worker(s) in {wall:.1f} s "
        f"({wall / max(total, 1):.3f} s per arch overall)",
        flush=True,
    )
    prescore_coverage(args, proxies)


def prescore_coverage(args, proxies) -> dict[int, tuple[int, int]]:
    """Print and return, per shard I of ``args.shard.count``, (cells with every proxy in the score cache, cells of
    the shard): what every process sharing the cache has pre-scored so far, and which shards are unfinished."""
    from lswag_lightning.bench import Shard

    scorer = make_live_scorer(args, proxies)
    order = prescore_order(args.data_dir, bench_sample=args.prescore_bench_sample)
    count = args.shard.count
    coverage = {}
    for index in range(count):
        share = prescore_share(order, Shard(index, count))
        done = sum(scorer.cache.get(scorer.key, arch, proxies) is not None for arch in share)
        coverage[index] = (done, len(share))
    missing = [f"shard {i}/{count}: {d} of {n}" for i, (d, n) in coverage.items() if d < n]
    done = sum(d for d, _ in coverage.values())
    print(
        f"score cache {args.score_cache}: {done} of {len(order)} cells pre-scored"
        + (f"; unfinished: {'; '.join(missing)}" if missing else "; every shard complete"),
        flush=True,
    )
    return coverage


def fused_selection(args) -> dict:
    """The fused fitness's proxies: ``--fused-proxies`` or the greedy set of ``--fused-result``; SystemExit with the
    fix when neither is given."""
    from lswag_lightning.search.fitness import load_greedy_set

    if args.fused_proxies and args.fused_result:
        raise SystemExit("give --fused-proxies or --fused-result, not both")
    if args.fused_proxies:
        return {
            "proxies": [p.strip() for p in args.fused_proxies.split(",") if p.strip()],
            "how": "given with --fused-proxies",
        }
    if args.fused_result:
        return {"proxies": load_greedy_set(args.fused_result), "how": f"the greedy log-rank set of {args.fused_result}"}
    raise SystemExit(
        "--fitnesses fused needs its set: --fused-proxies a,b,c,... or --fused-result "
        "<lswag-libra --greedy out>/libra.json"
    )


# ---------------------------------------------------------------------------------------------- LIBRA trio
VAL_COLUMNS = {"cifar10": "cifar10_val_acc", "cifar100": "cifar100_val_acc", "imagenet16_120": "imagenet16_120_val_acc"}


def validation_table(args, scorer, candidates) -> pd.DataFrame:
    """The NAS-Bench-Suite-Zero validation subset (723 cells): arch, params, the three validation accuracies and the
    candidates' values from ``scorer``. ``attrs["source"]`` names the file."""
    path = resolve_data_dir(args.data_dir, must_contain="nb201") / "nb201" / "nb201_val_acc_naslib_subset.csv"
    val = pd.read_csv(path)
    space = scorer.space
    rows = []
    for _, row in val.iterrows():
        spec = space.decode(row["arch_str"])
        canon = space.encode(spec)
        result = scorer.score(spec, canon)
        rows.append(
            {
                "arch": canon,
                "params": space.param_count(spec),
                **{col: float(row[col]) for col in VAL_COLUMNS.values()},
                **{p: result.values[p] for p in candidates},
            }
        )
    table = pd.DataFrame(rows)
    table.attrs["source"] = path.name
    return table


def select_libra_on_validation(table: pd.DataFrame, candidates, dataset: str = "cifar10") -> dict:
    """LIBRA's selection on :func:`validation_table` with ``dataset``'s validation accuracy."""
    from lswag_lightning.analysis.libra import select

    column = VAL_COLUMNS[dataset]
    sel = select(table[list(dict.fromkeys(["arch", "params", column, *candidates]))], candidates, column, "params")
    return {
        "proxies": sel.proxies,
        "higher_is_better": {p: sel.higher_is_better[p] for p in sel.proxies},
        "datasets": [dataset],
        "how": f"LIBRA select() on {sel.n_rows} NB201 archs of {table.attrs['source']} ({dataset} validation "
        f"accuracy), candidates {', '.join(candidates)}",
        "selection": sel.to_dict(),
    }


def libra_fitness_plan(selections: dict[str, dict]) -> dict[str, dict]:
    """Group per-dataset LIBRA selections by their trio: one search fitness per distinct trio, evaluated on the
    datasets that chose it. Keys: ``libra`` when every dataset chose the same trio, else ``libra[<datasets>]``."""
    groups: dict[tuple, dict] = {}
    for dataset, sel in selections.items():
        key = tuple(sel["proxies"])
        if key not in groups:
            groups[key] = {**sel, "datasets": [], "how": []}
        groups[key]["datasets"].append(dataset)
        groups[key]["how"].append(sel["how"])
    plan = {}
    for group in groups.values():
        name = "libra" if len(groups) == 1 else "libra[" + "+".join(group["datasets"]) + "]"
        group["how"] = "; ".join(dict.fromkeys(group["how"]))
        plan[name] = group
    return plan


def make_scorer(args, proxies):
    """(scorer, live scorer). With ``--score-table`` (one or more tables): each proxy is read from the first table
    with a column for it, and the others are scored live (cached), merged proxy by proxy; archs a table lacks are
    scored live (:func:`lswag_lightning.search.stored_scores.tables_then_live`)."""
    from lswag_lightning.search import ScoreCache
    from lswag_lightning.search.stored_scores import tables_then_live

    if not args.score_table:
        live = make_live_scorer(args, proxies, writer=args.cache_writer)
        return live, live
    paths = args.score_table if isinstance(args.score_table, list) else [args.score_table]
    # a table holds one scoring setting: L-SWAG values under another --layer-interval/--psi-layers are not in it
    lswag_changed = bool(args.layer_interval or args.psi_layers)
    cache = ScoreCache(args.score_cache, writer=args.cache_writer)
    live = make_live_scorer(args, proxies, cache=cache)
    names = ", ".join(map(str, paths))

    def live_for(extra):
        if len(extra) == len(proxies):
            print(f"{names} hold none of {', '.join(proxies)} under these settings: all scored live", flush=True)
            return live
        print(f"{names} lack {', '.join(extra)}: those are scored live (cache {args.score_cache})", flush=True)
        return make_live_scorer(args, extra, cache=cache)

    scorer = tables_then_live(
        live.space,
        paths,
        proxies,
        fallback=live,
        live_for=live_for,
        skip=lambda p: lswag_changed and p.split(".")[0] == "lswag",
    )
    return scorer, live


# ------------------------------------------------------------------------------------------------ searches
def run_searches(args, scorer, fitnesses, eval_datasets=None) -> list[dict]:
    """Every (seed, strategy, fitness) search; ``eval_datasets`` maps a fitness to the datasets its returned cell is
    evaluated on (default: all three)."""
    from lswag_lightning.search import Search, SearchSettings, write_outputs

    runs = []
    for seed in args.seeds:
        for strategy in args.strategies:
            for fname, fitness in fitnesses.items():
                out = args.out / "runs" / f"{strategy}_{fname}_s{seed}"
                settings = SearchSettings(
                    "nb201",
                    strategy=strategy,
                    budget=args.budget,
                    seed=seed,
                    population=args.population,
                    tournament=args.tournament,
                    rank_pool=args.rank_pool,
                    build_options={"num_classes": 10, "img_size": 32},
                )
                search = Search(
                    scorer.space,
                    scorer,
                    fitness,
                    settings,
                    out_dir=out,
                    checkpoint_every=args.checkpoint_every,
                    progress=not args.no_progress,
                )
                t0 = time.perf_counter()
                result = search.run()
                write_outputs(search, result, out, command=f"nb201_search_eval.py ({strategy}, {fname}, seed {seed})")
                runs.append(
                    {
                        "strategy": strategy,
                        "fitness": fname,
                        "seed": seed,
                        "out": str(out),
                        "datasets": list((eval_datasets or {}).get(fname, TEST_COLUMNS)),
                        "best_arch": result.best["arch"],
                        "best_fitness": float(result.best["fitness"]),
                        "evaluations": len(search.history),
                        "archs": [e.arch for e in search.history],
                        "seconds": time.perf_counter() - t0,
                    }
                )
                print(
                    f"seed {seed} {strategy:<9} {fname:<6} -> {result.best['arch']} "
                    f"({len(search.history)} scored, {time.perf_counter() - t0:.1f} s)",
                    flush=True,
                )
    return runs


# ---------------------------------------------------------------------------------------------- evaluation
def load_test_accuracy(data_dir) -> pd.DataFrame:
    """The 200-epoch test accuracies of all 15,625 cells, indexed by canonical arch string."""
    path = resolve_data_dir(data_dir, must_contain="nb201") / "nb201" / "nasbench201_test_acc_200ep.csv"
    table = pd.read_csv(path)
    out = pd.DataFrame({k: table[c].to_numpy(dtype=float) for k, c in TEST_COLUMNS.items()})
    out.index = table["ArchitectureString"].astype(str)
    return out


def fitness_label(name: str) -> str:
    """The summary row of a fitness: per-dataset LIBRA searches (``libra[cifar10]``, ...) share the row ``libra``."""
    return name.split("[", 1)[0]


def evaluate_runs(runs: list[dict], acc: pd.DataFrame) -> pd.DataFrame:
    """One row per run: the returned arch's test accuracies and the best test accuracy among the archs it scored,
    on the datasets the run's fitness is evaluated on (NaN on the others)."""
    rows = []
    for run in runs:
        row = {k: run[k] for k in ("strategy", "fitness", "seed", "evaluations", "best_arch", "best_fitness")}
        row["label"] = fitness_label(run["fitness"])
        for ds in TEST_COLUMNS:
            use = ds in run.get("datasets", TEST_COLUMNS)
            row[ds] = float(acc.loc[run["best_arch"], ds]) if use else math.nan
            row[f"{ds}_oracle_scored"] = float(acc.loc[run["archs"], ds].max()) if use else math.nan
        rows.append(row)
    return pd.DataFrame(rows)


def is_stored(scorer, arch: str) -> bool:
    """Whether ``scorer`` has ``arch``'s values without computing them (score table row or score-cache hit)."""
    from lswag_lightning.search import MergedScorer, TableScorer

    if isinstance(scorer, MergedScorer):
        return all(is_stored(part, arch) for part in scorer.scorers)
    if isinstance(scorer, TableScorer):
        return arch in scorer
    cache = getattr(scorer, "cache", None)
    return cache is not None and cache.get(scorer.key, arch, scorer.proxies) is not None


def global_fitness_optimum(scorer, fitnesses, acc: pd.DataFrame, eval_datasets=None) -> dict[str, dict]:
    """When every cell is in the score table or cache: the cell each fitness ranks first over the whole space, and
    its test accuracy on the datasets the fitness is evaluated on. Empty when some cell has no stored scores."""
    from lswag_lightning.search.fitness import finite_or_worst

    archs = list(acc.index)
    out = {}
    values = {}
    for arch in archs:
        if not is_stored(scorer, arch):
            return {}
        values[arch] = scorer.score(scorer.space.decode(arch), arch).values
    for fname, fitness in fitnesses.items():
        pool = pd.DataFrame([[values[a][p] for p in fitness.proxies] for a in archs], columns=list(fitness.proxies))
        fit = fitness(pool)
        best = archs[int(np.argmax(finite_or_worst(fit)))]
        datasets = (eval_datasets or {}).get(fname, TEST_COLUMNS)
        out[fname] = {
            "arch": best,
            **{ds: float(acc.loc[best, ds]) if ds in datasets else math.nan for ds in TEST_COLUMNS},
        }
    return out


def summarise(per_run: pd.DataFrame) -> pd.DataFrame:
    rows = []
    for (strategy, fname), g in per_run.groupby(["strategy", "label"], sort=False):
        row = {"strategy": strategy, "fitness": fname, "seeds": int(g["seed"].nunique())}
        for ds in TEST_COLUMNS:
            v = g[ds].dropna().to_numpy()
            row[f"{ds}_mean"] = float(v.mean())
            row[f"{ds}_std"] = float(v.std(ddof=1)) if len(v) > 1 else 0.0
            row[f"{ds}_gap"] = OPTIMUM[ds] - float(v.mean())
            row[f"{ds}_oracle_scored_mean"] = float(g[f"{ds}_oracle_scored"].dropna().mean())
        rows.append(row)
    return pd.DataFrame(rows)


def computed_live(scorer) -> set[str]:
    """Proxies ``scorer`` computes live for every arch (a score table's fallback only serves archs it lacks)."""
    from lswag_lightning.search import MergedScorer, ProxyScorer

    if isinstance(scorer, MergedScorer):
        return {p for p, i in scorer.owner.items() if p in computed_live(scorer.scorers[i])}
    return set(scorer.proxies) if isinstance(scorer, ProxyScorer) else set()


def live_parts(scorer) -> list:
    """The live (computing) scorers inside ``scorer``: itself, a table's fallback, or a merged scorer's parts."""
    from lswag_lightning.search import MergedScorer, ProxyScorer, TableScorer

    if isinstance(scorer, MergedScorer):
        return [p for part in scorer.scorers for p in live_parts(part)]
    if isinstance(scorer, TableScorer):
        return live_parts(scorer.fallback) if scorer.fallback is not None else []
    return [scorer] if isinstance(scorer, ProxyScorer) else []


def _fmt(value: float) -> str:
    return "–" if not math.isfinite(value) else f"{value:.2f}"


def write_summary(
    args,
    summary: pd.DataFrame,
    per_run: pd.DataFrame,
    libra: dict[str, dict],
    global_opt: dict,
    scorer,
    seconds: float,
    fused: dict | None = None,
) -> Path:
    """``libra``: the LIBRA fitness plan (search fitness name -> selection with its ``datasets``); ``fused``: the
    fused fitness's proxies and where they came from (None without one)."""
    names = {"cifar10": "CIFAR-10", "cifar100": "CIFAR-100", "imagenet16_120": "ImageNet16-120"}
    live = live_parts(scorer)
    lines = [
        "# NB201 zero-shot search: test accuracy of the returned architecture",
        "",
        f"Seeds {', '.join(map(str, args.seeds))}; budget {args.budget} scored architectures per search; "
        f"evolution P = {args.population}, S = {args.tournament}, LIBRA rank pool {args.rank_pool}; "
        f"probe: {args.batch_size} CIFAR-10 training images (cifar10_npz, seed {args.data_seed}); "
        f"scorer {type(scorer).__name__} (live scoring on {live[0].device if live else 'none'}); "
        f"proxies scored: {', '.join(scorer.proxies)}.",
        "",
        *(
            [
                f"- LIBRA for {' / '.join(names[d] for d in sel['datasets'])} (search `{name}`): "
                f"{', '.join(sel['proxies'])} ({sel['how']})."
                for name, sel in libra.items()
            ]
            or ["No LIBRA fitness in this run."]
        ),
        *(
            [
                f"- Fused fitness (search `fused`, all three datasets): log-rank sum of "
                f"{', '.join(fused['proxies'])} ({fused['how']})."
            ]
            if fused
            else []
        ),
        "",
        *(
            ["The LIBRA row evaluates each dataset with the LIBRA fitness selected for that dataset.", ""]
            if len(libra) > 1
            else []
        ),
        "Test accuracies (200 epochs, nasbench201_test_acc_200ep.csv) are read only after the searches, to "
        "evaluate the returned architecture. Mean ± std (ddof 1) over seeds; gap = optimum − mean; "
        f"target gaps: {' / '.join(str(TARGET_GAP[d]) for d in TEST_COLUMNS)}.",
        "",
        "| strategy | fitness | " + " | ".join(names[d] for d in TEST_COLUMNS) + " | within target |",
        "|---|---|" + "---|" * len(TEST_COLUMNS) + "---|",
    ]
    for _, r in summary.iterrows():
        cells = [f"{r[f'{d}_mean']:.2f} ± {r[f'{d}_std']:.2f} (gap {r[f'{d}_gap']:.2f})" for d in TEST_COLUMNS]
        ok = all(r[f"{d}_gap"] <= TARGET_GAP[d] for d in TEST_COLUMNS)
        lines.append(f"| {r['strategy']} | {r['fitness']} | " + " | ".join(cells) + f" | {'yes' if ok else 'no'} |")
    lines.append("| benchmark optimum | – | " + " | ".join(f"{OPTIMUM[d]:.2f}" for d in TEST_COLUMNS) + " | |")
    lines += [
        "",
        "Diagnostic (not a result of the search): mean over seeds of the best test accuracy among the "
        "architectures each search scored (what a perfect fitness would have returned from the same samples):",
        "",
        "| strategy | fitness | " + " | ".join(names[d] for d in TEST_COLUMNS) + " |",
        "|---|---|" + "---|" * len(TEST_COLUMNS),
    ]
    for _, r in summary.iterrows():
        lines.append(
            f"| {r['strategy']} | {r['fitness']} | "
            + " | ".join(_fmt(r[f"{d}_oracle_scored_mean"]) for d in TEST_COLUMNS)
            + " |"
        )
    if global_opt:
        lines += [
            "",
            "The fitness's own optimum over all 15,625 cells (every cell is in the score cache): the cell "
            "each fitness ranks first, and its test accuracy:",
            "",
            "| fitness | arch | " + " | ".join(names[d] for d in TEST_COLUMNS) + " |",
            "|---|---|" + "---|" * len(TEST_COLUMNS),
        ]
        for fname, g in global_opt.items():
            lines.append(f"| {fname} | `{g['arch']}` | " + " | ".join(_fmt(g[d]) for d in TEST_COLUMNS) + " |")
    lines += [
        "",
        "Per run: `per_run.csv`; each search's ranked list, report and curve: `runs/<strategy>_<fitness>_s<seed>/`.",
        f"Wall time {seconds:.0f} s (live scoring: {sum(p.computed for p in live)} computations in this run, "
        f"{sum(p.hits for p in live)} "
        "score-cache hits).",
    ]
    path = args.out / "summary.md"
    path.write_text("\n".join(lines) + "\n")
    return path


# ----------------------------------------------------------------------------------------------------- main
def _sample_and_seed(text: str) -> tuple[int, int]:
    try:
        count, seed = (int(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected N,S (sample size and seed, e.g. 1000,0), got {text!r}") from None
    return count, seed


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--seeds", default="0,1,2,3,4", help="comma-separated search seeds (default 0..4)")
    p.add_argument("--budget", type=int, default=1000)
    p.add_argument("--strategies", default="evolution,random")
    p.add_argument("--fitnesses", default="lswag,libra", help="comma-separated: libra, fused and/or proxy names")
    p.add_argument("--population", type=int, default=50)
    p.add_argument("--tournament", type=int, default=10)
    p.add_argument(
        "--rank-pool",
        choices=("history", "population"),
        default="history",
        help="pool of LIBRA's rank fusion during evolution (see lswag_lightning.search.loop)",
    )
    p.add_argument("--libra-proxies", help="LIBRA's proxies a,b,c (else --libra-result or --libra-select)")
    p.add_argument("--libra-result", type=Path, help="a lswag-libra libra.json")
    p.add_argument(
        "--libra-select",
        choices=("naslib-val", "naslib-val-cifar10"),
        default="naslib-val",
        help="how to choose LIBRA's proxies when none are given: naslib-val (default) runs LIBRA's "
        "selection on the NASLib validation subset once per dataset, with that dataset's validation "
        "accuracy, and evaluates each dataset with its own LIBRA fitness; naslib-val-cifar10 selects "
        "once on CIFAR-10 validation accuracy for all three",
    )
    p.add_argument("--libra-candidates", default=DEFAULT_CANDIDATES, help="proxies LIBRA may choose from")
    p.add_argument("--fused-proxies", help="fitness fused: its proxies a,b,c,... (log-rank fusion)")
    p.add_argument(
        "--fused-result", type=Path, help="fitness fused: a lswag-libra --greedy libra.json whose greedy set is fused"
    )
    p.add_argument("--score-cache", type=Path, help="score cache folder (default OUT/score_cache)")
    p.add_argument(
        "--cache-writer",
        default="main",
        help="this process's file in the score cache (<name>.jsonl): give parallel runs sharing one "
        "cache different names",
    )
    p.add_argument(
        "--score-table",
        type=Path,
        nargs="+",
        help="stored proxy values to reuse (csv/parquet: arch + one column per proxy, e.g. lswag-bench's "
        "table.csv or results/nb201_all_cells_scores.parquet); several tables: each proxy comes from "
        "the first with its column; proxies none holds, and archs a table lacks, are scored live",
    )
    p.add_argument("--prescore-all", action="store_true", help="score all 15,625 cells first (parallel workers)")
    p.add_argument("--prescore-only", action="store_true", help="stop after --prescore-all")
    p.add_argument(
        "--prescore-bench-sample",
        type=_sample_and_seed,
        default=None,
        metavar="N,S",
        help="--prescore-all scores only the N cells of `lswag-bench nb201 --sample N --seed S`",
    )
    p.add_argument("--workers", type=int, default=1, help="processes for --prescore-all")
    p.add_argument(
        "--shard",
        default="0/1",
        metavar="I/N",
        help="--prescore-all scores only shard I of N (0-based) of the cells, for N processes or machines "
        "sharing --score-cache (default 0/1: all)",
    )
    p.add_argument("--deadline", type=float, default=None, help="seconds allowed for --prescore-all")
    p.add_argument("--device", default=None, help="torch device (default cuda if available)")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--data-seed", type=int, default=0)
    p.add_argument("--init-seed", type=int, default=0)
    p.add_argument("--layer-interval", help="L-SWAG interval lo,hi (default: all layers)")
    p.add_argument("--psi-layers", help="L-SWAG Ψ activation points: upto | interval | all | lo,hi (default upto)")
    p.add_argument("--data-dir", type=Path, default=None)
    p.add_argument("--checkpoint-every", type=int, default=100)
    p.add_argument("--threads", type=int, default=None, help="torch.set_num_threads")
    p.add_argument("--no-progress", action="store_true")
    return p


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    from lswag_lightning.bench import Shard

    try:
        args.shard = Shard.parse(args.shard)
    except ValueError as err:
        parser.error(str(err))
    if args.shard.count > 1 and not (args.prescore_all and args.prescore_only):
        parser.error(
            "--shard splits the pre-scoring: give it with --prescore-all --prescore-only, then run the "
            "searches once, without --shard, on the shared --score-cache"
        )
    import torch

    from lswag_lightning.search import make_fitness
    from lswag_lightning.search.fitness import FusedFitness, LibraFitness

    if args.threads:
        torch.set_num_threads(args.threads)
    args.seeds = [int(s) for s in str(args.seeds).split(",") if s.strip()]
    args.strategies = [s.strip() for s in args.strategies.split(",") if s.strip()]
    fitness_names = [s.strip() for s in args.fitnesses.split(",") if s.strip()]
    args.out.mkdir(parents=True, exist_ok=True)
    args.score_cache = args.score_cache or args.out / "score_cache"
    start = time.perf_counter()

    libra: dict[str, dict] = {}  # search fitness name -> LIBRA selection (proxies, datasets, how)
    candidates = [c.strip() for c in args.libra_candidates.split(",") if c.strip()]
    if "libra" in fitness_names:
        if args.libra_proxies and args.libra_result:
            raise SystemExit("give --libra-proxies or --libra-result, not both")
        if args.libra_proxies:
            libra = {
                "libra": {
                    "proxies": [p.strip() for p in args.libra_proxies.split(",")],
                    "higher_is_better": {},
                    "datasets": list(TEST_COLUMNS),
                    "how": "given with --libra-proxies",
                }
            }
        elif args.libra_result:
            from lswag_lightning.search import load_libra_result

            proxies, hib, _ = load_libra_result(args.libra_result)
            libra = {
                "libra": {
                    "proxies": proxies,
                    "higher_is_better": hib,
                    "datasets": list(TEST_COLUMNS),
                    "how": f"from {args.libra_result}",
                }
            }
    fused = fused_selection(args) if "fused" in fitness_names else None
    plain = [p for p in fitness_names if p not in ("libra", "fused")]
    proxies = list(
        dict.fromkeys(
            plain + [p for sel in libra.values() for p in sel["proxies"]] + (fused["proxies"] if fused else [])
        )
    )
    if "libra" in fitness_names and not libra:
        proxies = list(dict.fromkeys(proxies + candidates))
    if args.prescore_all:
        prescore_all(args, proxies)
        if args.prescore_only:
            return 0
    scorer, live = make_scorer(args, proxies)
    if "libra" in fitness_names and not libra:
        datasets = list(TEST_COLUMNS) if args.libra_select == "naslib-val" else ["cifar10"]
        val_table = validation_table(args, scorer, candidates)
        selections = {ds: select_libra_on_validation(val_table, candidates, ds) for ds in datasets}
        libra = libra_fitness_plan(selections)
        if args.libra_select == "naslib-val-cifar10":
            libra["libra"]["datasets"] = list(TEST_COLUMNS)
        for name, sel in libra.items():
            print(f"LIBRA selection {name}: {sel['proxies']} for {', '.join(sel['datasets'])}", flush=True)
    write_json(
        args.out / "libra_proxies.json",
        {**libra, **({"fused": fused} if fused else {})},
        nonfinite="keep",
        fallback=str,
        indent=1,
    )
    needed = list(
        dict.fromkeys(
            plain + [p for sel in libra.values() for p in sel["proxies"]] + (fused["proxies"] if fused else [])
        )
    )
    if computed_live(scorer) - set(needed):  # the searches compute live only what their fitnesses use
        scorer, live = make_scorer(args, needed)
    fitnesses, eval_datasets = {}, {}
    for name in fitness_names:
        if name == "libra":
            for fname, sel in libra.items():
                fitnesses[fname] = LibraFitness(
                    sel["proxies"], "rank_mean", sel.get("higher_is_better"), source=sel["how"]
                )
                eval_datasets[fname] = sel["datasets"]
        elif name == "fused":
            fitnesses[name] = FusedFitness(fused["proxies"], "log_rank", source=fused["how"])
        else:
            fitnesses[name] = make_fitness(name)
    runs = run_searches(args, scorer, fitnesses, eval_datasets)

    # ---- evaluation: the only place the test accuracies are read
    acc = load_test_accuracy(args.data_dir)
    per_run = evaluate_runs(runs, acc)
    per_run.to_csv(args.out / "per_run.csv", index=False)
    summary = summarise(per_run)
    summary.to_csv(args.out / "summary.csv", index=False)
    global_opt = global_fitness_optimum(scorer, fitnesses, acc, eval_datasets)
    path = write_summary(args, summary, per_run, libra, global_opt, scorer, time.perf_counter() - start, fused)
    write_json(
        args.out / "summary.json",
        {"summary": summary.to_dict(orient="records"), "global_fitness_optimum": global_opt, "libra": libra},
        nonfinite="keep",
        fallback=str,
        indent=1,
    )
    print(path.read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
