"""NAS-Bench-101 (Ying et al., ICML 2019): the cell space and the benchmark's CIFAR-10 network.

A cell is a DAG of up to 7 vertices given by an upper-triangular 0/1 adjacency ``matrix`` (``matrix[i][j] = 1``:
an edge i -> j) and one op per vertex: vertex 0 is ``input``, the last is ``output``, the others are
``conv3x3-bn-relu``, ``conv1x1-bn-relu`` or ``maxpool3x3``. A spec (:class:`NB101Arch`) keeps the matrix and
ops as given; vertices that lie on no input -> output path are pruned when the network is built (as the
benchmark does), so specs that differ only in dead vertices build the same network. The benchmark's limit of 9
edges applies to the pruned cell: NAS-Bench-Suite-Zero's keys hold unpruned 7-vertex cells with up to 16 edges
(9 or fewer once pruned; 55 of its 500 cells prune to a bare input -> output projection).

Accepted forms (:meth:`NB101Space.decode`):

- NAS-Bench-Suite-Zero / NASLib's key: the string of a 56-int tuple, ``"(0, 1, 1, ..., 4, 1)"``: the 7x7 matrix
  flattened row by row, then the 7 op codes ``0 input, 1 output, 2 maxpool3x3, 3 conv1x1-bn-relu,
  4 conv3x3-bn-relu`` (or that list of 56 ints);
- the benchmark's ``{"matrix": [[...]], "ops": ["input", ..., "output"]}`` (a dict or its JSON string; ops may
  also be the int codes above).

``encode`` gives the NASLib tuple string for 7-vertex cells (so a benchmark key encodes to itself) and the
compact JSON ``{"matrix": ..., "ops": ...}`` for smaller ones.

The network is the benchmark's: a 3x3 conv-BN-ReLU stem with 128 channels, 3 stacks of 3 cells, a 2x2 max-pool
(stride 2) before stacks 2 and 3 where the channels double, global average pooling and a linear classifier.
Inside a cell the output channels are split evenly over the vertices feeding the output (the first ones get
one more when it does not divide); every other vertex gets the largest width among its successors. A vertex
sums its inputs (other vertices' outputs truncated to its width; the cell input through a 1x1 conv-BN-ReLU
projection) and applies its op; the output concatenates the vertices feeding it and adds a projection of the
cell input when the input feeds the output directly. Convs have no bias, BatchNorms are affine: with 10
classes the parameter counts equal the published NAS-Bench-101 ``trainable_parameters`` (NAS-Bench-Suite-Zero's
``params`` column, in millions).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from lswag_lightning.spaces.base import SearchSpace, as_generator, load_json_object, register_space

INPUT, OUTPUT = "input", "output"
CONV3X3, CONV1X1, MAXPOOL3X3 = "conv3x3-bn-relu", "conv1x1-bn-relu", "maxpool3x3"
OPS: tuple[str, ...] = (CONV3X3, CONV1X1, MAXPOOL3X3)
"""The interior vertex ops."""
NASLIB_OP_CODES: tuple[str, ...] = (INPUT, OUTPUT, MAXPOOL3X3, CONV1X1, CONV3X3)
"""NASLib's op code k is ``NASLIB_OP_CODES[k]``."""
MAX_VERTICES = 7
MAX_EDGES = 9

_TUPLE = re.compile(r"^\s*[(\[]\s*(\d+\s*(?:,\s*\d+\s*)*),?\s*[)\]]\s*$")


@dataclass(frozen=True)
class NB101Arch:
    """One NAS-Bench-101 cell: ``matrix`` (n x n, 0/1, strictly upper triangular) and the ``n`` vertex ops."""

    matrix: tuple[tuple[int, ...], ...]
    ops: tuple[str, ...]

    @property
    def num_vertices(self) -> int:
        return len(self.ops)

    def to_dict(self) -> dict:
        """``{"matrix": [[...]], "ops": [...]}`` (the benchmark's ModelSpec form)."""
        return {"matrix": [list(r) for r in self.matrix], "ops": list(self.ops)}


def _fail(msg: str) -> None:
    raise ValueError(f"NB101 arch: {msg}")


def validate_arch(matrix: Any, ops: Any) -> NB101Arch:
    """Check a matrix and op list (names or NASLib codes) and return the spec; ``ValueError`` naming the fault."""
    if not isinstance(matrix, (list, tuple, np.ndarray)) or not isinstance(ops, (list, tuple, np.ndarray)):
        _fail(f"'matrix' must be a list of rows and 'ops' a list, got {type(matrix).__name__} and {type(ops).__name__}")
    n = len(ops)
    if not 2 <= n <= MAX_VERTICES:
        _fail(f"a cell has 2..{MAX_VERTICES} vertices, got {n} ops")
    rows = [list(r) if isinstance(r, (list, tuple, np.ndarray)) else None for r in matrix]
    if len(rows) != n or any(r is None or len(r) != n for r in rows):
        _fail(f"'matrix' must be {n} x {n} (one row and column per op), got {len(rows)} row(s)")
    for i, row in enumerate(rows):
        for j, v in enumerate(row):
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v not in (0, 1):
                _fail(f"matrix[{i}][{j}] must be 0 or 1, got {v!r}")
            if v and j <= i:
                _fail(f"matrix[{i}][{j}] = 1 is not above the diagonal; edges go from a lower to a higher vertex")
    names = []
    for k, op in enumerate(ops):
        if isinstance(op, (int, np.integer)) and not isinstance(op, bool):
            if not 0 <= op < len(NASLIB_OP_CODES):
                _fail(
                    f"ops[{k}]: op code {op} is unknown; codes: "
                    + ", ".join(f"{c} {name}" for c, name in enumerate(NASLIB_OP_CODES))
                )
            op = NASLIB_OP_CODES[int(op)]
        expected = INPUT if k == 0 else OUTPUT if k == n - 1 else None
        if expected is not None and op != expected:
            _fail(f"ops[{k}] must be {expected!r} (vertex {k} is the cell's {expected}), got {op!r}")
        if expected is None and op not in OPS:
            _fail(f"ops[{k}]: unknown op {op!r}; interior ops: {', '.join(OPS)}")
        names.append(str(op))
    spec = NB101Arch(tuple(tuple(int(v) for v in r) for r in rows), tuple(names))
    if not live_vertices(spec):
        _fail("the output is not reachable from the input (no input -> output path)")
    edges = int(np.sum(prune(spec).matrix))
    if edges > MAX_EDGES:
        _fail(
            f"{edges} edges after pruning the vertices off every input -> output path; NAS-Bench-101 allows at "
            f"most {MAX_EDGES}"
        )
    return spec


def live_vertices(spec: NB101Arch) -> list[int]:
    """Vertices on some input -> output path, ascending; empty when the output is unreachable."""
    m = np.asarray(spec.matrix)
    n = len(spec.ops)
    from_input = np.zeros(n, bool)
    from_input[0] = True
    for j in range(1, n):
        from_input[j] = bool((m[:j, j] & from_input[:j]).any())
    to_output = np.zeros(n, bool)
    to_output[n - 1] = True
    for i in range(n - 2, -1, -1):
        to_output[i] = bool((m[i, i + 1 :] & to_output[i + 1 :]).any())
    live = from_input & to_output
    return [int(v) for v in np.flatnonzero(live)] if live[0] and live[-1] else []


def prune(spec: NB101Arch) -> NB101Arch:
    """The spec without the vertices that lie on no input -> output path (what the benchmark builds)."""
    keep = live_vertices(spec)
    m = np.asarray(spec.matrix)[np.ix_(keep, keep)]
    return NB101Arch(tuple(tuple(int(v) for v in r) for r in m), tuple(spec.ops[v] for v in keep))


def vertex_channels(c_in: int, c_out: int, matrix: np.ndarray) -> list[int]:
    """Output channels of every vertex of a pruned cell (input ``c_in``, output ``c_out``); see the module doc."""
    n = matrix.shape[0]
    channels = [0] * n
    channels[0], channels[-1] = c_in, c_out
    if n == 2:
        return channels
    feeding = [v for v in range(1, n - 1) if matrix[v, n - 1]]
    base, extra = divmod(c_out, len(feeding))
    for k, v in enumerate(feeding):
        channels[v] = base + (1 if k < extra else 0)
    for v in range(n - 3, 0, -1):
        if not matrix[v, n - 1]:
            channels[v] = max(channels[dst] for dst in range(v + 1, n - 1) if matrix[v, dst])
    return channels


# ----------------------------------------------------------------------------------------------- modules
class ConvBNReLU(nn.Sequential):
    """Conv2d (no bias, 'same' padding) -> BatchNorm2d -> ReLU; (B, C_in, H, W) -> (B, C_out, H, W)."""

    def __init__(self, c_in: int, c_out: int, kernel_size: int) -> None:
        super().__init__(
            nn.Conv2d(c_in, c_out, kernel_size, padding=kernel_size // 2, bias=False),
            nn.BatchNorm2d(c_out),
            nn.ReLU(inplace=False),
        )


def _vertex_op(name: str, channels: int) -> nn.Module:
    if name == CONV3X3:
        return ConvBNReLU(channels, channels, 3)
    if name == CONV1X1:
        return ConvBNReLU(channels, channels, 1)
    return nn.MaxPool2d(3, stride=1, padding=1)


class NB101Cell(nn.Module):
    """One cell (a pruned spec); (B, c_in, H, W) -> (B, c_out, H, W)."""

    def __init__(self, spec: NB101Arch, c_in: int, c_out: int) -> None:
        super().__init__()
        self.matrix = np.asarray(spec.matrix, dtype=bool)
        n = len(spec.ops)
        self.channels = vertex_channels(c_in, c_out, self.matrix)
        self.ops = nn.ModuleDict({str(v): _vertex_op(spec.ops[v], self.channels[v]) for v in range(1, n - 1)})
        self.projections = nn.ModuleDict(
            {str(v): ConvBNReLU(c_in, self.channels[v], 1) for v in range(1, n) if self.matrix[0, v]}
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n = len(self.channels)
        states = [x]
        for v in range(1, n - 1):
            width = self.channels[v]
            inputs = [states[u][:, :width] for u in range(1, v) if self.matrix[u, v]]
            if self.matrix[0, v]:
                inputs.append(self.projections[str(v)](x))
            states.append(self.ops[str(v)](sum(inputs)))
        feeding = [states[v] for v in range(1, n - 1) if self.matrix[v, n - 1]]
        if not feeding:
            return self.projections[str(n - 1)](x)
        out = feeding[0] if len(feeding) == 1 else torch.cat(feeding, dim=1)
        if self.matrix[0, n - 1]:
            out = out + self.projections[str(n - 1)](x)
        return out


class NB101Network(nn.Module):
    """The NAS-Bench-101 network; (B, in_chans, H, W) -> logits (B, num_classes), H and W >= 4."""

    def __init__(
        self,
        spec: NB101Arch,
        num_classes: int = 10,
        in_chans: int = 3,
        stem_channels: int = 128,
        num_stacks: int = 3,
        cells_per_stack: int = 3,
    ) -> None:
        super().__init__()
        self.arch = spec
        cell = prune(spec)
        layers: list[nn.Module] = [ConvBNReLU(in_chans, stem_channels, 3)]
        c_in = c_out = stem_channels
        for stack in range(num_stacks):
            if stack > 0:
                layers.append(nn.MaxPool2d(2, stride=2))
                c_out *= 2
            for _ in range(cells_per_stack):
                layers.append(NB101Cell(cell, c_in, c_out))
                c_in = c_out
        self.layers = nn.Sequential(*layers)
        self.classifier = nn.Linear(c_out, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.layers(x).mean(dim=(2, 3)))


# ------------------------------------------------------------------------------------------------- space
def _parse_tuple_text(text: str) -> list[int]:
    match = _TUPLE.match(text)
    if match is None:
        _fail(
            f'a string must be NASLib\'s tuple of {MAX_VERTICES**2 + MAX_VERTICES} ints "(0, 1, ...)" or a '
            f'JSON object {{"matrix": [[...]], "ops": [...]}}, got {text[:80]!r}'
        )
    return [int(v) for v in match.group(1).split(",")]


def _from_flat(values: list[Any]) -> NB101Arch:
    n = MAX_VERTICES
    if len(values) != n * n + n:
        _fail(f"NASLib's key holds {n * n + n} ints ({n}x{n} matrix row by row, then {n} op codes), got {len(values)}")
    return validate_arch([values[i * n : (i + 1) * n] for i in range(n)], values[n * n :])


@register_space("nb101")
class NB101Space(SearchSpace):
    """NAS-Bench-101 cells; specs are :class:`NB101Arch` (see the module docstring for the accepted forms).

    Build options: ``stem_channels`` (128), ``num_stacks`` (3), ``cells_per_stack`` (3), as in the benchmark.
    ``img_size`` is accepted for the common interface; the network pools globally and needs >= 4 px for its
    two 2x2 max-pools.
    """

    name = "nb101"
    ops = OPS

    def sample(self, rng: np.random.Generator | int | None) -> NB101Arch:
        """A uniform random 7-vertex cell (each upper-triangular edge with probability 1/2, interior ops uniform),
        redrawn until it is valid (output reachable from the input, <= 9 edges once pruned), as the benchmark's
        own random sampler does."""
        gen = as_generator(rng)
        n = MAX_VERTICES
        while True:
            matrix = np.triu(gen.integers(0, 2, size=(n, n)), 1)
            ops = [INPUT, *(OPS[int(i)] for i in gen.integers(0, len(OPS), size=n - 2)), OUTPUT]
            try:
                return validate_arch(matrix.tolist(), ops)
            except ValueError:
                continue

    def mutate(self, spec: Any, rng: np.random.Generator | int | None) -> NB101Arch:
        """Flip one upper-triangular edge or change one interior op, redrawn until the result is valid and its
        pruned cell differs from ``spec``'s."""
        spec = self.coerce(spec)
        gen = as_generator(rng)
        n = spec.num_vertices
        target = prune(spec)
        for _ in range(1000):
            matrix = np.array(spec.matrix)
            ops = list(spec.ops)
            if n > 2 and gen.integers(2) == 0:
                v = int(gen.integers(1, n - 1))
                ops[v] = [op for op in OPS if op != ops[v]][int(gen.integers(len(OPS) - 1))]
            else:
                i, j = (int(k) for k in sorted(gen.choice(n, size=2, replace=False)))
                matrix[i, j] = 1 - matrix[i, j]
            try:
                child = validate_arch(matrix.tolist(), ops)
            except ValueError:
                continue
            if prune(child) != target:
                return child
        raise ValueError(f"NB101: no valid mutation of {self.encode(spec)} found in 1000 draws")

    def encode(self, spec: Any) -> str:
        spec = self.coerce(spec)
        if spec.num_vertices == MAX_VERTICES:
            codes = [NASLIB_OP_CODES.index(op) for op in spec.ops]
            return str(tuple(v for row in spec.matrix for v in row) + tuple(codes))
        return json.dumps(spec.to_dict(), separators=(",", ":"))

    def decode(self, value: str | Mapping | list | tuple | NB101Arch) -> NB101Arch:
        """Parse NASLib's 56-int key (string or list), ``{"matrix", "ops"}`` (dict or JSON string) or a spec."""
        if isinstance(value, NB101Arch):
            return validate_arch(value.matrix, value.ops)
        if isinstance(value, str):
            if value.lstrip().startswith("{"):
                value = load_json_object(value, "NB101 arch")
                if not isinstance(value, dict):
                    _fail("a JSON string must hold an object with 'matrix' and 'ops'")
            else:
                return _from_flat(_parse_tuple_text(value))
        if isinstance(value, (list, tuple)):
            return _from_flat(list(value))
        if not isinstance(value, Mapping):
            _fail(
                f"expected NASLib's tuple string, a list of 56 ints or a dict with 'matrix' and 'ops', got "
                f"{type(value).__name__}"
            )
        if set(value) != {"matrix", "ops"}:
            _fail(f"a dict must have exactly the keys 'matrix' and 'ops', got {sorted(map(str, value))}")
        return validate_arch(value["matrix"], value["ops"])

    def build(
        self,
        spec: Any,
        num_classes: int = 10,
        in_chans: int = 3,
        img_size: int = 32,
        *,
        stem_channels: int = 128,
        num_stacks: int = 3,
        cells_per_stack: int = 3,
    ) -> nn.Module:
        """The NB101 network for ``spec``: (B, in_chans, img_size, img_size) -> logits (B, num_classes)."""
        spec = self.coerce(spec)
        if img_size < 2 ** (num_stacks - 1):
            raise ValueError(
                f"img_size must be >= {2 ** (num_stacks - 1)} for {num_stacks - 1} 2x2 max-pools, got {img_size}"
            )
        if stem_channels < 1 or num_stacks < 1 or cells_per_stack < 1:
            raise ValueError(
                f"stem_channels, num_stacks and cells_per_stack must be >= 1, got {stem_channels}, "
                f"{num_stacks}, {cells_per_stack}"
            )
        return NB101Network(
            spec,
            num_classes=num_classes,
            in_chans=in_chans,
            stem_channels=stem_channels,
            num_stacks=num_stacks,
            cells_per_stack=cells_per_stack,
        )

    def param_count(
        self,
        spec: Any,
        num_classes: int = 10,
        in_chans: int = 3,
        img_size: int = 32,
        *,
        stem_channels: int = 128,
        num_stacks: int = 3,
        cells_per_stack: int = 3,
    ) -> int:
        """Closed-form trainable parameter count (equals counting ``build(...)``; no network is built)."""
        cell = prune(self.coerce(spec))
        m = np.asarray(cell.matrix, dtype=bool)
        n = len(cell.ops)
        total = 9 * in_chans * stem_channels + 2 * stem_channels
        c_in = c_out = stem_channels
        for stack in range(num_stacks):
            if stack > 0:
                c_out *= 2
            for _ in range(cells_per_stack):
                ch = vertex_channels(c_in, c_out, m)
                for v in range(1, n):
                    if m[0, v]:
                        total += c_in * ch[v] + 2 * ch[v]
                    if v < n - 1 and cell.ops[v] != MAXPOOL3X3:
                        k = 9 if cell.ops[v] == CONV3X3 else 1
                        total += k * ch[v] * ch[v] + 2 * ch[v]
                c_in = c_out
        return total + c_out * num_classes + num_classes
