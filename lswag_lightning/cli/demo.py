"""``make demo``: the main job on the embedded default data (scikit-learn's digits).

Until the training sweep lands, the demo is the scoring half of it: it builds a handful of small ViT and CNN
candidates sized for 16×16 digits, scores each at initialisation on one real batch of 64 digits with every proxy,
and prints the table (values, status, seconds).
"""
from __future__ import annotations

import argparse
import logging
import math
import sys

import numpy as np
import torch
from torch import nn

from lswag_lightning import score_network

PROXIES = ("lswag", "zico", "naswot", "swap", "synflow", "snip", "grad_norm", "jacov", "params", "flops")


def digits_batch(batch_size: int, img_size: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """A seeded batch of real digits: float (B, 3, img_size, img_size) normalised, int64 labels (B,)."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    rng = np.random.default_rng(seed)
    index = rng.permutation(len(digits.target))[:batch_size]
    images = torch.tensor(digits.images[index], dtype=torch.float32)[:, None] / 16.0
    images = nn.functional.interpolate(images, size=img_size, mode="bilinear", align_corners=False)
    images = (images - 0.5) / 0.5
    return images.repeat(1, 3, 1, 1), torch.tensor(digits.target[index], dtype=torch.long)


def candidates(img_size: int) -> dict[str, nn.Module]:
    from timm.models.vision_transformer import VisionTransformer

    nets: dict[str, nn.Module] = {}
    for depth, dim in ((2, 32), (4, 32), (4, 64), (6, 64)):
        nets[f"vit d{depth} w{dim}"] = VisionTransformer(img_size=img_size, patch_size=4, embed_dim=dim,
                                                         depth=depth, num_heads=2, num_classes=10)
    for width, blocks in ((8, 1), (16, 2), (32, 2), (32, 3)):
        layers: list[nn.Module] = [nn.Conv2d(3, width, 3, padding=1), nn.BatchNorm2d(width), nn.ReLU()]
        for _ in range(blocks):
            layers += [nn.Conv2d(width, width, 3, padding=1), nn.BatchNorm2d(width), nn.ReLU()]
        layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(width, 10)]
        nets[f"cnn w{width} b{blocks}"] = nn.Sequential(*layers)
    return nets


def _fmt(value: float) -> str:
    if not math.isfinite(value):
        return str(value)
    return f"{value:.4g}" if abs(value) < 1e5 else f"{value:.3e}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--img-size", type=int, default=16)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    torch.manual_seed(args.seed)
    x, y = digits_batch(args.batch_size, args.img_size, args.seed)
    rows = []
    for name, net in candidates(args.img_size).items():
        report = score_network(net, x, y, proxies=PROXIES)
        rows.append((name, report))
        bad = report.failed()
        print(f"scored {name:14s} in {report.total_seconds:5.2f} s" + (f"  not ok: {bad}" if bad else ""))
    names = list(rows[0][1].values)
    width = max(len(n) for n in names) + 2
    print("\nproxy".ljust(width) + "".join(f"{name:>14s}" for name, _ in rows))
    for key in names:
        print(key.ljust(width) + "".join(f"{_fmt(r.values[key]):>14s}" for _, r in rows))
    print("seconds".ljust(width) + "".join(f"{r.total_seconds:>14.2f}" for _, r in rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
