"""The search space of an ``lswag-train`` job from its ``space`` config node, built-in or a family file.

``cfg.space`` is one of three things, and each gives a :class:`~lswag_lightning.spaces.base.SearchSpace`:

- a built-in space's config (``conf/space/nb201.yaml``: ``name`` + ``build_options``): ``get_space(name)``;
- ``{file: PATH}``: a family YAML file anywhere (``lswag-train space=PATH`` is rewritten to ``~space
  +space.file=PATH`` by the console script, see :func:`family_file_overrides`): ``load_space(PATH)``;
- a family file composed by Hydra itself (a top-level ``_target_``: ``--config-dir DIR space=NAME`` with the file at
  ``DIR/space/NAME.yaml``, or the shipped ``space=examples/timm_vit``): the composed node, so ``space.fixed.x=...``
  overrides apply; its file is found again (Hydra's chosen option in the config search path) only for what the
  node cannot say, the folder ``python_path`` is relative to and the default name (the file's stem).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

SPACE_GROUP = "space"
FILE_KEY = "file"
SUFFIXES = (".yaml", ".yml")


@dataclass(frozen=True)
class JobSpace:
    """``space`` (the object), ``name`` (recorded in ``result.json`` and tables), ``file`` (the family file, an
    absolute path, None for a built-in space) and ``ref``: what ``get_space`` re-creates the space from (a
    checkpoint's hyper-parameters): the file when there is one, else the name."""

    space: Any
    name: str
    file: str | None = None

    @property
    def ref(self) -> str:
        return self.file or self.name


def space_from_job_config(node: Any) -> JobSpace:
    """The job's space from ``cfg.space`` (module docstring); ``ValueError`` (one line, naming the key) when the
    node names no space, the file is not found, or the family is invalid."""
    from lswag_lightning.spaces import get_space, load_space, space_from_config

    if node is None:
        raise ValueError("no space config; choose a space with space=<name> (conf/space/) or space=<family file>")
    if node.get(FILE_KEY) is not None:
        space = load_space(str(node.get(FILE_KEY))).check()
        return JobSpace(space, space.name, str(space.family.source))
    if "_target_" in node:
        path = composed_space_file()
        data = OmegaConf.to_container(node, resolve=True) if OmegaConf.is_config(node) else dict(node)
        source = str(path) if path else "space (the composed config)"
        space = space_from_config(
            data, source, base_dir=path.parent if path else None, default_name=path.stem if path else "family"
        ).check()
        return JobSpace(space, space.name, str(path) if path else None)
    if node.get("name") is None:
        raise ValueError("no name; choose a space with space=<name> (conf/space/) or space=<family file>")
    name = str(node.name)
    return JobSpace(get_space(name), name)


def composed_space_file() -> Path | None:
    """The file Hydra composed ``cfg.space`` from (its chosen ``space`` option, looked up in the job's config search
    path: a ``--config-dir``, then the package), None outside a Hydra job or when it is not a plain file."""
    from hydra.core.hydra_config import HydraConfig

    if not HydraConfig.initialized():
        return None
    runtime = HydraConfig.get().runtime
    choice = runtime.choices.get(SPACE_GROUP)
    if not choice:
        return None
    folders = [Path(s.path) for s in runtime.config_sources if s.schema == "file"]
    package_conf = Path(__file__).resolve().parents[1] / "conf"
    for folder in [*folders, package_conf]:
        for suffix in SUFFIXES:
            found = folder / SPACE_GROUP / f"{choice}{suffix}"
            if found.is_file():
                return found.resolve()
    return None


def family_file_overrides(
    args: Sequence[str], config_dirs: Sequence[str | os.PathLike] = (), cwd: str | os.PathLike | None = None
) -> list[str]:
    """``args`` (command-line overrides) with ``space=<family file>`` replaced by ``~space`` and
    ``+space.file=<absolute path>``, Hydra's spelling of "no option of the space group, this file instead".

    Hydra's ``space`` group holds named options only (``conf/space/<name>.yaml`` in the package or a
    ``--config-dir``), so a path would be refused. The value is taken as a family file when it ends in ``.yaml`` /
    ``.yml`` (found or not: a missing file is then the job's one-line error, not Hydra's), or when it is no option
    of the group but ``load_space`` finds it (a name in ``$LSWAG_SPACE_PATH``). Sweeps over several values
    (``space=a,b``) and every other argument are left as they are.
    """
    from lswag_lightning.spaces import find_space_file

    base = Path(cwd) if cwd is not None else Path.cwd()
    option_dirs = [Path(d) for d in config_dirs] + [Path(__file__).resolve().parents[1] / "conf"]
    out: list[str] = []
    for arg in args:
        key, sep, value = arg.partition("=")
        if key != SPACE_GROUP or not sep or not value or "," in value:
            out.append(arg)
            continue
        is_option = any((d / SPACE_GROUP / f"{value}{s}").is_file() for d in option_dirs for s in SUFFIXES)
        found = find_space_file(value) if not is_option else None
        if Path(value).suffix in SUFFIXES or found is not None:
            path = found or Path(value).expanduser()
            path = path if path.is_absolute() else base / path
            out += [f"~{SPACE_GROUP}", f"+{SPACE_GROUP}.{FILE_KEY}={_quoted(str(path))}"]
        else:
            out.append(arg)
    return out


def family_files(args: Sequence[str]) -> list[str]:
    """The family files that :func:`family_file_overrides` put in ``args`` (``+space.file=...``), unquoted."""
    prefix = f"+{SPACE_GROUP}.{FILE_KEY}="
    return [a[len(prefix) :].strip("'\"") for a in args if a.startswith(prefix)]


def check_family_file(path: str | os.PathLike) -> None:
    """Load the family file and draw one candidate, so that every mistake the file can hold (a missing file, an
    unknown callable or argument, an empty or mistyped choice, a family where nothing builds) raises its one-line
    ``ValueError`` here, before any job starts."""
    from lswag_lightning.spaces import load_space

    load_space(path).check()


def _quoted(value: str) -> str:
    """``value`` as a quoted Hydra override value (a path may hold characters Hydra's grammar reads otherwise)."""
    if "'" not in value:
        return f"'{value}'"
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
