"""The callable of a config space: importing its dotted path, reading its signature, and checking a value against a
parameter's annotation.

"Wrong type" means a value the annotation rules out among the simple types a YAML file can hold: ``int`` (not
``bool``), ``float`` (an int is fine), ``bool``, ``str``, ``None``, ``Literal[...]``, ``Optional`` / ``Union`` of these,
and tuples / lists / sequences of them. Any other annotation (a class, ``Callable``, ``Type[...]``, a missing or
unresolvable annotation) is not checked; a Hydra node (``_target_``) is never checked.
"""

from __future__ import annotations

import collections.abc
import contextlib
import importlib
import inspect
import numbers
import sys
import types
import typing
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from lswag_lightning.spaces.family.values import FrozenMapping

_SEQUENCE_ORIGINS = (tuple, list, collections.abc.Sequence)


def locate(path: str) -> Any:
    """The object at the dotted ``path`` (``package.module.Name`` or ``package.module.Outer.Inner``).

    ``ImportError`` saying which part is missing; an error raised while importing the module itself (a syntax error,
    a failing import inside it) propagates with its own message."""
    if not isinstance(path, str) or not path or any(not part.isidentifier() for part in path.split(".")):
        raise ImportError(f"{path!r} is not a dotted path such as 'package.module.ClassName'")
    parts = path.split(".")
    for cut in range(len(parts), 0, -1):
        module_name = ".".join(parts[:cut])
        try:
            obj = importlib.import_module(module_name)
        except ModuleNotFoundError as err:
            # only "this prefix does not exist" moves on to a shorter prefix; a module that fails to import inside
            # (its own missing dependency) is reported as such
            if err.name is not None and module_name.startswith(err.name):
                continue
            raise
        for depth, attr in enumerate(parts[cut:], start=cut):
            try:
                obj = getattr(obj, attr)
            except AttributeError:
                owner = ".".join(parts[:depth])
                raise ImportError(f"{owner!r} has no attribute {attr!r}") from None
        return obj
    raise ImportError(f"no module named {parts[0]!r}")


def parameters_of(factory: Callable) -> tuple[dict[str, inspect.Parameter] | None, bool]:
    """``(parameters by name, takes **kwargs)``; ``(None, True)`` when the signature cannot be read (then any
    argument is accepted and none is checked)."""
    try:
        signature = inspect.signature(factory)
    except (TypeError, ValueError):
        return None, True
    params = {
        name: p
        for name, p in signature.parameters.items()
        if p.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    }
    var_keyword = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in signature.parameters.values())
    return params, var_keyword


def annotations_of(factory: Callable) -> dict[str, Any]:
    """Resolved annotations of ``factory``'s parameters ({} when they cannot be resolved)."""
    target = factory.__init__ if inspect.isclass(factory) else factory
    try:
        return typing.get_type_hints(target)
    except Exception:  # unresolvable forward references (any error type): the values are then not checked
        return {}


def fits(value: Any, annotation: Any) -> bool | None:
    """Whether a frozen ``value`` fits ``annotation``: True, False, or None when the annotation is not checked."""
    if isinstance(value, FrozenMapping) and value.get("_target_") is not None:
        return None
    if annotation is Any or annotation is inspect.Parameter.empty:
        return None
    if annotation is type(None) or annotation is None:
        return value is None
    simple = _fits_simple(value, annotation)
    if simple is not None:
        return simple
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is typing.Union or origin is types.UnionType:
        verdicts = [fits(value, member) for member in args]
        if any(v is True for v in verdicts):
            return True
        return False if all(v is False for v in verdicts) else None
    if origin is typing.Literal:
        return any(type(value) is type(option) and value == option for option in args)
    if origin in _SEQUENCE_ORIGINS:
        return _fits_sequence(value, origin, args)
    return None


def _fits_simple(value: Any, annotation: Any) -> bool | None:
    if annotation is bool:
        return isinstance(value, bool)
    if annotation is int:
        return isinstance(value, numbers.Integral) and not isinstance(value, bool)
    if annotation is float:
        return isinstance(value, numbers.Real) and not isinstance(value, bool)
    if annotation is str:
        return isinstance(value, str)
    if annotation in _SEQUENCE_ORIGINS:
        return isinstance(value, tuple)
    return None


def _fits_sequence(value: Any, origin: Any, args: tuple) -> bool | None:
    if not isinstance(value, tuple):
        return False
    if not args:
        return True
    if origin is tuple and not (len(args) == 2 and args[1] is Ellipsis):
        if len(args) != len(value):
            return False
        verdicts = [fits(v, a) for v, a in zip(value, args)]
    else:
        verdicts = [fits(v, args[0]) for v in value]
    if any(v is False for v in verdicts):
        return False
    return True if all(v is True for v in verdicts) else None


def element_annotation(annotation: Any, index: int, length: int) -> tuple[bool, Any]:
    """For a per-stage argument: ``(is a sequence type, annotation of stage index)`` of a sequence ``annotation``;
    ``(True, Any)`` when the annotation is not checked; ``(False, None)`` when it is no sequence type."""
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if annotation in (Any, inspect.Parameter.empty) or annotation in _SEQUENCE_ORIGINS:
        return True, Any
    if origin is typing.Union or origin is types.UnionType:
        for member in args:
            is_seq, element = element_annotation(member, index, length)
            if is_seq:
                return True, element
        return (False, None) if all(_fits_simple(0, m) is not None or m is type(None) for m in args) else (True, Any)
    if origin in _SEQUENCE_ORIGINS:
        if not args:
            return True, Any
        if origin is tuple and not (len(args) == 2 and args[1] is Ellipsis):
            return (True, args[index]) if len(args) == length else (False, None)
        return True, args[0]
    return (False, None) if annotation in (int, float, bool, str) else (True, Any)


@contextlib.contextmanager
def importable(folders: Sequence[Path]) -> Iterator[None]:
    """``folders`` (a config space's ``python_path``) at the front of ``sys.path`` for the duration of the block,
    removed afterwards, so the user's module imports without a lasting change to the interpreter's path."""
    added = [str(f) for f in folders if str(f) not in sys.path]
    sys.path[:0] = added
    try:
        yield
    finally:
        for folder in added:
            if folder in sys.path:
                sys.path.remove(folder)
