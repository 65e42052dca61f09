"""``lswag-search``: zero-shot architecture search with a zero-cost proxy, LIBRA or a fused set as fitness.

    lswag-search SPACE --budget N --seed S --fitness lswag|libra|fused|learned|default|<proxy>
                 [--libra-proxies a,b,c] [--fused-proxies a,b,c,...] [--ranking FILE] [--max-params M] --out DIR
    lswag-search --config nb201 --seed 0 --out runs/nb201      # the fused fitness chosen on validation data
    lswag-search nb201 --budget 1000 --seed 0 --fitness libra --libra-proxies lswag,naswot,synflow --out runs/s0
    lswag-search --config autoformer_s --fitness libra --libra-result runs/vit/libra/libra.json --out runs/afs
    lswag-search nb201 --fitness learned --ranking runs/my_ranking/ranking.json --out runs/l0   # lswag-libra --method
    lswag-search autoformer_mini --probe-data digits --budget 50 --fitness lswag --train-top 2 --out runs/mini

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

from lswag_lightning.cli.options import build_parser as generate_parser
from lswag_lightning.cli.options import given_options
from lswag_lightning.search.options import SearchCommand

log = logging.getLogger("lswag_lightning.search")


def build_parser() -> argparse.ArgumentParser:
    """``lswag-search``'s parser, generated from :class:`~lswag_lightning.search.options.SearchCommand`."""
    return generate_parser(
        SearchCommand,
        prog="lswag-search",
        description="Zero-shot NAS: random search or regularised evolution of a search space, with a zero-cost "
        "proxy or LIBRA (three proxies fused by rank) as fitness, under a parameter/FLOPs budget.",
    )


def resolve_options(given: dict[str, Any], parser: argparse.ArgumentParser) -> SearchCommand:
    """The search's settings from the options ``given`` on the command line
    (:func:`lswag_lightning.search.config.resolve_options`); bad values exit via ``parser``."""
    from lswag_lightning.search.config import resolve_options as resolve_search_options

    try:
        return resolve_search_options(given)
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
    given = given_options(parser, argv)
    logging.basicConfig(
        level=logging.INFO if given.get("verbose") else logging.WARNING, format="%(levelname)s %(name)s: %(message)s"
    )
    args = resolve_options(given, parser)
    with contextlib.ExitStack() as output_lock:  # held from the checkpoint's loading to the last output
        return _search(args, parser, argv, output_lock)


def _settings(args: SearchCommand) -> Any:
    """The validated :class:`~lswag_lightning.search.SearchSettings` of the merged options."""
    from lswag_lightning.search import SearchSettings

    return SearchSettings(
        space=args.space,
        strategy=args.strategy,
        budget=args.budget,
        seed=args.seed,
        population=args.population,
        tournament=args.tournament,
        rank_pool=args.rank_pool,
        max_params=args.max_params,
        max_flops=args.max_flops,
        max_failed_proposals=args.max_failed_proposals,
        build_options=args.build_options,
    ).validate()


def _scorer(args: SearchCommand, space: Any, build: dict[str, Any], proxies: list[str]):
    """The search's scorer: live scoring on the probe batch (cached with ``--score-cache``), behind the stored
    tables of ``--score-table`` (each proxy from the first table holding it); tables only with ``--table-only``."""
    from lswag_lightning.probe import describe_probe, probe_batch
    from lswag_lightning.search import ProxyScorer, ScoreCache
    from lswag_lightning.search.stored_scores import tables_then_live

    device = _device(args.device)
    live = live_for = None
    if not args.table_only:
        probe_args = {
            "batch_size": args.batch_size,
            "img_size": int(build.get("img_size", 32)),
            "in_chans": int(build.get("in_chans", 3)),
            "seed": args.probe_seed,
            "data_dir": args.data_dir,
        }
        probe = describe_probe(args.probe_data, *probe_args.values())
        images, labels = probe_batch("search", data=args.probe_data, **probe_args)
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
                init_seed=args.init_seed,
                score_options=args.score_options,
                cache=cache,
                probe=probe,
            )

        live = live_for(proxies)
    if args.score_table:
        return tables_then_live(space, args.score_table, proxies, fallback=live, live_for=live_for)
    return live


def _search(
    args: SearchCommand,
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
        space = get_space(args.space)
        fitness = make_fitness(
            args.fitness,
            libra_proxies=args.libra_proxies,
            libra_result=args.libra_result,
            fusion=args.fusion,
            fused_proxies=args.fused_proxies,
            ranking=args.ranking,
            tables_only=args.table_only,
        )
        proxies = list(dict.fromkeys([*fitness.scored, *args.proxies]))
        settings = _settings(args)
        scorer = _scorer(args, space, settings.build_options, proxies)
        args.out.mkdir(parents=True, exist_ok=True)
        output_lock.enter_context(exclusive_run(args.out, program="lswag-search"))
        search = Search(
            space,
            scorer,
            fitness,
            settings,
            out_dir=args.out,
            checkpoint_every=args.checkpoint_every,
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
        return _hand_off(args, result, parser)
    return 0


def _hand_off(args: SearchCommand, result: Any, parser: argparse.ArgumentParser) -> int:
    from lswag_lightning.search.handoff import multirun_command, run_train_jobs, train_jobs

    archs = [str(a) for a in result.ranked["arch"].head(args.train_top)]
    try:
        jobs = train_jobs(args.space, archs, args.out, data=args.train_data, overrides=args.train_overrides)
    except ValueError as err:
        parser.error(str(err))
    multirun = multirun_command(args.space, archs, args.out, data=args.train_data, overrides=args.train_overrides)
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
