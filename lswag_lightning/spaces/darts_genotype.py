"""DARTS genotypes as data (no torch): the :class:`Genotype` type, the paper's cells, the string grammar and the
checks.

A genotype describes a normal and a reduction cell. Each cell has two input nodes (0: the output of the cell
before the previous one, 1: the previous cell's output) and 4 intermediate nodes 2..5; node ``i + 2`` sums two
ops applied to earlier nodes ``0 .. i + 1``. ``normal[2*i]`` and ``normal[2*i + 1]`` are the ``(op, input)`` pairs
of node ``i + 2``. The cell output concatenates the nodes in ``*_concat`` (normally ``[2, 3, 4, 5]``).

String form, exactly the DARTS one (``genotypes.py`` / search logs)::

    Genotype(normal=[('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ...], normal_concat=[2, 3, 4, 5],
             reduce=[('max_pool_3x3', 0), ...], reduce_concat=[2, 3, 4, 5])

It is read by a small tokenizer and recursive-descent parser that accepts only that grammar (keyword fields in
any order, lists or tuples, single or double quotes, ``range(a, b)`` for a concat); nothing is evaluated.
The network and the search space are in :mod:`lswag_lightning.spaces.darts`, which imports this module (never the
reverse) and re-exports its public names.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

OPS: tuple[str, ...] = (
    "none",
    "max_pool_3x3",
    "avg_pool_3x3",
    "skip_connect",
    "sep_conv_3x3",
    "sep_conv_5x5",
    "dil_conv_3x3",
    "dil_conv_5x5",
)
STEPS = 4
CONCAT_DEFAULT = (2, 3, 4, 5)
_FIELDS = ("normal", "normal_concat", "reduce", "reduce_concat")

Edge = tuple[str, int]


@dataclass(frozen=True)
class Genotype:
    """A DARTS genotype: 8 ``(op, input)`` pairs and the concatenated nodes, for the normal and reduce cells.

    ``benchmark`` names the benchmark whose trained networks ``DartsSpace.build`` builds by default: ``"nb301"``
    for a genotype decoded from NAS-Bench-301's compact key
    (:data:`lswag_lightning.spaces.darts.BENCHMARK_BUILD_OPTIONS`), else None (the space's own defaults). It is
    not part of the genotype's identity: equality, hashing and ``str`` ignore it.
    """

    normal: tuple[Edge, ...]
    normal_concat: tuple[int, ...]
    reduce: tuple[Edge, ...]
    reduce_concat: tuple[int, ...]
    benchmark: str | None = field(default=None, compare=False)

    def __str__(self) -> str:
        def edges(es: tuple[Edge, ...]) -> str:
            return "[" + ", ".join(f"('{op}', {i})" for op, i in es) + "]"

        def ints(cs: tuple[int, ...]) -> str:
            return "[" + ", ".join(map(str, cs)) + "]"

        return (
            f"Genotype(normal={edges(self.normal)}, normal_concat={ints(self.normal_concat)}, "
            f"reduce={edges(self.reduce)}, reduce_concat={ints(self.reduce_concat)})"
        )

    def to_dict(self) -> dict:
        """JSON-ready dict: edges as ``[op, input]`` lists."""
        return {
            "normal": [list(e) for e in self.normal],
            "normal_concat": list(self.normal_concat),
            "reduce": [list(e) for e in self.reduce],
            "reduce_concat": list(self.reduce_concat),
        }


DARTS_V1 = Genotype(
    normal=(
        ("sep_conv_3x3", 1),
        ("sep_conv_3x3", 0),
        ("skip_connect", 0),
        ("sep_conv_3x3", 1),
        ("skip_connect", 0),
        ("sep_conv_3x3", 1),
        ("sep_conv_3x3", 0),
        ("skip_connect", 2),
    ),
    normal_concat=CONCAT_DEFAULT,
    reduce=(
        ("max_pool_3x3", 0),
        ("max_pool_3x3", 1),
        ("skip_connect", 2),
        ("max_pool_3x3", 0),
        ("max_pool_3x3", 0),
        ("skip_connect", 2),
        ("skip_connect", 2),
        ("avg_pool_3x3", 0),
    ),
    reduce_concat=CONCAT_DEFAULT,
)
"""The first-order DARTS cell of the DARTS paper."""

DARTS_V2 = Genotype(
    normal=(
        ("sep_conv_3x3", 0),
        ("sep_conv_3x3", 1),
        ("sep_conv_3x3", 0),
        ("sep_conv_3x3", 1),
        ("sep_conv_3x3", 1),
        ("skip_connect", 0),
        ("skip_connect", 0),
        ("dil_conv_3x3", 2),
    ),
    normal_concat=CONCAT_DEFAULT,
    reduce=(
        ("max_pool_3x3", 0),
        ("max_pool_3x3", 1),
        ("skip_connect", 2),
        ("max_pool_3x3", 1),
        ("max_pool_3x3", 0),
        ("skip_connect", 2),
        ("skip_connect", 2),
        ("max_pool_3x3", 1),
    ),
    reduce_concat=CONCAT_DEFAULT,
)
"""The second-order DARTS cell of the DARTS paper (3.3M parameters on CIFAR-10 with C=36, 20 cells)."""


# ------------------------------------------------------------------------------------------------ parser
_TOKEN = re.compile(
    r"\s*(?:(?P<name>[A-Za-z_][A-Za-z0-9_]*)|(?P<int>[0-9]+)"
    r"|(?P<str>'[A-Za-z0-9_]*'|\"[A-Za-z0-9_]*\")|(?P<punct>[()\[\],=]))"
)


def _tokenize(text: str) -> list[tuple[str, str, int]]:
    """(kind, value, position) tokens; anything outside the genotype alphabet is a ``ValueError``."""
    tokens = []
    pos = 0
    end = len(text.rstrip())
    while pos < end:
        match = _TOKEN.match(text, pos)
        if match is None or match.end() == pos:
            bad = text[pos:].lstrip()[:20]
            raise ValueError(
                f"DARTS genotype: unexpected character(s) {bad!r} at position "
                f"{len(text) - len(text[pos:].lstrip())}; only Genotype(normal=[('op', i), ...], "
                "normal_concat=[...], reduce=[...], reduce_concat=[...]) is accepted"
            )
        kind = match.lastgroup
        value = match.group(kind)
        if kind == "str":
            value = value[1:-1]
        tokens.append((kind, value, match.start(kind)))
        pos = match.end()
    return tokens


class _Parser:
    """Recursive-descent parser for the ``Genotype(...)`` grammar; yields plain Python lists and ints."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = _tokenize(text)
        self.i = 0

    def _peek(self) -> tuple[str, str, int] | None:
        return self.tokens[self.i] if self.i < len(self.tokens) else None

    def _fail(self, expected: str) -> None:
        tok = self._peek()
        got = "end of input" if tok is None else f"{tok[1]!r} at position {tok[2]}"
        raise ValueError(f"DARTS genotype: expected {expected}, got {got}")

    def _take(self, kind: str, value: str | None = None, expected: str | None = None) -> str:
        tok = self._peek()
        if tok is None or tok[0] != kind or (value is not None and tok[1] != value):
            self._fail(expected or (repr(value) if value else kind))
        self.i += 1
        return tok[1]

    def _at(self, value: str) -> bool:
        tok = self._peek()
        return tok is not None and tok[0] == "punct" and tok[1] == value

    def _sequence(self, item, what: str) -> list:
        """A ``[...]`` or ``(...)`` list of ``item()`` with an optional trailing comma."""
        if self._at("["):
            close = "]"
        elif self._at("("):
            close = ")"
        else:
            self._fail(f"a list for {what}")
        self.i += 1
        out = []
        while not self._at(close):
            out.append(item())
            if self._at(","):
                self.i += 1
            elif not self._at(close):
                self._fail(f"',' or {close!r} in {what}")
        self.i += 1
        return out

    def _int(self) -> int:
        return int(self._take("int", expected="an integer"))

    def _edge(self) -> list:
        self._take("punct", "(", expected="'(' starting an (op, input) pair")
        op = self._take("str", expected="a quoted op name")
        self._take("punct", ",", expected="',' in an (op, input) pair")
        index = self._int()
        if self._at(","):
            self.i += 1
        self._take("punct", ")", expected="')' closing an (op, input) pair")
        return [op, index]

    def _concat(self, field: str) -> list[int]:
        tok = self._peek()
        if tok is not None and tok[0] == "name":
            if tok[1] != "range":
                self._fail(f"a list of node indices or range(a, b) for {field}")
            self.i += 1
            self._take("punct", "(", expected="'(' after range")
            start = self._int()
            self._take("punct", ",", expected="',' in range(a, b)")
            stop = self._int()
            self._take("punct", ")", expected="')' closing range(a, b)")
            return list(range(start, stop))
        return self._sequence(self._int, field)

    def parse(self) -> dict:
        self._take("name", "Genotype", expected="'Genotype'")
        self._take("punct", "(", expected="'(' after Genotype")
        fields: dict = {}
        while not self._at(")"):
            name = self._take("name", expected="a field name (normal, normal_concat, reduce, reduce_concat)")
            if name not in _FIELDS:
                raise ValueError(f"DARTS genotype: unknown field {name!r}; allowed fields: {', '.join(_FIELDS)}")
            if name in fields:
                raise ValueError(f"DARTS genotype: field {name!r} given twice")
            self._take("punct", "=", expected=f"'=' after {name}")
            if name.endswith("_concat"):
                fields[name] = self._concat(name)
            else:
                fields[name] = self._sequence(self._edge, name)
            if self._at(","):
                self.i += 1
            elif not self._at(")"):
                self._fail("',' or ')' between Genotype fields")
        self.i += 1
        if self._peek() is not None:
            self._fail("end of input after Genotype(...)")
        return fields


def parse_genotype(text: str) -> Genotype:
    """Parse and validate a DARTS genotype string (never evaluated); ``ValueError`` naming the bad field."""
    if not isinstance(text, str):
        raise ValueError(f"DARTS genotype must be a string, got {type(text).__name__}")
    return validate_genotype(_Parser(text).parse())


def validate_genotype(data: Mapping) -> Genotype:
    """Check a dict of the four genotype fields and return the :class:`Genotype`.

    Each cell needs ``2 * 4`` edges ``(op, input)`` with ``op`` in :data:`OPS` and, for node ``i + 2``
    (edges ``2i``, ``2i + 1``), ``input`` in ``0 .. i + 1``; a concat is a non-empty increasing list of
    intermediate nodes (2..5).
    """
    keys = set(map(str, data))
    unknown = sorted(keys - set(_FIELDS))
    if unknown:
        raise ValueError(f"DARTS genotype: unknown field(s) {unknown}; allowed fields: {', '.join(_FIELDS)}")
    missing = [f for f in _FIELDS if f not in keys]
    if missing:
        raise ValueError(f"DARTS genotype: missing field(s) {missing}; required: {', '.join(_FIELDS)}")
    out = {}
    for cell in ("normal", "reduce"):
        edges = data[cell]
        if not isinstance(edges, (list, tuple)) or len(edges) != 2 * STEPS:
            n = len(edges) if isinstance(edges, (list, tuple)) else type(edges).__name__
            raise ValueError(
                f"DARTS genotype: {cell} must list {2 * STEPS} (op, input) pairs "
                f"(2 per intermediate node, {STEPS} nodes), got {n}"
            )
        checked = []
        for k, edge in enumerate(edges):
            if not isinstance(edge, (list, tuple)) or len(edge) != 2:
                raise ValueError(f"DARTS genotype: {cell}[{k}] must be an (op, input) pair, got {edge!r}"[:200])
            op, index = edge
            if not isinstance(op, str) or op not in OPS:
                raise ValueError(f"DARTS genotype: {cell}[{k}]: unknown op {op!r}; allowed ops: {', '.join(OPS)}")
            node = k // 2 + 2
            if isinstance(index, bool) or not isinstance(index, (int, np.integer)) or not 0 <= index < node:
                raise ValueError(
                    f"DARTS genotype: {cell}[{k}]: input {index!r} is invalid for node {node}; "
                    f"allowed inputs: 0..{node - 1}"
                )
            checked.append((op, int(index)))
        out[cell] = tuple(checked)
        field = f"{cell}_concat"
        concat = data[field]
        if isinstance(concat, range):
            concat = list(concat)
        if not isinstance(concat, (list, tuple)) or not concat:
            raise ValueError(
                f"DARTS genotype: {field} must be a non-empty list of nodes from 2..{STEPS + 1}, got {concat!r}"[:200]
            )
        for c in concat:
            if isinstance(c, bool) or not isinstance(c, (int, np.integer)) or not 2 <= c <= STEPS + 1:
                raise ValueError(f"DARTS genotype: {field}: node {c!r} is invalid; allowed nodes: 2..{STEPS + 1}")
        if list(concat) != sorted(set(concat)):
            raise ValueError(f"DARTS genotype: {field} must be strictly increasing without repeats, got {list(concat)}")
        out[field] = tuple(int(c) for c in concat)
    return Genotype(**out)
