"""The main job of ``make demo`` (:mod:`lswag_lightning.cli.demo`), section by section.

Modules: :mod:`.sweep` (the sweep's ground truth: candidates spread over model size, the seed-agreement check, the
per-space summary), :mod:`.nb201_truth` (the published-truth section: shipped NAS-Bench-201 cells scored on an
embedded probe against their published accuracies) and :mod:`.family_tutorial` (the family tutorial of
``python -m lswag_lightning.cli.family_tutorial``, which runs the commands as subprocesses). Imports bench,
analysis, collect, job, search and the spaces; never the CLI.
"""
