"""VKDNW without vmap, checked against the vmap implementation it replaced: values and cost, side by side.

The reference below is the engine's VKDNW before issue 22 (``vmap(jacrev)`` over samples of one scalar per sampled
tensor, in chunks of 8), kept here only to compare: the same Kaiming state, Gaussian batch and Fisher, so the two
must agree up to floating-point summation order.

    # values: NB201 cells of lswag-bench's sample (C=16, N=5, 10 classes), plus NB101 / NB301 / AutoFormer-Ti nets
    python benchmarks/vkdnw_check.py values --nb201 60 --others 3 --out runs/vkdnw_check/values.json
    # cost: VKDNW alone, new and reference, as ratios to one training step on the engine benchmark's two models and
    # an AutoFormer-Ti subnet (--only TEXT: the models whose name contains TEXT)
    python benchmarks/vkdnw_check.py cost --repeats 3
    # one forward-mode product against one backward pass of the batch (the engine's FORWARD_MODE_FACTOR)
    python benchmarks/vkdnw_check.py paths --repeats 3
    # the cost as the head grows (10, 100, 1000 classes): hook path, forward mode, the engine's choice, reference
    python benchmarks/vkdnw_check.py classes

Run with one thread (``--threads``, default 1) for stable timings; ``LSWAG_DATA_DIR`` for the CIFAR-10 probe of the
engine benchmark (digits otherwise).
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import numpy as np
import torch
from scipy.stats import spearmanr
from scoring_cost import models as benchmark_models  # benchmarks/ is the script's folder, so sys.path[0]
from scoring_cost import probe_batch, timed, train_step
from timm.models.vision_transformer import VisionTransformer
from torch import nn
from torch.func import functional_call, jacrev, vmap

from lswag_lightning import score_network
from lswag_lightning.proxies.author_passes import _generator, gaussian_like
from lswag_lightning.proxies.vkdnw import decile_entropy, multinomial_cholesky, protocol_state, smoothed_probabilities
from lswag_lightning.spaces import get_space


def reference_vkdnw(model: nn.Module, inputs: torch.Tensor, seed: int = 0, fisher: str = "repo") -> float:
    """VKDNW as the engine computed it before issue 22: vmap over samples of jacrev over one scalar per tensor."""
    names = [n for n, p in model.named_parameters() if p.is_floating_point()]
    state, buffers = protocol_state(model, seed)
    model.eval()
    sampled = names[:128]
    onehots = {}
    for name in sampled:
        e0 = torch.zeros_like(state[name]).reshape(-1)
        e0[0] = 1.0
        onehots[name] = e0.reshape(state[name].shape)
    x = gaussian_like(inputs.shape, _generator(seed), inputs.device, inputs.dtype)

    def logits_of(deltas: torch.Tensor, sample: torch.Tensor) -> torch.Tensor:
        params = dict(state)
        for index, name in enumerate(sampled):
            params[name] = state[name] + deltas[index] * onehots[name]
        return functional_call(model, {**params, **buffers}, (sample[None],))[0]

    deltas = torch.zeros(len(sampled), dtype=state[sampled[0]].dtype)
    jac = vmap(jacrev(logits_of), in_dims=(None, 0), chunk_size=8)(deltas, x)
    with torch.no_grad():
        logits = vmap(logits_of, in_dims=(None, 0), chunk_size=8)(deltas, x)
    jac, logits = jac.detach().double(), logits.detach().double()
    factor = multinomial_cholesky(smoothed_probabilities(logits))
    if fisher == "exact":
        factor = factor.transpose(1, 2)
    lj = factor @ jac
    return decile_entropy(torch.linalg.eigvalsh(torch.einsum("bkp,bkq->pq", lj, lj) / jac.shape[0]))


def networks(nb201: int, others: int) -> list[tuple[str, nn.Module, torch.Tensor]]:
    """(label, freshly built net, probe-shaped Gaussian-free input) for the spaces of the committed tables."""
    out = []
    gen = torch.Generator().manual_seed(0)
    cifar = torch.randn(64, 3, 32, 32, generator=gen)
    space = get_space("nb201")
    rng = np.random.default_rng(0)
    for i in range(nb201):
        spec = space.sample(rng)
        torch.manual_seed(i)
        out.append((f"nb201 {space.encode(spec)}", space.build(spec, num_classes=10), cifar))
    for name, size in (("nb101", 32), ("darts", 32), ("autoformer_ti", 112)):
        sp = get_space(name)
        for i in range(others):
            torch.manual_seed(i)
            kwargs = {"img_size": size} if name == "autoformer_ti" else {}
            x = cifar if size == 32 else torch.randn(64, 3, size, size, generator=gen)
            out.append((f"{name} {i}", sp.build(sp.sample(i), num_classes=10, **kwargs), x))
    return out


def values(args: argparse.Namespace) -> None:
    rows = []
    for label, net, x in networks(args.nb201, args.others):
        start = time.perf_counter()
        report = score_network(net, x, None, proxies=["vkdnw"])
        new_s = time.perf_counter() - start
        start = time.perf_counter()
        ref = reference_vkdnw(net, x)
        ref_s = time.perf_counter() - start
        new = report.values["vkdnw"]
        rel = abs(new - ref) / max(abs(ref), 1e-300)
        rows.append(
            {
                "net": label,
                "new": new,
                "reference": ref,
                "rel_diff": rel,
                "new_s": new_s,
                "ref_s": ref_s,
                "methods": report.details["vkdnw"]["methods"],
            }
        )
        print(
            f"{label[:60]:60s} new {new:.12f} ref {ref:.12f} rel {rel:.2e} ({new_s:.1f} s / {ref_s:.1f} s)", flush=True
        )
    nb201 = [r for r in rows if r["net"].startswith("nb201")]
    summary = {
        "max_rel_diff": max(r["rel_diff"] for r in rows),
        "nb201_cells": len(nb201),
        "nb201_spearman_new_vs_reference": float(
            spearmanr([r["new"] for r in nb201], [r["reference"] for r in nb201])[0]
        )
        if len(nb201) > 2
        else math.nan,
        "seconds_new": sum(r["new_s"] for r in rows),
        "seconds_reference": sum(r["ref_s"] for r in rows),
    }
    print(json.dumps(summary, indent=1))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps({"summary": summary, "rows": rows}, indent=1))


def inputs_for(name: str, x: torch.Tensor) -> torch.Tensor:
    """The probe batch at the model's resolution: 112 px for the AutoFormer-Ti subnet, as given otherwise."""
    return nn.functional.interpolate(x, size=112, mode="bilinear") if name.startswith("AutoFormer") else x


def autoformer_model() -> dict[str, nn.Module]:
    """The first AutoFormer-Ti subnet of the values run: 112 px, 10 classes, as ``lswag-bench autoformer_ti`` scores
    it (its class token and position embedding take the forward-mode path)."""
    space = get_space("autoformer_ti")
    torch.manual_seed(0)
    return {"AutoFormer-Ti subnet 0 (112 px, 10 classes)": space.build(space.sample(0), num_classes=10, img_size=112)}


def cost(args: argparse.Namespace) -> None:
    x, y, source = probe_batch(64, seed=0)
    print(
        f"batch 64 of {source}; {args.threads} CPU thread(s); median of {args.repeats} after a warm-up; "
        f"torch {torch.__version__}"
    )
    print("| model | train step (s) | VKDNW, reference vmap | VKDNW, new | new / reference |")
    print("|---|---|---|---|---|")
    models = {**benchmark_models(), **autoformer_model()}
    for name, model in models.items():
        if args.only and args.only not in name:
            continue
        inputs = inputs_for(name, x)
        step = timed(train_step(model, inputs, y), args.repeats)
        ref = timed(lambda model=model, inputs=inputs: reference_vkdnw(model, inputs), args.repeats)
        new = timed(lambda model=model, inputs=inputs: score_network(model, inputs, y, proxies=["vkdnw"]), args.repeats)
        print(f"| {name} | {step:.3f} | {ref / step:.2f}x | {new / step:.2f}x | {new / ref:.2f} |", flush=True)


def paths(args: argparse.Namespace) -> None:
    """What one forward-mode product (one sampled tensor, every sample and output) costs in backward passes of the
    batch to the layer outputs (what the hook path takes per output): the basis of ``FORWARD_MODE_FACTOR``."""
    x, _, _ = probe_batch(64, seed=0)
    print("| model | forward (s) | backward to the layer outputs (s) | one forward-mode product (s) | ratio |")
    print("|---|---|---|---|---|")
    for name, model in {**benchmark_models(), **autoformer_model()}.items():
        inputs = inputs_for(name, x)
        forward_s, backward_s, product_s = path_costs(model.eval(), inputs, args.repeats)
        print(f"| {name} | {forward_s:.2f} | {backward_s:.2f} | {product_s:.2f} | {product_s / backward_s:.1f} |")


def path_costs(model: nn.Module, inputs: torch.Tensor, repeats: int) -> tuple[float, float, float]:
    """Seconds of one forward, one backward pass of output 0 to every Conv2d/Linear output, one forward-mode product
    of element 0 of the third weight matrix (as ``jacobians._jvp_column`` runs it)."""
    from torch.autograd import forward_ad

    from lswag_lightning.proxies.jacobians import _element, _forward_mode_kernels

    params = dict(model.named_parameters())
    weight = [n for n, p in params.items() if p.ndim > 1][2]
    outputs: list[torch.Tensor] = []
    layers = [m for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    handles = [m.register_forward_hook(lambda m, a, o: outputs.append(o)) for m in layers]
    start = time.perf_counter()
    logits = model(inputs)
    forward_s = time.perf_counter() - start
    for handle in handles:
        handle.remove()
    backward_s = timed(
        lambda: torch.autograd.grad(logits[:, 0].sum(), outputs, retain_graph=True, allow_unused=True), repeats
    )

    def product() -> None:
        with _forward_mode_kernels(), forward_ad.dual_level(), torch.no_grad():
            dual = forward_ad.make_dual(params[weight].detach(), _element(params[weight]))
            functional_call(model, {weight: dual}, (inputs,))

    return forward_s, backward_s, timed(product, repeats)


def classes(args: argparse.Namespace) -> None:
    """VKDNW's cost as the head grows: the hook path (one backward pass per output), forward mode (one product per
    sampled tensor), the engine's choice between them and the vmap reference, on one small ViT, side by side."""
    import lswag_lightning.proxies.jacobians as jacobians

    default = jacobians.FORWARD_MODE_FACTOR
    warm = VisionTransformer(img_size=32, patch_size=8, embed_dim=64, depth=2, num_heads=2, num_classes=10)
    score_network(warm, torch.randn(16, 3, 32, 32), None, proxies=["vkdnw"])  # first-call costs out of the table
    print("| classes | hook path (s) | forward mode (s) | engine's choice (s), methods | vmap reference (s) |")
    print("|---|---|---|---|---|")
    for k in (10, 100, 1000):
        torch.manual_seed(0)
        model = VisionTransformer(img_size=32, patch_size=8, embed_dim=64, depth=2, num_heads=2, num_classes=k)
        x = torch.randn(16, 3, 32, 32, generator=torch.Generator().manual_seed(0))
        seconds, values, methods = {}, {}, {}
        for label, factor in (("hooks", math.inf), ("forward", 0), ("engine", default)):
            jacobians.FORWARD_MODE_FACTOR = factor
            start = time.perf_counter()
            report = score_network(model, x, None, proxies=["vkdnw"])
            seconds[label], values[label] = time.perf_counter() - start, report.values["vkdnw"]
            methods[label] = report.details["vkdnw"]["methods"]
        jacobians.FORWARD_MODE_FACTOR = default
        start = time.perf_counter()
        values["reference"] = reference_vkdnw(model, x)
        seconds["reference"] = time.perf_counter() - start
        spread = max(values.values()) - min(values.values())
        print(
            f"| {k} | {seconds['hooks']:.2f} | {seconds['forward']:.2f} | {seconds['engine']:.2f}, "
            f"{methods['engine']} | {seconds['reference']:.2f} | (values within {spread:.1e})",
            flush=True,
        )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("what", choices=["values", "cost", "paths", "classes"])
    parser.add_argument("--nb201", type=int, default=60, help="NB201 cells to compare (values)")
    parser.add_argument("--others", type=int, default=3, help="nets of each other space to compare (values)")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per measurement (cost)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--only", default=None, help="cost: time only the models whose name contains this text")
    parser.add_argument("--out", type=Path, default=None, help="JSON of every value (values)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    {"values": values, "cost": cost, "paths": paths, "classes": classes}[args.what](args)


if __name__ == "__main__":
    main()
