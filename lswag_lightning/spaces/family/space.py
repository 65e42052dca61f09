"""A search space defined by a YAML file: a callable, fixed arguments and choices (see
:mod:`~lswag_lightning.spaces.family.parse` for the file, :mod:`~lswag_lightning.spaces.family.keys` for the keys).

- ``sample(rng)`` draws every choice uniformly (each stage of a per-stage argument on its own) and redraws until the
  combination is *admissible*: it builds (:mod:`~lswag_lightning.spaces.family.validity`, on the meta device, the
  verdict cached per key) and meets the file's ``constraints``. Before the first draw the family is probed with up to
  50 seeded draws (every combination when there are 50 or fewer), stopping at the first admissible one: when none of
  them builds (fewer than 1 in 50), the family is refused naming the argument its errors name most often and the
  most common error; when none that builds meets the constraints, naming the constraint and the range seen.
- ``mutate(spec, rng)`` changes exactly one choice (one stage of a per-stage argument): a choice is picked uniformly
  among those with more than one value, then a different value; the first admissible one is returned.
- Validity, parameter counts and FLOPs of ``sample`` / ``mutate`` are taken at the file's ``build_options``
  (``num_classes`` 10, ``in_chans`` 3, ``img_size`` 32 unless the file says otherwise).
"""

from __future__ import annotations

import itertools
import logging
import math
from typing import Any

import numpy as np
from torch import nn

from lswag_lightning.spaces.base import SearchSpace, as_generator
from lswag_lightning.spaces.family.annotations import importable
from lswag_lightning.spaces.family.keys import ConfigArch, decode_arch, encode_arch
from lswag_lightning.spaces.family.parse import DATA_ARGUMENTS, Family, FamilyConfigError
from lswag_lightning.spaces.family.validity import Verdict, measure, most_common, most_involved, one_line
from lswag_lightning.spaces.family.values import freeze, has_node, same_value

log = logging.getLogger(__name__)

#: draws of the probe that refuses a family where (almost) nothing builds: fewer than 1 in PROBE_DRAWS
PROBE_DRAWS = 50
PROBE_SEED = 0
#: redraws ``sample`` allows before it gives up on finding an admissible combination
MAX_DRAWS = 2000


class ConfigSpace(SearchSpace):
    """The search space of a :class:`~lswag_lightning.spaces.family.parse.Family`; specs are
    :class:`~lswag_lightning.spaces.family.keys.ConfigArch`.

    ``build(spec, num_classes, in_chans, img_size, **options)``: ``None`` sizes take the file's ``build_options``;
    a size reaches the callable when it takes that argument and ``fixed`` does not set it; ``options`` are further
    keyword arguments of the callable (they override ``fixed``; a choice cannot be overridden).
    """

    def __init__(self, family: Family) -> None:
        super().__init__()
        self.family = family
        self.name = family.name
        self._verdicts: dict[Any, Verdict] = {}
        self._flops: dict[ConfigArch, int] = {}
        self._probed = False
        self._warned: set[str] = set()

    @property
    def build_options(self) -> dict[str, int]:
        """The file's ``num_classes`` / ``in_chans`` / ``img_size`` (the defaults of ``build`` and of the checks)."""
        return dict(self.family.build_options)

    @property
    def constraints(self) -> dict[str, float]:
        return dict(self.family.constraints)

    def __repr__(self) -> str:
        return f"ConfigSpace(name={self.name!r}, target={self.family.target!r}, source={self.family.source!r})"

    # -- keys --------------------------------------------------------------------------------------
    def encode(self, spec: Any) -> str:
        return encode_arch(self.family.choices, self.coerce(spec))

    def decode(self, value: Any) -> ConfigArch:
        return decode_arch(self.family.choices, value, f"{self.name} arch")

    # -- sampling ----------------------------------------------------------------------------------
    def _draw(self, gen: np.random.Generator) -> ConfigArch:
        values = []
        for choice in self.family.choices:
            picks = tuple(slot[int(gen.integers(len(slot)))] for slot in choice.slots)
            values.append((choice.name, picks if choice.per_stage else picks[0]))
        return ConfigArch(tuple(values))

    def sample(self, rng: np.random.Generator | int | None) -> ConfigArch:
        """A uniformly drawn admissible architecture, reproducible for a seed / generator state."""
        gen = as_generator(rng)
        self._probe()
        for _ in range(MAX_DRAWS):
            arch = self._draw(gen)
            if self.admissible(arch):
                return arch
        raise ValueError(
            f"{self.family.source}: no admissible architecture in {MAX_DRAWS} draws; widen the choices or relax "
            "the constraints"
        )

    def mutate(self, spec: Any, rng: np.random.Generator | int | None) -> ConfigArch:
        """An admissible architecture differing from ``spec`` in exactly one choice (one stage of a per-stage one)."""
        arch = self.coerce(spec)
        gen = as_generator(rng)
        slots = [
            (choice, i) for choice in self.family.choices for i, options in enumerate(choice.slots) if len(options) > 1
        ]
        if not slots:
            raise ValueError(f"{self.name}: every choice has a single value, so there is nothing to mutate")
        current = dict(arch.values)
        for k in gen.permutation(len(slots)):
            choice, i = slots[int(k)]
            now = current[choice.name][i] if choice.per_stage else current[choice.name]
            others = [v for v in choice.slots[i] if not same_value(v, now)]
            for j in gen.permutation(len(others)):
                new = others[int(j)]
                if choice.per_stage:
                    new = tuple(new if s == i else v for s, v in enumerate(current[choice.name]))
                child = arch.replace(choice.name, new)
                if self.admissible(child):
                    return child
        raise ValueError(
            f"{self.name}: no admissible architecture differs from {self.encode(arch)} in one choice; relax the "
            "constraints or add values"
        )

    # -- validity ----------------------------------------------------------------------------------
    def verdict(self, spec: Any, **build_args: Any) -> Verdict:
        """Whether ``spec`` builds and gives logits (at the file's build options unless given), cached per key."""
        arch = self.coerce(spec)
        sizes = {k: build_args.pop(k, None) for k in DATA_ARGUMENTS}
        kwargs = self._arguments(arch, sizes, build_args)
        try:
            cache_key = freeze(sorted(kwargs.items(), key=lambda kv: kv[0]))
            hash(cache_key)
        except TypeError:  # an unhashable build option: measure without caching
            cache_key = None
        if cache_key is not None and cache_key in self._verdicts:
            return self._verdicts[cache_key]
        in_chans, img_size, num_classes = self._effective_sizes(kwargs, sizes)
        verdict = measure(lambda: self._call(kwargs), in_chans, img_size, num_classes)
        if cache_key is not None:
            self._verdicts[cache_key] = verdict
        return verdict

    def is_valid(self, spec: Any) -> bool:
        """Whether ``spec`` builds and gives logits at the file's build options."""
        return self.verdict(spec).ok

    def _constraint_problem(self, arch: ConfigArch, verdict: Verdict) -> str:
        """'' when ``arch`` meets the constraints, else the first one it breaks with its value."""
        bounds = self.family.constraints
        params = verdict.params
        if "max_params" in bounds and params > bounds["max_params"]:
            return f"params {params:,} > max_params {bounds['max_params']:,.0f}"
        if "min_params" in bounds and params < bounds["min_params"]:
            return f"params {params:,} < min_params {bounds['min_params']:,.0f}"
        if "max_flops" in bounds and self.flops(arch) > bounds["max_flops"]:
            return f"FLOPs {self.flops(arch):,} > max_flops {bounds['max_flops']:,.0f}"
        return ""

    def admissible(self, spec: Any) -> bool:
        """Whether ``spec`` builds and meets the file's constraints (what ``sample`` and ``mutate`` return)."""
        arch = self.coerce(spec)
        verdict = self.verdict(arch)
        return verdict.ok and not self._constraint_problem(arch, verdict)

    def flops(self, spec: Any) -> int:
        """FLOPs of one image's forward pass at the file's build options (``candidates.count_flops``), cached."""
        from lswag_lightning.candidates import count_flops

        arch = self.coerce(spec)
        if arch not in self._flops:
            kwargs = self._arguments(arch, dict.fromkeys(DATA_ARGUMENTS), {})
            in_chans, img_size, _ = self._effective_sizes(kwargs, dict.fromkeys(DATA_ARGUMENTS))
            options = {"num_classes": self.family.build_options["num_classes"], "in_chans": in_chans}
            self._flops[arch] = count_flops(self, arch, {**options, "img_size": img_size})
        return self._flops[arch]

    def check(self) -> ConfigSpace:
        """This space, once the probe (:meth:`_probe`, otherwise run by the first ``sample``) found an admissible
        combination: a family where nothing builds or nothing meets the constraints raises its one-line
        :class:`FamilyConfigError` here. Commands call it when they load a file, so the mistake is a usage error."""
        self._probe()
        return self

    def _probe(self) -> None:
        """Refuse a family where none of :data:`PROBE_DRAWS` seeded draws builds, or none that builds is within
        the constraints (see the module docstring); stops at the first admissible draw, runs once per space object."""
        if self._probed:
            return
        slots = [slot for c in self.family.choices for slot in c.slots]
        if math.prod(len(s) for s in slots) <= PROBE_DRAWS:
            archs = (self._arch_of(combo) for combo in itertools.product(*slots))
        else:
            gen = np.random.default_rng(PROBE_SEED)
            archs = (self._draw(gen) for _ in range(PROBE_DRAWS))
        verdicts, problems, params = [], [], []
        for arch in archs:
            verdict = self.verdict(arch)
            verdicts.append(verdict)
            if verdict.ok:
                problem = self._constraint_problem(arch, verdict)
                if not problem:
                    self._probed = True
                    return
                problems.append(problem)
                params.append(verdict.params)
        if not problems:
            raise FamilyConfigError(self._nothing_builds(verdicts))
        raise FamilyConfigError(
            f"{self.family.source}: none of the {len(problems)} combinations that build (of {len(verdicts)} drawn) "
            f"meets the constraints (params seen {min(params):,}..{max(params):,}; e.g. {problems[0]}); relax "
            "constraints: or change the choices"
        )

    def _arch_of(self, combo: tuple) -> ConfigArch:
        values, at = [], 0
        for choice in self.family.choices:
            n = len(choice.slots)
            values.append((choice.name, tuple(combo[at : at + n]) if choice.per_stage else combo[at]))
            at += n
        return ConfigArch(tuple(values))

    def _nothing_builds(self, verdicts: list[Verdict]) -> str:
        reasons = [v.reason for v in verdicts]
        names = [c.name for c in self.family.choices] + list(self.family.fixed) + list(DATA_ARGUMENTS)
        arguments, count = most_involved(reasons, names)
        if len(arguments) == 1:
            involved = (
                f"the argument most often involved is {arguments[0]!r} (named in {count} of {len(reasons)} errors)"
            )
        elif arguments:
            both = " and ".join(map(repr, arguments))
            involved = f"the arguments most often involved are {both} (each named in {count} of {len(reasons)} errors)"
        else:
            involved = "the errors name no argument"
        return (
            f"{self.family.source}: no combination builds ({len(reasons)} tried); {involved}; most common error: "
            f"{most_common(reasons)}; change the choices or fixed arguments so that some combinations build"
        )

    # -- models ------------------------------------------------------------------------------------
    def _arguments(self, arch: ConfigArch, sizes: dict[str, Any], options: dict[str, Any]) -> dict[str, Any]:
        """The callable's keyword arguments: fixed < build options < sizes (where taken and not fixed) < choices."""
        family = self.family
        kwargs = dict(family.fixed)
        for key, value in options.items():
            if any(c.name == key for c in family.choices):
                raise ValueError(f"{self.name}: {key!r} is a choice of this family; set it in the architecture key")
            if not family.takes(key):
                raise ValueError(f"{self.name}: build option {key!r} is not an argument of {family.target}; drop it")
            kwargs[key] = value
        for key in DATA_ARGUMENTS:
            value = family.build_options[key] if sizes.get(key) is None else sizes[key]
            if key in kwargs:
                if sizes.get(key) is not None and kwargs[key] != sizes[key] and key not in self._warned:
                    self._warned.add(key)
                    log.warning("%s: fixed %s=%r wins over the requested %r", family.source, key, kwargs[key], value)
            elif family.takes(key):
                kwargs[key] = value
        kwargs.update(arch.to_dict())
        return kwargs

    def _effective_sizes(self, kwargs: dict[str, Any], sizes: dict[str, Any]) -> tuple[int, int, int | None]:
        """``(in_chans, img_size, num_classes or None)`` of the model the arguments build (what the checks feed)."""

        def size(key: str) -> Any:
            value = kwargs.get(key)
            if isinstance(value, int) and not isinstance(value, bool):
                return value
            return self.family.build_options[key] if sizes.get(key) is None else sizes[key]

        num_classes = kwargs.get("num_classes")
        return size("in_chans"), size("img_size"), num_classes if isinstance(num_classes, int) else None

    def _call(self, kwargs: dict[str, Any]) -> Any:
        """The callable on ``kwargs``, Hydra nodes instantiated afresh (with ``python_path`` importable)."""
        with importable(self.family.python_path):
            if any(has_node(v) for v in kwargs.values()):
                import hydra.utils

                kwargs = {
                    k: hydra.utils.instantiate(v, _convert_="all") if has_node(v) else v for k, v in kwargs.items()
                }
            return self.family.factory(**kwargs)

    def build(
        self,
        spec: Any,
        num_classes: int | None = None,
        in_chans: int | None = None,
        img_size: int | None = None,
        **space_options: Any,
    ) -> nn.Module:
        """The model for ``spec`` (see the class docstring); ``ValueError`` with the callable's error in one line."""
        arch = self.coerce(spec)
        sizes = {"num_classes": num_classes, "in_chans": in_chans, "img_size": img_size}
        kwargs = self._arguments(arch, sizes, space_options)
        try:
            model = self._call(kwargs)
        except Exception as err:  # the user's callable may raise anything; say which key and why
            raise ValueError(f"{self.name}: {self.encode(arch)} does not build: {one_line(err)}") from err
        if not isinstance(model, nn.Module):
            raise TypeError(f"{self.name}: {self.family.target} returned a {type(model).__name__}, not an nn.Module")
        return model

    def param_count(self, spec: Any, num_classes: int | None = None, **build_options: Any) -> int:
        """Trainable parameters of ``build(spec, num_classes, **build_options)``, counted on the meta device."""
        verdict = self.verdict(spec, num_classes=num_classes, **build_options)
        if verdict.params is None:
            raise ValueError(f"{self.name}: {self.encode(spec)} does not build: {verdict.reason}")
        return verdict.params
