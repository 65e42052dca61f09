"""Architecture keys of a config space: the spec (:class:`ConfigArch`), its canonical key and the strict parser.

``encode`` writes the choices only, in the file's order: ``depth=6,embed_dim=192,num_heads=3,mlp_ratio=4.0``; a
per-stage argument is one bracketed list, ``layers=[1,2,2,1]``. ``decode`` takes that string (names in any order),
a JSON object string, a mapping of name -> value, or a :class:`ConfigArch`; it never evaluates its input, and an
unknown name, a missing name or a value outside the choices is a one-line ``ValueError`` saying what is allowed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from lswag_lightning.spaces.base import load_json_object
from lswag_lightning.spaces.family.parse import Choice
from lswag_lightning.spaces.family.values import freeze, same_value, split_top_level, text_of, thaw


@dataclass(frozen=True)
class ConfigArch:
    """One architecture of a config space: ``(argument, value)`` pairs in the file's order, values frozen (lists
    as tuples), so a spec is hashable and compares by value."""

    values: tuple[tuple[str, Any], ...]

    def to_dict(self) -> dict[str, Any]:
        """The chosen keyword arguments as plain values (lists, dicts), ready for the callable."""
        return {name: thaw(value) for name, value in self.values}

    def replace(self, name: str, value: Any) -> ConfigArch:
        return ConfigArch(tuple((n, value if n == name else v) for n, v in self.values))


def encode_arch(choices: Sequence[Choice], arch: ConfigArch) -> str:
    """The canonical key of a validated ``arch``."""
    values = dict(arch.values)
    return ",".join(f"{c.name}={text_of(values[c.name])}" for c in choices)


def decode_arch(choices: Sequence[Choice], value: Any, where: str) -> ConfigArch:
    """Parse ``value`` (key string, JSON object string, mapping or :class:`ConfigArch`) into a validated spec;
    ``where`` (e.g. ``"timm_vit arch"``) prefixes the errors."""
    if isinstance(value, ConfigArch):
        return _from_mapping(choices, dict(value.values), where, frozen=True)
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("{"):
            return decode_arch(choices, load_json_object(text, where), where)
        return _from_key(choices, text, where)
    if isinstance(value, Mapping):
        return _from_mapping(choices, value, where, frozen=False)
    raise ValueError(f"{where}: expected a key such as {_example(choices)} or a mapping, got {type(value).__name__}")


def _example(choices: Sequence[Choice]) -> str:
    return ",".join(
        f"{c.name}={text_of(tuple(s[0] for s in c.slots) if c.per_stage else c.slots[0][0])}" for c in choices
    )


def _check_names(choices: Sequence[Choice], names: Sequence[str], where: str) -> None:
    allowed = [c.name for c in choices]
    unknown = [n for n in names if n not in allowed]
    if unknown:
        raise ValueError(f"{where}: unknown argument(s) {unknown}; the family's choices are: {', '.join(allowed)}")
    duplicated = sorted({n for n in names if list(names).count(n) > 1})
    if duplicated:
        raise ValueError(f"{where}: {duplicated} given more than once; give each choice once")
    missing = [n for n in allowed if n not in names]
    if missing:
        raise ValueError(f"{where}: missing {missing}; a key gives every choice, e.g. {_example(choices)}")


def _from_key(choices: Sequence[Choice], text: str, where: str) -> ConfigArch:
    if not text:
        raise ValueError(f"{where}: empty key; expected e.g. {_example(choices)}")
    try:
        parts = split_top_level(text)
    except ValueError as err:
        raise ValueError(f"{where}: cannot read {text[:80]!r}: {err}") from None
    pairs = []
    for part in parts:
        name, sep, raw = part.partition("=")
        if not sep:
            raise ValueError(f"{where}: {part[:60]!r} is not name=value; expected e.g. {_example(choices)}")
        pairs.append((name.strip(), raw.strip()))
    _check_names(choices, [n for n, _ in pairs], where)
    given = dict(pairs)
    return ConfigArch(tuple((c.name, _value_from_text(c, given[c.name], where)) for c in choices))


def _lookup(choice: Choice, slot: int, text: str, label: str, where: str) -> Any:
    table = choice.texts(slot)
    if text not in table:
        raise ValueError(f"{where}: {label}={text[:60]} is not one of the choices ({choice.allowed_text(slot)})")
    return table[text]


def _value_from_text(choice: Choice, text: str, where: str) -> Any:
    if not choice.per_stage:
        return _lookup(choice, 0, text, choice.name, where)
    stages = len(choice.slots)
    items = split_top_level(text[1:-1]) if text.startswith("[") and text.endswith("]") else None
    if items is None or len(items) != stages:
        raise ValueError(
            f"{where}: {choice.name}={text[:60]} must be a list of {stages} values, e.g. {_example([choice])}"
        )
    return tuple(_lookup(choice, i, item.strip(), f"{choice.name}[{i}]", where) for i, item in enumerate(items))


def _match(choice: Choice, slot: int, value: Any, label: str, where: str) -> Any:
    for option in choice.slots[slot]:
        if same_value(option, value):
            return option
    shown = text_of(value) if _has_text(value) else repr(value)
    raise ValueError(f"{where}: {label}={shown[:60]} is not one of the choices ({choice.allowed_text(slot)})")


def _has_text(value: Any) -> bool:
    try:
        text_of(value)
    except TypeError:
        return False
    return True


def _from_mapping(choices: Sequence[Choice], data: Mapping, where: str, frozen: bool) -> ConfigArch:
    _check_names(choices, [str(k) for k in data], where)
    data = {str(k): (v if frozen else freeze(v)) for k, v in data.items()}
    values = []
    for choice in choices:
        value = data[choice.name]
        if choice.per_stage:
            stages = len(choice.slots)
            if not isinstance(value, tuple) or len(value) != stages:
                raise ValueError(f"{where}: {choice.name} must be a list of {stages} values, got {thaw(value)!r}")
            value = tuple(_match(choice, i, v, f"{choice.name}[{i}]", where) for i, v in enumerate(value))
        else:
            value = _match(choice, 0, value, choice.name, where)
        values.append((choice.name, value))
    return ConfigArch(tuple(values))
