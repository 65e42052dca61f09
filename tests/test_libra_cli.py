"""The lswag-libra command line."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from lswag_lightning.analysis import table as table_mod
from lswag_lightning.cli.libra import main


@pytest.fixture(autouse=True)
def _no_registry(monkeypatch):
    monkeypatch.setattr(table_mod, "registry_higher_is_better", lambda name: None)


def _write(tmp_path, n: int = 60):
    rng = np.random.default_rng(0)
    u, v = rng.normal(size=(2, n))
    t = pd.DataFrame(
        {
            "arch": [f"n{i}" for i in range(n)],
            "n_params": 1e6 * np.exp(u + v),
            "alpha": u + 0.2 * rng.normal(size=n),
            "beta": u + 0.3 * rng.normal(size=n),
            "gamma": u + 0.4 * rng.normal(size=n),
            "delta": rng.normal(size=n),
            "acc": 60 + 10 * u,
        }
    )
    path = tmp_path / "toy.csv"
    t.to_csv(path, index=False)
    return path


def test_cli_prints_choice_and_writes_report(tmp_path, capsys):
    path = _write(tmp_path)
    code = main(
        [
            str(path),
            "--accuracy",
            "acc",
            "--params",
            "n_params",
            "--proxies",
            "alpha",
            "beta",
            "gamma",
            "delta",
            "--splits",
            "3",
            "--n-boot",
            "50",
            "--window",
            "0.2",
        ]
    )
    assert code == 0
    out = capsys.readouterr().out
    assert "LIBRA selection" in out and "alpha" in out and "Held-out Spearman over 3 random splits" in out
    assert "best single proxy" in out and "AZ-NAS" in out
    report = tmp_path / "toy_libra" / "report.md"
    assert report.is_file() and "| alpha |" in report.read_text()


def test_cli_default_proxies_and_options(tmp_path, capsys):
    path = _write(tmp_path)
    out_dir = tmp_path / "custom"
    assert (
        main(
            [
                str(path),
                "--accuracy",
                "acc",
                "--params",
                "n_params",
                "--splits",
                "2",
                "--fusion",
                "log_rank",
                "--lower-is-better",
                "delta",
                "--out",
                str(out_dir),
                "--no-report",
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "proxies (5): n_params, alpha, beta, gamma, delta" in out and "LIBRA (log_rank)" in out
    assert not out_dir.exists()


@pytest.mark.parametrize(
    "args, message",
    [
        (["--accuracy", "top1", "--params", "n_params"], "'top1'"),
        (["--accuracy", "acc", "--params", "n_params", "--proxies", "alpha", "zico"], "'zico'"),
        (["--accuracy", "acc"], "'params'"),
        (["--accuracy", "acc", "--params", "n_params", "--window", "-1"], "--window"),
        (["--accuracy", "acc", "--params", "n_params", "--fusion", "product"], "--fusion"),
        (["--accuracy", "acc", "--params", "n_params", "--fit-fraction", "1.5"], "--fit-fraction"),
    ],
)
def test_cli_bad_arguments_exit_2(tmp_path, capsys, args, message):
    path = _write(tmp_path)
    with pytest.raises(SystemExit) as exc:
        main([str(path), *args])
    assert exc.value.code == 2
    assert message in capsys.readouterr().err


def test_cli_where_filters_rows(tmp_path, capsys):
    path = _write(tmp_path, 80)
    t = pd.read_csv(path)
    t["dataset"] = ["a", "b"] * 40
    t.to_csv(path, index=False)
    assert (
        main(
            [
                str(path),
                "--accuracy",
                "acc",
                "--params",
                "n_params",
                "--where",
                "dataset=a",
                "--splits",
                "2",
                "--no-report",
            ]
        )
        == 0
    )
    assert "(40 rows)" in capsys.readouterr().out
    with pytest.raises(SystemExit) as exc:
        main([str(path), "--accuracy", "acc", "--params", "n_params", "--where", "split=a"])
    assert exc.value.code == 2 and "'split'" in capsys.readouterr().err


def test_cli_missing_table_exit_2(tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        main([str(tmp_path / "none.csv"), "--accuracy", "acc"])
    assert exc.value.code == 2 and "none.csv" in capsys.readouterr().err
