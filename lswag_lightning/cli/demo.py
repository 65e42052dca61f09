"""``make demo``: the proxy-vs-accuracy sweep on the embedded digits data, judged against a ground truth.

    python -m lswag_lightning.cli.demo        # 20 candidates per space, each trained with 2 seeds; 200 NB201 cells
    python -m lswag_lightning.cli.demo --sample 12 --seed-check 6 --published 50 --jobs 4 --out /tmp/demo

1. Sweep: for each arm of ``conf/proxy_vs_accuracy.yaml`` (an AutoFormer-mini ViT space and a NAS-Bench-201 CNN
   space), ``--sample`` of the space's samples spread evenly over model size
   (:func:`lswag_lightning.demo.sweep.spread_indices`) are scored at initialisation and trained (``lswag-train -m``,
   joblib launcher, one line printed per finished job); ``--seed-check`` of them (default: all) are trained again
   with training seed 1, and the Spearman ρ between the two seeds' accuracies says whether the ranking the
   proxies are compared with is real (>= 0.8) or mostly seed noise.
2. ``lswag-collect`` on the seed-0 jobs (:func:`lswag_lightning.collect.collect`: table, correlations, LIBRA
   held-out, plots, one offline W&B run); printed per space first, the pooled view after.
3. Published truth: ``--published`` NAS-Bench-201 cells shipped with the package, scored on a digits probe and
   correlated with their published 200-epoch CIFAR-10 / CIFAR-100 / ImageNet16-120 test accuracies
   (:mod:`lswag_lightning.demo.nb201_truth`), LIBRA held-out beside the single proxies; then the shipped k = 0
   default ranking beside #params and L-SWAG, and a short label-budget curve (k = 10 / 20 / 50 trained cells,
   :mod:`lswag_lightning.demo.nb201_budget`).

Everything goes to ``<out>/<date_time>/``: ``sweep/<arm>/seed<k>/<job>/`` (one launch per arm, both seeds when
``--seed-check`` covers all candidates), the sweeps' logs,
``collect/``, ``published/`` and ``summary.json`` (``spaces: {name: {n, seed_agreement_rho, spearman}}``,
``published: {n, spearman, libra_heldout, label_budget}``, ``seconds``). A GPU, when present, trains the jobs and
scores the cells (same code). Exit code 0 when the sweep was collected, 1 when no job finished, 2 on bad arguments.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import resource
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lswag_lightning.cli.options import build_parser as generate_parser
from lswag_lightning.cli.options import parse_settings
from lswag_lightning.settings import CommandSettings, option
from lswag_lightning.settings import vocabulary as v
from lswag_lightning.settings.values import FilePath, Flag, Integer, Text, TextList

#: The sweep's config (``lswag-train --config-name``) and the folder holding it: the package's own ``conf/``.
SWEEP_CONFIG = "proxy_vs_accuracy"
CONF_DIR = Path(__file__).resolve().parents[1] / "conf"
POLL_SECONDS = 0.5


@dataclass(kw_only=True)
class DemoCommand(CommandSettings):
    """The settings of ``make demo`` (see the module docstring)."""

    sample: int = v.SAMPLE.field(
        20,
        help="per space, spread evenly over model size (default 20)",
        deprecated_flags=("--candidates",),
    )
    seed_check: int = option(
        Integer(0),
        20,
        metavar="K",
        help="candidates per space trained again with training seed 1 to measure whether the accuracy ranking "
        "reproduces (default 20: all of them, in the same launch; 0 skips)",
    )
    published: int = option(
        Integer(0),
        200,
        metavar="N",
        help="NAS-Bench-201 cells scored against their published accuracies (default 200, the shipped ones; 0 skips)",
    )
    jobs: int | None = option(
        Integer(1), None, metavar="N", help="parallel jobs (default: the number of CPU cores; each job uses 1 thread)"
    )
    out: Path = v.OUT.field(Path("demo_output"), help="default ./demo_output")
    accuracy: str = option(
        Text(("val_acc", "test_acc")), "val_acc", help="accuracy the proxies are ranked against (default val_acc)"
    )
    logger: str = option(
        Text(("none", "csv", "wandb_sweep")),
        "csv",
        help="per-job logger (default csv; wandb_sweep = one offline W&B run per job, in one group)",
    )
    wandb: bool = option(
        Flag(store=False),
        True,
        flags=("--no-wandb",),
        help="skip the aggregate W&B run of lswag-collect (offline by default)",
    )
    timeout: int = option(
        Integer(1),
        1800,
        metavar="SECONDS",
        help="stop the sweep after this many seconds and collect what finished (default 1800)",
    )
    config_dir: Path = option(
        FilePath(),
        CONF_DIR,
        metavar="DIR",
        help=f"the folder holding {SWEEP_CONFIG}.yaml and lswag-train's config groups (default: the package's conf/)",
    )
    extra: list[str] = option(
        TextList(),
        [],
        positional=True,
        nargs="*",
        metavar="OVERRIDE",
        help="further lswag-train overrides for every job, e.g. trainer.max_epochs=2",
    )


def build_parser() -> argparse.ArgumentParser:
    """The demo's parser, generated from :class:`DemoCommand`."""
    return generate_parser(DemoCommand, prog="python -m lswag_lightning.cli.demo", description=__doc__.splitlines()[0])


def sweep_command(
    config_dir: Path, sweep_dir: Path, sweep_id: str, indices: list[int], jobs: int, logger: str, extra: list[str]
) -> list[str]:
    """The ``lswag-train -m`` command line of one of the demo's sweeps (run with this Python): the candidates
    ``indices`` (sampler indices) of the arm and seed named in ``extra`` (``experiment=...``, ``seed=...``)."""
    return [
        sys.executable,
        "-m",
        "lswag_lightning.cli.train",
        "-m",
        "--config-dir",
        str(config_dir),
        "--config-name",
        SWEEP_CONFIG,
        "hydra/launcher=joblib",
        f"hydra.launcher.n_jobs={jobs}",
        f"hydra.sweep.dir={sweep_dir}",
        f"sweep_id={sweep_id}",
        "candidate.index=" + ",".join(str(i) for i in indices),
        f"logger={logger}",
        *extra,
    ]


def sweep_arms(config_dir: Path) -> list[str]:
    """The experiments (arms) the sweep config sweeps over, from its ``hydra.sweeper.params.experiment``."""
    from omegaconf import OmegaConf

    cfg = OmegaConf.load(config_dir / f"{SWEEP_CONFIG}.yaml")
    arms = OmegaConf.select(cfg, "hydra.sweeper.params.experiment", default="")
    return [a.strip() for a in str(arms).split(",") if a.strip()]


def _elapsed(start: float) -> str:
    seconds = int(time.perf_counter() - start)
    return f"{seconds // 60}:{seconds % 60:02d}"


def _new_results(sweep_dir: Path, seen: set[Path]) -> list[tuple[Path, dict]]:
    """Result files that appeared since the last call (complete JSON only; result.json is written atomically)."""
    out = []
    for path in sorted(
        sweep_dir.rglob("result.json"), key=lambda p: (str(p.parent.parent), len(p.parent.name), p.parent.name)
    ):
        if path in seen:
            continue
        try:
            record = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if record.get("status") in ("ok", "failed"):
            seen.add(path)
            out.append((path, record))
    return out


def _stop(process: subprocess.Popen) -> None:
    """Stop the sweep we started: SIGTERM to its process group, SIGKILL after 10 s."""
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=10)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        process.wait()


def run_sweep(
    command: list[str], sweep_dir: Path, log_path: Path, expected: int, timeout: float, accuracy: str, start: float
) -> tuple[int, int]:
    """Run the sweep, printing one line per finished job; returns ``(exit code, finished jobs)``."""
    from lswag_lightning.collect import format_job_line

    env = dict(os.environ)
    env.setdefault("WANDB_MODE", "offline")
    env.setdefault("WANDB_SILENT", "true")
    env["HYDRA_FULL_ERROR"] = "1"
    seen: set[Path] = set()

    def report_new() -> None:
        """One line per result that appeared since the last call, numbered in order of appearance."""
        done_before = len(seen)
        for k, (_, record) in enumerate(_new_results(sweep_dir, seen), start=done_before + 1):
            print(f"[{k:>3}/{expected} {_elapsed(start)}] {format_job_line(record, accuracy)}", flush=True)

    with log_path.open("w") as log_file:
        process = subprocess.Popen(command, stdout=log_file, stderr=subprocess.STDOUT, env=env, start_new_session=True)
        try:
            while True:
                code = process.poll()
                report_new()
                if code is not None:
                    return code, len(seen)
                if time.perf_counter() - start > timeout:
                    print(
                        f"timeout: {timeout:.0f} s reached; stopping the sweep and collecting what finished", flush=True
                    )
                    _stop(process)
                    report_new()
                    return -1, len(seen)
                time.sleep(POLL_SECONDS)
        except KeyboardInterrupt:
            _stop(process)
            raise


def _cpu_seconds() -> float:
    """User + system CPU seconds of this process and of its finished children (the sweep and its workers)."""
    total = 0.0
    for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN):
        usage = resource.getrusage(who)
        total += usage.ru_utime + usage.ru_stime
    return total


def _log_errors(log_path: Path, limit: int = 5) -> list[str]:
    """The last error lines of the sweep's log."""
    try:
        lines = log_path.read_text(errors="replace").splitlines()
    except OSError:
        return []
    hits = [line for line in lines if "Error" in line or "error:" in line]
    return hits[-limit:]


def _launch(
    label: str, command: list[str], sweep_dir: Path, log_path: Path, expected: int, args: Any, start: float
) -> int:
    """Run one Hydra multirun (one arm and seed); returns how many of its jobs wrote a result."""
    print(f"{label}: {expected} jobs -> {sweep_dir}", flush=True)
    code, finished = run_sweep(command, sweep_dir, log_path, expected, args.timeout, args.accuracy, start)
    if code != 0:
        print(f"  {label}: {finished} of {expected} jobs wrote a result (exit code {code})")
        for line in _log_errors(log_path):
            print(f"  log: {line[:200]}")
    return finished


def _published(args: Any, jobs: int, out_dir: Path) -> dict | None:
    """Score the shipped NB201 cells on the digits probe and correlate with their published accuracies."""
    from lswag_lightning.demo.nb201_budget import budget_summary, default_proxies, format_budget
    from lswag_lightning.demo.nb201_truth import (
        ACCURACIES,
        PROXIES,
        digits_probe,
        format_published,
        load_cells,
        published_summary,
        score_cells,
    )

    cells = load_cells().head(args.published)
    x, y = digits_probe()
    print(f"\npublished truth: scoring {len(cells)} NAS-Bench-201 cells on a digits probe ...", flush=True)
    t0 = time.perf_counter()
    scored = list(dict.fromkeys([*PROXIES, *default_proxies()]))  # the k = 0 default's proxies too
    table = score_cells(cells, x, y, proxies=scored, jobs=jobs)
    out_dir.mkdir(parents=True, exist_ok=True)
    table.to_csv(out_dir / "table.csv", index=False)
    summary = published_summary(table)
    print(format_published(summary))
    print(f"({time.perf_counter() - t0:.0f} s; table: {out_dir / 'table.csv'})")
    t1 = time.perf_counter()
    summary["label_budget"] = budget_summary(table, scored, ACCURACIES)
    print("\n" + format_budget(summary["label_budget"]))
    summary["label_budget"]["seconds"] = round(time.perf_counter() - t1, 1)
    print(f"({summary['label_budget']['seconds']:.0f} s; docs/results/label-budget.md has the full curves)")
    try:
        from lswag_lightning.analysis.report import write_report

        for acc in ACCURACIES:
            path = write_report(
                table,
                out_dir / f"report_{acc}",
                accuracy=acc,
                proxies=list(PROXIES),
                libra=False,
                title=f"NAS-Bench-201: proxies on a digits probe vs published {acc}",
            )
            print(f"report: {path}")
    except (ValueError, RuntimeError) as err:
        print(f"published-truth report not written: {err}")
    return summary


def _parse(argv: list[str] | None) -> tuple[DemoCommand, Path, list[str], int]:
    """The checked arguments (``parser.error``, exit code 2, on bad ones): (args, config folder, arms, jobs)."""
    parser = build_parser()
    args = parse_settings(DemoCommand, parser, argv)
    config_dir = args.config_dir.resolve()
    if not (config_dir / f"{SWEEP_CONFIG}.yaml").is_file():
        parser.error(f"sweep config not found: {config_dir / (SWEEP_CONFIG + '.yaml')}; pass --config-dir")
    arms = sweep_arms(config_dir)
    if not arms:
        parser.error(f"{config_dir / (SWEEP_CONFIG + '.yaml')} has no hydra.sweeper.params.experiment to sweep")
    jobs = args.jobs or os.cpu_count() or 1
    if args.published:
        from lswag_lightning.demo.nb201_truth import load_cells

        shipped = len(load_cells())
        if args.published > shipped:
            parser.error(
                f"--published {args.published}: the package ships {shipped} NB201 cells; pass at most "
                f"{shipped} (lswag_lightning/resources/README.md says how the file was drawn)"
            )
    return args, config_dir, arms, jobs


def _run_sweeps(
    args: argparse.Namespace, config_dir: Path, arms: list[str], jobs: int, run_dir: Path, stamp: str, start: float
) -> tuple[int, list[str]]:
    """Each arm's launches (seed 0, and seed 1 on the seed-check subset, in one launch when that is all of them);
    returns (jobs that wrote a result, the last launch's command)."""
    import torch

    from lswag_lightning.demo.sweep import arm_candidates, seed_check_subset

    extra = list(args.extra)
    if torch.cuda.is_available():  # same jobs, trained on the GPU (scored on it too: the callback follows the model)
        extra += ["trainer.accelerator=gpu", "trainer.devices=1"]
    plan = {arm: arm_candidates(config_dir, SWEEP_CONFIG, arm, args.sample, overrides=args.extra) for arm in arms}
    print(
        f"proxy-vs-accuracy demo: {args.sample} candidates per space ({', '.join(arms)}), spread over model "
        f"size; {args.seed_check} of each retrained with a second seed; {jobs} parallel job(s)",
        flush=True,
    )
    finished = 0
    for arm, (space, indices) in plan.items():
        check = seed_check_subset(indices, args.seed_check)
        launches = [("0,1" if check == indices else "0", indices)] + (
            [("1", check)] if check and check != indices else []
        )
        for seeds, chosen in launches:
            sweep_dir = run_dir / "sweep" / arm
            command = sweep_command(
                config_dir,
                sweep_dir,
                f"demo_{stamp}",
                chosen,
                jobs,
                args.logger,
                [f"experiment={arm}", f"seed={seeds}", "hydra.sweep.subdir=seed${seed}/${hydra.job.num}", *extra],
            )
            finished += _launch(
                f"{space}, training seed(s) {seeds}",
                command,
                sweep_dir,
                run_dir / f"sweep_{arm}_seed{seeds.replace(',', '')}.log",
                len(chosen) * len(seeds.split(",")),
                args,
                start,
            )
    return finished, command


def _collect_and_print(args: argparse.Namespace, run_dir: Path) -> dict | None:
    """``lswag-collect`` on the seed-0 jobs, the seed agreement, and what they print; returns the per-space summary
    (None when nothing could be collected)."""
    from lswag_lightning.collect import (
        collect,
        format_correlations,
        format_issues,
        format_libra_choices,
        read_results,
        table_proxies,
    )
    from lswag_lightning.demo.sweep import format_spaces, records_table, seed_agreement, spaces_summary

    print("\ncollecting the seed-0 jobs ...", flush=True)
    try:
        result = collect(
            sorted(run_dir.glob("sweep/*/seed0")), run_dir / "collect", accuracy=args.accuracy, wandb=args.wandb
        )
    except ValueError as err:
        print(f"nothing to collect: {err}")
        return None
    main_rows = records_table(result.collected.records, args.accuracy)
    seed1 = sorted(run_dir.glob("sweep/*/seed1"))
    check_rows = records_table(read_results(seed1).records, args.accuracy) if seed1 else main_rows.iloc[:0]
    agreement = seed_agreement(main_rows, check_rows, args.accuracy) if len(check_rows) else {}
    spaces = spaces_summary(result.table, table_proxies(result.table), args.accuracy, agreement)
    print(format_issues(result.collected.issues))
    print()
    print(format_spaces(spaces, args.accuracy))
    print()
    print(format_libra_choices(result.analysis))
    print()
    print(
        "Pooled view (mixes the spaces' model families, whose accuracies differ as families; the per-space "
        "numbers above are the question a search asks):"
    )
    print(format_correlations(result.analysis))
    print(f"\ntable:  {result.paths['csv']}")
    print(f"report: {result.paths.get('report', '(not written: too few finished jobs)')}")
    for key, path in result.paths.items():
        if key.startswith("report_"):
            print(f"        {path}  ({key[len('report_') :]} only)")
    if result.wandb is not None:
        print(f"W&B (offline) aggregate run: {result.wandb['dir']}")
    return spaces


def main(argv: list[str] | None = None) -> int:
    """Parse, run the sweeps, collect and print, score the published cells, write ``summary.json``."""
    args, config_dir, arms, jobs = _parse(argv)
    import torch

    torch.set_num_threads(1)
    start = time.perf_counter()
    stamp = _dt.datetime.now().strftime("%Y-%m-%d_%H-%M-%S")
    run_dir = (args.out / stamp).resolve()
    run_dir.mkdir(parents=True, exist_ok=True)
    finished, command = _run_sweeps(args, config_dir, arms, jobs, run_dir, stamp, start)
    sweep_seconds = time.perf_counter() - start
    print(f"sweeps done in {_elapsed(start)}: {finished} jobs wrote a result")
    print(
        "  command of the last one: " + " ".join(command[2:]).replace("lswag_lightning.cli.train -m", "lswag-train -m"),
        flush=True,
    )
    spaces = _collect_and_print(args, run_dir)
    if spaces is None:
        return 1
    published = _published(args, jobs, run_dir / "published") if args.published else None
    seconds = time.perf_counter() - start
    summary = {"spaces": spaces, "published": published, "seconds": round(seconds, 1)}
    (run_dir / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    print(f"\nsummary: {run_dir / 'summary.json'}")
    print(
        f"total {_elapsed(start)} wall (sweeps {sweep_seconds:.0f} s); CPU time {_cpu_seconds():.0f} s over all "
        "processes"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
