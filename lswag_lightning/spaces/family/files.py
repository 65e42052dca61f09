"""Finding and loading config-space files: :func:`load_space` and the search path behind ``get_space("file")``.

A name is looked up, in order, as a file path (absolute or relative to the working directory), then in each folder
of the search path as ``<folder>/<name>``, ``<folder>/<name>.yaml`` (or ``.yml``) and ``<folder>/space/<name>.yaml``
(so a Hydra ``--config-dir`` works as a folder). The search path is: the folders passed as ``search_path``, then
the folders of the ``LSWAG_SPACE_PATH`` environment variable (separated like ``PATH``), then the shipped examples
(``lswag_lightning/conf/space/examples``, so ``timm_vit`` and, as Hydra names it, ``examples/timm_vit`` both work).
Registered spaces (``nb201``, ...) take precedence in ``get_space``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from lswag_lightning.spaces.base import SpaceSource, available_spaces, register_space_source
from lswag_lightning.spaces.family.parse import FamilyConfigError, parse_family
from lswag_lightning.spaces.family.space import ConfigSpace

SPACE_PATH_ENV = "LSWAG_SPACE_PATH"
SPACE_CONF_DIR = Path(__file__).resolve().parents[2] / "conf" / "space"
EXAMPLES_DIR = SPACE_CONF_DIR / "examples"
SUFFIXES = (".yaml", ".yml")


def search_dirs(search_path: Sequence[str | os.PathLike] | None = None) -> list[Path]:
    """The folders a space name is looked up in: ``search_path``, ``$LSWAG_SPACE_PATH``, the shipped examples."""
    env = [p for p in os.environ.get(SPACE_PATH_ENV, "").split(os.pathsep) if p]
    return [Path(p).expanduser() for p in [*(search_path or ()), *env]] + [EXAMPLES_DIR]


def find_space_file(name: str | os.PathLike, search_path: Sequence[str | os.PathLike] | None = None) -> Path | None:
    """The file a space name or path stands for (see the module docstring), None when there is none."""
    path = Path(name).expanduser()
    if path.is_file():
        return path
    stem = str(name)
    candidates = [stem] if path.suffix in SUFFIXES else [stem, *(stem + s for s in SUFFIXES)]
    hydra_name = stem.startswith(f"{EXAMPLES_DIR.name}/")  # as Hydra's space group names it: examples/<name>
    for folder in search_dirs(search_path) + ([SPACE_CONF_DIR] if hydra_name else []):
        for candidate in candidates:
            for found in (folder / candidate, folder / "space" / candidate):
                if found.is_file():
                    return found
    return None


def space_file_names(search_path: Sequence[str | os.PathLike] | None = None) -> list[str]:
    """Names of the space files on the search path (file stems, first one wins), sorted."""
    names: set[str] = set()
    for folder in search_dirs(search_path):
        for sub in (folder, folder / "space"):
            if sub.is_dir():
                names.update(p.stem for p in sub.iterdir() if p.suffix in SUFFIXES and _is_space_file(p))
    return sorted(names)


def family_build_options(name: str | os.PathLike) -> dict[str, Any] | None:
    """The ``build_options`` of a family file (``num_classes`` / ``in_chans`` / ``img_size``; {} when it sets none),
    None when ``name`` is no family file. Read as YAML only, without importing the family's callable (a mistake in
    the file is reported by :func:`load_space`). The commands take them as the defaults of their build options,
    where a built-in space's come from ``conf/space/<name>.yaml``."""
    path = find_space_file(name)
    if path is None or not _is_space_file(path):
        return None
    try:
        options = read_space_file(path).get("build_options") or {}
    except (FamilyConfigError, AttributeError):
        return {}
    return dict(options) if isinstance(options, Mapping) else {}


def _is_space_file(path: Path) -> bool:
    """Cheap test that a YAML file is a config space (a top-level ``_target_`` line), without importing anything."""
    try:
        return any(line.startswith("_target_:") for line in path.read_text().splitlines())
    except OSError:
        return False


def read_space_file(path: Path) -> Any:
    """The file's content as plain containers, interpolations resolved; one-line errors."""
    from omegaconf import OmegaConf
    from omegaconf.errors import OmegaConfBaseException
    from yaml import YAMLError

    try:
        node = OmegaConf.load(path)
        return OmegaConf.to_container(node, resolve=True)
    except (YAMLError, OmegaConfBaseException) as err:
        raise FamilyConfigError(f"{path}: not a readable YAML config ({' '.join(str(err).split())})") from None


def space_from_config(
    data: Any, source: str = "space config", base_dir: Path | None = None, default_name: str = "family"
) -> ConfigSpace:
    """A :class:`ConfigSpace` from a config node (a dict, or an OmegaConf node as Hydra composes it)."""
    if not isinstance(data, Mapping):
        from omegaconf import OmegaConf

        if OmegaConf.is_config(data):
            data = OmegaConf.to_container(data, resolve=True)
    family = parse_family(data, source, base_dir, default_name)
    if family.name in available_spaces():
        raise FamilyConfigError(
            f"{source}: name {family.name!r} is a built-in space; give the family another name (name: ...)"
        )
    return ConfigSpace(family)


def load_space(path_or_name: str | os.PathLike, search_path: Sequence[str | os.PathLike] | None = None) -> ConfigSpace:
    """The config space of a YAML file, given as a path or as a name on the search path (module docstring).

    Raises :class:`~lswag_lightning.spaces.family.parse.FamilyConfigError` (a ``ValueError``) in one line naming the
    file, the key and the fix."""
    path = find_space_file(path_or_name, search_path)
    if path is None:
        folders = ", ".join(str(f) for f in search_dirs(search_path))
        raise FamilyConfigError(
            f"no space file {str(path_or_name)!r}: not a file, and not found in the search path ({folders}); give a "
            f"path, or put the file in a folder listed in ${SPACE_PATH_ENV}"
        )
    path = path.resolve()
    return space_from_config(read_space_file(path), str(path), base_dir=path.parent, default_name=path.stem)


def _find_for_registry(name: Any) -> ConfigSpace | None:
    """``get_space``'s fallback: a space file's space, checked (:meth:`ConfigSpace.check`: a family where nothing
    builds is refused here, where every command turns a ``ValueError`` into a usage error), None when ``name`` is
    neither a file nor on the search path (a name ending in .yaml/.yml that is not found is an error here)."""
    if find_space_file(name) is None and Path(str(name)).suffix not in SUFFIXES:
        return None
    return load_space(name).check()


register_space_source(
    SpaceSource(
        find=_find_for_registry,
        names=space_file_names,
        hint=f"or a space YAML file: a path, or a name in ${SPACE_PATH_ENV} or the shipped examples",
    )
)
