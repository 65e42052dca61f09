"""NAS-Bench-201 search evaluation (``lswag-search-eval``): what the architecture each zero-shot search returns
scores once trained.

For every seed, strategy (regularised evolution, random search) and fitness (L-SWAG, LIBRA, a fused set, any proxy)
it runs :class:`lswag_lightning.search.Search` on NB201 with the same budget of scored architectures, then looks up
the 200-epoch test accuracy of the returned architecture (the top of its ``ranked.csv``) on CIFAR-10, CIFAR-100 and
ImageNet16-120 and reports mean ± std over seeds next to the benchmark optimum (94.37 / 73.51 / 47.31). The test
accuracies are read only after all searches have finished (:mod:`.outcome`); the searches see nothing but proxy
values.

Search setting: one probe batch of 64 CIFAR-10 training images (the ``search`` protocol of
:mod:`lswag_lightning.probe`), 10-class NB201 networks, so one search serves all three datasets. Random search
returns the best of its samples under the same fitness.

Scores are shared (:mod:`.scorers`): every architecture is scored once, with the union of the proxies all fitnesses
need, into a score cache (``--score-cache``) reused across seeds, strategies, fitnesses and later runs;
``--score-table`` reads stored values instead (e.g. ``results/nb201_all_cells_scores.parquet``: all 15,625 cells,
so every search is a lookup). Whole-space pre-scoring is a ``lswag-bench nb201 --probe-protocol search`` run
(sharded like any other, ``--export`` to a table) that the evaluation reads with ``--score-table``.

Fitnesses (:mod:`.selection`): LIBRA's proxies from ``--libra-proxies``, ``--libra-result``, or by default LIBRA's
selection on the 723 NAS-Bench-Suite-Zero validation cells once per dataset with that dataset's *validation*
accuracy (datasets that choose the same trio share one search); the fused fitness's set from ``--fused-proxies``
or ``--fused-result`` (the greedy set of ``lswag-libra --greedy``).

Modules: :mod:`.outcome` (test accuracies, per-run and summary tables), :mod:`.selection`, :mod:`.scorers`,
:mod:`.searches` (the search runs), :mod:`.markdown` (``summary.md``), :mod:`.pipeline` (end to end).
"""

from __future__ import annotations

from lswag_lightning.bench.search_eval.outcome import OPTIMUM, TARGET_GAP, TEST_COLUMNS
from lswag_lightning.bench.search_eval.pipeline import evaluate_searches

__all__ = ["OPTIMUM", "TARGET_GAP", "TEST_COLUMNS", "evaluate_searches"]
