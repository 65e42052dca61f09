"""What each proxy, and each shipped ranking, costs to score: seconds per network as a ratio to one training step of
the same network on the same batch (forward + cross-entropy + backward + SGD step, train mode).

Each proxy is timed alone in its own ``score_network`` call (the cost a ranking pays for it when nothing else is
scored); a set of proxies is timed in one call (the engine shares their passes), so a set costs at most the sum of
its members. Sub-values (``lswag.psi``) cost what their proxy costs. Medians of ``repeats`` runs after a warm-up,
side by side in one process, so the ratios compare on one machine under one load.

    python -m lswag_lightning.analysis.costs --out results/proxy_costs.csv --repeats 3
"""

from __future__ import annotations

import argparse
import logging
import statistics
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import pandas as pd

log = logging.getLogger(__name__)


def registry_name(column: str) -> str:
    """The registered proxy a table column comes from (``lswag.psi`` -> ``lswag``)."""
    return column.split(".", 1)[0]


def timed(fn: Callable[[], object], repeats: int) -> float:
    """Median wall seconds of ``fn`` over ``repeats`` runs after one warm-up."""
    fn()
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def train_step(model, x, y) -> Callable[[], None]:
    """One plain training step (lr 0: the weights stay as initialised)."""
    import torch

    optimiser = torch.optim.SGD(model.parameters(), lr=0.0)

    def step() -> None:
        model.train()
        optimiser.zero_grad()
        torch.nn.functional.cross_entropy(model(x), y).backward()
        optimiser.step()

    return step


def measure(
    models: Mapping[str, tuple],
    proxies: Sequence[str],
    sets: Mapping[str, Sequence[str]] = (),
    repeats: int = 3,
) -> pd.DataFrame:
    """One row per (model, proxy or set): ``seconds`` and ``ratio`` to the model's training step. ``models`` maps a
    name to ``(model, images, labels)``; ``sets`` maps a name to proxy columns scored in one call."""
    from lswag_lightning.proxies import score_network

    rows = []
    for model_name, (model, x, y) in models.items():
        step = timed(train_step(model, x, y), repeats)
        rows.append((model_name, "train_step", "train_step", step, 1.0))
        for name in proxies:
            sec = timed(lambda m=model, n=name, x=x, y=y: score_network(m, x, y, proxies=(n,)), repeats)
            rows.append((model_name, "proxy", name, sec, sec / step))
            log.info("%s %s %.3fx", model_name, name, sec / step)
        for set_name, members in dict(sets).items():
            names = tuple(dict.fromkeys(registry_name(m) for m in members))
            sec = timed(lambda m=model, n=names, x=x, y=y: score_network(m, x, y, proxies=n), repeats)
            rows.append((model_name, "set", set_name, sec, sec / step))
    return pd.DataFrame(rows, columns=["model", "kind", "name", "seconds", "ratio"])


def cost_table(measured: pd.DataFrame) -> dict[str, float]:
    """Each proxy's cost ratio: the largest over the models measured (a conservative cap)."""
    proxies = measured[measured.kind == "proxy"]
    return {str(k): float(v) for k, v in proxies.groupby("name")["ratio"].max().items()}


def column_costs(columns: Sequence[str], costs: Mapping[str, float]) -> dict[str, float]:
    """Cost ratio of each table column (a sub-value costs what its proxy costs); unknown names are left out."""
    return {c: costs[registry_name(c)] for c in columns if registry_name(c) in costs}


def proxy_needs(name: str) -> frozenset[str]:
    """What the engine computes for the proxy a column comes from (its registered ``needs``); a name the registry
    does not know needs something of its own."""
    from lswag_lightning.proxies.registry import get_proxy

    try:
        return frozenset(get_proxy(registry_name(name)).needs) or frozenset({f"own:{registry_name(name)}"})
    except (KeyError, ValueError):
        return frozenset({f"own:{registry_name(name)}"})


def set_cost(columns: Sequence[str], costs: Mapping[str, float], needs=proxy_needs) -> float:
    """An upper bound on scoring ``columns`` in one call, as a ratio to a training step: the engine computes each
    need once, so members whose needs are contained in another member's needs add nothing, and members with the
    same needs are paid once (the dearest of them). ``costs``: each column's cost alone (:func:`column_costs`)."""
    names = list(dict.fromkeys(columns))
    groups: dict[frozenset[str], float] = {}
    for name in names:
        key = needs(name)
        groups[key] = max(groups.get(key, 0.0), costs[name])
    return sum(c for key, c in groups.items() if not any(key < other for other in groups))


def reference_models(data_dir=None) -> dict[str, tuple]:
    """The networks timed by default, each with the bench protocol's 64 CIFAR-10 images at its resolution: NB201's
    CIFAR-10 optimum (C=16, N=5), the DARTS-V2 genotype built as NB301's networks, one AutoFormer-Ti subnet (seed 0,
    112 px, patch 16) and a timm ViT (32 px, patch 4, dim 192, depth 6)."""
    import numpy as np
    import torch
    from timm.models.vision_transformer import VisionTransformer

    from lswag_lightning.candidates import build_candidate, space_build_options
    from lswag_lightning.probe import probe_batch
    from lswag_lightning.spaces import get_space
    from lswag_lightning.spaces.darts import DARTS_V2
    from lswag_lightning.spaces.nb301 import NB301_BUILD_OPTIONS

    x32, y32 = probe_batch("bench", data_dir=data_dir)
    x112, y112 = probe_batch("bench", img_size=112, data_dir=data_dir)
    nb201, darts, autoformer = get_space("nb201"), get_space("darts"), get_space("autoformer_ti")
    cell = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|"
    sub = autoformer.encode(autoformer.sample(np.random.default_rng(0)))
    af_options = {**space_build_options("autoformer_ti"), "patch_size": 16, "img_size": 112, "num_classes": 10}
    darts_options = {**space_build_options("darts"), **NB301_BUILD_OPTIONS, "num_classes": 10}
    torch.manual_seed(0)
    vit = VisionTransformer(img_size=32, patch_size=4, embed_dim=192, depth=6, num_heads=3, num_classes=10)
    return {
        "nb201_cell_9930": (build_candidate(nb201, cell, space_build_options("nb201")), x32, y32),
        "nb301_darts_v2": (build_candidate(darts, darts.encode(DARTS_V2), darts_options), x32, y32),
        "autoformer_ti_seed0": (build_candidate(autoformer, sub, af_options), x112, y112),
        "vit_32px": (vit, x32, y32),
    }


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m lswag_lightning.analysis.costs --out FILE.csv``: time every proxy and the named sets."""
    from lswag_lightning.proxies import available_proxies

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path, required=True, help="CSV of seconds and ratios")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--proxies", nargs="+", default=None, help="default: every registered proxy but swap_reg")
    p.add_argument("--set", action="append", default=[], metavar="NAME=P1,P2", help="also time this set in one call")
    p.add_argument("--models", nargs="+", default=None, help="subset of the reference models")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    import torch

    torch.set_num_threads(args.threads)
    proxies = args.proxies or [n for n in available_proxies() if n != "swap_reg"]
    sets = {}
    for item in args.set:
        name, sep, members = item.partition("=")
        if not sep or not members:
            p.error(f"--set expects NAME=P1,P2, got {item!r}")
        sets[name] = members.split(",")
    models = reference_models()
    if args.models:
        models = {k: v for k, v in models.items() if k in args.models}
    table = measure(models, proxies, sets, args.repeats)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(args.out, index=False)
    print(table.to_string(index=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
