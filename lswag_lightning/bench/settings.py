"""What decides a benchmark table's values: the settings compared on resume, the networks' build options, the
proxies and their options, and the table's columns."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import torch

from lswag_lightning.bench.ground_truth import GroundTruth
from lswag_lightning.candidates import space_build_options
from lswag_lightning.jsonio import plain
from lswag_lightning.proxies.registry import available_proxies, get_proxy
from lswag_lightning.spaces import family_build_options

PROBE_CLASSES = 10
#: the probe protocols a benchmark may score with (see :mod:`lswag_lightning.probe`)
BENCH_PROBES = ("bench", "search")

#: AutoFormer-Ti probe resolution when none is given: 112 px (7x7 patches of 16), which a CPU can afford
#: for 100 ViTs; the original training resolution is 224 (pass img_size=224 on a GPU).
AUTOFORMER_DEFAULT_IMG_SIZE = 112
AUTOFORMER_PATCH_SIZE = 16

TABLE_DOC = {
    "sample_index": "position of the architecture in the planned sample (0-based); rows are in this order",
    "arch": "the architecture, encoded by the space (space.encode)",
    "space": "search space name",
    "nb201_index": "NAS-Bench-201 benchmark index (nb201 only)",
    "gt_row": "row of the ground-truth file the architecture came from (nb101 / nb301 / autoformer_ti / custom)",
    "naslib_idx": "NASLib's sample id of the architecture (nb301 only)",
    "init_seed": "torch seed the network was initialised with (derived from init_seed_base and the arch)",
    "params": "trainable parameters of the scored network (a count)",
    "<proxy>": "one column per proxy value under its registry name (lswag.lambda, lswag.psi for Λ and Ψ)",
    "<accuracy>": "one column per published accuracy, in %",
    "status": "'ok', or '; '-joined 'name: reason' for every value that is not ok",
    "seconds.<proxy>": "wall seconds of each proxy, counting the shared passes it used in full",
    "build_seconds": "wall seconds to build and initialise the network and move it to the device",
    "total_seconds": "wall seconds of the whole scoring session (all proxies, shared passes once)",
}


def resolve_build_options(
    space_name: str,
    overrides: Mapping[str, Any] = (),
    *,
    preset: Mapping[str, Any] = (),
    img_size: int | None = None,
    num_classes: int | None = None,
) -> dict[str, Any]:
    """Build options of the scored networks, later entries winning: the shipped ``conf/space`` options (a family
    file's own ``build_options``), a
    benchmark ``preset``, ``--build-option`` ``overrides``, then explicit ``img_size`` / ``num_classes``;
    ``img_size`` defaults to 32 (the probe's native CIFAR-10 resolution)."""
    family = family_build_options(space_name)
    build = family if family is not None else space_build_options(space_name)
    build.update(dict(preset))
    build.update(dict(overrides))
    if img_size is not None:
        build["img_size"] = img_size
    if num_classes is not None:
        build["num_classes"] = num_classes
    build.setdefault("img_size", 32)
    return build


def default_proxies(score_options: Mapping[str, Any]) -> list[str]:
    """Every registered proxy, except ``swap_reg`` when its µ and σ (``swap_mu``, ``swap_sigma``) are not set."""
    names = available_proxies()
    if score_options.get("swap_mu") is None or score_options.get("swap_sigma") is None:
        names = [n for n in names if n != "swap_reg"]
    return names


def value_columns(proxies: Sequence[str]) -> list[str]:
    """Table columns of the proxies' values: each name followed by its registered sub-values."""
    out: list[str] = []
    for name in proxies:
        spec = get_proxy(name)
        out += [spec.name, *spec.extra_values]
    return list(dict.fromkeys(out))


def default_device() -> str:
    """``cuda`` when available, else ``cpu``."""
    return "cuda" if torch.cuda.is_available() else "cpu"


@dataclass
class BenchSettings:
    """Everything that decides the values in the table (compared on resume), plus how the run was made.

    ``score_options`` are the ``score_network`` options given (the engine's defaults for the rest);
    ``score_options_source`` says where each came from. ``build_options`` go to ``space.build``.
    """

    benchmark: str
    space: str
    proxies: list[str]
    build_options: dict[str, Any]
    score_options: dict[str, Any]
    batch_size: int = 64
    probe_seed: int = 0
    img_size: int = 32
    sample: int | None = None
    seed: int = 0
    init_seed_base: int = 0
    gt_source: str = ""
    gt_file: str = ""
    nb201_set: str = "all"
    score_options_source: dict[str, str] = field(default_factory=dict)
    probe_protocol: str = "bench"

    #: fields that do not change any value in the table (a resume may differ in them)
    _INFORMATIVE = ("score_options_source", "gt_source")

    def fingerprint(self) -> dict[str, Any]:
        """The settings that must match for a resumed run to continue the same table. The probe protocol is
        recorded when it is not the default ``bench`` (so tables made before it existed keep resuming)."""
        settings = {k: v for k, v in plain(asdict(self), nonfinite="keep").items() if k not in self._INFORMATIVE}
        if settings["probe_protocol"] == "bench":
            del settings["probe_protocol"]
        return settings

    def probe(self, data_dir: Any = None) -> tuple[torch.Tensor, torch.Tensor]:
        """The probe batch of every architecture (:func:`lswag_lightning.probe.probe_batch`): ``bench`` (this
        command's tables) or ``search`` (``lswag-search``'s, on CIFAR-10 images; the protocol of the NB201 score
        tables in ``results/``)."""
        from lswag_lightning.probe import probe_batch

        options = {"batch_size": self.batch_size, "seed": self.probe_seed, "img_size": self.img_size}
        if self.probe_protocol == "search":
            options.update(data="cifar10_npz", in_chans=int(self.build_options.get("in_chans", 3)))
        return probe_batch(self.probe_protocol, data_dir=data_dir, **options)


def resolve_score_options(overrides: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
    """The caller's ``score_network`` options, validated, intervals as lists (JSON), and the source of each."""
    from lswag_lightning.settings.scoring import check_score_options

    merged = check_score_options(overrides)  # unknown names and bad values raise ValueError naming the key
    return plain(merged, nonfinite="keep"), {key: "command line" for key in merged}


def engine_options(score_options: Mapping[str, Any]) -> dict[str, Any]:
    """``score_network`` keyword arguments from the JSON-ready ``score_options`` (lists back to tuples; no copy of
    the model, which is built for this scoring only)."""
    opts = dict(score_options)
    for key in ("layer_interval", "psi_layers"):
        if isinstance(opts.get(key), list):
            opts[key] = tuple(opts[key])
    if isinstance(opts.get("activation_points"), list):
        opts["activation_points"] = tuple(opts["activation_points"])
    opts.setdefault("copy_model", False)  # each network is built for this scoring only
    return opts


def table_columns(gt: GroundTruth, proxies: Sequence[str]) -> list[str]:
    """The column order of ``table.csv`` (see :data:`TABLE_DOC`)."""
    values = [c for c in value_columns(proxies) if c != "params"]
    return [
        "sample_index",
        "arch",
        "space",
        *gt.id_columns,
        "init_seed",
        "params",
        *values,
        *gt.accuracy_columns,
        "status",
        *(f"seconds.{p}" for p in proxies),
        "build_seconds",
        "total_seconds",
    ]
