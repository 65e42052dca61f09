"""AutoFormer ViT spaces: benchmark archs decode and build, parameter counts and their monotonicity, errors."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

from lswag_lightning.spaces import get_space
from lswag_lightning.spaces.autoformer import AutoFormerViT, ViTArch, default_patch_size

IMAGENET = {"num_classes": 1000, "img_size": 224, "patch_size": 16}


def uniform(embed: int, depth: int, ratio: float, heads: int) -> dict:
    return {"embed_dim": embed, "depth": depth, "mlp_ratio": [ratio] * depth, "num_heads": [heads] * depth}


def n_params(net: nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())


@pytest.fixture(scope="module")
def autoprox_archs(shared_data_dir):
    records = json.loads((shared_data_dir / "vit" / "autoprox_gt_autoformer.json").read_text())
    return [r["arch"] for r in records]


def test_every_benchmark_arch_decodes_and_builds(autoprox_archs):
    space = get_space("autoformer_ti")
    assert len(autoprox_archs) == 100
    seen = set()
    for arch in autoprox_archs:
        spec = space.decode(arch)
        assert spec.embed_dim == arch["hidden_dim"] and spec.depth == arch["depth"]
        assert list(spec.mlp_ratio) == arch["mlp_ratio"] and list(spec.num_heads) == arch["num_heads"]
        assert space.decode(space.encode(spec)) == spec
        with torch.device("meta"):  # structure and counts without allocating memory
            net = space.build(arch, **IMAGENET)
        assert len(net.blocks) == spec.depth
        assert n_params(net) == space.param_count(arch, **IMAGENET)
        seen.add(space.encode(spec))
    assert len(seen) == 100
    # two real ones (smallest and largest) run a forward pass on small images
    ordered = sorted(autoprox_archs, key=lambda a: space.param_count(a))
    for arch in (ordered[0], ordered[-1]):
        net = space.build(arch, num_classes=5, img_size=32, patch_size=16).eval()
        with torch.no_grad():
            assert net(torch.randn(2, 3, 32, 32)).shape == (2, 5)


def test_autoformer_s_extremes_match_the_paper_range():
    # AutoFormer paper: the Small space spans about 13M to 35M parameters (ImageNet-1k, 224 px, patch 16).
    space = get_space("autoformer_s")
    smallest = space.param_count(uniform(320, 12, 3.0, 5), **IMAGENET)
    largest = space.param_count(uniform(448, 14, 4.0, 7), **IMAGENET)
    assert smallest == 12_965_160
    assert largest == 34_682_920
    assert 12.5e6 < smallest < 13.5e6 and 34e6 < largest < 35.5e6


def test_autoformer_ti_range():
    space = get_space("autoformer_ti")
    assert space.param_count(uniform(192, 12, 3.5, 3), **IMAGENET) == 5_273_896
    assert space.param_count(uniform(240, 14, 4.0, 4), **IMAGENET) == 10_409_752


@pytest.mark.parametrize("name", ["autoformer_ti", "autoformer_s", "autoformer_mini"])
def test_param_count_is_monotone_in_every_choice(name):
    space = get_space(name)
    base = space.sample(0)

    def count(**change) -> int:
        fields = {
            "embed_dim": base.embed_dim,
            "depth": base.depth,
            "mlp_ratio": list(base.mlp_ratio),
            "num_heads": list(base.num_heads),
        }
        fields.update(change)
        return space.param_count(fields, **IMAGENET)

    for a, b in zip(space.embed_dims, space.embed_dims[1:]):
        assert count(embed_dim=a) < count(embed_dim=b)
    for a, b in zip(space.depths, space.depths[1:]):
        pad = [base.mlp_ratio[0]] * b, [base.num_heads[0]] * b
        assert count(depth=a, mlp_ratio=pad[0][:a], num_heads=pad[1][:a]) < count(
            depth=b, mlp_ratio=pad[0], num_heads=pad[1]
        )
    for layer in range(base.depth):
        for a, b in zip(space.mlp_ratios, space.mlp_ratios[1:]):
            lo, hi = list(base.mlp_ratio), list(base.mlp_ratio)
            lo[layer], hi[layer] = a, b
            assert count(mlp_ratio=lo) < count(mlp_ratio=hi)
        for a, b in zip(space.num_heads, space.num_heads[1:]):
            lo, hi = list(base.num_heads), list(base.num_heads)
            lo[layer], hi[layer] = a, b
            assert count(num_heads=lo) < count(num_heads=hi)


def test_structure_follows_autoformer():
    space = get_space("autoformer_ti")
    arch = {"hidden_dim": 216, "depth": 12, "mlp_ratio": [3.5, 4.0] * 6, "num_heads": [3, 4] * 6}
    with torch.device("meta"):
        net = space.build(arch, **IMAGENET)
    assert isinstance(net, AutoFormerViT)
    assert net.patch_embed.proj.kernel_size == (16, 16)
    assert net.pos_embed.shape == (1, 197, 216) and net.cls_token.shape == (1, 1, 216)
    for block, ratio, heads in zip(net.blocks, arch["mlp_ratio"], arch["num_heads"]):
        assert block.attn.qkv.in_features == 216 and block.attn.qkv.out_features == 3 * heads * 64
        assert block.attn.proj.in_features == heads * 64 and block.attn.proj.out_features == 216
        assert block.mlp.fc1.out_features == int(216 * ratio)
        assert isinstance(block.mlp.act, nn.GELU)
        assert isinstance(block.norm1, nn.LayerNorm)
    assert [m for m in net.modules() if isinstance(m, nn.GELU)] == [b.mlp.act for b in net.blocks]
    assert net.head.in_features == 216 and net.head.out_features == 1000


def test_mini_space_is_cpu_sized_and_trains():
    space = get_space("autoformer_mini")
    assert space.head_dim == 16
    small = space.param_count(uniform(64, 2, 2.0, 2))
    large = space.param_count(uniform(128, 4, 4.0, 4))
    assert (small, large) == (58_506, 677_514)
    net = space.build(space.sample(3), num_classes=10)
    x, y = torch.randn(4, 3, 32, 32), torch.tensor([0, 1, 2, 3])
    loss = nn.functional.cross_entropy(net(x), y)
    loss.backward()
    assert all(p.grad is not None for p in net.parameters())
    # the head dim is a build option
    wide = space.build(space.sample(3), head_dim=32)
    assert wide.blocks[0].attn.qkv.out_features == 3 * 32 * space.sample(3).num_heads[0]
    assert n_params(wide) == space.param_count(space.sample(3), head_dim=32)


def test_patch_and_image_size_are_build_options():
    space = get_space("autoformer_mini")
    spec = space.sample(0)
    assert (default_patch_size(224), default_patch_size(32), default_patch_size(8)) == (16, 4, 1)
    for img_size, patch_size, tokens in ((32, None, 65), (8, 2, 17), (28, 7, 17), (64, 16, 17)):
        net = space.build(spec, in_chans=1, img_size=img_size, patch_size=patch_size).eval()
        assert net.pos_embed.shape[1] == tokens
        with torch.no_grad():
            assert net(torch.randn(2, 1, img_size, img_size)).shape == (2, 10)
        assert n_params(net) == space.param_count(spec, in_chans=1, img_size=img_size, patch_size=patch_size)
    with pytest.raises(ValueError, match="patch_size"):
        space.build(spec, img_size=32, patch_size=5)


def test_encode_is_compact_sorted_json():
    space = get_space("autoformer_mini")
    spec = ViTArch(64, 2, (2.0, 4.0), (2, 3))
    text = space.encode(spec)
    assert text == '{"depth":2,"embed_dim":64,"mlp_ratio":[2.0,4.0],"num_heads":[2,3]}'
    assert space.decode(text) == spec
    # a single value is repeated for every layer; ints are accepted for ratios
    assert space.decode({"embed_dim": 64, "depth": 2, "mlp_ratio": 2, "num_heads": 3}) == ViTArch(
        64, 2, (2.0, 2.0), (3, 3)
    )


@pytest.mark.parametrize(
    "change, message",
    [
        ({"embed_dim": 100}, r"embed_dim=100 is not allowed; allowed values: 192, 216, 240"),
        ({"depth": 11}, r"depth=11 is not allowed; allowed values: 12, 13, 14"),
        ({"depth": 12.0}, r"depth=12.0"),
        ({"mlp_ratio": [4.0] * 11 + [3.0]}, r"mlp_ratio\[11\]=3.0 is not allowed; allowed values: 3.5, 4.0"),
        ({"mlp_ratio": [4.0] * 11}, r"mlp_ratio has 11 entries but depth is 12"),
        ({"num_heads": [3] * 5 + [True] + [3] * 6}, r"num_heads\[5\]"),
        ({"num_heads": "3"}, r"num_heads must be a list"),
        ({"heads": 3}, r"unknown field\(s\) \['heads'\]"),
        ({"hidden_dim": 192}, r"either 'embed_dim' or its alias 'hidden_dim'"),
    ],
)
def test_bad_archs_name_the_field(change, message):
    space = get_space("autoformer_ti")
    arch = {"embed_dim": 192, "depth": 12, "mlp_ratio": [4.0] * 12, "num_heads": [3] * 12}
    arch.update(change)
    with pytest.raises(ValueError, match=message):
        space.decode(arch)
    with pytest.raises(ValueError, match=r"missing field\(s\) \['depth'\]"):
        space.decode({"embed_dim": 192, "mlp_ratio": 4.0, "num_heads": 3})
    with pytest.raises(ValueError, match="not valid JSON"):
        space.decode("{'embed_dim': 192}")
