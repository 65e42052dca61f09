"""One scoring session: validation, isolation, the run of the planned passes, and the failure policy.

The passes and their plan are data (``planner.py``, from the pass registry); this module checks the arguments, runs
the planned passes on an isolated model and reduces their results to each proxy's value.

**Failure policy.** ``score_network`` raises ``ValueError`` only for invalid arguments, found before any pass:
unknown proxies or options, malformed or non-finite inputs, targets that are not one per sample, class labels outside
the model's classes (checked on a one-sample eval-mode forward), an output the adapter cannot read. Targets the
default cross-entropy cannot take (none, regression values, multi-hot labels, token logits (batch, tokens, vocab))
are no error: the proxies that need labels say so and name the fix (``loss_fn=``), and the targets-free values
(``params``, ``flops``, ``vkdnw_layers``, the activation proxies, ...) are computed. Everything that goes wrong inside a
pass, including an exception raised by the user's own modules, becomes the status (``"error: <pass> pass failed:
<Type>: <message>"``, with a fix when one is known) of exactly the proxies that needed that pass; every other proxy
still computes.

Isolation: the session works on one deep copy of the model (``copy_model=True``, default) or on the model itself
with its buffers, modes and ``requires_grad`` flags restored (``copy_model=False``); a compiled model is scored
uncompiled and gradient checkpointing runs as plain calls (``working_model.py`` says why). Gradients are taken with
``torch.autograd.grad``, so no ``.grad`` field is touched. The global RNG (CPU and CUDA) is forked and restored;
every pass starts from the same buffers and the same seed, so a proxy's value does not depend on which other
proxies were requested, nor on whether another proxy failed.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import nn

from lswag_lightning.proxies.coverage import Coverage, ParameterCensus, zero_weight_layers
from lswag_lightning.proxies.forward import (
    IGNORE_INDEX,
    ProbeRunner,
    check_labels_below,
    cross_entropy_layout_problem,
    default_output_adapter,
    is_batch_norm,
)
from lswag_lightning.proxies.layers import count_parameters, weight_modules
from lswag_lightning.proxies.options import ScoringOptions
from lswag_lightning.proxies.planner import check_passes, failure_message, plan_passes
from lswag_lightning.proxies.registry import (
    ProxySpec,
    available_proxies,
    get_proxy,
    loss_needs,
    weight_gradient_needs,
)
from lswag_lightning.proxies.report import ProxyReport
from lswag_lightning.proxies.results import (
    DEGENERATE,
    PARTIAL,
    DegenerateValue,
    ProxyError,
    ProxyOutput,
    SessionContext,
    SessionData,
)
from lswag_lightning.proxies.status_text import one_line
from lswag_lightning.proxies.working_model import checkpoints_run_directly, working_model

log = logging.getLogger(__name__)


def _resolve_proxies(proxies: str | Sequence[str]) -> list[ProxySpec]:
    names = [proxies] if isinstance(proxies, str) else list(proxies)
    if names == ["all"]:
        names = available_proxies()
    if not names:
        raise ValueError(f"no proxy requested; choose from {available_proxies()} (or 'all')")
    seen: dict[str, ProxySpec] = {}
    for name in names:
        if not isinstance(name, str):
            raise ValueError(f"proxy names must be strings, got {name!r}")
        seen.setdefault(name, get_proxy(name))
    return list(seen.values())


def _cuda_devices() -> list[int]:
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        return list(range(torch.cuda.device_count()))
    return []


def _seed_pass(seed: int, devices: list[int]) -> None:
    """Seed the CPU generator and the initialised CUDA generators only (no lazy CUDA seeding that would leak)."""
    torch.random.default_generator.manual_seed(seed)
    for index in devices:
        torch.cuda.default_generators[index].manual_seed(seed)


def _identical_samples(inputs: torch.Tensor) -> bool:
    """Whether every sample equals the first (a probe that cannot show activation patterns)."""
    return inputs.shape[0] > 1 and bool((inputs == inputs[:1]).all())


# ------------------------------------------------------------------------------------------------- session
class ScoringSession:
    """Scores ``proxies`` on ``model`` with one batch; use ``score_network`` rather than this class directly."""

    def __init__(
        self,
        model: nn.Module,
        inputs: torch.Tensor,
        targets: torch.Tensor | None,
        proxies: str | Sequence[str],
        options: ScoringOptions,
    ) -> None:
        if not isinstance(model, nn.Module):
            raise ValueError(f"model must be a torch.nn.Module, got {type(model).__name__}")
        self.model = model
        self.specs = _resolve_proxies(proxies)
        self.options = options
        self.needs = frozenset().union(*(spec.needs for spec in self.specs))
        self.adapter = options.output_adapter or default_output_adapter
        self._validate_inputs(inputs)
        self._validate_targets(targets)
        self.context = SessionContext(
            model=model,
            inputs=self.inputs,
            targets=self.targets,
            options=options,
            batch_size=self.batch_size,
            needs=self.needs,
            proxies={spec.name: spec.needs for spec in self.specs},
        )
        #: needs known to be impossible before any pass (need -> why), e.g. input gradients of token ids.
        self.unavailable: dict[str, str] = check_passes(self.context)
        if self.label_problem is not None:
            self.unavailable.update(self.label_unavailable(self.label_problem))
        self._validate_model()

    # ------------------------------------------------------------------ validation
    def _validate_inputs(self, inputs: Any) -> None:
        """A real, finite tensor with a batch dimension; sets ``batch_size`` (one of K batches for ``"batches"``)."""
        opts = self.options
        if not isinstance(inputs, torch.Tensor):
            raise ValueError(f"inputs must be a tensor of shape (batch, ...), got {type(inputs).__name__}")
        if inputs.ndim < 2 or inputs.shape[0] == 0:
            raise ValueError(f"inputs must have a non-empty batch dimension first, got shape {tuple(inputs.shape)}")
        if inputs.is_complex():
            raise ValueError(f"inputs have the complex dtype {inputs.dtype}; pass real (float or integer) inputs")
        if inputs.is_floating_point():
            finite = torch.isfinite(inputs)
            if not bool(finite.all()):
                bad = int((~finite).sum())
                rows = int((~finite.reshape(inputs.shape[0], -1).all(dim=1)).sum())
                raise ValueError(
                    f"inputs contain {bad} non-finite values (NaN or inf) in {rows} of "
                    f"{inputs.shape[0]} samples; fix the probe batch (the dataset's normalisation, a "
                    "division by zero, a corrupt image) before scoring"
                )
        total = inputs.shape[0]
        if opts.lambda_samples == "batches":
            if total % opts.lambda_k:
                raise ValueError(
                    f"lambda_samples='batches' needs inputs holding lambda_k={opts.lambda_k} equal "
                    f"batches, but {total} samples do not divide by {opts.lambda_k}"
                )
            self.batch_size = total // opts.lambda_k
        else:
            self.batch_size = total
        self.inputs = inputs

    def _validate_targets(self, targets: Any) -> None:
        """One target per input sample; sets ``label_problem`` when the label proxies cannot use these targets.

        A malformed argument (not a tensor, another sample count, a negative class index) raises ``ValueError``.
        Targets the default cross-entropy cannot take (none, floats, multi-hot) are no error: the proxies that need
        labels get a status naming the fix (``loss_fn=``), and every other proxy computes."""
        opts, total = self.options, self.inputs.shape[0]
        needs_labels = [s.name for s in self.specs if s.needs_labels]
        self.label_problem: str | None = None
        if targets is not None:
            if not isinstance(targets, torch.Tensor):
                raise ValueError(f"targets must be a tensor, got {type(targets).__name__}")
            if targets.ndim == 0:
                raise ValueError("targets is a scalar tensor; pass one target per input sample (batch, ...)")
            if targets.shape[0] != total:
                raise ValueError(
                    f"inputs hold {total} samples but targets hold {targets.shape[0]}; pass one label per input sample"
                )
        self.targets = targets
        if not needs_labels:
            return
        if targets is None:
            self.label_problem = (
                f"{needs_labels} need the probe batch's labels and there are none: pass targets (the callback reads "
                "them from batches (x, y, ...), or pass batch_adapter=lambda batch: (inputs, targets))"
            )
        elif opts.loss_fn is None and (
            targets.is_floating_point() or targets.is_complex() or targets.dtype == torch.bool
        ):
            self.label_problem = (
                f"the targets ({tuple(targets.shape)}, {targets.dtype}) are not the class indices the default "
                "cross-entropy takes: pass loss_fn=... (e.g. F.mse_loss for regression, "
                "F.binary_cross_entropy_with_logits for multi-hot labels)"
            )
        elif opts.loss_fn is None and targets.numel():
            lowest = int(targets[targets != IGNORE_INDEX].min()) if bool((targets != IGNORE_INDEX).any()) else 0
            if lowest < 0:
                raise ValueError(
                    f"targets contain the negative label {lowest}; class indices must be in 0..num_classes-1 "
                    f"({IGNORE_INDEX} marks positions the loss ignores)"
                )

    def label_unavailable(self, problem: str) -> dict[str, str]:
        """``labels`` and every requested need computed from the loss -> ``problem``."""
        return {need: problem for need in self.needs & (loss_needs() | {"labels"})}

    def _validate_model(self) -> None:
        gradient_proxies = sorted(s.name for s in self.specs if s.needs & weight_gradient_needs())
        if gradient_proxies and not weight_modules(self.model):
            raise ValueError(
                f"{type(self.model).__name__} has no Conv1d/2d/3d or Linear layer, so the gradient "
                f"proxies {gradient_proxies} have no weights to score"
            )
        try:
            self.device = next(self.model.parameters()).device
            self.dtype = next(p for p in self.model.parameters() if p.is_floating_point()).dtype
        except StopIteration:
            raise ValueError(f"{type(self.model).__name__} has no parameters to score") from None

    # ------------------------------------------------------------------ the check before any pass
    def _preflight(self, work: nn.Module, probe: ProbeRunner) -> bool:
        """One no-grad, eval-mode forward of the first sample, before any pass.

        Raises ``ValueError`` for an output the adapter cannot read or labels at or above the number of classes;
        logits the default cross-entropy cannot take make the label proxies unavailable. Any other exception is left
        to the passes (each reports it for the proxies that need it). Returns whether a BatchNorm layer sees one
        value per channel for a single sample (then per-sample gradients hold the batch statistics fixed; see
        ``forward.py``); True when the forward failed and the model has BatchNorm, so the per-sample pass is safe
        either way.
        """
        norms = [m for m in work.modules() if is_batch_norm(m)]
        single_value: list[bool] = []
        handles = [
            m.register_forward_pre_hook(
                lambda _m, args: single_value.append(args[0].ndim >= 2 and math.prod(args[0].shape[2:]) == 1)
            )
            for m in norms
        ]
        work.eval()
        try:
            with torch.no_grad():
                output = probe.forward(work, self.inputs[:1], probe.targets_at(slice(0, 1)))
        except Exception:  # the passes run the model again and report what fails, per proxy
            log.debug("the one-sample check forward failed; the passes will report it", exc_info=True)
            return bool(norms)
        finally:
            for handle in handles:
                handle.remove()
            work.train()
        try:
            logits = self.adapter(output)
        except ValueError:
            raise
        except Exception as exc:
            raise ValueError(
                f"output_adapter failed on the model output ({type(output).__name__}): "
                f"{type(exc).__name__}: {exc}; it must map the output to a (batch, classes) "
                "tensor"
            ) from exc
        if not isinstance(logits, torch.Tensor):
            raise ValueError(f"output_adapter returned {type(logits).__name__}, not a tensor of logits")
        probe.output_shape = tuple(logits.shape[1:])
        if self.options.loss_fn is None and self.label_problem is None and any(s.needs_labels for s in self.specs):
            problem = cross_entropy_layout_problem(logits, self.targets[:1])  # the one-sample forward's targets
            if problem is not None:  # the label proxies say so; the others compute
                self.label_problem = problem
                self.unavailable.update(self.label_unavailable(problem))
            else:
                check_labels_below(logits.shape[1], self.targets, ValueError)
        return any(single_value)

    # ------------------------------------------------------------------ run
    def run(self) -> ProxyReport:
        session_start = time.perf_counter()
        opts = self.options
        devices = _cuda_devices()
        report = ProxyReport(settings=opts.to_settings())
        report.settings["batch_size"] = self.batch_size
        with (
            torch.random.fork_rng(devices=devices),
            torch.enable_grad(),
            working_model(self.model, opts.copy_model) as work,
            checkpoints_run_directly(),
        ):
            data = SessionData(
                options=opts,
                params=count_parameters(work, opts.params_exclude),
                batch_size=self.batch_size,
                parameter_tensors=len(list(work.parameters())),
                zero_weight_layers=zero_weight_layers(work),
                identical_samples=_identical_samples(self.inputs[: self.batch_size]),
            )
            data.need_seconds["labels"] = 0.0
            if self.inputs.is_floating_point():
                self.inputs = self.inputs.to(device=self.device, dtype=self.dtype)
            else:
                self.inputs = self.inputs.to(device=self.device)
            if self.targets is not None:
                self.targets = self.targets.to(self.device)
            initial_buffers = [(b, b.detach().clone()) for b in work.buffers()]
            probe = ProbeRunner(
                self.inputs,
                self.targets,
                self.batch_size,
                opts,
                self.adapter,
                reseed=lambda: _seed_pass(opts.seed, devices),
                census=ParameterCensus(work),
            )
            probe.single_value_norm = self._preflight(work, probe)
            data.errors.update(self.unavailable)
            for planned in plan_passes(self.context, self.unavailable, probe):
                with torch.no_grad():
                    for buf, saved in initial_buffers:
                        buf.copy_(saved)
                work.train()
                _seed_pass(opts.seed, devices)
                start = time.perf_counter()
                try:
                    planned.run(work, data)
                except Exception as exc:  # the model cannot run this pass: exactly the proxies that need it say why
                    log.debug("%s pass failed", planned.name, exc_info=True)
                    message = failure_message(planned.spec, exc, opts)
                    for need in planned.produces:
                        if need not in data.results:
                            data.errors.setdefault(need, message)
                for need in planned.produces:
                    if need not in data.results and need not in data.errors:  # defensive: never a silent gap
                        data.errors[need] = f"{planned.name} pass did not produce {need}"
                report.passes[planned.name] = time.perf_counter() - start
            for spec in self.specs:
                self._compute(spec, data, report)
        report.total_seconds = time.perf_counter() - session_start
        return report

    def _compute(self, spec: ProxySpec, data: SessionData, report: ProxyReport) -> None:
        keys = (spec.name, *spec.extra_values)
        start = time.perf_counter()
        try:
            missing = [need for need in spec.needs if need in data.errors]
            if missing and not spec.extra_values:
                data.get(missing[0])  # raises the pass's failure (or its degenerate product)
            output = spec.compute(data, self.options)
        except DegenerateValue as exc:  # constant by construction for this model: a status, never a number
            output = ProxyOutput(
                value=math.nan,
                extras={k: math.nan for k in spec.extra_values},
                errors={k: f"{DEGENERATE}{exc}" for k in keys},
            )
        except Exception as exc:  # a reduction that fails on this model's values: the status says why
            message = (
                one_line(str(exc)) if isinstance(exc, ProxyError) else f"{type(exc).__name__}: {one_line(str(exc))}"
            )
            output = ProxyOutput(
                value=math.nan, extras={k: math.nan for k in spec.extra_values}, errors={k: message for k in keys}
            )
        own = time.perf_counter() - start

        def pass_seconds(needs: Sequence[str]) -> float:
            return sum(data.need_seconds.get(need, 0.0) for need in needs)

        values = {spec.name: output.value, **output.extras}
        for key in keys:
            value = float(values.get(key, math.nan))
            report.values[key] = value
            report.higher_is_better[key] = spec.higher_is_better
            needs = output.extra_needs.get(key, tuple(spec.needs))
            report.seconds[key] = pass_seconds(needs) + own
            if key in output.errors:
                error = output.errors[key]
                report.status[key] = error if error.startswith(DEGENERATE) else f"error: {error}"
            elif math.isnan(value):
                report.status[key] = f"nan: {output.notes.get(key, 'the value is not a number')}"
            elif math.isinf(value):
                report.status[key] = f"inf: {output.notes.get(key, 'the value is infinite')}"
            else:
                report.status[key] = self._ok_or_partial(_coverage_of(output, key))
        details = dict(output.details)
        if output.coverage is not None:
            details["coverage"] = (
                output.coverage.details()
                if isinstance(output.coverage, Coverage)
                else {key: coverage.details() for key, coverage in output.coverage.items()}
            )
        if details:
            report.details[spec.name] = details

    def _ok_or_partial(self, coverage: Coverage | None) -> str:
        """``ok``, or ``partial: ...`` for a value measured on less than ``min_coverage`` of the model."""
        shortfall = None if coverage is None else coverage.shortfall(self.options.min_coverage)
        return "ok" if shortfall is None else f"{PARTIAL}{shortfall}"


def _coverage_of(output: ProxyOutput, key: str) -> Coverage | None:
    """The coverage of one value of ``output`` (one for all its keys, or per key)."""
    if output.coverage is None or isinstance(output.coverage, Coverage):
        return output.coverage
    return output.coverage.get(key)


def score_network(
    model: nn.Module,
    inputs: torch.Tensor,
    targets: torch.Tensor | None = None,
    proxies: str | Sequence[str] = ("lswag",),
    *,
    loss_fn: Callable | None = None,
    layer_interval: tuple[int, int] | None = None,
    **options: Any,
) -> ProxyReport:
    """Score an (untrained) network with zero-cost proxies on one batch, leaving the model untouched.

    Args:
        model: any ``nn.Module`` mapping ``inputs`` to logits (see ``output_adapter`` and ``forward_fn``
            otherwise).
        inputs: tensor (batch, ...): real training images (float; moved to the model's device and dtype) or
            integer inputs such as token ids (moved to the model's device, dtype kept; jacov then reports that it
            needs float inputs). Must be finite.
        targets: class indices (batch,) for the default cross-entropy, or anything ``loss_fn`` takes; needed by
            the label-based proxies (lswag, zico, snip, ...).
        proxies: names from ``available_proxies()`` or ``"all"``.
        loss_fn: ``loss_fn(logits, targets) -> scalar`` replacing the default cross-entropy.
        layer_interval: inclusive depth-decile bins (lo, hi), 0..10, of the layers Λ uses (None: all).
        **options: see ``ScoringOptions`` (lambda_samples, lambda_k, lambda_std, psi_layers, activation_points,
            swap_mu, swap_sigma, copy_model, seed, output_adapter, forward_fn, ...).

    Returns:
        a ``ProxyReport``: ``values`` (higher is better unless ``higher_is_better`` says otherwise), ``status``,
        ``seconds``, ``details``. Raises ``ValueError`` only on invalid arguments (found before any pass), naming
        what to change; a failure inside a pass is the status of the proxies that needed it.
    """
    opts = ScoringOptions.from_kwargs(loss_fn=loss_fn, layer_interval=layer_interval, **options)
    return ScoringSession(model, inputs, targets, proxies, opts).run()
