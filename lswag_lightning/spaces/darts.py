"""The DARTS search space (Liu et al., ICLR 2019): the NetworkCIFAR evaluation network and the space.

Genotypes (:class:`Genotype`: a normal and a reduction cell of 4 intermediate nodes, two ``(op, input)`` edges
each), their ``Genotype(...)`` string grammar and their checks live in
:mod:`lswag_lightning.spaces.darts_genotype`; this module re-exports them.

Network (NetworkCIFAR): a 3x3 conv + BN stem with ``3 * C`` channels, ``layers`` cells with reduction cells
(stride 2, channels doubled) at ``layers // 3`` and ``2 * layers // 3``, global average pooling and a linear
classifier. Cell inputs are preprocessed by ReLU-Conv1x1-BN (FactorizedReduce after a reduction cell).
Ops: ``none`` (zeros), ``skip_connect`` (identity; FactorizedReduce when strided), ``max_pool_3x3``,
``avg_pool_3x3``, ``sep_conv_3x3/5x5`` (two stacked ReLU-depthwise-pointwise-BN), ``dil_conv_3x3/5x5``
(ReLU-dilated depthwise-pointwise-BN, dilation 2). With ``auxiliary=True`` an auxiliary head (parameter names
start with ``auxiliary_head``) reads the features after cell ``2 * layers // 3``; in train mode ``forward``
then returns ``(logits, aux_logits)``, otherwise (eval mode, or no auxiliary head) just ``logits``
(B, num_classes). ``drop_path_prob`` > 0 drops non-identity op outputs per sample in train mode.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

import numpy as np
import torch
from timm.layers import drop_path
from torch import nn

from lswag_lightning.spaces.base import SearchSpace, as_generator, load_json_object, register_space
from lswag_lightning.spaces.cnn_ops import FactorizedReduce, ReLUConvBN, make_op
from lswag_lightning.spaces.darts_genotype import (
    CONCAT_DEFAULT,
    DARTS_V1,
    DARTS_V2,
    OPS,
    STEPS,
    Edge,
    Genotype,
    parse_genotype,
    validate_genotype,
)
from lswag_lightning.spaces.nb301 import NB301_BUILD_OPTIONS, compact_fields

__all__ = [
    "BENCHMARK_BUILD_OPTIONS",
    "CONCAT_DEFAULT",
    "DARTS_V1",
    "DARTS_V2",
    "DEFAULT_BUILD_OPTIONS",
    "OPS",
    "SAMPLE_OPS",
    "STEPS",
    "AuxiliaryHeadCIFAR",
    "DartsCell",
    "DartsSpace",
    "Edge",
    "Genotype",
    "NetworkCIFAR",
    "parse_genotype",
    "validate_genotype",
]

SAMPLE_OPS: tuple[str, ...] = tuple(op for op in OPS if op != "none")
"""Ops used by sampling and mutation (derived DARTS genotypes never contain ``none``)."""

DEFAULT_BUILD_OPTIONS: dict[str, Any] = {"C": 16, "layers": 8, "op_affine": True, "auxiliary": False}
"""``build`` options when neither the caller nor the genotype's benchmark sets them: a small CIFAR-10 network."""
BENCHMARK_BUILD_OPTIONS: dict[str, dict[str, Any]] = {"nb301": dict(NB301_BUILD_OPTIONS)}
"""Per benchmark, the options of the networks it trained (NAS-Bench-301: C=32, 8 cells, op BatchNorms without
weights), so that ``build(decode(key))`` gives the network whose ``params`` the benchmark lists."""


# ----------------------------------------------------------------------------------------------- modules
class DartsCell(nn.Module):
    """One cell: (s0, s1) each (B, *, H, W) -> (B, len(concat) * C, H', W') with H' = H/2 when reducing."""

    def __init__(
        self,
        edges: tuple[Edge, ...],
        concat: tuple[int, ...],
        c_prev_prev: int,
        c_prev: int,
        c: int,
        reduction: bool,
        reduction_prev: bool,
        op_affine: bool = True,
    ) -> None:
        super().__init__()
        self.reduction = reduction
        if reduction_prev:
            self.preprocess0 = FactorizedReduce(c_prev_prev, c)
        else:
            self.preprocess0 = ReLUConvBN(c_prev_prev, c, 1, 1, 0)
        self.preprocess1 = ReLUConvBN(c_prev, c, 1, 1, 0)
        self.ops = nn.ModuleList(
            make_op(op, c, 2 if reduction and index < 2 else 1, op_affine, allowed=OPS, space="DARTS")
            for op, index in edges
        )
        self.indices = tuple(index for _, index in edges)
        self.concat = tuple(concat)
        self.multiplier = len(concat)

    def forward(self, s0: torch.Tensor, s1: torch.Tensor, drop_prob: float = 0.0) -> torch.Tensor:
        states = [self.preprocess0(s0), self.preprocess1(s1)]
        for step in range(len(self.ops) // 2):
            total = None
            for k in (2 * step, 2 * step + 1):
                op = self.ops[k]
                h = op(states[self.indices[k]])
                if self.training and drop_prob > 0.0 and not isinstance(op, nn.Identity):
                    h = drop_path(h, drop_prob, training=True)
                total = h if total is None else total + h
            states.append(total)
        return torch.cat([states[i] for i in self.concat], dim=1)


class AuxiliaryHeadCIFAR(nn.Module):
    """DARTS auxiliary classifier for 8x8 feature maps; (B, C, 8, 8) -> (B, num_classes)."""

    def __init__(self, c: int, num_classes: int) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.ReLU(inplace=False),
            nn.AvgPool2d(5, stride=3, padding=0, count_include_pad=False),  # 8x8 -> 2x2
            nn.Conv2d(c, 128, 1, bias=False),
            nn.BatchNorm2d(128),
            nn.ReLU(inplace=False),
            nn.Conv2d(128, 768, 2, bias=False),  # 2x2 -> 1x1
            nn.BatchNorm2d(768),
            nn.ReLU(inplace=False),
        )
        self.classifier = nn.Linear(768, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.flatten(self.features(x), 1))


class NetworkCIFAR(nn.Module):
    """The DARTS evaluation network; (B, in_chans, H, W) -> logits (B, num_classes).

    In train mode with ``auxiliary=True`` ``forward`` returns ``(logits, aux_logits)``.
    ``drop_path_prob`` is an attribute (schedules set it per epoch, as in DARTS). ``op_affine=False`` makes the
    BatchNorms inside the cells' ops non-affine (the stem, preprocessing and head keep theirs).
    """

    def __init__(
        self,
        genotype: Genotype,
        num_classes: int = 10,
        in_chans: int = 3,
        C: int = 16,
        layers: int = 8,
        auxiliary: bool = False,
        drop_path_prob: float = 0.0,
        stem_multiplier: int = 3,
        op_affine: bool = True,
    ) -> None:
        super().__init__()
        self.genotype = genotype
        self.layers = layers
        self.auxiliary = auxiliary
        self.drop_path_prob = drop_path_prob
        self.aux_position = 2 * layers // 3
        c_curr = stem_multiplier * C
        self.stem = nn.Sequential(nn.Conv2d(in_chans, c_curr, 3, padding=1, bias=False), nn.BatchNorm2d(c_curr))
        c_prev_prev, c_prev, c_curr = c_curr, c_curr, C
        self.cells = nn.ModuleList()
        reduction_prev = False
        c_aux = c_prev
        for i in range(layers):
            reduction = i in (layers // 3, 2 * layers // 3)
            if reduction:
                c_curr *= 2
            edges, concat = (
                (genotype.reduce, genotype.reduce_concat) if reduction else (genotype.normal, genotype.normal_concat)
            )
            cell = DartsCell(edges, concat, c_prev_prev, c_prev, c_curr, reduction, reduction_prev, op_affine)
            self.cells.append(cell)
            reduction_prev = reduction
            c_prev_prev, c_prev = c_prev, cell.multiplier * c_curr
            if i == self.aux_position:
                c_aux = c_prev
        if auxiliary:
            self.auxiliary_head = AuxiliaryHeadCIFAR(c_aux, num_classes)
        self.global_pooling = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(c_prev, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        aux_logits = None
        s0 = s1 = self.stem(x)
        for i, cell in enumerate(self.cells):
            s0, s1 = s1, cell(s0, s1, self.drop_path_prob)
            if i == self.aux_position and self.auxiliary and self.training:
                aux_logits = self.auxiliary_head(s1)
        logits = self.classifier(torch.flatten(self.global_pooling(s1), 1))
        return (logits, aux_logits) if aux_logits is not None else logits


# ------------------------------------------------------------------------------------------------- space
@register_space("darts")
class DartsSpace(SearchSpace):
    """The DARTS cell space; specs are :class:`Genotype`.

    Build options: ``C`` (initial channels, 16; 36 for the published CIFAR-10 models), ``layers`` (cells, 8;
    20 published), ``auxiliary`` (False), ``drop_path_prob`` (0.0), ``stem_multiplier`` (3), ``op_affine``
    (True; False gives the cells' op BatchNorms no weights, as NAS-Bench-Suite-Zero's NB301 networks, see
    :data:`lswag_lightning.spaces.nb301.NB301_BUILD_OPTIONS`).

    ``decode`` also reads NAS-Bench-301's compact encoding (NASLib keys, :mod:`lswag_lightning.spaces.nb301`).
    """

    name = "darts"
    ops = OPS

    def _sample_cell(self, gen: np.random.Generator) -> tuple[Edge, ...]:
        edges: list[Edge] = []
        for step in range(STEPS):
            inputs = gen.choice(step + 2, size=2, replace=False)
            for index in sorted(int(i) for i in inputs):
                edges.append((SAMPLE_OPS[int(gen.integers(len(SAMPLE_OPS)))], index))
        return tuple(edges)

    def sample(self, rng: np.random.Generator | int | None) -> Genotype:
        """Uniform genotype: per node two distinct inputs and two ops (never ``none``); concat [2, 3, 4, 5]."""
        gen = as_generator(rng)
        normal = self._sample_cell(gen)
        reduce = self._sample_cell(gen)
        return Genotype(normal, CONCAT_DEFAULT, reduce, CONCAT_DEFAULT)

    def mutate(self, spec: Any, rng: np.random.Generator | int | None) -> Genotype:
        """Pick the normal or reduce cell and one of its 8 edges, then change either its op (to another
        non-``none`` op) or its input (to another earlier node not already feeding that node, when one exists).
        """
        genotype = self.coerce(spec)
        gen = as_generator(rng)
        cell = "normal" if gen.integers(2) == 0 else "reduce"
        edges = list(getattr(genotype, cell))
        k = int(gen.integers(len(edges)))
        op, index = edges[k]
        node = k // 2 + 2
        sibling = edges[k ^ 1][1]
        inputs = [i for i in range(node) if i != index and i != sibling]
        if inputs and gen.integers(2) == 0:
            edges[k] = (op, inputs[int(gen.integers(len(inputs)))])
        else:
            ops = [o for o in SAMPLE_OPS if o != op]
            edges[k] = (ops[int(gen.integers(len(ops)))], index)
        fields = {
            "normal": genotype.normal,
            "normal_concat": genotype.normal_concat,
            "reduce": genotype.reduce,
            "reduce_concat": genotype.reduce_concat,
        }
        fields[cell] = tuple(edges)
        return Genotype(**fields, benchmark=genotype.benchmark)

    def encode(self, spec: Any) -> str:
        return str(self.coerce(spec))

    def decode(self, value: str | Mapping | Genotype) -> Genotype:
        """Parse a ``Genotype(...)`` string, a JSON object string, a dict with the four fields (edges as
        ``[op, input]`` pairs), or NAS-Bench-301's compact ``[[(input, op), ... 8], [... 8]]`` (string or lists;
        the genotype then builds NAS-Bench-301's network by default, see :class:`Genotype`)."""
        if isinstance(value, Genotype):
            return replace(validate_genotype(value.to_dict()), benchmark=value.benchmark)
        if isinstance(value, (list, tuple)) or (isinstance(value, str) and value.lstrip()[:1] in ("[", "(")):
            return replace(validate_genotype(compact_fields(value)), benchmark="nb301")
        if isinstance(value, str):
            if value.lstrip().startswith("{"):
                value = load_json_object(value, "DARTS genotype")
                if not isinstance(value, dict):
                    raise ValueError("DARTS genotype: a JSON string must hold an object")
            else:
                return parse_genotype(value)
        if not isinstance(value, Mapping):
            raise ValueError(f"DARTS genotype must be a Genotype(...) string or a dict, got {type(value).__name__}")
        return validate_genotype(value)

    def build(
        self,
        spec: Any,
        num_classes: int = 10,
        in_chans: int = 3,
        img_size: int = 32,
        *,
        C: int | None = None,
        layers: int | None = None,
        auxiliary: bool | None = None,
        drop_path_prob: float = 0.0,
        stem_multiplier: int = 3,
        op_affine: bool | None = None,
    ) -> nn.Module:
        """NetworkCIFAR for ``spec``: (B, in_chans, img_size, img_size) -> logits (B, num_classes).

        ``C``, ``layers``, ``auxiliary`` and ``op_affine`` left as None take the genotype's benchmark options
        (NAS-Bench-301 keys: 32, 8, False, False), else :data:`DEFAULT_BUILD_OPTIONS` (16, 8, False, True).
        The auxiliary head expects 8x8 features at 2/3 depth, i.e. ``img_size`` about 32 (29..40).
        """
        genotype = self.coerce(spec)
        C, layers, auxiliary, op_affine = _network_options(genotype, C, layers, auxiliary, op_affine)
        _check_build_options(C, layers, auxiliary, img_size)
        return NetworkCIFAR(
            genotype,
            num_classes=num_classes,
            in_chans=in_chans,
            C=C,
            layers=layers,
            auxiliary=auxiliary,
            drop_path_prob=drop_path_prob,
            stem_multiplier=stem_multiplier,
            op_affine=op_affine,
        )

    def param_count(
        self,
        spec: Any,
        num_classes: int = 10,
        in_chans: int = 3,
        img_size: int = 32,
        *,
        include_auxiliary: bool = False,
        C: int | None = None,
        layers: int | None = None,
        auxiliary: bool | None = None,
        drop_path_prob: float = 0.0,
        stem_multiplier: int = 3,
        op_affine: bool | None = None,
    ) -> int:
        """Trainable parameters of ``build(...)`` in closed form (no network is built); the auxiliary head is
        left out unless ``include_auxiliary`` (as DARTS reports model sizes)."""
        genotype = self.coerce(spec)
        C, layers, auxiliary, op_affine = _network_options(genotype, C, layers, auxiliary, op_affine)
        _check_build_options(C, layers, auxiliary, img_size)
        c_curr = stem_multiplier * C
        total = 9 * in_chans * c_curr + 2 * c_curr
        c_prev_prev, c_prev, c_curr = c_curr, c_curr, C
        c_aux = c_prev
        for i in range(layers):
            reduction = i in (layers // 3, 2 * layers // 3)
            c_curr *= 2 if reduction else 1
            edges, concat = (
                (genotype.reduce, genotype.reduce_concat) if reduction else (genotype.normal, genotype.normal_concat)
            )
            total += c_prev_prev * c_curr + c_prev * c_curr + 4 * c_curr  # preprocess0 / 1 (+ their BNs)
            total += sum(_op_params(op, c_curr, 2 if reduction and index < 2 else 1, op_affine) for op, index in edges)
            c_prev_prev, c_prev = c_prev, len(concat) * c_curr
            if i == 2 * layers // 3:
                c_aux = c_prev
        total += c_prev * num_classes + num_classes
        if auxiliary and include_auxiliary:
            total += c_aux * 128 + 2 * 128 + 128 * 768 * 4 + 2 * 768 + 768 * num_classes + num_classes
        return total


def _network_options(
    genotype: Genotype, C: int | None, layers: int | None, auxiliary: bool | None, op_affine: bool | None
) -> tuple[int, int, bool, bool]:
    """The given options, the unset ones from the genotype's benchmark, else from :data:`DEFAULT_BUILD_OPTIONS`."""
    defaults = {**DEFAULT_BUILD_OPTIONS, **BENCHMARK_BUILD_OPTIONS.get(genotype.benchmark or "", {})}
    given = {"C": C, "layers": layers, "auxiliary": auxiliary, "op_affine": op_affine}
    merged = {k: defaults[k] if v is None else v for k, v in given.items()}
    return int(merged["C"]), int(merged["layers"]), bool(merged["auxiliary"]), bool(merged["op_affine"])


def _op_params(name: str, c: int, stride: int, affine: bool) -> int:
    """Trainable parameters of ``make_op(name, c, stride, affine)``."""
    bn = 2 * c if affine else 0
    kernel = {"sep_conv_3x3": 3, "sep_conv_5x5": 5, "dil_conv_3x3": 3, "dil_conv_5x5": 5}.get(name)
    if name.startswith("sep_conv"):
        return 2 * (c * kernel * kernel + c * c + bn)
    if name.startswith("dil_conv"):
        return c * kernel * kernel + c * c + bn
    if name == "skip_connect" and stride == 2:
        return c * c + bn  # FactorizedReduce: two 1x1 convs to c/2 channels each
    return 0


def _check_build_options(C: int, layers: int, auxiliary: bool, img_size: int) -> None:
    if layers < 3:
        raise ValueError(f"layers must be >= 3 (two reduction cells at 1/3 and 2/3 depth), got {layers}")
    if C < 1:
        raise ValueError(f"C must be >= 1, got {C}")
    if auxiliary:
        aux_size = -(-img_size // 4)  # spatial size after the two reductions
        if aux_size < 5 or (aux_size - 5) // 3 + 1 != 2:
            raise ValueError(
                f"auxiliary=True needs 8x8 features at 2/3 depth (img_size about 32, 29..40), got img_size={img_size}"
            )
