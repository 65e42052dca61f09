"""The scorer every search of the evaluation shares: live scoring under the ``search`` probe protocol (cached, so an
architecture is scored once across seeds, strategies and fitnesses), behind stored score tables (``--score-table``,
each proxy from the first table holding it)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any


def make_live_scorer(args, proxies, writer: str = "main", cache=None):
    """The cached live scorer of the evaluation (the same key in every process: same probe, options, seeds)."""
    import torch

    from lswag_lightning.probe import describe_probe, probe_batch
    from lswag_lightning.search import ProxyScorer, ScoreCache
    from lswag_lightning.spaces import get_space

    space = get_space("nb201")
    images, labels = probe_batch(
        "search",
        data="cifar10_npz",
        batch_size=args.batch_size,
        img_size=32,
        seed=args.probe_seed,
        data_dir=args.data_dir,
    )
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    return ProxyScorer(
        space,
        proxies,
        images,
        labels,
        build_options={"num_classes": 10, "img_size": 32},
        device=device,
        init_seed=args.init_seed,
        score_options=dict(args.score_options),
        cache=cache if cache is not None else ScoreCache(args.score_cache, writer=writer),
        probe=describe_probe("cifar10_npz", args.batch_size, 32, 3, args.probe_seed, args.data_dir),
    )


def make_scorer(args, proxies):
    """(scorer, live scorer). With ``--score-table`` (one or more tables): each proxy is read from the first table
    with a column for it, and the others are scored live (cached), merged proxy by proxy; archs a table lacks are
    scored live (:func:`lswag_lightning.search.stored_scores.tables_then_live`)."""
    from lswag_lightning.search import ScoreCache
    from lswag_lightning.search.stored_scores import tables_then_live

    if not args.score_table:
        live = make_live_scorer(args, proxies, writer=args.cache_writer)
        return live, live
    paths = args.score_table if isinstance(args.score_table, list) else [args.score_table]
    stale = _stale_in_tables(args.score_options)
    cache = ScoreCache(args.score_cache, writer=args.cache_writer)
    live = make_live_scorer(args, proxies, cache=cache)
    names = ", ".join(map(str, paths))

    def live_for(extra):
        if len(extra) == len(proxies):
            print(f"{names} hold none of {', '.join(proxies)} under these settings: all scored live", flush=True)
            return live
        print(f"{names} lack {', '.join(extra)}: those are scored live (cache {args.score_cache})", flush=True)
        return make_live_scorer(args, extra, cache=cache)

    scorer = tables_then_live(
        live.space,
        paths,
        proxies,
        fallback=live,
        live_for=live_for,
        skip=stale,
    )
    return scorer, live


#: the score options that change L-SWAG's values only
LSWAG_OPTIONS = ("layer_interval", "psi_layers")


def _stale_in_tables(score_options: Mapping[str, Any]) -> Callable[[str], bool]:
    """Which proxies' stored values do not hold under ``score_options``: a table holds one scoring setting, so
    L-SWAG's values under another layer interval or Ψ set are not in it, and none are under any other option."""
    if set(score_options) - set(LSWAG_OPTIONS):
        return lambda proxy: True
    lswag_changed = any(score_options.get(key) for key in LSWAG_OPTIONS)
    return lambda proxy: lswag_changed and proxy.split(".")[0] == "lswag"


def computed_live(scorer) -> set[str]:
    """Proxies ``scorer`` computes live for every arch (a score table's fallback only serves archs it lacks)."""
    from lswag_lightning.search import MergedScorer, ProxyScorer

    if isinstance(scorer, MergedScorer):
        return {p for p, i in scorer.owner.items() if p in computed_live(scorer.scorers[i])}
    return set(scorer.proxies) if isinstance(scorer, ProxyScorer) else set()


def live_parts(scorer) -> list:
    """The live (computing) scorers inside ``scorer``: itself, a table's fallback, or a merged scorer's parts."""
    from lswag_lightning.search import MergedScorer, ProxyScorer, TableScorer

    if isinstance(scorer, MergedScorer):
        return [p for part in scorer.scorers for p in live_parts(part)]
    if isinstance(scorer, TableScorer):
        return live_parts(scorer.fallback) if scorer.fallback is not None else []
    return [scorer] if isinstance(scorer, ProxyScorer) else []
