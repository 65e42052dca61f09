"""Settings dataclasses whose fields describe their own options: one field = one concept, with its kind (how it is
read and checked), its help, its command-line flag and, for a command with config files, its config key.

A command's settings class derives from :class:`CommandSettings`; each field is made by :func:`option` (or by a
shared :class:`Concept` of :mod:`lswag_lightning.settings.vocabulary`). The same metadata then

- generates the command's ``argparse`` parser (:func:`lswag_lightning.cli.options.build_parser`): the flag is
  ``--`` + the field name with ``-`` for ``_``, the argparse ``dest`` is the field name;
- validates a config file's mapping (:meth:`CommandSettings.from_config`): the same field names as keys, the same
  kinds, unknown keys refused with the list of allowed ones, and renamed keys accepted with a warning;
- validates every value when an instance is made (``__post_init__``), whatever made it.

A renamed flag or config key stays accepted for one release (``deprecated_flags`` / ``deprecated_keys``), with a
one-line warning that names the new one.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any, TypeVar

from lswag_lightning.settings.values import Kind

log = logging.getLogger(__name__)

T = TypeVar("T", bound="CommandSettings")


@dataclass(frozen=True)
class Shorthand:
    """A flag that sets one key of a mapping field: ``--img-size P`` is ``--build-option img_size=P``. Its value is
    read by ``kind`` (so ``--img-size x`` is a usage error naming ``--img-size``)."""

    flag: str
    key: str
    kind: Kind
    help: str
    metavar: str | None = None
    deprecated: bool = False


@dataclass(frozen=True)
class Option:
    """The metadata of one settings field (see the module docstring). ``positional`` with ``nargs`` makes it a
    positional argument; ``flags`` replaces the derived flag (e.g. ``("-v", "--verbose")``); ``group`` is the
    help section; ``config`` makes it a config-file key; ``hidden`` keeps it out of ``--help``."""

    kind: Kind
    help: str
    flags: tuple[str, ...] = ()
    positional: bool = False
    nargs: str | None = None
    group: str | None = None
    metavar: str | None = None
    config: bool = False
    hidden: bool = False
    deprecated_flags: tuple[str, ...] = ()
    deprecated_keys: tuple[str, ...] = ()
    shorthands: tuple[Shorthand, ...] = ()
    concept: Concept | None = field(default=None, compare=False, repr=False)

    def flag_names(self, name: str) -> tuple[str, ...]:
        """The command-line flags of the field ``name`` (none for a positional)."""
        if self.positional:
            return ()
        return self.flags or ("--" + name.replace("_", "-"),)


def option(kind: Kind, default: Any = dataclasses.MISSING, *, help: str, **meta: Any) -> Any:
    """A settings field of ``kind`` with ``default`` (none: required) and the :class:`Option` metadata ``meta``;
    list and dict defaults are copied per instance."""
    metadata = {"option": Option(kind=kind, help=help, **meta)}
    if isinstance(default, (list, dict)):
        return field(default_factory=lambda: type(default)(default), metadata=metadata)
    return field(default=default, metadata=metadata)


@dataclass(frozen=True)
class Concept:
    """One shared concept: its one field name, kind and help (and flag, metavar, shorthands where they are not
    derived). Every command that has the concept makes its field with :meth:`field`, so the flag, the config key,
    the Python attribute and the parser are the same in every command."""

    name: str
    kind: Kind
    help: str
    metavar: str | None = None
    flags: tuple[str, ...] = ()
    shorthands: tuple[Shorthand, ...] = ()

    def field(self, default: Any = dataclasses.MISSING, *, help: str | None = None, **meta: Any) -> Any:
        """This concept's settings field; ``help`` adds the command's own detail after the shared text."""
        text = self.help if help is None else f"{self.help}; {help}"
        meta.setdefault("metavar", self.metavar)
        meta.setdefault("flags", self.flags)
        meta.setdefault("shorthands", self.shorthands)
        return option(self.kind, default, help=text, concept=self, **meta)


def option_of(f: dataclasses.Field) -> Option | None:
    """The :class:`Option` of a dataclass field (None for a plain field)."""
    return f.metadata.get("option")


def optioned_fields(cls: type) -> list[tuple[dataclasses.Field, Option]]:
    """The fields of ``cls`` that carry an :class:`Option`, in declaration order."""
    return [(f, opt) for f in fields(cls) if (opt := option_of(f)) is not None]


@dataclass(kw_only=True)
class CommandSettings:
    """The base of the commands' settings classes: every field's value is checked by its kind on creation (None is
    kept where the field's default is None); :meth:`check` adds the rules between fields."""

    def __post_init__(self) -> None:
        for f, opt in optioned_fields(type(self)):
            value = getattr(self, f.name)
            if value is None and f.default is None:
                continue
            try:
                setattr(self, f.name, opt.kind.check(value))
            except ValueError as err:
                raise ValueError(f"{f.name} {err}") from None
        self.check()

    def check(self) -> None:
        """Rules between fields (``ValueError`` naming the options); none by default."""

    @classmethod
    def config_keys(cls) -> dict[str, str]:
        """The keys a config file of this command may set, with their help."""
        return {f.name: opt.help for f, opt in optioned_fields(cls) if opt.config}

    @classmethod
    def renamed_keys(cls) -> dict[str, str]:
        """Old config key -> its new name (accepted with a warning)."""
        return {old: f.name for f, opt in optioned_fields(cls) for old in opt.deprecated_keys}

    @classmethod
    def from_config(cls, data: Mapping[str, Any], source: str) -> dict[str, Any]:
        """A config file's mapping with renamed keys under their new names (one warning each) and every value
        checked by its field's kind; ``ValueError`` naming ``source`` and the key for an unknown key or a bad
        value. Returns the checked values (a mapping: the command merges it with the command line)."""
        keys, renamed = cls.config_keys(), cls.renamed_keys()
        kinds = {f.name: (opt.kind, f.default) for f, opt in optioned_fields(cls)}
        out: dict[str, Any] = {}
        for key, value in data.items():
            if key in renamed:
                new = renamed[key]
                log.warning("%s: the config key %r is deprecated; use %r (renamed, see CHANGELOG.md)", source, key, new)
                if new in data:
                    raise ValueError(f"{source}: both {key!r} and its new name {new!r} are set; keep {new!r}")
                key = new
            if key not in keys:
                raise ValueError(f"{source}: unknown key {key!r}; allowed keys: {', '.join(keys)}")
            kind, default = kinds[key]
            if value is None and default is None:
                out[key] = None
                continue
            try:
                out[key] = kind.check(value)
            except ValueError as err:
                raise ValueError(f"{source}: {key} {err}") from None
        return out

    @classmethod
    def create(cls: type[T], **values: Any) -> T:
        """An instance from keyword values, with unknown names refused (the names are the field names)."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown setting(s) {unknown}; known: {', '.join(sorted(known))}")
        return cls(**values)
