"""Analysis of result tables: rank correlations with bootstrap intervals, LIBRA, label-budget learning curves, the
learned ranking and ``auto``, the k = 0 default, published tables, reports.

Imports nothing from Lightning or Hydra; usable from a notebook. Result-table columns are documented in
:mod:`lswag_lightning.analysis.table`.
"""

from __future__ import annotations

from lswag_lightning.analysis.budget import LearningCurve, learning_curve
from lswag_lightning.analysis.correlations import (
    PairedDifference,
    correlation_table,
    kendall,
    paired_difference,
    spearman,
    top_hit_rate,
)
from lswag_lightning.analysis.defaults import load_default
from lswag_lightning.analysis.libra import (
    LibraEvaluation,
    LibraSelection,
    conditional_entropy,
    evaluate,
    fuse,
    information_gain,
    joint_entropy,
    rank_bins,
    select,
)
from lswag_lightning.analysis.rankers import FittedRanking, load_ranking, save_ranking
from lswag_lightning.analysis.ranking_run import fit_and_rank
from lswag_lightning.analysis.table import (
    Orientation,
    default_proxy_columns,
    load_table,
    orient,
    oriented_values,
    validate_table,
)

__all__ = [
    "FittedRanking",
    "LearningCurve",
    "LibraEvaluation",
    "LibraSelection",
    "Orientation",
    "PairedDifference",
    "conditional_entropy",
    "correlation_table",
    "default_proxy_columns",
    "evaluate",
    "fit_and_rank",
    "fuse",
    "information_gain",
    "joint_entropy",
    "kendall",
    "learning_curve",
    "load_default",
    "load_ranking",
    "load_table",
    "orient",
    "oriented_values",
    "paired_difference",
    "rank_bins",
    "save_ranking",
    "select",
    "spearman",
    "top_hit_rate",
    "validate_table",
    "write_report",
]


def __getattr__(name: str):
    # The report pulls in matplotlib; import it only when asked for.
    if name == "write_report":
        from lswag_lightning.analysis.report import write_report

        return write_report
    raise AttributeError(f"module 'lswag_lightning.analysis' has no attribute {name!r}")
