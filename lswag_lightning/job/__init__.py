"""One ``lswag-train`` job (the Hydra entry is :mod:`lswag_lightning.cli.train`): ``build`` (config -> space,
candidate, data, callbacks, loggers, trainer, each checked before training), ``record`` (the job record: a context
manager writing ``result.json`` on success and failure alike), ``train_job`` (:func:`train`). Imports Lightning only
inside the job, once the space and the candidate are valid."""

from __future__ import annotations

from lswag_lightning.job.build import ConfigError, select_candidate, space_build_options
from lswag_lightning.job.record import RESULT_SCHEMA_VERSION, JobRecord, versions
from lswag_lightning.job.train_job import train

__all__ = [
    "RESULT_SCHEMA_VERSION",
    "ConfigError",
    "JobRecord",
    "select_candidate",
    "space_build_options",
    "train",
    "versions",
]
