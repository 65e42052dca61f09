"""Settings: one dataclass per command whose fields are its options, and the shared vocabulary of those options.

- :mod:`.values`: the value kinds (how a value is read from the command line and checked from any source) and the
  one ``KEY=VALUE`` reader, :func:`parse_value`.
- :mod:`.fields`: :func:`option` / :class:`Concept` fields and :class:`CommandSettings`, the base of the commands'
  settings classes (validation on creation, config files checked with the same rules).
- :mod:`.vocabulary`: the concepts shared by several commands, one word each (see its docstring for the choices).

The command-line parsers are generated from these classes in :mod:`lswag_lightning.cli.options`. This package
imports only :mod:`lswag_lightning.probe` (for the probe's dataset names); nothing here imports a command.
"""

from lswag_lightning.settings.fields import CommandSettings, Concept, Option, Shorthand, option, optioned_fields
from lswag_lightning.settings.values import parse_count, parse_key_value, parse_value

__all__ = [
    "CommandSettings",
    "Concept",
    "Option",
    "Shorthand",
    "option",
    "optioned_fields",
    "parse_count",
    "parse_key_value",
    "parse_value",
]
