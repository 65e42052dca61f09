"""Zero-shot architecture search: random search and regularised evolution with a zero-cost or LIBRA fitness.

Library API (no Hydra, no W&B, no Lightning)::

    from lswag_lightning.probe import probe_batch
    from lswag_lightning.search import Search, SearchSettings, ProxyScorer, ScoreCache, make_fitness, write_outputs
    space = get_space("nb201")
    images, labels = probe_batch("search", data="cifar10_npz", batch_size=64, img_size=32)
    scorer = ProxyScorer(space, ["lswag", "naswot", "synflow"], images, labels, cache=ScoreCache("cache/"))
    search = Search(space, scorer, make_fitness("libra", libra_proxies="lswag,naswot,synflow"),
                    SearchSettings("nb201", budget=1000, seed=0), out_dir="runs/search")
    result = search.run()          # resumes from runs/search/checkpoint.json when it exists
    write_outputs(search, result, "runs/search")

Modules: :mod:`.settings` (what defines a search), :mod:`.loop` (the search loop: strategies, constraints,
checkpoints), :mod:`.evaluation` (one scored architecture, a run's result), :mod:`.fitness` (proxy / LIBRA fitness),
:mod:`.scoring` (the scorer interface, live scoring), :mod:`.score_cache` (scores shared across runs and processes),
:mod:`.stored_scores` (stored score tables as scorers), :mod:`.output` (ranked.csv, report.md, fitness.png),
:mod:`.handoff` (training the winners with lswag-train), :mod:`.config` (conf/search/ and the merge of defaults,
config and command line into one search's options). Networks are built and counted by
:mod:`lswag_lightning.candidates`.
"""

from __future__ import annotations

from lswag_lightning.candidates import count_flops
from lswag_lightning.search.evaluation import Evaluation, SearchResult
from lswag_lightning.search.fitness import Fitness, LibraFitness, ProxyFitness, load_libra_result, make_fitness
from lswag_lightning.search.loop import InfeasibleBudgetError, Search
from lswag_lightning.search.output import write_outputs
from lswag_lightning.search.score_cache import ScoreCache
from lswag_lightning.search.scoring import FunctionScorer, ProxyScorer, Scorer, ScoreResult
from lswag_lightning.search.settings import SearchSettings
from lswag_lightning.search.stored_scores import MergedScorer, TableScorer

__all__ = [
    "Evaluation",
    "Fitness",
    "FunctionScorer",
    "InfeasibleBudgetError",
    "LibraFitness",
    "MergedScorer",
    "ProxyFitness",
    "ProxyScorer",
    "ScoreCache",
    "ScoreResult",
    "Scorer",
    "Search",
    "SearchResult",
    "SearchSettings",
    "TableScorer",
    "count_flops",
    "load_libra_result",
    "make_fitness",
    "write_outputs",
]
