"""``lswag-layers``: propose L-SWAG's layer interval [l̂, L̂] for a search space from gradient statistics.

Example::

    lswag-layers nb201 --sample 1000 --seed 0 --out runs/layers/nb201

Samples ``--sample`` random networks of SPACE (default 1000), computes for each the per-layer gradient statistic of
METHOD.md §2/§5 (mean log σ of each weight layer's gradient over K = 2 gradient samples of one probe batch),
aggregates it per depth bin (mean ± std over networks), and proposes [l̂, L̂] by the rule documented in
:mod:`lswag_lightning.intervals` (statistics only). With ground truth (``--gt auto`` for nb201 and
autoformer_ti, or a FILE with ``--arch-column``/``--accuracy-column``) it also plots the per-bin Spearman ρ of Λ
(the paper's Fig. 2a) and checks the rule against labels on held-out splits. Writes ``layers.json``,
``networks.csv``, ``layer_profile.png`` and ``bin_correlation.png`` to ``--out``.
Ctrl-C (SIGINT) stops sampling and analyses the networks done so far.
Exit codes: 0 done, 1 interrupted before any network, 2 bad arguments or data.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from lswag_lightning.cli.options import build_parser as generate_parser
from lswag_lightning.cli.options import parse_settings
from lswag_lightning.settings import CommandSettings, option
from lswag_lightning.settings import vocabulary as v
from lswag_lightning.settings.scoring import check_score_options
from lswag_lightning.settings.values import FilePath, Flag, Integer, Number, Text, TextList

AUTO_GT = {"nb201", "autoformer_ti"}
NETWORKS = "networks and probe"
RULE = "the interval rule"
RUN = "run"


@dataclass(kw_only=True)
class LayersCommand(CommandSettings):
    """The settings of one ``lswag-layers`` command (see the module docstring)."""

    space: str = option(
        Text(), positional=True, help="search space: nb201, darts, autoformer_ti, autoformer_s, autoformer_mini"
    )
    sample: int = v.SAMPLE.field(1000, help="default 1000", deprecated_flags=("--num",))
    seed: int = option(Integer(0), 0, help="seed of the network sample and of the label check's splits (default 0)")
    out: Path | None = v.OUT.field(None, help="default runs/layers/<space>")
    gt: str = option(
        Text(),
        "auto",
        metavar="auto|none|FILE",
        help="ground truth for the per-bin correlation check: 'auto' (nb201: 200-epoch test accuracy; "
        "autoformer_ti: Auto-Prox's 100 archs, so at most 100 networks), 'none', or a table FILE",
    )
    arch_column: str | None = option(Text(), None, metavar="COL", help="with --gt FILE: the architecture column")
    accuracy_column: list[str] = option(TextList(), [], metavar="COL", help="with --gt FILE: accuracy column(s)")
    build_options: dict[str, Any] = v.BUILD_OPTIONS.field({}, group=NETWORKS, help="default: the space's")
    batch_size: int = v.BATCH_SIZE.field(64, group=NETWORKS, help="default 64")
    probe_seed: int = v.PROBE_SEED.field(0, group=NETWORKS, help="default 0")
    init_seed: int = v.INIT_SEED.field(0, group=NETWORKS, help="default 0")
    score_options: dict[str, Any] = v.SCORE_OPTIONS.field(
        {}, group=NETWORKS, help="of the gradient pass (lambda_k=2, lambda_std=abs, ...)"
    )
    k: float = option(Number(), 3.0, group=RULE, help="spike threshold in robust sigmas of the residuals (3)")
    visible: float = option(
        Number(), 0.5, group=RULE, help="spike threshold as a fraction of the median between-network std (0.5)"
    )
    boundary: bool = option(
        Flag(),
        False,
        group=RULE,
        help="let the boundary bins 0 (input layers) and 10 (classifier) be spike candidates too",
    )
    reanalyse: Path | None = option(
        FilePath(),
        None,
        group=RULE,
        metavar="DIR",
        help="apply the rule again to DIR/networks.csv of an earlier run (no scoring); writes to --out, default DIR",
    )
    splits: int = v.SPLITS.field(
        20, group=RULE, help="of the label check, default 20", deprecated_flags=("--label-splits",)
    )
    data_dir: Path | None = v.DATA_DIR.field(None, group=RUN, help="the ground truth and the probe images")
    device: str | None = v.DEVICE.field(None, group=RUN)
    threads: int | None = v.THREADS.field(None, group=RUN)
    no_progress: bool = v.NO_PROGRESS.field(False, group=RUN)

    def check(self) -> None:
        self.score_options = check_score_options(self.score_options)


def build_parser() -> argparse.ArgumentParser:
    """``lswag-layers``' parser, generated from :class:`LayersCommand`."""
    return generate_parser(
        LayersCommand,
        prog="lswag-layers",
        description="Per-layer gradient statistics of random networks of a search space, aggregated per depth bin, "
        "and the proposed L-SWAG layer interval [l̂, L̂] (rule on the statistics alone).",
    )


def _population(args: LayersCommand, parser: argparse.ArgumentParser, space) -> tuple[list[str], object, str]:
    """(encoded archs, ground truth table or None, description)."""
    from lswag_lightning.bench import (
        load_autoformer_ground_truth,
        load_custom_ground_truth,
        load_nb201_ground_truth,
        sample_ground_truth,
    )

    gt_mode = args.gt
    if gt_mode == "auto" and args.space not in AUTO_GT:
        gt_mode = "none"
    if gt_mode not in ("auto", "none"):
        if not args.arch_column or not args.accuracy_column:
            parser.error("--gt FILE needs --arch-column and --accuracy-column")
        gt = load_custom_ground_truth(args.gt, args.space, args.arch_column, args.accuracy_column)
    elif gt_mode == "auto":
        gt = (
            load_nb201_ground_truth(args.data_dir)
            if args.space == "nb201"
            else load_autoformer_ground_truth(args.data_dir)
        )
    else:
        if args.arch_column or args.accuracy_column:
            parser.error("--arch-column/--accuracy-column only apply with --gt FILE")
        rng = np.random.default_rng(args.seed)
        archs = [space.encode(space.sample(rng)) for _ in range(args.sample)]
        return archs, None, f"{args.sample} networks drawn by {args.space}.sample(numpy default_rng({args.seed}))"
    num = args.sample
    if num > len(gt):
        print(
            f"note: the ground truth holds {len(gt)} architectures; using all of them instead of --sample {num}",
            file=sys.stderr,
        )
        num = len(gt)
    sampled = sample_ground_truth(gt, num if num < len(gt) else None, args.seed)
    desc = f"{num} architectures of {gt.source}" + (
        f", sampled with numpy default_rng({args.seed})" if num < len(gt) else " (all)"
    )
    return sampled.table["arch"].tolist(), sampled, desc


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``lswag-layers``."""
    parser = build_parser()
    args = parse_settings(LayersCommand, parser, argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    import torch

    from lswag_lightning.bench import default_device, resolve_build_options, resolve_score_options
    from lswag_lightning.intervals import analyse, profile_networks
    from lswag_lightning.probe import probe_batch
    from lswag_lightning.spaces import get_space

    if args.threads is not None:
        torch.set_num_threads(args.threads)
    if args.reanalyse is not None:
        return _reanalyse(args, argv)
    try:
        space = get_space(args.space)
        archs, gt, population = _population(args, parser, space)
        build = resolve_build_options(args.space, args.build_options)
        score_options, _ = resolve_score_options(args.score_options)
        x, y = probe_batch(
            "bench",
            data_dir=args.data_dir,
            batch_size=args.batch_size,
            seed=args.probe_seed,
            img_size=int(build["img_size"]),
        )
        device = args.device or default_device()
        networks = profile_networks(
            space,
            archs,
            x,
            y,
            build_options=build,
            score_options=score_options,
            device=device,
            init_seed_base=args.init_seed,
            progress=not args.no_progress,
        )
    except (ValueError, FileNotFoundError) as exc:
        print(f"lswag-layers: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("lswag-layers: interrupted before the first network was profiled", file=sys.stderr)
        return 1
    if len(networks) < len(archs):
        population += f"; interrupted after the first {len(networks)} networks"
        print(f"note: interrupted; analysing the first {len(networks)} of {len(archs)} networks", file=sys.stderr)
    accuracy = []
    if gt is not None:
        for col in gt.accuracy_columns:
            networks[col] = gt.table[col].to_numpy(dtype=float)[: len(networks)]
            accuracy.append(col)
    settings = {
        "population": population,
        "build_options": build,
        "score_options": score_options,
        "probe": f"{args.batch_size} CIFAR-10 training images (images/cifar10_train_part0.npz, seed "
        f"{args.probe_seed}), {build['img_size']} px",
        "device": str(device),
        "init_seed_base": args.init_seed,
        "command": "lswag-layers " + " ".join(sys.argv[1:] if argv is None else argv),
    }
    result = analyse(
        networks,
        args.space,
        settings,
        accuracy_columns=accuracy,
        k=args.k,
        visible=args.visible,
        boundary=args.boundary,
        splits=args.splits,
        seed=args.seed,
    )
    out = args.out or Path("runs") / "layers" / args.space
    _print_and_write(result, networks, out, str(device))
    return 0


def _reanalyse(args: LayersCommand, argv: Sequence[str] | None) -> int:
    from lswag_lightning.intervals import analyse, load_networks

    try:
        networks, previous, accuracy = load_networks(args.reanalyse)
        if previous.get("space") != args.space:
            raise ValueError(f"{args.reanalyse} holds a run of {previous.get('space')!r}, not {args.space!r}")
    except ValueError as exc:
        print(f"lswag-layers: error: {exc}", file=sys.stderr)
        return 2
    settings = dict(previous.get("settings", {}))
    settings["reanalysed"] = "lswag-layers " + " ".join(sys.argv[1:] if argv is None else argv)
    result = analyse(
        networks,
        args.space,
        settings,
        accuracy_columns=accuracy,
        k=args.k,
        visible=args.visible,
        boundary=args.boundary,
        splits=args.splits,
        seed=args.seed,
    )
    _print_and_write(result, networks, args.out or args.reanalyse, settings.get("device", "?"))
    return 0


def _print_and_write(result, networks, out: Path, device: str) -> None:
    from lswag_lightning.intervals import format_result, write_outputs

    path = write_outputs(result, networks, out)
    print(format_result(result, device))
    print(f"written: {path} and plots in {out}")


if __name__ == "__main__":
    sys.exit(main())
