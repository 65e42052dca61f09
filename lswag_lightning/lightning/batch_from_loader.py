"""The callback's probe batch: drawn from a *copy* of a train dataloader's sampler, so the trainer's sampler, its
generator and its workers are never touched (see :mod:`lswag_lightning.lightning.callback`, "The probe batch").

Pure torch; the error messages name :class:`~lswag_lightning.lightning.callback.ZeroCostProxyCallback`, whose
arguments fix them. The callback calls these inside ``isolate_rng``.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
from torch.utils.data import DataLoader, IterableDataset

# Keys tried, in order, when a batch is a mapping and no ``batch_adapter`` is given.
_MAPPING_KEYS = (
    ("x", "y"),
    ("input", "target"),
    ("inputs", "targets"),
    ("image", "label"),
    ("images", "labels"),
    ("pixel_values", "labels"),
)


def default_batch_adapter(batch: Any) -> tuple[torch.Tensor, torch.Tensor | None]:
    """``(inputs, targets)`` of a collated batch: a tensor (no targets), a ``(inputs, targets, ...)`` sequence, or a
    mapping with one of the usual key pairs (``x``/``y``, ``image``/``label``, ...)."""
    if isinstance(batch, torch.Tensor):
        return batch, None
    if isinstance(batch, Mapping):
        for x_key, y_key in _MAPPING_KEYS:
            if x_key in batch:
                return batch[x_key], batch.get(y_key)
        raise ValueError(
            f"cannot find the inputs in a batch with keys {sorted(map(str, batch))}; pass "
            "batch_adapter=lambda batch: (inputs, targets) to ZeroCostProxyCallback"
        )
    if isinstance(batch, Sequence) and not isinstance(batch, str) and len(batch) >= 1:
        return batch[0], (batch[1] if len(batch) > 1 else None)
    raise ValueError(
        f"cannot split a batch of type {type(batch).__name__} into (inputs, targets); pass "
        "batch_adapter=lambda batch: (inputs, targets) to ZeroCostProxyCallback"
    )


def first_dataloader(loaders: Any) -> Any:
    """The first dataloader of what ``trainer.train_dataloader`` holds (a loader, or a list/dict of them)."""
    if isinstance(loaders, Mapping):
        return first_dataloader(next(iter(loaders.values()))) if loaders else None
    if isinstance(loaders, (list, tuple)):
        return first_dataloader(loaders[0]) if loaders else None
    return loaders


def draw_indices(
    loader: DataLoader, dataset: Any, batch_size: int, probe_seed: int | None
) -> tuple[list[Any], int | None]:
    """``(indices, loader batches)``: the first ``batch_size`` indices that a copy of the loader's (batch) sampler
    yields, taken from as many loader batches as needed (the count is None for a plain sampler).

    Lightning creates the train loader's iterator (and so draws the loader's base seed) before
    ``on_train_start``; the sampler draws its shuffle seed lazily, at the first batch. Iterating a copy of the
    sampler from the current random state therefore reproduces the first epoch's order."""
    memo = {id(dataset): dataset}  # share the dataset (possibly large), copy the sampler state
    source = loader.batch_sampler if loader.batch_sampler is not None else loader.sampler
    try:
        sampler = copy.deepcopy(source, memo)
    except Exception as err:  # a sampler that cannot be copied: never iterate the trainer's own sampler
        raise ValueError(
            f"ZeroCostProxyCallback: cannot copy the train dataloader's sampler "
            f"({type(err).__name__}: {err}); pass probe_batch=(inputs, targets) (or a callable "
            "returning it)"
        ) from err
    if probe_seed is not None:
        for holder in (sampler, getattr(sampler, "sampler", None)):
            if isinstance(getattr(holder, "generator", None), torch.Generator):
                holder.generator.manual_seed(probe_seed)
    batched = loader.batch_sampler is not None
    indices: list[Any] = []
    batches = 0
    for item in sampler:
        indices.extend(item if batched else [item])
        batches += 1
        if len(indices) >= batch_size:
            break
    if len(indices) < batch_size:
        raise ValueError(
            f"ZeroCostProxyCallback: batch_size={batch_size} but one epoch of the train "
            f"dataloader holds only {len(indices)} samples; lower the callback's batch_size"
        )
    return indices[:batch_size], (batches if batched else None)


def draw_iterable(loader: DataLoader, dataset: IterableDataset, collate: Callable, batch_size: int) -> tuple[Any, int]:
    """``(collated batch, loader batches)``: the first ``batch_size`` samples of a fresh iterator of an iterable
    dataset (never the trainer's iterator). Assumes ``iter(dataset)`` restarts from the beginning, as for ordinary
    iterable datasets."""
    if loader.batch_size is None:
        raise ValueError(
            "ZeroCostProxyCallback: the iterable train dataset yields whole batches "
            "(batch_size=None); pass probe_batch=(inputs, targets) (or a callable returning it)"
        )
    samples = []
    for sample in dataset:
        samples.append(sample)
        if len(samples) == batch_size:
            break
    if len(samples) < batch_size:
        raise ValueError(
            f"ZeroCostProxyCallback: batch_size={batch_size} but the iterable train "
            f"dataset yielded only {len(samples)} samples"
        )
    return collate(samples), math.ceil(batch_size / loader.batch_size)


def seed_all(seed: int) -> None:
    """Seed torch (all devices), numpy and python ``random``; only ever called inside ``isolate_rng``."""
    import random

    import numpy as np

    torch.manual_seed(seed)
    np.random.seed(seed % 2**32)
    random.seed(seed)
