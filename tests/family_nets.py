"""Source of a small user package (``famnets``) for the config-space tests, written to a temporary folder so the
tests import it the way a user's own module is imported (PYTHONPATH or ``python_path:``), never from the package."""

from __future__ import annotations

from pathlib import Path

FAMNETS_SOURCE = '''
"""A user's own model family for the config-space tests."""
from typing import Optional, Sequence, Tuple

import torch
from torch import nn

BUILT_ON: list = []  # the device of every TinyNet built (to show parameter counts use the meta device)


class MyNet(nn.Module):
    """The issue's minimal family: ``depth`` convolutions of ``width`` channels, pooled, a linear head."""

    def __init__(self, depth: int, width: int, num_classes: int = 10, in_chans: int = 3):
        super().__init__()
        layers = [nn.Conv2d(in_chans, width, 3, padding=1), nn.ReLU()]
        for _ in range(depth - 1):
            layers += [nn.Conv2d(width, width, 3, padding=1), nn.ReLU()]
        self.body = nn.Sequential(*layers)
        self.head = nn.Linear(width, num_classes)
        BUILT_ON.append(self.head.weight.device.type)

    def forward(self, x):
        return self.head(self.body(x).mean(dim=(2, 3)))


class HeadNet(nn.Module):
    """Attention-like: ``dim`` must be divisible by ``heads`` (it raises otherwise), ``act`` is a module class."""

    def __init__(self, dim: int, heads: int, ratio: float = 2.0, act: type = nn.ReLU, num_classes: int = 10):
        super().__init__()
        if dim % heads:
            raise ValueError(f"dim {dim} must be divisible by heads {heads}")
        self.stem = nn.Conv2d(3, dim, 4, stride=4)
        self.mlp = nn.Sequential(nn.Linear(dim, int(dim * ratio)), act(), nn.Linear(int(dim * ratio), dim))
        self.head = nn.Linear(dim, num_classes)

    def forward(self, x):
        return self.head(self.mlp(self.stem(x).mean(dim=(2, 3))))


class FlatNet(nn.Module):
    """An MLP on the flattened image: its first layer depends on ``in_chans`` and ``img_size``."""

    def __init__(self, width: int, img_size: int = 32, in_chans: int = 3, num_classes: int = 10):
        super().__init__()
        self.net = nn.Sequential(
            nn.Flatten(), nn.Linear(in_chans * img_size * img_size, width), nn.ReLU(), nn.Linear(width, num_classes)
        )

    def forward(self, x):
        return self.net(x)


class StageNet(nn.Module):
    """A ResNet-like family: ``layers`` convolutions in each stage, ``widths`` channels per stage, an optional
    ``norm`` layer class."""

    def __init__(
        self,
        layers: Sequence[int],
        widths: Tuple[int, ...] = (8, 16, 32),
        norm: Optional[type] = None,
        num_classes: int = 10,
    ):
        super().__init__()
        blocks, channels = [], 3
        for count, width in zip(layers, widths):
            for i in range(count):
                blocks += [nn.Conv2d(channels, width, 3, stride=2 if i == 0 else 1, padding=1), nn.ReLU()]
                if norm is not None:
                    blocks.append(norm(width))
                channels = width
        self.body = nn.Sequential(*blocks)
        self.head = nn.Linear(channels, num_classes)

    def forward(self, x):
        return self.head(self.body(x).mean(dim=(2, 3)))


class ModuleArgNet(nn.Module):
    """Takes a module object (``act``) and uses it as it is."""

    def __init__(self, width: int, act: nn.Module, num_classes: int = 10):
        super().__init__()
        self.stem, self.act, self.head = nn.Conv2d(3, width, 3), act, nn.Linear(width, num_classes)

    def forward(self, x):
        return self.head(self.act(self.stem(x)).mean(dim=(2, 3)))


class NeverNet(nn.Module):
    """No combination builds."""

    def __init__(self, width: int, heads: int, num_classes: int = 10):
        super().__init__()
        raise AssertionError(f"heads={heads} must divide width={width}")


class WrongWidth(nn.Module):
    """Ignores ``num_classes``: its logits are always 1000 wide."""

    def __init__(self, width: int, num_classes: int = 10):
        super().__init__()
        self.head = nn.Linear(3, 1000)

    def forward(self, x):
        return self.head(x.mean(dim=(2, 3)))


def make_mlp(width: int, depth: int = 1, num_classes: int = 10):
    """A function (not a class) returning an nn.Module."""
    layers = [nn.Flatten(), nn.Linear(3 * 32 * 32, width), nn.ReLU()]
    for _ in range(depth - 1):
        layers += [nn.Linear(width, width), nn.ReLU()]
    return nn.Sequential(*layers, nn.Linear(width, num_classes))
'''


def write_famnets(folder: Path) -> Path:
    """Write the ``famnets`` package (and the issue's ``mypkg.nets``) under ``folder`` (once); returns ``folder``."""
    if (folder / "famnets" / "nets.py").is_file():
        return folder
    for package in ("famnets", "mypkg"):
        (folder / package).mkdir(parents=True, exist_ok=True)
        (folder / package / "__init__.py").write_text("")
    (folder / "famnets" / "nets.py").write_text(FAMNETS_SOURCE)
    (folder / "mypkg" / "nets.py").write_text("from famnets.nets import MyNet  # noqa: F401\n")
    return folder
