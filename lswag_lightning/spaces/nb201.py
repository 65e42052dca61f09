"""NAS-Bench-201 (Dong & Yang, ICLR 2020): the cell space and the exact benchmark network.

A cell is a 4-node DAG; each of its 6 edges carries one of 5 ops, giving 5**6 = 15,625 cells. Arch strings are
``|op~0|+|op~0|op~1|+|op~0|op~1|op~2|``: the groups are the edges into node 1, 2 and 3, ``~k`` the source node.
A spec (:class:`NB201Arch`) stores the 6 ops in that string order: edges 1<-0, 2<-0, 2<-1, 3<-0, 3<-1, 3<-2.

Benchmark index order: the benchmark enumerates the cells in ``itertools.product(OPS, repeat=6)`` order
(string edge order, first edge most significant, ``OPS`` order below) and shuffles that list once with
Python's ``random.Random(88).shuffle``; row ``i`` of the published tables is entry ``i``. The rule is computed
here, no table is read at run time (the tests check it against the published table).

The network is the benchmark's: a 3x3 conv + BN stem with ``C`` = 16 channels, three stages of ``N`` = 5 cells
with ``C``, ``2C``, ``4C`` channels, a residual reduction block (ReLU-Conv-BN 3x3 stride 2, ReLU-Conv-BN 3x3,
shortcut 2x2 avg-pool + 1x1 conv) between stages, then BN + ReLU, global average pooling and a linear
classifier. Conv ops are ReLU-Conv-BN, the pool is a 3x3 average pool (padding not counted), ``none`` outputs
zeros. All BatchNorms are affine; with 10 classes the parameter counts equal the published NAS-Bench-201 /
NAS-Bench-Suite-Zero ``params`` column.
"""

from __future__ import annotations

import functools
import itertools
import random
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from lswag_lightning.spaces.base import SearchSpace, as_generator, load_json_object, register_space
from lswag_lightning.spaces.cnn_ops import ReLUConvBN, make_op

OPS: tuple[str, ...] = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
EDGES: tuple[tuple[int, int], ...] = ((1, 0), (2, 0), (2, 1), (3, 0), (3, 1), (3, 2))
"""(target node, source node) of the 6 spec positions, in arch-string order."""
NUM_ARCHS = len(OPS) ** len(EDGES)
SHUFFLE_SEED = 88

_ELEMENT = re.compile(r"^([A-Za-z0-9_]+)~([0-9]+)$")


@dataclass(frozen=True)
class NB201Arch:
    """One NAS-Bench-201 cell: ``ops[k]`` is the op on edge ``EDGES[k]`` (arch-string order)."""

    ops: tuple[str, ...]

    def __str__(self) -> str:
        return arch_string(self.ops)


def arch_string(ops: tuple[str, ...] | list[str]) -> str:
    """The benchmark arch string of 6 ops given in string edge order."""
    a = list(ops)
    return f"|{a[0]}~0|+|{a[1]}~0|{a[2]}~1|+|{a[3]}~0|{a[4]}~1|{a[5]}~2|"


@functools.lru_cache(maxsize=1)
def _benchmark_order() -> tuple[tuple[str, ...], dict[str, int]]:
    archs = [arch_string(ops) for ops in itertools.product(OPS, repeat=len(EDGES))]
    random.Random(SHUFFLE_SEED).shuffle(archs)
    return tuple(archs), {s: i for i, s in enumerate(archs)}


def index_to_arch(index: int) -> str:
    """Arch string of benchmark index ``index`` (0..15624)."""
    if isinstance(index, bool) or not isinstance(index, (int, np.integer)) or not 0 <= index < NUM_ARCHS:
        raise ValueError(f"NB201 index must be an int in 0..{NUM_ARCHS - 1}, got {index!r}")
    return _benchmark_order()[0][int(index)]


def arch_to_index(arch: str | NB201Arch) -> int:
    """Benchmark index (0..15624) of an arch string or spec; the string is validated first."""
    spec = arch if isinstance(arch, NB201Arch) else parse_arch_string(arch)
    return _benchmark_order()[1][str(spec)]


def parse_arch_string(text: str) -> NB201Arch:
    """Parse ``|op~0|+|op~0|op~1|+|op~0|op~1|op~2|`` strictly; ``ValueError`` naming the bad edge/op."""
    if not isinstance(text, str):
        raise ValueError(f"NB201 arch must be a string, got {type(text).__name__}")
    s = text.strip()
    groups = s.split("+")
    if len(groups) != 3:
        raise ValueError(
            f"NB201 arch string must have 3 '+'-separated node groups "
            f"(|op~0|+|op~0|op~1|+|op~0|op~1|op~2|), got {len(groups)}: {text[:120]!r}"
        )
    ops: list[str] = []
    for node, group in enumerate(groups, start=1):
        if len(group) < 2 or not (group.startswith("|") and group.endswith("|")):
            raise ValueError(f"NB201 arch string: node {node} group {group[:60]!r} must be '|'-delimited")
        elements = group[1:-1].split("|")
        if len(elements) != node:
            raise ValueError(
                f"NB201 arch string: node {node} must have {node} incoming edge(s), "
                f"got {len(elements)} in {group[:60]!r}"
            )
        for source, element in enumerate(elements):
            match = _ELEMENT.match(element)
            if match is None:
                raise ValueError(
                    f"NB201 arch string: edge {node}<-{source}: malformed element "
                    f"{element[:60]!r}, expected 'op~{source}'"
                )
            op, src = match.group(1), int(match.group(2))
            if src != source:
                raise ValueError(
                    f"NB201 arch string: edge {node}<-{source}: source index must be {source}, got {src} in {element!r}"
                )
            if op not in OPS:
                raise ValueError(
                    f"NB201 arch string: edge {node}<-{source}: unknown op {op!r}; allowed ops: {', '.join(OPS)}"
                )
            ops.append(op)
    return NB201Arch(tuple(ops))


# ----------------------------------------------------------------------------------------------- modules
class ResidualReduction(nn.Module):
    """The stage transition: ReLUConvBN 3x3/2 -> ReLUConvBN 3x3, plus (2x2 avg-pool -> 1x1 conv) shortcut.

    (B, C_in, H, W) -> (B, C_out, H/2, W/2).
    """

    def __init__(self, c_in: int, c_out: int, affine: bool = True, track_running_stats: bool = True) -> None:
        super().__init__()
        self.conv_a = ReLUConvBN(c_in, c_out, 3, 2, 1, affine, track_running_stats)
        self.conv_b = ReLUConvBN(c_out, c_out, 3, 1, 1, affine, track_running_stats)
        self.downsample = nn.Sequential(
            nn.AvgPool2d(kernel_size=2, stride=2, padding=0),
            nn.Conv2d(c_in, c_out, kernel_size=1, stride=1, padding=0, bias=False),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.downsample(x) + self.conv_b(self.conv_a(x))


def four_node_cell(edges: nn.ModuleList, x: torch.Tensor) -> torch.Tensor:
    """The 4-node DAG of NB201 (and TransNAS-Bench-101 micro) cells: node 0 = ``x``, node j = Σ_{i<j} edge(node i),
    with ``edges`` in the order (1,0), (2,0), (2,1), (3,0), (3,1), (3,2); returns node 3."""
    nodes = [x]
    k = 0
    for target in range(1, 4):
        total = None
        for source in range(target):
            out = edges[k](nodes[source])
            total = out if total is None else total + out
            k += 1
        nodes.append(total)
    return nodes[-1]


class NB201Cell(nn.Module):
    """A cell: node 0 is the input, node j = sum of its incoming edges' ops, the output is node 3.

    ``edges[k]`` is the op on ``EDGES[k]``; shapes are preserved, (B, C, H, W) -> (B, C, H, W).
    """

    def __init__(self, arch: NB201Arch, channels: int, affine: bool = True, track_running_stats: bool = True) -> None:
        super().__init__()
        self.edges = nn.ModuleList(
            make_op(op, channels, 1, affine, track_running_stats, allowed=OPS, space="NB201") for op in arch.ops
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return four_node_cell(self.edges, x)


class NB201Network(nn.Module):
    """The NAS-Bench-201 macro network; (B, in_chans, H, W) -> logits (B, num_classes)."""

    def __init__(
        self,
        arch: NB201Arch,
        num_classes: int = 10,
        in_chans: int = 3,
        C: int = 16,
        N: int = 5,
        affine: bool = True,
        track_running_stats: bool = True,
    ) -> None:
        super().__init__()
        self.arch = arch
        self.stem = nn.Sequential(nn.Conv2d(in_chans, C, kernel_size=3, padding=1, bias=False), nn.BatchNorm2d(C))
        cells: list[nn.Module] = []
        c_prev = C
        for stage, channels in enumerate((C, 2 * C, 4 * C)):
            if stage > 0:
                cells.append(ResidualReduction(c_prev, channels, affine, track_running_stats))
            cells.extend(NB201Cell(arch, channels, affine, track_running_stats) for _ in range(N))
            c_prev = channels
        self.cells = nn.Sequential(*cells)
        self.lastact = nn.Sequential(nn.BatchNorm2d(c_prev), nn.ReLU(inplace=False))
        self.global_pooling = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(c_prev, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.lastact(self.cells(self.stem(x)))
        return self.classifier(torch.flatten(self.global_pooling(x), 1))


# ------------------------------------------------------------------------------------------------- space
@register_space("nb201")
class NB201Space(SearchSpace):
    """NAS-Bench-201 cells; specs are :class:`NB201Arch`, strings are the benchmark arch strings.

    Build options: ``C`` (stem / first-stage channels, 16), ``N`` (cells per stage, 5), ``affine`` and
    ``track_running_stats`` of the cell and reduction BatchNorms (True, as in the benchmark). ``img_size`` is
    accepted for the common interface; the network pools globally and works at any size >= 4.
    """

    name = "nb201"
    ops = OPS
    edges = EDGES
    num_archs = NUM_ARCHS

    def sample(self, rng: np.random.Generator | int | None) -> NB201Arch:
        gen = as_generator(rng)
        return NB201Arch(tuple(OPS[int(i)] for i in gen.integers(0, len(OPS), size=len(EDGES))))

    def mutate(self, spec: Any, rng: np.random.Generator | int | None) -> NB201Arch:
        """Change the op of one uniformly chosen edge to a different op."""
        spec = self.coerce(spec)
        gen = as_generator(rng)
        ops = list(spec.ops)
        k = int(gen.integers(len(EDGES)))
        choices = [op for op in OPS if op != ops[k]]
        ops[k] = choices[int(gen.integers(len(choices)))]
        return NB201Arch(tuple(ops))

    def encode(self, spec: Any) -> str:
        return str(self.coerce(spec))

    def decode(self, value: str | Mapping) -> NB201Arch:
        """Accepts an arch string, or a dict with exactly one of ``arch_str``, ``index``, ``ops`` (6 op names).

        A JSON object string (starting with ``{``) is read as such a dict.
        """
        if isinstance(value, NB201Arch):
            value = {"ops": value.ops}
        if isinstance(value, str):
            if value.lstrip().startswith("{"):
                value = load_json_object(value, "NB201 arch")
                if not isinstance(value, dict):
                    raise ValueError("NB201 arch: a JSON string must hold an object")
            else:
                return parse_arch_string(value)
        if not isinstance(value, Mapping):
            raise ValueError(f"NB201 arch must be an arch string or a dict, got {type(value).__name__}")
        keys = set(value)
        allowed = {"arch_str", "index", "ops"}
        if len(keys) != 1 or not keys <= allowed:
            raise ValueError(
                f"NB201 arch dict must have exactly one of the keys {sorted(allowed)}, got {sorted(map(str, keys))}"
            )
        (key,) = keys
        item = value[key]
        if key == "arch_str":
            return parse_arch_string(item)
        if key == "index":
            return parse_arch_string(index_to_arch(item))
        if not isinstance(item, (list, tuple)) or len(item) != len(EDGES):
            raise ValueError(
                f"NB201 arch: 'ops' must be a list of {len(EDGES)} op names "
                f"(edges {', '.join(f'{t}<-{s}' for t, s in EDGES)}), got {item!r}"[:300]
            )
        for k, op in enumerate(item):
            if op not in OPS:
                t, s = EDGES[k]
                raise ValueError(
                    f"NB201 arch: ops[{k}] (edge {t}<-{s}): unknown op {op!r}; allowed ops: {', '.join(OPS)}"
                )
        return NB201Arch(tuple(item))

    def index_to_arch(self, index: int) -> str:
        """Arch string of benchmark index ``index`` (0..15624)."""
        return index_to_arch(index)

    def arch_to_index(self, arch: str | NB201Arch) -> int:
        """Benchmark index of an arch string or spec."""
        return arch_to_index(arch)

    def build(
        self,
        spec: Any,
        num_classes: int = 10,
        in_chans: int = 3,
        img_size: int = 32,
        *,
        C: int = 16,
        N: int = 5,
        affine: bool = True,
        track_running_stats: bool = True,
    ) -> nn.Module:
        """The NB201 network for ``spec``: (B, in_chans, img_size, img_size) -> logits (B, num_classes)."""
        spec = self.coerce(spec)
        if img_size < 4:
            raise ValueError(f"img_size must be >= 4 for NB201's two stride-2 reductions, got {img_size}")
        return NB201Network(
            spec,
            num_classes=num_classes,
            in_chans=in_chans,
            C=C,
            N=N,
            affine=affine,
            track_running_stats=track_running_stats,
        )

    def param_count(
        self,
        spec: Any,
        num_classes: int = 10,
        in_chans: int = 3,
        img_size: int = 32,
        *,
        C: int = 16,
        N: int = 5,
        affine: bool = True,
        track_running_stats: bool = True,
    ) -> int:
        """Closed-form trainable parameter count (equals counting ``build(...)``)."""
        spec = self.coerce(spec)
        bn = 2 if affine else 0
        total = 9 * in_chans * C + 2 * C  # stem conv + BN (always affine)
        widths = (C, 2 * C, 4 * C)
        for c in widths:
            per_cell = sum(
                (9 * c * c + bn * c) if op == "nor_conv_3x3" else (c * c + bn * c) if op == "nor_conv_1x1" else 0
                for op in spec.ops
            )
            total += N * per_cell
        for c_in, c_out in zip(widths[:-1], widths[1:]):
            total += 9 * c_in * c_out + 9 * c_out * c_out + c_in * c_out + 2 * bn * c_out
        total += 2 * widths[-1]  # lastact BN
        total += widths[-1] * num_classes + num_classes
        return total
