"""The CNN cell ops shared by NAS-Bench-201 (and TransNAS-Bench-101) and DARTS / NAS-Bench-301: one class per op
and one op factory, with the superset of both spaces' keyword arguments.

Every op maps (B, C, H, W) -> (B, C, H / stride, W / stride). ``affine`` and ``track_running_stats`` go to every
BatchNorm of the op (NB201 exposes both; DARTS builds NB301's networks with ``affine=False``). With the defaults
the modules are exactly those of each space's reference code, so the published parameter counts hold
(``tests/test_spaces_nb201.py``, ``tests/test_spaces_darts.py``, ``tests/test_spaces_nb301.py``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import nn


class ReLUConvBN(nn.Sequential):
    """ReLU -> Conv2d (no bias) -> BatchNorm2d; (B, C_in, H, W) -> (B, C_out, H/stride, W/stride)."""

    def __init__(
        self,
        c_in: int,
        c_out: int,
        kernel_size: int,
        stride: int,
        padding: int,
        affine: bool = True,
        track_running_stats: bool = True,
    ) -> None:
        super().__init__(
            nn.ReLU(inplace=False),
            nn.Conv2d(c_in, c_out, kernel_size, stride=stride, padding=padding, bias=False),
            nn.BatchNorm2d(c_out, affine=affine, track_running_stats=track_running_stats),
        )


class DilConv(nn.Sequential):
    """ReLU -> dilated depthwise conv -> pointwise conv -> BN."""

    def __init__(
        self,
        c_in: int,
        c_out: int,
        kernel_size: int,
        stride: int,
        padding: int,
        dilation: int,
        affine: bool = True,
        track_running_stats: bool = True,
    ) -> None:
        super().__init__(
            nn.ReLU(inplace=False),
            nn.Conv2d(
                c_in, c_in, kernel_size, stride=stride, padding=padding, dilation=dilation, groups=c_in, bias=False
            ),
            nn.Conv2d(c_in, c_out, 1, bias=False),
            nn.BatchNorm2d(c_out, affine=affine, track_running_stats=track_running_stats),
        )


class SepConv(nn.Sequential):
    """Two stacked separable convs (ReLU, depthwise, pointwise, BN); only the first is strided."""

    def __init__(
        self,
        c_in: int,
        c_out: int,
        kernel_size: int,
        stride: int,
        padding: int,
        affine: bool = True,
        track_running_stats: bool = True,
    ) -> None:
        super().__init__(
            DilConv(c_in, c_in, kernel_size, stride, padding, 1, affine, track_running_stats),
            DilConv(c_in, c_out, kernel_size, 1, padding, 1, affine, track_running_stats),
        )


class Zero(nn.Module):
    """The ``none`` op: zeros shaped like the input, spatially subsampled by ``stride`` (keeps the graph
    connected, no parameters)."""

    def __init__(self, stride: int = 1) -> None:
        super().__init__()
        self.stride = stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.stride == 1:
            return x.mul(0.0)
        return x[:, :, :: self.stride, :: self.stride].mul(0.0)


class FactorizedReduce(nn.Module):
    """ReLU, then two 1x1 stride-2 convs on the input and on it shifted by one pixel, concatenated, then BN.

    (B, C_in, H, W) -> (B, C_out, H/2, W/2); ``C_out`` must be even. Odd H or W are padded by one pixel.
    """

    def __init__(self, c_in: int, c_out: int, affine: bool = True, track_running_stats: bool = True) -> None:
        super().__init__()
        if c_out % 2:
            raise ValueError(f"FactorizedReduce needs an even number of output channels, got {c_out}")
        self.relu = nn.ReLU(inplace=False)
        self.conv_1 = nn.Conv2d(c_in, c_out // 2, 1, stride=2, padding=0, bias=False)
        self.conv_2 = nn.Conv2d(c_in, c_out // 2, 1, stride=2, padding=0, bias=False)
        self.bn = nn.BatchNorm2d(c_out, affine=affine, track_running_stats=track_running_stats)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(x)
        if x.shape[-1] % 2 or x.shape[-2] % 2:
            x = nn.functional.pad(x, (0, x.shape[-1] % 2, 0, x.shape[-2] % 2))
        return self.bn(torch.cat([self.conv_1(x), self.conv_2(x[:, :, 1:, 1:])], dim=1))


OpBuilder = Callable[[int, int, bool, bool], nn.Module]

#: ``name -> builder(channels, stride, affine, track_running_stats)``: NB201's ops (``nor_conv_*``) and DARTS's.
OP_BUILDERS: dict[str, OpBuilder] = {
    "none": lambda c, stride, affine, track: Zero(stride),
    "skip_connect": lambda c, stride, affine, track: (
        nn.Identity() if stride == 1 else FactorizedReduce(c, c, affine, track)
    ),
    "avg_pool_3x3": lambda c, stride, affine, track: nn.AvgPool2d(3, stride=stride, padding=1, count_include_pad=False),
    "max_pool_3x3": lambda c, stride, affine, track: nn.MaxPool2d(3, stride=stride, padding=1),
    "nor_conv_1x1": lambda c, stride, affine, track: ReLUConvBN(c, c, 1, stride, 0, affine, track),
    "nor_conv_3x3": lambda c, stride, affine, track: ReLUConvBN(c, c, 3, stride, 1, affine, track),
    "sep_conv_3x3": lambda c, stride, affine, track: SepConv(c, c, 3, stride, 1, affine, track),
    "sep_conv_5x5": lambda c, stride, affine, track: SepConv(c, c, 5, stride, 2, affine, track),
    "dil_conv_3x3": lambda c, stride, affine, track: DilConv(c, c, 3, stride, 2, 2, affine, track),
    "dil_conv_5x5": lambda c, stride, affine, track: DilConv(c, c, 5, stride, 4, 2, affine, track),
}


def make_op(
    name: str,
    channels: int,
    stride: int = 1,
    affine: bool = True,
    track_running_stats: bool = True,
    *,
    allowed: Sequence[str] | None = None,
    space: str = "CNN",
) -> nn.Module:
    """The op ``name`` on ``channels`` channels with ``stride`` 1 or 2 (see :data:`OP_BUILDERS`).

    ``allowed`` restricts the names to one space's ops (default: every op here); an unknown name is a
    ``ValueError`` naming ``space`` and listing ``allowed``.
    """
    allowed = tuple(OP_BUILDERS) if allowed is None else tuple(allowed)
    if name not in allowed or name not in OP_BUILDERS:
        raise ValueError(f"unknown {space} op {name!r}; allowed ops: {', '.join(allowed)}")
    return OP_BUILDERS[name](channels, stride, affine, track_running_stats)
