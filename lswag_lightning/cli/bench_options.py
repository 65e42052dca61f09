"""``lswag-bench``'s settings (:class:`BenchCommand`: one field per option, the parser generated from it by
:func:`build_parser`) and the rules between its options (:meth:`BenchCommand.check`); :mod:`lswag_lightning.cli.bench`
runs it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lswag_lightning.bench import (
    AUTOFORMER_DEFAULT_IMG_SIZE,
    AUTOFORMER_PATCH_SIZE,
    BENCHMARKS,
    NB201_SETS,
    Shard,
)
from lswag_lightning.cli.options import build_parser as generate_parser
from lswag_lightning.settings import CommandSettings, option
from lswag_lightning.settings import vocabulary as v
from lswag_lightning.settings.scoring import check_score_options
from lswag_lightning.settings.values import FilePath, Flag, Integer, Parsed, Text, TextList

CUSTOM = "custom benchmark"
NETWORKS = "networks and probe"
PROXY_SETTINGS = "proxy settings (default: the space's shipped proxy defaults)"
RUN = "run"
STORED = "stored scores"
PUBLISHED = "published values (NAS-Bench-Suite-Zero)"


@dataclass(kw_only=True)
class BenchCommand(CommandSettings):
    """The settings of one ``lswag-bench`` command (see :mod:`lswag_lightning.cli.bench` for what it does)."""

    benchmark: str = option(
        Text(BENCHMARKS),
        positional=True,
        help="nb201 (NAS-Bench-201, 15,625 cells, 200-epoch test accuracy on C10/C100/IN16-120), nb101 / nb301 "
        "(NAS-Bench-Suite-Zero's 500 NB101 cells / 725 NB301 genotypes, CIFAR-10 validation accuracy), "
        "autoformer_ti (Auto-Prox's 100 AutoFormer-Ti subnets), or custom (--space/--gt/...)",
    )
    out: Path = v.OUT.field(help="table.csv, bench.json, report.md")
    sample: int | None = v.SAMPLE.field(None, help="default: all of the ground truth")
    seed: int | None = option(
        Integer(0), None, metavar="S", help="seed of the architecture sample (with --sample; default 0)"
    )
    proxies: list[str] | None = v.PROXIES.field(
        None,
        help="the registered proxies to score, or 'all' (default: all, except swap_reg unless --score-option "
        "swap_mu=... swap_sigma=... are given)",
    )
    # custom benchmark
    space: str | None = option(Text(), None, group=CUSTOM, help="search space of the architectures, e.g. nb201, darts")
    gt: Path | None = option(
        FilePath(),
        None,
        group=CUSTOM,
        metavar="FILE",
        help="ground-truth table (custom only): CSV/TSV/parquet/JSONL, or a JSON list of records",
    )
    arch_column: str | None = option(
        Text(), None, group=CUSTOM, metavar="COL", help="column holding the architectures (custom only)"
    )
    accuracy_column: list[str] = option(
        TextList(), [], group=CUSTOM, metavar="COL", help="accuracy column in % (custom only; repeat for several)"
    )
    # networks and probe
    build_options: dict[str, Any] = v.BUILD_OPTIONS.field(
        {},
        group=NETWORKS,
        help=f"default: the space's shipped build options, at 32 px and 10 classes; autoformer_ti: "
        f"{AUTOFORMER_DEFAULT_IMG_SIZE} px with patch {AUTOFORMER_PATCH_SIZE} (224 is the original training "
        "resolution)",
    )
    batch_size: int | None = v.BATCH_SIZE.field(
        None, group=NETWORKS, help="default 64; 32 with nb201 --vs-published, NASLib's"
    )
    probe_seed: int = v.PROBE_SEED.field(0, group=NETWORKS, help="default 0")
    probe_protocol: str = v.PROBE_PROTOCOL.field(
        "bench",
        group=NETWORKS,
        help="bench (default, this command's tables) or search (lswag-search's draw from the CIFAR-10 images: the "
        "protocol of the NB201 score tables in results/, so a search can read the run's --export with --score-table)",
    )
    init_seed: int = v.INIT_SEED.field(0, group=NETWORKS, help="default 0")
    nb201_set: str = option(
        Text(NB201_SETS),
        "all",
        group=NETWORKS,
        help="nb201 only: 'all' cells, or the 723 cells of NAS-Bench-Suite-Zero with validation accuracy (the "
        "paper's protocol; adds *_val_acc columns)",
    )
    # proxy settings
    score_options: dict[str, Any] = v.SCORE_OPTIONS.field({}, group=PROXY_SETTINGS)
    # run
    data_dir: Path | None = v.DATA_DIR.field(None, group=RUN, help="the ground truth and the probe images")
    device: str | None = v.DEVICE.field(None, group=RUN)
    threads: int | None = v.THREADS.field(None, group=RUN)
    no_report: bool = option(Flag(), False, group=RUN, help="write the table only (with --report-only: merge only)")
    report_only: bool = option(
        Flag(),
        False,
        group=RUN,
        help="write the report from the table already in --out (same arguments as the run), scoring nothing; e.g. "
        "for a table made on another machine, or a partial one. When --out holds shards, merges them into "
        "table.csv first and names the missing ones",
    )
    shard: Shard | None = option(
        Parsed(Shard.parse, "I/N"),
        None,
        group=RUN,
        help="score only shard I of N (0 <= I < N: the sample positions p with p % N == I) into OUT/shards/; the N "
        "shards may run at once (processes or machines sharing OUT), each resumes like a run; merge with "
        "--report-only",
    )
    allow_partial: bool = option(
        Flag(), False, group=RUN, help="with --report-only: merge and report even when shards are missing"
    )
    workers: int | None = option(
        Integer(2),
        None,
        group=RUN,
        metavar="N",
        help="run this command as N shards at once in local processes (--shard i/N each), then merge them "
        "(--report-only); e.g. one process per CPU core, or N processes sharing a GPU under CUDA MPS",
    )
    no_progress: bool = v.NO_PROGRESS.field(False, group=RUN)
    n_boot: int = v.N_BOOT.field(1000, group=RUN, help="default 1000")
    splits: int = v.SPLITS.field(20, group=RUN, help="LIBRA's, default 20", deprecated_flags=("--libra-splits",))
    stop_after: int | None = option(Integer(1), None, group=RUN, hidden=True, help="testing: stop after N rows")
    # stored scores
    score_table: list[Path] | None = v.SCORE_TABLE.field(
        None,
        group=STORED,
        help="score nothing: join them with the benchmark's accuracies into OUT/table.csv, for lswag-libra (as "
        "lswag-search --score-table); every architecture must be in every table",
    )
    covered_only: bool = option(
        Flag(),
        False,
        group=STORED,
        help="with --score-table: keep only the architectures every table holds (e.g. tables of a subset of NB201)",
    )
    export: Path | None = option(
        FilePath(),
        None,
        group=STORED,
        metavar="FILE",
        help="after the run (or with --report-only), write the table's proxy values as a stored score table: arch + "
        "one column per proxy value, no accuracies (.parquet or .csv), as the tables in results/",
    )
    # published values
    vs_published: bool = option(
        Flag(),
        False,
        group=PUBLISHED,
        help="our values against NAS-Bench-Suite-Zero's published ones. nb201: score the published cells under "
        "NASLib's protocol (batch 32, crop + flip, seed per run) -> OUT/values.csv, summary.csv, summary.md; exit 1 "
        "when naswot/synflow/snip/grad_norm miss rank agreement 0.9. nb101/nb301: compare OUT/table.csv (a run, or "
        "--score-table in the same command) with the published values -> OUT/published.md",
    )
    first: int | None = option(
        Integer(1),
        None,
        group=PUBLISHED,
        metavar="N",
        help="nb201 --vs-published: the first N published cells, file order (default all 724)",
    )
    noise_seed: int | None = option(
        Integer(0),
        None,
        group=PUBLISHED,
        metavar="S",
        help="nb201 --vs-published: score every cell again with this seed (another batch and init) and report our "
        "own seed-to-seed ρ, the ceiling NASLib's per-cell sampling allows",
    )
    augment: bool = option(
        Flag(store=False),
        True,
        group=PUBLISHED,
        flags=("--no-augment",),
        help="nb201 --vs-published: skip NASLib's random crop + flip of the probe batch",
    )

    def check(self) -> None:
        self.score_options = check_score_options(self.score_options)
        self._check_custom()
        if self.seed is not None and self.sample is None:
            raise ValueError("--seed chooses the architecture sample: give --sample N with it")
        if self.nb201_set != "all" and self.benchmark != "nb201":
            raise ValueError("--nb201-set only applies to the nb201 benchmark")
        self._check_shards()
        self._check_published()

    def _check_custom(self) -> None:
        custom_only = {
            "--space": self.space,
            "--gt": self.gt,
            "--arch-column": self.arch_column,
            "--accuracy-column": self.accuracy_column or None,
        }
        if self.benchmark == "custom":
            missing = [k for k, value in custom_only.items() if value is None]
            if missing:
                raise ValueError(
                    f"custom needs {', '.join(missing)} (e.g. --space nb201 --gt accs.csv --arch-column arch "
                    "--accuracy-column acc)"
                )
        else:
            given = [k for k, value in custom_only.items() if value is not None]
            if given:
                raise ValueError(
                    f"{', '.join(given)} only apply to 'custom'; {self.benchmark} brings its own ground truth"
                )

    def _check_shards(self) -> None:
        if self.shard is not None and self.report_only:
            raise ValueError("--report-only merges every shard of --out: leave --shard out")
        if self.allow_partial and not self.report_only:
            raise ValueError("--allow-partial only applies to --report-only (merging shards)")
        if self.workers is not None and (self.shard is not None or self.report_only):
            raise ValueError("--workers runs every shard and the merge itself: leave --shard and --report-only out")
        if self.score_table:
            clash = _given(
                ("--shard", self.shard), ("--report-only", self.report_only), ("--workers", self.workers),
                ("--export", self.export),
            )  # fmt: skip
            if clash:
                raise ValueError(f"--score-table scores nothing and writes OUT/table.csv only: leave {clash} out")
        elif self.covered_only:
            raise ValueError("--covered-only only applies to --score-table")
        if self.export is not None and self.shard is not None:
            raise ValueError("--export writes the merged table: give it to the merge (--report-only), not to a shard")

    def _check_published(self) -> None:
        nb201_only = {"--first": self.first, "--noise-seed": self.noise_seed, "--no-augment": not self.augment or None}
        given = [flag for flag, value in nb201_only.items() if value is not None]
        if given and not (self.vs_published and self.benchmark == "nb201"):
            raise ValueError(f"{', '.join(given)} only apply to nb201 --vs-published")
        if not self.vs_published:
            return
        if self.benchmark not in ("nb201", "nb101", "nb301"):
            raise ValueError(
                "--vs-published applies to nb201, nb101 and nb301 (the benchmarks NAS-Bench-Suite-Zero scored)"
            )
        clash = _given(
            ("--shard", self.shard), ("--workers", self.workers), ("--report-only", self.report_only),
            ("--export", self.export), ("--score-table", self.score_table and self.benchmark == "nb201"),
        )  # fmt: skip
        if clash:
            raise ValueError(f"--vs-published runs on its own: leave {clash} out")


def _given(*flags: tuple[str, Any]) -> str:
    """The flags among ``(flag, value)`` pairs whose value is set, comma-separated."""
    return ", ".join(flag for flag, value in flags if value)


def build_parser():
    """``lswag-bench``'s parser, generated from :class:`BenchCommand`."""
    return generate_parser(
        BenchCommand,
        prog="lswag-bench",
        description="Score a seeded sample (or all) of a benchmark's architectures with zero-cost proxies, join "
        "the published accuracies, and write table.csv + report.md (correlations with bootstrap intervals, LIBRA "
        "with held-out evaluation). Resumable: rerun the same command to continue.",
    )
