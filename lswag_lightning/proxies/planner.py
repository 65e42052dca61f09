"""The plan of a scoring session: which registered passes run, which needs each delivers, and what a failure says.

**Passes as data.** Each pass registers (beside the code that computes it) the needs it produces; each proxy registers
the needs it reduces. The planner walks the registered passes in registration order; each claims, among the wanted
needs no earlier pass claimed, those it delivers this session (by default the wanted needs it produces; a shared pass
may claim more, e.g. the gradient statistics pass serving ``batch_grads`` when that is the same number). Every need
has exactly one delivering pass, and the failure bookkeeping reads the same plan: when a pass fails, exactly the needs
it claimed and did not deliver are marked failed, never a product that another pass delivers.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from torch import nn

from lswag_lightning.proxies.forward import ProbeRunner
from lswag_lightning.proxies.options import ScoringOptions
from lswag_lightning.proxies.registry import PassSpec, registered_passes
from lswag_lightning.proxies.results import (
    DEGENERATE,
    DegenerateValue,
    PassOutput,
    ProxyError,
    SessionContext,
    SessionData,
)
from lswag_lightning.proxies.status_text import one_line, unknown_fix


@dataclass(frozen=True)
class PlannedPass:
    """One pass of a session: its name (as in ``ProxyReport.passes``), the needs it delivers, and how it runs.

    ``run(work, data)`` stores a result (``data.results``) or a reason (``data.errors``) for needs in
    ``produces`` only.
    """

    name: str
    produces: frozenset[str]
    run: Callable[[nn.Module, SessionData], None]
    spec: PassSpec


def planning_order() -> list[PassSpec]:
    """The registered passes in the order they claim needs: those with a ``claims`` function first (a shared pass that
    may serve another pass's need claims it before its producer), then the rest, each in registration order."""
    passes = registered_passes()
    return [spec for spec in passes if spec.claims is not None] + [spec for spec in passes if spec.claims is None]


def relevant_passes(needs: frozenset[str]) -> list[PassSpec]:
    """The registered passes producing at least one of ``needs``, in registration order."""
    return [spec for spec in registered_passes() if needs & set(spec.produces)]


def check_passes(context: SessionContext) -> dict[str, str]:
    """Each relevant pass's checks before any pass: ``ValueError`` for invalid arguments; returns the wanted needs
    that cannot be computed for this input (need -> why)."""
    unavailable: dict[str, str] = {}
    for spec in relevant_passes(context.needs):
        if spec.validate is not None:
            unavailable.update(spec.validate(context))
    return unavailable


def plan_passes(context: SessionContext, unavailable: Mapping[str, str], probe: ProbeRunner) -> list[PlannedPass]:
    """The fewest passes delivering every need; each need is delivered by exactly one pass."""
    needs = frozenset(context.needs - {"labels"} - set(unavailable))
    remaining = needs
    passes: list[PlannedPass] = []
    for spec in planning_order():
        if spec.claims is not None:
            products = frozenset(spec.claims(context, remaining))
        else:
            products = remaining & frozenset(spec.produces)
        if products:
            passes.append(PlannedPass(spec.name, products, _runner(spec, products, probe), spec))
            remaining = remaining - products
    produced = [need for planned in passes for need in planned.produces]
    if sorted(produced) != sorted(needs):  # a planner or pass-declaration bug, never the user's input
        raise RuntimeError(f"internal planning error: needs {sorted(needs)} but passes produce {sorted(produced)}")
    return passes


def _runner(spec: PassSpec, products: frozenset[str], probe: ProbeRunner) -> Callable[[nn.Module, SessionData], None]:
    """``run(work, data)`` for one planned pass: a ``PassOutput`` is stored need by need, any other result is the
    pass's one product; each delivered need costs its own seconds or, by default, the whole pass's."""

    def run(work: nn.Module, data: SessionData) -> None:
        start = time.perf_counter()
        output = spec.run(probe, work, products)
        elapsed = time.perf_counter() - start
        if not isinstance(output, PassOutput):
            if len(products) != 1:
                raise TypeError(f"pass {spec.name!r} delivers {sorted(products)}: return a PassOutput")
            output = PassOutput(results={next(iter(products)): output})
        data.results.update(output.results)
        data.errors.update(output.errors)
        for need in (*output.results, *output.errors):
            data.need_seconds[need] = output.seconds.get(need, elapsed)

    return run


def failure_message(spec: PassSpec, exc: BaseException, options: ScoringOptions) -> str:
    """The status text of a failed pass, one line: the exception type and its message (``one_line``), then a fix:
    the pass's own ``explain`` first, then the fixes common to every pass, else ``unknown_fix``."""
    text = one_line(str(exc))
    if isinstance(exc, DegenerateValue):  # not a failure: the product carries no information (SessionData.get)
        return f"{DEGENERATE}{text}"
    if isinstance(exc, ProxyError):  # the engine's own diagnosis already names the problem and the fix
        return f"{spec.name} pass: {text}"
    message = f"{spec.name} pass failed: {type(exc).__name__}: {text}"
    fix = spec.explain(exc, options) if spec.explain is not None else None
    return f"{message} (fix: {fix or common_fix(exc) or unknown_fix(exc)})"


def common_fix(exc: BaseException) -> str | None:
    """A fix for failures any pass can meet (None when none is known)."""
    text = str(exc)
    if "Expected more than 1 value per channel" in text:
        return "a BatchNorm layer got one value per channel: use a probe batch of at least 2"
    if isinstance(exc, TypeError) and "forward()" in text and "argument" in text:
        return (
            "the model's forward needs more than the inputs: pass forward_fn=lambda module, inputs, targets: "
            "module(inputs, targets), or model_fn returning a wrapper"
        )
    if "use_reentrant=True" in text or "saved tensor hooks" in text:
        return (
            "the model uses gradient checkpointing, which this torch cannot run as plain calls while scoring "
            "(torch.utils.checkpoint._checkpoint_impl is missing): turn checkpointing off for scoring (e.g. "
            "model_fn returning the model with it disabled), or upgrade torch"
        )
    return None
