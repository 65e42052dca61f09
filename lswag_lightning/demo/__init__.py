"""The main job of ``make demo`` (:mod:`lswag_lightning.cli.demo`), section by section.

Modules: :mod:`.sweep` (the sweep's ground truth: candidates spread over model size, the seed-agreement check, the
per-space summary) and :mod:`.nb201_truth` (the published-truth section: shipped NAS-Bench-201 cells scored on an
embedded probe against their published accuracies). Imports bench, analysis, collect, job and the spaces; never the
CLI.
"""
