"""Every command on a family YAML file outside the package, as a user writes it: their own module in a folder of
their own, the issue's minimal file (``_target_``, ``fixed``, ``choices``) with ``python_path: [.]`` beside it.

The commands run through their console-script entries (``main(argv)``; ``lswag-train`` as a subprocess, the way a
user runs it, and in-process for its usage errors): ``lswag-search``, ``lswag-bench custom``, an ``lswag-train``
sweep (``space=<file>`` with ``candidate.index``; ``--config-dir DIR space=<name>`` with ``candidate.arch``),
``lswag-collect`` on the sweep, ``lswag-libra`` on its table and ``lswag-search --train-top``. Every mistake a file
can hold is a usage error of each command: exit 2, one line naming the key.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from lswag_lightning.cli import bench as bench_cli
from lswag_lightning.cli import collect as collect_cli
from lswag_lightning.cli import libra as libra_cli
from lswag_lightning.cli import search as search_cli
from lswag_lightning.cli import train as train_cli
from lswag_lightning.job.space_config import family_file_overrides
from lswag_lightning.spaces import load_space

USER_MODULE = '''
"""A user's own family: plain PyTorch, nothing from lswag_lightning."""
import torch
from torch import nn


class MyNet(nn.Module):
    def __init__(self, depth: int, width: int, num_classes: int = 10, in_chans: int = 3) -> None:
        super().__init__()
        if width % 4:
            raise ValueError(f"width must be a multiple of 4, got {width}")
        layers = [nn.Conv2d(in_chans, width, 3, padding=1), nn.ReLU()]
        for _ in range(depth - 1):
            layers += [nn.Conv2d(width, width, 3, padding=1), nn.ReLU()]
        self.features = nn.Sequential(*layers)
        self.head = nn.Linear(width, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x).mean(dim=(2, 3)))
'''

# The minimal file, with the line the docs tell a user to add for a module beside the file.
FAMILY = """\
_target_: userfam.nets.MyNet          # any importable callable returning an nn.Module
python_path: [.]                      # this folder on the import path while the space imports and builds
fixed: {num_classes: 10}
choices:
  depth: [2, 3, 4]
  width: [16, 32, 64]
"""

# a job of a few batches on digits, three cheap proxies
QUICK = [
    "data=digits",
    "trainer.max_epochs=1",
    "trainer.limit_train_batches=2",
    "trainer.limit_val_batches=1",
    "trainer.limit_test_batches=1",
    "callbacks.zero_cost.batch_size=32",
    "callbacks.zero_cost.proxies=[lswag,naswot,synflow,params]",
    "logger=none",
]
SEARCH_TINY = ["--probe-data", "digits", "--img-size", "8", "--batch-size", "16", "--no-progress", "--device", "cpu"]


def write_user_folder(root: Path, family: str = FAMILY, name: str = "my_family.yaml") -> Path:
    """The user's folder: ``userfam/nets.py`` and the family file; returns the file."""
    (root / "userfam").mkdir(parents=True, exist_ok=True)
    (root / "userfam" / "__init__.py").write_text("")
    (root / "userfam" / "nets.py").write_text(USER_MODULE)
    path = root / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(family)
    return path


@pytest.fixture(scope="module")
def family(tmp_path_factory) -> Path:
    return write_user_folder(tmp_path_factory.mktemp("user"))


def run_main(main, argv, capsys) -> tuple[int, str, str]:
    """(exit code, stdout, stderr) of a console script's ``main(argv)``."""
    try:
        code = main([str(a) for a in argv])
    except SystemExit as exc:
        code = exc.code
    out = capsys.readouterr()
    return code, out.out, out.err


def run_train(args, cwd: Path, extra_env: dict | None = None, timeout: int = 400) -> subprocess.CompletedProcess:
    """``lswag-train ARGS`` as a subprocess of this interpreter (``PYTHONPATH`` kept: the code under test)."""
    env = dict(os.environ, WANDB_MODE="offline", WANDB_SILENT="true", HYDRA_FULL_ERROR="0", **(extra_env or {}))
    cmd = [sys.executable, "-m", "lswag_lightning.cli.train", *map(str, args)]
    return subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


# ------------------------------------------------------------------------------------------- lswag-search
def test_search_on_the_file_ranks_its_candidates(family, tmp_path, capsys):
    out = tmp_path / "search"
    argv = [family, "--budget", "5", "--fitness", "params", "--population", "3", "--tournament", "2", *SEARCH_TINY]
    code, stdout, err = run_main(search_cli.main, [*argv, "--out", out], capsys)
    assert code == 0, err
    ranked = pd.read_csv(out / "ranked.csv")
    space = load_space(family)
    assert 3 <= len(ranked) <= 5 and ranked["arch"].is_unique
    for arch, params in zip(ranked["arch"], ranked["params"]):
        assert params == space.param_count(space.decode(arch), num_classes=10, img_size=8)
    assert list(ranked["params"]) == sorted(ranked["params"], reverse=True)  # fitness params: most first
    assert ranked["arch"].iloc[0] in stdout


# -------------------------------------------------------------------------------------- lswag-bench custom
def test_bench_custom_takes_ground_truth_keyed_by_the_space_keys(family, tmp_path, capsys, shared_data_dir):
    space = load_space(family)
    archs = [f"depth={d},width={w}" for d in (2, 3, 4) for w in (16, 32, 64)]
    gt = tmp_path / "accs.csv"
    pd.DataFrame({"arch": archs, "acc": np.linspace(50.0, 90.0, len(archs))}).to_csv(gt, index=False)
    out = tmp_path / "bench"
    argv = ["custom", "--space", family, "--gt", gt, "--arch-column", "arch", "--accuracy-column", "acc"]
    argv += ["--proxies", "naswot", "params", "--img-size", "8", "--no-progress", "--n-boot", "50", "--out", out]
    code, _, err = run_main(bench_cli.main, argv, capsys)
    assert code == 0, err
    table = pd.read_csv(out / "table.csv")
    assert list(table["arch"]) == archs and (table["status"] == "ok").all()
    assert list(table["acc"]) == pytest.approx(list(np.linspace(50.0, 90.0, len(archs))))
    assert [space.param_count(space.decode(a), num_classes=10, img_size=8) for a in archs] == list(table["params"])


# ---------------------------------------------------------------------------------- lswag-train, collect, libra
@pytest.fixture(scope="module")
def sweep(family, tmp_path_factory) -> Path:
    """20 candidates of the family trained for two batches each: ``lswag-train -m space=<file> candidate.index=...``."""
    root = tmp_path_factory.mktemp("sweep")
    proc = run_train(["-m", f"space={family}", "candidate.index=range(0,20)", *QUICK, f"hydra.sweep.dir={root}"], root)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return root


@pytest.mark.slow
def test_train_sweep_over_the_file_trains_the_seeded_candidates(family, sweep):
    space = load_space(family)
    records = [json.loads((sweep / str(i) / "result.json").read_text()) for i in range(20)]
    for i, record in enumerate(records):
        assert record["status"] == "ok", record.get("error")
        assert record["space"] == "my_family" and record["space_file"] == str(family.resolve())
        assert record["arch"] == space.encode(space.sample(np.random.default_rng([0, i])))  # the documented draw
        assert record["params"] == record["params_space"] == record["proxies"]["params"]
        assert 0.0 <= record["val_acc"] <= 1.0 and record["steps"] == 2
    assert len({r["arch"] for r in records}) > 3  # nine combinations, drawn at random


@pytest.mark.slow
def test_collect_then_libra_on_the_sweep(sweep, tmp_path, capsys):
    code, _, err = run_main(collect_cli.main, [sweep, "--out", tmp_path / "collect", "--n-boot", "50"], capsys)
    assert code == 0, err
    table = pd.read_csv(tmp_path / "collect" / "table.csv")
    assert len(table) == 20 and set(table["space"]) == {"my_family"}
    assert {"lswag", "naswot", "synflow", "params", "val_acc"} <= set(table.columns)
    argv = [tmp_path / "collect" / "table.csv", "--accuracy", "val_acc", "--proxies", "lswag", "naswot", "synflow"]
    code, _, err = run_main(libra_cli.main, [*argv, "--no-plots", "--out", tmp_path / "libra"], capsys)
    assert code == 0, err
    libra = json.loads((tmp_path / "libra" / "libra.json").read_text())
    assert libra["n_rows"] == 20 and set(libra["selection"]["proxies"]) <= {"lswag", "naswot", "synflow"}


@pytest.mark.slow
def test_train_from_a_user_config_dir_with_a_key(tmp_path):
    """``--config-dir DIR space=NAME`` composes ``DIR/space/NAME.yaml``; ``python_path`` stays relative to it and an
    override of the composed node (a width the file does not list) reaches the network."""
    family = FAMILY.replace("python_path: [.]", "python_path: [../..]")
    write_user_folder(tmp_path, family, name="conf/space/my_family.yaml")
    out = tmp_path / "job"
    args = ["--config-dir", "conf", "space=my_family", "space.choices.width=[16,8]", 'candidate.arch="depth=3,width=8"']
    proc = run_train([*args, *QUICK, f"hydra.run.dir={out}"], tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    record = json.loads((out / "result.json").read_text())
    assert record["status"] == "ok", record.get("error")
    assert record["space"] == "my_family" and record["arch"] == "depth=3,width=8"
    assert record["space_file"] == str((tmp_path / "conf" / "space" / "my_family.yaml").resolve())
    assert record["candidate"]["by"] == "arch"
    assert record["params"] == 3 * 8 * 9 + 8 + 2 * (8 * 8 * 9 + 8) + 8 * 10 + 10  # counted by hand: 1482


def test_space_values_that_are_files_become_space_file(tmp_path, monkeypatch):
    """What ``lswag-train`` hands Hydra: a family file (a path, or a name in ``$LSWAG_SPACE_PATH``) as
    ``~space +space.file=<absolute path>``; group options, sweeps and every other argument as given."""
    path = write_user_folder(tmp_path, name="fams/space/mine.yaml")
    monkeypatch.setenv("LSWAG_SPACE_PATH", str(tmp_path / "fams"))
    as_file = ["~space", f"+space.file='{path}'"]
    assert family_file_overrides(["space=fams/space/mine.yaml"], cwd=tmp_path) == as_file
    assert family_file_overrides(["space=mine", "candidate.index=3"], cwd=tmp_path) == [*as_file, "candidate.index=3"]
    missing = family_file_overrides(["space=nope.yaml"], cwd=tmp_path)
    assert missing == ["~space", f"+space.file='{tmp_path / 'nope.yaml'}'"]  # the job's error names the search path
    for kept in (["space=nb201"], ["space=examples/timm_vit"], ["space=a.yaml,b.yaml"], ["space.name=mine"]):
        assert family_file_overrides(kept, cwd=tmp_path) == kept
    assert family_file_overrides(["space=mine"], config_dirs=[tmp_path / "fams"], cwd=tmp_path) == ["space=mine"]


# ---------------------------------------------------------------------------------- lswag-search --train-top
@pytest.mark.slow
def test_search_train_top_trains_the_best_of_the_file(family, tmp_path, capsys):
    out = tmp_path / "search"
    argv = [family, "--budget", "4", "--fitness", "params", "--population", "2", "--tournament", "2", *SEARCH_TINY]
    argv += ["--train-top", "2", "--out", out]
    for override in QUICK[1:]:
        argv += ["--train-override", override]
    code, _, err = run_main(search_cli.main, argv, capsys)
    assert code == 0, err
    ranked = pd.read_csv(out / "ranked.csv")
    for rank in (1, 2):
        record = json.loads((out / "train" / f"rank{rank:02d}" / "result.json").read_text())
        assert record["status"] == "ok", record.get("error")
        assert record["space"] == "my_family" and record["arch"] == ranked["arch"].iloc[rank - 1]


# ------------------------------------------------------------------------------------------------- errors
BAD_FAMILIES = {
    "unknown callable": (
        FAMILY.replace("userfam.nets.MyNet", "userfam.nets.MyNett"),
        r"_target_: cannot import 'userfam.nets.MyNett'.*fix the dotted path",
    ),
    "argument not taken": (
        FAMILY + "  colour: [1, 2]\n",
        r"choices.colour: MyNet does not take an argument 'colour'; its arguments: depth, in_chans",
    ),
    "empty choices": (FAMILY.replace("depth: [2, 3, 4]", "depth: []"), r"choices.depth: the list of values is empty"),
    "wrong type": (
        FAMILY.replace("width: [16, 32, 64]", "width: [16.5, 32]"),
        r"choices.width: the value 16.5 does not fit MyNet's annotation int for 'width'",
    ),
    "nothing builds": (
        FAMILY.replace("width: [16, 32, 64]", "width: [6, 10]"),
        r"no combination builds.*width.*width must be a multiple of 4",
    ),
}


@pytest.mark.parametrize("mistake", list(BAD_FAMILIES))
@pytest.mark.parametrize("command", ["lswag-search", "lswag-bench", "lswag-train"])
def test_a_mistake_in_the_file_is_a_one_line_usage_error(mistake, command, tmp_path, capsys, monkeypatch):
    text, message = BAD_FAMILIES[mistake]
    path = write_user_folder(tmp_path, text, name="bad.yaml")
    gt = tmp_path / "accs.csv"
    gt.write_text('arch,acc\n"depth=2,width=16",50\n')
    if command == "lswag-search":
        code, _, err = run_main(search_cli.main, [path, *SEARCH_TINY, "--out", tmp_path / "o"], capsys)
    elif command == "lswag-bench":
        argv = ["custom", "--space", path, "--gt", gt, "--arch-column", "arch", "--accuracy-column", "acc"]
        code, _, err = run_main(bench_cli.main, [*argv, "--out", tmp_path / "o"], capsys)
    else:
        monkeypatch.setattr(sys, "argv", ["lswag-train", f"space={path}", f"hydra.run.dir={tmp_path / 'o'}"])
        code, _, err = run_main(lambda argv: train_cli.main(), [], capsys)
    assert code == 2
    lines = [line for line in err.splitlines() if line.strip()]
    assert lines[-1].startswith(f"{command}: error: ") and "Traceback" not in err
    assert re.search(message, lines[-1]), lines[-1]
    assert not (tmp_path / "o").exists()  # nothing ran


def test_search_config_of_a_shipped_family(tmp_path, capsys):
    """``conf/search/timm_resnet.yaml`` names the shipped family by name; the family's sizes are the defaults."""
    argv = ["--config", "timm_resnet", "--budget", "2", "--fitness", "params", "--population", "2", "--tournament", "2"]
    argv += ["--probe-data", "digits", "--img-size", "16", "--batch-size", "8", "--no-progress", "--out", tmp_path]
    code, _, err = run_main(search_cli.main, argv, capsys)
    assert code == 0, err
    ranked = pd.read_csv(tmp_path / "ranked.csv")
    space = load_space("timm_resnet")
    assert len(ranked) == 2
    for arch, params in zip(ranked["arch"], ranked["params"]):
        assert params == space.param_count(space.decode(arch), num_classes=10, img_size=16) <= 12e6
