"""Ready search settings: the YAML files of the config group ``conf/search/`` (plain YAML, no Hydra needed).

``load_search_config(name)`` reads ``conf/search/<name>.yaml`` (or a path to a ``.yaml`` file) and checks its keys
against :data:`SEARCH_KEYS`. A search config's ``build_options`` update the space's shipped ones
(:func:`lswag_lightning.candidates.space_build_options`); the command line overrides both.
"""
from __future__ import annotations

import difflib
import os
from pathlib import Path
from typing import Any

import yaml

CONF_DIR = Path(__file__).resolve().parent.parent / "conf"

#: Keys a search config may set, with what they mean (the command-line option of the same name overrides them).
SEARCH_KEYS: dict[str, str] = {
    "space": "search space name (lswag_lightning.spaces)",
    "build_options": "space.build keyword arguments (num_classes, img_size, ...), on top of conf/space/<space>.yaml",
    "strategy": "evolution | random",
    "budget": "architectures scored",
    "seed": "search seed",
    "population": "evolution population size P",
    "tournament": "evolution tournament sample size S",
    "rank_pool": "history | population: pool of LIBRA's rank fusion during the search",
    "fitness": "libra or a proxy name (lswag, zico, ...)",
    "libra_proxies": "list of LIBRA's proxies (for fitness libra)",
    "libra_result": "path of a lswag-libra libra.json (for fitness libra)",
    "fusion": "rank_mean | log_rank",
    "proxies": "extra proxies computed and written to ranked.csv",
    "max_params": "parameter budget (count, e.g. 23e6)",
    "max_flops": "FLOPs budget of one sample's forward pass",
    "max_failed_proposals": "rejected proposals in a row before giving up",
    "data": "digits | cifar10_npz: the probe batch",
    "batch_size": "probe batch size",
    "data_seed": "seed of the probe batch draw",
    "init_seed": "seed of the networks' initial weights",
    "score_options": "extra keyword arguments of score_network (layer_interval, lambda_k, ...)",
    "checkpoint_every": "evaluations between checkpoints",
    "train_data": "data config of lswag-train for --train-top",
    "train_overrides": "extra lswag-train overrides for --train-top",
}


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
    """The settings of ``conf/search/<name>.yaml`` or of a YAML file path; ``ValueError`` on unknown names/keys."""
    text = str(name)
    path = Path(text).expanduser()
    if not (text.endswith((".yaml", ".yml")) and path.is_file()):
        path = CONF_DIR / "search" / f"{text}.yaml"
        if not path.is_file():
            names = available_search_configs()
            close = difflib.get_close_matches(text, names, n=2)
            hint = f" Did you mean {', '.join(map(repr, close))}?" if close else ""
            raise ValueError(f"unknown search config {text!r}.{hint} Available: {', '.join(names)} "
                             "(or give a path to a .yaml file)")
    data = _read_yaml(path)
    unknown = sorted(set(data) - set(SEARCH_KEYS))
    if unknown:
        raise ValueError(f"{path}: unknown key(s) {unknown}; allowed keys: {', '.join(SEARCH_KEYS)}")
    return data
