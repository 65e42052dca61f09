"""The gradient statistics passes: K forward+backward passes (the K split parts, K whole batches, or single samples)
and Welford statistics per weight element in float64, for Λ and ZiCo (``grad_stats``) and ZiCo on single samples
(``per_sample_grad_stats``).

The split pass also serves the batch gradient of snip and grad_norm (``batch_grads``) when that is the same number,
or when the user chose ``batch_grads="split"`` (``batch_grads_from_split``): the mean of the K part gradients, with no
backward of its own. With ``lambda_samples="per_sample"`` one pass on single samples serves Λ and ``zico_ps``.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from lswag_lightning.proxies.forward import ProbeRunner, is_batch_norm
from lswag_lightning.proxies.layers import order_weight_layers
from lswag_lightning.proxies.options import ScoringOptions
from lswag_lightning.proxies.registry import register_pass
from lswag_lightning.proxies.results import (
    GradStatsResult,
    LayerGradStats,
    PassOutput,
    ProxyError,
    SessionContext,
    WeightGrads,
)

#: what the gradient passes measure (the ``what`` of their coverage)
GRADIENT_COVERAGE = "the weights of the Conv/Linear layers the loss gradient reaches"


class _Welford:
    """Running mean and M2 (float64) of one gradient tensor over samples, plus the mean of |g|."""

    def __init__(self) -> None:
        self.count = 0
        self.mean: torch.Tensor | None = None
        self.m2: torch.Tensor | None = None
        self.abs_mean: torch.Tensor | None = None
        self.abs_m2: torch.Tensor | None = None

    def update(self, grad: torch.Tensor, track_abs_std: bool) -> None:
        g = grad.detach().to(torch.float64).flatten()
        self.count += 1
        a = g.abs()
        if self.count == 1:
            self.mean, self.m2 = g.clone(), torch.zeros_like(g)
            self.abs_mean = a.clone()
            self.abs_m2 = torch.zeros_like(g) if track_abs_std else None
            return
        delta = g - self.mean
        self.mean += delta / self.count
        self.m2 += delta * (g - self.mean)
        delta_abs = a - self.abs_mean
        self.abs_mean += delta_abs / self.count
        if track_abs_std:
            self.abs_m2 += delta_abs * (a - self.abs_mean)

    def reduce(self, name: str, lambda_std: str) -> LayerGradStats:
        std = torch.sqrt(self.m2 / self.count)
        keep = std > 0
        zico_sum = float((self.abs_mean[keep] / std[keep]).sum())
        lam_std = torch.sqrt(self.abs_m2 / self.count) if lambda_std == "abs" else std
        lam_keep = lam_std > 0
        kept = lam_std[lam_keep]
        return LayerGradStats(
            name=name,
            numel=int(std.numel()),
            n_zero_std=int((~lam_keep).sum()),
            inv_std_sum=float((1.0 / kept).sum()),
            zico_sum=zico_sum,
            mean_log_std=float(torch.log(kept).mean()) if kept.numel() else math.nan,
        )


def grad_stats_pass(
    probe: ProbeRunner, work: nn.Module, chunks: list[torch.Tensor], keep_mean: bool = False
) -> GradStatsResult:
    """Welford statistics of each weight layer's loss gradient over the chunks (K gradient samples).

    Weight layers the loss never reaches (an auxiliary head whose output the adapter drops, an unused branch)
    get no gradient: they are left out of the statistics and listed in ``no_gradient``.
    """
    names, modules = probe.weight_list(work)
    weights = [m.weight for m in modules]
    accumulators = [_Welford() for _ in modules]
    track_abs = probe.options.lambda_std == "abs"
    order: list[tuple[str, nn.Module]] = []
    single = all(len(c) == 1 for c in chunks)
    with probe.single_sample_normalisation(work, torch.cat(chunks), enabled=single) as new_sample:
        for k, index in enumerate(chunks):
            new_sample()
            with probe.order_recorder(work) as first_call:
                logits = probe.logits(work, probe.inputs[index], probe.targets_at(index))
            loss = probe.loss(logits, probe.targets[index])
            grads = torch.autograd.grad(loss, weights, allow_unused=True)
            if k == 0:
                used = {m for m, g in zip(modules, grads) if g is not None}
                if not used:
                    raise ProxyError("the loss does not depend on any Conv/Linear weight")
                order = order_weight_layers(work, first_call, used)
            for acc, grad in zip(accumulators, grads):
                if grad is not None:
                    acc.update(grad, track_abs)
    position = {m: i for i, m in enumerate(modules)}
    order = [(name, m) for name, m in order if accumulators[position[m]].count > 0]
    kept = {m for _, m in order}
    layers = [accumulators[position[m]].reduce(name, probe.options.lambda_std) for name, m in order]
    mean_grads = None
    if keep_mean:
        mean_grads = WeightGrads(
            names=[n for n, _ in order],
            weights=[m.weight.detach() for _, m in order],
            grads=[accumulators[position[m]].mean.view_as(m.weight) for _, m in order],
        )
    no_gradient = [n for n, m in zip(names, modules) if m not in kept]
    coverage = probe.coverage([m.weight for _, m in order], GRADIENT_COVERAGE)
    if mean_grads is not None:
        mean_grads.no_gradient = no_gradient
        mean_grads.coverage = coverage
    return GradStatsResult(
        layers=layers,
        num_samples=len(chunks),
        sample_sizes=[len(c) for c in chunks],
        mean_grads=mean_grads,
        no_gradient=no_gradient,
        coverage=coverage,
    )


def batch_grads_from_split(context: SessionContext) -> bool:
    """Whether the batch gradient (snip, grad_norm) is the mean of the K split gradients.

    Always with ``batch_grads="split"`` (the user chose that definition). Otherwise only when it is the same number:
    the model has no BatchNorm (so a sample's output does not depend on the others) and the batch splits into K
    equal parts, so the mean cross-entropy of the batch is the mean of the parts' losses and its gradient the mean
    of their gradients; the split pass then serves it without another backward.
    """
    opts = context.options
    if "batch_grads" not in context.needs or opts.lambda_samples != "split":
        return False
    if opts.batch_grads == "split":
        return True
    return (
        opts.loss_fn is None
        and context.inputs.shape[0] % opts.lambda_k == 0
        and not any(is_batch_norm(m) for m in context.model.modules())
    )


def _split_claims(context: SessionContext, remaining: frozenset[str]) -> frozenset[str]:
    """Λ/ZiCo's statistics, plus ``zico_ps``'s when Λ itself is per-sample, plus the batch gradient when equal."""
    products = {"grad_stats"} & remaining
    if context.options.lambda_samples == "per_sample" and products and "per_sample_grad_stats" in remaining:
        products.add("per_sample_grad_stats")  # Λ on single samples is the same pass as zico_ps
    if "batch_grads" in remaining and batch_grads_from_split(context):
        products.add("batch_grads")
    return frozenset(products)


def _check_split(context: SessionContext) -> dict[str, str]:
    opts, total = context.options, context.inputs.shape[0]
    if opts.lambda_samples == "split" and total < opts.lambda_k:
        raise ValueError(
            f"{context.requesting('grad_stats')} split the batch into lambda_k="
            f"{opts.lambda_k} gradient samples, so they need a batch of at least "
            f"{opts.lambda_k}; got {total}. Use a larger batch (64 is the default)"
        )
    if opts.lambda_samples == "per_sample" and min(total, opts.per_sample_count) < 2:
        raise ValueError(f"per-sample gradient statistics need at least 2 samples; got a batch of {total}")
    return {}


def _explain_split(exc: BaseException, options: ScoringOptions) -> str | None:
    if "Expected more than 1 value per channel" in str(exc) and options.lambda_samples == "split":
        return (
            f"a BatchNorm layer normalises each of the lambda_k={options.lambda_k} gradient samples on its "
            f"own and got one sample: use a probe batch of at least {2 * options.lambda_k}"
        )
    return None


@register_pass(
    "gradient statistics",
    produces={
        "grad_stats": "per-element gradient statistics over K gradient samples (Λ, ZiCo): K forward+backward passes"
    },
    weight_gradients=True,
    loss=True,
    claims=_split_claims,
    validate=_check_split,
    explain=_explain_split,
)
def gradient_statistics(probe: ProbeRunner, work: nn.Module, products: frozenset[str]) -> PassOutput:
    """The K gradient samples of ``lambda_samples`` (split parts or whole batches; single samples for
    ``"per_sample"``); keeps their mean gradient when it serves ``batch_grads``."""
    plan = "per_sample" if probe.options.lambda_samples == "per_sample" else "split"
    result = grad_stats_pass(probe, work, probe.chunks(plan), keep_mean="batch_grads" in products)
    return PassOutput(results={need: result.mean_grads if need == "batch_grads" else result for need in products})


def _check_per_sample(context: SessionContext) -> dict[str, str]:
    total = context.inputs.shape[0]
    if total < 2:
        raise ValueError(
            f"zico_ps takes the std over per-sample gradients, so it needs a batch of at least 2; got {total}"
        )
    return {}


@register_pass(
    "per-sample gradient statistics",
    produces={
        "per_sample_grad_stats": "gradient statistics over single-sample gradients: one backward per sample",
    },
    weight_gradients=True,
    loss=True,
    validate=_check_per_sample,
)
def per_sample_gradient_statistics(probe: ProbeRunner, work: nn.Module, products: frozenset[str]) -> GradStatsResult:
    """Single-sample gradients of the first ``per_sample_count`` samples (when the split pass does not serve them)."""
    return grad_stats_pass(probe, work, probe.chunks("per_sample"))
