"""``ScoringOptions``: every knob of a scoring session, validated once, with the METHOD.md defaults."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, fields
from typing import Any

import torch
from torch import nn

from lswag_lightning.proxies.layers import validate_interval


@dataclass(frozen=True)
class ScoringOptions:
    """Every scoring knob, with the METHOD.md defaults.

    - ``layer_interval``: inclusive depth-decile bins (lo, hi) of the weight layers Λ sums over; None = all.
    - ``lambda_samples``: what Λ/ZiCo's K gradient samples are: ``"split"`` (the batch cut into K parts, default),
      ``"batches"`` (``inputs`` holds K whole batches; the other proxies use the first), ``"per_sample"``.
    - ``lambda_k``: K for split/batches (default 2). ``lambda_std``: std of the ``"signed"`` gradient (default,
      as ZiCo's code) or of ``"abs"`` |g| (the paper's formula).
    - ``per_sample_count``: samples used by ``zico_ps`` and per-sample Λ (default 32).
    - ``batch_grads``: the weight gradient of snip and grad_norm: ``"batch"`` (one forward + backward of the whole
      batch, as NASLib and foresight compute it; default) or ``"split"`` (the mean of the K part gradients of Λ's
      split pass, so no backward of its own: about one training step less when lswag or zico is scored too).
      Without BatchNorm the two are equal (the engine then takes the split pass anyway); with BatchNorm each part
      is normalised by its own statistics, so the values differ slightly (README, "Engine benchmark").
      ``"split"`` needs ``lambda_samples="split"``.
    - ``psi_layers``: activation points Ψ counts: ``"upto"`` (bins <= hi of ``layer_interval``, the paper's
      Definition 1, default), ``"interval"`` ([lo, hi]), ``"all"``, or an explicit (lo, hi).
    - ``activation_points``: module names whose outputs are binarised instead of the detected activations.
    - ``swap_mu``, ``swap_sigma``: regularised SWAP's µ and σ (parameters in thousands); needed by ``swap_reg``.
    - ``jacov_jitter``: k added to the eigenvalues in jacov, -Σ log(v + k) + 1/(v + k) (NASLib's 1e-5).
    - ``params_exclude``: regex of parameter names left out of ``params`` (auxiliary heads).
    - ``copy_model``: score a deep copy (default) or the model itself, restoring its state afterwards.
    - ``seed``: RNG seed of every pass (dropout, drop-path), so scores are reproducible.
    - ``output_adapter``: callable mapping the model output to logits (default: tensor, first element of a
      tuple/list, ``["logits"]`` of a mapping, ``.logits``).
    - ``loss_fn``: ``loss_fn(logits, targets) -> scalar``; default cross-entropy on class indices.
    - ``forward_fn``: ``forward_fn(module, inputs, targets) -> output`` for a ``forward`` that needs more than
      the inputs (e.g. ``lambda m, x, y: m(x, y)`` for a sequence-to-sequence model fed its targets); default
      ``module(inputs)``. ``targets`` is the slice of the targets that matches ``inputs`` (None without targets).
    - ``block_points``: module names whose outputs are AZ-NAS's chain of block features (default: found from the
      network's block container; see ``blocks.py``).
    - ``az_protocol``: ``"cnn"`` (Kaiming re-init, train mode), ``"vit"`` (own init, eval mode) or ``"auto"``.
    - ``vkdnw_fisher``: ``"repo"`` (the authors' (LJ)ᵀ(LJ), default) or ``"exact"`` (Jᵀ L Lᵀ J = Jᵀ Σ J).
    - ``vkdnw_chunk``: samples per vectorised Jacobian chunk (memory: chunk × classes × sampled tensors' sizes).
    """

    layer_interval: tuple[int, int] | None = None
    lambda_samples: str = "split"
    lambda_k: int = 2
    lambda_std: str = "signed"
    per_sample_count: int = 32
    batch_grads: str = "batch"
    psi_layers: str | tuple[int, int] = "upto"
    activation_points: tuple[str, ...] | None = None
    swap_mu: float | None = None
    swap_sigma: float | None = None
    jacov_jitter: float = 1e-5
    params_exclude: str | None = r"(^|\.)aux"
    copy_model: bool = True
    seed: int = 0
    output_adapter: Callable[[Any], torch.Tensor] | None = None
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None
    forward_fn: Callable[[nn.Module, torch.Tensor, torch.Tensor | None], Any] | None = None
    block_points: tuple[str, ...] | None = None
    az_protocol: str = "auto"
    vkdnw_fisher: str = "repo"
    vkdnw_chunk: int = 8

    @classmethod
    def from_kwargs(cls, **kwargs: Any) -> ScoringOptions:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(kwargs) - known)
        if unknown:
            raise ValueError(f"unknown scoring option(s) {unknown}; valid options: {sorted(known)}")
        opts = dict(kwargs)
        opts["layer_interval"] = validate_interval(opts.get("layer_interval"))
        if opts.get("lambda_samples", "split") not in ("split", "batches", "per_sample"):
            raise ValueError(f"lambda_samples={opts['lambda_samples']!r}: use 'split', 'batches' or 'per_sample'")
        if opts.get("lambda_std", "signed") not in ("signed", "abs"):
            raise ValueError(f"lambda_std={opts['lambda_std']!r}: use 'signed' or 'abs'")
        k = opts.get("lambda_k", 2)
        if not isinstance(k, int) or k < 2:
            raise ValueError(f"lambda_k={k!r}: need an integer >= 2 gradient samples for a standard deviation")
        count = opts.get("per_sample_count", 32)
        if not isinstance(count, int) or count < 2:
            raise ValueError(f"per_sample_count={count!r}: need an integer >= 2")
        if opts.get("batch_grads", "batch") not in ("batch", "split"):
            raise ValueError(f"batch_grads={opts['batch_grads']!r}: use 'batch' or 'split'")
        if opts.get("batch_grads") == "split" and opts.get("lambda_samples", "split") != "split":
            raise ValueError(
                f"batch_grads='split' takes snip/grad_norm's gradient from Λ's split pass, but "
                f"lambda_samples={opts['lambda_samples']!r}; use lambda_samples='split' or "
                "batch_grads='batch'"
            )
        psi = opts.get("psi_layers", "upto")
        if isinstance(psi, str):
            if psi not in ("upto", "interval", "all"):
                raise ValueError(f"psi_layers={psi!r}: use 'upto', 'interval', 'all' or a bin pair (lo, hi)")
        else:
            opts["psi_layers"] = validate_interval(psi, "psi_layers")
        if opts.get("activation_points") is not None:
            points = opts["activation_points"]
            if isinstance(points, str) or not all(isinstance(p, str) for p in points):
                raise ValueError("activation_points must be a list of module names (strings)")
            opts["activation_points"] = tuple(points)
        if opts.get("block_points") is not None:
            points = opts["block_points"]
            if isinstance(points, str) or not all(isinstance(p, str) for p in points):
                raise ValueError("block_points must be a list of module names (strings)")
            opts["block_points"] = tuple(points)
        if opts.get("vkdnw_fisher", "repo") not in ("repo", "exact"):
            raise ValueError(f"vkdnw_fisher={opts['vkdnw_fisher']!r}: use 'repo' or 'exact'")
        chunk = opts.get("vkdnw_chunk", 8)
        if isinstance(chunk, bool) or not isinstance(chunk, int) or chunk < 1:
            raise ValueError(f"vkdnw_chunk={chunk!r}: need an integer >= 1")
        if opts.get("az_protocol", "auto") not in ("auto", "cnn", "vit"):
            raise ValueError(f"az_protocol={opts['az_protocol']!r}: use 'auto', 'cnn' or 'vit'")
        for name in ("output_adapter", "loss_fn", "forward_fn"):
            if opts.get(name) is not None and not callable(opts[name]):
                raise ValueError(f"{name} must be callable, got {type(opts[name]).__name__}")
        if opts.get("swap_sigma") is not None and not opts["swap_sigma"] > 0:
            raise ValueError(f"swap_sigma={opts['swap_sigma']!r} must be > 0")
        return cls(**opts)

    def psi_interval(self) -> tuple[int, int] | None:
        """The depth-bin interval of the activation points Ψ counts (None = all)."""
        if isinstance(self.psi_layers, tuple):
            return self.psi_layers
        if self.psi_layers == "all" or self.layer_interval is None:
            return None
        lo, hi = self.layer_interval
        return (0, hi) if self.psi_layers == "upto" else (lo, hi)

    def to_settings(self) -> dict[str, Any]:
        """JSON-ready view (callables by qualified name)."""
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if callable(value):
                value = getattr(value, "__qualname__", type(value).__name__)
            elif isinstance(value, tuple):
                value = list(value)
            out[f.name] = value
        out["psi_interval"] = None if self.psi_interval() is None else list(self.psi_interval())
        return out
