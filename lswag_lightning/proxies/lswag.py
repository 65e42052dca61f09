"""L-SWAG = Λ × Ψ (METHOD.md §2-4): trainability Λ (ZiCo without its mean) and expressivity Ψ (layer-wise SWAP).

Λ = Σ_{selected layers l} log( Σ_{w in l, s_w > 0} 1 / s_w ), s_w the std of w's gradient over K samples; a layer
whose sum is 0 contributes nothing. Ψ = number of distinct sample-wise binary activation patterns over the
selected activation points. Both higher is better; L-SWAG is their product (both reported alongside).
"""

from __future__ import annotations

import math
from typing import Any

from lswag_lightning.proxies.coverage import Coverage
from lswag_lightning.proxies.degenerate import check_patterns_can_differ, zero_layers_cut_every_path
from lswag_lightning.proxies.layers import count_distinct_patterns, depth_bins, select_by_bins
from lswag_lightning.proxies.options import ScoringOptions
from lswag_lightning.proxies.registry import register_proxy
from lswag_lightning.proxies.results import (
    DEGENERATE,
    ActivationResult,
    DegenerateValue,
    GradStatsResult,
    ProxyError,
    ProxyOutput,
    SessionData,
    no_gradient_details,
)


def trainability(stats: GradStatsResult, interval: tuple[int, int] | None) -> tuple[float, list[dict[str, Any]]]:
    """Λ over the weight layers whose depth bin lies in ``interval`` (None: all), and the per-layer table."""
    depth = len(stats.layers)
    bins = depth_bins(depth)
    keep = select_by_bins(depth, interval)
    if not any(keep):
        raise ProxyError(
            f"no weight layer falls in depth bins {list(interval)}: the model's {depth} weight layers "
            f"map to bins {sorted(set(bins))}; widen layer_interval"
        )
    total = 0.0
    table = []
    for layer, layer_bin, selected in zip(stats.layers, bins, keep):
        term = math.log(layer.inv_std_sum) if layer.inv_std_sum > 0 else 0.0
        if selected:
            total += term
        table.append(
            {
                "name": layer.name,
                "bin": layer_bin,
                "selected": selected,
                "numel": layer.numel,
                "zero_std": layer.n_zero_std,
                "lambda_term": term,
                "mean_log_std": layer.mean_log_std,
            }
        )
    return total, table


def expressivity(acts: ActivationResult, interval: tuple[int, int] | None) -> tuple[float, dict[str, Any]]:
    """Ψ over the activation points whose depth bin (among all points) lies in ``interval`` (None: all)."""
    count = len(acts.points)
    keep = select_by_bins(count, interval)
    if not any(keep):
        raise ProxyError(
            f"no activation point falls in depth bins {list(interval)} (the model has {count} "
            "activation points); widen psi_layers"
        )
    codes = [c for c, k in zip(acts.codes, keep) if k]
    neurons = sum(n for n, k in zip(acts.neurons, keep) if k)
    distinct = count_distinct_patterns(codes)
    details = {
        "points": count,
        "selected_points": [p for p, k in zip(acts.points, keep) if k],
        "neurons": neurons,
        "distinct_patterns": distinct,
        "samples": acts.samples,
        # 1.0 means every neuron has its own pattern: Ψ has become a count of neurons (METHOD.md §5).
        "saturation": distinct / neurons if neurons else math.nan,
    }
    return float(distinct), details


@register_proxy(
    "lswag",
    higher_is_better=True,
    needs=("labels", "grad_stats", "activations"),
    extra_values=("lswag.lambda", "lswag.psi"),
    description="L-SWAG = Λ (layer-restricted ZiCo without mean) × Ψ (layer-wise SWAP); CVPR 2025",
)
def lswag(data: SessionData, options: ScoringOptions) -> ProxyOutput:
    errors: dict[str, str] = {}
    details: dict[str, Any] = {}
    coverage: dict[str, Coverage] = {}
    lam = psi = math.nan
    try:
        stats: GradStatsResult = data.get("grad_stats")
        if not any(layer.inv_std_sum > 0 for layer in stats.layers):
            zero_layers_cut_every_path(data, "Λ is 0: the loss gradient is zero for every weight", "lswag")
        lam, layers = trainability(stats, options.layer_interval)
        details["lambda"] = {
            "interval": options.layer_interval,
            "gradient_samples": stats.num_samples,
            "sample_sizes": stats.sample_sizes,
            "layers": layers,
            "no_gradient": no_gradient_details(stats.no_gradient),
        }
        if stats.coverage is not None:
            coverage["lswag.lambda"] = stats.coverage
    except ProxyError as exc:
        errors["lswag.lambda"] = _reason(exc)
    try:
        acts = data.get("activations")
        check_patterns_can_differ(data, acts, "Ψ")
        psi, details["psi"] = expressivity(acts, options.psi_interval())
        details["psi"]["interval"] = options.psi_interval()
        if acts.coverage is not None:
            coverage["lswag.psi"] = acts.coverage
    except ProxyError as exc:
        errors["lswag.psi"] = _reason(exc)
    if errors:
        parts = [f"{'Λ' if k.endswith('lambda') else 'Ψ'}: {v.removeprefix(DEGENERATE)}" for k, v in errors.items()]
        all_degenerate = all(v.startswith(DEGENERATE) for v in errors.values())
        errors["lswag"] = (DEGENERATE if all_degenerate else "") + "; ".join(parts)
    if coverage:  # L-SWAG measures what its less covered factor measures
        coverage["lswag"] = min(coverage.values(), key=lambda c: c.share)
    return ProxyOutput(
        value=lam * psi,
        extras={"lswag.lambda": lam, "lswag.psi": psi},
        details=details,
        errors=errors,
        extra_needs={"lswag.lambda": ("grad_stats",), "lswag.psi": ("activations",)},
        coverage=coverage,
    )


def _reason(exc: ProxyError) -> str:
    """A factor's status text: ``degenerate: ...`` for a degenerate factor, the message otherwise."""
    return f"{DEGENERATE}{exc}" if isinstance(exc, DegenerateValue) else str(exc)
