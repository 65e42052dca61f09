"""Two passes of their own: synflow (a float64 pass of an all-ones input through |weights|, eval mode, via
``functional_call``) and flops (one sample under ``torch.utils.flop_counter``, eval mode, no grad)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from lswag_lightning.proxies.coverage import Coverage
from lswag_lightning.proxies.forward import ProbeRunner
from lswag_lightning.proxies.layers import order_weight_layers, weight_modules
from lswag_lightning.proxies.options import ScoringOptions
from lswag_lightning.proxies.registry import register_pass

SYNFLOW_COVERAGE = "the weights of the Conv/Linear layers the synaptic flow reaches"


@dataclass
class SynflowResult:
    layers: list[tuple[str, float]]  # (weight layer, Σ |θ ⊙ ∂R/∂θ|), forward order
    coverage: Coverage | None = None


def _explain_synflow(exc: BaseException, options: ScoringOptions) -> str | None:
    text = str(exc)
    if "double" not in text.lower() and "dtype" not in text:
        return None
    if _raised_in(exc, "torch/utils/checkpoint.py"):
        return (
            "synflow runs the model in float64, and a checkpointed segment recomputed in backward with the module's "
            "own weights: turn gradient checkpointing off for scoring, or leave synflow out"
        )
    return (
        "synflow runs the model in float64 and a float32 tensor met the float64 weights: a tensor made inside "
        "forward (a cast such as x.float(), a cached mask or buffer kept outside the module's parameters) should "
        "follow the input's or the weights' dtype; or leave synflow out"
    )


def _raised_in(exc: BaseException, path: str) -> bool:
    """Whether a frame of ``exc``'s traceback runs code from a file whose path ends with ``path``."""
    tb = exc.__traceback__
    while tb is not None:
        if tb.tb_frame.f_code.co_filename.replace("\\", "/").endswith(path):
            return True
        tb = tb.tb_next
    return False


@register_pass(
    "synflow",
    produces={"synflow_pass": "its own float64 forward+backward of an all-ones input with |weights|"},
    weight_gradients=True,
    explain=_explain_synflow,
)
def synflow_pass(probe: ProbeRunner, work: nn.Module, products: frozenset[str]) -> SynflowResult:
    """Per weight layer Σ |θ ⊙ ∂R/∂θ| with θ -> |θ| (float64), R = sum of logits for an all-ones input; the coverage
    is the weights the flow reaches.

    The all-ones input has the probe's own dtype when that is not floating point (token ids of 1), float64
    otherwise; with ``forward_fn`` the first sample's targets are passed along.
    """
    work.eval()
    weight_ids = {id(m.weight) for _, m in weight_modules(work)}
    params = {}
    for name, p in work.named_parameters():
        params[name] = p.detach().to(torch.float64).abs().requires_grad_(id(p) in weight_ids)
    buffers = {name: (b.detach().to(torch.float64) if b.is_floating_point() else b) for name, b in work.named_buffers()}
    dtype = torch.float64 if probe.inputs.is_floating_point() else probe.inputs.dtype
    ones = torch.ones((1, *probe.inputs.shape[1:]), dtype=dtype, device=probe.inputs.device)
    with probe.order_recorder(work) as first_call:
        logits = probe.adapter(
            probe.functional_forward(work, {**params, **buffers}, ones, probe.targets_at(slice(0, 1)))
        )
    names = [n for n, p in work.named_parameters() if id(p) in weight_ids]
    grads = torch.autograd.grad(logits.sum(), [params[n] for n in names], allow_unused=True)
    by_name = dict(zip(names, grads))
    module_of = {m: n + ".weight" for n, m in weight_modules(work)}
    used = {m for m, pname in module_of.items() if by_name.get(pname) is not None}
    out = []
    for layer_name, layer in order_weight_layers(work, first_call, used):
        if layer in used:
            pname = module_of[layer]
            out.append((layer_name, float((params[pname].detach() * by_name[pname]).abs().sum())))
    return SynflowResult(layers=out, coverage=probe.coverage([m.weight for m in used], SYNFLOW_COVERAGE))


@register_pass("flops", produces={"flops_pass": "a one-sample forward under torch.utils.flop_counter"})
def flops_pass(probe: ProbeRunner, work: nn.Module, products: frozenset[str]) -> int:
    """FLOPs of the first sample's forward (a multiply-add counts 2)."""
    from torch.utils.flop_counter import FlopCounterMode

    work.eval()
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        probe.logits(work, probe.inputs[:1], probe.targets_at(slice(0, 1)))
    return int(counter.get_total_flops())
