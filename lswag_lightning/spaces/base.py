"""The search-space interface and the registry of named spaces.

A search space turns *specs* (small immutable descriptions of one architecture) into PyTorch models:

- ``sample(rng) -> spec`` draws a spec; ``rng`` is a ``numpy.random.Generator`` or an int seed, so the same
  seed always gives the same spec.
- ``mutate(spec, rng) -> spec`` returns a valid spec that differs from ``spec``.
- ``encode(spec) -> str`` gives a canonical, stable string; ``decode(str | dict) -> spec`` parses one back.
  Decoding is a strict parser: it never evaluates its input, and a bad input raises ``ValueError`` naming the
  bad field and the allowed values.
- ``build(spec, num_classes=10, in_chans=3, img_size=32, **space_options) -> nn.Module`` builds a freshly
  initialised model whose ``forward`` maps images ``(B, in_chans, img_size, img_size)`` to logits
  ``(B, num_classes)`` in eval mode. Every activation is an ``nn.ReLU``/``nn.GELU`` module (one object per use)
  and every weight layer an ``nn.Conv2d``/``nn.Linear``, so the zero-cost engine can hook them.
- ``param_count(spec, num_classes=10, **build_options) -> int`` counts trainable parameters, in closed form
  where that is cheap.

Spaces register themselves by name with the :func:`register_space` decorator; :func:`get_space` returns a new
instance. A name the registry does not hold is offered to the *space sources* (:func:`register_space_source`): the
config spaces register one that answers a YAML path or a file name on their search path, so every command that
takes a space name also takes a family file. :func:`temporary_spaces` undoes the registrations made inside a block
(for tests). The registry is a leaf: this module imports no space; the package
(``lswag_lightning/spaces/__init__.py``) imports every space module once, so any import under
``lswag_lightning.spaces`` fills it.
"""

from __future__ import annotations

import abc
import contextlib
import difflib
import json
import numbers
import os
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn


def as_generator(rng: np.random.Generator | int | None) -> np.random.Generator:
    """``rng`` as a ``numpy.random.Generator``: a Generator is used as is, an int (or None) seeds a new one."""
    if isinstance(rng, np.random.Generator):
        return rng
    if rng is None or (isinstance(rng, numbers.Integral) and not isinstance(rng, bool)):
        return np.random.default_rng(rng)
    raise TypeError(f"rng must be a numpy.random.Generator or an int seed, got {type(rng).__name__}")


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameter elements of ``model``."""
    return int(sum(p.numel() for p in model.parameters() if p.requires_grad))


def load_json_object(text: str, what: str) -> Any:
    """Parse ``text`` as JSON (never as Python); ``ValueError`` saying what was expected when it is not JSON."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        raise ValueError(f"{what}: not valid JSON ({err.msg} at position {err.pos}): {text[:80]!r}") from None


class SearchSpace(abc.ABC):
    """A named family of architectures; see the module docstring for the contract.

    Attributes:
        name: the registry name of the space (e.g. ``"nb201"``).
    """

    name: str = ""

    @abc.abstractmethod
    def sample(self, rng: np.random.Generator | int | None) -> Any:
        """A random spec, reproducible for a given seed / generator state."""

    @abc.abstractmethod
    def mutate(self, spec: Any, rng: np.random.Generator | int | None) -> Any:
        """A valid spec that differs from ``spec``."""

    @abc.abstractmethod
    def encode(self, spec: Any) -> str:
        """The canonical string of ``spec`` (stable across versions; ``decode(encode(s)) == s``)."""

    @abc.abstractmethod
    def decode(self, value: str | Mapping) -> Any:
        """Parse a string or dict (or re-validate a spec object) into a spec; ``ValueError`` naming the bad field."""

    @abc.abstractmethod
    def build(
        self, spec: Any, num_classes: int = 10, in_chans: int = 3, img_size: int = 32, **space_options: Any
    ) -> nn.Module:
        """A freshly initialised model for ``spec`` (images ``(B, in_chans, img_size, img_size)`` -> logits)."""

    def param_count(self, spec: Any, num_classes: int = 10, **build_options: Any) -> int:
        """Trainable parameters of ``build(spec, num_classes, **build_options)``.

        The default builds the model on the ``meta`` device (no memory, no initialisation cost) and counts;
        spaces override it with a closed form where one is cheap.
        """
        with torch.device("meta"):
            model = self.build(spec, num_classes=num_classes, **build_options)
        return count_parameters(model)

    def coerce(self, spec: Any) -> Any:
        """``spec`` as a validated spec of this space: strings, dicts and spec objects all go through ``decode``."""
        return self.decode(spec)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r})"


_SPACES: dict[str, Callable[[], SearchSpace]] = {}


@dataclass(frozen=True)
class SpaceSource:
    """Where :func:`get_space` looks for a name the registry does not hold.

    Attributes:
        find: ``find(name)`` returns a new space, None when the name is not this source's, or raises ``ValueError``
            when it is (e.g. a YAML path) but cannot be loaded.
        names: the names it offers now (for the "did you mean" hint and the list in the error).
        hint: what else it accepts, for the error message (e.g. "a path to a family YAML file").
    """

    find: Callable[[Any], SearchSpace | None]
    names: Callable[[], list[str]]
    hint: str


_SOURCES: list[SpaceSource] = []


def register_space(name: str, factory: Callable[[], SearchSpace] | None = None) -> Callable:
    """Decorator registering a factory (a no-argument callable returning a space: the class itself, or a function)
    under ``name``; names are unique. ``register_space(name, factory)`` registers directly. Returns the factory."""

    def decorate(factory: Callable[[], SearchSpace]) -> Callable[[], SearchSpace]:
        if name in _SPACES:
            raise ValueError(f"a search space named {name!r} is already registered")
        _SPACES[name] = factory
        return factory

    return decorate if factory is None else decorate(factory)


def register_space_source(source: SpaceSource) -> SpaceSource:
    """Add a :class:`SpaceSource`, asked (in registration order) for names the registry does not hold."""
    _SOURCES.append(source)
    return source


def available_spaces() -> list[str]:
    """Names of all registered search spaces, sorted (the sources' files are not listed here)."""
    return sorted(_SPACES)


def get_space(name: str | os.PathLike) -> SearchSpace:
    """A new instance of the search space ``name``: a registered name, else whatever a space source answers (a
    family YAML path or file name); ``ValueError`` naming the closest names when nothing does."""
    factory = _SPACES.get(name) if isinstance(name, str) else None
    if factory is not None:
        return factory()
    for source in _SOURCES:
        space = source.find(name)
        if space is not None:
            return space
    offered = [n for source in _SOURCES for n in source.names()]
    close = difflib.get_close_matches(str(name), [*_SPACES, *offered], n=3)
    hint = f" Did you mean {', '.join(map(repr, close))}?" if close else ""
    others = "".join(
        f"; {source.hint}" + (f" ({', '.join(sorted(source.names()))})" if source.names() else "")
        for source in _SOURCES
    )
    raise ValueError(
        f"unknown search space {str(name)!r}.{hint} Available spaces: {', '.join(sorted(_SPACES))}{others}"
    )


@contextlib.contextmanager
def temporary_spaces() -> Iterator[None]:
    """Undo, on exit, every space registered inside the block (for tests and notebooks), so a toy space never leaks
    into another test."""
    saved = dict(_SPACES)
    try:
        yield
    finally:
        _SPACES.clear()
        _SPACES.update(saved)
