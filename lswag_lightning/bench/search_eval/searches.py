"""Every (seed, strategy, fitness) search of the evaluation, each written to
``OUT/runs/<strategy>_<fitness>_s<seed>``."""

from __future__ import annotations

import time

from lswag_lightning.bench.search_eval.outcome import TEST_COLUMNS


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
                write_outputs(search, result, out, command=f"lswag-search-eval ({strategy}, {fname}, seed {seed})")
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
