"""AZ-NAS's three terms (Lee & Ham, CVPR 2024) and MeCo (Jiang et al., NeurIPS 2023), from their own passes.

- ``az_expressivity`` s^E = Σ_{l=0..L} E_l, E_l the entropy of the normalised covariance eigenvalues of F_l.
- ``az_progressivity`` s^P = min_{l=1..L} (E_l - E_{l-1}).
- ``az_trainability`` s^T = mean_l (2 - σ_l - 1/(σ_l + 1e-6)), σ_l the top singular value of the Rademacher estimate
  of block l's Jacobian; an identity block gives -inf.
- AZ-NAS's complexity term is ``flops``. A NaN term is reported as -inf (AZ-NAS's rule: ranked last), with a note.
- ``meco`` Σ over module outputs of the smallest eigenvalue of the channel correlation of one sample.

All are higher-is-better. PROXIES2.md gives the protocols; ``author_passes.py`` computes them.
"""

from __future__ import annotations

import math

from lswag_lightning.proxies.author_passes import AZResult, MeCoResult
from lswag_lightning.proxies.options import ScoringOptions
from lswag_lightning.proxies.registry import register_proxy
from lswag_lightning.proxies.results import DegenerateValue, ProxyOutput, SessionData


def _az_output(value: float, result: AZResult, name: str) -> ProxyOutput:
    notes = {}
    if math.isnan(value):
        value = -math.inf
        notes[name] = "a block feature is constant (zero covariance), so its entropy is undefined: ranked last (-inf)"
    elif value == -math.inf:
        notes[name] = "a block is the identity (its only live path is a skip), AZ-NAS's -inf"
    details = {
        "blocks": result.names,
        "entropies": result.entropies,
        "trainability": result.trainability,
        **result.protocol,
    }
    return ProxyOutput(value=value, notes=notes, details=details)


def _entropies_informative(result: AZResult) -> None:
    """Expressivity and progressivity are 0 by construction when every feature has one channel."""
    if result.widths and max(result.widths) <= 1:
        raise DegenerateValue(
            "every AZ-NAS block feature has one channel, so each covariance has one eigenvalue and its entropy is 0; "
            "pass block_points=[modules with wider outputs]"
        )


def _mean_over_draws(result: AZResult, term) -> float:
    """The term's value averaged over the pass's draws (``az_draws``; one draw: the value itself). A NaN or -inf
    draw makes the mean NaN or -inf, which the proxy reports as AZ-NAS's -inf."""
    values = [term(entropies, trainability) for entropies, trainability in result.draws()]
    return values[0] if len(values) == 1 else float(sum(values) / len(values))


def _expressivity(entropies: list[float], trainability: list[float]) -> float:
    return float(sum(entropies))


def _progressivity(entropies: list[float], trainability: list[float]) -> float:
    return min(b - a for a, b in zip(entropies, entropies[1:]))


def _trainability(entropies: list[float], trainability: list[float]) -> float:
    return -math.inf if any(v == -math.inf for v in trainability) else float(sum(trainability) / len(trainability))


@register_proxy(
    "az_expressivity",
    higher_is_better=True,
    needs=("az_features",),
    description="AZ-NAS expressivity: Σ_l entropy of the covariance eigenvalues of block features",
)
def az_expressivity(data: SessionData, options: ScoringOptions) -> ProxyOutput:
    result: AZResult = data.get("az_features")
    _entropies_informative(result)
    return _az_output(_mean_over_draws(result, _expressivity), result, "az_expressivity")


@register_proxy(
    "az_progressivity",
    higher_is_better=True,
    needs=("az_features",),
    description="AZ-NAS progressivity: min_l (E_l - E_{l-1}) over consecutive block features",
)
def az_progressivity(data: SessionData, options: ScoringOptions) -> ProxyOutput:
    result: AZResult = data.get("az_features")
    _entropies_informative(result)
    return _az_output(_mean_over_draws(result, _progressivity), result, "az_progressivity")


@register_proxy(
    "az_trainability",
    higher_is_better=True,
    needs=("az_features",),
    description="AZ-NAS trainability: mean_l 2 - σ - 1/σ of Rademacher block-Jacobian estimates",
)
def az_trainability(data: SessionData, options: ScoringOptions) -> ProxyOutput:
    result: AZResult = data.get("az_features")
    return _az_output(_mean_over_draws(result, _trainability), result, "az_trainability")


@register_proxy(
    "meco",
    higher_is_better=True,
    needs=("meco_pass",),
    description="MeCo: Σ over module outputs of the min eigenvalue of one sample's channel correlation",
)
def meco(data: SessionData, options: ScoringOptions) -> ProxyOutput:
    result: MeCoResult = data.get("meco_pass")
    if result.singular == len(result.terms):
        raise DegenerateValue(
            f"every one of MeCo's {len(result.terms)} module outputs has at least as many channels as positions "
            "(e.g. 16 channels on a 4x4 map), so each channel correlation is singular and MeCo is exactly 0; "
            "score at a larger input resolution or sequence length"
        )
    return ProxyOutput(
        value=float(sum(v for _, v in result.terms)),
        details={
            "calls": len(result.terms),
            "dropped_non_finite": result.dropped,
            "singular_by_construction": result.singular,
            "terms": [{"module": n, "min_eigenvalue": v} for n, v in result.terms],
        },
    )
