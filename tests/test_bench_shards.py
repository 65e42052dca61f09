"""lswag-bench --shard I/N and the merge (--report-only): real concurrent processes, a real SIGKILL, missing shards.

Every run scores the same 6 NB201 cells (seed 0) with cheap proxies on tiny networks, one CPU thread each, so the
sharded tables can be compared value for value with one unsharded run.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from lswag_lightning.bench import Shard, exclusive_run, read_table
from lswag_lightning.cli.bench import main

ROOT = Path(__file__).resolve().parents[1]
TINY = [
    "--build-option",
    "C=8",
    "--build-option",
    "N=1",
    "--no-progress",
    "--threads",
    "1",
    "--n-boot",
    "20",
    "--splits",
    "2",
]
CHEAP = ["--proxies", "params", "naswot", "swap"]

# A shard process that dies by SIGKILL in the middle of writing its second row (after one flushed row).
KILL_MID_ROW = """
import os, signal, sys
import lswag_lightning.bench as bench
original = bench.TableFile.append
def append(self, row):
    if self.done or getattr(self, "_wrote", False):
        with self.path.open("a") as fh:
            fh.write(f"{row['sample_index']},{row['arch'][:9]}")  # half a row reaches the disk
        os.kill(os.getpid(), signal.SIGKILL)
    original(self, row)
    self._wrote = True
bench.TableFile.append = append
from lswag_lightning.cli.bench import main
sys.exit(main(sys.argv[1:]))
"""


def _args(data_dir: Path, out: Path, *extra) -> list[str]:
    return [
        str(a)
        for a in ["nb201", "--sample", 6, "--seed", 0, *CHEAP, *TINY, "--data-dir", data_dir, "--out", out, *extra]
    ]


def _env() -> dict[str, str]:
    path = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)
    return {**os.environ, "PYTHONPATH": path, "OMP_NUM_THREADS": "1"}


def _without_timing(table: pd.DataFrame) -> pd.DataFrame:
    return table.drop(columns=[c for c in table.columns if c.startswith("seconds.") or c.endswith("_seconds")])


@pytest.fixture(scope="module")
def unsharded(tmp_path_factory, shared_data_dir) -> pd.DataFrame:
    """The table of one unsharded run of the sample, without its timing columns."""
    out = tmp_path_factory.mktemp("unsharded")
    assert main(_args(shared_data_dir, out, "--no-report")) == 0
    return _without_timing(read_table(out / "table.csv"))


def test_shards_are_disjoint_cover_the_sample_and_parse_strictly():
    for n in (1, 2, 3, 7):
        parts = [Shard(i, n).positions(20) for i in range(n)]
        assert sorted(p for part in parts for p in part) == list(range(20))  # disjoint and covering
        assert max(map(len, parts)) - min(map(len, parts)) <= 1  # balanced
    assert Shard.parse(" 2/5 ") == Shard(2, 5) and str(Shard(2, 5)) == "2/5" and Shard(2, 5).tag == "2-of-5"
    assert Shard(1, 3).positions(10) == [1, 4, 7]  # position only: the same in any order of execution
    for bad, message in (
        ("2/2", "numbered 0..N-1"),
        ("0/0", "does not exist"),
        ("1-4", "expects I/N"),
        ("a/b", "expects I/N"),
    ):
        with pytest.raises(ValueError, match=message):
            Shard.parse(bad)


@pytest.mark.parametrize(
    "args, message",
    [
        (["--shard", "3/3"], "numbered 0..N-1"),
        (["--shard", "0/2", "--report-only"], "leave --shard out"),
        (["--allow-partial"], "only applies to --report-only"),
        (["--workers", "2", "--shard", "0/2"], "leave --shard and --report-only out"),
        (["--workers", "1"], "must be an integer >= 2"),
        (["--shard", "0/2", "--export", "x.parquet"], "give it to the merge"),
    ],
)
def test_bad_shard_arguments_exit_2(capsys, tmp_path, args, message):
    with pytest.raises(SystemExit) as exc:
        main(["nb201", "--sample", "4", "--out", str(tmp_path), *args])
    assert exc.value.code == 2 and message in capsys.readouterr().err


def test_two_concurrent_shard_processes_merge_to_the_unsharded_table(capsys, tmp_path, shared_data_dir, unsharded):
    out = tmp_path / "sharded"
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "lswag_lightning.cli.bench", *_args(shared_data_dir, out, "--shard", f"{i}/2")],
            env=_env(),
            cwd=tmp_path,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for i in range(2)
    ]
    outputs = [p.communicate(timeout=300)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outputs
    assert "shard 0/2" in outputs[0] and "3 of 3 architectures" in outputs[0]
    assert not (out / "table.csv").exists()  # the shards write only their own files
    assert main(_args(shared_data_dir, out, "--report-only")) == 0
    assert "merged 2 of 2 shards complete: 6 of 6 rows" in capsys.readouterr().out
    merged = read_table(out / "table.csv")
    pd.testing.assert_frame_equal(_without_timing(merged), unsharded)  # same rows, same values, same order
    meta = json.loads((out / "bench.json").read_text())
    assert meta["shards"] == {"count": 2, "complete": [0, 1], "missing": {}, "rows": 6, "planned": 6}
    assert sorted(r["shard"] for r in meta["runs"]) == ["0/2", "1/2"]
    assert "Scored in 2 shards" in (out / "report.md").read_text() and "all complete" in (out / "report.md").read_text()
    # a folder holding shards refuses an unsharded run (a later merge would replace its table)
    assert main(_args(shared_data_dir, out)) == 2 and "holds shards of this sample" in capsys.readouterr().err


def test_workers_run_the_shards_as_processes_then_merge_and_export(
    capsys, tmp_path, shared_data_dir, unsharded, monkeypatch
):
    """--workers N: the same command as N shard processes (the one shard mechanism), then the merge in this process;
    --export goes to the merge, not to the shards."""
    for key, value in _env().items():
        monkeypatch.setenv(key, value)
    out = tmp_path / "workers"
    assert main(_args(shared_data_dir, out, "--workers", "2", "--export", tmp_path / "x.parquet")) == 0
    assert "merged 2 of 2 shards complete: 6 of 6 rows" in capsys.readouterr().out
    assert sorted(p.name for p in (out / "shards").glob("table.*.csv")) == ["table.0-of-2.csv", "table.1-of-2.csv"]
    pd.testing.assert_frame_equal(_without_timing(read_table(out / "table.csv")), unsharded)
    exported = pd.read_parquet(tmp_path / "x.parquet")
    assert list(exported["arch"]) == list(unsharded["arch"]) and list(exported.columns) == ["arch", *CHEAP[1:]]


def test_killed_shard_resumes_and_a_missing_shard_blocks_the_merge(capsys, tmp_path, shared_data_dir, unsharded):
    out = tmp_path / "sharded"
    killed = subprocess.run(
        [sys.executable, "-c", KILL_MID_ROW, *_args(shared_data_dir, out, "--shard", "0/2")],
        env=_env(),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert killed.returncode == -9, killed.stderr[-2000:]  # really killed, mid-row
    assert not (out / "shards" / "table.0-of-2.csv").read_bytes().endswith(b"\n")  # half a row on disk

    # merging now: shard 0 has 1 of 3 rows, shard 1 never ran -> both named, nothing complete-looking written
    assert main(_args(shared_data_dir, out, "--report-only")) == 1
    err = capsys.readouterr().err
    assert "shard 0/2: 1 of 3 rows" in err and "shard 1/2: not started (0 of 3 rows)" in err
    assert "--allow-partial" in err and not (out / "table.csv").exists() and not (out / "report.md").exists()
    # asked for: a partial merge, which says what is missing
    assert main(_args(shared_data_dir, out, "--report-only", "--allow-partial")) == 0
    assert len(read_table(out / "table.csv")) == 1
    assert json.loads((out / "bench.json").read_text())["shards"]["missing"]["1"] == "not started (0 of 3 rows)"
    assert "MISSING: shard 0: 1 of 3 rows; shard 1: not started" in (out / "report.md").read_text()

    # the same shard twice at once is refused; the killed shard resumes (partial line dropped); the other runs
    with exclusive_run(out / "shards", ".lock.0-of-2"):
        assert main(_args(shared_data_dir, out, "--shard", "0/2")) == 2
    assert "shard 0/2 of" in capsys.readouterr().err
    assert main(_args(shared_data_dir, out, "--shard", "0/2")) == 0
    assert "(1 from an earlier run, 2 scored now" in capsys.readouterr().out
    assert main(_args(shared_data_dir, out, "--shard", "1/2")) == 0
    assert main(_args(shared_data_dir, out, "--report-only")) == 0
    pd.testing.assert_frame_equal(_without_timing(read_table(out / "table.csv")), unsharded)
    assert "MISSING" not in (out / "report.md").read_text()


def test_merge_refuses_mixed_splits_and_other_settings(capsys, tmp_path, shared_data_dir):
    out = tmp_path / "mixed"
    assert main(_args(shared_data_dir, out, "--shard", "1/3", "--stop-after", "1")) == 1
    assert main(_args(shared_data_dir, out, "--shard", "0/2", "--stop-after", "1")) == 1
    capsys.readouterr()
    assert main(_args(shared_data_dir, out, "--report-only")) == 2
    assert "different splits (N = 2, 3)" in capsys.readouterr().err
    (out / "shards" / "table.1-of-3.csv").unlink()
    assert main(_args(shared_data_dir, out, "--report-only", "--batch-size", "32")) == 2
    assert "batch_size: 64, now 32" in capsys.readouterr().err
