"""``lswag-search``'s settings: :class:`SearchCommand`, one field per option of the command line and key of the
search configs (``conf/search/*.yaml``), each checked by its kind wherever it comes from. The defaults here are the
built-in ones, below a config file and the command line (:func:`lswag_lightning.search.config.resolve_options`)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lswag_lightning.search.settings import RANK_POOLS, STRATEGIES
from lswag_lightning.settings import CommandSettings, option
from lswag_lightning.settings import vocabulary as v
from lswag_lightning.settings.scoring import check_score_options
from lswag_lightning.settings.values import Count, FilePath, Flag, Integer, Names, Text, TextList

SEARCH = "search"
FITNESS = "fitness"
SCORING = "probe, networks and scoring"
RUN = "run"
HAND_OFF = "hand-off to training"
FUSIONS = ("rank_mean", "log_rank")


@dataclass(kw_only=True)
class SearchCommand(CommandSettings):
    """The options of one search (``config=True`` fields are the keys a search config may set)."""

    space: str | None = option(
        Text(),
        None,
        positional=True,
        nargs="?",
        config=True,
        help="search space: nb201, darts, autoformer_ti, autoformer_s, autoformer_mini, or a family file "
        "(optional with --config)",
    )
    config: str | None = option(
        Text(),
        None,
        metavar="NAME",
        help="load defaults from conf/search/NAME.yaml (autoformer_s, autoformer_mini, nb201, darts) or a .yaml path",
    )
    out: Path = v.OUT.field(help="ranked.csv, report.md, checkpoint")
    # search
    budget: int = v.BUDGET.field(100, group=SEARCH, config=True, help="default 100")
    seed: int = option(Integer(0), 0, group=SEARCH, config=True, help="search seed (default 0)")
    strategy: str = option(Text(STRATEGIES), "evolution", group=SEARCH, config=True, help="default evolution")
    population: int = option(Integer(2), 50, group=SEARCH, config=True, help="evolution population P (default 50)")
    tournament: int = option(
        Integer(1), 10, group=SEARCH, config=True, help="evolution tournament sample size S (default 10)"
    )
    rank_pool: str = option(
        Text(RANK_POOLS),
        "history",
        group=SEARCH,
        config=True,
        help="pool of LIBRA's rank fusion during the search: all architectures scored so far (history, default) or "
        "the current population",
    )
    max_params: float | None = option(
        Count(), None, group=SEARCH, config=True, help="parameter budget (a count, e.g. 23e6 or 23M)"
    )
    max_flops: float | None = option(
        Count(), None, group=SEARCH, config=True, help="FLOPs budget of one sample's forward pass, e.g. 5G"
    )
    max_failed_proposals: int = option(
        Integer(1), 2000, group=SEARCH, config=True, help="rejected proposals in a row before giving up (default 2000)"
    )
    # fitness
    fitness: str = option(
        Text(),
        "lswag",
        group=FITNESS,
        config=True,
        help="libra, fused, learned (a saved --ranking), default (the shipped k = 0 ranking), or a proxy name: "
        "lswag (default), zico, ...",
    )
    ranking: Path | None = option(
        FilePath(),
        None,
        group=FITNESS,
        config=True,
        metavar="FILE",
        help="fitness learned: the ranking.json of lswag-libra TABLE --accuracy COL --method auto|learned|... --out "
        "DIR (a model fitted on trained architectures, applied to the search's pool)",
    )
    libra_proxies: list[str] | None = option(
        Names(), None, group=FITNESS, config=True, metavar="NAME", help="LIBRA's proxies (fitness libra): a,b,c"
    )
    libra_result: Path | None = option(
        FilePath(),
        None,
        group=FITNESS,
        config=True,
        metavar="FILE",
        help="libra.json written by lswag-libra (fitness libra: its selection; fitness fused: its greedy set, from "
        "lswag-libra --greedy)",
    )
    fused_proxies: list[str] | None = option(
        Names(),
        None,
        group=FITNESS,
        config=True,
        metavar="NAME",
        help="fitness fused: two or more proxies fused by rank, a,b,c",
    )
    fusion: str | None = option(
        Text(FUSIONS),
        None,
        group=FITNESS,
        config=True,
        help="rank fusion (default rank_mean for libra, log_rank for fused)",
    )
    proxies: list[str] = v.PROXIES.field(
        [], group=FITNESS, config=True, help="extra proxies to compute and report in ranked.csv"
    )
    # probe, networks and scoring
    probe_data: str = v.PROBE_DATA.field(
        "cifar10_npz",
        group=SCORING,
        config=True,
        help="default cifar10_npz",
        deprecated_flags=("--data",),
        deprecated_keys=("data",),
    )
    batch_size: int = v.BATCH_SIZE.field(64, group=SCORING, config=True, help="default 64")
    probe_seed: int = v.PROBE_SEED.field(
        0,
        group=SCORING,
        config=True,
        help="default 0",
        deprecated_flags=("--data-seed",),
        deprecated_keys=("data_seed",),
    )
    data_dir: Path | None = v.DATA_DIR.field(None, group=SCORING, help="the folder holding images/")
    build_options: dict[str, Any] = v.BUILD_OPTIONS.field(
        {}, group=SCORING, config=True, help="on top of conf/space/<space>.yaml and the config's build_options"
    )
    init_seed: int = v.INIT_SEED.field(0, group=SCORING, config=True, help="default 0")
    score_options: dict[str, Any] = v.SCORE_OPTIONS.field(
        {}, group=SCORING, config=True, help="on top of the config's score_options"
    )
    device: str | None = v.DEVICE.field(None, group=SCORING)
    threads: int | None = v.THREADS.field(None, group=SCORING)
    score_cache: Path | None = option(
        FilePath(), None, group=SCORING, metavar="PATH", help="score cache (.jsonl file or folder) shared across runs"
    )
    score_table: list[Path] | None = v.SCORE_TABLE.field(
        None,
        group=SCORING,
        help="proxies no table holds, and archs a table lacks, are scored live unless --table-only",
    )
    table_only: bool = option(Flag(), False, group=SCORING, help="with --score-table: never score live")
    # run
    checkpoint_every: int = option(
        Integer(1), 1, group=RUN, config=True, help="evaluations between checkpoints (default 1)"
    )
    restart: bool = option(Flag(), False, group=RUN, help="ignore an existing checkpoint in --out")
    no_progress: bool = v.NO_PROGRESS.field(False, group=RUN)
    verbose: bool = option(Flag(), False, group=RUN, flags=("-v", "--verbose"), help="log INFO messages")
    # hand-off to training
    train_top: int = option(
        Integer(0),
        0,
        group=HAND_OFF,
        metavar="K",
        help="train the K best with lswag-train (one job each; result.json in DIR/train/rank<k>)",
    )
    train_data: str = option(
        Text(), "digits", group=HAND_OFF, config=True, help="lswag-train data config for the hand-off (default digits)"
    )
    train_overrides: list[str] = option(
        TextList(),
        [],
        group=HAND_OFF,
        config=True,
        flags=("--train-override",),
        metavar="KEY=VALUE",
        help="extra lswag-train override (repeatable; after the config's), e.g. trainer.max_epochs=30",
    )
    train_dry_run: bool = option(Flag(), False, group=HAND_OFF, help="print the training commands, do not run them")
    train_timeout: float | None = option(
        Count(), None, group=HAND_OFF, metavar="SECONDS", help="seconds per training job (default: none)"
    )

    def check(self) -> None:
        self.libra_proxies = self.libra_proxies or None
        self.fused_proxies = self.fused_proxies or None
        if self.space is None:
            raise ValueError("give the search space (lswag-search SPACE ...) or a --config that names one")
        if self.table_only and not self.score_table:
            raise ValueError("--table-only needs --score-table")
        self.score_options = check_score_options(self.score_options)
        interval = self.score_options.get("layer_interval")
        if isinstance(interval, list):
            self.score_options["layer_interval"] = tuple(interval)
