"""VKDNW without vmap, checked against the vmap implementation it replaced: values and cost, side by side.

The reference below is the engine's VKDNW before issue 22 (``vmap(jacrev)`` over samples of one scalar per sampled
tensor, in chunks of 8), kept here only to compare: the same Kaiming state, Gaussian batch and Fisher, so the two
must agree up to floating-point summation order.

    # values: NB201 cells of lswag-bench's sample (C=16, N=5, 10 classes), plus NB101 / NB301 / AutoFormer-Ti nets
    python benchmarks/vkdnw_check.py values --nb201 60 --others 3 --out runs/vkdnw_check/values.json
    # cost: VKDNW alone, new and reference, as ratios to one training step on the engine benchmark's two models
    python benchmarks/vkdnw_check.py cost --repeats 3

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


def cost(args: argparse.Namespace) -> None:
    x, y, source = probe_batch(64, seed=0)
    print(
        f"batch 64 of {source}; {args.threads} CPU thread(s); median of {args.repeats} after a warm-up; "
        f"torch {torch.__version__}"
    )
    print("| model | train step (s) | VKDNW, reference vmap | VKDNW, new | new / reference |")
    print("|---|---|---|---|---|")
    for name, model in benchmark_models().items():
        step = timed(train_step(model, x, y), args.repeats)
        ref = timed(lambda model=model: reference_vkdnw(model, x), args.repeats)
        new = timed(lambda model=model: score_network(model, x, y, proxies=["vkdnw"]), args.repeats)
        print(f"| {name} | {step:.3f} | {ref / step:.2f}x | {new / step:.2f}x | {new / ref:.2f} |", flush=True)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("what", choices=["values", "cost"])
    parser.add_argument("--nb201", type=int, default=60, help="NB201 cells to compare (values)")
    parser.add_argument("--others", type=int, default=3, help="nets of each other space to compare (values)")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per measurement (cost)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, default=None, help="JSON of every value (values)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    values(args) if args.what == "values" else cost(args)


if __name__ == "__main__":
    main()
