"""The Lightning-facing code: the callback, the training module, the data modules.

Modules: :mod:`.callback` (:class:`ZeroCostProxyCallback`, a thin adapter from Lightning to
:func:`lswag_lightning.proxies.score_network`), :mod:`.batch_from_loader` (how the callback draws its probe batch
from a copy of the trainer's train dataloader), :mod:`.module` (:class:`CandidateClassifier`, the LightningModule
that trains one candidate of a search space) and :mod:`.data` (:class:`DigitsDataModule`,
:class:`CIFARDataModule`). Imports the proxies and the spaces; never the CLI, bench, search or analysis.
"""

from __future__ import annotations

from lswag_lightning.lightning.callback import ZeroCostProxyCallback
from lswag_lightning.lightning.data import CIFARDataModule, DigitsDataModule
from lswag_lightning.lightning.module import CandidateClassifier

__all__ = ["CIFARDataModule", "CandidateClassifier", "DigitsDataModule", "ZeroCostProxyCallback"]
