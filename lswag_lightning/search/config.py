"""Search settings: the YAML files of the config group ``conf/search/`` (plain YAML, no Hydra needed) and the merge
of every source into the options of one search.

``load_search_config(name)`` reads ``conf/search/<name>.yaml`` (or a path to a ``.yaml`` file) and checks its keys
against :data:`SEARCH_KEYS`. :func:`resolve_options` merges :data:`DEFAULTS` < the space's shipped build options
(:func:`lswag_lightning.candidates.space_build_options`) < the search config < the command line.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

CONF_DIR = Path(__file__).resolve().parent.parent / "conf"

#: Built-in defaults, below conf/search/<config>.yaml and the command line.
DEFAULTS: dict[str, Any] = {
    "strategy": "evolution",
    "budget": 100,
    "seed": 0,
    "population": 50,
    "tournament": 10,
    "rank_pool": "history",
    "fitness": "lswag",
    "libra_proxies": None,
    "libra_result": None,
    "fused_proxies": None,
    "fusion": None,
    "proxies": [],
    "max_params": None,
    "max_flops": None,
    "max_failed_proposals": 2000,
    "data": "cifar10_npz",
    "batch_size": 64,
    "data_seed": 0,
    "init_seed": 0,
    "score_options": {},
    "checkpoint_every": 1,
    "train_data": "digits",
    "train_overrides": [],
    "build_options": {},
}

#: Command-line values that replace the merged ones when given (not None).
_SCALAR_OPTIONS = (
    "budget",
    "seed",
    "strategy",
    "population",
    "tournament",
    "rank_pool",
    "max_params",
    "max_flops",
    "max_failed_proposals",
    "fitness",
    "libra_proxies",
    "libra_result",
    "fused_proxies",
    "fusion",
    "data",
    "batch_size",
    "data_seed",
    "init_seed",
    "checkpoint_every",
    "train_data",
)

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
    "fitness": "libra, fused or a proxy name (lswag, zico, ...)",
    "libra_proxies": "list of LIBRA's proxies (for fitness libra)",
    "libra_result": "path of a lswag-libra libra.json (fitness libra: its selection; fitness fused: its greedy set)",
    "fused_proxies": "list of two or more proxies fused by rank (for fitness fused)",
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
            raise ValueError(
                f"unknown search config {text!r}.{hint} Available: {', '.join(names)} (or give a path to a .yaml file)"
            )
    data = _read_yaml(path)
    unknown = sorted(set(data) - set(SEARCH_KEYS))
    if unknown:
        raise ValueError(f"{path}: unknown key(s) {unknown}; allowed keys: {', '.join(SEARCH_KEYS)}")
    return data


def parse_count(text: str) -> float:
    """A positive count such as 23e6, 23000000 or 23M / 1.5G; ``ValueError`` otherwise."""
    t = text.strip().replace("_", "")
    scale = {"k": 1e3, "m": 1e6, "g": 1e9}.get(t[-1:].lower(), 1.0)
    if scale != 1.0:
        t = t[:-1]
    try:
        value = float(t) * scale
    except ValueError:
        raise ValueError(f"expected a number such as 23e6 or 23M, got {text!r}") from None
    if not value > 0:
        raise ValueError(f"must be > 0, got {text!r}")
    return value


def comma_list(value: Any) -> list[str]:
    """``"a,b"`` or a sequence as a list of names (None: empty)."""
    if value is None:
        return []
    if isinstance(value, str):
        return [v.strip() for v in value.split(",") if v.strip()]
    return [str(v) for v in value]


def _config_options(config: str | None, space: str | None) -> dict[str, Any]:
    """:data:`DEFAULTS` updated by the search config ``config`` (if any), and the space both name."""
    cfg = load_search_config(config) if config else {}
    space = space or cfg.get("space")
    if not space:
        raise ValueError("give the search space (lswag-search SPACE ...) or a --config that names one")
    if cfg.get("space") and space != cfg["space"]:
        raise ValueError(f"SPACE {space!r} differs from the space {cfg['space']!r} of --config {config}")
    opts = {k: (dict(v) if isinstance(v, dict) else list(v) if isinstance(v, list) else v) for k, v in DEFAULTS.items()}
    for k, v in cfg.items():
        if k in ("build_options", "score_options") and v is not None:
            if not isinstance(v, dict):
                raise ValueError(f"--config {config}: {k} must be a mapping")
            opts[k] = dict(v)
        elif k != "space":
            opts[k] = v
    opts["space"] = space
    return opts


def _score_options(opts: dict[str, Any], layer_interval: str | None, score_option: Any) -> dict[str, Any]:
    """The config's ``score_options`` with ``--layer-interval lo,hi`` and ``--score-option KEY=VALUE`` on top."""
    score_options = dict(opts.get("score_options") or {})
    if layer_interval:
        try:
            lo, hi = (int(v) for v in layer_interval.split(","))
        except ValueError:
            raise ValueError(f"--layer-interval expects lo,hi (two integers 0..10), got {layer_interval!r}") from None
        score_options["layer_interval"] = (lo, hi)
    for key, value in score_option:
        score_options[key] = value
    if isinstance(score_options.get("layer_interval"), list):
        score_options["layer_interval"] = tuple(score_options["layer_interval"])
    return score_options


def resolve_options(given: Mapping[str, Any]) -> dict[str, Any]:
    """The options of one search: :data:`DEFAULTS` < ``conf/space/<space>.yaml`` build options < the search config
    ``given["config"]`` < the command-line values in ``given`` (``lswag-search``'s parsed arguments by name; None
    means not given). ``ValueError`` with the message for the user on bad values."""
    from lswag_lightning.candidates import space_build_options

    opts = _config_options(given.get("config"), given.get("space"))
    if given.get("fitness") is not None and given["fitness"] != opts.get("fitness"):
        # a config's proxy set and fusion belong to its fitness: --fitness lswag on a config with a fused fitness
        # drops the config's set (a set given on the command line is still checked against the fitness)
        for key in ("libra_proxies", "libra_result", "fused_proxies", "fusion"):
            opts[key] = None
    for key in _SCALAR_OPTIONS:
        if given.get(key) is not None:
            opts[key] = given[key]
    if given.get("proxies") is not None:
        opts["proxies"] = comma_list(given["proxies"])
    for key in ("max_params", "max_flops", "train_timeout"):
        if isinstance(opts.get(key), str):  # YAML 1.1 reads 2.3e7 (no exponent sign) as a string
            try:
                opts[key] = parse_count(opts[key])
            except ValueError as err:
                raise ValueError(f"{key}: {err}") from None
    build = space_build_options(opts["space"])
    build.update(opts.get("build_options") or {})
    if given.get("img_size") is not None:
        build["img_size"] = given["img_size"]
    if given.get("num_classes") is not None:
        build["num_classes"] = given["num_classes"]
    for key, value in given.get("build_option") or ():
        build[key] = value
    opts["build_options"] = build
    opts["score_options"] = _score_options(opts, given.get("layer_interval"), given.get("score_option") or ())
    opts["train_overrides"] = list(opts.get("train_overrides") or []) + list(given.get("train_override") or ())
    opts["libra_proxies"] = comma_list(opts.get("libra_proxies")) or None
    opts["fused_proxies"] = comma_list(opts.get("fused_proxies")) or None
    opts["proxies"] = comma_list(opts.get("proxies"))
    return opts
