"""``ScoringOptions``: every knob of a scoring session, validated once, with the METHOD.md defaults.

Where an option lives (the line): an option read by one proxy or by one pass only (``swap_mu``, ``jacov_jitter``,
``vkdnw_chunk``, ``az_protocol``, ...) is declared by that proxy or pass, in its own module: a small frozen dataclass
registered with it (``register_proxy(..., options=...)`` / ``register_pass(..., options=...)``) that validates its
fields in ``__post_init__`` and documents them in its docstring. An option read by the session itself or by more than
one proxy or pass is a field of ``ScoringOptions``: the model call, the seed, the copy, the gradient samples that Λ,
ZiCo, zico_ps, snip and grad_norm share (``lambda_*``, ``per_sample_count``, ``batch_grads``), the layers and
activation points of Λ, Ψ, SWAP and NASWOT (``layer_interval``, ``psi_layers``, ``activation_points``), and the
parameter count that ``params`` and ``swap_reg`` both read (``params_exclude``). Every option, wherever declared, is
one flat keyword of ``score_network`` and one key of ``ProxyReport.settings``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, fields
from typing import Any, TypeVar

import torch
from torch import nn

from lswag_lightning.proxies.coverage import DEFAULT_MIN_COVERAGE
from lswag_lightning.proxies.layers import validate_interval
from lswag_lightning.proxies.registry import option_groups, option_names, reserve_option_names

Group = TypeVar("Group")


def _default_groups() -> tuple[Any, ...]:
    return tuple(group() for group in option_groups())


@dataclass(frozen=True)
class ScoringOptions:
    """The session-wide scoring knobs, with the METHOD.md defaults, and every registered proxy's or pass's options.

    - ``layer_interval``: inclusive depth-decile bins (lo, hi) of the weight layers Λ sums over; None = all.
    - ``lambda_samples``: what Λ/ZiCo's K gradient samples are: ``"split"`` (the batch cut into K parts, default),
      ``"batches"`` (``inputs`` holds K whole batches; the other proxies use the first), ``"per_sample"``.
    - ``lambda_k``: K for split/batches (default 2). ``lambda_std``: std of the ``"signed"`` gradient (default,
      as ZiCo's code) or of ``"abs"`` |g| (the paper's formula).
    - ``per_sample_count``: the single samples of the per-sample passes (default 32): ``zico_ps``, per-sample Λ, and
      the BatchNorm statistics MeCo holds fixed; session-wide because these three read it.
    - ``batch_grads``: the weight gradient of snip and grad_norm: ``"batch"`` (one forward + backward of the whole
      batch, as NASLib and foresight compute it; default) or ``"split"`` (the mean of the K part gradients of Λ's
      split pass, so no backward of its own: about one training step less when lswag or zico is scored too).
      Without BatchNorm the two are equal (the engine then takes the split pass anyway); with BatchNorm each part
      is normalised by its own statistics, so the values differ slightly (docs/results/cost.md).
      ``"split"`` needs ``lambda_samples="split"``.
    - ``psi_layers``: activation points Ψ counts: ``"upto"`` (bins <= hi of ``layer_interval``, the paper's
      Definition 1, default), ``"interval"`` ([lo, hi]), ``"all"``, or an explicit (lo, hi).
    - ``activation_points``: module names whose outputs are binarised instead of the detected activations.
    - ``params_exclude``: regex of parameter names left out of the parameter count (auxiliary heads), which
      ``params`` reports and ``swap_reg`` regularises with.
    - ``min_coverage``: the share of the model's parameters (0..1, default 0.5) below which a gradient or activation
      proxy's value is reported ``partial: ...`` instead of ``ok`` (``coverage.py`` says why 0.5); session-wide
      because every such proxy reads it.
    - ``copy_model``: score a deep copy (default) or the model itself, restoring its state afterwards.
    - ``seed``: RNG seed of every pass (dropout, drop-path, the authors' random draws), so scores are reproducible.
    - ``output_adapter``: callable mapping the model output to logits (default: tensor, first element of a
      tuple/list, ``["logits"]`` of a mapping, ``.logits``).
    - ``loss_fn``: ``loss_fn(logits, targets) -> scalar``; default cross-entropy on class indices.
    - ``forward_fn``: ``forward_fn(module, inputs, targets) -> output`` for a ``forward`` that needs more than
      the inputs (e.g. ``lambda m, x, y: m(x, y)`` for a sequence-to-sequence model fed its targets); default
      ``module(inputs)``. ``targets`` is the slice of the targets that matches ``inputs`` (None without targets).
    - ``groups``: one instance of each registered option dataclass (``of(cls)`` reads one); built by
      ``from_kwargs`` from the flat keywords. The built-in ones: ``SwapRegOptions`` (swap_mu, swap_sigma),
      ``JacovOptions`` (jacov_jitter), ``AZOptions`` (block_points,
      az_protocol), ``VKDNWOptions`` (vkdnw_fisher, vkdnw_chunk); ``available_options()`` lists every name.
    """

    layer_interval: tuple[int, int] | None = None
    lambda_samples: str = "split"
    lambda_k: int = 2
    lambda_std: str = "signed"
    per_sample_count: int = 32
    batch_grads: str = "batch"
    psi_layers: str | tuple[int, int] = "upto"
    activation_points: tuple[str, ...] | None = None
    params_exclude: str | None = r"(^|\.)aux"
    min_coverage: float = DEFAULT_MIN_COVERAGE
    copy_model: bool = True
    seed: int = 0
    output_adapter: Callable[[Any], torch.Tensor] | None = None
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None
    forward_fn: Callable[[nn.Module, torch.Tensor, torch.Tensor | None], Any] | None = None
    groups: tuple[Any, ...] = field(default_factory=_default_groups, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "layer_interval", validate_interval(self.layer_interval))
        _check_gradient_samples(self)
        psi = self.psi_layers
        if isinstance(psi, str):
            if psi not in ("upto", "interval", "all"):
                raise ValueError(f"psi_layers={psi!r}: use 'upto', 'interval', 'all' or a bin pair (lo, hi)")
        else:
            object.__setattr__(self, "psi_layers", validate_interval(psi, "psi_layers"))
        object.__setattr__(self, "activation_points", module_names(self.activation_points, "activation_points"))
        coverage = self.min_coverage
        if isinstance(coverage, bool) or not isinstance(coverage, (int, float)) or not 0 <= coverage <= 1:
            raise ValueError(f"min_coverage={coverage!r}: need a share of the parameters between 0 and 1")
        for name in ("output_adapter", "loss_fn", "forward_fn"):
            value = getattr(self, name)
            if value is not None and not callable(value):
                raise ValueError(f"{name} must be callable, got {type(value).__name__}")

    @classmethod
    def from_kwargs(cls, **kwargs: Any) -> ScoringOptions:
        """The options from flat keywords (session-wide and every registered group's); ``ValueError`` naming the
        valid options for an unknown name, and the problem and the fix for a bad value."""
        owner = {name: group for group in option_groups() for name in option_names(group)}
        known = set(session_option_names()) | set(owner)
        unknown = sorted(set(kwargs) - known)
        if unknown:
            raise ValueError(f"unknown scoring option(s) {unknown}; valid options: {sorted(known)}")
        session = {name: value for name, value in kwargs.items() if name not in owner}
        groups = tuple(
            group(**{name: value for name, value in kwargs.items() if owner.get(name) is group})
            for group in option_groups()
        )
        return cls(**session, groups=groups)

    def of(self, group: type[Group]) -> Group:
        """The options of one registered group (e.g. ``options.of(VKDNWOptions).vkdnw_chunk``)."""
        for options in self.groups:
            if type(options) is group:
                return options
        if group not in option_groups():
            raise KeyError(f"{group.__name__} is not a registered option group")
        return group()  # registered after these options were made: its defaults

    def psi_interval(self) -> tuple[int, int] | None:
        """The depth-bin interval of the activation points Ψ counts (None = all)."""
        if isinstance(self.psi_layers, tuple):
            return self.psi_layers
        if self.psi_layers == "all" or self.layer_interval is None:
            return None
        lo, hi = self.layer_interval
        return (0, hi) if self.psi_layers == "upto" else (lo, hi)

    def to_settings(self) -> dict[str, Any]:
        """JSON-ready flat view: every option by its keyword (callables by qualified name), then ``psi_interval``."""
        values = {name: getattr(self, name) for name in session_option_names()}
        for group in option_groups():
            options = self.of(group)
            values.update((name, getattr(options, name)) for name in option_names(group))
        out: dict[str, Any] = {}
        for name, value in values.items():
            if callable(value):
                value = getattr(value, "__qualname__", type(value).__name__)
            elif isinstance(value, tuple):
                value = list(value)
            out[name] = value
        out["psi_interval"] = None if self.psi_interval() is None else list(self.psi_interval())
        return out


def session_option_names() -> list[str]:
    """The session-wide option names (``ScoringOptions``' fields but ``groups``)."""
    return [f.name for f in fields(ScoringOptions) if f.name != "groups"]


def available_options() -> dict[str, str]:
    """Every ``score_network`` option -> where it is declared (``"session"``, ``"proxy swap_reg"``, ...)."""
    out = dict.fromkeys(session_option_names(), "session")
    for group, owner in option_groups().items():
        out.update(dict.fromkeys(option_names(group), owner))
    return out


def module_names(points: Any, name: str) -> tuple[str, ...] | None:
    """A list of module names as a tuple (None stays None); ``ValueError`` for a string or a non-string entry."""
    if points is None:
        return None
    if isinstance(points, str) or not all(isinstance(p, str) for p in points):
        raise ValueError(f"{name} must be a list of module names (strings)")
    return tuple(points)


def _check_gradient_samples(opts: ScoringOptions) -> None:
    """The options of the shared gradient passes (Λ, ZiCo, zico_ps, snip, grad_norm)."""
    if opts.lambda_samples not in ("split", "batches", "per_sample"):
        raise ValueError(f"lambda_samples={opts.lambda_samples!r}: use 'split', 'batches' or 'per_sample'")
    if opts.lambda_std not in ("signed", "abs"):
        raise ValueError(f"lambda_std={opts.lambda_std!r}: use 'signed' or 'abs'")
    k = opts.lambda_k
    if not isinstance(k, int) or k < 2:
        raise ValueError(f"lambda_k={k!r}: need an integer >= 2 gradient samples for a standard deviation")
    count = opts.per_sample_count
    if not isinstance(count, int) or count < 2:
        raise ValueError(f"per_sample_count={count!r}: need an integer >= 2")
    if opts.batch_grads not in ("batch", "split"):
        raise ValueError(f"batch_grads={opts.batch_grads!r}: use 'batch' or 'split'")
    if opts.batch_grads == "split" and opts.lambda_samples != "split":
        raise ValueError(
            f"batch_grads='split' takes snip/grad_norm's gradient from Λ's split pass, but "
            f"lambda_samples={opts.lambda_samples!r}; use lambda_samples='split' or "
            "batch_grads='batch'"
        )


reserve_option_names(session_option_names())
