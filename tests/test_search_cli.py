"""``lswag-search``: argument errors, configs, an end-to-end tiny run with resume, the --train-top hand-off."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from lswag_lightning.cli import search as cli
from lswag_lightning.search.config import available_search_configs, load_search_config
from lswag_lightning.spaces import get_space

# A 3-cell NB201 network on 8-px digits: a few milliseconds per architecture with cheap proxies.
BASE = [
    "nb201",
    "--probe-data",
    "digits",
    "--img-size",
    "8",
    "--batch-size",
    "16",
    "--build-option",
    "C=4",
    "--build-option",
    "N=1",
    "--population",
    "3",
    "--tournament",
    "2",
    "--no-progress",
    "--device",
    "cpu",
]
TINY = [*BASE, "--fitness", "synflow", "--proxies", "params"]


def run_cli(capsys, argv):
    """(exit code, stdout, stderr) of ``lswag-search argv``."""
    try:
        code = cli.main(argv)
    except SystemExit as exc:
        code = exc.code
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.mark.parametrize(
    "argv,message",
    [
        (["--out", "X"], "give the search space"),
        (["nb202", "--out", "X"], "unknown search space 'nb202'. Did you mean 'nb201'"),
        (["nb201", "--fitness", "libra", "--out", "X"], "needs its proxies: --libra-proxies a,b,c or --libra-result"),
        (["nb201", "--fitness", "lswag", "--libra-proxies", "a,b,c", "--out", "X"], "only apply to --fitness libra"),
        (
            ["nb201", "--fitness", "libra", "--libra-proxies", "lswag,zico", "--libra-result", "r.json", "--out", "X"],
            "not both",
        ),
        (["nb201", "--fitness", "lswg", "--out", "X"], "unknown proxy 'lswg'"),
        (["nb201", "--fitness", "fused", "--out", "X"], "needs its proxies: --fused-proxies"),
        (["nb201", "--fitness", "fused", "--fused-proxies", "synflow", "--out", "X"], "two or more proxies"),
        (
            ["nb201", "--fitness", "lswag", "--fused-proxies", "synflow,naswot", "--out", "X"],
            "--fused-proxies only applies to --fitness fused",
        ),
        (["nb201", "--population", "5", "--tournament", "8", "--out", "X"], "must be <= population"),
        (["nb201", "--max-params", "lots", "--out", "X"], "expected a number such as 23e6"),
        (["nb201", "--budget", "0", "--out", "X"], "must be an integer >= 1"),
        (["nb201"], "the following arguments are required: --out"),
        (["--config", "nb2001", "--out", "X"], "unknown search config 'nb2001'. Did you mean 'nb201'"),
        (["darts", "--config", "nb201", "--out", "X"], "differs from the space 'nb201' of --config"),
        (["nb201", "--table-only", "--probe-data", "digits", "--out", "X"], "--table-only needs --score-table"),
        (["nb201", "--layer-interval", "3", "--out", "X"], "argument --layer-interval: takes two depth bins"),
    ],
)
def test_argument_errors_exit_2_with_a_message(capsys, argv, message):
    code, _, err = run_cli(capsys, argv)
    assert code == 2
    assert message in err


def test_impossible_parameter_budget_exits_2_naming_the_smallest_model(capsys, tmp_path):
    code, _, err = run_cli(
        capsys,
        [*TINY, "--budget", "3", "--max-params", "1000", "--max-failed-proposals", "200", "--out", str(tmp_path)],
    )
    assert code == 2
    assert "no architecture of nb201 meets the constraints" in err and "smallest seen" in err
    assert not (tmp_path / "checkpoint.json").exists()


def test_tiny_search_writes_outputs_and_resumes(capsys, tmp_path):
    code, out, _ = run_cli(capsys, [*TINY, "--budget", "6", "--seed", "1", "--out", str(tmp_path)])
    assert code == 0 and "6 architectures scored" in out
    for name in ("ranked.csv", "report.md", "fitness.png", "summary.json", "checkpoint.json"):
        assert (tmp_path / name).is_file()
    ranked = pd.read_csv(tmp_path / "ranked.csv")
    assert list(ranked.columns[:6]) == ["rank", "arch", "params", "fitness", "synflow", "params_proxy"]
    assert ranked["fitness"].is_monotonic_decreasing and len(ranked) == 6
    assert (ranked["params"] == ranked["params_proxy"]).all()
    report = (tmp_path / "report.md").read_text()
    assert "Fitness = the zero-cost proxy `synflow`" in report and "6 of 6 architectures scored" in report
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["best"]["arch"] == ranked["arch"][0]
    # the same command with a larger budget continues from the checkpoint
    code, out, _ = run_cli(capsys, [*TINY, "--budget", "9", "--seed", "1", "--out", str(tmp_path)])
    assert code == 0 and "resuming" in out and "6 of 9 evaluations done" in out
    longer = pd.read_csv(tmp_path / "ranked.csv")
    assert len(longer) == 9 and set(ranked["arch"]) <= set(longer["arch"])
    # changing a setting is refused unless --restart
    code, _, err = run_cli(capsys, [*TINY, "--budget", "9", "--seed", "2", "--out", str(tmp_path)])
    assert code == 2 and "settings.seed" in err
    code, _, _ = run_cli(capsys, [*TINY, "--budget", "4", "--seed", "2", "--out", str(tmp_path), "--restart"])
    assert code == 0 and len(pd.read_csv(tmp_path / "ranked.csv")) == 4


def test_libra_fitness_through_the_cli(capsys, tmp_path):
    code, _, _ = run_cli(
        capsys,
        [
            *BASE,
            "--fitness",
            "libra",
            "--libra-proxies",
            "synflow,params,naswot",
            "--budget",
            "5",
            "--out",
            str(tmp_path),
        ],
    )
    assert code == 0
    ranked = pd.read_csv(tmp_path / "ranked.csv")
    fused = sum(ranked[c].rank() / len(ranked) for c in ("synflow", "params_proxy", "naswot")) / 3
    pd.testing.assert_series_equal(ranked["fitness"], fused, check_names=False)
    assert "LIBRA fusion of `synflow`, `params`, `naswot`" in (tmp_path / "report.md").read_text()


def test_fused_fitness_of_four_proxies_through_the_cli(capsys, tmp_path):
    """--fitness fused: a log-rank sum of a set larger than LIBRA's trio, ranked among every arch scored so far."""
    code, _, _ = run_cli(
        capsys,
        [
            *BASE,
            "--fitness",
            "fused",
            "--fused-proxies",
            "synflow,params,naswot,jacov",
            "--budget",
            "5",
            "--out",
            str(tmp_path),
        ],
    )
    assert code == 0
    ranked = pd.read_csv(tmp_path / "ranked.csv")
    fused = sum(np.log(ranked[c].rank() / len(ranked)) for c in ("synflow", "params_proxy", "naswot", "jacov"))
    np.testing.assert_allclose(ranked["fitness"], fused)
    assert "rank fusion of `synflow`, `params`, `naswot`, `jacov`" in (tmp_path / "report.md").read_text()
    assert json.loads((tmp_path / "summary.json").read_text())["fitness"]["type"] == "fused"


# ------------------------------------------------------------------------------------------------ configs
@pytest.mark.parametrize("name", ["autoformer_s", "autoformer_mini", "nb201", "darts"])
def test_shipped_configs_load_and_resolve(name, tmp_path):
    assert name in available_search_configs()
    cfg = load_search_config(name)
    assert cfg["space"] == name
    parser = cli.build_parser()
    opts = cli.resolve_options(vars(parser.parse_args(["--config", name, "--out", str(tmp_path)])), parser)
    space = get_space(opts.space)
    spec = space.sample(0)
    assert space.param_count(spec, **opts.build_options) > 0
    if name == "autoformer_s":
        assert opts.max_params == 23e6 and opts.build_options["img_size"] == 224
        assert opts.build_options["num_classes"] == 1000 and opts.build_options["patch_size"] == 16
        counts = [space.param_count(space.sample(s), **opts.build_options) for s in range(40)]
        assert min(counts) < 23e6 < max(counts)  # the 23M budget cuts through the space


def test_the_shipped_nb201_config_searches_with_the_fused_fitness(tmp_path):
    from lswag_lightning.search import make_fitness
    from lswag_lightning.search.fitness import FusedFitness

    parser = cli.build_parser()

    def fitness_of(*argv):
        opts = cli.resolve_options(
            vars(parser.parse_args(["--config", "nb201", *argv, "--out", str(tmp_path)])), parser
        )
        return make_fitness(
            opts.fitness,
            libra_proxies=opts.libra_proxies,
            libra_result=opts.libra_result,
            fusion=opts.fusion,
            fused_proxies=opts.fused_proxies,
        )

    fused = fitness_of()
    assert isinstance(fused, FusedFitness) and fused.method == "log_rank"
    assert fused.proxies == ("vkdnw_single", "jacov", "az_expressivity", "az_trainability", "flops", "synflow")
    # another fitness on the command line leaves the config's set and fusion behind
    assert fitness_of("--fitness", "lswag").proxies == ("lswag",)
    libra = fitness_of("--fitness", "libra", "--libra-proxies", "lswag,naswot,flops")
    assert libra.proxies == ("lswag", "naswot", "flops") and libra.method == "rank_mean"


def test_command_line_beats_config(tmp_path):
    parser = cli.build_parser()
    opts = cli.resolve_options(
        vars(
            parser.parse_args(
                ["--config", "nb201", "--budget", "7", "--fitness", "zico", "--img-size", "16", "--out", str(tmp_path)]
            )
        ),
        parser,
    )
    assert opts.budget == 7 and opts.fitness == "zico" and opts.build_options["img_size"] == 16
    assert opts.population == 50 and opts.build_options["C"] == 16  # config and conf/space defaults


# ---------------------------------------------------------------------------------------------- hand-off
def _parse_override(text):
    from hydra.core.override_parser.overrides_parser import OverridesParser

    override = OverridesParser.create().parse_override(text)
    return override.key_or_group, override.value()


def test_train_top_launches_one_lswag_train_job_per_winner(capsys, tmp_path, monkeypatch):
    calls = []

    def fake_run(cmd, stdout=None, stderr=None, check=False, timeout=None):
        calls.append(list(cmd))
        run_dir = [a for a in cmd if a.startswith("hydra.run.dir=")][0].split("=", 1)[1]
        with open(f"{run_dir}/result.json", "w") as fh:
            json.dump({"status": "ok"}, fh)
        return subprocess.CompletedProcess(cmd, 0)

    monkeypatch.setattr("lswag_lightning.search.handoff.subprocess.run", fake_run)
    code, out, _ = run_cli(
        capsys,
        [
            *TINY,
            "--budget",
            "5",
            "--out",
            str(tmp_path),
            "--train-top",
            "2",
            "--train-override",
            "trainer.max_epochs=1",
        ],
    )
    assert code == 0 and len(calls) == 2
    ranked = pd.read_csv(tmp_path / "ranked.csv")
    for k, cmd in enumerate(calls, start=1):
        assert cmd[:3] == [sys.executable, "-m", "lswag_lightning.cli.train"]
        overrides = dict(_parse_override(a) for a in cmd[3:])
        assert overrides["space"] == "nb201" and overrides["data"] == "digits"
        assert overrides["candidate.arch"] == ranked["arch"][k - 1]
        assert overrides["trainer.max_epochs"] == 1
        assert overrides["hydra.run.dir"] == str(tmp_path / "train" / f"rank{k:02d}")
    jobs = json.loads((tmp_path / "train_jobs.json").read_text())
    assert [j["returncode"] for j in jobs] == [0, 0] and all(j["result_json"] for j in jobs)
    assert "lswag-collect" in out and "lswag-train -m space=nb201" in out


def test_train_top_reports_a_failed_job_and_dry_run_runs_nothing(capsys, tmp_path, monkeypatch):
    monkeypatch.setattr(
        "lswag_lightning.search.handoff.subprocess.run", lambda cmd, **kw: subprocess.CompletedProcess(cmd, 1)
    )
    code, out, _ = run_cli(capsys, [*TINY, "--budget", "4", "--out", str(tmp_path), "--train-top", "1"])
    assert code == 1 and "FAILED (exit 1" in out

    def boom(*a, **kw):
        raise AssertionError("dry run must not launch anything")

    monkeypatch.setattr("lswag_lightning.search.handoff.subprocess.run", boom)
    code, out, _ = run_cli(
        capsys, [*TINY, "--budget", "4", "--out", str(tmp_path), "--train-top", "2", "--train-dry-run"]
    )
    assert code == 0 and out.count("lswag_lightning.cli.train space=nb201") == 2


def test_hydra_quoting_round_trips_every_space_encoding():
    from lswag_lightning.search.handoff import hydra_quote

    for name in ("nb201", "autoformer_mini", "darts"):
        space = get_space(name)
        arch = space.encode(space.sample(3))
        key, value = _parse_override(f"candidate.arch={hydra_quote(arch)}")
        assert value == arch
        assert space.encode(space.decode(value)) == arch
    with pytest.raises(ValueError, match="interpolation"):
        hydra_quote("${oops}")


@pytest.mark.slow
def test_real_train_hand_off_writes_result_json(capsys, tmp_path):
    """One real lswag-train job (1 epoch on digits) for the best of a tiny autoformer_mini search."""
    code, out, _ = run_cli(
        capsys,
        [
            "autoformer_mini",
            "--probe-data",
            "digits",
            "--img-size",
            "16",
            "--budget",
            "3",
            "--population",
            "2",
            "--tournament",
            "1",
            "--fitness",
            "synflow",
            "--no-progress",
            "--device",
            "cpu",
            "--out",
            str(tmp_path),
            "--train-top",
            "1",
            "--train-override",
            "trainer.max_epochs=1",
            "--train-override",
            "logger=none",
        ],
    )
    assert code == 0, out
    record = json.loads((tmp_path / "train" / "rank01" / "result.json").read_text())
    ranked = pd.read_csv(tmp_path / "ranked.csv")
    assert record["status"] == "ok" and record["arch"] == ranked["arch"][0]
    assert record["params"] == ranked["params"][0]


def test_score_table_lookups_never_read_accuracy_columns(capsys, tmp_path):
    import itertools

    from lswag_lightning.spaces.nb201 import OPS, arch_string

    archs = [arch_string(o) for o in itertools.product(OPS, repeat=6)]
    table = pd.DataFrame(
        {
            "arch": archs,
            "synflow": [float(a.count("conv_3x3") * 10 + a.count("skip")) for a in archs],
            "cifar10_test_acc": range(len(archs)),
        }
    )
    path = tmp_path / "table.csv"
    table.to_csv(path, index=False)
    out = tmp_path / "out"
    code, _, _ = run_cli(
        capsys,
        [
            "nb201",
            "--score-table",
            str(path),
            "--table-only",
            "--fitness",
            "synflow",
            "--budget",
            "30",
            "--population",
            "10",
            "--tournament",
            "3",
            "--no-progress",
            "--out",
            str(out),
        ],
    )
    assert code == 0
    ranked = pd.read_csv(out / "ranked.csv")
    assert "cifar10_test_acc" not in ranked.columns and set(ranked["source"]) == {"table"}
    expected = table.set_index("arch").loc[ranked["arch"], "synflow"].to_numpy()
    assert (ranked["synflow"].to_numpy() == expected).all()


def test_score_tables_supply_what_they_hold_and_the_rest_is_scored_live(capsys, tmp_path):
    """Two tables (synflow in the first, naswot in the second for a few cells only) and params scored live: each
    value comes from where it is, an arch the second table lacks is scored live, --table-only names what is missing."""
    import itertools

    from lswag_lightning.spaces.nb201 import OPS, arch_string

    archs = [arch_string(o) for o in itertools.product(OPS, repeat=6)]
    synflow = pd.DataFrame({"arch": archs, "synflow": [float(a.count("conv_3x3")) for a in archs]})
    first, second = tmp_path / "synflow.csv", tmp_path / "naswot.csv"
    synflow.to_csv(first, index=False)
    pd.DataFrame({"arch": archs[:3], "naswot": [1.0, 2.0, 3.0]}).to_csv(second, index=False)
    out = tmp_path / "out"
    code, _, err = run_cli(
        capsys,
        [
            *BASE,
            "--score-table",
            str(first),
            str(second),
            "--fitness",
            "fused",
            "--fused-proxies",
            "synflow,naswot,params",
            "--budget",
            "5",
            "--out",
            str(out),
        ],
    )
    assert code == 0, err
    ranked = pd.read_csv(out / "ranked.csv").set_index("arch")
    assert (ranked["synflow"] == synflow.set_index("arch").loc[ranked.index, "synflow"]).all()
    assert (ranked["params"] == ranked["params_proxy"]).all()  # scored live: the built network's count
    code, _, err = run_cli(
        capsys,
        [
            *BASE,
            "--score-table",
            str(first),
            "--table-only",
            "--fitness",
            "fused",
            "--fused-proxies",
            "synflow,params",
            "--budget",
            "5",
            "--out",
            str(tmp_path / "t"),
        ],
    )
    assert code == 2 and "no score table holds ['params']" in err


def test_score_cache_is_shared_between_runs(capsys, tmp_path):
    cache = tmp_path / "cache"
    code, _, _ = run_cli(
        capsys,
        [*TINY, "--budget", "4", "--strategy", "random", "--score-cache", str(cache), "--out", str(tmp_path / "a")],
    )
    assert code == 0
    code, _, _ = run_cli(
        capsys,
        [
            *TINY,
            "--budget",
            "4",
            "--strategy",
            "random",
            "--score-cache",
            str(cache),
            "--fitness",
            "params",
            "--proxies",
            "synflow",
            "--out",
            str(tmp_path / "b"),
        ],
    )
    assert code == 0
    a, b = pd.read_csv(tmp_path / "a" / "ranked.csv"), pd.read_csv(tmp_path / "b" / "ranked.csv")
    assert set(b["source"]) == {"cache"} and set(a["arch"]) == set(b["arch"])


def test_a_second_search_on_the_same_output_folder_is_refused(capsys, tmp_path):
    """Two searches writing one --out would overwrite each other's checkpoint: while one holds it, another stops."""
    from lswag_lightning.bench import exclusive_run

    with exclusive_run(tmp_path):  # another open file description: conflicts as another process would
        code, _, err = run_cli(capsys, [*TINY, "--budget", "2", "--out", str(tmp_path)])
    assert code == 2 and "being written by another lswag-search process" in err
    assert not (tmp_path / "checkpoint.json").exists()
    code, out, _ = run_cli(capsys, [*TINY, "--budget", "2", "--out", str(tmp_path)])  # released: it goes ahead
    assert code == 0 and "2 architectures scored" in out
