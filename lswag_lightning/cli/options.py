"""The console scripts' parsers, generated from their settings classes (:mod:`lswag_lightning.settings`).

:func:`build_parser` adds one argument per field of a :class:`~lswag_lightning.settings.CommandSettings` class:
flag ``--`` + field name (``-`` for ``_``) unless the field names its flags, ``dest`` the field name, the value read
by the field's kind (a bad value is a usage error naming the flag), the help from the field, grouped by the field's
``group``. Shorthand flags (``--img-size P``) set one key of their mapping field (``build_options``); a renamed flag
stays as a hidden alias that prints a one-line warning naming the new flag. Defaults are not put in the namespace:
an option not given is absent from it, so the settings class' default applies (and a command with config files can
tell "given" from "not given"). :func:`parse_settings` parses and builds the settings (bad values and bad
combinations exit with status 2 through ``parser.error``).
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from collections.abc import Sequence
from typing import Any, TypeVar

from lswag_lightning.settings.fields import CommandSettings, Option, Shorthand, optioned_fields
from lswag_lightning.settings.values import Flag, Kind

T = TypeVar("T", bound=CommandSettings)


class _KindAction(argparse.Action):
    """Stores ``kind.from_text(values)`` under ``dest`` (into ``dest[key]`` for a shorthand; merged for repeatable
    kinds); warns once per use when the flag is a renamed one."""

    def __init__(
        self,
        option_strings: list[str],
        dest: str,
        *,
        kind: Kind,
        key: str | None = None,
        renamed_to: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(option_strings, dest, **kwargs)
        self.kind, self.key, self.renamed_to = kind, key, renamed_to

    def __call__(
        self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: Any, option_string: str = None
    ) -> None:
        if self.renamed_to is not None:
            print(
                f"{parser.prog}: warning: {option_string} is deprecated; use {self.renamed_to} (see CHANGELOG.md)",
                file=sys.stderr,
            )
        try:
            value = self.kind.from_text(values)
        except ValueError as err:
            raise argparse.ArgumentError(self, str(err)) from None
        old = getattr(namespace, self.dest, None)
        if self.key is not None:
            value = {**(old or {}), self.key: value}
        elif self.kind.repeat:
            value = self.kind.merge(old, value)
        setattr(namespace, self.dest, value)


def _flag_action(kind: Flag, renamed_to: str | None) -> type[argparse.Action]:
    """A store-true / store-false action that warns when the flag is a renamed one."""

    class FlagAction(argparse.Action):
        def __init__(self, option_strings: list[str], dest: str, **kwargs: Any) -> None:
            super().__init__(option_strings, dest, nargs=0, **kwargs)

        def __call__(self, parser, namespace, values, option_string=None) -> None:
            if renamed_to is not None:
                print(f"{parser.prog}: warning: {option_string} is deprecated; use {renamed_to}", file=sys.stderr)
            setattr(namespace, self.dest, kind.store)

    return FlagAction


def _kind_arguments(kind: Kind, opt_nargs: str | None, metavar: str | None) -> dict[str, Any]:
    """argparse keyword arguments of a value option of ``kind``."""
    kwargs: dict[str, Any] = {"action": _KindAction, "kind": kind}
    nargs = opt_nargs or kind.nargs
    if nargs is not None:
        kwargs["nargs"] = nargs
    if kind.choices is not None:
        kwargs["choices"] = kind.choices
    if metavar or (kind.metavar and kind.choices is None):
        kwargs["metavar"] = metavar or kind.metavar
    return kwargs


def _add_field(where: Any, f: dataclasses.Field, opt: Option) -> None:
    """The argument(s) of one settings field: its flags or positional, its shorthands, its renamed flags."""
    help_text = argparse.SUPPRESS if opt.hidden else opt.help.replace("%", "%%")
    if isinstance(opt.kind, Flag):
        kwargs: dict[str, Any] = {"action": _flag_action(opt.kind, None)}
    else:
        kwargs = _kind_arguments(opt.kind, opt.nargs, opt.metavar)
    if opt.positional:
        where.add_argument(f.name, help=help_text, **kwargs)
        return
    required = f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
    flags = opt.flag_names(f.name)
    where.add_argument(*flags, dest=f.name, required=required, help=help_text, **kwargs)
    for short in opt.shorthands:
        _add_shorthand(where, f.name, flags[-1], short)
    for old in opt.deprecated_flags:
        if isinstance(opt.kind, Flag):
            where.add_argument(old, dest=f.name, help=argparse.SUPPRESS, action=_flag_action(opt.kind, flags[-1]))
        else:
            where.add_argument(old, dest=f.name, help=argparse.SUPPRESS, **{**kwargs, "renamed_to": flags[-1]})


def _add_shorthand(where: Any, dest: str, flag: str, short: Shorthand) -> None:
    renamed_to = f"{flag} {short.key}=VALUE" if short.deprecated else None
    kwargs = _kind_arguments(short.kind, None, short.metavar)
    where.add_argument(
        short.flag,
        dest=dest,
        key=short.key,
        renamed_to=renamed_to,
        help=argparse.SUPPRESS if short.deprecated else short.help.replace("%", "%%"),
        **kwargs,
    )


def add_options(parser: argparse.ArgumentParser, cls: type[CommandSettings]) -> None:
    """The arguments of every field of ``cls`` (see the module docstring), in field order, grouped by ``group``."""
    groups: dict[str, Any] = {}
    for f, opt in optioned_fields(cls):
        if opt.group is None:
            where = parser
        elif opt.group in groups:
            where = groups[opt.group]
        else:
            where = groups[opt.group] = parser.add_argument_group(opt.group)
        _add_field(where, f, opt)


def build_parser(cls: type[CommandSettings], *, prog: str, description: str, **kwargs: Any) -> argparse.ArgumentParser:
    """The parser of the command whose settings are ``cls`` (options absent from the namespace when not given)."""
    parser = argparse.ArgumentParser(prog=prog, description=description, argument_default=argparse.SUPPRESS, **kwargs)
    add_options(parser, cls)
    return parser


def given_options(parser: argparse.ArgumentParser, argv: Sequence[str] | None) -> dict[str, Any]:
    """The options given on the command line ``argv`` (None: ``sys.argv[1:]``), by field name."""
    return vars(parser.parse_args(argv))


def parse_settings(cls: type[T], parser: argparse.ArgumentParser, argv: Sequence[str] | None) -> T:
    """The settings of the command line ``argv``; a bad value or combination exits through ``parser.error``."""
    given = given_options(parser, argv)
    try:
        return cls.create(**given)
    except ValueError as err:
        parser.error(str(err))
