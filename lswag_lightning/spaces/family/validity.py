"""Whether one combination of a config space builds, decided on the ``meta`` device, and why a family mostly does
not.

A combination is *valid* when the callable returns an ``nn.Module`` on the meta device (no memory, no
initialisation cost) and that module maps one image ``(1, in_chans, img_size, img_size)`` to a logits tensor
``(1, num_classes)`` there (shape propagation only). Code that cannot run on the meta device (``.item()`` in
``__init__``, an operator without a meta kernel), and a module holding a zero-size weight (shape propagation passes
a convolution of width 0; the CPU kernel refuses it), is retried on the CPU, whose verdict then stands.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import nn

from lswag_lightning.spaces.base import count_parameters


@dataclass(frozen=True)
class Verdict:
    """``ok``: the combination builds and gives logits; ``reason``: why not, in one line ('' when ok);
    ``params``: trainable parameters (None when the module was not built)."""

    ok: bool
    reason: str = ""
    params: int | None = None


def one_line(err: BaseException, limit: int = 300) -> str:
    """``"Type: message"`` on one line, at most ``limit`` characters."""
    text = " ".join(f"{type(err).__name__}: {err}".split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _meta_specific(err: BaseException) -> bool:
    """An error of running on the meta device itself rather than of the combination."""
    return isinstance(err, NotImplementedError) or "meta" in str(err).lower()


def measure(make: Callable[[], nn.Module], in_chans: int, img_size: int, num_classes: int | None) -> Verdict:
    """The :class:`Verdict` of ``make()`` (a no-argument build of one combination); ``num_classes`` None skips the
    check of the logits' width (the callable does not take ``num_classes``)."""
    try:
        with torch.device("meta"):
            verdict = _build_and_forward(make, in_chans, img_size, num_classes)
        if verdict is not None:
            return verdict
    except Exception as err:  # any error of the user's code marks the combination invalid
        if not _meta_specific(err):
            return Verdict(False, one_line(err))
    try:
        with torch.random.fork_rng(devices=[]):
            return _build_and_forward(make, in_chans, img_size, num_classes, meta=False)
    except Exception as err:  # the CPU verdict stands
        return Verdict(False, one_line(err))


def _build_and_forward(
    make: Callable[[], nn.Module], in_chans: int, img_size: int, num_classes: int | None, meta: bool = True
) -> Verdict | None:
    """Build, count, run one image; None when the forward needs the CPU (meta-specific failure)."""
    model = make()
    if not isinstance(model, nn.Module):
        return Verdict(False, f"the callable returned a {type(model).__name__}, not an nn.Module")
    params = count_parameters(model)
    try:
        with torch.no_grad():
            out = model.eval()(torch.zeros(1, in_chans, img_size, img_size))
    except Exception as err:  # any error of the user's forward marks the combination invalid
        if meta and _meta_specific(err):
            return None
        return Verdict(False, one_line(err), params)
    if not isinstance(out, torch.Tensor):
        return Verdict(False, f"forward returned a {type(out).__name__}, not a logits tensor", params)
    if meta and any(p.numel() == 0 for p in model.parameters()):
        return None  # shape propagation accepts zero-size weights (a width of 0) that the CPU kernels refuse
    if num_classes is not None and tuple(out.shape) != (1, num_classes):
        return Verdict(
            False, f"forward returned shape {tuple(out.shape)} for one image, expected (1, {num_classes})", params
        )
    return Verdict(True, "", params)


def most_involved(reasons: Sequence[str], arguments: Sequence[str]) -> tuple[list[str], int]:
    """``(arguments, count)``: the arguments named (as whole words) in the most failure ``reasons``, all of them on
    a tie, in the order given; ``([], 0)`` when no reason names one."""
    counts = Counter()
    for reason in reasons:
        for name in dict.fromkeys(arguments):
            if re.search(rf"(?<![A-Za-z0-9_]){re.escape(name)}(?![A-Za-z0-9_])", reason):
                counts[name] += 1
    if not counts:
        return [], 0
    top = max(counts.values())
    return [n for n in dict.fromkeys(arguments) if counts[n] == top], top


def most_common(reasons: Sequence[str]) -> str:
    """The most frequent failure reason ('' when there is none)."""
    return Counter(reasons).most_common(1)[0][0] if reasons else ""
