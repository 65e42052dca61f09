"""The registries of the scoring engine: proxies, the passes that compute what they need, and their option groups.

One source of truth for each: a **pass** registers once (``register_pass``) with the needs it produces and their
descriptions, whether they take weight gradients, and how it runs; a **proxy** registers once (``@register_proxy``)
with its orientation, the needs it reduces and its description. Either may declare a small frozen dataclass of its
own options (``options=``), whose fields become ``score_network`` keywords. The engine plans its passes by iterating
the registered passes; analysis code reads ``higher_is_better`` to orient values before ranking.

A leaf, as timm's registry: this module imports none of its entries. The package (``lswag_lightning/proxies/
__init__.py``) imports the pass modules, then the proxy modules, once, so any import under ``lswag_lightning.proxies``
fills the registries before an accessor can run. A module adding a proxy with its own pass registers the pass first
(its needs must exist when the proxy registers), then the proxy.
"""

from __future__ import annotations

import contextlib
import dataclasses
import difflib
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

#: Needs no pass produces: what the probe batch itself must carry.
INPUT_NEEDS = {"labels": "the targets of the probe batch (a loss is computed)"}


@dataclass(frozen=True)
class PassSpec:
    """One registered pass over the working model.

    - ``name``: as in ``ProxyReport.passes`` and in the status of a failure (``"<name> pass failed: ..."``).
    - ``produces``: need -> what it holds; each need has exactly one producing pass.
    - ``run(probe, work, products)``: computes the wanted ``products`` (a frozenset of needs) with the
      ``ProbeRunner`` helpers on the working model ``work``; returns the result of its one product, or a
      ``PassOutput`` (per-need results, errors and seconds) for several.
    - ``weight_gradients``: the produced needs that differentiate with respect to Conv/Linear weights (a model
      without such weights is refused for the proxies needing them).
    - ``loss``: the produced needs computed from the loss of the probe's targets (when the targets do not fit the
      loss, these needs are not computed and their proxies say why; the pass's other needs still are).
    - ``claims(context, remaining) -> frozenset``: the needs it delivers this session among those no earlier pass
      claimed; default ``remaining & produces``. A pass may claim a need another pass produces when it computes the
      same number on the way (the gradient statistics pass serves ``batch_grads`` when the two are equal).
    - ``validate(context) -> {need: reason}``: checks before any pass; raises ``ValueError`` for invalid arguments,
      returns the wanted needs that cannot be computed for this input (each becomes the status of its proxies).
    - ``explain(exc, options) -> str | None``: a fix for a failure of this pass, appended to its status.
    - ``options``: a frozen dataclass of the options only this pass reads (see ``register_pass``).
    """

    name: str
    produces: Mapping[str, str]
    run: Callable[..., Any]
    weight_gradients: frozenset[str] = frozenset()
    loss: frozenset[str] = frozenset()
    claims: Callable[..., frozenset[str]] | None = None
    validate: Callable[..., Mapping[str, str]] | None = None
    explain: Callable[..., str | None] | None = None
    options: type | None = None


@dataclass(frozen=True)
class ProxySpec:
    """Metadata of one registered proxy.

    ``compute(data, options) -> ProxyOutput`` reduces the engine's shared pass results to the proxy's value.
    ``higher_is_better`` says how to orient the value before ranking. ``extra_values`` lists the names of the
    sub-values reported next to the main one (e.g. ``lswag.lambda``). ``options``: the frozen dataclass of the
    options only this proxy reads, or None.
    """

    name: str
    compute: Callable
    higher_is_better: bool
    needs: frozenset[str]
    description: str
    extra_values: tuple[str, ...] = field(default=())
    options: type | None = None

    @property
    def needs_labels(self) -> bool:
        return "labels" in self.needs


_REGISTRY: dict[str, ProxySpec] = {}
_PASSES: dict[str, PassSpec] = {}
_OPTION_GROUPS: dict[type, str] = {}  # option dataclass -> its owner ("proxy swap_reg", "pass vkdnw")
_SESSION_OPTIONS: set[str] = set()  # the session-wide option names (``ScoringOptions``' fields), reserved


# ------------------------------------------------------------------------------------------------- option groups
def reserve_option_names(names: Iterable[str]) -> None:
    """Reserve the session-wide option names (``options.py`` calls this once for ``ScoringOptions``' fields)."""
    _SESSION_OPTIONS.update(names)


def _register_options(options: type | None, owner: str) -> None:
    """Check and record an option group: a frozen dataclass whose fields all have defaults, named uniquely."""
    if options is None:
        return
    params = getattr(options, "__dataclass_params__", None)
    if params is None or not params.frozen:
        raise ValueError(f"{owner}: options must be a frozen dataclass, got {options!r}")
    if options in _OPTION_GROUPS:
        raise ValueError(f"{owner}: options {options.__name__} are already registered by {_OPTION_GROUPS[options]}")
    names = [f.name for f in dataclasses.fields(options)]
    missing = [f.name for f in dataclasses.fields(options) if not _has_default(f)]
    if missing:
        raise ValueError(f"{owner}: options {options.__name__} need a default for {missing}")
    taken = _SESSION_OPTIONS | {name for group in _OPTION_GROUPS for name in option_names(group)}
    clash = sorted(set(names) & taken)
    if clash:
        raise ValueError(f"{owner}: option name(s) {clash} are already scoring options; choose other names")
    _OPTION_GROUPS[options] = owner


def _has_default(f: dataclasses.Field) -> bool:
    return f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING


def option_names(group: type) -> list[str]:
    """The field names of an option dataclass, in declaration order."""
    return [f.name for f in dataclasses.fields(group)]


def option_groups() -> dict[type, str]:
    """Every registered option dataclass -> its owner (e.g. ``"proxy swap_reg"``), in registration order."""
    return dict(_OPTION_GROUPS)


# ------------------------------------------------------------------------------------------------- passes
def register_pass(
    name: str,
    *,
    produces: Mapping[str, str],
    weight_gradients: bool | Iterable[str] = False,
    loss: bool | Iterable[str] = False,
    claims: Callable[..., frozenset[str]] | None = None,
    validate: Callable[..., Mapping[str, str]] | None = None,
    explain: Callable[..., str | None] | None = None,
    options: type | None = None,
) -> Callable:
    """Decorator registering ``run(probe, work, products)`` as the pass ``name`` (see ``PassSpec``).

    ``produces`` maps each need the pass delivers to its description; ``weight_gradients`` is True (every produced
    need), False, or the produced needs that take weight gradients; ``loss`` likewise, the needs computed from the
    loss of the probe's targets. The engine plans passes in registration order.
    Registering a pass name or a produced need twice is an error.
    """
    if name in _PASSES:
        raise ValueError(f"a pass named {name!r} is already registered")
    if not produces:
        raise ValueError(f"pass {name!r} must produce at least one need")
    taken = {need: spec.name for spec in _PASSES.values() for need in spec.produces}
    for need, description in produces.items():
        if need in INPUT_NEEDS or need in taken:
            owner = taken.get(need, "the probe batch")
            raise ValueError(f"pass {name!r}: the need {need!r} is already produced by {owner!r}")
        if not isinstance(description, str) or not description.strip():
            raise ValueError(f"pass {name!r}: describe the need {need!r} (what it holds, what it costs)")
    gradient_needs = _subset_of(produces, weight_gradients, name, "weight_gradients")
    loss_needs = _subset_of(produces, loss, name, "loss")

    def decorate(run: Callable) -> Callable:
        _register_options(options, f"pass {name!r}")
        _PASSES[name] = PassSpec(
            name, dict(produces), run, gradient_needs, loss_needs, claims, validate, explain, options
        )
        return run

    return decorate


def _subset_of(produces: Mapping[str, str], chosen: bool | Iterable[str], name: str, what: str) -> frozenset[str]:
    """``True``: every produced need; ``False``: none; else the named needs, which must be produced."""
    if isinstance(chosen, bool):
        return frozenset(produces) if chosen else frozenset()
    needs = frozenset(chosen)
    if not needs <= set(produces):
        raise ValueError(f"pass {name!r}: {what} {sorted(needs - set(produces))} are not produced")
    return needs


def registered_passes() -> list[PassSpec]:
    """Every registered pass, in registration order (the order the engine runs them)."""
    return list(_PASSES.values())


def available_needs() -> dict[str, str]:
    """Every need a proxy may declare -> its description: ``labels`` and the products of the registered passes."""
    needs = dict(INPUT_NEEDS)
    for spec in _PASSES.values():
        needs.update(spec.produces)
    return needs


def producer_of(need: str) -> PassSpec | None:
    """The pass that produces ``need`` (None for ``labels`` or an unknown need)."""
    return next((spec for spec in _PASSES.values() if need in spec.produces), None)


def loss_needs() -> frozenset[str]:
    """The needs computed from the loss of the probe's targets (not computed when the targets do not fit it)."""
    return frozenset(need for spec in _PASSES.values() for need in spec.loss)


def weight_gradient_needs() -> frozenset[str]:
    """The needs that take weight gradients (their proxies need a Conv/Linear weight to score)."""
    return frozenset(need for spec in _PASSES.values() for need in spec.weight_gradients)


# ------------------------------------------------------------------------------------------------- proxies
def register_proxy(
    name: str,
    *,
    higher_is_better: bool,
    needs: tuple[str, ...] | frozenset[str],
    description: str,
    extra_values: tuple[str, ...] = (),
    options: type | None = None,
) -> Callable:
    """Decorator registering ``compute(data, options)`` under ``name``. Registering a name twice is an error; every
    need must be ``labels`` or produced by a registered pass (register a module's own pass before its proxies)."""
    known = available_needs()
    unknown = set(needs) - set(known)
    if unknown:
        raise ValueError(f"proxy {name!r} declares unknown needs {sorted(unknown)}; known: {sorted(known)}")
    bad_extras = [extra for extra in extra_values if not extra.startswith(f"{name}.")]
    if bad_extras:
        raise ValueError(f"proxy {name!r}: sub-values {bad_extras} must be named '{name}.<part>'")

    def decorate(compute: Callable) -> Callable:
        if name in _REGISTRY:
            raise ValueError(f"a proxy named {name!r} is already registered")
        _register_options(options, f"proxy {name!r}")
        _REGISTRY[name] = ProxySpec(
            name, compute, higher_is_better, frozenset(needs), description, tuple(extra_values), options
        )
        return compute

    return decorate


def available_proxies() -> list[str]:
    """Names of all registered proxies, sorted."""
    return sorted(_REGISTRY)


def get_proxy(name: str) -> ProxySpec:
    """The spec of proxy ``name``; ``ValueError`` naming the closest registered names when unknown."""
    try:
        return _REGISTRY[name]
    except KeyError:
        close = difflib.get_close_matches(name, _REGISTRY, n=3)
        hint = f" Did you mean {', '.join(map(repr, close))}?" if close else ""
        raise ValueError(f"unknown proxy {name!r}.{hint} Available proxies: {', '.join(sorted(_REGISTRY))}") from None


def higher_is_better(name: str) -> bool | None:
    """Orientation of a proxy or sub-value name (``lswag.psi`` -> that of ``lswag``); None when unregistered."""
    base = name.split(".", 1)[0]
    spec = _REGISTRY.get(base)
    return None if spec is None else spec.higher_is_better


# ------------------------------------------------------------------------------------------------- tests
@contextlib.contextmanager
def temporary_registrations() -> Iterator[None]:
    """Undo, on exit, every proxy, pass and option group registered inside the block (for tests and notebooks).

    ``with temporary_registrations(): import_or_define_my_proxy(); score_network(...)`` leaves the registries as
    they were before the block, so a toy proxy never leaks into another test.
    """
    saved = (dict(_REGISTRY), dict(_PASSES), dict(_OPTION_GROUPS))
    try:
        yield
    finally:
        for registry, before in zip((_REGISTRY, _PASSES, _OPTION_GROUPS), saved):
            registry.clear()
            registry.update(before)
