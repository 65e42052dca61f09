"""The family tutorial (issue 23, item 4): from a family YAML file to a zero-cost pick judged against random picks.

Every step is the real command, run as a subprocess of this interpreter (``python -m lswag_lightning.cli.<x>``,
what ``lswag-<x>`` runs), its output in ``<out>/logs/<step>.log``:

1. ``sweep``: ``lswag-train -m space=<family> candidate.index=range(0,N) data=digits trainer.max_epochs=E`` (the
   index-th seeded sample of the family, scored at initialisation by the callback, trained briefly);
2. ``collect``: ``lswag-collect`` on the sweep: one table of proxies and accuracies;
3. ``libra``: ``lswag-libra`` on that table (validation accuracy, the callback's proxies, params as LIBRA's bias
   variable) chooses the proxies to fuse;
4. ``search``: ``lswag-search <family>`` with that fitness (``--fitness libra --libra-result``; the single proxy
   when LIBRA keeps only one), ``--budget B`` distinct candidates scored on a digits probe batch;
5. ``final``: the top K of the search and K random candidates of the family *in the same parameter range* (the
   top K's smallest to largest count, widened by 10% each way, so size alone cannot decide), each trained with the
   same budget as the sweep for S training seeds: one ``lswag-train -m`` over ``candidate.arch`` x ``seed``.

:func:`compare` turns the final records into the comparison (mean and standard deviation over seeds, per candidate
and per group) and an honest verdict: the zero-cost picks beat the random ones only when their mean is higher by
more than the spread of the group means over seeds.
"""

from __future__ import annotations

import json
import logging
import math
import os
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

#: the callback's default proxies, which the sweep records and LIBRA chooses from (params is LIBRA's bias variable)
PROXIES = ("lswag", "zico", "swap", "naswot", "synflow", "snip", "grad_norm", "jacov", "flops")
#: the random picks' parameter range: the top K's smallest to largest count, widened by this fraction each way
RANGE_MARGIN = 0.1
#: the tutorial's data: the embedded digits at 16 px, 3 channels (``conf/data/digits.yaml``), probe and training
DATA = "digits"
IMG_SIZE = 16


class TutorialError(RuntimeError):
    """A step's command failed; the message names the step, its exit code and its log."""


@dataclass
class TutorialPlan:
    """What one tutorial run does (see the module docstring): ``family`` (a YAML file), ``out`` (its folder),
    ``sweep`` (N candidates), ``epochs`` (E, every training job), ``budget`` (B), ``top`` (K), ``seeds`` (S),
    ``random_seed`` (the draw of the random picks) and ``train_overrides`` (further ``lswag-train`` overrides for
    every training job, e.g. ``trainer.limit_train_batches=2`` for a quick run)."""

    family: Path
    out: Path
    sweep: int = 20
    epochs: int = 3
    budget: int = 300
    top: int = 3
    seeds: int = 3
    random_seed: int = 0
    train_overrides: list[str] = field(default_factory=list)

    def train_args(self) -> list[str]:
        """The arguments every training job shares: data, budget, proxies, one thread, no logger."""
        return [
            f"space={self.family}",
            f"data={DATA}",
            f"data.img_size={IMG_SIZE}",
            f"trainer.max_epochs={self.epochs}",
            f"callbacks.zero_cost.proxies=[{','.join([*PROXIES, 'params'])}]",
            "logger=none",
            "threads=1",
            *self.train_overrides,
        ]


def run_command(step: str, module: str, args: Sequence[Any], log_dir: Path) -> float:
    """Run ``python -m lswag_lightning.cli.<module> ARGS`` (output to ``<log_dir>/<step>.log``); its wall seconds.
    :class:`TutorialError` when it exits non-zero."""
    log_dir.mkdir(parents=True, exist_ok=True)
    argv = [sys.executable, "-m", f"lswag_lightning.cli.{module}", *map(str, args)]
    log_file = log_dir / f"{step}.log"
    log.info("%s: %s", step, " ".join(argv[2:]))
    start = time.perf_counter()
    with log_file.open("w") as fh:
        fh.write(" ".join(argv) + "\n\n")
        fh.flush()
        proc = subprocess.run(argv, stdout=fh, stderr=subprocess.STDOUT, env=dict(os.environ), check=False)
    if proc.returncode != 0:
        tail = "\n".join(log_file.read_text().splitlines()[-5:])
        raise TutorialError(f"{step}: {module} exited with {proc.returncode}; see {log_file}:\n{tail}")
    return time.perf_counter() - start


def search_fitness(libra_json: Path) -> tuple[list[str], list[str]]:
    """``(search arguments, chosen proxies)`` from ``lswag-libra``'s result: LIBRA's fused fitness when it chose two
    or three proxies, else the one proxy it kept (``lswag-search`` fuses two or three)."""
    chosen = list(json.loads(libra_json.read_text())["selection"]["proxies"])
    if not chosen:
        raise TutorialError(f"{libra_json}: LIBRA chose no proxy")
    if len(chosen) == 1:
        return ["--fitness", chosen[0]], chosen
    return ["--fitness", "libra", "--libra-result", str(libra_json)], chosen


def random_in_range(
    space: Any, k: int, low: int, high: int, exclude: Sequence[str], seed: int, tries: int = 20000
) -> list[str]:
    """``k`` distinct random candidates (encoded) of ``space`` whose parameter count (at the tutorial's size) is in
    ``[low, high]``, none of ``exclude``; seeded draws of ``space.sample``. :class:`TutorialError` when ``tries``
    draws do not find ``k``."""
    gen = np.random.default_rng(seed)
    picked: list[str] = []
    for _ in range(tries):
        spec = space.sample(gen)
        arch = space.encode(spec)
        if arch in picked or arch in exclude:
            continue
        if low <= space.param_count(spec, num_classes=10, img_size=IMG_SIZE) <= high:
            picked.append(arch)
            if len(picked) == k:
                return picked
    raise TutorialError(f"only {len(picked)} of {k} random candidates with {low}..{high} parameters in {tries} draws")


def _mean_std(values: Sequence[float]) -> dict[str, float]:
    arr = np.asarray(values, dtype=float)
    return {"mean": float(arr.mean()), "std": float(arr.std(ddof=1)) if len(arr) > 1 else 0.0, "n": len(arr)}


def compare(records: Sequence[dict], groups: dict[str, list[str]], accuracy: str = "test_acc") -> dict[str, Any]:
    """The comparison of the final jobs: per candidate and per group, ``accuracy`` (in %) as mean and standard
    deviation over the training seeds, and the verdict.

    A group's number is the mean over its candidates and seeds; its spread is the standard deviation over seeds of
    the group mean (each seed's mean over the group's candidates), so it says how much the comparison moves with the
    training seed. ``beat`` is True when the zero-cost group's mean is higher than the random group's by more than
    the larger of the two spreads and of one image of the split (``one_sample``: 100 / its size, in points; a
    smaller difference is a fraction of one image), ``False`` when it is lower, ``None`` (not decided) in between.
    """
    ok = [r for r in records if r.get("status") == "ok" and r.get(accuracy) is not None]
    by_arch: dict[str, dict[int, float]] = {}
    for r in ok:
        by_arch.setdefault(r["arch"], {})[int(r["seed"])] = 100.0 * float(r[accuracy])
    out: dict[str, Any] = {"accuracy": accuracy, "unit": "%", "candidates": {}, "groups": {}}
    for group, archs in groups.items():
        missing = [a for a in archs if a not in by_arch]
        if missing:
            raise TutorialError(f"no finished final job for the {group} candidate(s) {missing}")
        seeds = sorted(set.intersection(*(set(by_arch[a]) for a in archs)))
        for arch in archs:
            params = next(r["params"] for r in ok if r["arch"] == arch)
            out["candidates"][arch] = {"group": group, "params": params, **_mean_std(list(by_arch[arch].values()))}
        per_seed = [float(np.mean([by_arch[a][s] for a in archs])) for s in seeds]
        every = [by_arch[a][s] for a in archs for s in seeds]
        out["groups"][group] = {"mean": float(np.mean(every)), "spread": _mean_std(per_seed)["std"], "seeds": seeds}
    zc, rnd = out["groups"]["zero-cost"], out["groups"]["random"]
    diff = zc["mean"] - rnd["mean"]
    sizes = {_split_size(r, accuracy) for r in ok} - {None}
    out["one_sample"] = 100.0 / min(sizes) if sizes else 0.0
    margin = max(zc["spread"], rnd["spread"], out["one_sample"])
    out["difference"] = diff
    out["beat"] = True if diff > margin else (False if diff < 0 else None)
    return out


def _split_size(record: dict, accuracy: str) -> int | None:
    """The number of images ``accuracy`` was measured on (the record's test or validation split), None if unknown."""
    sizes = (record.get("dataset") or {}).get("sizes") or {}
    size = sizes.get("test" if accuracy.startswith("test") else "val")
    return int(size) if size else None


def verdict_text(comparison: dict[str, Any]) -> str:
    """One sentence saying whether the zero-cost picks beat the random ones, with the numbers."""
    zc, rnd = comparison["groups"]["zero-cost"], comparison["groups"]["random"]
    diff = comparison["difference"]
    numbers = (
        f"zero-cost picks {zc['mean']:.1f} ± {zc['spread']:.1f} vs random picks {rnd['mean']:.1f} ± "
        f"{rnd['spread']:.1f} % {comparison['accuracy']} (difference {diff:+.1f} points)"
    )
    image = f"one image of the split = {comparison['one_sample']:.2f} points"
    if comparison["beat"] is True:
        return (
            f"The zero-cost picks beat the random picks of the same size: {numbers}, more than the seed spread and "
            f"{image}."
        )
    if comparison["beat"] is False:
        return f"The zero-cost picks did not beat the random picks of the same size: {numbers}."
    return f"No clear winner: {numbers}, within the seed spread or {image}."


def run_tutorial(plan: TutorialPlan) -> dict[str, Any]:
    """Run the five steps (module docstring) and write ``<out>/tutorial.json`` and ``<out>/tutorial.md``; returns
    the summary. :class:`TutorialError` when a step fails; a bad family file fails first, before any training."""
    import pandas as pd

    from lswag_lightning.search.handoff import hydra_quote
    from lswag_lightning.spaces import load_space

    plan.family, out = plan.family.resolve(), plan.out.resolve()
    logs, seconds, start = out / "logs", {}, time.perf_counter()
    space = load_space(plan.family).check()
    index = f"candidate.index=range(0,{plan.sweep})"
    seconds["sweep"] = run_command(
        "sweep", "train", ["-m", *plan.train_args(), index, f"hydra.sweep.dir={out}/sweep"], logs
    )
    seconds["collect"] = run_command("collect", "collect", [out / "sweep", "--out", out / "collect"], logs)
    libra_args = [out / "collect" / "table.csv", "--accuracy", "val_acc", "--params", "params", "--proxies", *PROXIES]
    seconds["libra"] = run_command("libra", "libra", [*libra_args, "--no-plots", "--out", out / "libra"], logs)
    fitness, chosen = search_fitness(out / "libra" / "libra.json")
    search_args = [plan.family, "--budget", plan.budget, *fitness, "--probe-data", DATA, "--img-size", IMG_SIZE]
    seconds["search"] = run_command("search", "search", [*search_args, "--no-progress", "--out", out / "search"], logs)
    ranked = pd.read_csv(out / "search" / "ranked.csv")
    top = [str(a) for a in ranked["arch"].iloc[: plan.top]]
    top_params = ranked["params"].iloc[: plan.top]
    low, high = int(top_params.min() * (1 - RANGE_MARGIN)), int(math.ceil(top_params.max() * (1 + RANGE_MARGIN)))
    random_picks = random_in_range(space, plan.top, low, high, top, plan.random_seed)
    final = [
        "-m",
        *plan.train_args(),
        "candidate.arch=" + ",".join(hydra_quote(a) for a in [*top, *random_picks]),
        "seed=" + ",".join(str(s) for s in range(plan.seeds)),
        f"hydra.sweep.dir={out}/final",
    ]
    seconds["final"] = run_command("final", "train", final, logs)
    records = [json.loads(p.read_text()) for p in sorted((out / "final").rglob("result.json"))]
    groups = {"zero-cost": top, "random": random_picks}
    comparison, on_validation = compare(records, groups), compare(records, groups, accuracy="val_acc")
    seconds["total"] = time.perf_counter() - start
    summary = {
        "family": str(plan.family),
        "plan": {k: v for k, v in vars(plan).items() if k not in ("family", "out")},
        "libra": {"chosen": chosen, **_libra_numbers(out / "libra" / "libra.json")},
        "search": {"scored": len(ranked), "fitness": fitness[1], "top": top, "params_range": [low, high]},
        "random": random_picks,
        "comparison": comparison,
        "comparison_val": on_validation,
        "verdict": verdict_text(comparison),
        "verdict_val": verdict_text(on_validation),
        "seconds": {k: round(v, 1) for k, v in seconds.items()},
    }
    (out / "tutorial.json").write_text(json.dumps(summary, indent=2) + "\n")
    (out / "tutorial.md").write_text(tutorial_markdown(summary))
    return summary


def _libra_numbers(libra_json: Path) -> dict[str, Any]:
    """LIBRA's held-out Spearman ρ (mean and std over splits) beside the best single proxy's, from its result."""
    data = json.loads(libra_json.read_text()).get("summary", {})
    return {k: data[k] for k in ("libra", "best_single") if k in data}


def tutorial_markdown(summary: dict[str, Any]) -> str:
    """The tutorial's report: the steps, LIBRA's choice, the search, the comparison table and the verdict."""
    plan, cmp_, val = summary["plan"], summary["comparison"], summary["comparison_val"]
    libra = summary["libra"]
    heldout = libra.get("libra", {})
    lines = [
        "# Family tutorial",
        "",
        f"- Family: `{summary['family']}`; data: {DATA} at {IMG_SIZE} px; every training job "
        f"{plan['epochs']} epoch(s) ({' '.join(plan['train_overrides']) or 'no further overrides'}).",
        f"- Sweep: {plan['sweep']} seeded candidates; LIBRA chose {', '.join(libra['chosen'])} "
        f"(held-out Spearman ρ on the sweep {heldout.get('mean', float('nan')):.3f} ± "
        f"{heldout.get('std', float('nan')):.3f}).",
        f"- Search: {summary['search']['scored']} candidates scored, fitness {summary['search']['fitness']}; top "
        f"{plan['top']} with {summary['search']['params_range'][0]:,}..{summary['search']['params_range'][1]:,} "
        f"parameters, and {plan['top']} random candidates in that range (draw seed {plan['random_seed']}).",
        f"- Each trained with {plan['seeds']} seeds; accuracy in %, mean ± std over seeds; the verdict is on the "
        "test split (the validation split's beside it).",
        "",
        "| group | architecture | params | test accuracy (%) | validation accuracy (%) |",
        "|---|---|---:|---|---|",
    ]
    for arch, row in cmp_["candidates"].items():
        v = val["candidates"][arch]
        lines.append(
            f"| {row['group']} | `{arch}` | {row['params']:,} | {row['mean']:.1f} ± {row['std']:.1f} | "
            f"{v['mean']:.1f} ± {v['std']:.1f} |"
        )
    lines += ["", summary["verdict"], "", f"On the validation split: {summary['verdict_val']}", ""]
    lines += ["Seconds per step: " + json.dumps(summary["seconds"]), ""]
    return "\n".join(lines)
