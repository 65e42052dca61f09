"""The result table: one row per architecture, as a pandas DataFrame with documented columns.

Columns
-------
``arch``
    The architecture's identity (an arch string, an encoded genotype, ...). Optional for analysis.
``space``
    The search space name (``nb201``, ``autoformer_ti``, ...). Optional for analysis.
``params``
    The number of trainable parameters (a count, not millions). LIBRA's bias variable.
``<proxy>``
    One column per zero-cost proxy under its registry name (``lswag``, ``zico``, ``naswot``, ...). Sub-values are
    columns too, named ``<proxy>.<sub>`` (``lswag.lambda``, ``lswag.psi``). Raw values as the proxy returns them;
    NaN / ±inf are kept as such (the analysis reports them, it never replaces them).
``<accuracy>``
    One column per trained accuracy, in % (e.g. ``cifar10_test_acc``, ``val_accuracy``).

Orientation: the analysis ranks "higher is better" values. :func:`orient` reads each proxy's direction from the
proxy registry, lets an explicit mapping override it, and records names it had to assume higher-is-better.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

log = logging.getLogger(__name__)

ARCH = "arch"
SPACE = "space"
PARAMS = "params"

#: Column-name patterns that the default proxy list leaves out (identifiers, accuracies, timings).
_NON_PROXY_SUFFIXES = ("index", "idx", "_id", "_row", "seed", "seconds", ".time", "_time")
_NON_PROXY_PREFIXES = ("seconds.", "time.", "status.")
_NON_PROXY_SUBSTRINGS = ("acc",)
#: bookkeeping columns by exact name: ``lswag-collect``'s job number (numeric when Hydra numbers the jobs), epochs
_NON_PROXY_NAMES = frozenset({"job", "epoch", "epochs", "step", "steps"})


def load_table(path: str | os.PathLike) -> pd.DataFrame:
    """Read a result table from CSV (``.csv``/``.tsv``), parquet (``.parquet``/``.pq``) or JSON.

    JSON may be a list of records (``[{"arch": ..., "lswag": ...}, ...]``), a ``{"records": [...]}`` object, or
    JSON lines (``.jsonl``). Raises ``FileNotFoundError`` / ``ValueError`` naming the file on failure.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"result table not found: {path}")
    suffix = path.suffix.lower()
    if suffix in (".csv", ".tsv"):
        return pd.read_csv(path, sep="\t" if suffix == ".tsv" else ",")
    if suffix in (".parquet", ".pq"):
        return pd.read_parquet(path)
    if suffix == ".jsonl":
        return pd.read_json(path, lines=True)
    if suffix == ".json":
        with path.open() as fh:
            data = json.load(fh)
        if isinstance(data, Mapping) and "records" in data:
            data = data["records"]
        if not isinstance(data, list) or not all(isinstance(r, Mapping) for r in data):
            raise ValueError(f"{path}: expected a JSON list of records (objects), got {type(data).__name__}")
        return pd.json_normalize(data, sep=".") if data else pd.DataFrame()
    raise ValueError(f"{path}: unsupported table format {suffix!r}; use .csv, .tsv, .parquet, .json or .jsonl")


def save_table(table: pd.DataFrame, path: str | os.PathLike) -> Path:
    """Write ``table`` (no index) as CSV (``.csv``) or parquet (``.parquet``/``.pq``), creating the folder; the
    writing side of :func:`load_table`. Returns the path."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in (".csv", ".parquet", ".pq"):
        raise ValueError(f"{path}: unsupported table format {suffix!r}; use .csv or .parquet")
    path.parent.mkdir(parents=True, exist_ok=True)
    if suffix == ".csv":
        table.to_csv(path, index=False)
    else:
        table.to_parquet(path, index=False)
    return path


def validate_table(table: pd.DataFrame, columns: Iterable[str], *, numeric: bool = True) -> None:
    """Check that every name in ``columns`` is a column of ``table`` (and numeric when ``numeric``).

    Raises ``ValueError`` naming the missing (or non-numeric) columns and listing the columns present.
    """
    if not isinstance(table, pd.DataFrame):
        raise TypeError(f"expected a pandas DataFrame, got {type(table).__name__}")
    columns = list(dict.fromkeys(columns))
    missing = [c for c in columns if c not in table.columns]
    if missing:
        raise ValueError(
            f"column(s) {', '.join(map(repr, missing))} not in the table; "
            f"columns present: {', '.join(map(str, table.columns))}"
        )
    if numeric:
        bad = [c for c in columns if not pd.api.types.is_numeric_dtype(table[c])]
        if bad:
            raise ValueError(
                f"column(s) {', '.join(map(repr, bad))} are not numeric "
                f"(dtypes: {', '.join(f'{c}={table[c].dtype}' for c in bad)})"
            )


def default_proxy_columns(
    table: pd.DataFrame, accuracy: str | Sequence[str] = (), *, exclude: Iterable[str] = ()
) -> list[str]:
    """The numeric columns taken as proxies when none are named, in table order.

    Leaves out ``arch``, ``space``, the ``accuracy`` column(s), ``exclude``, and columns whose names look like
    accuracies (contain ``acc``), identifiers (end in ``index``/``idx``/``_id``/``seed``), timings
    (``seconds``/``time``) or bookkeeping (``job``, ``epoch(s)``, ``step(s)``: a sweep's job number is numeric, and
    LIBRA once chose it as a proxy). ``params`` stays in: #params is a baseline proxy.
    """
    accuracy = [accuracy] if isinstance(accuracy, str) else list(accuracy)
    skip = {ARCH, SPACE, *accuracy, *exclude}
    out = []
    for col in table.columns:
        name = str(col)
        low = name.lower()
        if col in skip or not pd.api.types.is_numeric_dtype(table[col]) or pd.api.types.is_bool_dtype(table[col]):
            continue
        if (
            low in _NON_PROXY_NAMES
            or low.endswith(_NON_PROXY_SUFFIXES)
            or low.startswith(_NON_PROXY_PREFIXES)
            or any(s in low for s in _NON_PROXY_SUBSTRINGS)
        ):
            continue
        out.append(name)
    return out


def registry_higher_is_better(name: str) -> bool | None:
    """``lswag_lightning.proxies.registry.higher_is_better(name)``; None when unknown or the registry is unavailable."""
    try:
        from lswag_lightning.proxies.registry import higher_is_better
    except ImportError as exc:  # the registry itself is missing
        log.warning("proxy registry unavailable (%s); orientation of %r unknown", exc, name)
        return None
    try:
        return higher_is_better(name)
    except ImportError as exc:  # a built-in proxy module failed to import
        log.warning("proxy registry could not load its proxies (%s); orientation of %r unknown", exc, name)
        return None


@dataclass(frozen=True)
class Orientation:
    """How each proxy is oriented before ranking.

    ``higher_is_better[name]`` is the direction used; ``source[name]`` is ``"override"`` (given by the caller),
    ``"registry"`` (the proxy registry) or ``"assumed"`` (unknown name, taken as higher-is-better).
    """

    higher_is_better: dict[str, bool] = field(default_factory=dict)
    source: dict[str, str] = field(default_factory=dict)

    @property
    def assumed(self) -> list[str]:
        """Names whose direction was assumed (higher-is-better) because nobody knew it."""
        return [n for n, s in self.source.items() if s == "assumed"]

    @property
    def flipped(self) -> list[str]:
        """Names that are lower-is-better, hence negated before ranking."""
        return [n for n, h in self.higher_is_better.items() if not h]

    def sign(self, name: str) -> float:
        """+1.0 for a higher-is-better proxy, -1.0 for a lower-is-better one."""
        return 1.0 if self.higher_is_better[name] else -1.0

    def to_dict(self) -> dict:
        return {"higher_is_better": dict(self.higher_is_better), "source": dict(self.source), "assumed": self.assumed}


def orient(names: Iterable[str], higher_is_better: Mapping[str, bool] | Orientation | None = None) -> Orientation:
    """Resolve the direction of each proxy name: explicit mapping > registry > assumed higher-is-better.

    Sub-value names (``lswag.psi``) take their parent's direction from the registry. Each assumption is logged.
    """
    if isinstance(higher_is_better, Orientation):
        higher_is_better = higher_is_better.higher_is_better
    override = dict(higher_is_better or {})
    hib: dict[str, bool] = {}
    source: dict[str, str] = {}
    for name in dict.fromkeys(names):
        if name in override:
            hib[name], source[name] = bool(override[name]), "override"
            continue
        known = registry_higher_is_better(name)
        if known is None:
            hib[name], source[name] = True, "assumed"
            log.info("orientation of %r unknown to the proxy registry; assuming higher is better", name)
        else:
            hib[name], source[name] = bool(known), "registry"
    return Orientation(hib, source)


def oriented_values(table: pd.DataFrame, name: str, orientation: Orientation) -> np.ndarray:
    """Column ``name`` as float64, negated when lower-is-better (so that higher is always better).

    NaN stays NaN and ±inf keeps its meaning (``-inf`` = worst after orientation).
    """
    return orientation.sign(name) * table[name].to_numpy(dtype=np.float64, na_value=np.nan)


def add_vkdnw_single(table: pd.DataFrame) -> pd.DataFrame:
    """``table`` with a ``vkdnw_single`` column derived from ``vkdnw_layers`` and ``vkdnw`` when both are present
    and it is not (tables scored before that registry entry): the number the engine computes from the same two
    values (:func:`lswag_lightning.proxies.vkdnw.single_score`)."""
    from lswag_lightning.proxies.vkdnw import single_score

    if "vkdnw_single" in table.columns or not {"vkdnw", "vkdnw_layers"} <= set(table.columns):
        return table
    out = table.copy()
    out["vkdnw_single"] = [single_score(n, h) for n, h in zip(out["vkdnw_layers"], out["vkdnw"])]
    return out
