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
from lswag_lightning.proxies.results import ProxyOutput, SessionData


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


@register_proxy(
    "az_expressivity",
    higher_is_better=True,
    needs=("az_features",),
    description="AZ-NAS expressivity: Σ_l entropy of the covariance eigenvalues of block features",
)
def az_expressivity(data: SessionData, options: ScoringOptions) -> ProxyOutput:
    result: AZResult = data.get("az_features")
    return _az_output(float(sum(result.entropies)), result, "az_expressivity")


@register_proxy(
    "az_progressivity",
    higher_is_better=True,
    needs=("az_features",),
    description="AZ-NAS progressivity: min_l (E_l - E_{l-1}) over consecutive block features",
)
def az_progressivity(data: SessionData, options: ScoringOptions) -> ProxyOutput:
    result: AZResult = data.get("az_features")
    e = result.entropies
    return _az_output(min(b - a for a, b in zip(e, e[1:])), result, "az_progressivity")


@register_proxy(
    "az_trainability",
    higher_is_better=True,
    needs=("az_features",),
    description="AZ-NAS trainability: mean_l 2 - σ - 1/σ of Rademacher block-Jacobian estimates",
)
def az_trainability(data: SessionData, options: ScoringOptions) -> ProxyOutput:
    result: AZResult = data.get("az_features")
    t = result.trainability
    value = -math.inf if any(v == -math.inf for v in t) else float(sum(t) / len(t))
    return _az_output(value, result, "az_trainability")


@register_proxy(
    "meco",
    higher_is_better=True,
    needs=("meco_pass",),
    description="MeCo: Σ over module outputs of the min eigenvalue of one sample's channel correlation",
)
def meco(data: SessionData, options: ScoringOptions) -> ProxyOutput:
    result: MeCoResult = data.get("meco_pass")
    return ProxyOutput(
        value=float(sum(v for _, v in result.terms)),
        details={
            "calls": len(result.terms),
            "dropped_non_finite": result.dropped,
            "terms": [{"module": n, "min_eigenvalue": v} for n, v in result.terms],
        },
    )
