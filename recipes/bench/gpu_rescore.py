"""One GPU session, one call: every benchmark table with every registered proxy, and NAS-Bench-201 pre-scored with
the proxies of "Beyond the paper", inside a fixed time budget, with everything resumable and packed for the way back.

What it runs, all at once on one machine (one process per CPU core, sharing the GPU, under CUDA MPS when present):

- ``lswag-bench nb101`` / ``nb301`` / ``autoformer_ti`` with every registered proxy, each split into ``--shard I/N``
  processes writing ``WORK/<benchmark>/shards/table.I-of-N.csv`` (merge later with ``lswag-bench ... --report-only``);
- NAS-Bench-201 cells in ``recipes/search/nb201_search_eval.py``'s pre-scoring order (the 723 NASLib validation
  cells first, then the seeded random order) with :data:`NB201_PROXIES`, into that recipe's score cache
  (``WORK/nb201_cache/<writer>.jsonl``, same scorer key as ``results/nb201_all_cells_scores.parquet``). Cells are
  handed out by claim files, so a worker started when a benchmark shard finishes takes the next unclaimed cell and
  a partial run is still the first cells of the order.

At ``--budget-s`` every process is interrupted (rows written so far are kept: tables and caches are appended and
flushed one row at a time) and ``WORK`` is packed into ``OUT/bench_tables.tgz`` and ``OUT/nb201_cache.tgz``.

    python recipes/bench/gpu_rescore.py --data-dir .devdata --work /tmp/rescore --out "$OUT" --budget-s 500
    # here, afterwards: unpack, then lswag-bench <benchmark> --out <dir> --report-only, and
    # python recipes/search/export_scores.py --score-cache <dir>/nb201_cache --proxies ... --out results/....parquet
"""

from __future__ import annotations

import argparse
import os
import runpy
import shutil
import signal
import subprocess
import sys
import tarfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SEARCH_RECIPE = ROOT / "recipes" / "search" / "nb201_search_eval.py"
NB201_PROXIES = ["az_expressivity", "az_progressivity", "az_trainability", "meco", "vkdnw", "vkdnw_layers", "zico_ps"]
#: benchmark -> shard processes (sized from CPU costs: NB301 > NB101 > AutoFormer-Ti per row count)
BENCH_SHARDS = {"nb101": 4, "nb301": 5, "autoformer_ti": 2}


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def bench_command(args, benchmark: str, index: int, count: int) -> list[str]:
    cmd = [
        sys.executable,
        "-m",
        "lswag_lightning.cli.bench",
        benchmark,
        "--out",
        str(args.work / benchmark),
        "--shard",
        f"{index}/{count}",
        "--device",
        args.device,
        "--threads",
        "1",
        "--no-progress",
    ]
    if args.data_dir:
        cmd += ["--data-dir", str(args.data_dir)]
    if args.sample:
        cmd += ["--sample", str(args.sample)]
    return cmd


def nb201_command(args, worker: int) -> list[str]:
    cmd = [
        sys.executable,
        __file__,
        "nb201-worker",
        "--worker",
        str(worker),
        "--work",
        str(args.work),
        "--device",
        args.device,
        "--until",
        str(args.until),
    ]
    if args.data_dir:
        cmd += ["--data-dir", str(args.data_dir)]
    if args.nb201_limit:
        cmd += ["--nb201-limit", str(args.nb201_limit)]
    return cmd


def nb201_worker(args) -> int:
    """Score unclaimed cells of the pre-scoring order until ``--until`` (a time.time() stamp)."""
    import torch

    torch.set_num_threads(1)
    recipe = runpy.run_path(str(SEARCH_RECIPE))
    argv = [
        "--out",
        str(args.work / "nb201_run"),
        "--score-cache",
        str(args.work / "nb201_cache"),
        "--device",
        args.device,
    ]
    if args.data_dir:
        argv += ["--data-dir", str(args.data_dir)]
    rargs = recipe["build_parser"]().parse_args(argv)
    scorer = recipe["make_live_scorer"](rargs, NB201_PROXIES, writer=f"g{args.worker:02d}")
    order = recipe["prescore_order"](rargs.data_dir)
    if args.nb201_limit:
        order = order[: args.nb201_limit]
    claims = args.work / "nb201_claims"
    claims.mkdir(parents=True, exist_ok=True)
    done = failed = 0
    start = time.perf_counter()
    for position, arch in enumerate(order):
        if time.time() > args.until:
            break
        try:
            os.close(os.open(claims / str(position), os.O_CREAT | os.O_EXCL))
        except FileExistsError:
            continue
        if scorer.cache.get(scorer.key, arch, NB201_PROXIES) is not None:
            continue
        try:
            scorer.score(scorer.space.decode(arch), arch)
            done += 1
        except Exception as err:  # one failing cell must not stop the others
            failed += 1
            log(f"nb201 worker {args.worker}: {arch} failed: {type(err).__name__}: {err}")
    log(f"nb201 worker {args.worker}: {done} cells in {time.perf_counter() - start:.0f} s, {failed} failed")
    return 0


def count_rows(work: Path) -> dict[str, int]:
    counts = {}
    for benchmark in BENCH_SHARDS:
        rows = 0
        for table in (work / benchmark / "shards").glob("table.*.csv"):
            rows += max(sum(1 for _ in table.open()) - 1, 0)
        counts[benchmark] = rows
    counts["nb201"] = sum(sum(1 for _ in f.open()) for f in (work / "nb201_cache").glob("*.jsonl"))
    return counts


def pack(args) -> None:
    args.out.mkdir(parents=True, exist_ok=True)
    with tarfile.open(args.out / "bench_tables.tgz", "w:gz") as tar:
        for benchmark in BENCH_SHARDS:
            if (args.work / benchmark).exists():
                tar.add(args.work / benchmark, arcname=benchmark)
    with tarfile.open(args.out / "nb201_cache.tgz", "w:gz") as tar:
        if (args.work / "nb201_cache").exists():
            tar.add(args.work / "nb201_cache", arcname="nb201_cache")
    log(f"packed into {args.out}")


def drive(args) -> int:
    start = time.time()
    args.until = start + args.budget_s
    args.work.mkdir(parents=True, exist_ok=True)
    if args.mps and shutil.which("nvidia-cuda-mps-control"):
        rc = subprocess.run(["nvidia-cuda-mps-control", "-d"]).returncode
        log(f"CUDA MPS daemon start: rc {rc}")
    logs = args.work / "logs"
    logs.mkdir(exist_ok=True)
    running: dict[str, subprocess.Popen] = {}

    def launch(name: str, cmd: list[str]) -> None:
        fh = open(logs / f"{name}.log", "w")
        running[name] = subprocess.Popen(
            cmd, stdout=fh, stderr=subprocess.STDOUT, cwd=ROOT, env={**os.environ, "PYTHONUNBUFFERED": "1"}
        )

    for benchmark, count in BENCH_SHARDS.items():
        if benchmark in args.skip:
            continue
        for index in range(count):
            launch(f"{benchmark}-{index}", bench_command(args, benchmark, index, count))
    workers = 0
    while len(running) < args.procs:
        launch(f"nb201-{workers}", nb201_command(args, workers))
        workers += 1
    last_report = 0.0
    while time.time() < args.until + 15:
        for name, proc in list(running.items()):
            if proc.poll() is not None:
                log(f"{name} exited with {proc.returncode} after {time.time() - start:.0f} s")
                if proc.returncode:
                    print((logs / f"{name}.log").read_text()[-3000:], flush=True)
                del running[name]
                if time.time() < args.until - 20 and not name.startswith("nb201"):
                    launch(f"nb201-{workers}", nb201_command(args, workers))
                    workers += 1
        if not running:
            break
        if time.time() - last_report > 30:
            last_report = time.time()
            log(f"rows so far {count_rows(args.work)}; {len(running)} processes")
        time.sleep(2)
    for proc in running.values():
        proc.send_signal(signal.SIGINT)
    deadline = time.time() + 10
    for proc in running.values():
        try:
            proc.wait(timeout=max(deadline - time.time(), 0.1))
        except subprocess.TimeoutExpired:
            proc.kill()
    log(f"final rows {count_rows(args.work)} after {time.time() - start:.0f} s")
    for name in sorted(p.stem for p in logs.glob("*.log")):
        text = (logs / f"{name}.log").read_text()
        errors = [
            line for line in text.splitlines() if "rror" in line or ("failed" in line and " 0 failed" not in line)
        ]
        if errors:
            print(f"--- {name}: {len(errors)} error lines, first: {errors[:3]}", flush=True)
    shutil.copytree(logs, args.work / "bench_logs", dirs_exist_ok=True)
    pack(args)
    return 0


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("mode", nargs="?", default="drive", choices=("drive", "nb201-worker"))
    p.add_argument("--work", type=Path, required=True, help="working folder (tables, caches, logs)")
    p.add_argument("--out", type=Path, help="where the packed results go (drive)")
    p.add_argument("--data-dir", type=Path, default=None)
    p.add_argument("--device", default="cuda")
    p.add_argument("--budget-s", type=float, default=500.0, help="seconds of scoring before everything stops")
    p.add_argument("--procs", type=int, default=max((os.cpu_count() or 2), 2), help="processes at once")
    p.add_argument("--sample", type=int, default=None, help="rows per benchmark (testing; default all)")
    p.add_argument("--nb201-limit", type=int, default=None, help="first N cells of the order only (testing)")
    p.add_argument("--skip", nargs="*", default=[], help="benchmarks not to run")
    p.add_argument("--no-mps", dest="mps", action="store_false")
    p.add_argument("--worker", type=int, default=0)
    p.add_argument("--until", type=float, default=None)
    args = p.parse_args(argv)
    if args.mode == "nb201-worker":
        return nb201_worker(args)
    if args.out is None:
        p.error("drive needs --out")
    return drive(args)


if __name__ == "__main__":
    sys.exit(main())
