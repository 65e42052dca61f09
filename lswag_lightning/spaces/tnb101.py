"""TransNAS-Bench-101 (Duan et al., CVPR 2021): the micro (cell) and macro (skeleton) spaces and their networks.

Both spaces share one network family (TransNAS-Bench's ``MacroNet`` with a classification head): a stem (3x3
conv stride 2 to 32 channels + BN, then ReLU-conv3x3-BN stride 2 to 64), a sequence of layers of two blocks
each, global average pooling and a linear head. A layer code ``t`` in 1..4 says whether the layer doubles the
channels (``t`` even) and halves the resolution (``t`` > 2) in its first block.

- ``tnb101_micro``: the skeleton is fixed (``41414``: 64 -> 512 channels) and the block is a 4-node cell whose
  6 edges each carry an op code ``0 zero, 1 identity (factorized reduce when the shape changes), 2 ReLU-conv1x1-
  BN, 3 ReLU-conv3x3-BN``, in the order node1<-0, node2<-0, node2<-1, node3<-0, node3<-1, node3<-2 (TransNAS
  string ``64-41414-a_bc_def``). NAS-Bench-Suite-Zero's key ``"(a, b, c, d, e, f)"`` holds these codes in this
  order: with that reading every micro network of its file has the published ``params`` (NASLib's own
  ``OP_NAMES`` list orders the ops differently, but its model builder uses the TransNAS codes).
- ``tnb101_macro``: the block is a ResNet basic block (two ReLU-conv3x3-BN, a 1x1 conv + BN shortcut when the
  shape changes) and the skeleton is searched: 4 to 6 layer codes with 1 to 4 resolution halvings and 1 to 3
  channel doublings. NASLib's key is the codes padded with zeros to 6 (``"(1, 2, 4, 2, 0, 0)"``; TransNAS
  string ``64-1242-basic``).

The published parameter counts (millions in NASLib's file) are the ``class_scene`` (63 classes) and
``class_object`` (100 classes) networks: encoder + ``Linear(C_out, num_classes)``. The other tasks' decoders
(autoencoder, normal, segmentation, jigsaw, room layout) are not built here.
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

from lswag_lightning.spaces.base import SearchSpace, as_generator, register_space
from lswag_lightning.spaces.nb201 import ReLUConvBN, four_node_cell

MICRO_OPS: tuple[str, ...] = ("zero", "identity", "conv1x1", "conv3x3")
"""TransNAS-Bench micro op code k is ``MICRO_OPS[k]``."""
MICRO_SKELETON: tuple[int, ...] = (4, 1, 4, 1, 4)
MICRO_FROM: tuple[int, ...] = (0, 0, 1, 0, 1, 2)
"""Source node of each of the 6 micro edges (targets: 1, 2, 2, 3, 3, 3)."""
BASE_CHANNELS = 64
BLOCKS_PER_LAYER = 2
NASLIB_KEY_LENGTH = 6
TASK_CLASSES = {"class_scene": 63, "class_object": 100}
"""Head sizes of the TransNAS-Bench classification tasks whose networks NAS-Bench-Suite-Zero counted."""

_KEY = re.compile(r"^\s*[(\[]\s*(\d+\s*(?:,\s*\d+\s*)*),?\s*[)\]]\s*$")
_MICRO_STR = re.compile(r"^64-41414-([0-3])_([0-3])([0-3])_([0-3])([0-3])([0-3])$")
_MACRO_STR = re.compile(r"^64-([1-4]{4,6})-basic$")


@dataclass(frozen=True)
class TNBArch:
    """A TransNAS-Bench-101 architecture: 6 micro op codes, or 4-6 macro layer codes (1..4)."""

    codes: tuple[int, ...]


# ----------------------------------------------------------------------------------------------- modules
class ZeroOp(nn.Module):
    """The ``zero`` op: zeros of shape (B, c_out, ceil(H / stride), ceil(W / stride)), computed from the input so
    the layers before it stay in the autograd graph (zero gradients, not missing ones)."""

    def __init__(self, c_out: int, stride: int) -> None:
        super().__init__()
        self.c_out, self.stride = c_out, stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        zeros = x[:, :1, :: self.stride, :: self.stride].mul(0.0)
        return zeros.expand(-1, self.c_out, -1, -1)


class FactorizedReduce(nn.Module):
    """ReLU, two 1x1 convs (on the input and on it shifted by one pixel) concatenated, BN; changes channels and/or
    resolution: (B, c_in, H, W) -> (B, c_out, ceil(H / stride), ceil(W / stride))."""

    def __init__(self, c_in: int, c_out: int, stride: int) -> None:
        super().__init__()
        self.relu = nn.ReLU(inplace=False)
        self.conv_a = nn.Conv2d(c_in, c_out // 2, 1, stride=stride, bias=False)
        self.conv_b = nn.Conv2d(c_in, c_out - c_out // 2, 1, stride=stride, bias=False)
        self.bn = nn.BatchNorm2d(c_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(x)
        shifted = nn.functional.pad(x, (0, 1, 0, 1))[:, :, 1:, 1:]
        return self.bn(torch.cat([self.conv_a(x), self.conv_b(shifted)], dim=1))


def micro_op(code: int, c_in: int, c_out: int, stride: int) -> nn.Module:
    """The micro op of TransNAS code ``code`` from ``c_in`` to ``c_out`` channels."""
    if code == 0:
        return ZeroOp(c_out, stride)
    if code == 1:
        return nn.Identity() if stride == 1 and c_in == c_out else FactorizedReduce(c_in, c_out, stride)
    kernel = 1 if code == 2 else 3
    return ReLUConvBN(c_in, c_out, kernel, stride, kernel // 2)


class MicroCell(nn.Module):
    """node1 = e0(x); node2 = e1(x) + e2(node1); node3 = e3(x) + e4(node1) + e5(node2); returns node3.
    Edges from the input change channels / stride; (B, c_in, H, W) -> (B, c_out, H / stride, W / stride)."""

    def __init__(self, codes: tuple[int, ...], c_in: int, c_out: int, stride: int) -> None:
        super().__init__()
        self.edges = nn.ModuleList(
            micro_op(code, c_in, c_out, stride) if src == 0 else micro_op(code, c_out, c_out, 1)
            for code, src in zip(codes, MICRO_FROM)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return four_node_cell(self.edges, x)


class BasicBlock(nn.Module):
    """ResNet basic block: ReLU-conv3x3-BN (strided) -> ReLU-conv3x3-BN, plus the input (1x1 conv + BN when the
    shape changes)."""

    def __init__(self, c_in: int, c_out: int, stride: int) -> None:
        super().__init__()
        self.conv_a = ReLUConvBN(c_in, c_out, 3, stride, 1)
        self.conv_b = ReLUConvBN(c_out, c_out, 3, 1, 1)
        self.downsample = (
            nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride=stride, bias=False), nn.BatchNorm2d(c_out))
            if stride != 1 or c_in != c_out
            else nn.Identity()
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.downsample(x) + self.conv_b(self.conv_a(x))


def layer_plan(skeleton: tuple[int, ...], base: int = BASE_CHANNELS) -> list[tuple[int, int, int]]:
    """(c_in, c_out, stride) of every block for a skeleton of layer codes (even: double channels; > 2: stride 2)."""
    plan = []
    c = base
    for code in skeleton:
        c_out = 2 * c if code % 2 == 0 else c
        stride = 2 if code > 2 else 1
        plan.append((c, c_out, stride))
        plan += [(c_out, c_out, 1)] * (BLOCKS_PER_LAYER - 1)
        c = c_out
    return plan


class TNBNetwork(nn.Module):
    """The TransNAS-Bench encoder with a classification head; (B, in_chans, H, W) -> logits (B, num_classes)."""

    def __init__(
        self, skeleton: tuple[int, ...], block: Any, num_classes: int = 10, in_chans: int = 3, base: int = BASE_CHANNELS
    ) -> None:
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv2d(in_chans, base // 2, 3, stride=2, padding=1, bias=False),
            nn.BatchNorm2d(base // 2),
            ReLUConvBN(base // 2, base, 3, 2, 1),
        )
        plan = layer_plan(skeleton, base)
        self.blocks = nn.Sequential(*(block(c_in, c_out, stride) for c_in, c_out, stride in plan))
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.head = nn.Linear(plan[-1][1], num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(torch.flatten(self.pool(self.blocks(self.stem(x))), 1))


# ---------------------------------------------------------------------------------------- parameter count
def _relu_conv_bn(c_in: int, c_out: int, kernel: int) -> int:
    return c_in * c_out * kernel * kernel + 2 * c_out


def _micro_op_params(code: int, c_in: int, c_out: int, stride: int) -> int:
    if code == 0 or (code == 1 and stride == 1 and c_in == c_out):
        return 0
    if code == 1:
        return c_in * c_out + 2 * c_out
    return _relu_conv_bn(c_in, c_out, 1 if code == 2 else 3)


def _block_params(micro: tuple[int, ...] | None, c_in: int, c_out: int, stride: int) -> int:
    if micro is None:
        shortcut = c_in * c_out + 2 * c_out if stride != 1 or c_in != c_out else 0
        return _relu_conv_bn(c_in, c_out, 3) + _relu_conv_bn(c_out, c_out, 3) + shortcut
    return sum(
        _micro_op_params(code, c_in, c_out, stride) if src == 0 else _micro_op_params(code, c_out, c_out, 1)
        for code, src in zip(micro, MICRO_FROM)
    )


def network_params(
    skeleton: tuple[int, ...],
    micro: tuple[int, ...] | None,
    num_classes: int,
    in_chans: int = 3,
    base: int = BASE_CHANNELS,
) -> int:
    """Trainable parameters of :class:`TNBNetwork` (``micro=None``: basic blocks), in closed form."""
    total = in_chans * (base // 2) * 9 + base + _relu_conv_bn(base // 2, base, 3)
    plan = layer_plan(skeleton, base)
    total += sum(_block_params(micro, *p) for p in plan)
    return total + plan[-1][1] * num_classes + num_classes


# ------------------------------------------------------------------------------------------------- spaces
def _parse_key(text: str, what: str) -> list[int]:
    match = _KEY.match(text)
    if match is None:
        raise ValueError(
            f'{what}: expected NASLib\'s key of {NASLIB_KEY_LENGTH} ints "(a, b, c, d, e, f)" or a '
            f"TransNAS string, got {text[:80]!r}"
        )
    return [int(v) for v in match.group(1).split(",")]


def _int_list(value: Any, what: str) -> list[int]:
    if not isinstance(value, (list, tuple)) or not all(
        isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in value
    ):
        raise ValueError(f"{what}: expected a list of ints, got {value!r}"[:200])
    return [int(v) for v in value]


class _TNBSpace(SearchSpace):
    """Shared decode / encode / build for the two TransNAS-Bench-101 spaces (see the module docstring).

    Build options: ``base_channels`` (64, as the benchmark). ``img_size`` is accepted for the common interface;
    the network pools globally (the benchmark trains at 256 px; 32 px CIFAR probes reach 1x1 after the last
    halving of the micro skeleton).
    """

    kind = ""

    def _from_codes(self, codes: list[int]) -> TNBArch:
        raise NotImplementedError

    def _from_string(self, text: str) -> TNBArch | None:
        raise NotImplementedError

    def decode(self, value: str | Mapping | list | tuple | TNBArch) -> TNBArch:
        """NASLib's key (string or list of 6 ints), the TransNAS string, ``{"codes": [...]}`` or a spec."""
        what = f"TNB101 {self.kind} arch"
        if isinstance(value, TNBArch):
            return self._from_codes(list(value.codes))
        if isinstance(value, str):
            text = value.strip()
            if text.startswith("{"):
                try:
                    value = json.loads(text)
                except json.JSONDecodeError as err:
                    raise ValueError(f"{what}: not valid JSON ({err.msg}): {text[:80]!r}") from None
            else:
                spec = self._from_string(text)
                return spec if spec is not None else self._from_codes(_parse_key(text, what))
        if isinstance(value, Mapping):
            if set(value) != {"codes"}:
                raise ValueError(f"{what}: a dict must have exactly the key 'codes', got {sorted(map(str, value))}")
            value = value["codes"]
        return self._from_codes(_int_list(value, what))

    def build(
        self,
        spec: Any,
        num_classes: int = 10,
        in_chans: int = 3,
        img_size: int = 32,
        *,
        base_channels: int = BASE_CHANNELS,
    ) -> nn.Module:
        """The TransNAS-Bench network with a ``num_classes`` linear head: (B, in_chans, P, P) -> (B, num_classes)."""
        spec = self.coerce(spec)
        if img_size < 4:
            raise ValueError(f"img_size must be >= 4 for the stride-2 stem, got {img_size}")
        if base_channels < 2 or base_channels % 2:
            raise ValueError(f"base_channels must be an even number >= 2, got {base_channels}")
        skeleton, micro = self._structure(spec)
        if micro is None:
            return TNBNetwork(skeleton, BasicBlock, num_classes, in_chans, base_channels)
        return TNBNetwork(
            skeleton,
            lambda c_in, c_out, stride: MicroCell(micro, c_in, c_out, stride),
            num_classes,
            in_chans,
            base_channels,
        )

    def param_count(
        self,
        spec: Any,
        num_classes: int = 10,
        in_chans: int = 3,
        img_size: int = 32,
        *,
        base_channels: int = BASE_CHANNELS,
    ) -> int:
        """Closed-form trainable parameter count (equals counting ``build(...)``)."""
        skeleton, micro = self._structure(self.coerce(spec))
        return network_params(skeleton, micro, num_classes, in_chans, base_channels)

    def _structure(self, spec: TNBArch) -> tuple[tuple[int, ...], tuple[int, ...] | None]:
        raise NotImplementedError


@register_space("tnb101_micro")
class TNBMicroSpace(_TNBSpace):
    """TransNAS-Bench-101 micro: 4**6 = 4,096 cells in the fixed ``41414`` skeleton."""

    name = "tnb101_micro"
    kind = "micro"
    ops = MICRO_OPS

    def _from_codes(self, codes: list[int]) -> TNBArch:
        if len(codes) != len(MICRO_FROM):
            raise ValueError(
                f"TNB101 micro arch: expected {len(MICRO_FROM)} op codes (edges 1<-0, 2<-0, 2<-1, "
                f"3<-0, 3<-1, 3<-2), got {len(codes)}"
            )
        for k, code in enumerate(codes):
            if not 0 <= code < len(MICRO_OPS):
                raise ValueError(
                    f"TNB101 micro arch: code[{k}] = {code} is unknown; codes: "
                    + ", ".join(f"{i} {op}" for i, op in enumerate(MICRO_OPS))
                )
        return TNBArch(tuple(codes))

    def _from_string(self, text: str) -> TNBArch | None:
        match = _MICRO_STR.match(text)
        return TNBArch(tuple(int(g) for g in match.groups())) if match else None

    def _structure(self, spec: TNBArch) -> tuple[tuple[int, ...], tuple[int, ...] | None]:
        return MICRO_SKELETON, spec.codes

    def encode(self, spec: Any) -> str:
        return str(tuple(self.coerce(spec).codes))

    def sample(self, rng: np.random.Generator | int | None) -> TNBArch:
        gen = as_generator(rng)
        return TNBArch(tuple(int(c) for c in gen.integers(0, len(MICRO_OPS), size=len(MICRO_FROM))))

    def mutate(self, spec: Any, rng: np.random.Generator | int | None) -> TNBArch:
        """Change the op of one uniformly chosen edge to another op."""
        codes = list(self.coerce(spec).codes)
        gen = as_generator(rng)
        k = int(gen.integers(len(codes)))
        codes[k] = [c for c in range(len(MICRO_OPS)) if c != codes[k]][int(gen.integers(len(MICRO_OPS) - 1))]
        return TNBArch(tuple(codes))


@register_space("tnb101_macro")
class TNBMacroSpace(_TNBSpace):
    """TransNAS-Bench-101 macro: skeletons of 4-6 layer codes (1..4), 1-4 halvings, 1-3 doublings."""

    name = "tnb101_macro"
    kind = "macro"

    def _from_codes(self, codes: list[int]) -> TNBArch:
        what = "TNB101 macro arch"
        if len(codes) == NASLIB_KEY_LENGTH:  # NASLib pads with zeros
            while codes and codes[-1] == 0:
                codes = codes[:-1]
        if not 4 <= len(codes) <= 6 or any(not 1 <= c <= 4 for c in codes):
            raise ValueError(
                f"{what}: expected 4 to 6 layer codes in 1..4 (then zeros up to {NASLIB_KEY_LENGTH} in "
                f"NASLib's key), got {codes}"
            )
        halvings = sum(c > 2 for c in codes)
        doublings = sum(c % 2 == 0 for c in codes)
        if not 1 <= halvings <= 4 or not 1 <= doublings <= 3:
            raise ValueError(
                f"{what}: {codes} has {halvings} resolution halvings (codes 3, 4; allowed 1..4) and "
                f"{doublings} channel doublings (codes 2, 4; allowed 1..3)"
            )
        return TNBArch(tuple(codes))

    def _from_string(self, text: str) -> TNBArch | None:
        match = _MACRO_STR.match(text)
        return self._from_codes([int(c) for c in match.group(1)]) if match else None

    def _structure(self, spec: TNBArch) -> tuple[tuple[int, ...], tuple[int, ...] | None]:
        return spec.codes, None

    def encode(self, spec: Any) -> str:
        codes = self.coerce(spec).codes
        return str(tuple(codes) + (0,) * (NASLIB_KEY_LENGTH - len(codes)))

    def sample(self, rng: np.random.Generator | int | None) -> TNBArch:
        """4-6 layers, 1-4 of them halving and 1-3 doubling (each count uniform), in a uniform random order."""
        gen = as_generator(rng)
        n = int(gen.integers(4, 7))
        halve = int(gen.integers(1, min(4, n) + 1))
        double = int(gen.integers(1, min(3, n) + 1))
        codes = [1 + 2 * (i < halve) + (i < double) for i in range(n)]
        return TNBArch(tuple(int(c) for c in gen.permutation(codes)))

    def mutate(self, spec: Any, rng: np.random.Generator | int | None) -> TNBArch:
        """Change one layer's code, add a layer or drop one, redrawn until valid."""
        codes = list(self.coerce(spec).codes)
        gen = as_generator(rng)
        for _ in range(1000):
            child = list(codes)
            move = int(gen.integers(3))
            k = int(gen.integers(len(child)))
            if move == 0:
                child[k] = [c for c in (1, 2, 3, 4) if c != child[k]][int(gen.integers(3))]
            elif move == 1:
                child.insert(k, int(gen.integers(1, 5)))
            else:
                del child[k]
            try:
                return self._from_codes(child)
            except ValueError:
                continue
        raise ValueError(f"TNB101 macro: no valid mutation of {codes} found in 1000 draws")
