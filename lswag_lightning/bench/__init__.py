"""Public-benchmark reproduction: score architectures with zero-cost proxies and join their published accuracies.

The library behind ``lswag-bench`` (:mod:`lswag_lightning.cli.bench`). Pure PyTorch + pandas: no Lightning, Hydra
or W&B, so it runs on any machine with torch, timm, pandas, scipy, matplotlib and tqdm.

Benchmarks (the ground truth is read at run time from the data folder, never copied):

- ``nb201``: ``nb201/nasbench201_test_acc_200ep.csv``, the 200-epoch test accuracy (%) of all 15,625 NAS-Bench-201
  cells on CIFAR-10, CIFAR-100 and ImageNet16-120 -> columns ``cifar10_test_acc``, ``cifar100_test_acc``,
  ``imagenet16_120_test_acc`` (+ ``nb201_index``). With ``nb201_set="naslib_val"`` the architectures are the 723
  cells of ``nb201/nb201_val_acc_naslib_subset.csv`` and their validation accuracies (the paper's protocol) are
  added as ``cifar10_val_acc``, ``cifar100_val_acc``, ``imagenet16_120_val_acc``.
- ``nb101`` / ``nb301``: NAS-Bench-Suite-Zero's subsets (``naslib_zc_subsets/``, read by ``analysis.published``):
  500 NB101 cells (space ``nb101``) / 725 NB301 genotypes (space ``darts`` with :data:`NB301_BUILD_OPTIONS`),
  CIFAR-10 validation accuracy -> ``cifar10_val_acc``; ``arch`` is the file's key (the scored networks' ``params``
  equal the file's ``params``, which NASLib stores in millions).
- ``autoformer_ti``: ``vit/autoprox_gt_autoformer.json`` (Auto-Prox, 100 AutoFormer-Ti subnets), every accuracy
  field (``c100_base_acc``, ``c100_kd_acc``, ``flower_*``, ``chaoyang_*``, ``imagenet_super_acc``), in %.
- ``custom``: any table (CSV/TSV/parquet/JSONL, or a JSON list of records) of architectures of a shipped space.

Protocol (stated in every report): one probe batch of real CIFAR-10 training images (the ``bench`` protocol of
:func:`lswag_lightning.probe.probe_batch`: ``images/cifar10_train_part0.npz``, shuffled with ``probe_seed``, normalised
with the CIFAR-10 channel mean/std, resized bilinearly when the resolution is not 32; or, with
``probe_protocol="search"``, ``lswag-search``'s draw, the protocol of the NB201 score tables in ``results/``) and their
labels serves every architecture and every accuracy column. Each network is built on the CPU from a seed derived from
its encoded architecture (:func:`lswag_lightning.candidates.build_candidate`: the same arch gets the same initial
weights in any sample, on any device, and in ``lswag-search``), moved to the device, and scored in train() mode by
:func:`lswag_lightning.score_network` with the engine's default options unless overridden (``--score-option``,
``--layer-interval``). On CUDA, TF32 is switched off so that values match float32 CPU scores up to summation order.

Resumable output: ``<out>/table.csv`` gets one flushed row per architecture (columns: :data:`TABLE_DOC`) and
``<out>/bench.json`` records the settings; a rerun with the same settings skips the done rows and ends with the
same table as an uninterrupted run (timing columns aside). A rerun with different settings is refused.

Modules (each imports only those above it): :mod:`.ground_truth` (the benchmarks' files, sampling),
:mod:`.settings` (:class:`BenchSettings`, build and score options, table columns), :mod:`.table_file` (``table.csv``
appended row by row, the settings check, the folder lock), :mod:`.score_rows` (probe, scoring, the resumable loop),
:mod:`.shards` (``--shard I/N`` files and their merge), :mod:`.score_tables` (stored score tables: exported from a
table, joined with the accuracies), :mod:`.plan` (the settings and the sample from a command's
arguments), :mod:`.summary` (the report's numbers) and :mod:`.render` (the report's files, written from those
numbers). The probe batch, the seeded build and JSON writing come from :mod:`lswag_lightning.probe`,
:mod:`lswag_lightning.candidates` and :mod:`lswag_lightning.jsonio`. This package never imports
:mod:`lswag_lightning.cli`; it imports :mod:`lswag_lightning.search` (the score-table rule, the search evaluation),
never the other way round.
"""

from __future__ import annotations

from lswag_lightning.bench.ground_truth import (
    AUTOFORMER_FILE,
    BENCHMARK_SPACES,
    BENCHMARKS,
    NB201_SETS,
    NB201_TEST_COLUMNS,
    NB201_TEST_FILE,
    NB201_VAL_COLUMNS,
    NB201_VAL_FILE,
    GroundTruth,
    benchmark_ground_truth,
    load_autoformer_ground_truth,
    load_custom_ground_truth,
    load_naslib_ground_truth,
    load_nb201_ground_truth,
    read_csv_exact,
    sample_ground_truth,
)
from lswag_lightning.bench.plan import BenchPlan, plan_benchmark
from lswag_lightning.bench.render import protocol_lines, render_bench_report, write_bench_report
from lswag_lightning.bench.score_rows import RunResult, StopRun, run_benchmark, run_rows, table_row_values
from lswag_lightning.bench.score_tables import export_scores, join_score_tables, score_columns
from lswag_lightning.bench.settings import (
    AUTOFORMER_DEFAULT_IMG_SIZE,
    AUTOFORMER_PATCH_SIZE,
    BENCH_PROBES,
    PROBE_CLASSES,
    TABLE_DOC,
    BenchSettings,
    default_device,
    default_proxies,
    resolve_build_options,
    resolve_score_options,
    table_columns,
    value_columns,
)
from lswag_lightning.bench.shards import (
    SHARD_DIR,
    MergeResult,
    Shard,
    merge_shards,
    refuse_if_sharded,
    run_shard,
    shard_dir,
    shard_files,
)
from lswag_lightning.bench.summary import (
    PAPER_NB201,
    AccuracySummary,
    BenchSummary,
    proxy_columns,
    rank_duplicates,
    summarize_bench,
)
from lswag_lightning.bench.table_file import (
    OutputBusyError,
    TableFile,
    check_settings,
    exclusive_run,
    load_run,
    read_table,
)
from lswag_lightning.candidates import arch_seed, build_candidate
from lswag_lightning.probe import PROBE_FILE
