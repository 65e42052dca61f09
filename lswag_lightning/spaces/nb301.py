"""NAS-Bench-301 (Siems et al. / Zela et al., ICLR 2022) in the DARTS space: NASLib's compact genotype encoding.

NAS-Bench-301 cells are DARTS cells (:mod:`lswag_lightning.spaces.darts`); NASLib and NAS-Bench-Suite-Zero key
them by a compact string ``"[[(input, op), ... 8 pairs], [... 8 pairs]]"``: the normal cell, then the reduction
cell; pair ``2i`` and ``2i + 1`` feed intermediate node ``i + 2``; ``input`` is a node (0, 1: the cell inputs;
2.. : earlier intermediate nodes) and ``op`` indexes :data:`NB301_OPS`. Both cells concatenate nodes 2..5.
``get_space("darts").decode`` reads this form; :func:`to_compact` writes it back (the same text as the keys).

The networks of NAS-Bench-Suite-Zero's NB301 proxy scores (and their ``params`` column, in millions) are the DARTS
evaluation network with 32 initial channels and 8 cells, the BatchNorms inside the cells' ops without affine
weights, no auxiliary head: :data:`NB301_BUILD_OPTIONS`. This module imports nothing from ``darts`` (which
imports it); it returns plain genotype fields for ``darts.validate_genotype`` to check.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np

NB301_OPS: tuple[str, ...] = (
    "max_pool_3x3",
    "avg_pool_3x3",
    "skip_connect",
    "sep_conv_3x3",
    "sep_conv_5x5",
    "dil_conv_3x3",
    "dil_conv_5x5",
)
"""NASLib's op index k of the compact encoding is ``NB301_OPS[k]``."""

NB301_BUILD_OPTIONS: dict[str, Any] = {"C": 32, "layers": 8, "op_affine": False, "auxiliary": False}
"""``darts`` build options of the NB301 networks whose parameter counts are NAS-Bench-Suite-Zero's ``params``."""

PAIRS_PER_CELL = 8
CONCAT = (2, 3, 4, 5)

_PAIR = r"[(\[]\d+,\d+[)\]]"
_CELL = rf"[(\[]{_PAIR}(?:,{_PAIR})*,?[)\]]"
_COMPACT = re.compile(rf"^[(\[]({_CELL}),({_CELL}),?[)\]]$")
_PAIRS = re.compile(r"[(\[](\d+),(\d+)[)\]]")


def _cell_pairs(value: Any, cell: str) -> list[tuple[int, int]]:
    if not isinstance(value, (list, tuple)):
        raise ValueError(
            f"NB301 compact: the {cell} cell must be a list of (input, op) pairs, got {type(value).__name__}"
        )
    pairs = []
    for k, pair in enumerate(value):
        if (
            not isinstance(pair, (list, tuple))
            or len(pair) != 2
            or not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in pair)
        ):
            raise ValueError(f"NB301 compact: {cell}[{k}] must be an (input, op) pair of ints, got {pair!r}"[:200])
        pairs.append((int(pair[0]), int(pair[1])))
    return pairs


def compact_fields(value: str | list | tuple) -> dict:
    """The four genotype fields (``normal``, ``normal_concat``, ``reduce``, ``reduce_concat``) of a compact NB301
    encoding, as text or nested lists; ``ValueError`` naming the bad cell / pair. Input nodes are checked by
    ``darts.validate_genotype``."""
    if isinstance(value, str):
        text = re.sub(r"\s+", "", value)
        match = _COMPACT.match(text)
        if match is None:
            raise ValueError(
                f"NB301 compact: expected '[[(input, op), ...{PAIRS_PER_CELL} pairs], [...]]' (normal "
                f"cell, then reduction cell), got {value[:80]!r}"
            )
        cells = [[(int(a), int(b)) for a, b in _PAIRS.findall(match.group(i))] for i in (1, 2)]
    elif isinstance(value, (list, tuple)):
        if len(value) != 2:
            raise ValueError(f"NB301 compact: expected 2 cells (normal, reduction), got {len(value)}")
        cells = [_cell_pairs(value[0], "normal"), _cell_pairs(value[1], "reduce")]
    else:
        raise ValueError(f"NB301 compact: expected a string or a pair of cells, got {type(value).__name__}")
    fields: dict = {}
    for name, pairs in zip(("normal", "reduce"), cells):
        if len(pairs) != PAIRS_PER_CELL:
            raise ValueError(
                f"NB301 compact: the {name} cell needs {PAIRS_PER_CELL} (input, op) pairs (2 per "
                f"intermediate node), got {len(pairs)}"
            )
        edges = []
        for k, (node, op) in enumerate(pairs):
            if not 0 <= op < len(NB301_OPS):
                raise ValueError(
                    f"NB301 compact: {name}[{k}]: op index {op} is unknown; indices: "
                    + ", ".join(f"{i} {o}" for i, o in enumerate(NB301_OPS))
                )
            edges.append([NB301_OPS[op], node])
        fields[name] = edges
        fields[f"{name}_concat"] = list(CONCAT)
    return fields


def to_compact(genotype: Any) -> str:
    """The compact NB301 string of a DARTS genotype (exactly the NASLib key text); ``ValueError`` when the
    genotype is outside NB301 (an op not in :data:`NB301_OPS`, or a concat other than nodes 2..5)."""
    cells = []
    for name in ("normal", "reduce"):
        concat = tuple(getattr(genotype, f"{name}_concat"))
        if concat != CONCAT:
            raise ValueError(f"NB301 compact: {name}_concat must be {list(CONCAT)}, got {list(concat)}")
        pairs = []
        for k, (op, node) in enumerate(getattr(genotype, name)):
            if op not in NB301_OPS:
                raise ValueError(f"NB301 compact: {name}[{k}]: op {op!r} is not an NB301 op ({', '.join(NB301_OPS)})")
            pairs.append((int(node), NB301_OPS.index(op)))
        cells.append(pairs)
    return str(cells)
