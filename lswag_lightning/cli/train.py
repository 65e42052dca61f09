"""``lswag-train``: one Hydra job = one candidate of a search space, scored at init, trained, tested, recorded.

    lswag-train space=autoformer_mini data=digits trainer.max_epochs=1
    lswag-train -m experiment=digits_vit candidate.index='range(0,24)' hydra/launcher=joblib threads=1

The job seeds everything (``seed``), builds the data module (``data/``), picks the candidate deterministically
(``candidate.arch``, or ``candidate.index`` with ``candidate.seed``), builds it with the space's options
(``space/``), attaches the callbacks (``callbacks/``: the zero-cost proxies by default) and loggers (``logger/``),
fits, tests, and writes ``result.json`` in the job's output folder (see :func:`train` for its fields). Bad
configurations (unknown space, malformed arch, batch larger than the training set, missing data folder) stop the
job before any training with a :class:`ConfigError` naming the key to fix. W&B runs are finished at job end, also
on failure, so the jobs of a multirun never share a run.

The job itself lives in :mod:`lswag_lightning.job`; this module is the Hydra entry (config path, resolver, the
objective returned to sweepers) and keeps the job's names importable from here.
"""

from __future__ import annotations

import logging
import sys

import hydra
from omegaconf import DictConfig, OmegaConf

from lswag_lightning.job import (
    RESULT_SCHEMA_VERSION,
    ConfigError,
    JobRecord,
    select_candidate,
    space_build_options,
    train,
    versions,
)
from lswag_lightning.job.space_config import check_family_file, family_file_overrides, family_files
from lswag_lightning.paths import default_data_dir

log = logging.getLogger(__name__)

__all__ = [
    "CONFIG_PATH",
    "RESULT_SCHEMA_VERSION",
    "ConfigError",
    "JobRecord",
    "main",
    "register_resolvers",
    "select_candidate",
    "space_build_options",
    "train",
    "versions",
]


def register_resolvers() -> None:
    """``${lswag_data_dir:}``: ``$LSWAG_DATA_DIR`` or ``<checkout>/../shared/data`` (:mod:`lswag_lightning.paths`)."""
    if not OmegaConf.has_resolver("lswag_data_dir"):
        OmegaConf.register_new_resolver("lswag_data_dir", lambda: str(default_data_dir()))


register_resolvers()


# The configs are found through the package (pkg://), never through the working directory, so an installed
# (non-editable) package and a source checkout behave the same from any folder.
CONFIG_PATH = "pkg://lswag_lightning.conf"


@hydra.main(config_path=CONFIG_PATH, config_name="train", version_base="1.3")
def _hydra_main(cfg: DictConfig) -> float | None:
    record = train(cfg)
    log.info("result: %s", {k: record.get(k) for k in ("space", "arch", "params", "val_acc", "test_acc")})
    value = record.get("val_acc")  # the objective for Hydra sweepers (e.g. Optuna)
    return float(value) if value is not None else None


def main() -> None:
    """Console entry point ``lswag-train``: ``space=<family file>`` becomes ``~space +space.file=<path>``
    (:func:`~lswag_lightning.job.space_config.family_file_overrides`) before Hydra reads the command line, and a
    family file that cannot give a candidate stops the command there (exit 2, one line naming the key)."""
    args = family_file_overrides(sys.argv[1:], config_dirs(sys.argv[1:]))
    for file in family_files(args):
        try:
            check_family_file(file)
        except ValueError as err:  # a usage error, before Hydra starts: one line, exit 2
            print(f"lswag-train: error: {err}", file=sys.stderr)
            sys.exit(2)
    sys.argv = [sys.argv[0], *args]
    _hydra_main()


def config_dirs(args: list[str]) -> list[str]:
    """The folders given with Hydra's ``--config-dir DIR`` / ``-cd DIR`` / ``--config-dir=DIR``."""
    dirs = []
    for i, arg in enumerate(args):
        if arg in ("--config-dir", "-cd") and i + 1 < len(args):
            dirs.append(args[i + 1])
        elif arg.startswith("--config-dir="):
            dirs.append(arg.split("=", 1)[1])
    return dirs


if __name__ == "__main__":
    main()
