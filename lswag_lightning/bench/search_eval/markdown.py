"""``summary.md``: the evaluation's table (test accuracy of the returned cell, mean ± std over seeds, gap to the
optimum), the oracle diagnostic, each fitness's whole-space optimum, and how the fitnesses were chosen."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd

from lswag_lightning.bench.search_eval.outcome import OPTIMUM, TARGET_GAP, TEST_COLUMNS
from lswag_lightning.bench.search_eval.scorers import live_parts


def _fmt(value: float) -> str:
    return "–" if not math.isfinite(value) else f"{value:.2f}"


NAMES = {"cifar10": "CIFAR-10", "cifar100": "CIFAR-100", "imagenet16_120": "ImageNet16-120"}


def _header_lines(args, libra: dict[str, dict], scorer, fused: dict | None) -> list[str]:
    """The title, the setting, and how each fitness's proxies were chosen."""
    names = NAMES
    live = live_parts(scorer)
    return [
        "# NB201 zero-shot search: test accuracy of the returned architecture",
        "",
        f"Seeds {', '.join(map(str, args.seeds))}; budget {args.budget} scored architectures per search; "
        f"evolution P = {args.population}, S = {args.tournament}, LIBRA rank pool {args.rank_pool}; "
        f"probe: {args.batch_size} CIFAR-10 training images (cifar10_npz, seed {args.probe_seed}); "
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
    ]


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
    names = NAMES
    live = live_parts(scorer)
    lines = [
        *_header_lines(args, libra, scorer, fused),
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
