"""Values of a config space (a family defined in a YAML file): their hashable form, their kind and their canonical
text in an architecture key.

A key lists the family's choices as ``name=value`` in the file's order, joined by commas, e.g.
``depth=6,embed_dim=192,num_heads=3,mlp_ratio=4.0``. Value texts:

============================== ===========================================================================
value                          text
============================== ===========================================================================
int / float                    ``6`` / ``4.0``, ``1e-05`` (Python's ``repr``)
bool / None                    ``true`` / ``false`` / ``null``
string                         as written when it is a plain word (``token``, ``avg``), else JSON-quoted
list (a choice or per stage)   ``[1,2,2,1]``
Hydra node (``_target_``)      the target's last name, e.g. ``BasicBlock`` (for ``hydra.utils.get_class``
                               nodes the last name of ``path``), with its arguments in parentheses
============================== ===========================================================================

Parsing a key never evaluates it: each value's text is looked up among the texts of the allowed values.
"""

from __future__ import annotations

import json
import math
import numbers
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

#: a string written as is in a key; anything else is JSON-quoted
_PLAIN_WORD = re.compile(r"^[A-Za-z_][A-Za-z0-9_.+\-/]*$")
_RESERVED_WORDS = {"true", "false", "null", "inf", "nan"}
#: Hydra's getters: a node ``{_target_: hydra.utils.get_class, path: a.b.C}`` passes the class ``a.b.C`` itself
GETTER_TARGETS = ("hydra.utils.get_class", "hydra.utils.get_method", "hydra.utils.get_object")
_OPENERS, _CLOSERS = "[({", "])}"


@dataclass(frozen=True)
class FrozenMapping:
    """A mapping (a Hydra node or a plain dict argument) in hashable form; ``items`` keep the file's order."""

    items: tuple[tuple[str, Any], ...]

    def get(self, key: str, default: Any = None) -> Any:
        return dict(self.items).get(key, default)


def freeze(value: Any) -> Any:
    """``value`` in hashable form: lists -> tuples, mappings -> :class:`FrozenMapping`, recursively."""
    if isinstance(value, Mapping):
        return FrozenMapping(tuple((str(k), freeze(v)) for k, v in value.items()))
    if isinstance(value, (list, tuple)):
        return tuple(freeze(v) for v in value)
    return value


def thaw(value: Any) -> Any:
    """The plain form of a frozen value: tuples -> lists, :class:`FrozenMapping` -> dict, recursively."""
    if isinstance(value, FrozenMapping):
        return {k: thaw(v) for k, v in value.items}
    if isinstance(value, tuple):
        return [thaw(v) for v in value]
    return value


def is_node(value: Any) -> bool:
    """Whether ``value`` (frozen or plain) is a Hydra node, i.e. a mapping with a ``_target_``."""
    return isinstance(value, (FrozenMapping, Mapping)) and value.get("_target_") is not None


def has_node(value: Any) -> bool:
    """Whether a Hydra node occurs anywhere in ``value`` (plain form)."""
    if is_node(value):
        return True
    if isinstance(value, Mapping):
        return any(has_node(v) for v in value.values())
    if isinstance(value, (list, tuple)):
        return any(has_node(v) for v in value)
    return False


def kind_of(value: Any) -> str:
    """The kind of a frozen value: ``null``, ``bool``, ``number``, ``string``, ``list`` or ``mapping``; ints and
    floats are both ``number`` (a choice list may mix ``3.5`` and ``4``)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, numbers.Real):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, tuple):
        return "list"
    if isinstance(value, FrozenMapping):
        return "mapping"
    return type(value).__name__


def same_value(a: Any, b: Any) -> bool:
    """Equality of frozen values that keeps kinds apart (``True`` is not ``1``) but lets ``4 == 4.0``."""
    if kind_of(a) != kind_of(b):
        return False
    if isinstance(a, tuple):
        return len(a) == len(b) and all(same_value(x, y) for x, y in zip(a, b))
    return a == b


def text_of(value: Any) -> str:
    """The canonical text of a frozen value in a key (see the module docstring)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, numbers.Integral):
        return str(int(value))
    if isinstance(value, numbers.Real):
        return repr(float(value))
    if isinstance(value, str):
        plain = _PLAIN_WORD.match(value) and value.lower() not in _RESERVED_WORDS
        return value if plain else json.dumps(value)
    if isinstance(value, tuple):
        return "[" + ",".join(text_of(v) for v in value) + "]"
    if isinstance(value, FrozenMapping):
        return _node_text(value)
    raise TypeError(f"a value of type {type(value).__name__} has no key text")


def _node_text(node: FrozenMapping) -> str:
    """``BasicBlock`` for a getter node, ``ReLU(inplace=false)`` for a node with arguments, ``{a=1}`` for a dict."""
    target = node.get("_target_")
    args = [(k, v) for k, v in node.items if not (k.startswith("_") and k.endswith("_"))]
    if target is None:
        return "{" + ",".join(f"{k}={text_of(v)}" for k, v in args) + "}"
    if str(target) in GETTER_TARGETS and isinstance(node.get("path"), str):
        return str(node.get("path")).rsplit(".", 1)[-1]
    name = str(target).rsplit(".", 1)[-1]
    return name + ("(" + ",".join(f"{k}={text_of(v)}" for k, v in args) + ")" if args else "")


def float_alias(value: Any) -> str | None:
    """A second accepted text for an integral float (``4`` for ``4.0``), so a hand-typed key may drop the ``.0``."""
    if isinstance(value, float) and not isinstance(value, bool) and math.isfinite(value) and value == int(value):
        return str(int(value))
    return None


def split_top_level(text: str, sep: str = ",") -> list[str]:
    """``text`` split at each ``sep`` outside brackets and JSON strings; ``ValueError`` when brackets or quotes
    do not balance."""
    parts, depth, start, quoted, escaped = [], [], 0, False, False
    for i, char in enumerate(text):
        if quoted:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                quoted = False
        elif char == '"':
            quoted = True
        elif char in _OPENERS:
            depth.append(_CLOSERS[_OPENERS.index(char)])
        elif char in _CLOSERS:
            if not depth or depth.pop() != char:
                raise ValueError(f"unbalanced {char!r} at position {i}")
        elif char == sep and not depth:
            parts.append(text[start:i])
            start = i + 1
    if quoted or depth:
        raise ValueError("an unclosed quote or bracket")
    parts.append(text[start:])
    return parts


def short_list(texts: Sequence[str], limit: int = 12) -> str:
    """``a, b, c`` (with ``... (N in all)`` past ``limit`` items), for error messages."""
    shown = ", ".join(texts[:limit])
    return shown if len(texts) <= limit else f"{shown}, ... ({len(texts)} in all)"
