"""The ranking for a new space with no trained architecture (k = 0): a fixed log-rank fusion chosen across benchmarks.

:func:`choose_across` grows a proxy set greedily to maximise the MEAN Spearman ρ over several labelled tables (each
table's accuracy columns averaged first, so a benchmark with seven columns weighs as much as one with one), under a
scoring-cost cap: the sum of the members' costs, each a ratio to one training step of the same network
(``results/proxy_costs.csv``), must stay at most ``max_cost``; the sum over-counts the passes the engine shares, so
the cap is conservative. :func:`leave_one_out` chooses on all benchmarks but one and scores the choice on the one
left out: the honest estimate of what the default gives on a space nobody labelled.

The shipped default (``lswag_lightning/conf/ranking/default.yaml``) is the set chosen on all benchmarks; its
leave-one-benchmark-out numbers and the command that chose it are written beside it. :func:`load_default` reads it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from lswag_lightning.analysis.correlations import paired_difference, spearman
from lswag_lightning.analysis.fusion import log_rank_sum
from lswag_lightning.analysis.table import orient, oriented_values

OBJECTIVES = ("mean", "worst_gain")
DEFAULT_FILE = Path(__file__).resolve().parents[1] / "conf" / "ranking" / "default.yaml"


@dataclass
class DefaultRanking:
    """The k = 0 ranking: ``proxies`` fused by ``fusion``, and where it came from."""

    proxies: list[str]
    fusion: str = "log_rank"
    source: str = ""
    info: dict = field(default_factory=dict)

    def score_table(self, table: pd.DataFrame) -> np.ndarray:
        """Log-rank score of every row of ``table`` (higher = better; NaN values rank last)."""
        orientation = orient(self.proxies)
        columns = []
        for name in self.proxies:
            v = oriented_values(table, name, orientation)
            columns.append(np.where(np.isnan(v), -np.inf, v))
        return log_rank_sum(columns)


def load_default(path: str | Path = DEFAULT_FILE) -> DefaultRanking:
    """The shipped k = 0 ranking (or the one in ``path``); ``ValueError`` naming the file when malformed."""
    path = Path(path)
    data = yaml.safe_load(path.read_text())
    if not isinstance(data, dict) or not isinstance(data.get("proxies"), list) or not data["proxies"]:
        raise ValueError(f"{path}: expected a mapping with a non-empty 'proxies' list")
    if data.get("fusion", "log_rank") != "log_rank":
        raise ValueError(f"{path}: only fusion log_rank is supported, got {data.get('fusion')!r}")
    info = {k: v for k, v in data.items() if k not in ("proxies", "fusion")}
    return DefaultRanking([str(p) for p in data["proxies"]], "log_rank", str(path), info)


@dataclass
class Benchmark:
    """A labelled table for the choice: its name, rows, accuracy columns (each averaged with equal weight)."""

    name: str
    table: pd.DataFrame
    accuracy: list[str]

    def rho(self, members: Sequence[str]) -> float:
        """Mean over the accuracy columns of Spearman ρ between the log-rank fusion of ``members`` and accuracy."""
        orientation = orient(members)
        cols = []
        for name in members:
            v = oriented_values(self.table, name, orientation)
            cols.append(np.where(np.isnan(v), -np.inf, v))
        score = log_rank_sum(cols)
        return float(np.mean([spearman(score, self.table[a].to_numpy(dtype=float)) for a in self.accuracy]))


def choose_across(
    benchmarks: Sequence[Benchmark],
    candidates: Sequence[str],
    costs: Mapping[str, float],
    *,
    max_cost: float = 3.0,
    max_size: int = 6,
    min_gain: float = 1e-3,
    cost_of: Callable[[Sequence[str]], float] | None = None,
    objective: str = "mean",
) -> tuple[list[str], float]:
    """The proxy set (and its mean ρ over ``benchmarks``) grown greedily from the best affordable single proxy,
    adding the proxy that raises the mean ρ most while the gain exceeds ``min_gain``, the set has fewer than
    ``max_size`` members and its cost stays at most ``max_cost``. ``cost_of(members)``: the set's cost (default:
    the sum of ``costs``; :func:`lswag_lightning.analysis.costs.set_cost` counts shared passes once). Candidates
    without a cost are refused. ``objective``: ``mean`` (the mean ρ over benchmarks) or ``worst_gain`` (the
    smallest gain over #params across benchmarks: the set that beats #params by the most where it beats it least)."""
    if objective not in OBJECTIVES:
        raise ValueError(f"objective must be one of {OBJECTIVES}, got {objective!r}")
    unknown = [c for c in candidates if c not in costs]
    if unknown:
        raise ValueError(f"no measured cost for {unknown}; measure them (python -m lswag_lightning.analysis.costs)")

    baseline = [b.rho(["params"]) for b in benchmarks] if objective == "worst_gain" else [0.0] * len(benchmarks)

    def mean_rho(members: Sequence[str]) -> float:
        rhos = [b.rho(members) - base for b, base in zip(benchmarks, baseline)]
        return float(np.mean(rhos) if objective == "mean" else np.min(rhos))

    cost_of = cost_of or (lambda members: sum(costs[m] for m in members))
    affordable = [c for c in candidates if cost_of([c]) <= max_cost]
    if not affordable:
        raise ValueError(f"no candidate costs at most {max_cost}x a training step")
    scores = {c: mean_rho([c]) for c in affordable}
    chosen = [max(scores, key=lambda c: scores[c])]
    best = scores[chosen[0]]
    while len(chosen) < max_size:
        trial = {c: mean_rho([*chosen, c]) for c in affordable if c not in chosen and cost_of([*chosen, c]) <= max_cost}
        trial = {c: r for c, r in trial.items() if math.isfinite(r)}
        if not trial:
            break
        name = max(trial, key=lambda c: trial[c])
        if trial[name] <= best + min_gain:
            break
        chosen.append(name)
        best = trial[name]
    return chosen, best


def leave_one_out(
    benchmarks: Sequence[Benchmark], candidates: Sequence[str], costs: Mapping[str, float], **options
) -> pd.DataFrame:
    """One row per benchmark left out and accuracy column: the set chosen on the others, its ρ there next to #params
    and L-SWAG on the same rows, and the paired bootstrap of default − #params (95% interval, 1000 resamples)."""
    rows = []
    for held in benchmarks:
        others = [b for b in benchmarks if b is not held]
        chosen, fit_rho = choose_across(others, candidates, costs, **options)
        scored = held.table.assign(_default=DefaultRanking(chosen).score_table(held.table))
        for acc in held.accuracy:
            one = Benchmark(held.name, held.table, [acc])
            diff = paired_difference(scored, "_default", "params", acc, higher_is_better={"_default": True})
            rows.append(
                {
                    "held_out": held.name,
                    "accuracy": acc,
                    "default_set": ",".join(chosen),
                    "rho_chosen_on_others": fit_rho,
                    "rho_default": one.rho(chosen),
                    "rho_params": one.rho(["params"]),
                    "rho_lswag": one.rho(["lswag"]) if "lswag" in held.table.columns else math.nan,
                    "default_minus_params": diff.delta,
                    "ci_low": diff.lo,
                    "ci_high": diff.hi,
                }
            )
    return pd.DataFrame(rows)


def _benchmark(spec: str) -> Benchmark:
    """``NAME=TABLE:ACC1,ACC2`` -> a :class:`Benchmark` (structure features are not used: only proxies)."""
    from lswag_lightning.analysis.table import add_vkdnw_single, load_table

    name, sep, rest = spec.partition("=")
    path, sep2, accs = rest.rpartition(":")
    if not sep or not sep2 or not name or not accs:
        raise ValueError(f"--benchmark expects NAME=TABLE:ACC1,ACC2, got {spec!r}")
    return Benchmark(name, add_vkdnw_single(load_table(path)), accs.split(","))


def write_default(
    path: str | Path, chosen: Sequence[str], lobo: pd.DataFrame, costs: Mapping[str, float], command: str
):
    """The shipped YAML: the set, its fusion, and what it was chosen on and scored against, for the record."""
    from lswag_lightning.analysis.costs import set_cost

    summary = lobo.groupby("held_out", sort=False)[["rho_default", "rho_params", "rho_lswag"]].mean()
    data = {
        "proxies": list(chosen),
        "fusion": "log_rank",
        "chosen_by": command,
        "cost_alone": {p: round(float(costs[p]), 2) for p in chosen},
        "cost_bound": round(float(set_cost(chosen, costs)), 2),
        "leave_one_benchmark_out": {
            str(held): {k: round(float(v), 3) for k, v in row.items()} for held, row in summary.iterrows()
        },
    }
    header = (
        "# The ranking lswag-libra / lswag-search use for a space with no trained architecture (k = 0):\n"
        "# the log-rank fusion of these proxies, chosen across NB101, NB201, NB301 and AutoFormer-Ti\n"
        "# (lswag_lightning.analysis.defaults; docs/results/label-budget.md). Costs: ratios to one training step.\n"
    )
    Path(path).write_text(header + yaml.safe_dump(data, sort_keys=False, allow_unicode=True))


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m lswag_lightning.analysis.defaults --benchmark NAME=TABLE:ACC ... --costs CSV``: the
    leave-one-benchmark-out table, and with ``--write`` the shipped default chosen on all benchmarks."""
    import argparse
    import sys

    from lswag_lightning.analysis.costs import column_costs, cost_table, set_cost

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--benchmark", action="append", required=True, metavar="NAME=TABLE:ACC1,ACC2")
    p.add_argument("--costs", type=Path, required=True, help="python -m lswag_lightning.analysis.costs output")
    p.add_argument("--candidates", nargs="+", default=None, help="default: every proxy column all tables share")
    p.add_argument("--max-cost", type=float, default=3.0, help="cap on the set's cost ratio (default 3)")
    p.add_argument("--objective", choices=OBJECTIVES, default="mean", help="what the set maximises (default mean ρ)")
    p.add_argument("--out", type=Path, required=True, help="CSV of the leave-one-benchmark-out rows")
    p.add_argument("--write", type=Path, default=None, help="write the default chosen on all benchmarks here")
    args = p.parse_args(argv)
    from lswag_lightning.analysis.table import default_proxy_columns

    benchmarks = [_benchmark(s) for s in args.benchmark]
    shared = [c for c in default_proxy_columns(benchmarks[0].table, benchmarks[0].accuracy)]
    for b in benchmarks[1:]:
        shared = [c for c in shared if c in default_proxy_columns(b.table, b.accuracy)]
    costs = column_costs(args.candidates or shared, cost_table(pd.read_csv(args.costs)))
    candidates = [c for c in (args.candidates or shared) if c in costs]
    options = {
        "max_cost": args.max_cost,
        "cost_of": lambda members: set_cost(members, costs),
        "objective": args.objective,
    }
    lobo = leave_one_out(benchmarks, candidates, costs, **options)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    lobo.to_csv(args.out, index=False)
    print(lobo.round(3).to_string(index=False))
    chosen, rho = choose_across(benchmarks, candidates, costs, **options)
    print(
        f"chosen on all {len(benchmarks)} benchmarks: {', '.join(chosen)} (mean ρ {rho:.3f}); candidates: {candidates}"
    )
    if args.write:
        command = "python -m lswag_lightning.analysis.defaults " + " ".join(sys.argv[1:] if argv is None else argv)
        write_default(args.write, chosen, lobo, costs, command)
        print(f"default -> {args.write}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
