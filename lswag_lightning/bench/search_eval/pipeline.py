"""The search evaluation end to end: choose the fitnesses' proxies, build the shared scorer, run every search, then
(and only then) read the test accuracies of the returned cells and write ``per_run.csv``, ``summary.csv``,
``summary.json``, ``summary.md`` and ``libra_proxies.json``."""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

from lswag_lightning.bench.search_eval.markdown import write_summary
from lswag_lightning.bench.search_eval.outcome import (
    evaluate_runs,
    global_fitness_optimum,
    load_test_accuracy,
    summarise,
)
from lswag_lightning.bench.search_eval.scorers import computed_live, make_scorer
from lswag_lightning.bench.search_eval.searches import run_searches
from lswag_lightning.bench.search_eval.selection import (
    fused_selection,
    given_libra,
    make_fitnesses,
    select_libra,
)
from lswag_lightning.jsonio import write_json


def _proxies(plain: list[str], libra: dict[str, dict], fused: dict | None) -> list[str]:
    """Every proxy the fitnesses read, in order (plain proxy fitnesses, LIBRA's trios, the fused set)."""
    return list(
        dict.fromkeys(
            plain + [p for sel in libra.values() for p in sel["proxies"]] + (fused["proxies"] if fused else [])
        )
    )


def evaluate_searches(args: argparse.Namespace) -> Path:
    """The evaluation of ``lswag-search-eval`` (arguments as its parser gives them, lists parsed: ``seeds``,
    ``strategies``, ``fitnesses``, ``libra_candidates``); returns the path of ``summary.md``. ``ValueError`` for a
    fitness set that cannot be formed (e.g. ``fused`` without its set)."""
    start = time.perf_counter()
    names = args.fitnesses
    libra = given_libra(args) if "libra" in names else {}  # search fitness name -> LIBRA selection
    fused = fused_selection(args) if "fused" in names else None
    plain = [p for p in names if p not in ("libra", "fused")]
    select = "libra" in names and not libra
    scorer, _ = make_scorer(args, _proxies(plain, libra, fused) + (args.libra_candidates if select else []))
    if select:
        libra = select_libra(args, scorer)
    write_json(
        args.out / "libra_proxies.json",
        {**libra, **({"fused": fused} if fused else {})},
        nonfinite="keep",
        fallback=str,
        indent=1,
    )
    needed = _proxies(plain, libra, fused)
    if computed_live(scorer) - set(needed):  # the searches compute live only what their fitnesses use
        scorer, _ = make_scorer(args, needed)
    fitnesses, eval_datasets = make_fitnesses(names, libra, fused)
    runs = run_searches(args, scorer, fitnesses, eval_datasets)
    return _write_evaluation(args, runs, scorer, fitnesses, eval_datasets, libra, fused, start)


def _write_evaluation(
    args: argparse.Namespace,
    runs: list[dict],
    scorer: Any,
    fitnesses: dict[str, Any],
    eval_datasets: dict[str, list[str]],
    libra: dict[str, dict],
    fused: dict | None,
    start: float,
) -> Path:
    """The evaluation proper: the only place the test accuracies are read, after every search has finished."""
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
    return path
