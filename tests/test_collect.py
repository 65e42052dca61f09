"""lswag-collect on synthetic sweep folders: the table, failed/unfinished jobs, small N, the report, W&B offline.

The synthetic jobs follow lswag-train's result.json schema. Accuracies are planted so that the expected numbers
are known by hand: ``synflow`` is a strictly increasing function of the accuracy (Spearman 1), ``jacov`` a strictly
decreasing one (Spearman -1), ``naswot`` is unrelated noise.
"""

from __future__ import annotations

import json
import math
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from lswag_lightning.cli import collect as collect_cli
from lswag_lightning.collect import (
    LIBRA_MIN_ROWS,
    collect,
    find_results,
    format_correlations,
    format_issues,
    format_job_line,
    read_results,
    results_table,
)

GROUP = "pva_test_group"


def _record(index: int, space: str, acc: float, rng: np.random.Generator, **overrides) -> dict:
    """One ok result.json as lswag-train writes it (fractions for accuracies)."""
    params = 10_000 + 1_000 * index
    proxies = {
        "lswag": float(rng.normal(1e6, 1e5)),
        "lswag.lambda": float(rng.normal(200, 10)),
        "lswag.psi": float(rng.integers(1000, 5000)),
        "synflow": 3.0 * acc + 1.0,
        "jacov": -acc,
        "naswot": float(rng.normal(500, 20)),
        "params": float(params),
    }
    record = {
        "schema": 1,
        "status": "ok",
        "space": space,
        "arch": f"{space}-arch-{index}",
        "candidate": {"by": "index", "index": index, "seed": 0},
        "params": params,
        "proxies": proxies,
        "proxy_status": {k: "ok" for k in proxies},
        "val_acc": acc,
        "val_acc_best": acc,
        "test_acc": acc / 2,
        "seconds": {"scoring": 0.1, "total": 2.0 + index},
        "config": {
            "sweep_id": GROUP,
            "logger": {
                "wandb": {"_target_": "lightning.pytorch.loggers.WandbLogger", "project": "lswag-tests", "group": GROUP}
            },
        },
    }
    record.update(overrides)
    return record


def _job(root: Path, num: int, record: dict | None, raw: str | None = None) -> Path:
    """A Hydra job folder ``root/num`` with ``.hydra/`` and (unless None) its result.json."""
    job = root / str(num)
    (job / ".hydra").mkdir(parents=True)
    (job / ".hydra" / "config.yaml").write_text("{}\n")
    if raw is not None:
        (job / "result.json").write_text(raw)
    elif record is not None:
        (job / "result.json").write_text(json.dumps(record))
    return job


def make_sweep(root: Path, n_ok: int, *, failed: bool = True, unfinished: bool = True, seed: int = 0) -> Path:
    """``n_ok`` finished jobs (half ViT, half NB201; accuracies 0.30..0.30+0.02*(n-1), shuffled over jobs), then
    one failed job (ConfigError in result.json) and one unfinished job folder (no result.json, an error in its
    log)."""
    rng = np.random.default_rng(seed)
    accs = 0.30 + 0.02 * rng.permutation(n_ok)
    for i in range(n_ok):
        _job(root, i, _record(i, "autoformer_mini" if i % 2 == 0 else "nb201", float(accs[i]), rng))
    num = n_ok
    if failed:
        _job(
            root,
            num,
            {
                "schema": 1,
                "status": "failed",
                "space": "nb201",
                "arch": None,
                "error": "ConfigError: candidate.index must be an int >= 0 (or set candidate.arch), got -1",
            },
        )
        num += 1
    if unfinished:
        job = _job(root, num, None)
        (job / "train.log").write_text("[INFO] - candidate 7\nRuntimeError: DataLoader worker (pid 42) is killed\n")
    (root / "multirun.yaml").write_text("{}\n")
    return root


def test_failed_and_unfinished_jobs_are_named_and_the_table_is_still_written(tmp_path):
    sweep = make_sweep(tmp_path / "sweep", 24)
    result = collect([sweep], tmp_path / "out", report=False)
    issues = {i.kind: i for i in result.collected.issues}
    assert set(issues) == {"failed", "unfinished"}
    assert issues["failed"].job == "24" and "candidate.index must be an int >= 0" in issues["failed"].error
    assert issues["unfinished"].job == "25" and "no result.json" in issues["unfinished"].error
    assert "DataLoader worker (pid 42) is killed" in issues["unfinished"].error  # the log's error line
    text = format_issues(result.collected.issues)
    assert "[failed] job 24 nb201: ConfigError: candidate.index" in text and "[unfinished] job 25" in text
    problems = pd.read_csv(result.paths["problems"])
    assert list(problems["job"].astype(str)) == ["24", "25"]

    table = pd.read_csv(result.paths["csv"])
    assert len(table) == 24 and list(table["job"]) == list(range(24))  # natural order, ok jobs only
    pd.testing.assert_frame_equal(pd.read_parquet(result.paths["parquet"]), result.table)
    # one params column (the #params proxy is that column), proxies by registry name, accuracies in %
    assert list(table.columns[:3]) == ["arch", "space", "params"] and list(table.columns).count("params") == 1
    assert {"lswag", "lswag.lambda", "lswag.psi", "synflow", "jacov", "naswot"} <= set(table.columns)
    first = json.loads((sweep / "0" / "result.json").read_text())
    assert table.loc[0, "val_acc"] == pytest.approx(100 * first["val_acc"])
    assert table.loc[0, "test_acc"] == pytest.approx(50 * first["val_acc"])
    assert table.loc[0, "params"] == first["params"] and table.loc[0, "wandb_group"] == GROUP


def test_report_correlations_and_libra_on_planted_values(tmp_path):
    sweep = make_sweep(tmp_path / "sweep", 24)
    result = collect([sweep], tmp_path / "out", n_boot=200, n_splits=5)
    corr = result.analysis.correlations.set_index("proxy")
    # synflow rises with accuracy, jacov falls with it; both are higher-is-better in the registry
    assert corr.loc["synflow", "spearman"] == pytest.approx(1.0)
    assert corr.loc["jacov", "spearman"] == pytest.approx(-1.0)
    assert corr.loc["synflow", "n"] == 24
    assert "params" in corr.index  # the #params baseline is analysed too
    ev = result.analysis.libra
    assert ev is not None and ev.selection.z1 == "synflow"
    assert all(math.isclose(r, 1.0) for r in ev.heldout["best_single"])
    report = Path(result.paths["report"]).read_text()
    assert "## LIBRA" in report and "**synflow" in report and "Held-out evaluation" in report
    out = Path(result.paths["report"]).parent
    for png in ("spearman_bars.png", "scatter_synflow.png", "scatter_lswag.lambda.png", "libra_fused.png"):
        assert (out / png).stat().st_size > 5_000
    # two spaces of 12 -> a report each, with correlations but LIBRA skipped (12 < 20 rows) and said so
    assert set(result.analysis.per_space) == {"autoformer_mini", "nb201"}
    assert "nb201" in result.analysis.per_space_libra_skipped
    assert f"at least {LIBRA_MIN_ROWS}" in Path(result.paths["report_nb201"]).read_text()
    text = format_correlations(result.analysis)
    assert text.splitlines()[1].split()[:3] == ["proxy", "n", "Spearman"] and "ρ nb201" in text
    assert text.splitlines()[3].startswith("synflow")  # sorted by Spearman, best first


def test_small_sweeps_skip_libra_or_the_report_with_a_reason(tmp_path):
    five = collect([make_sweep(tmp_path / "five", 5, failed=False, unfinished=False)], tmp_path / "o5", n_boot=100)
    assert five.analysis.libra is None and "needs at least 20 finished jobs" in five.analysis.libra_skipped
    assert five.analysis.correlations is not None and "report" in five.paths
    assert "LIBRA skipped" in Path(five.paths["report"]).read_text()
    two = collect([make_sweep(tmp_path / "two", 2, failed=False, unfinished=False)], tmp_path / "o2")
    assert two.analysis.correlations is None and "report" not in two.paths and len(two.table) == 2
    assert any("correlations need at least 3" in n for n in two.analysis.notes)
    assert "no correlation table" in format_correlations(two.analysis)


def test_result_files_nan_proxies_and_unreadable_records(tmp_path):
    sweep = make_sweep(tmp_path / "sweep", 4, failed=False, unfinished=False)
    bad = json.loads((sweep / "1" / "result.json").read_text())
    bad["proxies"]["naswot"] = None  # lswag-train writes non-finite values as null
    bad["proxy_status"]["lswag"] = "error: no activation module found"
    (sweep / "1" / "result.json").write_text(json.dumps(bad))
    _job(sweep, 9, None, raw="{not json")
    (sweep / ".submitit" / "x").mkdir(parents=True)
    (sweep / ".submitit" / "x" / "result.json").write_text("{}")  # hidden folders are not jobs
    files, orphans = find_results([sweep])
    assert [f.parent.name for f in files] == ["0", "1", "2", "3", "9"] and orphans == []
    collected = read_results([sweep, sweep / "2" / "result.json"])  # a file given twice counts once
    assert len(collected.records) == 4
    assert [(i.job, i.kind) for i in collected.issues] == [("9", "unreadable")]
    table = results_table(collected.records)
    assert math.isnan(table.loc[1, "naswot"]) and math.isnan(table.loc[1, "lswag"])  # status not ok -> NaN
    assert not math.isnan(table.loc[0, "lswag"])
    only = results_table(collected.records, proxies=["synflow", "params"])
    assert [c for c in only.columns if c in ("synflow", "lswag", "params")] == ["params", "synflow"]
    with pytest.raises(ValueError, match="not in any result; proxies present: lswag"):
        results_table(collected.records, proxies=["nope"])
    with pytest.raises(FileNotFoundError, match="no such sweep folder"):
        find_results([tmp_path / "missing"])


def test_job_line():
    rng = np.random.default_rng(0)
    line = format_job_line(_record(3, "nb201", 0.5, rng))
    assert line.startswith("nb201 #3") and "params   13,000" in line and "val_acc  50.0%" in line
    assert "lswag=" in line and line.endswith("5.0 s")
    failed = format_job_line(
        {
            "status": "failed",
            "space": "nb201",
            "candidate": {"index": 2},
            "error": "ValueError: boom",
            "seconds": {"total": 1.5},
        }
    )
    assert failed == "nb201 #2             FAILED after   1.5 s: ValueError: boom"


def test_cli_exit_codes_and_output(tmp_path, capsys):
    sweep = make_sweep(tmp_path / "sweep", 24)
    assert (
        collect_cli.main(
            [
                str(sweep),
                "--out",
                str(tmp_path / "out"),
                "--n-boot",
                "100",
                "--splits",
                "3",
                "--accuracy",
                "test_acc",
                "--no-per-space",
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "collected 24 finished job(s) (autoformer_mini 12, nb201 12) of 26" in out
    assert "[failed] job 24" in out and "Rank correlation with test_acc" in out
    assert "LIBRA choice, all 24 jobs: synflow" in out and "report: " in out
    assert (tmp_path / "out" / "table.parquet").is_file()
    nothing = tmp_path / "nothing"
    _job(nothing, 0, {"status": "failed", "error": "RuntimeError: out of memory"})
    assert collect_cli.main([str(nothing)]) == 1
    assert "RuntimeError: out of memory" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        collect_cli.main([str(tmp_path / "missing")])
    assert exc.value.code == 2


def _leet_summary(run_dir: str) -> dict:
    """``wandb leet inspect --summary --json <run dir>`` (the wandb CLI of this interpreter)."""
    wandb_cli = Path(sys.executable).with_name("wandb")
    if not wandb_cli.exists() or shutil.which(str(wandb_cli)) is None:
        pytest.skip("the wandb command line is not installed next to this Python")
    done = subprocess.run(
        [str(wandb_cli), "leet", "inspect", "--summary", "--json", run_dir], capture_output=True, text=True, timeout=120
    )
    if done.returncode != 0 and "No such command" in done.stderr:
        pytest.skip("this wandb has no `leet inspect`")
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_aggregate_wandb_run_offline_holds_table_and_libra(tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    sweep = make_sweep(tmp_path / "sweep", 24)
    result = collect([sweep], tmp_path / "out", n_boot=50, n_splits=3, wandb=True)
    info = result.wandb
    assert info["mode"] == "offline" and info["group"] == GROUP and info["project"] == "lswag-tests"
    assert Path(info["dir"]).is_relative_to(tmp_path / "out" / "wandb")
    got = _leet_summary(info["dir"])
    assert got["state"] == "finished" and got["project"] == "lswag-tests"
    summary = got["summary"]
    assert summary["libra/proxies"] == result.analysis.libra.selection.proxies
    assert summary["libra/z1"] == "synflow" and summary["libra/n_rows"] == 24
    assert summary["spearman/synflow"] == pytest.approx(1.0)
    assert summary["results"]["_type"] == "table-file" and summary["results"]["nrows"] == 24
    assert summary["correlations"]["nrows"] == len(result.analysis.proxies)
    assert "scatter/synflow_table" in summary and "scatter/lswag.lambda_table" in summary
    assert summary["n_failed"] == 2 and "needs at least 20" in summary["libra_nb201/skipped"]
    # the label-budget view: auto's choice at k = 24, its expected ρ, the learned ranking's held-out ρ
    ranking = result.analysis.ranking
    assert summary["auto/chosen"] == ranking.chosen and summary["auto/k"] == 24
    assert summary["auto/expected_rho"] == pytest.approx(1.0)
    assert summary["learned/heldout_rho_mean"] == pytest.approx(ranking.learned_rho)
    # the logged table holds every row, dotted names made Vega-safe
    table_file = Path(info["dir"]) / "files" / summary["results"]["path"]
    logged = json.loads(table_file.read_text())
    assert len(logged["data"]) == 24 and "lswag_lambda" in logged["columns"]
