"""Search settings: the YAML files of the config group ``conf/search/`` (plain YAML, no Hydra needed) and the merge
of every source into the settings of one search (:class:`~lswag_lightning.search.options.SearchCommand`).

``load_search_config(name)`` reads ``conf/search/<name>.yaml`` (or a path to a ``.yaml`` file) and checks it with
:meth:`SearchCommand.from_config <lswag_lightning.settings.CommandSettings.from_config>`: the keys are the
command's option names (``probe_seed`` for ``--probe-seed``), each value is checked by the same kind as on the
command line, unknown keys are refused and renamed ones (``data_seed``, ``data``) accepted with a warning.
:func:`resolve_options` merges the built-in defaults (the fields' defaults) < the space's shipped build options
(:func:`default_build_options`: a family file's own) < the search config < the command line.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from lswag_lightning.search.options import SearchCommand

CONF_DIR = Path(__file__).resolve().parent.parent / "conf"

#: the options a config's fitness brings along: another fitness on the command line drops them
_FITNESS_COMPANIONS = ("libra_proxies", "libra_result", "fused_proxies", "fusion", "ranking")
#: the options merged key by key (mappings) or appended (lists) instead of replaced
_MERGED = ("build_options", "score_options", "train_overrides")


def available_search_configs() -> list[str]:
    """Names of the shipped search configs (``conf/search/*.yaml``)."""
    return sorted(p.stem for p in (CONF_DIR / "search").glob("*.yaml"))


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        raise ValueError(f"{path}: not valid YAML: {err}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a mapping of settings, got {type(data).__name__}")
    return data


def load_search_config(name: str | os.PathLike) -> dict[str, Any]:
    """The checked settings of ``conf/search/<name>.yaml`` or of a YAML file path (renamed keys under their new
    names); ``ValueError`` on unknown names or keys and on bad values, naming the file."""
    text = str(name)
    path = Path(text).expanduser()
    if not (text.endswith((".yaml", ".yml")) and path.is_file()):
        path = CONF_DIR / "search" / f"{text}.yaml"
        if not path.is_file():
            names = available_search_configs()
            close = difflib.get_close_matches(text, names, n=2)
            hint = f" Did you mean {', '.join(map(repr, close))}?" if close else ""
            raise ValueError(
                f"unknown search config {text!r}.{hint} Available: {', '.join(names)} (or give a path to a .yaml file)"
            )
    return SearchCommand.from_config(_read_yaml(path), str(path))


def default_build_options(space: str) -> dict[str, Any]:
    """A space's default build options: a family file's ``build_options``, else the shipped ``conf/space/<space>.yaml``
    ones (:func:`lswag_lightning.candidates.space_build_options`)."""
    from lswag_lightning.candidates import space_build_options
    from lswag_lightning.spaces import family_build_options

    family = family_build_options(space)
    return family if family is not None else space_build_options(space)


def resolve_options(given: Mapping[str, Any]) -> SearchCommand:
    """The settings of one search: the built-in defaults < ``conf/space/<space>.yaml`` build options < the search
    config ``given["config"]`` < the options in ``given`` (``lswag-search``'s command line, by field name; only the
    options given). ``ValueError`` with the message for the user on bad values."""
    config = given.get("config")
    cfg = load_search_config(config) if config else {}
    space = given.get("space") or cfg.get("space")
    if not space:
        raise ValueError("give the search space (lswag-search SPACE ...) or a --config that names one")
    if cfg.get("space") and space != cfg["space"]:
        raise ValueError(f"SPACE {space!r} differs from the space {cfg['space']!r} of --config {config}")
    merged = {k: v for k, v in cfg.items() if k not in _MERGED}
    if "fitness" in given and given["fitness"] != cfg.get("fitness", SearchCommand.fitness):
        # a config's proxy set and fusion belong to its fitness: --fitness lswag on a config with a fused fitness
        # drops the config's set (a set given on the command line is still checked against the fitness)
        for key in _FITNESS_COMPANIONS:
            merged.pop(key, None)
    merged.update({k: v for k, v in given.items() if k not in _MERGED})
    build = default_build_options(space)
    build.update(cfg.get("build_options") or {})
    build.update(given.get("build_options") or {})
    merged.update(
        space=space,
        build_options=build,
        score_options={**(cfg.get("score_options") or {}), **(given.get("score_options") or {})},
        train_overrides=[*(cfg.get("train_overrides") or []), *(given.get("train_overrides") or [])],
    )
    return SearchCommand.create(**merged)
