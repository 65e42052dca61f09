"""A plain PyTorch family for the config-space example: a small CNN whose depth and width are constructor arguments.

Nothing in lswag_lightning imports this module; ``tiny_cnn.yaml`` beside it names it as ``_target_`` and puts this
folder on the import path with ``python_path: [.]``.
"""

from __future__ import annotations

import torch
from torch import nn


class TinyCNN(nn.Module):
    """``depth`` conv-BN-ReLU blocks of ``width`` channels (the first ``depth // 2`` blocks halve the resolution), a
    global average pool and a linear head; images (B, in_chans, H, W) -> logits (B, num_classes).

    ``groups`` must divide ``width`` (``nn.Conv2d`` refuses the combination otherwise).
    """

    def __init__(
        self, depth: int, width: int, groups: int = 1, kernel_size: int = 3, num_classes: int = 10, in_chans: int = 3
    ) -> None:
        super().__init__()
        layers: list[nn.Module] = [
            nn.Conv2d(in_chans, width, 3, padding=1, bias=False),
            nn.BatchNorm2d(width),
            nn.ReLU(),
        ]
        for i in range(depth):
            stride = 2 if i < depth // 2 else 1
            layers += [
                nn.Conv2d(width, width, kernel_size, stride, kernel_size // 2, groups=groups, bias=False),
                nn.BatchNorm2d(width),
                nn.ReLU(),
            ]
        self.features = nn.Sequential(*layers)
        self.head = nn.Linear(width, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x).mean(dim=(2, 3)))
