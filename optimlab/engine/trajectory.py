"""Run an optimizer on a landscape and record its trajectory: spec + landscape -> Trace.

Row 0 is the start; row k is the point after k optimizer steps:
``{"step": k, "x": [x1, x2], "f": f(x), "grad_norm": ||grad f(x)||, "lr": lr of step k, "time": s}``
(``grad_norm`` is of the exact gradient, even when the optimizer is fed a noisy one; ``time`` is
the wall time since the start in seconds). A run that diverges (non-finite or exploding f, see
:mod:`optimlab.engine.divergence`) ends with outcome "diverged" at that step instead of raising.

Outcomes (``Trace.outcome``): "converged" (f within ``tol`` of the global minimum), "diverged",
"unbounded below" (f fell without bound on a landscape that has no minimum, e.g. after escaping
the saddle of x^2 - y^2), "in a local minimum", "stalled at a saddle" (near a critical point that
is no minimum), "still descending (slow)" (f fell at every step but did not converge), or
"completed" (the budget ran out elsewhere: bouncing, or wandering with noise).
"""

from __future__ import annotations

import math
import time
from typing import Any, Sequence

import torch
from torch import Tensor

from ..landscapes import Landscape, get_landscape
from ..optim.beyond import evaluation_weights, is_schedule_free
from ..optim.registry import create, get_entry
from ..schedules import LRSchedule, parse_schedule
from ..spec import Spec, parse_spec
from ..trace import COMPLETED, CONVERGED, DIVERGED, Trace
from .divergence import has_diverged

LOCAL_MINIMUM = "in a local minimum"
STALLED_AT_SADDLE = "stalled at a saddle"
SLOW = "still descending (slow)"
UNBOUNDED_BELOW = "unbounded below"  # f fell past -1e6 max(|f(x0)|, 1) where f has no minimum
NEAR_FRACTION = 0.05  # "near" a critical point: within 5% of the domain's widest side
SETTLED_GRADIENT = 0.01  # ... with a gradient below 1% of the one at the start


def _start_point(landscape: Landscape, start: Sequence[float] | Tensor | None) -> Tensor:
    point = landscape.start if start is None else start
    values = torch.as_tensor(point, dtype=torch.float64).reshape(-1)
    if values.numel() != landscape.dim or not torch.isfinite(values).all():
        raise ValueError(f"start={list(values.tolist())} must be {landscape.dim} finite number(s) for {landscape.name}")
    return values.clone()


def _evaluate(landscape: Landscape, x: Tensor) -> tuple[float, Tensor]:
    """f(x) and the exact gradient at the current parameter."""
    point = x.detach().clone().requires_grad_(True)
    value = landscape.f(point)
    (grad,) = torch.autograd.grad(value, point)
    return float(value.detach()), grad


def _evaluate_finite(landscape: Landscape, x: Tensor, like: Tensor) -> tuple[float, Tensor]:
    """:func:`_evaluate`, or NaNs where x is no longer finite."""
    if torch.isfinite(x).all():
        return _evaluate(landscape, x)
    return math.nan, torch.full_like(like, math.nan)


def _row(step: int, x: Tensor, f: float, grad: Tensor, lr: float | None, elapsed: float) -> dict[str, Any]:
    return {"step": step, "x": [float(v) for v in x.detach()], "f": f, "grad_norm": float(grad.norm()),
            "lr": lr, "time": elapsed}


MAX_TRAJECTORY_STEPS = 1_000_000  # one row per step is kept: about 0.5 GB at the cap


def end_if_diverged(trace: Trace, landscape: Landscape, step: int, f: float, f0: float) -> bool:
    """True when f has diverged from f0 (the run ends): the trace then reads "unbounded below" if
    it escaped downhill on an f with no minimum (not a failure), else "diverged at step"."""
    if not has_diverged(f, f0):
        return False
    if math.isfinite(f) and f < f0 and landscape.global_min is None:
        trace.outcome = UNBOUNDED_BELOW
        trace.meta["stopped_at"] = step
    else:
        trace.outcome, trace.diverged_at = DIVERGED, step
    return True


def run_trajectory(spec: str | Spec, landscape: Landscape | str, steps: int = 100, *,
                   start: Sequence[float] | Tensor | None = None, schedule: str | Spec | None = None,
                   noise: float = 0.0, seed: int = 0, tol: float = 1e-6,
                   max_seconds: float | None = None) -> Trace:
    """Optimize ``landscape`` from ``start`` with the optimizer ``spec`` for ``steps`` steps.

    Args:
        spec: optimizer spec, e.g. ``"momentum:lr=0.05,momentum=0.9"`` (closure-based optimizers
            such as newton and lbfgs get a closure that re-evaluates f and its gradient).
        landscape: a :class:`Landscape` or spec (``"quadratic:kappa=100"``).
        steps: number of optimizer steps (the Trace has steps + 1 rows unless it diverges).
        start: starting point (default: the landscape's).
        schedule: learning-rate schedule spec (``"exponential:gamma=0.99"``), None for constant.
        noise: std of Gaussian noise added to every gradient component the optimizer sees (default:
            the landscape's own ``noise``); ``seed`` seeds it.
        tol: "converged" means f - f* <= tol at the end (f*: the global minimum value).
        max_seconds: wall-clock budget; the run stops after the step that exceeds it, with
            ``meta["stopped_early"] = True``, and its outcome judges the steps done.
    """
    landscape = get_landscape(landscape)
    if isinstance(steps, bool) or not isinstance(steps, int) or not 1 <= steps <= MAX_TRAJECTORY_STEPS:
        raise ValueError(f"steps={steps!r} must be an integer from 1 to {MAX_TRAJECTORY_STEPS}")
    noise = float(noise or landscape.noise)
    if not math.isfinite(noise) or noise < 0:
        raise ValueError(f"noise={noise!r} must be a finite number >= 0")
    parsed = parse_spec(spec, "optimizer spec") if isinstance(spec, str) else spec
    entry = get_entry(parsed.name)
    x = _start_point(landscape, start).requires_grad_(True)
    optimizer = create(parsed, [x])
    scheduler = LRSchedule(optimizer, parse_schedule(schedule)) if schedule is not None else None
    generator = torch.Generator().manual_seed(seed)

    def noisy(grad: Tensor) -> Tensor:
        if not noise:
            return grad
        return grad + noise * torch.randn(grad.shape, generator=generator, dtype=grad.dtype)

    def closure() -> Tensor:
        optimizer.zero_grad()
        value = landscape.f(x)
        value.backward()
        x.grad = noisy(x.grad)
        return value

    began = time.perf_counter()
    f, grad = _evaluate(landscape, x)
    rows = [_row(0, x, f, grad, None, 0.0)]
    trace = Trace(str(parsed), landscape.spec, rows, meta={
        "landscape": landscape.spec, "start": rows[0]["x"], "steps": steps, "schedule": None if schedule is None
        else str(schedule), "noise": noise, "seed": seed, "tol": tol, "dim": landscape.dim})
    for step in range(1, steps + 1):
        lr = float(optimizer.param_groups[0]["lr"])
        with torch.enable_grad():
            if entry.needs_closure:
                optimizer.step(closure)
            else:
                x.grad = noisy(grad.clone())
                optimizer.step()
        if scheduler is not None:
            scheduler.step()
        f, grad = _evaluate_finite(landscape, x, grad)  # the next step's gradient is taken here
        if is_schedule_free(optimizer):  # record the average x, where it converges, not the gradient point y
            with evaluation_weights(optimizer):
                f, row_grad = _evaluate_finite(landscape, x, grad)
                rows.append(_row(step, x, f, row_grad, lr, time.perf_counter() - began))
        else:
            rows.append(_row(step, x, f, grad, lr, time.perf_counter() - began))
        if end_if_diverged(trace, landscape, step, f, rows[0]["f"]):
            return trace
        if max_seconds is not None and step < steps and rows[-1]["time"] >= max_seconds:
            trace.meta["stopped_early"] = True
            break
    trace.outcome = classify_outcome(trace, landscape, tol)
    return trace


def classify_outcome(trace: Trace, landscape: Landscape, tol: float = 1e-6) -> str:
    """Where a finished run ended; "still descending (slow)" when it is unconverged but f never rose.

    See :func:`_settled_candidate` for the other outcomes. A run is slow when, without gradient
    noise, f fell at every step and the run ended neither converged nor settled (lr too small).
    """
    return classify_outcomes([trace], landscape, tol)[0]


def classify_outcomes(traces: Sequence[Trace], landscape: Landscape, tol: float = 1e-6) -> list[str]:
    """:func:`classify_outcome` of each finished run on one landscape, with one batched Newton search
    for the runs that need the critical-point analysis (a scene costs what one run does)."""
    candidates = [_settled_candidate(trace, landscape, tol) for trace in traces]
    searched = [point for point in candidates if isinstance(point, list)]
    if searched:
        from ..analysis.critical_points import nearest_critical_points  # analysis imports landscapes only
        from .fast_trajectory import analytic_of  # it imports this module

        analytic = analytic_of(landscape)
        gradient = None if analytic is None else (lambda point: analytic(point)[1])
        found = iter(nearest_critical_points(landscape, searched, gradient=gradient))
        candidates = [_judge(trace, landscape, point, next(found), tol) if isinstance(point, list) else point
                      for trace, point in zip(traces, candidates)]
    return [SLOW if outcome == COMPLETED and _still_descending(trace) else outcome
            for trace, outcome in zip(traces, candidates)]


def _still_descending(trace: Trace) -> bool:
    values = trace.column("f")
    if trace.meta.get("noise") or len(values) < 2:
        return False
    return all(later < earlier for earlier, later in zip(values, values[1:]))


def _settled_candidate(trace: Trace, landscape: Landscape, tol: float) -> str | list[float]:
    """Where a finished (not diverged) run ended, judged with the critical-point analysis.

    Newton on the gradient from the final point (with gradient noise: from the mean of the last
    20% of the iterates) finds the critical point the run is heading to. If that point is within
    5% of the domain's width and the run has settled (without noise: the gradient is below 1% of
    its value at the start, so a run bouncing across a minimum with too large an lr does not
    count), then a global minimum with f - f* <= tol is "converged", another minimum "in a local
    minimum", a saddle, maximum or degenerate point "stalled at a saddle". Otherwise "completed"
    (still descending, bouncing, or far from any critical point).

    Returns the outcome when it is decided without the search, else the point to search from
    (see :func:`_judge`).
    """
    final = trace.steps[-1]
    if landscape.global_min is not None and final["f"] - landscape.global_min <= tol:
        return CONVERGED
    size = max(high - low for low, high in landscape.bounds)
    if trace.meta.get("noise"):  # settled: the last 20% of the iterates jitter around their mean
        tail = [row["x"] for row in trace.steps[-max(1, len(trace.steps) // 5):]]
        point = [sum(coords) / len(tail) for coords in zip(*tail)]
        settled = sum(math.dist(x, point) for x in tail) / len(tail) <= 2 * NEAR_FRACTION * size
    else:
        point = list(final["x"])
        settled = final["grad_norm"] <= SETTLED_GRADIENT * trace.steps[0]["grad_norm"]
    return point if settled else COMPLETED  # unsettled: decided without the Newton search


def _judge(trace: Trace, landscape: Landscape, point: list[float], critical: Any, tol: float) -> str:
    """The outcome of a settled run from the critical point found near its end (None: none)."""
    from ..analysis.hessian import MINIMUM

    size = max(high - low for low, high in landscape.bounds)
    if critical is None or math.dist(point, critical.point) > NEAR_FRACTION * size:
        return COMPLETED
    if critical.kind != MINIMUM:
        return STALLED_AT_SADDLE
    if critical.is_global_min:
        return CONVERGED if trace.steps[-1]["f"] - critical.value <= tol else COMPLETED
    return LOCAL_MINIMUM


def steps_to_tolerance(trace: Trace, tol: float, f_star: float | None) -> int | None:
    """The first step k with |f(x_k) - f*| <= tol (None if never or f* is None; the absolute value
    because for f unbounded below f* is only the lowest minimum in the domain, and f can pass it)."""
    if f_star is None:
        return None
    for row in trace.steps:
        if row["f"] is not None and math.isfinite(row["f"]) and abs(row["f"] - f_star) <= tol:
            return row["step"]
    return None


def distance_to_nearest_minimum(landscape: Landscape, point: Sequence[float]) -> float | None:
    """Euclidean distance from ``point`` to the closest known minimum (None if none is known)."""
    if not landscape.minima or not all(math.isfinite(v) for v in point):
        return None
    return min(math.dist(point, m.point) for m in landscape.minima)


__all__ = ["run_trajectory", "classify_outcome", "classify_outcomes", "steps_to_tolerance", "distance_to_nearest_minimum",
           "LOCAL_MINIMUM", "STALLED_AT_SADDLE", "SLOW", "UNBOUNDED_BELOW"]
