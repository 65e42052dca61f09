"""The search loop: random search and regularised evolution under constraints, seeded and resumable.

Budget: the number of distinct architectures scored (evaluations). Every proposal is checked before it is scored,
and costs nothing from the budget when it is rejected:

1. a *duplicate* (its arch string was already evaluated in this search) is not scored again;
2. *over budget*: ``space.param_count(spec, **build_options) > max_params``, or, when ``max_flops`` is set, the
   FLOPs of one sample's forward pass (``torch.utils.flop_counter`` on the CPU, a multiply-add = 2, as the
   ``flops`` proxy counts) exceed ``max_flops``.
After ``max_failed_proposals`` rejections in a row the search stops: with an :class:`InfeasibleBudgetError`
(a ``ValueError``) naming the smallest model it saw when nothing feasible was found at all, otherwise early, with
``stopped`` saying why (e.g. the feasible part of a small space is exhausted).

Strategies (one ``numpy.random.Generator`` seeded with ``seed`` drives every random choice):

- ``random``: each proposal is ``space.sample(rng)``.
- ``evolution`` (regularised / aging evolution, Real et al. 2019): proposals are ``space.sample(rng)`` until
  ``population`` architectures have been evaluated; then each proposal draws ``tournament`` distinct members of the
  population uniformly, takes the fittest (first drawn on ties; NaN fitness ranks last) as parent and returns
  ``space.mutate(parent, rng)``. Each evaluated child joins the population and the *oldest* member leaves.

Fitness pool (``rank_pool``). A pool-dependent fitness (LIBRA's rank fusion) is recomputed whenever the pool
changes. ``history`` (default): the ranks are taken among *all architectures scored so far* in this search
(including those that left the population), recomputed after every evaluation; ``population``: among the current
population members only (the tournament then compares ranks within the population). The final ranking
(``ranked.csv``) and the best-so-far curve always use the history: after evaluation t, the best is the top of the
fitness computed over the first t architectures.

Resume: the state (history, population, counters, best-so-far curve and the generator's state right after the
last completed evaluation) is written to ``<out>/checkpoint.json`` every ``checkpoint_every`` evaluations and at the
end. A new :class:`Search` on the same ``out`` with the same settings (the budget may grow), fitness and scorer key
continues from it and ends exactly as an uninterrupted run would.
"""

from __future__ import annotations

import json
import logging
import math
import os
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from lswag_lightning.candidates import count_flops
from lswag_lightning.jsonio import dumps, encode_float
from lswag_lightning.search.evaluation import Evaluation, SearchResult
from lswag_lightning.search.fitness import Fitness, finite_or_worst
from lswag_lightning.search.scoring import Scorer
from lswag_lightning.search.settings import SearchSettings

log = logging.getLogger(__name__)

CHECKPOINT_FORMAT = 1
CHECKPOINT_NAME = "checkpoint.json"


class InfeasibleBudgetError(ValueError):
    """No architecture meeting the constraints was found within the allowed number of proposals."""


# ------------------------------------------------------------------------------------------------- search
class Search:
    """A seeded, resumable search of ``space`` scored by ``scorer`` under ``fitness`` (module docstring).

    Args:
        space: a search space (``sample``, ``mutate``, ``encode``, ``decode``, ``param_count``, ``build``).
        scorer: a :class:`~lswag_lightning.search.scoring.Scorer` computing at least ``fitness.proxies``.
        fitness: a :class:`~lswag_lightning.search.fitness.Fitness`.
        settings: :class:`SearchSettings` (validated here).
        out_dir: folder of ``checkpoint.json`` (None: no checkpoint, no resume).
        checkpoint_every: write the checkpoint every this many evaluations (and at the end).
        resume: continue from ``<out_dir>/checkpoint.json`` when it exists (else it is overwritten).
        progress: show a tqdm progress bar.
    """

    def __init__(
        self,
        space: Any,
        scorer: Scorer,
        fitness: Fitness,
        settings: SearchSettings,
        *,
        out_dir: str | os.PathLike | None = None,
        checkpoint_every: int = 1,
        resume: bool = True,
        progress: bool = False,
    ) -> None:
        self.space = space
        self.scorer = scorer
        self.fitness = fitness
        self.settings = settings.validate()
        missing = [p for p in fitness.scored if p not in scorer.proxies]
        if missing:
            raise ValueError(
                f"the scorer does not compute {missing}, which the fitness {fitness.name!r} needs "
                f"(scorer proxies: {', '.join(scorer.proxies)})"
            )
        if isinstance(checkpoint_every, bool) or not isinstance(checkpoint_every, int) or checkpoint_every < 1:
            raise ValueError(f"checkpoint_every must be an integer >= 1, got {checkpoint_every!r}")
        self.checkpoint_every = checkpoint_every
        self.out_dir = None if out_dir is None else Path(out_dir)
        self.progress = progress
        self.rng = np.random.default_rng(self.settings.seed)
        self.history: list[Evaluation] = []
        self.population: list[int] = []
        self.trajectory: list[tuple[int, float]] = []
        self.counters: dict[str, Any] = {
            "proposals": 0,
            "duplicates": 0,
            "over_params": 0,
            "over_flops": 0,
            "min_params_rejected": None,
            "min_flops_rejected": None,
            "scoring_seconds": 0.0,
            "computed": 0,
            "reused": 0,
        }
        self.stopped: str | None = None
        self.elapsed = 0.0
        self.resumed_from = 0
        self._seen: dict[str, int] = {}
        self._values = np.zeros((0, len(fitness.proxies)))
        self._fitness_cache: tuple[int, np.ndarray] | None = None
        self._rng_snapshot = self.rng.bit_generator.state
        self._counters_snapshot = dict(self.counters)
        if resume and self.checkpoint_path is not None and self.checkpoint_path.exists():
            self._load_checkpoint()

    # -- checkpoint -------------------------------------------------------------------------------------
    @property
    def checkpoint_path(self) -> Path | None:
        return None if self.out_dir is None else self.out_dir / CHECKPOINT_NAME

    def _identity(self) -> dict[str, Any]:
        f = self.fitness.describe()
        return {
            "settings": self.settings.identity(),
            "fitness": {k: f.get(k) for k in ("type", "name", "proxies", "method", "higher_is_better")},
            "scorer_key": self.scorer.key,
        }

    def save_checkpoint(self) -> None:
        """Write the state after the last completed evaluation to ``<out_dir>/checkpoint.json`` (atomic).

        The generator state and counters saved are those right after that evaluation, so a run interrupted in the
        middle of a proposal resumes exactly where an uninterrupted run would continue.
        """
        if self.checkpoint_path is None:
            return
        self.out_dir.mkdir(parents=True, exist_ok=True)
        state = {
            "format": CHECKPOINT_FORMAT,
            "kind": "lswag-search checkpoint",
            **self._identity(),
            "budget": self.settings.budget,
            "rng": self._rng_snapshot,
            "history": [e.to_json() for e in self.history],
            "population": list(self.population),
            "trajectory": [[int(i), encode_float(f)] for i, f in self.trajectory],
            "counters": self._counters_snapshot,
            "stopped": self.stopped,
            "elapsed": self.elapsed,
            "complete": self.complete,
        }
        tmp = self.checkpoint_path.with_suffix(".json.tmp")
        tmp.write_text(dumps(state, nonfinite="keep"))  # values already encoded by encode_float
        tmp.replace(self.checkpoint_path)

    def _load_checkpoint(self) -> None:
        path = self.checkpoint_path
        try:
            state = json.loads(path.read_text())
        except json.JSONDecodeError as err:
            raise ValueError(
                f"{path} is not a readable checkpoint ({err.msg}); delete it or use another --out"
            ) from None
        if state.get("format") != CHECKPOINT_FORMAT or state.get("kind") != "lswag-search checkpoint":
            raise ValueError(f"{path} is not a lswag-search checkpoint of format {CHECKPOINT_FORMAT}")
        mine = self._identity()
        diffs = []
        for part in ("settings", "fitness"):
            theirs = state.get(part, {})
            for k in sorted(set(mine[part]) | set(theirs)):
                if mine[part].get(k) != theirs.get(k):
                    diffs.append(f"{part}.{k}: checkpoint {theirs.get(k)!r} != now {mine[part].get(k)!r}")
        if state.get("scorer_key") != mine["scorer_key"]:
            diffs.append(
                "scorer: the probe batch, build options, init seed or scoring options differ "
                f"(key {state.get('scorer_key')} != {mine['scorer_key']})"
            )
        if diffs:
            raise ValueError(
                f"{path} was written by a different search; to resume, use the same settings, or "
                "start afresh (another --out, or --restart): " + "; ".join(diffs)
            )
        self.rng.bit_generator.state = state["rng"]
        self._rng_snapshot = self.rng.bit_generator.state
        self.history = [Evaluation.from_json(e) for e in state["history"]]
        self.population = [int(i) for i in state["population"]]
        self.trajectory = [(int(i), float(f)) for i, f in state["trajectory"]]
        self.counters.update(state.get("counters", {}))
        self._counters_snapshot = dict(self.counters)
        self.stopped = state.get("stopped")
        self.elapsed = float(state.get("elapsed", 0.0))
        self._seen = {e.arch: i for i, e in enumerate(self.history)}
        self._values = np.array(
            [[e.values.get(p, math.nan) for p in self.fitness.proxies] for e in self.history], dtype=float
        ).reshape(len(self.history), len(self.fitness.proxies))
        self._fitness_cache = None
        self.resumed_from = len(self.history)
        if self.stopped and len(self.history) < self.settings.budget:
            self.stopped = None  # a larger budget may succeed where the last run gave up; try again
        log.info("resumed %s: %d evaluations done", path, len(self.history))

    # -- fitness ----------------------------------------------------------------------------------------
    def _pool_fitness(self, indices: list[int] | np.ndarray | None = None) -> np.ndarray:
        """Fitness of the history entries ``indices`` (None: all), computed with those entries as the pool."""
        if indices is None:
            n = len(self.history)
            if self._fitness_cache is not None and self._fitness_cache[0] == n:
                return self._fitness_cache[1]
            values = self._values
        else:
            values = self._values[np.asarray(indices, dtype=int)]
        pool = pd.DataFrame(values, columns=list(self.fitness.proxies))
        fit = np.asarray(self.fitness(pool), dtype=float)
        if indices is None:
            self._fitness_cache = (len(self.history), fit)
        return fit

    def history_fitness(self, upto: int | None = None) -> np.ndarray:
        """Fitness of the first ``upto`` evaluations (all when None), with exactly those as the pool."""
        if upto is None or upto == len(self.history):
            return self._pool_fitness()
        return self._pool_fitness(list(range(upto)))

    # -- proposals --------------------------------------------------------------------------------------
    def _tournament(self) -> int:
        """History index of the parent: the fittest of ``tournament`` distinct population members."""
        pop = self.population
        picks = self.rng.choice(len(pop), size=min(self.settings.tournament, len(pop)), replace=False)
        members = [pop[int(i)] for i in picks]
        if self.settings.rank_pool == "history" or not self.fitness.pool_dependent:
            fit = self._pool_fitness()[members]
        else:
            fit = self._pool_fitness(pop)[[int(i) for i in picks]]
        return members[int(np.argmax(finite_or_worst(fit)))]

    def _propose(self) -> tuple[Any, int | None]:
        s = self.settings
        if s.strategy == "random" or len(self.history) < s.population:
            return self.space.sample(self.rng), None
        parent = self._tournament()
        spec = self.space.decode(self.history[parent].arch)
        return self.space.mutate(spec, self.rng), parent

    def _constraint_message(self) -> str:
        s, c = self.settings, self.counters
        parts = []
        if c["over_params"]:
            parts.append(
                f"{c['over_params']} exceeded --max-params {s.max_params:,.0f} (smallest seen: "
                f"{c['min_params_rejected']:,} parameters)"
            )
        if c["over_flops"]:
            parts.append(
                f"{c['over_flops']} exceeded --max-flops {s.max_flops:,.0f} (smallest seen: "
                f"{c['min_flops_rejected']:,} FLOPs)"
            )
        if c["duplicates"]:
            parts.append(f"{c['duplicates']} were duplicates")
        return "; ".join(parts)

    def _next_feasible(self) -> tuple[Any, str, int, float | None, int | None] | None:
        """The next proposal that is new and within the constraints, or None when the search must stop."""
        s = self.settings
        for _ in range(s.max_failed_proposals):
            spec, parent = self._propose()
            arch = self.space.encode(spec)
            self.counters["proposals"] += 1
            if arch in self._seen:
                self.counters["duplicates"] += 1
                continue
            params = int(self.space.param_count(spec, **s.build_options))
            if s.max_params is not None and params > s.max_params:
                self.counters["over_params"] += 1
                low = self.counters["min_params_rejected"]
                self.counters["min_params_rejected"] = params if low is None else min(low, params)
                continue
            flops = None
            if s.max_flops is not None:
                flops = count_flops(self.space, spec, s.build_options)
                if flops > s.max_flops:
                    self.counters["over_flops"] += 1
                    low = self.counters["min_flops_rejected"]
                    self.counters["min_flops_rejected"] = flops if low is None else min(low, flops)
                    continue
            return spec, arch, params, flops, parent
        if not self.history:
            options = ", ".join(f"{k}={v}" for k, v in s.build_options.items()) or "defaults"
            raise InfeasibleBudgetError(
                f"no architecture of {s.space} meets the constraints: {s.max_failed_proposals} proposals in a row "
                f"were rejected ({self._constraint_message()}; build options: {options}). Raise --max-params / "
                "--max-flops above the smallest value seen, or change the build options."
            )
        self.stopped = (
            f"stopped after {len(self.history)} evaluations: {s.max_failed_proposals} proposals in a row "
            f"were duplicates or over budget (the feasible part of the space may be exhausted). Totals: "
            f"{self._constraint_message()}"
        )
        log.warning(self.stopped)
        self._counters_snapshot = dict(self.counters)
        return None

    # -- the loop ---------------------------------------------------------------------------------------
    @property
    def complete(self) -> bool:
        return len(self.history) >= self.settings.budget

    def step(self) -> bool:
        """Propose, check and score one new architecture; False when the search cannot go on."""
        found = self._next_feasible()
        if found is None:
            return False
        spec, arch, params, flops, parent = found
        result = self.scorer.score(spec, arch)
        missing = [p for p in self.fitness.proxies if p not in result.values]
        if missing:
            raise ValueError(f"the scorer returned no value for {missing} on {arch}")
        index = len(self.history)
        self.history.append(
            Evaluation(
                arch,
                params,
                flops,
                dict(result.values),
                dict(result.status),
                float(result.seconds),
                result.source,
                parent,
            )
        )
        self._seen[arch] = index
        self._values = np.vstack([self._values, [[result.values[p] for p in self.fitness.proxies]]])
        self._fitness_cache = None
        self.counters["scoring_seconds"] += float(result.seconds)
        self.counters["computed" if result.source == "computed" else "reused"] += 1
        if self.settings.strategy == "evolution":
            self.population.append(index)
            if len(self.population) > self.settings.population:
                self.population.pop(0)  # aging: the oldest member leaves
        fit = self._pool_fitness()
        best = int(np.argmax(finite_or_worst(fit)))
        self.trajectory.append((best, float(fit[best])))
        self._rng_snapshot = self.rng.bit_generator.state
        self._counters_snapshot = dict(self.counters)
        return True

    def run(self, max_new_evaluations: int | None = None) -> SearchResult:
        """Evaluate until the budget is spent (or ``max_new_evaluations`` more, or the search must stop)."""
        start = time.perf_counter()
        bar = None
        if self.progress:
            from tqdm.auto import tqdm

            bar = tqdm(
                total=self.settings.budget,
                initial=len(self.history),
                unit="arch",
                desc=f"{self.settings.strategy}/{self.fitness.name}",
                dynamic_ncols=True,
            )
        new = 0
        since = 0
        try:
            while not self.complete and self.stopped is None:
                if max_new_evaluations is not None and new >= max_new_evaluations:
                    break
                if not self.step():
                    break
                new += 1
                since += 1
                if bar is not None:
                    bar.update(1)
                    bar.set_postfix(best=f"{self.trajectory[-1][1]:.4g}", refresh=False)
                if since >= self.checkpoint_every:
                    self.elapsed += time.perf_counter() - start
                    start = time.perf_counter()
                    self.save_checkpoint()
                    since = 0
        except BaseException:
            # Interrupted mid-proposal: roll back to the state right after the last completed evaluation.
            self.rng.bit_generator.state = self._rng_snapshot
            self.counters = dict(self._counters_snapshot)
            raise
        finally:
            if bar is not None:
                bar.close()
            self.elapsed += time.perf_counter() - start
            if self.history:
                self.save_checkpoint()
        return self.result()

    # -- results ----------------------------------------------------------------------------------------
    def ranked(self) -> pd.DataFrame:
        """All evaluated architectures, best first (fitness over the whole history; NaN last; ties by order).

        Columns: ``rank``, ``arch``, ``params`` (``space.param_count``), ``flops`` (when a FLOPs bound was set),
        ``fitness``, every proxy value computed (the fitness proxies first; a proxy whose name is one of these
        columns, such as the ``params`` proxy, is listed as ``<name>_proxy``), ``evaluation`` (1-based order of
        scoring), ``parent`` (evaluation number of the parent, evolution children only) and ``source``.
        """
        if not self.history:
            return pd.DataFrame(columns=["rank", "arch", "params", "fitness", *self.fitness.proxies, "evaluation"])
        names = list(self.fitness.proxies)
        others = sorted({k for e in self.history for k in e.values} - set(names))
        fixed = {"rank", "arch", "params", "flops", "fitness", "evaluation", "parent", "source"}
        column = {k: (f"{k}_proxy" if k in fixed else k) for k in names + others}
        rows = []
        fit = self._pool_fitness()
        for i, e in enumerate(self.history):
            row: dict[str, Any] = {"arch": e.arch, "params": int(e.params)}
            if self.settings.max_flops is not None:
                row["flops"] = e.flops
            row["fitness"] = fit[i]
            for k in names + others:
                row[column[k]] = e.values.get(k, math.nan)
            row.update(evaluation=i + 1, parent=None if e.parent is None else e.parent + 1, source=e.source)
            rows.append(row)
        table = pd.DataFrame(rows)
        table["parent"] = table["parent"].astype("Int64")
        order = np.argsort(-finite_or_worst(fit), kind="stable")
        table = table.iloc[order].reset_index(drop=True)
        table.insert(0, "rank", np.arange(1, len(table) + 1))
        return table

    def result(self) -> SearchResult:
        ranked = self.ranked()
        best = ranked.iloc[0].to_dict() if len(ranked) else {}
        return SearchResult(
            ranked=ranked,
            best=best,
            trajectory=list(self.trajectory),
            counters=dict(self.counters),
            complete=self.complete,
            stopped=self.stopped,
            resumed_from=self.resumed_from,
            seconds=self.elapsed,
        )
