"""Search spaces: sample / mutate / encode / decode / build for AutoFormer ViTs, NAS-Bench-101, NAS-Bench-201, DARTS
(NAS-Bench-301 genotypes go through ``darts``) and TransNAS-Bench-101.

``get_space(name)`` returns a :class:`SearchSpace`; ``available_spaces()`` lists the names
(``autoformer_ti``, ``autoformer_s``, ``autoformer_mini``, ``nb101``, ``nb201``, ``darts``, ``tnb101_micro``,
``tnb101_macro``). The registry (:mod:`~lswag_lightning.spaces.base`) is a leaf; the space modules are imported
here, once, and their ``@register_space`` decorators fill it.
"""

from __future__ import annotations

# The built-in spaces (their import registers them); the registry never imports them itself.
from lswag_lightning.spaces import autoformer, darts, nb101, nb201, tnb101  # noqa: F401
from lswag_lightning.spaces.base import SearchSpace, available_spaces, get_space, register_space, temporary_spaces

__all__ = ["SearchSpace", "available_spaces", "get_space", "register_space", "temporary_spaces"]
