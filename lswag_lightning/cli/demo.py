"""``make demo``: the proxy-vs-accuracy recipe on the embedded digits data, then ``lswag-collect``.

    python -m lswag_lightning.cli.demo                 # 20 ViT + 20 CNN candidates, 2 parallel jobs
    python -m lswag_lightning.cli.demo --candidates 12 --jobs 4 --out /tmp/demo

It launches the Hydra multirun of ``recipes/proxy_vs_accuracy`` (``lswag-train -m`` with the joblib launcher:
``--candidates`` candidates of each arm, an AutoFormer-mini ViT arm and a NAS-Bench-201 CNN arm; each job scores
its freshly initialised candidate with the zero-cost proxies, trains it for a short budget and writes
``result.json``), prints one line per finished job while the sweep runs, then collects the sweep
(:func:`lswag_lightning.collect.collect`: table, correlations with bootstrap intervals, LIBRA with held-out
evaluation, plots, and one offline W&B run) and ends with the correlation table, LIBRA's choice and the report's
path. Everything goes to ``<out>/<date_time>/`` (``sweep/``, ``sweep.log``, ``collect/``). Exit code 0 when the
sweep was collected, 1 when no job finished, 2 on bad arguments.
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
from pathlib import Path
from typing import Optional

RECIPE = "proxy_vs_accuracy"
#: The recipe folder in a source checkout (``make demo`` runs from one).
DEFAULT_RECIPE_DIR = Path(__file__).resolve().parents[2] / "recipes" / RECIPE
POLL_SECONDS = 0.5


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m lswag_lightning.cli.demo", description=__doc__.splitlines()[0])
    p.add_argument("--candidates", type=_positive_int, default=20,
                   help="candidates per arm (2 arms: ViT and CNN; default 20 -> 40 jobs)")
    p.add_argument("--jobs", type=_positive_int, default=None,
                   help="parallel jobs (default: the number of CPU cores; each job uses 1 thread)")
    p.add_argument("--out", type=Path, default=Path("demo_output"), help="output folder (default ./demo_output)")
    p.add_argument("--accuracy", choices=("val_acc", "test_acc"), default="val_acc",
                   help="accuracy the proxies are ranked against (default val_acc)")
    p.add_argument("--logger", choices=("none", "csv", "wandb_sweep"), default="csv",
                   help="per-job logger (default csv; wandb_sweep = one offline W&B run per job, in one group)")
    p.add_argument("--no-wandb", dest="wandb", action="store_false",
                   help="skip the aggregate W&B run of lswag-collect (offline by default)")
    p.add_argument("--timeout", type=_positive_int, default=1800,
                   help="stop the sweep after this many seconds and collect what finished (default 1800)")
    p.add_argument("--recipe-dir", type=Path, default=DEFAULT_RECIPE_DIR,
                   help=f"the recipe folder (default: recipes/{RECIPE} of this checkout)")
    p.add_argument("extra", nargs="*", metavar="OVERRIDE",
                   help="further lswag-train overrides for every job, e.g. trainer.max_epochs=2")
    return p


def sweep_command(recipe_dir: Path, sweep_dir: Path, sweep_id: str, candidates: int, jobs: int, logger: str,
                  extra: list[str]) -> list[str]:
    """The ``lswag-train -m`` command line of the demo's sweep (run with this Python)."""
    return [sys.executable, "-m", "lswag_lightning.cli.train", "-m", "--config-dir", str(recipe_dir),
            "--config-name", RECIPE, "hydra/launcher=joblib", f"hydra.launcher.n_jobs={jobs}",
            f"hydra.sweep.dir={sweep_dir}", f"sweep_id={sweep_id}", f"candidate.index=range(0,{candidates})",
            f"logger={logger}", *extra]


def recipe_arms(recipe_dir: Path) -> list[str]:
    """The experiments (arms) the recipe sweeps over, from its ``hydra.sweeper.params.experiment``."""
    from omegaconf import OmegaConf

    cfg = OmegaConf.load(recipe_dir / f"{RECIPE}.yaml")
    arms = OmegaConf.select(cfg, "hydra.sweeper.params.experiment", default="")
    return [a.strip() for a in str(arms).split(",") if a.strip()]


def _elapsed(start: float) -> str:
    seconds = int(time.perf_counter() - start)
    return f"{seconds // 60}:{seconds % 60:02d}"


def _new_results(sweep_dir: Path, seen: set[Path]) -> list[tuple[Path, dict]]:
    """Result files that appeared since the last call (complete JSON only; result.json is written atomically)."""
    out = []
    for path in sorted(sweep_dir.glob("*/result.json"), key=lambda p: (len(p.parent.name), p.parent.name)):
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


def run_sweep(command: list[str], sweep_dir: Path, log_path: Path, expected: int, timeout: float,
              accuracy: str, start: float) -> tuple[int, int]:
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
        process = subprocess.Popen(command, stdout=log_file, stderr=subprocess.STDOUT, env=env,
                                   start_new_session=True)
        try:
            while True:
                code = process.poll()
                report_new()
                if code is not None:
                    return code, len(seen)
                if time.perf_counter() - start > timeout:
                    print(f"timeout: {timeout:.0f} s reached; stopping the sweep and collecting what finished",
                          flush=True)
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


def main(argv: Optional[list[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    recipe_dir = args.recipe_dir.resolve()
    if not (recipe_dir / f"{RECIPE}.yaml").is_file():
        parser.error(f"recipe not found: {recipe_dir / (RECIPE + '.yaml')}; run the demo from a source checkout "
                     "(make demo) or pass --recipe-dir recipes/proxy_vs_accuracy")
    arms = recipe_arms(recipe_dir)
    if not arms:
        parser.error(f"{recipe_dir / (RECIPE + '.yaml')} has no hydra.sweeper.params.experiment to sweep")
    jobs = args.jobs or os.cpu_count() or 1
    import torch

    torch.set_num_threads(1)
    start = time.perf_counter()
    stamp = _dt.datetime.now().strftime("%Y-%m-%d_%H-%M-%S")
    run_dir = (args.out / stamp).resolve()
    sweep_dir = run_dir / "sweep"
    run_dir.mkdir(parents=True, exist_ok=True)
    expected = args.candidates * len(arms)
    command = sweep_command(recipe_dir, sweep_dir, f"demo_{stamp}", args.candidates, jobs, args.logger, args.extra)
    print(f"proxy-vs-accuracy demo: {expected} candidates ({args.candidates} per arm: {', '.join(arms)}) on digits, "
          f"{jobs} parallel job(s), 1 thread each")
    print(f"sweep: {sweep_dir}  (log: {run_dir / 'sweep.log'})")
    print("command: " + " ".join(command[2:]).replace("lswag_lightning.cli.train -m", "lswag-train -m"), flush=True)
    code, finished = run_sweep(command, sweep_dir, run_dir / "sweep.log", expected, args.timeout, args.accuracy,
                               start)
    sweep_seconds = time.perf_counter() - start
    print(f"sweep done in {_elapsed(start)}: {finished} of {expected} jobs wrote a result (exit code {code})")
    if code > 0:  # some job failed (Hydra reports it at the end) or the launcher itself did
        for line in _log_errors(run_dir / "sweep.log"):
            print(f"  log: {line[:200]}")

    from lswag_lightning.collect import (collect, format_correlations, format_issues, format_libra_choices)

    print("\ncollecting ...", flush=True)
    try:
        result = collect([sweep_dir], run_dir / "collect", accuracy=args.accuracy, wandb=args.wandb)
    except ValueError as err:
        print(f"nothing to collect: {err}")
        return 1
    print(format_issues(result.collected.issues))
    print()
    print(format_correlations(result.analysis))
    print()
    print(format_libra_choices(result.analysis))
    print()
    print(f"table:  {result.paths['csv']}")
    print(f"report: {result.paths.get('report', '(not written: too few finished jobs)')}")
    for key, path in result.paths.items():
        if key.startswith("report_"):
            print(f"        {path}  ({key[len('report_'):]} only)")
    if result.wandb is not None:
        print(f"W&B (offline) aggregate run: {result.wandb['dir']}")
        print(f"  read it back: wandb leet inspect --summary {result.wandb['dir']}")
    collect_seconds = time.perf_counter() - start - sweep_seconds
    print(f"total {_elapsed(start)} wall (sweep {sweep_seconds:.0f} s, collect {collect_seconds:.0f} s); "
          f"CPU time {_cpu_seconds():.0f} s over all processes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
