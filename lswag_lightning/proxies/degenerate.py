"""When a value is degenerate: constant by construction for this model or this probe, whatever the architecture.

A degenerate value carries no information: the proxy raises :class:`~lswag_lightning.proxies.DegenerateValue` and the
session reports NaN with the status ``degenerate: <cause>; <fix>``. The rules, and what is *not* degenerate:

- **A zero-initialised weight layer cutting every path** (synflow's flow, snip's Σ|θ ⊙ g|, grad_norm, Λ and ZiCo all
  zero while some Conv/Linear weight is all zeros, e.g. a zero-initialised classifier): any architecture with that
  layer gets the same value. An architecture that cuts every path by itself (an NAS-Bench-201 cell of ``none`` ops)
  is not degenerate: its minimum (0, or -inf with its note) is the informative verdict "ranks last", and the
  benchmark tables rank it so.
- **A probe that cannot show patterns**: Ψ, SWAP and NASWOT on one sample (Ψ counts at most 2 patterns, NASWOT's
  kernel is 1×1: the log of the unit count), or on a batch of identical samples. A network that maps distinct samples
  to one code is, again, an informative minimum (NASWOT reports -inf with its note).
- **jacov with one input Jacobian for every sample** (identical samples, or a network linear in its input): the
  correlation matrix is all ones, so the value depends only on the batch size and the jitter.
- **MeCo's channels >= positions** (:func:`correlation_rank_deficient`): the channel correlation of C channels over
  P positions has rank <= P - 1, so its smallest eigenvalue is exactly 0 when C >= P whatever the weights; when every
  hooked output is so, MeCo is 0 by construction (:func:`meco_layout_degenerate` gives the status text).
"""

from __future__ import annotations

from collections.abc import Iterable

import torch

from lswag_lightning.proxies.layers import pack_patterns
from lswag_lightning.proxies.results import ActivationResult, DegenerateValue, SessionData


def zero_layers_cut_every_path(data: SessionData, cause: str, proxy: str) -> None:
    """Raise :class:`DegenerateValue` when the model has zero-initialised weight layers (called when ``proxy``'s
    value is zero because of ``cause``); return when the zero comes from the architecture itself."""
    layers = data.zero_weight_layers
    if not layers:
        return
    names = ", ".join(layers[:3]) + (f" and {len(layers) - 3} more" if len(layers) > 3 else "")
    raise DegenerateValue(
        f"{cause}: the zero-initialised weight layer(s) {names} cut every path, so any architecture with them gets "
        f"this value; score the model at a random initialisation (before zeroing layers), or leave {proxy} out"
    )


def check_patterns_can_differ(data: SessionData, acts: ActivationResult, proxy: str) -> None:
    """Raise :class:`DegenerateValue` when the activation patterns cannot differ by construction: one probe sample,
    samples that are all the same, or one code for every sample behind a zero-initialised weight layer."""
    if acts.samples < 2:
        raise DegenerateValue(
            f"one probe sample: {proxy} compares activation patterns across samples, and one sample gives the same "
            "value to every architecture of this width; score with a probe batch of several samples (64 by default)"
        )
    if data.identical_samples:
        raise DegenerateValue(
            f"every probe sample is the same, so every unit has a constant pattern and {proxy} does not depend on "
            "the architecture's expressivity; draw a probe batch of distinct samples"
        )
    if data.zero_weight_layers and one_code_for_every_sample(acts):
        zero_layers_cut_every_path(data, "every sample has the same activation code", proxy)


def one_code_for_every_sample(acts: ActivationResult) -> bool:
    """Whether every unit's pattern is constant over the samples (always active or never), from the NASWOT kernel's
    Gram matrix (all entries equal the common count) or from the packed patterns (each all zeros or all ones)."""
    if acts.gram is not None:
        return bool((acts.gram == acts.row_sums[0]).all())
    if not acts.codes:
        return False
    full = pack_patterns(torch.ones(acts.samples, 1, dtype=torch.bool, device=acts.codes[0].device))[0]
    return all(bool(((codes == 0).all(dim=1) | (codes == full).all(dim=1)).all()) for codes in acts.codes)


def correlation_rank_deficient(channels: int, positions: int) -> bool:
    """Whether the channel correlation of ``channels`` rows over ``positions`` columns is singular by construction
    (centring leaves rank <= positions - 1 < channels): its smallest eigenvalue is exactly 0 whatever the values."""
    return channels > positions - 1


def meco_layout_degenerate(layouts: Iterable[tuple[str, int, int]]) -> str | None:
    """The ``degenerate`` status text (cause; fix) when every hooked output ``(module, channels, positions)`` has at
    least as many channels as positions, so each of MeCo's terms, and MeCo, is 0 by construction; None otherwise
    (MeCo's pass raises ``DegenerateValue(text)`` with it)."""
    layouts = list(layouts)
    if not layouts or not all(correlation_rank_deficient(c, p) for _, c, p in layouts):
        return None
    widest = max(layouts, key=lambda item: item[1] - item[2])
    return (
        f"every module output MeCo correlates has at least as many channels as positions (e.g. {widest[0]}: "
        f"{widest[1]} channels over {widest[2]} positions), so each smallest eigenvalue, and MeCo, is 0 whatever the "
        "architecture; score with larger inputs (more positions: a larger image or a longer sequence), or leave "
        "meco out"
    )
