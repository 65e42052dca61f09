"""AutoFormer ViT search spaces (Chen et al., ICCV 2021): ``autoformer_ti``, ``autoformer_s``, ``autoformer_mini``.

An architecture (:class:`ViTArch`) has one embedding dim for the whole net, a depth, and per layer a number of
attention heads and an MLP ratio. As in AutoFormer, the attention q/k/v width is ``heads * head_dim`` with
``head_dim`` = 64, independent of the embedding dim; the MLP hidden width is ``int(embed_dim * mlp_ratio)``.

The network is a standalone (not weight-sharing) pre-norm ViT built from timm layers: a conv patch embedding,
a class token, an absolute position embedding, blocks ``x + attn(LN(x))``, ``x + mlp(LN(x))`` with an
``nn.GELU`` module inside each MLP, a final LayerNorm and a linear head on the class token. AutoFormer's
relative position encoding is not used. Linear weights, the class token and the position embedding are
initialised with a truncated normal of std 0.02, biases with 0 (AutoFormer / timm ViT convention).

Presets (values from the AutoFormer search-space configs):

============== ================ ============ ================= ========== ========
space          embed_dim        depth        mlp_ratio         num_heads  head_dim
============== ================ ============ ================= ========== ========
autoformer_ti  192, 216, 240    12, 13, 14   3.5, 4.0          3, 4       64
autoformer_s   320, 384, 448    12, 13, 14   3.0, 3.5, 4.0     5, 6, 7    64
autoformer_mini 64, 96, 128     2, 3, 4      2.0, 3.0, 4.0     2, 3, 4    16
============== ================ ============ ================= ========== ========

``autoformer_mini`` is a CPU-sized space for demos and tests (about 0.1-0.7M parameters at 32 px); its head dim
is 16 so the q/k/v width stays in proportion to its small embedding dims.

String form: compact JSON with sorted keys, e.g.
``{"depth":2,"embed_dim":64,"mlp_ratio":[2.0,3.0],"num_heads":[2,4]}``. ``decode`` also accepts the arch dicts
of Auto-Prox's AutoFormer benchmark (``hidden_dim`` for ``embed_dim``).
"""

from __future__ import annotations

import json
import numbers
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from timm.layers import Attention, DropPath, Mlp, PatchEmbed, trunc_normal_
from torch import nn

from lswag_lightning.spaces.base import SearchSpace, as_generator, load_json_object, register_space

LN_EPS = 1e-6


@dataclass(frozen=True)
class ViTArch:
    """One AutoFormer architecture.

    Attributes:
        embed_dim: token width of the whole network.
        depth: number of transformer blocks.
        mlp_ratio: per block, MLP hidden width / embed_dim (length ``depth``).
        num_heads: per block, number of attention heads (length ``depth``); q/k/v width = heads * head_dim.
    """

    embed_dim: int
    depth: int
    mlp_ratio: tuple[float, ...]
    num_heads: tuple[int, ...]

    def to_dict(self) -> dict:
        """JSON-ready dict (lists, sorted keys in ``encode``)."""
        return {
            "embed_dim": self.embed_dim,
            "depth": self.depth,
            "mlp_ratio": list(self.mlp_ratio),
            "num_heads": list(self.num_heads),
        }


# ----------------------------------------------------------------------------------------------- modules
class ViTBlock(nn.Module):
    """Pre-norm transformer block; (B, T, dim) -> (B, T, dim).

    Attention uses ``num_heads`` heads of width ``head_dim`` (q/k/v width ``num_heads * head_dim``, projected
    back to ``dim``); the MLP has ``int(dim * mlp_ratio)`` hidden units and an ``nn.GELU`` module.
    """

    def __init__(
        self,
        dim: int,
        num_heads: int,
        head_dim: int,
        mlp_ratio: float,
        qkv_bias: bool = True,
        proj_drop: float = 0.0,
        attn_drop: float = 0.0,
        drop_path: float = 0.0,
    ) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=LN_EPS)
        self.attn = Attention(
            dim,
            num_heads=num_heads,
            attn_head_dim=head_dim,
            qkv_bias=qkv_bias,
            attn_drop=attn_drop,
            proj_drop=proj_drop,
        )
        self.drop_path1 = DropPath(drop_path) if drop_path > 0 else nn.Identity()
        self.norm2 = nn.LayerNorm(dim, eps=LN_EPS)
        self.mlp = Mlp(in_features=dim, hidden_features=int(dim * mlp_ratio), act_layer=nn.GELU, drop=proj_drop)
        self.drop_path2 = DropPath(drop_path) if drop_path > 0 else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.drop_path1(self.attn(self.norm1(x)))
        return x + self.drop_path2(self.mlp(self.norm2(x)))


class AutoFormerViT(nn.Module):
    """A standalone AutoFormer subnet; images (B, in_chans, img_size, img_size) -> logits (B, num_classes)."""

    def __init__(
        self,
        arch: ViTArch,
        num_classes: int = 10,
        in_chans: int = 3,
        img_size: int = 32,
        patch_size: int = 4,
        head_dim: int = 64,
        qkv_bias: bool = True,
        drop_rate: float = 0.0,
        attn_drop_rate: float = 0.0,
        drop_path_rate: float = 0.0,
    ) -> None:
        super().__init__()
        self.arch = arch
        dim = arch.embed_dim
        self.patch_embed = PatchEmbed(img_size=img_size, patch_size=patch_size, in_chans=in_chans, embed_dim=dim)
        num_patches = self.patch_embed.num_patches
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, num_patches + 1, dim))
        self.pos_drop = nn.Dropout(drop_rate)
        # stochastic-depth rate rising linearly from 0 to drop_path_rate over the blocks
        rates = [drop_path_rate * i / max(arch.depth - 1, 1) for i in range(arch.depth)]
        self.blocks = nn.Sequential(
            *[
                ViTBlock(
                    dim,
                    arch.num_heads[i],
                    head_dim,
                    arch.mlp_ratio[i],
                    qkv_bias=qkv_bias,
                    proj_drop=drop_rate,
                    attn_drop=attn_drop_rate,
                    drop_path=rates[i],
                )
                for i in range(arch.depth)
            ]
        )
        self.norm = nn.LayerNorm(dim, eps=LN_EPS)
        self.head_drop = nn.Dropout(drop_rate)
        self.head = nn.Linear(dim, num_classes)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Truncated-normal (std 0.02) Linear weights, class token and position embedding; zero biases."""
        trunc_normal_(self.pos_embed, std=0.02)
        trunc_normal_(self.cls_token, std=0.02)
        for module in self.modules():
            if isinstance(module, nn.Linear):
                trunc_normal_(module.weight, std=0.02)
                if module.bias is not None:
                    nn.init.zeros_(module.bias)
            elif isinstance(module, nn.LayerNorm):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Images -> normalised tokens (B, 1 + num_patches, embed_dim), class token first."""
        x = self.patch_embed(x)
        x = torch.cat([self.cls_token.expand(x.shape[0], -1, -1), x], dim=1) + self.pos_embed
        return self.norm(self.blocks(self.pos_drop(x)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.head_drop(self.forward_features(x)[:, 0]))


def default_patch_size(img_size: int) -> int:
    """Largest of 16, 8, 4, 2, 1 that divides ``img_size`` and leaves a grid of at least 8x8 patches.

    224 -> 16 (14x14, the ImageNet setting), 32 -> 4 (8x8, CIFAR), 8 -> 1 (digits).
    """
    for p in (16, 8, 4, 2, 1):
        if img_size % p == 0 and img_size // p >= 8:
            return p
    return 1


# ------------------------------------------------------------------------------------------------- space
def _is_int(x: Any) -> bool:
    return isinstance(x, numbers.Integral) and not isinstance(x, bool)


def _is_number(x: Any) -> bool:
    return isinstance(x, numbers.Real) and not isinstance(x, bool)


class AutoFormerSpace(SearchSpace):
    """An AutoFormer space with the given choices; specs are :class:`ViTArch`.

    Build options: ``patch_size`` (None: :func:`default_patch_size` of ``img_size``; 16 at 224 px),
    ``head_dim`` (None: the space's, 64 for ti/s, 16 for mini), ``qkv_bias`` (True), ``drop_rate``,
    ``attn_drop_rate``, ``drop_path_rate`` (all 0).
    """

    _KEYS = ("embed_dim", "depth", "mlp_ratio", "num_heads")

    def __init__(
        self,
        name: str,
        embed_dims: Sequence[int],
        depths: Sequence[int],
        mlp_ratios: Sequence[float],
        num_heads: Sequence[int],
        head_dim: int = 64,
    ) -> None:
        super().__init__()
        self.name = name
        self.embed_dims = tuple(int(v) for v in embed_dims)
        self.depths = tuple(int(v) for v in depths)
        self.mlp_ratios = tuple(float(v) for v in mlp_ratios)
        self.num_heads = tuple(int(v) for v in num_heads)
        self.head_dim = int(head_dim)

    # -- choices -----------------------------------------------------------------------------------
    def _choice(self, gen: np.random.Generator, values: Sequence, exclude: Any = None) -> Any:
        options = [v for v in values if v != exclude]
        return options[int(gen.integers(len(options)))]

    def sample(self, rng: np.random.Generator | int | None) -> ViTArch:
        """Uniform embed dim and depth, then uniform per-layer MLP ratio and heads."""
        gen = as_generator(rng)
        embed = self._choice(gen, self.embed_dims)
        depth = self._choice(gen, self.depths)
        ratios = tuple(self._choice(gen, self.mlp_ratios) for _ in range(depth))
        heads = tuple(self._choice(gen, self.num_heads) for _ in range(depth))
        return ViTArch(embed, depth, ratios, heads)

    def mutate(self, spec: Any, rng: np.random.Generator | int | None) -> ViTArch:
        """Change one thing: a field (embed_dim, depth, mlp_ratio, num_heads) is picked uniformly among those
        with more than one choice, then (for the per-layer fields) one layer; its value is replaced by a
        different allowed one. A deeper net gets random choices for the new layers; a shallower one is cut.
        """
        spec = self.coerce(spec)
        gen = as_generator(rng)
        fields = [
            f
            for f, values in (
                ("embed_dim", self.embed_dims),
                ("depth", self.depths),
                ("mlp_ratio", self.mlp_ratios),
                ("num_heads", self.num_heads),
            )
            if len(values) > 1
        ]
        if not fields:
            raise ValueError(f"{self.name}: the space has a single architecture, nothing to mutate")
        field = fields[int(gen.integers(len(fields)))]
        embed, depth = spec.embed_dim, spec.depth
        ratios, heads = list(spec.mlp_ratio), list(spec.num_heads)
        if field == "embed_dim":
            embed = self._choice(gen, self.embed_dims, exclude=embed)
        elif field == "depth":
            depth = self._choice(gen, self.depths, exclude=depth)
            while len(ratios) < depth:
                ratios.append(self._choice(gen, self.mlp_ratios))
                heads.append(self._choice(gen, self.num_heads))
            ratios, heads = ratios[:depth], heads[:depth]
        else:
            layer = int(gen.integers(depth))
            if field == "mlp_ratio":
                ratios[layer] = self._choice(gen, self.mlp_ratios, exclude=ratios[layer])
            else:
                heads[layer] = self._choice(gen, self.num_heads, exclude=heads[layer])
        return ViTArch(embed, depth, tuple(ratios), tuple(heads))

    # -- strings -----------------------------------------------------------------------------------
    def encode(self, spec: Any) -> str:
        return json.dumps(self.coerce(spec).to_dict(), sort_keys=True, separators=(",", ":"))

    def decode(self, value: str | Mapping | ViTArch) -> ViTArch:
        """Parse a JSON string or dict with keys ``embed_dim`` (or ``hidden_dim``), ``depth``, ``mlp_ratio``,
        ``num_heads``. Per-layer fields are lists of length ``depth``; a single number is repeated for every
        layer. Every value must be one of the space's choices.
        """
        where = f"{self.name} arch"
        if isinstance(value, ViTArch):
            value = value.to_dict()
        elif isinstance(value, str):
            value = load_json_object(value, where)
        if not isinstance(value, Mapping):
            raise ValueError(f"{where}: expected a dict or a JSON object string, got {type(value).__name__}")
        data = dict(value)
        if "hidden_dim" in data:
            if "embed_dim" in data:
                raise ValueError(f"{where}: give either 'embed_dim' or its alias 'hidden_dim', not both")
            data["embed_dim"] = data.pop("hidden_dim")
        unknown = sorted(str(k) for k in data if k not in self._KEYS)
        if unknown:
            raise ValueError(
                f"{where}: unknown field(s) {unknown}; allowed fields: {', '.join(self._KEYS)} "
                "('hidden_dim' is accepted for 'embed_dim')"
            )
        missing = [k for k in self._KEYS if k not in data]
        if missing:
            raise ValueError(f"{where}: missing field(s) {missing}; required: {', '.join(self._KEYS)}")

        embed = data["embed_dim"]
        if not _is_int(embed) or int(embed) not in self.embed_dims:
            raise ValueError(
                f"{where}: embed_dim={embed!r} is not allowed; allowed values: {', '.join(map(str, self.embed_dims))}"
            )
        depth = data["depth"]
        if not _is_int(depth) or int(depth) not in self.depths:
            raise ValueError(
                f"{where}: depth={depth!r} is not allowed; allowed values: {', '.join(map(str, self.depths))}"
            )
        depth = int(depth)
        ratios = self._per_layer(data["mlp_ratio"], "mlp_ratio", depth, self.mlp_ratios, _is_number, float)
        heads = self._per_layer(data["num_heads"], "num_heads", depth, self.num_heads, _is_int, int)
        return ViTArch(int(embed), depth, ratios, heads)

    def _per_layer(self, raw: Any, field: str, depth: int, allowed: tuple, ok_type, cast) -> tuple:
        where = f"{self.name} arch"
        allowed_text = ", ".join(map(str, allowed))
        if ok_type(raw):
            raw = [raw] * depth
        if not isinstance(raw, (list, tuple)):
            raise ValueError(
                f"{where}: {field} must be a list of {depth} values (one per layer) or a single "
                f"value; allowed values: {allowed_text}; got {type(raw).__name__}"
            )
        if len(raw) != depth:
            raise ValueError(f"{where}: {field} has {len(raw)} entries but depth is {depth}; give one per layer")
        out = []
        for i, v in enumerate(raw):
            if not ok_type(v) or cast(v) not in allowed:
                raise ValueError(f"{where}: {field}[{i}]={v!r} is not allowed; allowed values: {allowed_text}")
            out.append(cast(v))
        return tuple(out)

    # -- models ------------------------------------------------------------------------------------
    def _resolve(self, img_size: int, patch_size: int | None, head_dim: int | None) -> tuple[int, int]:
        patch = default_patch_size(img_size) if patch_size is None else int(patch_size)
        if patch < 1 or img_size % patch != 0:
            raise ValueError(f"patch_size={patch} must divide img_size={img_size}")
        hd = self.head_dim if head_dim is None else int(head_dim)
        if hd < 1:
            raise ValueError(f"head_dim must be >= 1, got {hd}")
        return patch, hd

    def build(
        self,
        spec: Any,
        num_classes: int = 10,
        in_chans: int = 3,
        img_size: int = 32,
        *,
        patch_size: int | None = None,
        head_dim: int | None = None,
        qkv_bias: bool = True,
        drop_rate: float = 0.0,
        attn_drop_rate: float = 0.0,
        drop_path_rate: float = 0.0,
    ) -> nn.Module:
        """The ViT for ``spec``: (B, in_chans, img_size, img_size) -> logits (B, num_classes)."""
        arch = self.coerce(spec)
        patch, hd = self._resolve(img_size, patch_size, head_dim)
        return AutoFormerViT(
            arch,
            num_classes=num_classes,
            in_chans=in_chans,
            img_size=img_size,
            patch_size=patch,
            head_dim=hd,
            qkv_bias=qkv_bias,
            drop_rate=drop_rate,
            attn_drop_rate=attn_drop_rate,
            drop_path_rate=drop_path_rate,
        )

    def param_count(
        self,
        spec: Any,
        num_classes: int = 10,
        in_chans: int = 3,
        img_size: int = 32,
        *,
        patch_size: int | None = None,
        head_dim: int | None = None,
        qkv_bias: bool = True,
        **_dropout_options: Any,
    ) -> int:
        """Closed-form trainable parameter count (equals counting ``build(...)``)."""
        arch = self.coerce(spec)
        patch, hd = self._resolve(img_size, patch_size, head_dim)
        dim = arch.embed_dim
        tokens = (img_size // patch) ** 2 + 1
        total = in_chans * patch * patch * dim + dim  # patch-embedding conv
        total += dim + tokens * dim  # class token, position embedding
        for heads, ratio in zip(arch.num_heads, arch.mlp_ratio):
            width = heads * hd
            hidden = int(dim * ratio)
            total += 4 * dim  # two LayerNorms
            total += dim * 3 * width + (3 * width if qkv_bias else 0) + width * dim + dim  # qkv, proj
            total += dim * hidden + hidden + hidden * dim + dim  # fc1, fc2
        total += 2 * dim + dim * num_classes + num_classes  # final norm, head
        return total


@register_space("autoformer_ti")
def autoformer_ti() -> AutoFormerSpace:
    """AutoFormer-Ti: embed {192, 216, 240}, depth {12, 13, 14}, mlp_ratio {3.5, 4.0}, heads {3, 4}."""
    return AutoFormerSpace("autoformer_ti", (192, 216, 240), (12, 13, 14), (3.5, 4.0), (3, 4), head_dim=64)


@register_space("autoformer_s")
def autoformer_s() -> AutoFormerSpace:
    """AutoFormer-S: embed {320, 384, 448}, depth {12, 13, 14}, mlp_ratio {3.0, 3.5, 4.0}, heads {5, 6, 7}."""
    return AutoFormerSpace("autoformer_s", (320, 384, 448), (12, 13, 14), (3.0, 3.5, 4.0), (5, 6, 7), head_dim=64)


@register_space("autoformer_mini")
def autoformer_mini() -> AutoFormerSpace:
    """CPU-sized: embed {64, 96, 128}, depth {2, 3, 4}, mlp_ratio {2.0, 3.0, 4.0}, heads {2, 3, 4}, head_dim 16."""
    return AutoFormerSpace("autoformer_mini", (64, 96, 128), (2, 3, 4), (2.0, 3.0, 4.0), (2, 3, 4), head_dim=16)
