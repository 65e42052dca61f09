"""Choosing L-SWAG's layer interval [l̂, L̂] from gradient statistics of random networks (METHOD.md §2, §5).

The library behind ``lswag-layers`` (:mod:`lswag_lightning.cli.layers`); pure PyTorch + numpy, no Lightning.

Per network (randomly initialised, train() mode, one probe batch, K = 2 gradient samples as in Λ):

- per weight layer l: the statistic s_l = mean over its elements w (s_w > 0) of log s_w, s_w the population std of
  w's gradient over the K samples (``mean_log_std`` in the engine's L-SWAG details; METHOD.md §5, the paper's
  Fig. 2b "log(σ)"), and the layer's Λ term log Σ_w 1/s_w;
- per depth bin b = floor((l / D) * 100 // 10) (0..10, METHOD.md §1): ``stat_b`` = mean of s_l over the layers in
  the bin (NaN when the bin holds none), ``lambda_b`` = Σ of their Λ terms (so Λ on [lo, hi] = Σ_{b=lo..hi}
  lambda_b, exactly).

Over networks, each bin's ``stat_b`` is summarised by its mean ± std (networks lacking the bin are left out).

The rule (:func:`propose_interval`, statistics only, no accuracies):

1. Candidate bins are 1..9: the paper calls l̂ and L̂ "two intermediate layers". The boundary bins are reported
   but never taken for a spike: bin 10 holds exactly one layer, the last (l = D), i.e. the classifier, whose
   gradient comes straight from the loss; bin 0 holds the input layers (the stem conv or patch embedding, which
   alone sees raw pixels, and, in ViTs, the first block). Both jump in every network for structural reasons
   (on AutoFormer-Ti bin 0 stands 0.6 above the trend, and Λ on it alone ranks c100_kd at ρ 0.48 against 0.90
   with every layer).
2. A straight line is fitted to the mean curve over the candidate bins by Theil–Sen (median of pairwise slopes,
   robust to a spike); residual r_b = mean_b − line(b).
3. Noise: σ_r = 1.4826 · MAD of the residuals. A bin spikes when r_b > k · σ_r (k = 3) AND r_b > v · (median over
   candidate bins of the between-network std) (v = 0.5): the spike must stand out of the curve's own wiggle and be
   visible against the spread of single networks, as on the paper's mean ± std plot.
4. Spiking bins form contiguous runs; the run with the largest summed residual is the spike, and [l̂, L̂] is its
   first and last bin.
5. No spiking bin: the statistics show no spike and the proposal falls back to every layer (interval None, the
   engine's default: Λ over all layers, Ψ over all activation points).

With accuracies (:func:`label_check`) the per-bin Spearman ρ of Λ restricted to one bin (the paper's Fig. 2a) is
computed, and, on repeated random fit/eval splits, the interval with the best ρ on the fit part is compared on
the eval part with every layer and with the rule's interval. That check is evidence about the rule; it never feeds
the rule.
"""
from __future__ import annotations

import json
import logging
import math
import os
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from lswag_lightning.proxies.layers import MAX_BIN

log = logging.getLogger(__name__)

N_BINS = MAX_BIN + 1
BINS = list(range(N_BINS))
STAT_COLUMNS = [f"stat_b{b}" for b in BINS]
LAMBDA_COLUMNS = [f"lambda_b{b}" for b in BINS]
DEFAULT_K = 3.0
DEFAULT_VISIBLE = 0.5
MAD_TO_SIGMA = 1.4826


# ------------------------------------------------------------------------------------------ per network
def bin_profile(layers: Sequence[Mapping[str, Any]]) -> tuple[np.ndarray, np.ndarray]:
    """Per-bin (stat, lambda) of one network from the engine's per-layer table (``details["lswag"]["lambda"]
    ["layers"]``: dicts with ``bin``, ``mean_log_std``, ``lambda_term``). Shapes (11,), (11,)."""
    stat = np.full(N_BINS, np.nan)
    lam = np.zeros(N_BINS)
    by_bin: dict[int, list[float]] = {}
    for layer in layers:
        b = int(layer["bin"])
        if not 0 <= b < N_BINS:
            raise ValueError(f"layer bin {b} outside 0..{MAX_BIN}")
        lam[b] += float(layer["lambda_term"])
        value = float(layer["mean_log_std"])
        if math.isfinite(value):
            by_bin.setdefault(b, []).append(value)
    for b, values in by_bin.items():
        stat[b] = float(np.mean(values))
    return stat, lam


def profile_network(model: torch.nn.Module, inputs: torch.Tensor, targets: torch.Tensor,
                    **score_options: Any) -> dict[str, Any]:
    """Score Λ on ``model`` (all layers) and return its depth, per-bin statistic and per-bin Λ terms."""
    from lswag_lightning.proxies import score_network

    options = {k: v for k, v in score_options.items() if k not in ("layer_interval", "psi_layers")}
    report = score_network(model, inputs, targets, proxies=("lswag",), layer_interval=None, **options)
    details = report.details.get("lswag", {}).get("lambda")
    if details is None:
        raise RuntimeError(f"no gradient statistics for this network: {report.status.get('lswag.lambda')}")
    stat, lam = bin_profile(details["layers"])
    return {"depth": len(details["layers"]), "stat": stat, "lambda": lam, "seconds": report.total_seconds}


def profile_networks(space: Any, archs: Sequence[str], inputs: torch.Tensor, targets: torch.Tensor, *,
                     build_options: Mapping[str, Any], score_options: Mapping[str, Any] | None = None,
                     device: str | torch.device = "cpu", init_seed_base: int = 0,
                     progress: bool = False) -> pd.DataFrame:
    """One row per architecture: ``arch``, ``depth`` (weight layers), ``stat_b0..10``, ``lambda_b0..10``,
    ``seconds``. Each network is initialised on the CPU from :func:`lswag_lightning.bench.arch_seed`. An
    interrupt (Ctrl-C, SIGINT) stops the loop and returns the rows done so far (the first ones of ``archs``)."""
    from tqdm.auto import tqdm

    from lswag_lightning.bench import arch_seed

    dev = torch.device(device)
    x, y = inputs.to(dev), targets.to(dev)
    rows = []
    try:
        for arch in tqdm(archs, unit="net", disable=not progress, desc=f"{space.name} layers", dynamic_ncols=True):
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(arch_seed(arch, init_seed_base))
                model = space.build(space.decode(arch), **build_options)
            result = profile_network(model.to(dev), x, y, copy_model=False, **dict(score_options or {}))
            rows.append({"arch": arch, "depth": result["depth"],
                         **dict(zip(STAT_COLUMNS, result["stat"])), **dict(zip(LAMBDA_COLUMNS, result["lambda"])),
                         "seconds": result["seconds"]})
    except KeyboardInterrupt:  # Ctrl-C / SIGINT: keep the networks profiled so far
        log.warning("interrupted after %d of %d networks; analysing those", len(rows), len(archs))
        if not rows:
            raise
    return pd.DataFrame(rows, columns=["arch", "depth", *STAT_COLUMNS, *LAMBDA_COLUMNS, "seconds"])


# -------------------------------------------------------------------------------------------- aggregation
@dataclass
class BinStats:
    """Mean, std (ddof=0) and count over networks of each bin's statistic (length 11 each; NaN when empty)."""

    mean: list[float]
    std: list[float]
    count: list[int]

    @classmethod
    def from_matrix(cls, matrix: np.ndarray) -> "BinStats":
        """``matrix``: (networks, 11) per-bin statistics, NaN where a network lacks the bin."""
        m = np.asarray(matrix, dtype=float)
        if m.ndim != 2 or m.shape[1] != N_BINS:
            raise ValueError(f"expected a (networks, {N_BINS}) matrix, got shape {m.shape}")
        finite = np.isfinite(m)
        count = finite.sum(0)
        mean = np.full(N_BINS, np.nan)
        std = np.full(N_BINS, np.nan)
        for b in BINS:
            if count[b]:
                mean[b] = m[finite[:, b], b].mean()
                std[b] = m[finite[:, b], b].std()
        return cls(mean.tolist(), std.tolist(), count.astype(int).tolist())


def theil_sen(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Robust line y ≈ slope · x + intercept: slope = median of pairwise slopes, intercept = median(y − slope·x)."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if len(x) < 2:
        return 0.0, float(np.median(y)) if len(y) else math.nan
    i, j = np.triu_indices(len(x), k=1)
    keep = x[j] != x[i]
    slope = float(np.median((y[j] - y[i])[keep] / (x[j] - x[i])[keep])) if keep.any() else 0.0
    return slope, float(np.median(y - slope * x))


@dataclass
class IntervalProposal:
    """The rule's answer and every number behind it (see the module docstring).

    ``interval`` is (l̂, L̂) or None (no spike: every layer). ``residual`` has one entry per bin 0..10 (NaN outside
    the candidates); ``spike_bins`` are all bins that passed both thresholds; ``runs`` their contiguous runs.
    """

    interval: tuple[int, int] | None
    spike: bool
    reason: str
    candidate_bins: list[int]
    slope: float
    intercept: float
    residual: list[float]
    noise: float
    typical_std: float
    threshold: float
    spike_bins: list[int]
    runs: list[list[int]]
    k: float
    visible: float
    rule: str = ("Theil-Sen line over the mean curve of the intermediate bins 1..9 (bin 0 = input layers, bin 10 = "
                 "the classifier alone, both excluded); a bin spikes when its residual > k·1.4826·MAD(residuals) "
                 "and > v·median between-network std; the contiguous run of spiking bins with the largest summed "
                 "residual is [l̂, L̂]; no spike -> every layer (None)")

    def to_dict(self) -> dict:
        d = asdict(self)
        d["interval"] = list(self.interval) if self.interval is not None else None
        return _jsonable(d)


def propose_interval(stats: BinStats, *, k: float = DEFAULT_K, visible: float = DEFAULT_VISIBLE,
                     boundary: bool = False) -> IntervalProposal:
    """Propose [l̂, L̂] from the per-bin statistics alone (the rule of the module docstring).

    ``boundary=True`` also lets the boundary bins 0 and 10 be candidates (not the default: see the rule, step 1).
    """
    if not k > 0 or not visible >= 0:
        raise ValueError(f"need k > 0 and visible >= 0, got k={k}, visible={visible}")
    mean = np.asarray(stats.mean, dtype=float)
    std = np.asarray(stats.std, dtype=float)
    first, last = (0, N_BINS) if boundary else (1, N_BINS - 1)
    candidates = [b for b in range(first, last) if np.isfinite(mean[b])]
    residual = np.full(N_BINS, np.nan)
    if len(candidates) < 4:
        return IntervalProposal(None, False, f"only {len(candidates)} bins hold layers (need 4 to tell a spike from "
                                "a trend); every layer is used", candidates, math.nan, math.nan, residual.tolist(),
                                math.nan, math.nan, math.nan, [], [], k, visible)
    xs = np.asarray(candidates, dtype=float)
    slope, intercept = theil_sen(xs, mean[candidates])
    residual[candidates] = mean[candidates] - (slope * xs + intercept)
    r = residual[candidates]
    noise = MAD_TO_SIGMA * float(np.median(np.abs(r - np.median(r))))
    typical = float(np.nanmedian(std[candidates]))
    threshold = max(k * noise, visible * typical)
    spiking = [b for b in candidates if residual[b] > threshold and residual[b] > 0]
    runs: list[list[int]] = []
    for b in spiking:
        if runs and b == runs[-1][-1] + 1:
            runs[-1].append(b)
        else:
            runs.append([b])
    if not runs:
        best = max(candidates, key=lambda b: residual[b])
        reason = (f"no spike: the largest residual above the trend is {residual[best]:.3f} (bin {best}), below the "
                  f"threshold {threshold:.3f} = max({k:g}·σ_r = {k * noise:.3f}, {visible:g}·median std = "
                  f"{visible * typical:.3f}); falling back to every layer (interval None)")
        return IntervalProposal(None, False, reason, candidates, slope, intercept, residual.tolist(), noise, typical,
                                threshold, [], [], k, visible)
    spike = max(runs, key=lambda run: float(residual[run].sum()))
    interval = (spike[0], spike[-1])
    reason = (f"spike over bins {spike[0]}..{spike[-1]} (residuals {', '.join(f'{residual[b]:.3f}' for b in spike)}"
              f" > threshold {threshold:.3f})" + (f"; {len(runs) - 1} smaller spike run(s) ignored"
                                                  if len(runs) > 1 else ""))
    return IntervalProposal(interval, True, reason, candidates, slope, intercept, residual.tolist(), noise, typical,
                            threshold, spiking, runs, k, visible)


# ----------------------------------------------------------------------------------------- with accuracies
def interval_lambda(lambda_bins: np.ndarray, interval: tuple[int, int] | None) -> np.ndarray:
    """Λ restricted to ``interval`` (None: all bins) from per-bin Λ sums (networks, 11)."""
    lam = np.asarray(lambda_bins, dtype=float)
    if interval is None:
        return lam.sum(1)
    lo, hi = interval
    return lam[:, lo:hi + 1].sum(1)


def _spearman(x: np.ndarray, y: np.ndarray) -> float:
    from lswag_lightning.analysis.correlations import spearman

    ok = np.isfinite(x) & np.isfinite(y)
    return spearman(x[ok], y[ok]) if ok.sum() >= 3 else math.nan


def per_bin_correlation(lambda_bins: np.ndarray, depth_has_bin: np.ndarray, accuracy: np.ndarray) -> list[float]:
    """Spearman ρ of Λ restricted to each single bin with accuracy (the paper's Fig. 2a), over the networks that
    have a layer in that bin. ``depth_has_bin``: bool (networks, 11)."""
    lam = np.asarray(lambda_bins, dtype=float)
    acc = np.asarray(accuracy, dtype=float)
    out = []
    for b in BINS:
        rows = np.asarray(depth_has_bin)[:, b]
        out.append(_spearman(lam[rows, b], acc[rows]) if rows.sum() >= 3 else math.nan)
    return out


def all_intervals() -> list[tuple[int, int]]:
    """Every contiguous bin interval (lo, hi), 0 <= lo <= hi <= 10 (66 of them)."""
    return [(lo, hi) for lo in BINS for hi in BINS if hi >= lo]


def label_check(lambda_bins: np.ndarray, accuracy: np.ndarray, rule_interval: tuple[int, int] | None, *,
                n_splits: int = 20, fit_fraction: float = 0.5, seed: int = 0) -> dict[str, Any]:
    """Held-out evidence about intervals: on each split choose the interval with the best ρ(Λ_I, accuracy) on the
    fit part, then report on the eval part ρ of Λ on that interval, on every layer and on the rule's interval
    (mean ± std over splits; the paired gain of each over every layer), and how often each interval was chosen.
    ``in_sample`` gives ρ of every interval on all networks (selection-set numbers, optimistic)."""
    lam = np.asarray(lambda_bins, dtype=float)
    acc = np.asarray(accuracy, dtype=float)
    keep = np.isfinite(acc)
    lam, acc = lam[keep], acc[keep]
    n = len(acc)
    n_fit = int(round(fit_fraction * n))
    if n_fit < 5 or n - n_fit < 5:
        raise ValueError(f"{n} networks with an accuracy: too few for fit/eval splits (need >= 10)")
    intervals = all_intervals()
    values = {iv: interval_lambda(lam, iv) for iv in intervals}
    values[None] = interval_lambda(lam, None)
    rng = np.random.default_rng(seed)
    held: dict[str, list[float]] = {"label_chosen": [], "all_layers": [], "rule": []}
    chosen: Counter = Counter()
    for _ in range(n_splits):
        perm = rng.permutation(n)
        fit, ev = perm[:n_fit], perm[n_fit:]
        fit_rho = {iv: _spearman(values[iv][fit], acc[fit]) for iv in intervals}
        best = max(intervals, key=lambda iv: (np.nan_to_num(fit_rho[iv], nan=-2.0), -(iv[1] - iv[0])))
        chosen[best] += 1
        held["label_chosen"].append(_spearman(values[best][ev], acc[ev]))
        held["all_layers"].append(_spearman(values[None][ev], acc[ev]))
        held["rule"].append(_spearman(values[rule_interval][ev], acc[ev]))

    def mean_std(v: Sequence[float]) -> dict[str, float]:
        a = np.asarray(v, dtype=float)
        a = a[np.isfinite(a)]
        return {"mean": float(a.mean()) if a.size else math.nan,
                "std": float(a.std(ddof=1)) if a.size > 1 else math.nan}

    gain = {k: mean_std(np.asarray(v) - np.asarray(held["all_layers"])) for k, v in held.items() if k != "all_layers"}
    in_sample = {f"{lo}-{hi}": _spearman(values[(lo, hi)], acc) for lo, hi in intervals}
    best_all = max(intervals, key=lambda iv: np.nan_to_num(in_sample[f"{iv[0]}-{iv[1]}"], nan=-2.0))
    return _jsonable({
        "n": n, "n_splits": n_splits, "fit_fraction": fit_fraction, "seed": seed,
        "heldout": {k: mean_std(v) for k, v in held.items()}, "gain_over_all_layers": gain,
        "chosen": [{"interval": list(iv), "count": c} for iv, c in chosen.most_common()],
        "in_sample_rho": in_sample, "in_sample_rho_all_layers": _spearman(values[None], acc),
        "in_sample_best": list(best_all),
    })


# ------------------------------------------------------------------------------------------------- plots
def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def _bin_labels() -> list[str]:
    return [f"{10 * b}" for b in BINS]


def plot_profile(path: str | os.PathLike, stats: BinStats, proposal: IntervalProposal, title: str,
                 matrix: np.ndarray | None = None) -> None:
    """Mean ± std of the per-bin statistic vs depth percentile, the robust trend, and the proposed interval."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.0, 3.8), dpi=110)
    xs = np.asarray(BINS, dtype=float)
    mean, std = np.asarray(stats.mean), np.asarray(stats.std)
    if matrix is not None and len(matrix):
        for row in np.asarray(matrix)[: min(30, len(matrix))]:
            ax.plot(xs, row, color="0.75", linewidth=0.5, zorder=1)
    ax.fill_between(xs, mean - std, mean + std, color="tab:blue", alpha=0.2, label="± std over networks", zorder=2)
    ax.plot(xs, mean, "o-", color="tab:blue", label="mean over networks", zorder=3)
    if np.isfinite(proposal.slope):
        cx = np.asarray(proposal.candidate_bins, dtype=float)
        ax.plot(cx, proposal.slope * cx + proposal.intercept, "--", color="tab:gray",
                label=f"Theil–Sen trend (candidate bins {proposal.candidate_bins[0]}–{proposal.candidate_bins[-1]})")
    if proposal.interval is not None:
        lo, hi = proposal.interval
        ax.axvspan(lo - 0.4, hi + 0.4, color="tab:orange", alpha=0.25, label=f"proposed [l̂, L̂] = [{lo}, {hi}]")
    ax.set_xticks(xs, _bin_labels())
    ax.set_xlabel("depth percentile bin (%) of the weight layer, floor(l/D·100 // 10)·10")
    ax.set_ylabel("log σ of the gradient (mean over layer elements)")
    ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="best")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def plot_bin_correlation(path: str | os.PathLike, rho: Mapping[str, Sequence[float]],
                         rho_all: Mapping[str, float], interval: tuple[int, int] | None, title: str) -> None:
    """Per accuracy column: ρ of Λ restricted to each single bin (paper Fig. 2a), and Λ over all layers (dashed)."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7.6, 3.8), dpi=110)
    xs = np.asarray(BINS, dtype=float)
    for i, (name, values) in enumerate(rho.items()):
        color = f"C{i % 10}"
        ax.plot(xs, values, "o-", color=color, markersize=4, label=name)
        if math.isfinite(rho_all.get(name, math.nan)):
            ax.axhline(rho_all[name], color=color, linestyle="--", linewidth=1)
    ax.plot([], [], "k--", linewidth=1, label="dashed: Λ on all layers")
    if interval is not None:
        ax.axvspan(interval[0] - 0.4, interval[1] + 0.4, color="tab:orange", alpha=0.2, label="rule's [l̂, L̂]")
    ax.set_xticks(xs, _bin_labels())
    ax.set_xlabel("depth percentile bin (%) — Λ restricted to this bin")
    ax.set_ylabel("Spearman ρ with accuracy")
    ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


# ------------------------------------------------------------------------------------------------ result
@dataclass
class LayerProfileResult:
    """Everything ``lswag-layers`` writes to ``layers.json``."""

    space: str
    n_networks: int
    proposal: IntervalProposal
    stats: BinStats
    settings: dict[str, Any]
    depth: dict[str, float]
    per_bin_rho: dict[str, list[float]] = field(default_factory=dict)
    label_checks: dict[str, dict[str, Any]] = field(default_factory=dict)
    seconds_per_network: float = math.nan

    def to_dict(self) -> dict:
        return _jsonable({
            "space": self.space, "n_networks": self.n_networks,
            "proposed_interval": list(self.proposal.interval) if self.proposal.interval is not None else None,
            "spike": self.proposal.spike, "reason": self.proposal.reason, "rule": self.proposal.rule,
            "proposal": self.proposal.to_dict(), "bins": BINS,
            "stat": {"name": "mean over layer elements of log σ_w (σ_w: population std of the gradient over K "
                             "samples), averaged over the layers of the bin", **asdict(self.stats)},
            "depth": self.depth, "settings": self.settings, "per_bin_rho": self.per_bin_rho,
            "label_checks": self.label_checks, "seconds_per_network": self.seconds_per_network,
        })


def analyse(networks: pd.DataFrame, space: str, settings: Mapping[str, Any], *,
            accuracy_columns: Sequence[str] = (), k: float = DEFAULT_K, visible: float = DEFAULT_VISIBLE,
            boundary: bool = False, label_splits: int = 20, seed: int = 0) -> LayerProfileResult:
    """Aggregate a :func:`profile_networks` table (plus accuracy columns), apply the rule, check it on labels."""
    matrix = networks[STAT_COLUMNS].to_numpy(dtype=float)
    stats = BinStats.from_matrix(matrix)
    proposal = propose_interval(stats, k=k, visible=visible, boundary=boundary)
    depth = networks["depth"].astype(float)
    result = LayerProfileResult(space=space, n_networks=len(networks), proposal=proposal, stats=stats,
                                settings=dict(settings),
                                depth={"min": float(depth.min()), "median": float(depth.median()),
                                       "max": float(depth.max())},
                                seconds_per_network=float(networks["seconds"].mean()))
    lam = networks[LAMBDA_COLUMNS].to_numpy(dtype=float)
    has_bin = _bins_present(networks["depth"].to_numpy(dtype=int))
    for acc in accuracy_columns:
        values = networks[acc].to_numpy(dtype=float)
        result.per_bin_rho[acc] = per_bin_correlation(lam, has_bin, values)
        try:
            result.label_checks[acc] = label_check(lam, values, proposal.interval, n_splits=label_splits, seed=seed)
        except ValueError as exc:
            result.label_checks[acc] = {"skipped": str(exc)}
    return result


def _bins_present(depths: np.ndarray) -> np.ndarray:
    """bool (networks, 11): whether a network of depth D has a layer in each bin."""
    from lswag_lightning.proxies.layers import depth_bins

    cache: dict[int, np.ndarray] = {}
    out = np.zeros((len(depths), N_BINS), dtype=bool)
    for i, d in enumerate(depths):
        if d not in cache:
            row = np.zeros(N_BINS, dtype=bool)
            row[sorted(set(depth_bins(int(d))))] = True
            cache[d] = row
        out[i] = cache[d]
    return out


NETWORK_COLUMNS = ("arch", "depth", *STAT_COLUMNS, *LAMBDA_COLUMNS, "seconds")


def load_networks(out_dir: str | os.PathLike) -> tuple[pd.DataFrame, dict[str, Any], list[str]]:
    """An earlier run's ``networks.csv``, its ``layers.json`` and its accuracy columns (for re-analysis)."""
    out = Path(out_dir)
    if not (out / "networks.csv").is_file() or not (out / "layers.json").is_file():
        raise ValueError(f"no lswag-layers output in {out} (networks.csv and layers.json are needed)")
    networks = pd.read_csv(out / "networks.csv")
    missing = [c for c in NETWORK_COLUMNS if c not in networks.columns]
    if missing:
        raise ValueError(f"{out / 'networks.csv'} lacks the columns {missing}")
    previous = json.loads((out / "layers.json").read_text())
    return networks, previous, [c for c in networks.columns if c not in NETWORK_COLUMNS]


def write_outputs(result: LayerProfileResult, networks: pd.DataFrame, out_dir: str | os.PathLike) -> Path:
    """``layers.json``, ``networks.csv``, ``layer_profile.png`` and (with accuracies) ``bin_correlation.png``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    networks.to_csv(out / "networks.csv", index=False)
    title = (f"{result.space}: per-layer gradient statistic over {result.n_networks} random networks; "
             + (f"proposed [{result.proposal.interval[0]}, {result.proposal.interval[1]}]" if result.proposal.interval
                else "no spike -> all layers"))
    plot_profile(out / "layer_profile.png", result.stats, result.proposal, title,
                 networks[STAT_COLUMNS].to_numpy(dtype=float))
    if result.per_bin_rho:
        rho_all = {a: c.get("in_sample_rho_all_layers", math.nan) for a, c in result.label_checks.items()}
        plot_bin_correlation(out / "bin_correlation.png", result.per_bin_rho, rho_all, result.proposal.interval,
                             f"{result.space}: Spearman ρ of Λ restricted to one depth bin ({result.n_networks} nets)")
    path = out / "layers.json"
    path.write_text(json.dumps(result.to_dict(), indent=2))
    return path


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, Mapping):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        return float(obj) if math.isfinite(obj) else None
    if isinstance(obj, np.bool_):
        return bool(obj)
    return obj

