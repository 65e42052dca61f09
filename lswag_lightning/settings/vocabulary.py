"""The shared vocabulary: one word per concept, the same in the flag (``--probe-seed``), the config key
(``probe_seed``) and the Python argument (``probe_seed``), read by one parser in every command that has it.

The groups (each command takes the concepts it has; a command's own detail is added to the shared help):

- **how many architectures**: :data:`SAMPLE` (``--sample N``) is a seeded random sample of N architectures of a
  space or a ground truth, drawn up front (``lswag-bench``, ``lswag-layers``, ``make demo``'s candidates per
  space; was ``--num`` and ``--candidates``). A search's :data:`BUDGET` (``--budget N``) is a different concept and
  keeps its word: it is not drawn up front but a stopping rule of an adaptive process, the number of *distinct*
  architectures the search scores (proposals over the constraints and duplicates cost nothing), and it is the one
  setting a resumed search may raise (``SearchSettings.identity`` leaves it out); a sample of N and a search with
  budget N score the same number of networks but not the same networks.
- **the probe batch**: :data:`PROBE_DATA` (the ``search`` protocol's images; was ``--data``), :data:`PROBE_PROTOCOL`,
  :data:`BATCH_SIZE`, :data:`PROBE_SEED` (was ``--data-seed``), :data:`DATA_DIR`, :data:`DEVICE`, :data:`THREADS`.
- **the build of a candidate**: :data:`BUILD_OPTIONS` (``--build-option KEY=VALUE``, with ``--num-classes``,
  ``--img-size``, ``--in-chans`` as shorthands for its three common keys; a later flag wins over an earlier one),
  :data:`INIT_SEED`.
- **the score options**: :data:`PROXIES` (space- or comma-separated), :data:`SCORE_OPTIONS`
  (``--score-option KEY=VALUE``, with ``--layer-interval`` as the shorthand of ``layer_interval``),
  :data:`SCORE_TABLE`.
- **the held-out evaluation**: :data:`SPLITS` (``--splits``; was ``--libra-splits`` and ``--label-splits``),
  :data:`N_BOOT`.

The mapping options are one field each (``build_options``, ``score_options``: the config key and the Python
argument), written one ``KEY=VALUE`` per flag on the command line, hence the singular flags ``--build-option`` and
``--score-option``. Every ``KEY=VALUE`` value is read by :func:`~lswag_lightning.settings.values.parse_value` (JSON,
else a bare word), so ``--score-option swap_sigma=1e3`` is 1000.0 in every command.
"""

from __future__ import annotations

from lswag_lightning.probe import NUM_CLASSES, PROBE_DATASETS
from lswag_lightning.settings.fields import Concept, Shorthand
from lswag_lightning.settings.values import (
    DepthInterval,
    FilePath,
    Flag,
    Integer,
    KeyValues,
    Names,
    Paths,
    Text,
)

#: the fewest classifier outputs a scored network may have: the probe labels are 10 classes (CIFAR-10, digits)
PROBE_CLASSES = NUM_CLASSES

# ------------------------------------------------------------------------------------------ architectures
SAMPLE = Concept("sample", Integer(1), "a seeded random sample of N architectures", metavar="N")
BUDGET = Concept(
    "budget",
    Integer(1),
    "distinct architectures a search scores (duplicates and proposals over the constraints cost nothing)",
    metavar="N",
)

# ------------------------------------------------------------------------------------------ the probe batch
PROBE_DATA = Concept(
    "probe_data",
    Text(PROBE_DATASETS),
    "images of the probe batch: digits (embedded) or cifar10_npz (<data dir>/images)",
)
PROBE_PROTOCOL = Concept(
    "probe_protocol", Text(("bench", "search")), "how the probe batch is drawn (lswag_lightning.probe)"
)
BATCH_SIZE = Concept("batch_size", Integer(2), "probe batch size (images)", metavar="B")
PROBE_SEED = Concept(
    "probe_seed", Integer(0), "seed of the probe batch draw (which training images form the probe)", metavar="S"
)
DATA_DIR = Concept(
    "data_dir",
    FilePath(),
    "data folder (default: $LSWAG_DATA_DIR, else ../shared/data beside the checkout)",
    metavar="DIR",
)
DEVICE = Concept("device", Text(), "torch device (default: cuda if available, else cpu)")
THREADS = Concept(
    "threads", Integer(1), "torch CPU threads (default: torch's choice; 1 for comparable timings)", metavar="N"
)

# ------------------------------------------------------------------------------------ the build of a candidate
BUILD_OPTIONS = Concept(
    "build_options",
    KeyValues(),
    "a space.build option of the scored networks, value as JSON (e.g. C=8, patch_size=16); repeatable",
    metavar="KEY=VALUE",
    flags=("--build-option",),
    shorthands=(
        Shorthand(
            "--num-classes",
            "num_classes",
            Integer(PROBE_CLASSES),
            f"classifier outputs (--build-option num_classes=K; at least {PROBE_CLASSES}: the probe labels are "
            f"{PROBE_CLASSES} classes)",
            metavar="K",
        ),
        Shorthand(
            "--img-size",
            "img_size",
            Integer(4),
            "input and probe resolution in pixels (--build-option img_size=P)",
            metavar="P",
        ),
        Shorthand("--in-chans", "in_chans", Integer(1), "input image channels (--build-option in_chans=C)", "C"),
    ),
)
INIT_SEED = Concept(
    "init_seed",
    Integer(0),
    "base of the networks' weight-init seeds (each architecture's seed derives from it and the architecture)",
    metavar="S",
)

# ------------------------------------------------------------------------------------------ the score options
PROXIES = Concept("proxies", Names(), "proxy names, space- or comma-separated", metavar="NAME")
SCORE_OPTIONS = Concept(
    "score_options",
    KeyValues(),
    "a score_network option, value as JSON (lambda_std=abs, psi_layers=[1,10], swap_sigma=1e3); repeatable",
    metavar="KEY=VALUE",
    flags=("--score-option",),
    shorthands=(
        Shorthand(
            "--layer-interval",
            "layer_interval",
            DepthInterval(),
            "L-SWAG's depth-bin interval LO HI (or LO,HI; bins 0..10), or 'all' for every layer "
            "(--score-option layer_interval=[LO,HI])",
            metavar="BIN",
        ),
    ),
)
SCORE_TABLE = Concept(
    "score_table",
    Paths(),
    "stored proxy values (csv/parquet: arch + one column per proxy, e.g. lswag-bench --export or "
    "results/nb201_all_cells_scores.parquet); each proxy comes from the first table holding it",
)

# --------------------------------------------------------------------------------- the held-out evaluation
SPLITS = Concept("splits", Integer(1), "random fit/eval splits of the held-out evaluation", metavar="N")
N_BOOT = Concept("n_boot", Integer(0), "bootstrap resamples of the confidence intervals", metavar="N")

# ------------------------------------------------------------------------------------------ run
OUT = Concept("out", FilePath(), "output folder", metavar="DIR")
NO_PROGRESS = Concept("no_progress", Flag(), "no progress bar")

#: every shared concept, by name
CONCEPTS = {
    c.name: c
    for c in (
        SAMPLE,
        BUDGET,
        PROBE_DATA,
        PROBE_PROTOCOL,
        BATCH_SIZE,
        PROBE_SEED,
        DATA_DIR,
        DEVICE,
        THREADS,
        BUILD_OPTIONS,
        INIT_SEED,
        PROXIES,
        SCORE_OPTIONS,
        SCORE_TABLE,
        SPLITS,
        N_BOOT,
        OUT,
        NO_PROGRESS,
    )
}
