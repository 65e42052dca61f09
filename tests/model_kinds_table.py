"""``docs/model-kinds.md``: what each proxy measures on each model kind, from a run of the callback on every kind.

``python tests/model_kinds_table.py`` (from the repository root, ``PYTHONPATH=.``) fits every kind of
``model_kinds.py`` for two steps with ``ZeroCostProxyCallback(proxies="all")`` and writes the page;
``test_model_kinds.py`` runs the same fits and fails when the page differs, so it cannot go stale.
"""

from __future__ import annotations

import sys
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import torch
from model_kinds import KINDS
from torch import nn

from lswag_lightning import ZeroCostProxyCallback, available_proxies
from lswag_lightning.proxies import ProxyReport, get_proxy

DOC = Path(__file__).resolve().parents[1] / "docs" / "model-kinds.md"
#: the callback's options on every kind (a kind adds its own, e.g. ``loss_fn``)
OPTIONS: dict[str, Any] = {"proxies": "all", "batch_size": 16, "score_options": {"swap_mu": 2, "swap_sigma": 100}}
QUIET = dict(
    accelerator="cpu",
    devices=1,
    enable_progress_bar=False,
    enable_model_summary=False,
    num_sanity_val_steps=0,
    enable_checkpointing=False,
    logger=False,
)


def fit(make_module: Callable[[], Any], callbacks: list, steps: int = 2, trainer: dict | None = None) -> nn.Module:
    """The module trained for ``steps`` from seed 0 (``make_module`` may return a compiled wrapper)."""
    pl.seed_everything(0, verbose=False)
    module = make_module()
    pl.Trainer(max_steps=steps, callbacks=callbacks, **{**QUIET, **(trainer or {})}).fit(module)
    return getattr(module, "_orig_mod", module)


def same_weights(a: nn.Module, b: nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


@dataclass
class KindRun:
    report: ProxyReport
    trained: nn.Module  # fitted with the callback
    plain: nn.Module  # fitted without it
    loader_batches: int | None  # the train-loader batches the probe was drawn from
    restored: bool = False  # the scores came from a checkpoint


def score_kinds(names: Sequence[str] | None = None) -> dict[str, KindRun]:
    """Every kind (or ``names``) fitted with the callback and without it, from the same seed; then ``resume`` (the
    ``cnn`` kind resumed from a checkpoint written after one step: the scores come from the checkpoint)."""
    runs = {}
    for name in names or KINDS:
        kind = KINDS[name]
        zc = ZeroCostProxyCallback(**OPTIONS, **kind.callback)
        trained = fit(kind.module, [zc], trainer=kind.trainer)
        plain = fit(kind.module, [], trainer=kind.trainer)
        runs[name] = KindRun(zc.report, trained, plain, zc.probe_loader_batches)
    if names is None:
        runs[RESUME] = resume_run()
    return runs


#: the row of a run resumed from a checkpoint
RESUME = "resume"
RESUME_DESCRIPTION = "the `cnn` kind resumed from a checkpoint (`fit(ckpt_path=...)`): the scores of the checkpoint"


def resume_run() -> KindRun:
    """The ``cnn`` kind fitted one step with the callback, checkpointed, and resumed for one more step with a fresh
    callback (which restores the scores from the checkpoint, never scoring trained weights); the same without any
    callback gives the weights to compare with."""

    def fit_and_resume(folder: Path, with_callback: bool) -> tuple[nn.Module, list[ZeroCostProxyCallback]]:
        callbacks = [ZeroCostProxyCallback(**OPTIONS)] if with_callback else []
        trainer = pl.Trainer(max_steps=1, callbacks=callbacks, **QUIET)
        pl.seed_everything(0, verbose=False)
        trainer.fit(KINDS["cnn"].module())
        checkpoint = folder / f"callback-{with_callback}.ckpt"
        trainer.save_checkpoint(checkpoint)
        resumed = [ZeroCostProxyCallback(**OPTIONS)] if with_callback else []
        module = KINDS["cnn"].module()
        pl.Trainer(max_steps=2, callbacks=resumed, **QUIET).fit(module, ckpt_path=checkpoint)
        return module, resumed

    with tempfile.TemporaryDirectory() as folder:
        trained, (zc,) = fit_and_resume(Path(folder), True)
        plain, _ = fit_and_resume(Path(folder), False)
    return KindRun(zc.report, trained, plain, zc.probe_loader_batches, restored=zc.restored)


def columns() -> list[str]:
    """Every proxy, each followed by its sub-values (``lswag``, ``lswag.lambda``, ``lswag.psi``)."""
    return [key for name in available_proxies() for key in (name, *get_proxy(name).extra_values)]


def _share(report: ProxyReport, key: str) -> float | None:
    coverage = report.details.get(key.split(".")[0], {}).get("coverage")
    if coverage and "share" not in coverage:  # per key (L-SWAG and its factors)
        coverage = coverage.get(key)
    return None if not coverage else coverage["share"]


def _cell(report: ProxyReport, key: str, notes: dict[str, int]) -> str:
    status = report.status.get(key, "missing")
    share = _share(report, key)
    measured = "" if share is None else f" {share:.0%}"
    if status == "ok":
        return f"ok{measured}"
    number = notes.setdefault(status, len(notes) + 1)
    kind = status.split(":", 1)[0]
    return f"{kind}{measured if kind == 'partial' else ''} [{number}]"


def render_page(runs: dict[str, KindRun]) -> str:
    """The markdown page: the table (kinds × proxies) and, numbered, every status that is not ``ok``."""
    keys = columns()
    notes: dict[str, int] = {}
    lines = [
        "# Model kinds × proxies",
        "",
        'What each proxy gives on each kind of LightningModule, as `ZeroCostProxyCallback(proxies="all")` scores it',
        "at fit start: `ok` (an informative value; with the share of the parameters it measured, for the gradient",
        "and activation proxies), `partial` (a value measured on less than `min_coverage` of the parameters, kept",
        "with its status), or a status with its cause and fix (numbered below). Generated by",
        "`PYTHONPATH=. python tests/model_kinds_table.py` from the kinds of `tests/model_kinds.py` (tiny networks,",
        "16 probe samples, seed 0); `tests/test_model_kinds.py` fails when this page differs from what the run",
        "gives. `docs/extending.md` says how the statuses are made; `lswag_lightning/proxies/coverage.py` why the",
        "threshold is 0.5.",
        "",
        "| kind | " + " | ".join(f"`{key}`" for key in keys) + " |",
        "| --- | " + " | ".join("---" for _ in keys) + " |",
    ]
    for name, run in runs.items():
        cells = [_cell(run.report, key, notes) for key in keys]
        description = RESUME_DESCRIPTION if name == RESUME else KINDS[name].description
        lines.append(f"| `{name}`: {description} | " + " | ".join(cells) + " |")
    lines += ["", "## Statuses", ""]
    lines += [f"{number}. {status}" for status, number in notes.items()]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    torch.set_num_threads(1)
    DOC.write_text(render_page(score_kinds(sys.argv[1:] or None)))
    print(f"wrote {DOC}")
