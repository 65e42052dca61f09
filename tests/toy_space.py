"""A toy search space, added in this one file through the public API (docs/extending.md walks through it): MLPs of
one to three hidden layers, each 8, 16 or 32 units wide. A spec is the tuple of widths; its string is ``"16-32"``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from torch import nn

from lswag_lightning.spaces import SearchSpace, register_space

WIDTHS = (8, 16, 32)
MAX_DEPTH = 3


@register_space("toy_mlp")
class ToyMLPSpace(SearchSpace):
    name = "toy_mlp"

    def sample(self, rng: np.random.Generator | int | None) -> tuple[int, ...]:
        gen = np.random.default_rng(rng)  # a Generator is used as is; an int seeds a new one; else TypeError
        depth = int(gen.integers(1, MAX_DEPTH + 1))
        return tuple(WIDTHS[int(i)] for i in gen.integers(len(WIDTHS), size=depth))

    def mutate(self, spec: Any, rng: np.random.Generator | int | None) -> tuple[int, ...]:
        """Change the width of one uniformly chosen layer to another allowed width."""
        widths, gen = list(self.decode(spec)), np.random.default_rng(rng)
        layer = int(gen.integers(len(widths)))
        others = [w for w in WIDTHS if w != widths[layer]]
        widths[layer] = others[int(gen.integers(len(others)))]
        return tuple(widths)

    def encode(self, spec: Any) -> str:
        return "-".join(str(w) for w in self.decode(spec))

    def decode(self, value: str | Mapping | tuple) -> tuple[int, ...]:
        """A strict parser: ``"8-32"`` or a tuple of widths; ``ValueError`` naming the allowed values otherwise."""
        if isinstance(value, str) and all(part.isdigit() for part in value.split("-")):
            value = tuple(int(part) for part in value.split("-"))
        if not isinstance(value, tuple) or not 1 <= len(value) <= MAX_DEPTH or any(w not in WIDTHS for w in value):
            raise ValueError(f"toy_mlp spec {value!r}: 1 to {MAX_DEPTH} widths from {WIDTHS}, e.g. '16-32'")
        return value

    def build(
        self, spec: Any, num_classes: int = 10, in_chans: int = 3, img_size: int = 32, **space_options: Any
    ) -> nn.Module:
        if space_options:
            raise ValueError(f"toy_mlp takes no build options, got {sorted(space_options)}")
        layers: list[nn.Module] = [nn.Flatten()]
        features = in_chans * img_size * img_size
        for width in self.decode(spec):
            layers += [nn.Linear(features, width), nn.ReLU()]
            features = width
        return nn.Sequential(*layers, nn.Linear(features, num_classes))
