"""Layer-interval profiling: choosing L-SWAG's layer interval [l̂, L̂] from gradient statistics of random networks
(METHOD.md §2, §5).

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

Modules: ``profile`` (score and bin each network), ``rule`` (the interval rule), ``check`` (with accuracies),
``summary`` (:class:`LayerProfileResult`, computed by :func:`analyse`), ``render`` (``layers.json``, ``networks.csv``,
plots), ``common`` (bins, columns, JSON policy).
"""

from __future__ import annotations

from lswag_lightning.intervals.check import all_intervals, interval_lambda, label_check, per_bin_correlation
from lswag_lightning.intervals.common import BINS, LAMBDA_COLUMNS, N_BINS, NETWORK_COLUMNS, STAT_COLUMNS
from lswag_lightning.intervals.profile import bin_profile, load_networks, profile_network, profile_networks, profile_of
from lswag_lightning.intervals.render import format_result, plot_bin_correlation, plot_profile, write_outputs
from lswag_lightning.intervals.rule import (
    DEFAULT_K,
    DEFAULT_VISIBLE,
    MAD_TO_SIGMA,
    BinStats,
    IntervalProposal,
    propose_interval,
    theil_sen,
)
from lswag_lightning.intervals.summary import LayerProfileResult, analyse

__all__ = [
    "BINS",
    "DEFAULT_K",
    "DEFAULT_VISIBLE",
    "LAMBDA_COLUMNS",
    "MAD_TO_SIGMA",
    "N_BINS",
    "NETWORK_COLUMNS",
    "STAT_COLUMNS",
    "BinStats",
    "IntervalProposal",
    "LayerProfileResult",
    "all_intervals",
    "analyse",
    "bin_profile",
    "format_result",
    "interval_lambda",
    "label_check",
    "load_networks",
    "per_bin_correlation",
    "plot_bin_correlation",
    "plot_profile",
    "profile_network",
    "profile_networks",
    "profile_of",
    "propose_interval",
    "theil_sen",
    "write_outputs",
]
