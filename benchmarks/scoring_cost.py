"""Engine benchmark: what scoring costs, as ratios to one plain training step on the same model and batch.

For each model it times, with the same batch of 64 real images (CIFAR-10 from $LSWAG_DATA_DIR/images when
present, otherwise digits resized to 32x32):
  - one plain training step: forward + cross-entropy + backward + SGD step, train mode;
  - ``lswag`` alone through ``score_network``;
  - all proxies in one ``score_network`` call (the engine shares passes);
  - all proxies each in its own ``score_network`` call (one copy and one set of passes per proxy, as
    foresight / NASLib compute them);
  - the ten classic proxies (``TEN``: ``ALL`` without swap_reg) in one call, with the default whole-batch gradient
    for snip/grad_norm and with ``batch_grads="split"`` (their gradient from Λ's split pass; the same values on
    models without BatchNorm, slightly different ones with it: ``benchmarks/batch_grads_check.py``).
Each timing is the median of ``--repeats`` runs after one warm-up. Run:

    .venv/bin/python benchmarks/scoring_cost.py --threads 1 --repeats 5   # --device cuda on a GPU
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

from lswag_lightning import score_network
from lswag_lightning.paths import default_data_dir

# The proxies the engine issue lists. zico_ps (our per-sample ZiCo variant) needs a pass of its own that nothing
# else shares (one backward per sample), so it is timed in its own column rather than folded into "all".
ALL = ("lswag", "zico", "swap", "swap_reg", "naswot", "synflow", "snip", "grad_norm", "jacov", "params", "flops")
TEN = tuple(p for p in ALL if p != "swap_reg")


def probe_batch(batch_size: int, seed: int) -> tuple[torch.Tensor, torch.Tensor, str]:
    images = default_data_dir() / "images" / "cifar10_train_part0.npz"
    rng = np.random.default_rng(seed)
    if images.exists():
        data = np.load(images)
        index = rng.permutation(len(data["y"]))[:batch_size]
        x = torch.tensor(data["x"][index], dtype=torch.float32).permute(0, 3, 1, 2) / 255.0
        mean = torch.tensor([0.4914, 0.4822, 0.4465])[:, None, None]
        std = torch.tensor([0.2470, 0.2435, 0.2616])[:, None, None]
        return (x - mean) / std, torch.tensor(data["y"][index], dtype=torch.long), "CIFAR-10 (shared data)"
    from sklearn.datasets import load_digits

    digits = load_digits()
    index = rng.permutation(len(digits.target))[:batch_size]
    x = torch.tensor(digits.images[index], dtype=torch.float32)[:, None] / 16.0
    x = nn.functional.interpolate(x, size=32, mode="bilinear").repeat(1, 3, 1, 1)
    return (x - 0.5) / 0.5, torch.tensor(digits.target[index], dtype=torch.long), "digits resized to 32 px"


def models() -> dict[str, nn.Module]:
    from timm.models.vision_transformer import VisionTransformer

    torch.manual_seed(0)
    out: dict[str, nn.Module] = {
        "ViT (timm, 32px, patch 4, dim 192, depth 6, 3 heads)": VisionTransformer(
            img_size=32, patch_size=4, embed_dim=192, depth=6, num_heads=3, num_classes=10
        ),
    }
    try:
        from lswag_lightning.spaces import get_space

        space = get_space("nb201")
        arch = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|"
        out["NB201 cell 9930 (CIFAR-10 optimum, C=16, N=5)"] = space.build(space.decode(arch), num_classes=10)
    except ImportError:
        pass
    return out


def timed(fn, repeats: int) -> float:
    fn()  # warm-up
    samples = []
    for _ in range(repeats):
        _synchronize()
        start = time.perf_counter()
        fn()
        _synchronize()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def _synchronize() -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def train_step(model: nn.Module, x: torch.Tensor, y: torch.Tensor):
    optimiser = torch.optim.SGD(model.parameters(), lr=0.0)  # lr 0: the weights stay as initialised

    def step() -> None:
        model.train()
        optimiser.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        optimiser.step()

    return step


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Time the scoring engine against a training step.")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--device", default="cpu", help="torch device for model and batch (cpu, cuda, ...)")
    parser.add_argument("--out", type=Path, default=None, help="also write the markdown table to this file")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    x, y, source = probe_batch(args.batch_size, seed=0)
    x, y = x.to(device), y.to(device)
    where = f"{args.threads} CPU thread(s)" if device.type == "cpu" else torch.cuda.get_device_name(device)
    lines = [
        f"batch {args.batch_size} of {source}; {where}; median of {args.repeats} runs "
        f"after a warm-up; torch {torch.__version__}",
        "",
        "| model | train step (s) | lswag alone | all proxies, one call | all proxies, one call each | "
        "speed-up of sharing | ten classic, one call | ten classic, batch_grads=split | zico_ps alone |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name, model in models().items():
        model = model.to(device)
        step = timed(train_step(model, x, y), args.repeats)
        lswag = timed(lambda model=model: score_network(model, x, y, proxies=("lswag",)), args.repeats)
        joint = timed(lambda model=model: score_network(model, x, y, proxies=ALL), args.repeats)
        separate = timed(lambda model=model: [score_network(model, x, y, proxies=(p,)) for p in ALL], args.repeats)
        ten = timed(lambda model=model: score_network(model, x, y, proxies=TEN), args.repeats)
        ten_split = timed(
            lambda model=model: score_network(model, x, y, proxies=TEN, batch_grads="split"), args.repeats
        )
        zico_ps = timed(lambda model=model: score_network(model, x, y, proxies=("zico_ps",)), args.repeats)
        lines.append(
            f"| {name} | {step:.3f} | {lswag / step:.2f}x | {joint / step:.2f}x | "
            f"{separate / step:.2f}x | {separate / joint:.2f}x | {ten / step:.2f}x | {ten_split / step:.2f}x | "
            f"{zico_ps / step:.2f}x |"
        )
        print(lines[-1], flush=True)
    text = "\n".join(lines)
    print("\n" + text)
    if args.out:
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
