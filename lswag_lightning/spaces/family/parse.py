"""Reading a config space's YAML node into a checked :class:`Family`; every mistake is a one-line
:class:`FamilyConfigError` naming the key and the fix.

The file (every key but ``_target_`` and ``choices`` optional)::

    name: my_family            # the space's name in tables and logs (default: the file's stem)
    _target_: mypkg.nets.MyNet # any importable callable returning an nn.Module
    python_path: [.]           # folders put on sys.path to import _target_ (relative to this file)
    build_options: {num_classes: 10, in_chans: 3, img_size: 32}   # the defaults of build() and of the checks
    fixed: {act: relu}         # keyword arguments passed as they are (Hydra _target_ nodes are instantiated)
    choices:                   # keyword argument -> its allowed values, in key order
      depth: [2, 3, 4]                        # a list of values (a value may itself be a list)
      width: {range: [16, 64, 16]}            # integers start..stop (stop included when on the grid), step
      layers: {per_stage: [1, 2, 3], stages: 4}           # a list of 4, each stage chosen from [1, 2, 3]
      widths: {per_stage: [[16, 32], [32, 64], [64, 128]]}  # a list of 3, stage i from its own list
    constraints: {max_params: 5e6, min_params: 1e5, max_flops: 2e8}  # honoured by sample and mutate

``num_classes``, ``in_chans`` and ``img_size`` reach the callable when its signature takes them and ``fixed`` does
not set them. A class or function is passed as a value with Hydra's own vocabulary:
``{_target_: hydra.utils.get_class, path: timm.models.resnet.BasicBlock}`` (the class itself) or
``{_target_: torch.nn.GELU, _partial_: true}`` (a partial); such nodes are instantiated afresh at every build.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lswag_lightning.spaces.family.annotations import (
    annotations_of,
    element_annotation,
    fits,
    importable,
    locate,
    parameters_of,
)
from lswag_lightning.spaces.family.values import (
    GETTER_TARGETS,
    float_alias,
    freeze,
    kind_of,
    same_value,
    short_list,
    text_of,
)

TOP_KEYS = ("name", "_target_", "python_path", "build_options", "fixed", "choices", "constraints")
DATA_ARGUMENTS = ("num_classes", "in_chans", "img_size")
DEFAULT_SIZES = {"num_classes": 10, "in_chans": 3, "img_size": 32}
CONSTRAINT_KEYS = ("max_params", "min_params", "max_flops")
MAX_RANGE_VALUES = 10_000


class FamilyConfigError(ValueError):
    """A config-space file that cannot work; the one-line message names the file, the key and the fix."""


@dataclass(frozen=True)
class Choice:
    """One argument the family chooses: ``slots`` are the allowed (frozen) values of each slot, one slot for a
    plain argument, one per stage for a ``per_stage`` argument (whose value is then the tuple of stage values)."""

    name: str
    slots: tuple[tuple[Any, ...], ...]
    per_stage: bool = False

    def texts(self, slot: int) -> dict[str, Any]:
        """Text -> allowed value of ``slot`` (an integral float also answers to its int text: ``4`` for ``4.0``)."""
        table = {text_of(v): v for v in self.slots[slot]}
        for value in self.slots[slot]:
            alias = float_alias(value)
            if alias is not None:
                table.setdefault(alias, value)
        return table

    def allowed_text(self, slot: int) -> str:
        return short_list([text_of(v) for v in self.slots[slot]])


@dataclass(frozen=True)
class Family:
    """A checked config space: the callable, its fixed and chosen arguments, constraints and defaults."""

    source: str
    name: str
    target: str
    factory: Callable
    choices: tuple[Choice, ...]
    fixed: dict[str, Any] = field(default_factory=dict)
    constraints: dict[str, float] = field(default_factory=dict)
    build_options: dict[str, int] = field(default_factory=lambda: dict(DEFAULT_SIZES))
    python_path: tuple[Path, ...] = ()
    accepted: frozenset[str] | None = None  # keyword names the callable takes; None: any (it takes **kwargs)

    def takes(self, argument: str) -> bool:
        return self.accepted is None or argument in self.accepted


def parse_family(data: Any, source: str, base_dir: Path | None = None, default_name: str = "family") -> Family:
    """The checked :class:`Family` of a config node (plain containers); ``source`` prefixes every error and
    ``base_dir`` anchors a relative ``python_path`` (the working directory when None)."""
    err = _error_prefix(source)
    if not isinstance(data, Mapping):
        raise FamilyConfigError(f"{err}expected a mapping with _target_ and choices, got {type(data).__name__}")
    unknown = [str(k) for k in data if k not in TOP_KEYS]
    if unknown:
        raise FamilyConfigError(f"{err}unknown key(s) {unknown}; a config space has only: {', '.join(TOP_KEYS)}")
    python_path = _python_path(data.get("python_path"), base_dir, err)
    target = data.get("_target_")
    if not isinstance(target, str) or not target:
        raise FamilyConfigError(f"{err}_target_ is missing; give the dotted path of a callable returning an nn.Module")
    with importable(python_path):
        factory = _import_callable(target, "_target_", err)
        params, var_keyword = parameters_of(factory)
        accepted = None if (params is None or var_keyword) else frozenset(params)
        hints = annotations_of(factory)
        short = target.rsplit(".", 1)[-1]
        fixed = _fixed(data.get("fixed"), accepted, hints, short, err)
        choices = _choices(data.get("choices"), fixed, accepted, hints, short, err)
    _check_required(params, fixed, choices, short, err)
    name = data.get("name", default_name)
    if not isinstance(name, str) or not name:
        raise FamilyConfigError(f"{err}name must be a non-empty string, got {name!r}")
    return Family(
        source=source,
        name=name,
        target=target,
        factory=factory,
        choices=choices,
        fixed=fixed,
        constraints=_constraints(data.get("constraints"), err),
        build_options=_build_options(data.get("build_options"), err),
        python_path=python_path,
        accepted=accepted,
    )


def _error_prefix(source: str) -> str:
    return f"{source}: " if source else ""


def _python_path(raw: Any, base_dir: Path | None, err: str) -> tuple[Path, ...]:
    if raw is None:
        return ()
    entries = [raw] if isinstance(raw, str) else raw
    if not isinstance(entries, list) or not all(isinstance(e, str) for e in entries):
        raise FamilyConfigError(f"{err}python_path must be a folder or a list of folders, got {raw!r}")
    base = base_dir if base_dir is not None else Path.cwd()
    folders = tuple((base / e).resolve() for e in entries)
    for entry, folder in zip(entries, folders):
        if not folder.is_dir():
            raise FamilyConfigError(f"{err}python_path: {entry!r} is not a folder ({folder}); fix or remove it")
    return folders


def _import_callable(path: str, key: str, err: str) -> Callable:
    try:
        obj = locate(path)
    except Exception as exc:  # the user's module may fail to import with any error
        cause = " ".join(f"{type(exc).__name__}: {exc}".split())
        raise FamilyConfigError(
            f"{err}{key}: cannot import {path!r} ({cause}); fix the dotted path, or put its folder on PYTHONPATH or "
            "under python_path:"
        ) from None
    if not callable(obj):
        raise FamilyConfigError(
            f"{err}{key}: {path!r} is a {type(obj).__name__}, not a callable; name a class or function"
        )
    return obj


def _check_nodes(value: Any, where: str, err: str) -> None:
    """Every Hydra node inside ``value`` names an importable ``_target_`` (and a getter an importable ``path``)."""
    if isinstance(value, Mapping):
        target = value.get("_target_")
        if target is not None:
            _import_callable(str(target), f"{where}._target_", err)
            if str(target) in GETTER_TARGETS:
                _import_callable(str(value.get("path")), f"{where}.path", err)
        for key, inner in value.items():
            _check_nodes(inner, f"{where}.{key}", err)
    elif isinstance(value, (list, tuple)):
        for i, inner in enumerate(value):
            _check_nodes(inner, f"{where}[{i}]", err)


def _check_accepted(name: str, accepted: frozenset[str] | None, short: str, where: str, err: str) -> None:
    if accepted is None or name in accepted:
        return
    import difflib

    close = difflib.get_close_matches(name, sorted(accepted), n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    raise FamilyConfigError(
        f"{err}{where}: {short} does not take an argument {name!r}{hint}; its arguments: "
        f"{short_list(sorted(accepted), 20)}"
    )


def _annotation_text(annotation: Any) -> str:
    return getattr(annotation, "__name__", None) or str(annotation).replace("typing.", "")


def _fixed(raw: Any, accepted, hints: dict, short: str, err: str) -> dict[str, Any]:
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        raise FamilyConfigError(f"{err}fixed must be a mapping of keyword arguments, got {type(raw).__name__}")
    for name, value in raw.items():
        _check_accepted(str(name), accepted, short, f"fixed.{name}", err)
        _check_nodes(value, f"fixed.{name}", err)
        if fits(freeze(value), hints.get(name, Any)) is False:
            raise FamilyConfigError(
                f"{err}fixed.{name}: {value!r} does not fit {short}'s annotation {_annotation_text(hints[name])}; "
                "give a value of that type"
            )
    return {str(k): v for k, v in raw.items()}


def _choices(raw: Any, fixed: dict, accepted, hints: dict, short: str, err: str) -> tuple[Choice, ...]:
    if not isinstance(raw, Mapping) or not raw:
        raise FamilyConfigError(
            f"{err}choices is missing or empty; give at least one argument with its values, e.g. depth: [2, 3, 4]"
        )
    out = []
    for name, spec in raw.items():
        name, where = str(name), f"choices.{name}"
        _check_accepted(name, accepted, short, where, err)
        if name in fixed:
            raise FamilyConfigError(f"{err}{where}: {name!r} is also under fixed; keep it in one of the two")
        _check_nodes(spec, where, err)
        choice = _parse_choice(name, spec, where, err)
        for slot, options in enumerate(choice.slots):
            slot_where = f"{where}[{slot}]" if choice.per_stage else where
            _check_options(options, slot_where, err)
            _check_option_types(choice, slot, hints.get(name, Any), short, slot_where, err)
        out.append(choice)
    return tuple(out)


def _parse_choice(name: str, spec: Any, where: str, err: str) -> Choice:
    if isinstance(spec, Mapping) and "per_stage" in spec:
        extra = sorted(str(k) for k in spec if k not in ("per_stage", "stages"))
        if extra:
            raise FamilyConfigError(f"{err}{where}: unknown key(s) {extra} beside per_stage; allowed: stages")
        stages = spec.get("stages")
        if stages is not None:
            if isinstance(stages, bool) or not isinstance(stages, int) or stages < 1:
                raise FamilyConfigError(f"{err}{where}.stages must be an integer >= 1, got {stages!r}")
            options = _options(spec["per_stage"], f"{where}.per_stage", err)
            return Choice(name, (options,) * stages, per_stage=True)
        per_stage = spec["per_stage"]
        if (
            not isinstance(per_stage, list)
            or not per_stage
            or not all(isinstance(s, (list, Mapping)) for s in per_stage)
        ):
            raise FamilyConfigError(
                f"{err}{where}.per_stage: without stages, give one list of values per stage, e.g. "
                "[[1, 2], [1, 2, 3]]; or give stages: N and one list for every stage"
            )
        slots = tuple(_options(s, f"{where}.per_stage[{i}]", err) for i, s in enumerate(per_stage))
        return Choice(name, slots, per_stage=True)
    return Choice(name, (_options(spec, where, err),))


def _options(spec: Any, where: str, err: str) -> tuple[Any, ...]:
    if isinstance(spec, Mapping) and set(spec) == {"range"}:
        return _range(spec["range"], where, err)
    if isinstance(spec, Mapping):
        raise FamilyConfigError(
            f"{err}{where}: a mapping here must be {{range: [start, stop, step]}} or {{per_stage: ..., stages: N}}; "
            "for a list of values write [a, b, c]"
        )
    if not isinstance(spec, list):
        raise FamilyConfigError(
            f"{err}{where}: expected a list of values, got {spec!r}; write [{spec!r}] or move it under fixed"
        )
    if not spec:
        raise FamilyConfigError(f"{err}{where}: the list of values is empty; give at least one value")
    return tuple(freeze(v) for v in spec)


def _range(raw: Any, where: str, err: str) -> tuple[int, ...]:
    ok = isinstance(raw, list) and len(raw) in (2, 3)
    ok = ok and all(isinstance(v, numbers.Integral) and not isinstance(v, bool) for v in raw)
    if not ok:
        raise FamilyConfigError(
            f"{err}{where}.range: expected [start, stop] or [start, stop, step] of integers, got {raw!r}; "
            "list other values explicitly"
        )
    start, stop, step = (*raw, 1) if len(raw) == 2 else raw
    if step < 1 or stop < start:
        raise FamilyConfigError(f"{err}{where}.range: {raw!r} is empty; need start <= stop and step >= 1")
    if (stop - start) // step + 1 > MAX_RANGE_VALUES:
        raise FamilyConfigError(f"{err}{where}.range: {raw!r} has over {MAX_RANGE_VALUES} values; use a larger step")
    return tuple(range(int(start), int(stop) + 1, int(step)))


def _check_options(options: tuple, where: str, err: str) -> None:
    kinds = sorted({kind_of(v) for v in options} - {"null"})
    if len(kinds) > 1:
        raise FamilyConfigError(
            f"{err}{where}: mixes {' and '.join(kinds)} values ({', '.join(text_of(v) for v in options)}); "
            "give every value the same type"
        )
    texts: dict[str, Any] = {}
    for value in options:
        if isinstance(value, float) and math.isnan(value):
            raise FamilyConfigError(f"{err}{where}: nan is not a usable choice; remove it")
        text = text_of(value)
        if any(same_value(value, v) for v in texts.values()):
            raise FamilyConfigError(f"{err}{where}: the value {text} appears twice; list each value once")
        if text in texts:
            raise FamilyConfigError(
                f"{err}{where}: two values have the same key text {text}; make them differ (e.g. in their arguments)"
            )
        texts[text] = value


def _check_option_types(choice: Choice, slot: int, annotation: Any, short: str, where: str, err: str) -> None:
    expected = annotation
    if choice.per_stage:
        is_sequence, expected = element_annotation(annotation, slot, len(choice.slots))
        if not is_sequence:
            raise FamilyConfigError(
                f"{err}{where}: per_stage makes {choice.name!r} a list of {len(choice.slots)}, but {short} annotates "
                f"it {_annotation_text(annotation)}; use a plain list of values"
            )
    for value in choice.slots[slot]:
        if fits(value, expected) is False:
            raise FamilyConfigError(
                f"{err}{where}: the value {text_of(value)} does not fit {short}'s annotation "
                f"{_annotation_text(expected)} for {choice.name!r}; give values of that type"
            )


def _check_required(params, fixed: dict, choices: tuple[Choice, ...], short: str, err: str) -> None:
    if params is None:
        return
    given = set(fixed) | {c.name for c in choices} | set(DATA_ARGUMENTS)
    missing = [n for n, p in params.items() if p.default is p.empty and n not in given]
    if missing:
        raise FamilyConfigError(
            f"{err}{short} needs the argument(s) {missing}, which the file does not give; add them under fixed "
            "or choices"
        )


def _positive_number(value: Any, where: str, err: str) -> float:
    try:
        number = float(value) if not isinstance(value, bool) else math.nan
    except (TypeError, ValueError):
        number = math.nan
    if not (number > 0 and math.isfinite(number)):
        raise FamilyConfigError(f"{err}{where}: expected a positive number such as 5e6, got {value!r}")
    return number


def _constraints(raw: Any, err: str) -> dict[str, float]:
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        raise FamilyConfigError(f"{err}constraints must be a mapping, e.g. {{max_params: 5e6}}")
    unknown = sorted(str(k) for k in raw if k not in CONSTRAINT_KEYS)
    if unknown:
        raise FamilyConfigError(f"{err}constraints: unknown key(s) {unknown}; allowed: {', '.join(CONSTRAINT_KEYS)}")
    out = {str(k): _positive_number(v, f"constraints.{k}", err) for k, v in raw.items() if v is not None}
    if "min_params" in out and "max_params" in out and out["min_params"] > out["max_params"]:
        raise FamilyConfigError(
            f"{err}constraints: min_params {out['min_params']:g} > max_params {out['max_params']:g}"
        )
    return out


def _build_options(raw: Any, err: str) -> dict[str, int]:
    options = dict(DEFAULT_SIZES)
    if raw is None:
        return options
    if not isinstance(raw, Mapping):
        raise FamilyConfigError(f"{err}build_options must be a mapping of {', '.join(DATA_ARGUMENTS)}")
    for key, value in raw.items():
        if key not in DATA_ARGUMENTS:
            raise FamilyConfigError(
                f"{err}build_options.{key}: only {', '.join(DATA_ARGUMENTS)} belong here; put other keyword "
                "arguments under fixed"
            )
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise FamilyConfigError(f"{err}build_options.{key} must be an integer >= 1, got {value!r}")
        options[str(key)] = int(value)
    return options
