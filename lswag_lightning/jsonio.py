"""JSON writing: plain Python values from numpy/pandas/pathlib ones, and one rule for the numbers JSON lacks.

JSON has no NaN or ±inf. :func:`plain` converts a value for :mod:`json` (mappings with ``str`` keys, tuples as
lists, numpy scalars as Python ones, paths as strings) and treats non-finite floats by ``nonfinite``:

- ``"null"`` (the default): ``None``. For reports and records read by people and other tools; the status next
  to a value says why it is missing.
- ``"string"``: ``"nan"``, ``"inf"``, ``"-inf"`` (:func:`encode_float`), read back exactly by :func:`decode_float`.
  For values read back by this package: the scores in the search's score cache and checkpoint (their envelope is
  written with ``"keep"``).
- ``"keep"``: Python's ``NaN`` / ``Infinity`` tokens (not strict JSON). Only for files that have always been
  written so, to keep their bytes: ``lswag-bench``'s ``bench.json`` and ``summary.json`` (whose correlations are
  already ``None`` when not finite), ``lswag-search``'s ``summary.json``, ``checkpoint.json``,
  ``train_jobs.json`` and score-cache lines (their scores already encoded as strings), ``lswag-collect``'s
  ``collect.json``.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

NONFINITE = ("null", "string", "keep")


def encode_float(value: float) -> float | str:
    """A float as JSON: finite values as is, NaN / ±inf as the strings ``"nan"``, ``"inf"``, ``"-inf"``."""
    value = float(value)
    if math.isfinite(value):
        return value
    return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")


def decode_float(value: Any) -> float:
    """Inverse of :func:`encode_float` (None reads as NaN)."""
    if value is None:
        return math.nan
    return float(value)


def encode_values(values: Mapping[str, float]) -> dict[str, float | str]:
    """``{name: encode_float(value)}``."""
    return {str(k): encode_float(v) for k, v in values.items()}


def decode_values(values: Mapping[str, Any]) -> dict[str, float]:
    """``{name: decode_float(value)}``."""
    return {str(k): decode_float(v) for k, v in values.items()}


def plain(value: Any, nonfinite: str = "null", fallback: Callable[[Any], Any] | None = None) -> Any:
    """``value`` as plain JSON-ready Python, recursively; non-finite floats by ``nonfinite`` (module docstring).
    ``fallback`` turns any other object (not str, int, float, bool, None, a mapping or a sequence) into one,
    e.g. ``str`` or ``repr``; without it such objects are left to :mod:`json` (which raises)."""
    if nonfinite not in NONFINITE:
        raise ValueError(f"nonfinite must be one of {', '.join(NONFINITE)}, got {nonfinite!r}")
    return _plain(value, nonfinite, fallback)


def _plain(value: Any, nonfinite: str, fallback: Callable[[Any], Any] | None) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _plain(v, nonfinite, fallback) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v, nonfinite, fallback) for v in value]
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, (float, np.floating)):
        value = float(value)
        if math.isfinite(value) or nonfinite == "keep":
            return value
        return None if nonfinite == "null" else encode_float(value)
    if fallback is not None and not (value is None or isinstance(value, (str, int))):
        return fallback(value)
    return value


def dumps(value: Any, *, nonfinite: str = "null", fallback: Callable[[Any], Any] | None = None, **kwargs: Any) -> str:
    """``json.dumps(plain(value, nonfinite, fallback), **kwargs)``."""
    return json.dumps(plain(value, nonfinite, fallback), **kwargs)


def write_json(
    path: str | os.PathLike,
    value: Any,
    *,
    nonfinite: str = "null",
    fallback: Callable[[Any], Any] | None = None,
    indent: int | None = 2,
    newline: bool = False,
) -> Path:
    """Write ``value`` as JSON (``indent``; a final newline with ``newline``) to ``path``; returns the path."""
    path = Path(path)
    path.write_text(dumps(value, nonfinite=nonfinite, fallback=fallback, indent=indent) + ("\n" if newline else ""))
    return path
