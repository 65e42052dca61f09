"""One vocabulary: one word per concept in flag, config key and Python attribute, one reader per kind of value, the
renamed flags and config keys still accepted with a warning, bad values reported as usage errors naming the key."""

from __future__ import annotations

import dataclasses

import pytest
import yaml

from lswag_lightning.cli import bench_options, collect, demo, layers, libra, search_eval
from lswag_lightning.cli import search as search_cli
from lswag_lightning.cli.options import parse_settings
from lswag_lightning.search.config import available_search_configs, load_search_config
from lswag_lightning.search.options import SearchCommand
from lswag_lightning.settings import optioned_fields, parse_value
from lswag_lightning.settings.vocabulary import CONCEPTS

#: every command's settings class and its parser (lswag-train and the sharded bench multirun are Hydra configs)
COMMANDS = {
    "lswag-bench": (bench_options.BenchCommand, bench_options.build_parser),
    "lswag-search": (SearchCommand, search_cli.build_parser),
    "lswag-layers": (layers.LayersCommand, layers.build_parser),
    "lswag-search-eval": (search_eval.SearchEvalCommand, search_eval.build_parser),
    "lswag-collect": (collect.CollectCommand, collect.build_parser),
    "demo": (demo.DemoCommand, demo.build_parser),
    "lswag-libra": (libra.LibraCommand, libra.build_parser),
}
#: the minimal valid command line of each command that scores
MINIMAL = {
    "lswag-bench": ["nb201", "--out", "o"],
    "lswag-search": ["nb201", "--out", "o"],
    "lswag-layers": ["nb201"],
    "lswag-search-eval": ["--out", "o"],
}
#: the words that were renamed: none may be a field name any more
OLD_WORDS = {"data_seed", "data", "num", "candidates", "libra_splits", "label_splits", "score_option", "build_option"}


def settings_of(command, argv):
    cls, build_parser = COMMANDS[command]
    return parse_settings(cls, build_parser(), argv)


def search_settings(argv):
    parser = search_cli.build_parser()
    return search_cli.resolve_options(vars(parser.parse_args(argv)), parser)


# ------------------------------------------------------------------------------------------ KEY=VALUE
@pytest.mark.parametrize(
    "text, value",
    [("1e3", 1000.0), ("8", 8), ("0.5", 0.5), ("true", True), ("null", None), ("[1, 10]", [1, 10]), ("abs", "abs")],
)
def test_one_reader_of_key_value_values(text, value):
    parsed = parse_value(text)
    assert parsed == value and type(parsed) is type(value)


@pytest.mark.parametrize("command", sorted(MINIMAL))
def test_score_option_1e3_is_the_number_1000_in_every_command(command):
    argv = [*MINIMAL[command], "--score-option", "swap_sigma=1e3", "--score-option", "lambda_std=abs"]
    settings = search_settings(argv) if command == "lswag-search" else settings_of(command, argv)
    sigma = settings.score_options["swap_sigma"]
    assert sigma == 1000.0 and isinstance(sigma, float)
    assert settings.score_options["lambda_std"] == "abs"


def test_score_option_1e3_in_a_search_config_and_in_lswag_train():
    from hydra import compose, initialize_config_module

    cfg = yaml.safe_load("space: nb201\nscore_options: {swap_sigma: 1e3}\n")
    assert cfg["score_options"]["swap_sigma"] == "1e3"  # YAML 1.1 reads it as text ...
    assert SearchCommand.from_config(cfg, "x.yaml")["score_options"]["swap_sigma"] == 1000.0  # ... the config: 1000
    with initialize_config_module("lswag_lightning.conf", version_base="1.3"):
        train = compose("train", overrides=["+callbacks.zero_cost.score_options.swap_sigma=1e3"])
    assert train.callbacks.zero_cost.score_options.swap_sigma == 1000.0


@pytest.mark.parametrize("command", sorted(MINIMAL))
def test_a_bad_score_option_value_is_a_usage_error_naming_the_key(command, capsys):
    argv = [*MINIMAL[command], "--score-option", "swap_sigma=abc"]
    with pytest.raises(SystemExit) as exit_info:
        search_settings(argv) if command == "lswag-search" else settings_of(command, argv)
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and "swap_sigma='abc'" in err and "Traceback" not in err


def test_shorthands_set_keys_of_their_mapping_and_the_later_flag_wins():
    s = settings_of("lswag-bench", ["nb201", "--out", "o", "--img-size", "64", "--build-option", "C=8"])
    assert s.build_options == {"img_size": 64, "C": 8}
    s = settings_of("lswag-bench", ["nb201", "--out", "o", "--build-option", "img_size=16", "--img-size", "24"])
    assert s.build_options == {"img_size": 24}
    s = settings_of("lswag-layers", ["nb201", "--layer-interval", "0", "3", "--score-option", "lambda_k=3"])
    assert s.score_options == {"layer_interval": [0, 3], "lambda_k": 3}
    s = settings_of("lswag-bench", ["nb201", "--layer-interval", "all", "--out", "o"])
    assert s.score_options == {"layer_interval": None}  # every layer, recorded as given
    assert search_settings(["nb201", "--layer-interval", "0,3", "--out", "o"]).score_options == {
        "layer_interval": (0, 3)
    }


# -------------------------------------------------------------------------------------- one word per concept
@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_every_shared_concept_is_made_from_the_vocabulary(command):
    cls, _ = COMMANDS[command]
    for f, opt in optioned_fields(cls):
        assert f.name not in OLD_WORDS, f"{command}: {f.name} is a renamed word"
        if f.name in CONCEPTS:
            assert opt.concept is CONCEPTS[f.name], f"{command}: {f.name} is not the shared concept's field"
            assert opt.kind is CONCEPTS[f.name].kind


def test_a_flag_means_one_setting_in_every_command():
    dest_of_flag: dict[str, set[str]] = {}
    for _, build_parser in COMMANDS.values():
        for action in build_parser()._actions:
            for flag in action.option_strings:
                dest_of_flag.setdefault(flag, set()).add(action.dest)
    assert {flag: dests for flag, dests in dest_of_flag.items() if len(dests) > 1} == {}
    assert dest_of_flag["--probe-seed"] == {"probe_seed"} and dest_of_flag["--splits"] == {"splits"}
    assert dest_of_flag["--sample"] == {"sample"} and dest_of_flag["--score-option"] == {"score_options"}


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_help_lists_every_option(command, capsys):
    cls, build_parser = COMMANDS[command]
    with pytest.raises(SystemExit) as exit_info:
        build_parser().parse_args(["--help"])
    out = capsys.readouterr().out
    assert exit_info.value.code == 0
    for f, opt in optioned_fields(cls):
        if not opt.hidden and not opt.positional:
            assert opt.flag_names(f.name)[-1] in out


# ------------------------------------------------------------------------------------------- renamed flags
@pytest.mark.parametrize(
    "command, argv, old, new, field, value",
    [
        ("lswag-bench", ["nb201", "--out", "o"], ["--libra-splits", "5"], "--splits", "splits", 5),
        ("lswag-layers", ["nb201"], ["--num", "12"], "--sample", "sample", 12),
        ("lswag-layers", ["nb201"], ["--label-splits", "5"], "--splits", "splits", 5),
        ("lswag-search-eval", ["--out", "o"], ["--data-seed", "3"], "--probe-seed", "probe_seed", 3),
        ("lswag-search-eval", ["--out", "o"], ["--psi-layers", "all"], "--score-option psi_layers", "score_options",
         {"psi_layers": "all"}),
        ("demo", [], ["--candidates", "4"], "--sample", "sample", 4),
    ],
)  # fmt: skip
def test_renamed_flags_still_work_with_a_one_line_warning(command, argv, old, new, field, value, capsys):
    settings = settings_of(command, [*argv, *old])
    assert getattr(settings, field) == value
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and f"{old[0]} is deprecated; use {new}" in err


@pytest.mark.parametrize(
    "old, new, field, value",
    [(["--data-seed", "3"], "--probe-seed", "probe_seed", 3), (["--data", "digits"], "--probe-data", "probe_data",
                                                                 "digits")],
)  # fmt: skip
def test_renamed_search_flags_still_work_with_a_warning(old, new, field, value, capsys):
    assert getattr(search_settings(["nb201", "--out", "o", *old]), field) == value
    assert f"{old[0]} is deprecated; use {new}" in capsys.readouterr().err


# -------------------------------------------------------------------------------------------- search configs
def test_shipped_search_configs_use_the_current_keys(caplog):
    for name in available_search_configs():
        with caplog.at_level("WARNING"):
            cfg = load_search_config(name)
        assert set(cfg) <= set(SearchCommand.config_keys())
    assert not caplog.records  # no renamed key in a shipped config


def test_renamed_config_keys_still_load_with_a_warning(tmp_path, caplog):
    path = tmp_path / "old.yaml"
    path.write_text("space: nb201\ndata: digits\ndata_seed: 3\nbudget: 7\n")
    with caplog.at_level("WARNING"):
        cfg = load_search_config(str(path))
    assert cfg == {"space": "nb201", "probe_data": "digits", "probe_seed": 3, "budget": 7}
    warned = [r.getMessage() for r in caplog.records]
    assert any("'data_seed' is deprecated; use 'probe_seed'" in m for m in warned)
    assert any("'data' is deprecated; use 'probe_data'" in m for m in warned)
    path.write_text("space: nb201\ndata_seed: 3\nprobe_seed: 4\n")
    with pytest.raises(ValueError, match="both 'data_seed' and its new name 'probe_seed'"):
        load_search_config(str(path))


@pytest.mark.parametrize(
    "text, message",
    [
        ("budget: ten", "budget must be an integer >= 1, got 'ten'"),
        ("budgte: 3", "unknown key 'budgte'; allowed keys: space, budget"),
        ("probe_data: mnist", "probe_data must be one of digits, cifar10_npz, got 'mnist'"),
        ("max_params: lots", "max_params expected a number such as 23e6"),
        ("build_options: [1, 2]", "build_options must be a mapping"),
    ],
)
def test_a_bad_config_value_names_the_file_and_the_key(tmp_path, text, message):
    path = tmp_path / "bad.yaml"
    path.write_text(f"space: nb201\n{text}\n")
    with pytest.raises(ValueError, match="bad.yaml") as err:
        load_search_config(str(path))
    assert message in str(err.value)


def test_config_keys_are_the_option_names_of_the_command_line():
    flags = {a.dest for a in search_cli.build_parser()._actions}
    assert set(SearchCommand.config_keys()) <= flags
    assert SearchCommand.renamed_keys() == {"data": "probe_data", "data_seed": "probe_seed"}
    missing = dataclasses.MISSING
    required = [f.name for f in dataclasses.fields(SearchCommand) if f.default is f.default_factory is missing]
    assert required == ["out"]  # every other option has its built-in default on the class


# ------------------------------------------------------------------------------------------ lswag-train (Hydra)
@pytest.mark.parametrize(
    "overrides, threads, warned",
    [
        ([], 1, False),
        (["threads=3"], 3, False),
        (["experiment=vit_cifar10"], None, False),
        (["num_threads=4"], 4, True),
    ],
)
def test_lswag_train_threads_and_its_renamed_key(overrides, threads, warned, caplog):
    from hydra import compose, initialize_config_module

    from lswag_lightning.job.train_job import _threads

    with initialize_config_module("lswag_lightning.conf", version_base="1.3"):
        cfg = compose("train", overrides=overrides)
    with caplog.at_level("WARNING"):
        assert _threads(cfg) == threads
    assert any("num_threads is deprecated; use threads=4" in r.getMessage() for r in caplog.records) == warned
