"""``lswag-bench``: score a public benchmark's architectures with zero-cost proxies and report against accuracy.

Fixed command lines (scripts and external checks rely on them)::

    lswag-bench nb201|nb101|nb301|autoformer_ti [--sample N --seed S] [--proxies ...] --out DIR
    lswag-bench custom --space NAME --gt FILE --arch-column COL --accuracy-column COL [--accuracy-column COL2 ...]
                [--sample N --seed S] [--num-classes K] [--img-size P] --out DIR
    lswag-bench <same arguments> --shard I/N      # shard I of N (0-based) into DIR/shards/, concurrently with others
    lswag-bench <same arguments> --report-only [--allow-partial]   # merge the shards, then the report
    lswag-bench <same arguments> --workers N      # the N shards as local processes, then the merge
    lswag-bench <same arguments> --export FILE    # also write the table's proxy values as a stored score table
    lswag-bench BENCHMARK [--sample N --seed S] --score-table FILE [FILE ...] [--covered-only] --out DIR
                                                  # score nothing: stored values + accuracies -> DIR/table.csv
    lswag-bench nb201 --vs-published [--first N] [--noise-seed S] --out DIR   # NASLib's protocol vs its values
    lswag-bench nb101|nb301 --score-table FILE --vs-published --out DIR       # a table vs NB-Suite-Zero's values

Writes ``DIR/table.csv`` (one row per architecture, appended and flushed as it goes; a rerun with the same arguments
resumes), ``DIR/bench.json`` (settings, column meanings) and, unless ``--no-report``, ``DIR/report.md`` with
per-accuracy sub-reports and plots. With ``--shard I/N`` the rows go to ``DIR/shards/table.I-of-N.csv`` (see
:mod:`lswag_lightning.bench.shards`) and ``--report-only`` merges the shards into ``DIR/table.csv`` first; sharding is
this one mechanism, whether the shards are started by hand, by ``--workers`` or by a Hydra multirun
(:mod:`lswag_lightning.cli.bench_multirun`). ``--score-table`` writes ``DIR/table.csv`` as
:func:`lswag_lightning.bench.join_score_tables` joins it (no ``bench.json``, no report). The data folder comes from
``--data-dir``, else ``$LSWAG_DATA_DIR``, else ``../shared/data`` beside the checkout. Imports neither Lightning, Hydra
nor W&B. Exit codes: 0 done, 1 interrupted or shards missing (rerun to resume / run them), 2 bad arguments or data.
"""

from __future__ import annotations

import json
import logging
import shlex
import subprocess
import sys
from collections.abc import Sequence
from typing import Any

from lswag_lightning.bench import (
    BenchSettings,
    OutputBusyError,
    default_device,
    export_scores,
    join_score_tables,
    load_run,
    merge_shards,
    plan_benchmark,
    read_csv_exact,
    read_table,
    refuse_if_sharded,
    run_benchmark,
    run_shard,
    shard_files,
    write_bench_report,
)
from lswag_lightning.cli.bench_options import BenchCommand, build_parser
from lswag_lightning.cli.options import parse_settings

log = logging.getLogger("lswag_lightning.cli.bench")


def _report(
    args: BenchCommand,
    argv: Sequence[str] | None,
    settings: BenchSettings,
    table: Any,
    meta: dict[str, Any],
    total: int,
    accuracy_columns: Sequence[str],
    seed: int,
) -> None:
    """Write the report, print a one-line summary per accuracy column."""
    command = "lswag-bench " + " ".join(shlex.quote(a) for a in (sys.argv[1:] if argv is None else argv))
    path = write_bench_report(
        table,
        args.out,
        settings,
        accuracy_columns=accuracy_columns,
        meta=meta,
        n_planned_total=total,
        command=command,
        n_boot=args.n_boot,
        splits=args.splits,
        seed=seed,
    )
    summary = json.loads((args.out / "summary.json").read_text())
    for acc, info in summary.items():
        top = sorted(((v, k) for k, v in info["spearman"].items() if v is not None), reverse=True)[:5]
        libra = info["libra"]["libra"]["mean"] if info.get("libra") else None
        print(
            f"  {acc} (n={info['n']}): "
            + ", ".join(f"{k} {v:.3f}" for v, k in top)
            + (f"; LIBRA held-out {libra:.3f} ({', '.join(info['libra_choice'])})" if libra is not None else "")
        )
    print(f"report: {path}")


def _report_only(
    args: BenchCommand, argv: Sequence[str] | None, settings: BenchSettings, gt: Any, total: int, seed: int
) -> int:
    """``--report-only``: merge the shards of ``--out`` when it holds any (0 merged, 1 shards missing and no
    ``--allow-partial``: nothing written), then the report of ``table.csv`` (unless ``--no-report``)."""
    if shard_files(args.out):
        merged = merge_shards(args.out, settings, gt, allow_partial=args.allow_partial)
        if merged.missing:
            print(f"shards missing or unfinished: {merged.missing_text()}", file=sys.stderr)
        if not merged.written:
            print(
                f"not merged: {merged.rows} of {merged.planned} rows are done. Run the missing shards (the same "
                "command with --shard I/N; a killed one resumes), or add --allow-partial to merge and report "
                "the rows present",
                file=sys.stderr,
            )
            return 1
        print(
            f"merged {len(merged.complete)} of {merged.count} shards complete: {merged.rows} of {merged.planned} "
            f"rows -> {args.out / 'table.csv'}"
        )
    if args.no_report:
        return 0
    table, meta = load_run(args.out, settings)
    if len(table) < len(gt):
        print(
            f"note: {args.out / 'table.csv'} holds {len(table)} of the {len(gt)} planned architectures; "
            "the report covers those",
            file=sys.stderr,
        )
    _report(args, argv, settings, table, meta, total, gt.accuracy_columns, seed)
    return 0


def _plan(args: BenchCommand) -> Any:
    """The run's :class:`~lswag_lightning.bench.BenchPlan` from the arguments."""
    return plan_benchmark(
        args.benchmark,
        space=args.space,
        data_dir=args.data_dir,
        nb201_set=args.nb201_set,
        gt_file=args.gt,
        arch_column=args.arch_column,
        accuracy_columns=args.accuracy_column,
        sample=args.sample,
        seed=args.seed,
        proxies=args.proxies,
        score_overrides=args.score_options,
        build_overrides=args.build_options,
        batch_size=args.batch_size or 64,
        probe_seed=args.probe_seed,
        init_seed=args.init_seed,
        probe_protocol=args.probe_protocol,
    )


def _join(args: BenchCommand, plan: Any) -> int:
    """``--score-table``: the benchmark's accuracies joined with the stored values into ``OUT/table.csv``."""
    from lswag_lightning.analysis.table import save_table

    if (args.out / "bench.json").exists():
        raise ValueError(f"{args.out} holds a scoring run (bench.json); write the joined table to another --out")
    table = join_score_tables(plan.gt, args.score_table, covered_only=args.covered_only)
    path = save_table(table, args.out / "table.csv")
    print(f"{len(table)} architectures, {table.shape[1]} columns -> {path}")
    return 0


def _export(args: BenchCommand) -> int:
    """``--export FILE``: ``OUT/table.csv``'s proxy values as a stored score table."""
    from lswag_lightning.analysis.table import save_table

    table = read_table(args.out / "table.csv")
    bad = int((table["status"] != "ok").sum())
    if bad:
        print(f"note: {bad} rows with a non-ok status (their values are kept; see the table's status)")
    scores = export_scores(table)
    save_table(scores, args.export)
    print(f"{len(scores)} architectures x {scores.shape[1] - 1} columns -> {args.export}")
    return 0


def _published_nb201(args: BenchCommand) -> int:
    """``nb201 --vs-published``: the published cells scored under NASLib's protocol, compared with the published
    values; exit 1 when a target proxy misses rank agreement 0.9."""
    from lswag_lightning.analysis.published import COUNTERPARTS
    from lswag_lightning.bench.published_check import NASLIB_BATCH_SIZE, markdown_table, run_check, validate_proxies

    batch_size = args.batch_size or NASLIB_BATCH_SIZE
    proxies = validate_proxies(args.proxies or list(COUNTERPARTS))

    def progress(done: int, total: int, seconds: float) -> None:
        if not args.no_progress and (done % 50 == 0 or done == total):
            print(f"[{done}/{total}] {seconds:.0f} s", file=sys.stderr, flush=True)

    values, summary = run_check(
        args.data_dir,
        limit=args.first,
        batch_size=batch_size,
        proxies=proxies,
        device=args.device,
        seed=args.probe_seed,
        augment=args.augment,
        noise_seed=args.noise_seed,
        progress=progress,
    )
    protocol = (
        f"{len(values)} NB201 CIFAR-10 architectures, batch {batch_size} of CIFAR-10 training images"
        f" ({'random crop + flip, ' if args.augment else ''}CIFAR mean/std), seed {args.probe_seed}, "
        f"{values['seconds'].sum():.0f} s of scoring"
        + (f" (noise seed {args.noise_seed})" if args.noise_seed is not None else "")
    )
    table = markdown_table(summary)
    print(f"{protocol}\n{table}")
    args.out.mkdir(parents=True, exist_ok=True)
    values.to_csv(args.out / "values.csv", index=False)
    summary.to_csv(args.out / "summary.csv", index=False)
    (args.out / "summary.md").write_text(f"{protocol}\n\n{table}\n")
    print(f"wrote {args.out / 'values.csv'}, {args.out / 'summary.csv'}, {args.out / 'summary.md'}")
    missed = summary[summary["meets_target"] == False]  # noqa: E712 (None = no target)
    return 1 if len(missed) else 0


def _published_agreement(args: BenchCommand) -> int:
    """``nb101|nb301 --vs-published``: ``OUT/table.csv`` against the published values -> ``OUT/published.md``."""
    from lswag_lightning.bench.published_agreement import agreement_report

    path = args.out / "table.csv"
    if not path.is_file():
        raise FileNotFoundError(f"no {path}: score the benchmark first, or give --score-table in the same command")
    report = agreement_report(args.benchmark, read_csv_exact(path), args.data_dir)
    (args.out / "published.md").write_text(report + "\n")
    print(report)
    return 0


def _without(argv: list[str], flag: str) -> list[str]:
    """``argv`` without ``flag`` and its value (``--flag V`` or ``--flag=V``)."""
    out, skip = [], False
    for token in argv:
        if skip:
            skip = False
        elif token == flag:
            skip = True
        elif not token.startswith(flag + "="):
            out.append(token)
    return out


def _run_workers(workers: int, argv: list[str]) -> int:
    """``--workers N``: the same command as N shard processes at once (``--shard i/N``), then the merge."""
    command = _without(argv, "--workers")
    shard_command = [sys.executable, "-m", "lswag_lightning.cli.bench", *_without(command, "--export")]
    processes = [subprocess.Popen([*shard_command, "--shard", f"{i}/{workers}"]) for i in range(workers)]
    failed = [f"{i}/{workers}" for i, process in enumerate(processes) if process.wait() != 0]
    if failed:
        print(
            f"lswag-bench: shard(s) {', '.join(failed)} stopped early; rerun the same command (finished shards score "
            "nothing, a stopped one resumes)",
            file=sys.stderr,
        )
        return 1
    return main([*command, "--report-only"])


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``lswag-bench``; see the module docstring for exit codes."""
    args = parse_settings(BenchCommand, build_parser(), argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    if args.workers is not None:
        return _run_workers(args.workers, list(sys.argv[1:] if argv is None else argv))
    import torch

    if args.threads is not None:
        torch.set_num_threads(args.threads)
    try:
        if args.vs_published and args.benchmark == "nb201":
            return _published_nb201(args)
        plan = _plan(args)
        settings, gt, total, seed = plan.settings, plan.gt, plan.total, plan.settings.seed
        if args.score_table:
            code = _join(args, plan)
            return _published_agreement(args) if args.vs_published else code
        if args.vs_published:
            return _published_agreement(args)
        if args.report_only:
            code = _report_only(args, argv, settings, gt, total, seed)
            return code if code or args.export is None else _export(args)
        device = args.device or default_device()
        kwargs = {
            "data_dir": args.data_dir,
            "device": device,
            "progress": not args.no_progress,
            "stop_after": args.stop_after,
        }
        if args.shard is not None:
            result = run_shard(settings, gt, args.out, args.shard, **kwargs)
        else:
            refuse_if_sharded(args.out)
            result = run_benchmark(settings, gt, args.out, **kwargs)
    except (ValueError, FileNotFoundError, OutputBusyError) as exc:
        print(f"lswag-bench: error: {exc}", file=sys.stderr)
        return 2
    table = result.table
    secs = table["total_seconds"].astype(float)
    where, planned = (
        (
            f"shard {args.shard}: {args.out / 'shards' / f'table.{args.shard.tag}.csv'}",
            len(args.shard.positions(len(gt))),
        )
        if args.shard
        else (args.out / "table.csv", len(gt))
    )
    print(
        f"{where}: {len(table)} of {planned} architectures ({result.resumed} from an earlier run, "
        f"{result.scored} scored now in {result.wall_seconds:.1f} s, {result.failed} failed); scoring time per "
        f"architecture: median {secs.median():.3f} s, mean {secs.mean():.3f} s on {device}"
    )
    if result.stopped:
        print("interrupted: rerun the same command to resume", file=sys.stderr)
        return 1
    if args.shard is not None:
        print(
            "merge the finished shards (table.csv + report) with the same arguments, --shard left out, plus "
            "--report-only"
        )
        return 0
    if not args.no_report:
        meta = json.loads((args.out / "bench.json").read_text())
        _report(args, argv, settings, table, meta, total, gt.accuracy_columns, seed)
    return 0 if args.export is None else _export(args)


if __name__ == "__main__":
    sys.exit(main())
