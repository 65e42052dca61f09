"""Model-agnostic structure statistics of any ``nn.Module``: size, width and depth, with no labels and no training.

These are features for a learned ranking (:mod:`lswag_lightning.analysis.learned`), not proxies: none of them is
"higher is better" by itself. Everything is read from the parameters and from the autograd graph of one forward
pass, so it works for CNNs, ViTs and cells alike (nothing looks at layer classes or names).

Static, from the trainable parameters. A "weight" is a parameter tensor with at least 2 dimensions and a leading
dimension above 1 (a conv kernel, a linear or attention matrix); a leading dimension of 1 marks a table broadcast
over the batch (a class token, a position embedding), which is not counted as a weight.

- ``n_param_tensors``: trainable parameter tensors; ``n_weight_tensors``: the weights among them;
- ``width_mean`` / ``width_min`` / ``width_max``: output size (``shape[0]``) of the weights, in units;
- ``fan_in_mean``: mean inputs per output unit of the weights (``prod(shape[1:])``);
- ``kernel_area_mean``: mean spatial kernel area (``prod(shape[2:])``) of the weights with 3+ dimensions (NaN when
  the model has none); ``spatial_weight_fraction``: fraction of the weights with a kernel area above 1.

Dynamic, from one forward of ``example_input`` in eval mode and one backward of a seeded random projection of the
output (the model's weights, buffers, ``.grad`` fields and train/eval flags are left as they were):

- ``live_params``: parameters (a count) of the tensors whose gradient is not identically zero, i.e. the parameters
  that can change the output (a conv feeding only a ``none`` edge is dead); ``live_param_fraction`` = that / all;
- the "input paths": the routes from the input to the output through the autograd graph along which the gradient
  is not identically zero (a multiplication by 0 cuts its route). A *weighted op* is a graph node on an input path
  that also consumes a weight (a conv, a linear layer, an attention projection). ``n_weighted_ops``: weighted ops
  on input paths; ``depth_max`` / ``depth_min`` / ``depth_mean``: weighted ops along the deepest, the shallowest and
  an average input path (mean over paths, each path counted once); ``log10_paths``: log10 of the number of input
  paths (skip connections and parallel branches multiply it).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

#: The statistics :func:`architecture_stats` returns, in order.
STAT_NAMES = (
    "n_param_tensors",
    "n_weight_tensors",
    "width_mean",
    "width_min",
    "width_max",
    "fan_in_mean",
    "kernel_area_mean",
    "spatial_weight_fraction",
    "live_params",
    "live_param_fraction",
    "n_weighted_ops",
    "depth_max",
    "depth_min",
    "depth_mean",
    "log10_paths",
)


def _is_weight(p: torch.Tensor) -> bool:
    return p.dim() >= 2 and p.shape[0] > 1


def static_stats(model: nn.Module) -> dict[str, float]:
    """The parameter-only statistics of the module docstring (no forward pass)."""
    params = [p for p in model.parameters() if p.requires_grad]
    weights = [p for p in params if _is_weight(p)]
    if not weights:
        raise ValueError("the model has no trainable weight (a parameter with 2+ dimensions); nothing to describe")
    widths = [float(w.shape[0]) for w in weights]
    kernels = [float(math.prod(w.shape[2:])) for w in weights if w.dim() >= 3]
    return {
        "n_param_tensors": float(len(params)),
        "n_weight_tensors": float(len(weights)),
        "width_mean": sum(widths) / len(widths),
        "width_min": min(widths),
        "width_max": max(widths),
        "fan_in_mean": sum(float(math.prod(w.shape[1:])) for w in weights) / len(weights),
        "kernel_area_mean": sum(kernels) / len(kernels) if kernels else math.nan,
        "spatial_weight_fraction": sum(k > 1 for k in kernels) / len(weights),
    }


def _first_tensor(output) -> torch.Tensor:
    if isinstance(output, torch.Tensor):
        return output
    if isinstance(output, Sequence) and output and isinstance(output[0], torch.Tensor):
        return output[0]
    raise TypeError(f"the model returned {type(output).__name__}; expected a tensor or a sequence starting with one")


class _Graph:
    """The autograd graph below one output: nodes, their inputs (``next_functions``) and which edges carry a
    gradient that is not identically zero (recorded by node hooks during one backward)."""

    def __init__(self, root) -> None:
        self.root = root
        self.nodes: list = []
        seen: set[int] = set()
        stack = [root]
        while stack:
            node = stack.pop()
            if node is None or id(node) in seen:
                continue
            seen.add(id(node))
            self.nodes.append(node)
            stack.extend(n for n, _ in node.next_functions)
        self.live_inputs: dict[int, tuple[bool, ...]] = {}

    def record_live_edges(self) -> list:
        """Register hooks noting, for every node, which of its inputs receive a non-zero gradient."""

        def hook(node):
            def record(grad_inputs, grad_outputs):
                self.live_inputs[id(node)] = tuple(g is not None and bool(torch.any(g != 0)) for g in grad_inputs)

            return record

        return [node.register_hook(hook(node)) for node in self.nodes]

    def live_next(self, node) -> list:
        flags = self.live_inputs.get(id(node), ())
        return [n for (n, _), live in zip(node.next_functions, flags) if n is not None and live]

    def topological(self) -> list:
        """Nodes reachable from the root, every node after all the nodes it feeds into (root first)."""
        order, state, stack = [], {}, [(self.root, False)]
        while stack:
            node, done = stack.pop()
            if done:
                order.append(node)
                continue
            if state.get(id(node)):
                continue
            state[id(node)] = True
            stack.append((node, True))
            stack.extend((n, False) for n, _ in node.next_functions if n is not None and not state.get(id(n)))
        return order[::-1]


def _is_weight_leaf(node, weight_ids: set[int]) -> bool:
    variable = getattr(node, "variable", None)
    return variable is not None and id(variable) in weight_ids


def _depth_stats(graph: _Graph, input_node, weight_ids: set[int]) -> dict[str, float]:
    order = graph.topological()  # root (output) first, leaves last
    on_path: dict[int, bool] = {id(input_node): True}  # on a live input path
    from_input: dict[int, bool] = {id(input_node): True}  # computed from the input at all (live or not)
    for node in reversed(order):
        if node is not input_node:
            on_path[id(node)] = any(on_path.get(id(n), False) for n in graph.live_next(node))
            from_input[id(node)] = any(from_input.get(id(n), False) for n, _ in node.next_functions if n is not None)

    def side_inputs(node) -> list:  # the node's inputs computed from parameters alone (a weight, its transpose)
        return [n for n, _ in node.next_functions if n is not None and not from_input.get(id(n))]

    reaches_weight: dict[int, bool] = {}
    for node in reversed(order):
        reaches_weight[id(node)] = _is_weight_leaf(node, weight_ids) or any(
            reaches_weight.get(id(n), False) for n in side_inputs(node)
        )
    root = id(graph.root)
    if not on_path.get(root):  # a disconnected network: no path, depth undefined
        return {
            "n_weighted_ops": 0.0,
            "depth_max": math.nan,
            "depth_min": math.nan,
            "depth_mean": math.nan,
            "log10_paths": -math.inf,
        }
    key0 = id(input_node)
    paths, deepest, shallowest, depth_sum = {key0: 1}, {key0: 0.0}, {key0: 0.0}, {key0: 0.0}
    n_weighted = 0
    for node in reversed(order):
        key = id(node)
        if node is input_node or not on_path.get(key):
            continue
        below = [id(n) for n in graph.live_next(node) if on_path.get(id(n))]
        w = float(any(reaches_weight.get(id(n), False) for n in side_inputs(node)))
        n_weighted += int(w)
        paths[key] = sum(paths[b] for b in below)
        deepest[key] = w + max(deepest[b] for b in below)
        shallowest[key] = w + min(shallowest[b] for b in below)
        depth_sum[key] = w * paths[key] + sum(depth_sum[b] for b in below)
    return {
        "n_weighted_ops": float(n_weighted),
        "depth_max": deepest[root],
        "depth_min": shallowest[root],
        "depth_mean": depth_sum[root] / paths[root],
        "log10_paths": math.log10(paths[root]),
    }


def _dynamic_stats(model: nn.Module, example_input: torch.Tensor, seed: int) -> dict[str, float]:
    params = [p for p in model.parameters() if p.requires_grad]
    weight_ids = {id(p) for p in params if _is_weight(p)}
    x = example_input.detach().clone().requires_grad_(True)
    with torch.enable_grad():
        out = _first_tensor(model(x))
        generator = torch.Generator().manual_seed(seed)
        projection = torch.randn(out.shape, generator=generator, dtype=out.dtype).to(out.device)
        if out.grad_fn is None:
            raise ValueError("the output has no autograd graph (is the forward pass wrapped in no_grad?)")
        graph = _Graph(out.grad_fn)
        input_node = next((n for n in graph.nodes if getattr(n, "variable", None) is x), None)
        if input_node is None:
            raise ValueError("the output does not depend on the input")
        handles = graph.record_live_edges()
        try:
            grads = torch.autograd.grad((out * projection).sum(), [x, *params], allow_unused=True)
        finally:
            for handle in handles:
                handle.remove()
    live = [p for p, g in zip(params, grads[1:]) if g is not None and bool(torch.any(g != 0))]
    total = sum(p.numel() for p in params)
    stats = {"live_params": float(sum(p.numel() for p in live)), "live_param_fraction": 0.0}
    stats["live_param_fraction"] = stats["live_params"] / total
    stats.update(_depth_stats(graph, input_node, weight_ids))
    return stats


def architecture_stats(model: nn.Module, example_input: torch.Tensor, *, seed: int = 0) -> dict[str, float]:
    """Every statistic of :data:`STAT_NAMES` for ``model`` (module docstring: definitions and units).

    ``example_input`` is one input batch the model accepts (e.g. ``torch.randn(2, 3, 32, 32)``) on the model's
    device; its values only decide which gradients vanish, so any non-degenerate random batch will do. ``seed``
    seeds the output projection (drawn on the CPU, then moved). ``ValueError`` when the model has no weight or its
    output does not depend on the input.
    """
    flags = {m: m.training for m in model.modules()}
    try:
        model.eval()
        stats = {**static_stats(model), **_dynamic_stats(model, example_input, seed)}
    finally:
        for module, training in flags.items():
            module.training = training
    return {name: stats[name] for name in STAT_NAMES}
