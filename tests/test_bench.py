"""lswag-bench: argument checks, a tiny NB201 run against the published table, resumption, custom tables."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from lswag_lightning.analysis.table import default_proxy_columns
from lswag_lightning.bench import (
    NB201_TEST_COLUMNS,
    TableFile,
    arch_seed,
    exclusive_run,
    load_nb201_ground_truth,
    read_csv_exact,
    read_table,
    sample_ground_truth,
)
from lswag_lightning.cli.bench import main
from lswag_lightning.probe import probe_batch
from lswag_lightning.spaces import get_space
from lswag_lightning.spaces.nb201 import index_to_arch

# Small NB201 networks (8 channels, 1 cell per stage) keep the runs fast; the benchmark itself uses C=16, N=5.
TINY = ["--build-option", "C=8", "--build-option", "N=1", "--no-progress", "--threads", "1"]
CHEAP = ["--proxies", "params", "naswot", "swap"]


def _run(capsys, args):
    code = main([str(a) for a in args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _without_timing(table: pd.DataFrame) -> pd.DataFrame:
    return table.drop(columns=[c for c in table.columns if c.startswith("seconds.") or c.endswith("_seconds")])


# ------------------------------------------------------------------------------------------ argument errors
@pytest.mark.parametrize(
    "args, message",
    [
        (["custom", "--out", "x"], "custom needs --space, --gt, --arch-column, --accuracy-column"),
        (["nb201", "--space", "nb201", "--out", "x"], "only apply to 'custom'"),
        (["nb201", "--seed", "3", "--out", "x"], "give --sample N with it"),
        (["autoformer_ti", "--nb201-set", "naslib_val", "--out", "x"], "only applies to the nb201"),
        (["nb201", "--sample", "0", "--out", "x"], "must be an integer >= 1"),
        (["nb201", "--num-classes", "5", "--out", "x"], "must be an integer >= 10"),
        (["nb201", "--layer-interval", "1", "x", "--out", "x"], "two depth bins"),
        (["nb201", "--score-option", "novalue", "--out", "x"], "expected KEY=VALUE"),
        (["nb201", "--sample", "3"], "--out"),
    ],
)
def test_bad_arguments_exit_2_naming_the_fix(capsys, args, message):
    with pytest.raises(SystemExit) as exc:
        main(args)
    assert exc.value.code == 2
    assert message in capsys.readouterr().err


def test_bad_values_found_after_parsing_exit_2(capsys, tmp_path, shared_data_dir):
    base = ["nb201", "--sample", "2", "--out", tmp_path / "o", *TINY]
    code, _, err = _run(capsys, [*base, "--proxies", "lswagg"])
    assert code == 2 and "unknown proxy 'lswagg'" in err and "Did you mean 'lswag'" in err
    with pytest.raises(SystemExit) as exit_info:  # a bad score option is a usage error, found while parsing
        _run(capsys, [*base, "--score-option", "lambda_std=median"])
    assert exit_info.value.code == 2 and "lambda_std='median'" in capsys.readouterr().err
    code, _, err = _run(capsys, ["nb201", "--sample", "20000", "--out", tmp_path / "o2"])
    assert code == 2 and "the ground truth holds 15625" in err
    code, _, err = _run(capsys, ["nb201", "--sample", "2", "--out", tmp_path / "o3", "--data-dir", tmp_path])
    assert code == 2 and "ground-truth data not found" in err and "LSWAG_DATA_DIR" in err


# --------------------------------------------------------------------------------------------- probe batch
def test_probe_batch_is_seeded_normalised_and_resized(shared_data_dir):
    x, y = probe_batch("bench", data_dir=shared_data_dir, batch_size=64, seed=0)
    x2, y2 = probe_batch("bench", data_dir=shared_data_dir, batch_size=64, seed=0)
    assert x.shape == (64, 3, 32, 32) and x.dtype == torch.float32 and y.dtype == torch.int64
    assert torch.equal(x, x2) and torch.equal(y, y2)
    assert not torch.equal(y, probe_batch("bench", data_dir=shared_data_dir, batch_size=64, seed=1)[1])
    assert len(set(y.tolist())) >= 8  # shuffled: the file is sorted by class
    # normalised with the CIFAR-10 mean/std: channel means near 0 and stds near 1 on real images
    assert x.mean(dim=(0, 2, 3)).abs().max() < 0.3 and (x.std(dim=(0, 2, 3)) - 1).abs().max() < 0.3
    big, _ = probe_batch("bench", data_dir=shared_data_dir, batch_size=8, seed=0, img_size=64)
    assert big.shape == (8, 3, 64, 64)
    assert torch.allclose(big.mean(dim=(2, 3)), x[:8].mean(dim=(2, 3)), atol=0.05)  # same images, upsampled


# ------------------------------------------------------------------------------------------------ nb201 run
def test_nb201_run_writes_the_documented_table_and_report(capsys, tmp_path, shared_data_dir):
    out = tmp_path / "nb201"
    code, stdout, _ = _run(
        capsys, ["nb201", "--sample", 6, "--seed", 0, "--out", out, *CHEAP, *TINY, "--data-dir", shared_data_dir]
    )
    assert code == 0, stdout
    table = read_table(out / "table.csv")
    assert list(table.columns) == [
        "sample_index",
        "arch",
        "space",
        "nb201_index",
        "init_seed",
        "params",
        "naswot",
        "swap",
        "cifar10_test_acc",
        "cifar100_test_acc",
        "imagenet16_120_test_acc",
        "status",
        "seconds.params",
        "seconds.naswot",
        "seconds.swap",
        "build_seconds",
        "total_seconds",
    ]
    # the documented sample: numpy default_rng(0) draws 6 of the 15,625 benchmark indices, in draw order
    expected = np.random.default_rng(0).choice(15625, size=6, replace=False)
    assert table["nb201_index"].tolist() == expected.tolist()
    assert table["sample_index"].tolist() == list(range(6))
    assert table["arch"].tolist() == [index_to_arch(int(i)) for i in expected]
    # accuracies are the published values of those rows
    published = read_csv_exact(shared_data_dir / "nb201/nasbench201_test_acc_200ep.csv")
    for ours, theirs in NB201_TEST_COLUMNS.items():
        assert table[ours].tolist() == published[theirs].iloc[expected].tolist()
    # params is the closed-form count of the scored (tiny) network
    space = get_space("nb201")
    assert table["params"].tolist() == [space.param_count(a, C=8, N=1) for a in table["arch"]]
    # a value that is not ok is kept as such and explained in `status` (tiny nets can give NASWOT a singular kernel)
    for row in table.itertuples():
        assert row.status == "ok" or (
            row.status.startswith("naswot: inf: the Hamming kernel is singular") and row.naswot == -np.inf
        )
    assert table["init_seed"].tolist() == [arch_seed(a, 0) for a in table["arch"]]
    assert (table["total_seconds"] > 0).all()
    # lswag-libra's default proxy columns are exactly the proxy values (no ids, seeds, timings or accuracies)
    assert default_proxy_columns(table, list(NB201_TEST_COLUMNS)) == ["params", "naswot", "swap"]
    report = (out / "report.md").read_text()
    assert "same CIFAR-10 images" in report and "batch of 64" in report and "32x32 px" in report
    assert 'C": 8' in report  # the build options are stated
    meta = json.loads((out / "bench.json").read_text())
    assert meta["settings"]["proxies"] == ["params", "naswot", "swap"] and meta["settings"]["sample"] == 6


def test_killed_run_resumes_to_the_same_table(capsys, tmp_path, shared_data_dir):
    common = ["nb201", "--sample", 5, "--seed", 3, *CHEAP, *TINY, "--no-report", "--data-dir", shared_data_dir]
    code, _, _ = _run(capsys, [*common, "--out", tmp_path / "full"])
    assert code == 0
    part = tmp_path / "part"
    code, _, err = _run(capsys, [*common, "--out", part, "--stop-after", 2])
    assert code == 1 and "rerun the same command to resume" in err
    assert len(read_table(part / "table.csv")) == 2
    code, _, err = _run(capsys, [*common[:-3], "--data-dir", shared_data_dir, "--out", part, "--report-only"])
    assert code == 0 and "holds 2 of the 5 planned" in err  # a report from a partial table, nothing scored
    assert "(the first 2 of a seeded random sample of 5" in (part / "report.md").read_text()
    assert len(read_table(part / "table.csv")) == 2
    with (part / "table.csv").open("a") as fh:  # a kill in the middle of writing row 3
        fh.write("2,|nor_conv_3x3~0|+|none~0|")
    code, stdout, _ = _run(capsys, [*common, "--out", part])
    assert code == 0 and "(2 from an earlier run, 3 scored now" in stdout
    full, resumed = read_table(tmp_path / "full" / "table.csv"), read_table(part / "table.csv")
    pd.testing.assert_frame_equal(_without_timing(full), _without_timing(resumed))
    # a finished run is not redone; another setting is refused, naming it
    code, stdout, _ = _run(capsys, [*common, "--out", part])
    assert code == 0 and "(5 from an earlier run, 0 scored now" in stdout
    code, _, err = _run(capsys, [*common, "--out", part, "--batch-size", 32])
    assert code == 2 and "batch_size: was 64, now 32" in err


def test_a_second_process_on_the_same_folder_is_refused(capsys, tmp_path, shared_data_dir):
    # Two runs appending to one table would interleave duplicate rows; while one holds the folder, another stops.
    out = tmp_path / "busy"
    out.mkdir()
    args = [
        "nb201",
        "--sample",
        2,
        "--seed",
        0,
        *CHEAP,
        *TINY,
        "--no-report",
        "--data-dir",
        shared_data_dir,
        "--out",
        out,
    ]
    with exclusive_run(out):  # a separate open file description: conflicts like another process would
        code, _, err = _run(capsys, args)
    assert code == 2 and "being written by another lswag-bench process" in err
    assert not (out / "table.csv").exists()
    code, _, _ = _run(capsys, args)  # released: the run goes ahead
    assert code == 0 and len(read_table(out / "table.csv")) == 2


def test_table_file_refuses_a_foreign_header(tmp_path):
    path = tmp_path / "table.csv"
    path.write_text("a,b\n1,2\n")
    with pytest.raises(ValueError, match="other settings"):
        TableFile(path, ["sample_index", "arch"])


# ------------------------------------------------------------------------------------------------- custom
def test_custom_table_ranks_a_known_accuracy(capsys, tmp_path, shared_data_dir):
    """Accuracy defined as #params (and its negative): the params proxy must rank it perfectly (ρ = ±1)."""
    space = get_space("nb201")
    archs = [index_to_arch(i) for i in range(0, 15625, 700)][:20]
    params = [space.param_count(a, C=8, N=1) for a in archs]
    gt = pd.DataFrame(
        {"cell": archs, "acc_up": np.asarray(params) / 1e4, "acc_down": -np.asarray(params) / 1e4, "other": 1}
    )
    gt_file = tmp_path / "gt.csv"
    gt.to_csv(gt_file, index=False)
    out = tmp_path / "custom"
    code, stdout, _ = _run(
        capsys,
        [
            "custom",
            "--space",
            "nb201",
            "--gt",
            gt_file,
            "--arch-column",
            "cell",
            "--accuracy-column",
            "acc_up",
            "--accuracy-column",
            "acc_down",
            "--proxies",
            "params",
            "naswot",
            "--out",
            out,
            *TINY,
            "--n-boot",
            20,
            "--splits",
            3,
            "--data-dir",
            shared_data_dir,
        ],
    )
    assert code == 0, stdout
    table = read_table(out / "table.csv")
    assert list(table.columns[:6]) == ["sample_index", "arch", "space", "gt_row", "init_seed", "params"]
    assert table["params"].tolist() == params and table["gt_row"].tolist() == list(range(20))
    summary = json.loads((out / "summary.json").read_text())
    assert summary["acc_up"]["spearman"]["params"] == pytest.approx(1.0)
    assert summary["acc_down"]["spearman"]["params"] == pytest.approx(-1.0)
    assert summary["acc_up"]["libra_choice"][0] == "params"
    for acc in ("acc_up", "acc_down"):
        assert (out / f"report_{acc}" / "report.md").exists()
        assert (out / f"report_{acc}" / "scatter_params.png").exists()
    report = (out / "report.md").read_text()
    assert "LIBRA held-out" in report and "`acc_up`" in report and "`acc_down`" in report


def test_custom_json_records_with_dict_archs(capsys, tmp_path, shared_data_dir):
    """A JSON list of records keeps dict architectures (Auto-Prox style, hidden_dim for embed_dim) intact."""
    space = get_space("autoformer_mini")
    specs = [space.sample(i) for i in range(3)]
    records = [
        {
            "arch": {
                "hidden_dim": s.embed_dim,
                "depth": s.depth,
                "mlp_ratio": list(s.mlp_ratio),
                "num_heads": list(s.num_heads),
            },
            "top1": 50.0 + i,
        }
        for i, s in enumerate(specs)
    ]
    records.append(dict(records[0]))  # a duplicate row: same arch, same init seed, same values
    gt_file = tmp_path / "gt.json"
    gt_file.write_text(json.dumps(records))
    out = tmp_path / "vit"
    code, stdout, _ = _run(
        capsys,
        [
            "custom",
            "--space",
            "autoformer_mini",
            "--gt",
            gt_file,
            "--arch-column",
            "arch",
            "--accuracy-column",
            "top1",
            "--proxies",
            "params",
            "swap",
            "--out",
            out,
            "--no-report",
            "--no-progress",
            "--data-dir",
            shared_data_dir,
        ],
    )
    assert code == 0, stdout
    table = read_table(out / "table.csv")
    assert table["arch"].tolist()[:3] == [space.encode(s) for s in specs]
    assert table["params"].tolist()[:3] == [space.param_count(s) for s in specs]
    assert (
        _without_timing(table)
        .drop(columns=["sample_index", "gt_row"])
        .iloc[3]
        .equals(_without_timing(table).drop(columns=["sample_index", "gt_row"]).iloc[0])
    )


def test_custom_bad_table_names_the_row(capsys, tmp_path, shared_data_dir):
    gt_file = tmp_path / "gt.csv"
    pd.DataFrame(
        {"cell": [index_to_arch(0), "|bogus~0|+|none~0|none~1|+|none~0|none~1|none~2|"], "acc": [1.0, 2.0]}
    ).to_csv(gt_file, index=False)
    base = ["custom", "--space", "nb201", "--gt", gt_file, "--out", tmp_path / "o", "--arch-column"]
    code, _, err = _run(capsys, [*base, "cell", "--accuracy-column", "acc"])
    assert code == 2 and "row 1" in err and "unknown op 'bogus'" in err
    code, _, err = _run(capsys, [*base, "cell", "--accuracy-column", "accuracy"])
    assert code == 2 and "'accuracy' not found" in err
    pd.DataFrame({"cell": [index_to_arch(0), index_to_arch(1)], "acc": ["91.2", "ninety"]}).to_csv(gt_file, index=False)
    code, _, err = _run(capsys, [*base, "cell", "--accuracy-column", "acc", *TINY])
    assert code == 2 and "non-numeric values (row 1: 'ninety')" in err


def test_sampling_is_seeded_and_bounded(shared_data_dir):
    gt = load_nb201_ground_truth(shared_data_dir)
    a, b = sample_ground_truth(gt, 10, 1), sample_ground_truth(gt, 10, 1)
    assert a.table.equals(b.table) and not a.table.equals(sample_ground_truth(gt, 10, 2).table)
    assert a.table["nb201_index"].is_unique
    val = load_nb201_ground_truth(shared_data_dir, "naslib_val")
    assert len(val) == 723 and val.accuracy_columns[:3] == [
        "cifar10_val_acc",
        "cifar100_val_acc",
        "imagenet16_120_val_acc",
    ]
    assert (val.table["arch"] == [index_to_arch(int(i)) for i in val.table["nb201_index"]]).all()


def test_cli_runs_without_hydra_wandb_or_lightning(tmp_path, shared_data_dir):
    """The GPU-machine case: only torch/timm/pandas/scipy/matplotlib/tqdm; hydra, wandb and Lightning absent."""
    code = f"""
import sys
for name in ("hydra", "omegaconf", "wandb", "lightning", "pytorch_lightning"):
    sys.modules[name] = None  # any import of these now raises ImportError
from lswag_lightning.cli.bench import main
from lswag_lightning.probe import probe_batch
import lswag_lightning.cli.layers, lswag_lightning.intervals, lswag_lightning.analysis.report
sys.exit(main(["nb201", "--sample", "2", "--out", {str(tmp_path / "o")!r}, "--proxies", "params",
               "--no-report", "--no-progress", "--device", "cpu", "--data-dir", {str(shared_data_dir)!r},
               "--build-option", "C=8", "--build-option", "N=1"]))
"""
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=Path(__file__).resolve().parent.parent,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert len(read_table(tmp_path / "o" / "table.csv")) == 2


def test_rank_duplicates_keep_params_and_main_names():
    from lswag_lightning.bench import rank_duplicates

    x = np.array([3.0, 1.0, 2.0, 5.0, np.nan])
    table = pd.DataFrame(
        {
            "flops": 7 * x,
            "params": x,
            "lswag.psi": x**3,
            "swap": x + 1,
            "zico": -x,
            "naswot": np.array([3.0, 1.0, 2.0, 5.0, 0.0]),
        }
    )
    dups = rank_duplicates(table, ["flops", "lswag.psi", "naswot", "params", "swap", "zico"])
    # flops ranks exactly as params; lswag.psi as params too (kept: params, then the main names first)
    assert dups == {"flops": "params", "swap": "params", "lswag.psi": "params"}


# ------------------------------------------------------------------------- NAS-Bench-Suite-Zero NB101 / NB301
@pytest.mark.parametrize(
    "benchmark, space, n, ids", [("nb101", "nb101", 500, ["gt_row"]), ("nb301", "darts", 725, ["gt_row", "naslib_idx"])]
)
def test_naslib_ground_truth_keeps_the_file_keys_and_accuracies(shared_data_dir, benchmark, space, n, ids):
    from lswag_lightning.bench import benchmark_ground_truth

    gt = benchmark_ground_truth(benchmark, shared_data_dir)
    assert gt.space == space and len(gt) == n and gt.id_columns == ids
    assert gt.accuracy_columns == ["cifar10_val_acc"]
    raw = json.loads((shared_data_dir / f"naslib_zc_subsets/zc_nasbench{benchmark[2:]}_subset.json").read_text())
    cells = raw["nasbench101"]["cifar10"] if benchmark == "nb101" else raw["cifar10"]
    assert gt.table["arch"].tolist() == list(cells)  # the keys exactly as in the file, in file order
    assert gt.table["cifar10_val_acc"].tolist() == [r["val_accuracy"] for r in cells.values()]
    assert gt.table["gt_row"].tolist() == list(range(n))


def test_nb301_run_scores_the_published_networks(capsys, tmp_path, shared_data_dir):
    from lswag_lightning.bench import benchmark_ground_truth

    out = tmp_path / "nb301"
    code, stdout, _ = _run(
        capsys,
        [
            "nb301",
            "--sample",
            2,
            "--seed",
            0,
            "--out",
            out,
            "--proxies",
            "params",
            "synflow",
            "--no-report",
            "--no-progress",
            "--threads",
            "1",
            "--data-dir",
            shared_data_dir,
        ],
    )
    assert code == 0, stdout
    table = read_table(out / "table.csv")
    assert list(table.columns[:6]) == ["sample_index", "arch", "space", "gt_row", "naslib_idx", "init_seed"]
    gt = benchmark_ground_truth("nb301", shared_data_dir).table
    rows = np.random.default_rng(0).choice(725, size=2, replace=False)
    assert table["arch"].tolist() == gt["arch"].iloc[rows].tolist()
    # the NB301 network preset (C=32, 8 cells, op BatchNorms without weights) gives the file's params
    assert table["params"].tolist() == gt["published_params"].iloc[rows].tolist()
    assert (table["status"] == "ok").all() and table["space"].eq("darts").all()
    settings = json.loads((out / "bench.json").read_text())["settings"]
    assert settings["build_options"]["C"] == 32 and settings["build_options"]["op_affine"] is False
