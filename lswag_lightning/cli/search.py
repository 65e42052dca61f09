"""``lswag-search``: zero-shot architecture search with a zero-cost proxy, LIBRA or a fused set as fitness.

    lswag-search SPACE --budget N --seed S --fitness lswag|libra|fused|<proxy> [--libra-proxies a,b,c]
                 [--fused-proxies a,b,c,...] [--max-params M] --out DIR
    lswag-search --config nb201 --seed 0 --out runs/nb201      # the fused fitness chosen on validation data
    lswag-search nb201 --budget 1000 --seed 0 --fitness libra --libra-proxies lswag,naswot,synflow --out runs/s0
    lswag-search --config autoformer_s --fitness libra --libra-result runs/vit/libra/libra.json --out runs/afs
    lswag-search autoformer_mini --data digits --budget 50 --fitness lswag --train-top 2 --out runs/mini

Writes ``DIR/ranked.csv`` (best first: ``arch``, ``params``, ``fitness`` and every proxy computed),
``DIR/report.md``, ``DIR/fitness.png``, ``DIR/summary.json`` and ``DIR/checkpoint.json``. Running the same command
again continues from the checkpoint (``--restart`` starts afresh). ``--config NAME`` loads the defaults of
``conf/search/NAME.yaml``; options given on the command line win. ``--train-top K`` trains the K best with
``lswag-train`` (one job each, results in ``DIR/train/rank<k>/result.json`` for ``lswag-collect``).

Exit codes: 0 done, 2 bad arguments or settings (including a parameter budget no architecture meets), 1 a
hand-off training job failed.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import shlex
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from lswag_lightning.cli.args import int_at_least

log = logging.getLogger("lswag_lightning.search")


def _number(text: str) -> float:
    """A positive count such as 23e6, 23000000 or 23M / 1.5G (:func:`~lswag_lightning.search.config.parse_count`)."""
    from lswag_lightning.search.config import parse_count

    try:
        return parse_count(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def _key_value(text: str) -> tuple[str, Any]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    return key.strip(), yaml.safe_load(value)


def _search_arguments(g: argparse._ArgumentGroup) -> None:
    g.add_argument("--budget", type=int_at_least(1), help="architectures scored (default 100)")
    g.add_argument("--seed", type=int_at_least(0), help="search seed (default 0)")
    g.add_argument("--strategy", choices=("evolution", "random"), help="default evolution")
    g.add_argument("--population", type=int_at_least(2), help="evolution population P (default 50)")
    g.add_argument("--tournament", type=int_at_least(1), help="evolution tournament size S (default 10)")
    g.add_argument(
        "--rank-pool",
        choices=("history", "population"),
        help="pool of LIBRA's rank fusion during the search: all architectures scored so far (history, "
        "default) or the current population",
    )
    g.add_argument("--max-params", type=_number, help="parameter budget, e.g. 23e6 or 23M")
    g.add_argument("--max-flops", type=_number, help="FLOPs budget of one sample's forward pass, e.g. 5G")
    g.add_argument(
        "--max-failed-proposals",
        type=int_at_least(1),
        help="rejected proposals in a row before giving up (default 2000)",
    )


def _fitness_arguments(f: argparse._ArgumentGroup) -> None:
    f.add_argument("--fitness", help="libra, fused, or a proxy name: lswag (default), zico, naswot, synflow, ...")
    f.add_argument("--libra-proxies", help="LIBRA's proxies, comma-separated: a,b,c")
    f.add_argument(
        "--libra-result",
        type=Path,
        help="libra.json written by lswag-libra (fitness libra: its selection; fitness fused: its greedy "
        "set, from lswag-libra --greedy)",
    )
    f.add_argument("--fused-proxies", help="fitness fused: two or more proxies fused by rank, comma-separated")
    f.add_argument(
        "--fusion",
        choices=("rank_mean", "log_rank"),
        help="rank fusion (default rank_mean for libra, log_rank for fused)",
    )
    f.add_argument("--proxies", help="extra proxies to compute and report in ranked.csv, comma-separated")


def _scoring_arguments(s: argparse._ArgumentGroup) -> None:
    s.add_argument("--data", choices=("digits", "cifar10_npz"), help="probe images (default cifar10_npz)")
    s.add_argument("--data-dir", type=Path, help="folder holding images/ (default $LSWAG_DATA_DIR or ../shared/data)")
    s.add_argument("--batch-size", type=int_at_least(2), help="probe batch size (default 64)")
    s.add_argument("--data-seed", type=int_at_least(0), help="seed of the probe batch draw (default 0)")
    s.add_argument("--init-seed", type=int_at_least(0), help="seed of the networks' initial weights (default 0)")
    s.add_argument("--img-size", type=int_at_least(4), help="override build_options.img_size")
    s.add_argument("--num-classes", type=int_at_least(10), help="override build_options.num_classes")
    s.add_argument(
        "--build-option",
        type=_key_value,
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override one space.build option (repeatable), e.g. patch_size=16",
    )
    s.add_argument("--layer-interval", help="L-SWAG depth-decile interval lo,hi (e.g. 0,3)")
    s.add_argument(
        "--score-option",
        type=_key_value,
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="extra score_network option (repeatable), e.g. lambda_k=2",
    )
    s.add_argument("--device", help="torch device (default cuda if available, else cpu)")
    s.add_argument("--threads", type=int_at_least(1), help="torch.set_num_threads (default: torch's)")
    s.add_argument("--score-cache", type=Path, help="score cache (.jsonl file or folder) shared across runs")
    s.add_argument(
        "--score-table",
        type=Path,
        nargs="+",
        help="precomputed proxy tables (e.g. lswag-bench's table.csv: arch + one column per proxy); each "
        "proxy comes from the first table with its column; proxies no table holds, and archs a "
        "table lacks, are scored live unless --table-only",
    )
    s.add_argument("--table-only", action="store_true", help="with --score-table: never score live")


def _run_arguments(r: argparse._ArgumentGroup) -> None:
    r.add_argument("--checkpoint-every", type=int_at_least(1), help="evaluations between checkpoints (default 1)")
    r.add_argument("--restart", action="store_true", help="ignore an existing checkpoint in --out")
    r.add_argument("--no-progress", action="store_true", help="no progress bar")
    r.add_argument("-v", "--verbose", action="store_true", help="log INFO messages")


def _hand_off_to_training_arguments(t: argparse._ArgumentGroup) -> None:
    t.add_argument(
        "--train-top",
        type=int_at_least(0),
        default=0,
        help="train the K best with lswag-train (one job each; result.json in DIR/train/rank<k>)",
    )
    t.add_argument("--train-data", help="lswag-train data config for the hand-off (default digits)")
    t.add_argument(
        "--train-override",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="extra lswag-train override (repeatable), e.g. trainer.max_epochs=30",
    )
    t.add_argument("--train-dry-run", action="store_true", help="print the training commands, do not run them")
    t.add_argument("--train-timeout", type=_number, help="seconds per training job (default: none)")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="lswag-search",
        description="Zero-shot NAS: random search or regularised evolution of a search space, with a zero-cost "
        "proxy or LIBRA (three proxies fused by rank) as fitness, under a parameter/FLOPs budget.",
    )
    p.add_argument(
        "space",
        nargs="?",
        help="search space: nb201, darts, autoformer_ti, autoformer_s, autoformer_mini (optional with --config)",
    )
    p.add_argument(
        "--config",
        help="load defaults from conf/search/NAME.yaml (autoformer_s, autoformer_mini, nb201, darts) or a .yaml path",
    )
    p.add_argument("--out", type=Path, required=True, help="output folder (ranked.csv, report.md, checkpoint)")
    _search_arguments(p.add_argument_group("search"))
    _fitness_arguments(p.add_argument_group("fitness"))
    _scoring_arguments(p.add_argument_group("scoring"))
    _run_arguments(p.add_argument_group("run"))
    _hand_off_to_training_arguments(p.add_argument_group("hand-off to training"))
    return p


def resolve_options(args: argparse.Namespace, parser: argparse.ArgumentParser) -> dict[str, Any]:
    """The search's options (:func:`lswag_lightning.search.config.resolve_options`); bad values exit via ``parser``."""
    from lswag_lightning.search.config import resolve_options as resolve_search_options

    try:
        return resolve_search_options(vars(args))
    except ValueError as err:
        parser.error(str(err))


def _device(name: str | None):
    import torch

    if name is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError as err:
        raise ValueError(f"--device {name!r} is not a torch device ({err})") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"--device {name}: CUDA is not available on this machine; use --device cpu")
    return device


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``lswag-search``; returns the exit code (argparse exits with 2 on bad arguments)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s"
    )
    opts = resolve_options(args, parser)
    with contextlib.ExitStack() as output_lock:  # held from the checkpoint's loading to the last output
        return _search(args, opts, parser, argv, output_lock)


def _settings(opts: dict[str, Any]) -> Any:
    """The validated :class:`~lswag_lightning.search.SearchSettings` of the merged options."""
    from lswag_lightning.search import SearchSettings

    return SearchSettings(
        space=opts["space"],
        strategy=opts["strategy"],
        budget=int(opts["budget"]),
        seed=int(opts["seed"]),
        population=int(opts["population"]),
        tournament=int(opts["tournament"]),
        rank_pool=opts["rank_pool"],
        max_params=opts["max_params"],
        max_flops=opts["max_flops"],
        max_failed_proposals=int(opts["max_failed_proposals"]),
        build_options=opts["build_options"],
    ).validate()


def _scorer(args: argparse.Namespace, opts: dict[str, Any], space: Any, build: dict[str, Any], proxies: list[str]):
    """The search's scorer: live scoring on the probe batch (cached with ``--score-cache``), behind the stored
    tables of ``--score-table`` (each proxy from the first table holding it); tables only with ``--table-only``."""
    from lswag_lightning.probe import describe_probe, probe_batch
    from lswag_lightning.search import ProxyScorer, ScoreCache
    from lswag_lightning.search.stored_scores import tables_then_live

    if args.table_only and not args.score_table:
        raise ValueError("--table-only needs --score-table")
    device = _device(args.device)
    live = live_for = None
    if not args.table_only:
        probe_args = {
            "batch_size": int(opts["batch_size"]),
            "img_size": int(build.get("img_size", 32)),
            "in_chans": int(build.get("in_chans", 3)),
            "seed": int(opts["data_seed"]),
            "data_dir": args.data_dir,
        }
        probe = describe_probe(opts["data"], *probe_args.values())
        images, labels = probe_batch("search", data=opts["data"], **probe_args)
        cache = ScoreCache(args.score_cache) if args.score_cache is not None else None

        def live_for(names: list[str]) -> Any:
            """The live scorer of ``names`` (all proxies: the fallback for archs a table lacks)."""
            return ProxyScorer(
                space,
                names,
                images,
                labels,
                build_options=build,
                device=device,
                init_seed=int(opts["init_seed"]),
                score_options=opts["score_options"],
                cache=cache,
                probe=probe,
            )

        live = live_for(proxies)
    if args.score_table:
        return tables_then_live(space, args.score_table, proxies, fallback=live, live_for=live_for)
    return live


def _search(
    args: argparse.Namespace,
    opts: dict[str, Any],
    parser: argparse.ArgumentParser,
    argv: Sequence[str] | None,
    output_lock: contextlib.ExitStack,
) -> int:
    """The search of :func:`main`; ``--out`` is locked (``output_lock``) once the settings are valid, so a second
    process on the same folder is refused instead of overwriting the checkpoint."""
    import torch

    from lswag_lightning.bench import OutputBusyError, exclusive_run
    from lswag_lightning.search import InfeasibleBudgetError, Search, make_fitness, write_outputs
    from lswag_lightning.spaces import get_space

    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        space = get_space(opts["space"])
        fitness = make_fitness(
            opts["fitness"],
            libra_proxies=opts["libra_proxies"],
            libra_result=opts["libra_result"],
            fusion=opts["fusion"],
            fused_proxies=opts["fused_proxies"],
        )
        proxies = list(dict.fromkeys([*fitness.proxies, *opts["proxies"]]))
        settings = _settings(opts)
        scorer = _scorer(args, opts, space, settings.build_options, proxies)
        args.out.mkdir(parents=True, exist_ok=True)
        output_lock.enter_context(exclusive_run(args.out, program="lswag-search"))
        search = Search(
            space,
            scorer,
            fitness,
            settings,
            out_dir=args.out,
            checkpoint_every=int(opts["checkpoint_every"]),
            resume=not args.restart,
            progress=not args.no_progress,
        )
    except (ValueError, FileNotFoundError, OutputBusyError) as err:
        parser.error(str(err))
    if search.resumed_from:
        print(f"resuming {search.checkpoint_path}: {search.resumed_from} of {settings.budget} evaluations done")
    try:
        result = search.run()
    except InfeasibleBudgetError as err:
        parser.error(str(err))
    command = "lswag-search " + " ".join(shlex.quote(a) for a in (sys.argv[1:] if argv is None else argv))
    paths = write_outputs(search, result, args.out, command=command)
    best = result.best
    print(
        f"{len(search.history)} architectures scored; best fitness {best.get('fitness'):.6g}, "
        f"{int(best.get('params')):,} parameters:\n  {best.get('arch')}"
    )
    if result.stopped:
        print(f"note: {result.stopped}")
    print(f"ranked list: {paths['ranked']}\nreport: {paths['report']}")

    if args.train_top:
        return _hand_off(args, opts, result, parser)
    return 0


def _hand_off(args: argparse.Namespace, opts: dict[str, Any], result: Any, parser: argparse.ArgumentParser) -> int:
    from lswag_lightning.search.handoff import multirun_command, run_train_jobs, train_jobs

    archs = [str(a) for a in result.ranked["arch"].head(args.train_top)]
    try:
        jobs = train_jobs(opts["space"], archs, args.out, data=opts["train_data"], overrides=opts["train_overrides"])
    except ValueError as err:
        parser.error(str(err))
    multirun = multirun_command(
        opts["space"], archs, args.out, data=opts["train_data"], overrides=opts["train_overrides"]
    )
    print(f"hand-off: {len(jobs)} lswag-train job(s); as one Hydra multirun:\n  {multirun}")
    if args.train_dry_run:
        for job in jobs:
            print(job.shell())
        return 0
    run_train_jobs(jobs, log_dir=args.out, timeout=args.train_timeout)
    failed = [j for j in jobs if j.returncode != 0 or not j.result_json]
    for job in jobs:
        state = "ok" if job not in failed else f"FAILED (exit {job.returncode}; log {job.run_dir}/train.log)"
        print(f"  rank {job.rank}: {state} -> {job.run_dir}/result.json")
    if not failed:
        print(f"collect with: lswag-collect {Path(args.out) / 'train'}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
