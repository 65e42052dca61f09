"""A user's model family from a YAML file (``_target_``, ``fixed``, ``choices``, ``constraints``) as a search space.

Modules, each importing only those before it: :mod:`.values` (how a value is written in a key),
:mod:`.annotations` (importing the callable, reading its signature and annotations), :mod:`.parse` (reading and
checking the file), :mod:`.keys` (the canonical key of a choice of arguments), :mod:`.validity` (which combinations
build, checked on the meta device), :mod:`.space` (:class:`~.space.ConfigSpace`) and :mod:`.files` (``load_space``,
the search path, and the source that lets ``get_space`` take a file).
"""
