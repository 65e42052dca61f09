"""Value kinds: how one option's value is read from the command line and checked wherever it comes from.

A kind reads command-line text (:meth:`Kind.from_text`, one string, or the list of strings of an option that takes
several) and checks a value from any source (:meth:`Kind.check`: a YAML config, a Python caller, or the command
line's own parsed value), with the same rules both ways. A bad value raises ``ValueError`` with a message that starts
with "must be ..." and ends with the value given, so the caller can put the option's name in front of it
(``argument --budget: must be an integer >= 1, got 'ten'``; ``conf/search/x.yaml: budget must be ...``).

:func:`parse_value` is the one reader of the ``VALUE`` of every ``KEY=VALUE`` option (``--score-option``,
``--build-option``): JSON where it parses (numbers including ``1e3``, ``true``/``false``, ``null``, lists, objects),
else the bare word as a string (``lambda_std=abs``). The dataclass that owns the key validates the value afterwards.
"""

from __future__ import annotations

import json
import math
import numbers
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any


def parse_value(text: str) -> Any:
    """A ``KEY=VALUE`` option's value: JSON (``1e3`` -> 1000.0, ``true``, ``null``, ``[1, 10]``), else the text."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def parse_key_value(text: str) -> tuple[str, Any]:
    """``"KEY=VALUE"`` -> ``(KEY, parse_value(VALUE))``; ``ValueError`` without ``=`` or without a key."""
    key, sep, raw = text.partition("=")
    if not sep or not key.strip():
        raise ValueError(f"expected KEY=VALUE, got {text!r}")
    return key.strip(), parse_value(raw)


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


def _number_or_text(text: str) -> Any:
    """``text`` as the number it spells in JSON (``1e3``), else unchanged."""
    value = parse_value(text)
    return value if _is_number(value) else text


def _is_int(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


class Kind:
    """The base of the kinds: ``nargs`` of the command-line option (None: one string), ``repeat`` (each use of
    the option adds to the value instead of replacing it), ``metavar`` and ``choices`` for the help."""

    nargs: str | None = None
    repeat: bool = False
    metavar: str | None = None
    choices: Sequence[str] | None = None

    def from_text(self, text: Any) -> Any:
        """The value of command-line ``text`` (a string, or a list of strings when ``nargs`` is set)."""
        return self.check(text)

    def check(self, value: Any) -> Any:
        """``value`` (from any source) checked and normalised; ``ValueError("must be ..., got ...")``."""
        return value

    def merge(self, old: Any, new: Any) -> Any:
        """A repeated option's value after one more use (``repeat`` kinds)."""
        return new


class Integer(Kind):
    """An integer >= ``minimum``."""

    metavar = "N"

    def __init__(self, minimum: int = 0) -> None:
        self.minimum = minimum

    def from_text(self, text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise ValueError(f"must be an integer >= {self.minimum}, got {text!r}") from None
        return self.check(value)

    def check(self, value: Any) -> int:
        if not _is_int(value) or value < self.minimum:
            raise ValueError(f"must be an integer >= {self.minimum}, got {value!r}")
        return int(value)


class Number(Kind):
    """A real number, optionally > ``above`` and < ``below``."""

    metavar = "X"

    def __init__(self, above: float | None = None, below: float | None = None) -> None:
        self.above, self.below = above, below

    def _rule(self) -> str:
        if self.above is not None and self.below is not None:
            return f"a number in ({self.above:g}, {self.below:g})"
        return "a number" + (f" > {self.above:g}" if self.above is not None else "")

    def from_text(self, text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise ValueError(f"must be {self._rule()}, got {text!r}") from None
        return self.check(value)

    def check(self, value: Any) -> float:
        ok = _is_number(value) and math.isfinite(value)
        ok = ok and (self.above is None or value > self.above) and (self.below is None or value < self.below)
        if not ok:
            raise ValueError(f"must be {self._rule()}, got {value!r}")
        return float(value)


class Count(Kind):
    """A positive count: a number (an int stays an int), or text such as ``23e6``, ``23M``, ``1.5G``
    (:func:`parse_count`, a float)."""

    metavar = "N"

    def check(self, value: Any) -> float | int:
        if isinstance(value, str):  # YAML 1.1 reads 2.3e7 (no exponent sign) as a string
            return parse_count(value)
        if not _is_number(value) or not value > 0 or not math.isfinite(value):
            raise ValueError(f"must be a positive number such as 23e6 or 23M, got {value!r}")
        return value


class Text(Kind):
    """A string, one of ``choices`` when they are given."""

    def __init__(self, choices: Sequence[str] | None = None) -> None:
        self.choices = tuple(choices) if choices is not None else None

    def check(self, value: Any) -> str:
        if not isinstance(value, str):
            raise ValueError(f"must be a string, got {value!r}")
        if self.choices is not None and value not in self.choices:
            raise ValueError(f"must be one of {', '.join(self.choices)}, got {value!r}")
        return value


class FilePath(Kind):
    """A file or folder path."""

    def check(self, value: Any) -> Path:
        if not isinstance(value, (str, Path)) or not str(value):
            raise ValueError(f"must be a path, got {value!r}")
        return Path(value)


class Paths(Kind):
    """One or more paths (``--score-table A B``)."""

    nargs = "+"
    metavar = "FILE"

    def check(self, value: Any) -> list[Path]:
        items = [value] if isinstance(value, (str, Path)) else value
        if not isinstance(items, Sequence) or not items or not all(isinstance(v, (str, Path)) for v in items):
            raise ValueError(f"must be one or more paths, got {value!r}")
        return [Path(v) for v in items]


class Flag(Kind):
    """On or off: a command-line flag (``store`` is the value it sets), a boolean in a config."""

    def __init__(self, store: bool = True) -> None:
        self.store = store

    def check(self, value: Any) -> bool:
        if not isinstance(value, bool):
            raise ValueError(f"must be true or false, got {value!r}")
        return value


class Names(Kind):
    """A list of names: space- and/or comma-separated on the command line (``a b``, ``a,b``), a list or a
    comma-separated string in a config."""

    nargs = "+"
    metavar = "NAME"

    def from_text(self, text: Any) -> list[str]:
        tokens = [text] if isinstance(text, str) else list(text)
        return self.check(",".join(tokens))

    def check(self, value: Any) -> list[str]:
        if isinstance(value, str):
            return [v.strip() for v in value.split(",") if v.strip()]
        if not isinstance(value, Sequence) or not all(isinstance(v, str) for v in value):
            raise ValueError(f"must be a list of names (a,b,c), got {value!r}")
        return [str(v) for v in value]


class Integers(Kind):
    """A list of integers >= ``minimum``, written ``0,1,2`` (or a list in a config)."""

    metavar = "I,J,..."

    def __init__(self, minimum: int = 0) -> None:
        self.item = Integer(minimum)

    def check(self, value: Any) -> list[int]:
        items = value.split(",") if isinstance(value, str) else value
        if not isinstance(items, Sequence) or not items:
            raise ValueError(f"must be comma-separated integers, got {value!r}")
        try:
            return [self.item.from_text(v.strip()) if isinstance(v, str) else self.item.check(v) for v in items]
        except ValueError:
            raise ValueError(f"must be comma-separated integers >= {self.item.minimum}, got {value!r}") from None


class TextList(Kind):
    """Text items, one per use of a repeatable option (``--accuracy-column a --accuracy-column b``)."""

    repeat = True

    def from_text(self, text: Any) -> list[str]:
        return [text] if isinstance(text, str) else list(text)

    def check(self, value: Any) -> list[str]:
        items = [value] if isinstance(value, str) else value
        if not isinstance(items, Sequence) or not all(isinstance(v, str) for v in items):
            raise ValueError(f"must be a list of strings, got {value!r}")
        return list(items)

    def merge(self, old: Any, new: Any) -> list[str]:
        return [*(old or []), *new]


class KeyValues(Kind):
    """A mapping, one ``KEY=VALUE`` per use of the option on the command line (:func:`parse_key_value`; a later
    key wins), a mapping in a config. A config's text value that is a JSON number becomes that number, so
    ``swap_sigma: 1e3`` (text to YAML 1.1, which wants ``1.0e3``) is 1000.0 as on the command line."""

    repeat = True
    metavar = "KEY=VALUE"

    def from_text(self, text: str) -> dict[str, Any]:
        key, value = parse_key_value(text)
        return {key: value}

    def check(self, value: Any) -> dict[str, Any]:
        if value is None:
            return {}
        if not isinstance(value, Mapping) or not all(isinstance(k, str) for k in value):
            raise ValueError(f"must be a mapping of names to values, got {value!r}")
        return {k: _number_or_text(v) if isinstance(v, str) else v for k, v in value.items()}

    def merge(self, old: Any, new: Any) -> dict[str, Any]:
        return {**(old or {}), **new}


class DepthInterval(Kind):
    """L-SWAG's depth-bin interval: ``LO HI`` or ``LO,HI`` (two bins 0..10) -> ``[lo, hi]``; ``all`` -> None
    (every layer)."""

    nargs = "+"
    metavar = "LO HI|all"

    def from_text(self, text: Any) -> list[int] | None:
        tokens = [text] if isinstance(text, str) else list(text)
        if tokens == ["all"]:
            return None
        parts = [p for t in tokens for p in t.split(",") if p.strip()]
        try:
            lo, hi = (int(p) for p in parts)
        except ValueError:
            raise ValueError(
                f"takes two depth bins LO HI (or LO,HI; 0..10) or 'all', got {' '.join(tokens)!r}; "
                "give it after the positional argument"
            ) from None
        return [lo, hi]

    def check(self, value: Any) -> list[int] | None:
        if value is None:
            return None
        if isinstance(value, str):
            return self.from_text(value)
        if not isinstance(value, Sequence) or len(value) != 2 or not all(_is_int(v) for v in value):
            raise ValueError(f"must be two depth bins [lo, hi] or null, got {value!r}")
        return [int(v) for v in value]


class Parsed(Kind):
    """A value read by ``parse`` (text -> value, ``ValueError`` on bad text), e.g. a shard ``I/N``."""

    def __init__(self, parse: Callable[[str], Any], metavar: str | None = None) -> None:
        self.parse, self.metavar = parse, metavar

    def from_text(self, text: str) -> Any:
        return self.parse(text)

    def check(self, value: Any) -> Any:
        return self.parse(value) if isinstance(value, str) else value
