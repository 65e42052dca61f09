"""Search spaces: sample / mutate / encode / decode / build for AutoFormer ViTs, NAS-Bench-101, NAS-Bench-201, DARTS
(NAS-Bench-301 genotypes go through ``darts``) and TransNAS-Bench-101, and a user's own family from a YAML file.

``get_space(name)`` returns a :class:`SearchSpace`; ``available_spaces()`` lists the registered names
(``autoformer_ti``, ``autoformer_s``, ``autoformer_mini``, ``nb101``, ``nb201``, ``darts``, ``tnb101_micro``,
``tnb101_macro``). ``get_space`` also takes a config-space YAML file (a path, or a name on the search path: the
shipped examples ``timm_vit`` and ``timm_resnet``, and folders in ``$LSWAG_SPACE_PATH``), as does
``load_space(path_or_name)``. The registry (:mod:`~lswag_lightning.spaces.base`) is a leaf; the space modules are
imported here, once, and their ``@register_space`` decorators (and the config files' space source) fill it.
"""

from __future__ import annotations

# The built-in spaces (their import registers them); the registry never imports them itself.
from lswag_lightning.spaces import autoformer, darts, nb101, nb201, tnb101  # noqa: F401
from lswag_lightning.spaces.base import SearchSpace, available_spaces, get_space, register_space, temporary_spaces
from lswag_lightning.spaces.family.files import (
    family_build_options,
    find_space_file,
    load_space,
    space_file_names,
    space_from_config,
)
from lswag_lightning.spaces.family.keys import ConfigArch
from lswag_lightning.spaces.family.parse import FamilyConfigError
from lswag_lightning.spaces.family.space import ConfigSpace

__all__ = [
    "ConfigArch",
    "ConfigSpace",
    "FamilyConfigError",
    "SearchSpace",
    "available_spaces",
    "family_build_options",
    "find_space_file",
    "get_space",
    "load_space",
    "register_space",
    "space_file_names",
    "space_from_config",
    "temporary_spaces",
]
