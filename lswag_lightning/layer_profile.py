"""Compatibility name of :mod:`lswag_lightning.layers` (tests and recipes/layers/README.md use it)."""

from lswag_lightning.layers import *  # noqa: F401,F403
