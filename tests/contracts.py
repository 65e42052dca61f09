"""The contract every registered proxy, pass and search space keeps, as plain check functions.

The contract tests (``test_proxies_contract.py``, ``test_spaces_common.py``) run them over ``available_proxies()``,
``registered_passes()`` and ``available_spaces()``, so a new proxy or space is checked without being listed anywhere;
``test_extending.py`` runs the same checks on the toy proxy and the toy space it registers.
"""

from __future__ import annotations

import ast
import builtins
import dataclasses
import math
import re

import numpy as np
import pytest
import torch
from torch import nn

from lswag_lightning.proxies import (
    ProxyReport,
    available_needs,
    available_options,
    get_proxy,
    higher_is_better,
    registered_passes,
    score_network,
)
from lswag_lightning.spaces import SearchSpace

STATUS = re.compile(r"^(ok|nan: .+|inf: .+|error: .+|degenerate: .+|partial: .+)$")  # one line


# ------------------------------------------------------------------------------------------------- models
def tiny_cnn() -> nn.Module:
    """Two conv blocks with BatchNorm and ReLU: 16x16 RGB -> 10 classes."""
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1),
        nn.BatchNorm2d(8),
        nn.ReLU(),
        nn.Conv2d(8, 16, 3, stride=2, padding=1),
        nn.BatchNorm2d(16),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(16, 10),
    )


def tiny_vit() -> nn.Module:
    """A two-block timm ViT (GELU modules, pre-norm blocks): 16x16 RGB -> 10 classes."""
    from timm.models.vision_transformer import VisionTransformer

    torch.manual_seed(0)
    return VisionTransformer(img_size=16, patch_size=4, embed_dim=32, depth=2, num_heads=2, num_classes=10)


TINY_MODELS = {"cnn": tiny_cnn, "vit": tiny_vit}


def probe_batch(n: int = 16, size: int = 16) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    return torch.randn(n, 3, size, size, generator=generator), torch.randint(0, 10, (n,), generator=generator)


# ------------------------------------------------------------------------------------------------- proxies
def check_options_group(group: type) -> None:
    """A frozen dataclass, every field with a default and documented in its docstring, every field a valid option."""
    assert dataclasses.is_dataclass(group) and group.__dataclass_params__.frozen, group
    group()  # the defaults are valid
    options = available_options()
    for field in dataclasses.fields(group):
        assert f"``{field.name}``" in (group.__doc__ or ""), f"{group.__name__}: document ``{field.name}``"
        assert field.name in options, field.name


def check_proxy_metadata(name: str) -> None:
    """Registered once with a description, an orientation, known needs each produced by exactly one pass, sub-values
    named ``<name>.<part>`` and documented options."""
    spec = get_proxy(name)
    assert spec.name == name and name.strip() == name and "." not in name
    assert isinstance(spec.description, str) and spec.description.strip(), name
    assert isinstance(spec.higher_is_better, bool), name
    assert callable(spec.compute)
    known = available_needs()
    for need in spec.needs:
        assert need in known, (name, need)
        if need != "labels":
            producers = [p.name for p in registered_passes() if need in p.produces]
            assert len(producers) == 1, (name, need, producers)
    assert all(extra.startswith(f"{name}.") for extra in spec.extra_values), spec.extra_values
    if spec.options is not None:
        check_options_group(spec.options)


def check_orientation(name: str) -> None:
    """``higher_is_better`` is known for the proxy and each sub-value, as registered."""
    spec = get_proxy(name)
    for key in (name, *spec.extra_values):
        assert higher_is_better(key) is spec.higher_is_better, key


def check_pass_metadata(pass_name: str) -> None:
    """A pass: its products described and produced by no other pass, its weight-gradient needs among its products."""
    (spec,) = [p for p in registered_passes() if p.name == pass_name]
    assert spec.produces and callable(spec.run)
    for need, description in spec.produces.items():
        assert isinstance(description, str) and description.strip(), need
        assert [p.name for p in registered_passes() if need in p.produces] == [pass_name], need
    assert spec.weight_gradients <= set(spec.produces)
    if spec.options is not None:
        check_options_group(spec.options)


def check_value_or_status(report: ProxyReport, name: str) -> None:
    """Each value of the proxy is a float with a one-line status: ``ok`` for a finite value, ``nan: why`` / ``inf:
    why`` for a non-finite one, ``partial: why`` for a finite value measured on part of the model, ``degenerate: why``
    (value NaN) when it is constant by construction, ``error: why`` (value NaN) when it could not be computed;
    orientation and seconds reported."""
    spec = get_proxy(name)
    for key in (name, *spec.extra_values):
        value, status = report.values[key], report.status[key]
        assert isinstance(value, float) and STATUS.match(status), (key, status)
        if status == "ok" or status.startswith("partial: "):
            assert math.isfinite(value), (key, value)
        elif status.startswith("nan: "):
            assert math.isnan(value), (key, value)
        elif status.startswith("inf: "):
            assert math.isinf(value), (key, value)
        else:
            assert math.isnan(value), (key, value, status)
        assert report.higher_is_better[key] is spec.higher_is_better
        assert report.seconds[key] >= 0


def same_value(a: float, b: float) -> bool:
    """Equal to the bit (NaN equals NaN)."""
    return (math.isnan(a) and math.isnan(b)) or a == b


def check_alone_equals_together(model: nn.Module, name: str, together: ProxyReport, **options) -> None:
    """The proxy scored alone gives exactly the value and status it has among every other proxy."""
    x, y = probe_batch()
    alone = score_network(model, x, y, proxies=[name], **options)
    spec = get_proxy(name)
    for key in (name, *spec.extra_values):
        assert alone.status[key] == together.status[key], key
        assert same_value(alone.values[key], together.values[key]), (key, alone.values[key], together.values[key])


# ------------------------------------------------------------------------------------------------- spaces
def check_sampling_is_seeded(space: SearchSpace) -> None:
    """The same seed or generator state gives the same specs; different seeds give different ones."""
    by_int = [space.encode(space.sample(seed)) for seed in range(8)]
    assert by_int == [space.encode(space.sample(seed)) for seed in range(8)]
    assert len(set(by_int)) > 1  # different seeds give different specs
    gen_a, gen_b = np.random.default_rng(7), np.random.default_rng(7)
    assert [space.sample(gen_a) for _ in range(5)] == [space.sample(gen_b) for _ in range(5)]
    with pytest.raises(TypeError):
        space.sample("seed")


def check_mutate(space: SearchSpace, steps: int = 200) -> None:
    """Each mutation is a valid spec that differs from its parent, reproducible for a seed, from a spec or a string."""
    gen = np.random.default_rng(0)
    spec = space.sample(gen)
    for _ in range(steps):
        child = space.mutate(spec, gen)
        assert child != spec
        assert space.decode(space.encode(child)) == child  # valid
        spec = child
    assert space.mutate(space.encode(spec), 3) == space.mutate(spec, 3)


def check_round_trip(space: SearchSpace) -> None:
    """``encode`` gives a canonical string that ``decode`` reads back; a spec object decodes to itself."""
    for seed in range(20):
        spec = space.sample(seed)
        text = space.encode(spec)
        assert isinstance(text, str)
        assert space.decode(text) == spec
        assert space.encode(space.decode(text)) == text  # canonical
        assert space.decode(spec) == spec


def check_rejects_bad_strings(space: SearchSpace) -> None:
    for bad in ("", "garbage", "{}", "[1, 2]", 42):
        with pytest.raises(ValueError):
            space.decode(bad)


CODE_CELLS = [
    "__import__('pathlib').Path({path!r}).write_text('pwned')",
    "Genotype(normal=__import__('pathlib').Path({path!r}).write_text('pwned'), normal_concat=[2], "
    "reduce=[], reduce_concat=[2])",
    "|nor_conv_3x3~0|+|__import__('pathlib').Path({path!r}).write_text('x')~0|none~1|+|none~0|none~1|none~2|",
    '{{"embed_dim": __import__("pathlib").Path({path!r}).write_text("x"), "depth": 12}}',
]


def check_decode_never_evaluates(space: SearchSpace, tmp_path, monkeypatch) -> None:
    """Code in a table cell is rejected, never run; valid strings decode with eval/exec/literal_eval unavailable."""
    target = tmp_path / "evaluated.txt"

    def forbidden(*args, **kwargs):
        raise AssertionError("decode must not evaluate its input")

    monkeypatch.setattr(builtins, "eval", forbidden)
    monkeypatch.setattr(builtins, "exec", forbidden)
    monkeypatch.setattr(ast, "literal_eval", forbidden)
    for cell in CODE_CELLS:
        with pytest.raises(ValueError):
            space.decode(cell.format(path=str(target)))
    assert not target.exists()
    spec = space.sample(0)
    assert space.decode(space.encode(spec)) == spec


def built_parameters(net: nn.Module) -> int:
    """Trainable parameters but auxiliary heads (names matching the engine's default ``params_exclude``)."""
    return sum(p.numel() for n, p in net.named_parameters() if p.requires_grad and not re.search(r"(^|\.)aux", n))


def check_build(space: SearchSpace, build_options: dict) -> None:
    """The built model maps images to logits through hookable activation modules (one object per use, not in-place),
    and ``param_count`` agrees with the built model."""
    spec = space.sample(1)
    net = space.build(spec, num_classes=7, **build_options).eval()
    with torch.no_grad():
        out = net(torch.randn(2, 3, build_options.get("img_size", 32), build_options.get("img_size", 32)))
    assert isinstance(out, torch.Tensor) and out.shape == (2, 7)
    acts = [m for m in net.modules() if isinstance(m, (nn.ReLU, nn.GELU))]
    assert acts, "no activation modules"
    assert len({id(m) for m in acts}) == len(acts)  # each activation module object appears once
    assert all(not getattr(m, "inplace", False) for m in acts)
    assert space.param_count(spec, num_classes=7, **build_options) == built_parameters(net)


def check_scores(space: SearchSpace, build_options: dict, proxies=("lswag", "naswot", "synflow")) -> None:
    """A sample of the space scores ``ok`` with the engine on CIFAR-sized images."""
    net = space.build(space.sample(0), num_classes=10, img_size=32, **build_options)
    x = torch.randn(16, 3, 32, 32)
    y = torch.arange(16) % 10
    report = score_network(net, x, y, proxies=proxies)
    for proxy in proxies:
        assert report.status[proxy] == "ok", (proxy, report.status[proxy])


def check_space_contract(space: SearchSpace, build_options: dict, tmp_path, monkeypatch) -> None:
    """Every check above, for a space used outside the parametrised tests (the toy space)."""
    assert isinstance(space, SearchSpace) and space.name
    check_sampling_is_seeded(space)
    check_mutate(space)
    check_round_trip(space)
    check_rejects_bad_strings(space)
    check_decode_never_evaluates(space, tmp_path, monkeypatch)
    check_build(space, build_options)
    check_scores(space, build_options)
