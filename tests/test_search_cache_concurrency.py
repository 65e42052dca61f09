"""The search's score cache with concurrent writers: two real processes appending to one file lose nothing, a
reader picks up what others appended (refresh), and a killed writer's partial line never swallows a later record."""

from __future__ import annotations

import math
import os
import subprocess
import sys
from pathlib import Path

from lswag_lightning.search.score_cache import ScoreCache
from lswag_lightning.search.scoring import ScoreResult

ROOT = Path(__file__).resolve().parents[1]
N_RECORDS, WIDTH = 100, 300  # ~7 kB per line: near the size of one write buffer, so a torn write would show

WRITER = """
import sys
from lswag_lightning.search.score_cache import ScoreCache
from lswag_lightning.search.scoring import ScoreResult
file, folder, name, n, width = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
caches = [ScoreCache(file), ScoreCache(folder)]  # default writer name: both processes append to the same files
for i in range(n):
    values = {f"p{j}": i * 1000.0 + j + 0.25 for j in range(width)}
    values["nan_value"] = float("nan")
    for cache in caches:
        cache.put("key", f"{name}-{i}", ScoreResult(values, {"p0": "ok"}, 0.5), device="cpu")
"""


def _values(i: int) -> dict[str, float]:
    return {f"p{j}": i * 1000.0 + j + 0.25 for j in range(WIDTH)}


def _two_writers(file: Path, folder: Path) -> None:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)}
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, str(file), str(folder), name, str(N_RECORDS), str(WIDTH)],
            env=env,
            stderr=subprocess.PIPE,
            text=True,
        )
        for name in ("a", "b")
    ]
    errors = [p.communicate(timeout=120)[1] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], errors


def _check_everything_is_there(cache: ScoreCache) -> None:
    assert len(cache) == 2 * N_RECORDS
    for name in ("a", "b"):
        for i in range(N_RECORDS):
            hit = cache.get("key", f"{name}-{i}", ["p0", f"p{WIDTH - 1}", "nan_value"])
            assert hit is not None, f"{name}-{i} lost"
            assert {k: hit.values[k] for k in _values(i)} == _values(i) and math.isnan(hit.values["nan_value"])


def test_two_processes_appending_to_one_cache_file_or_folder_lose_nothing(tmp_path, caplog):
    path, folder = tmp_path / "scores.jsonl", tmp_path / "cache"
    early = ScoreCache(path)  # opened before the writers: sees their records only after refresh()
    _two_writers(path, folder)
    assert len(early) == 0
    assert early.refresh() == 2 * N_RECORDS and early.refresh() == 0  # each record read once
    _check_everything_is_there(early)
    _check_everything_is_there(ScoreCache(path))
    assert len(path.read_text().splitlines()) == 2 * N_RECORDS
    shared = ScoreCache(folder)
    assert [f.name for f in shared.files] == ["main.jsonl"]
    _check_everything_is_there(shared)
    assert "unreadable" not in caplog.text and "incomplete" not in caplog.text  # no torn or glued line


def test_a_killed_writers_partial_line_does_not_swallow_the_next_record(tmp_path, caplog):
    path = tmp_path / "scores.jsonl"
    ScoreCache(path).put("key", "first", ScoreResult({"x": 1.0}))
    with path.open("a") as fh:
        fh.write('{"key": "key", "arch": "killed", "val')  # a writer killed mid-record
    reader = ScoreCache(path)
    assert "incomplete last line" in caplog.text and len(reader) == 1
    ScoreCache(path).put("key", "after", ScoreResult({"x": 2.0}))  # another process appends next
    assert reader.refresh() == 1 and reader.get("key", "after", ["x"]).values == {"x": 2.0}
    fresh = ScoreCache(path)
    assert sorted(fresh.archs("key")) == ["after", "first"] and fresh.get("key", "killed", ["x"]) is None
