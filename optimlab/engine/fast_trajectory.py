"""The engine's trajectory run without torch in the loop: the same rules, on plain floats.

:func:`run_trajectory` of :mod:`optimlab.engine.trajectory` steps a real optimizer on a 2-element
tensor; each step costs ~0.6 ms of torch dispatch and autograd for 2 numbers. The playground needs a
scene (3 optimizers x 500 steps) in a few milliseconds, so :func:`run_fast_trajectory` runs the
*same* update rules (``apply_rule`` of the optimizer built by the registry, which calls
:mod:`optimlab.optim.rules`) on :class:`Coordinates`, a duck tensor holding a list of Python floats
that implements exactly the in-place tensor methods the rules use, with torch's operation order
(``lerp_``, ``addcmul_``, ``addcdiv_``, ...). Gradients come from closed forms
(:data:`ANALYTIC`, checked against autograd by the tests); the learning rate from the optimizer's
own param group driven by :class:`~optimlab.schedules.LRSchedule`; gradient noise from the same
``torch.Generator`` draws. The result is the same :class:`~optimlab.trace.Trace`, row for row, as
the reference run, to rounding (tests: rtol 1e-12 in float64, every landscape and rule optimizer).

Closure optimizers (newton, lbfgs) and landscapes without a closed form go to the reference run.
"""

from __future__ import annotations

import math
import time
from typing import Any, Callable, Sequence

import torch
from torch import Tensor

from ..landscapes import Landscape, get_landscape
from ..optim.registry import create, get_entry
from ..schedules import LRSchedule, parse_schedule
from ..spec import Spec, parse_spec
from ..trace import Trace
from .trajectory import _start_point, classify_outcomes, end_if_diverged, run_trajectory


class Coordinates:
    """A float64 vector as a list of Python floats, with the tensor methods of optimlab.optim.rules.

    In-place methods (trailing ``_``) mutate and return self, as torch's do; each computes in the
    order torch's CPU kernels write it (``addcmul``: self + value * t1 * t2; ``addcdiv``:
    self + value * t1 / t2; ``lerp``: torch's two-branch formula), so results agree to rounding.
    ``torch.zeros_like``/``empty_like``/``full_like`` work on it through ``__torch_function__``.
    """

    __slots__ = ("values",)
    is_sparse = False  # the optimizers ask before choosing their path (sparse gradients step per tensor)

    def __init__(self, values: list[float]) -> None:
        self.values = values

    # -- torch interop -------------------------------------------------------------------------
    @classmethod
    def __torch_function__(cls, func: Callable, types: Any, args: tuple = (), kwargs: dict | None = None) -> Any:
        kwargs = kwargs or {}
        like = args[0]
        if func in (torch.zeros_like, torch.empty_like):
            return cls([0.0] * len(like.values))
        if func is torch.full_like:
            return cls([float(args[1])] * len(like.values))
        raise TypeError(f"Coordinates does not implement {getattr(func, '__name__', func)}")

    def tolist(self) -> list[float]:
        return list(self.values)

    def clone(self) -> "Coordinates":
        return Coordinates(list(self.values))

    @staticmethod
    def _operand(other: Any, n: int) -> list[float]:
        return other.values if isinstance(other, Coordinates) else [float(other)] * n

    # -- out of place -------------------------------------------------------------------------
    def __neg__(self) -> "Coordinates":
        return Coordinates([-v for v in self.values])

    def __truediv__(self, other: Any) -> "Coordinates":
        o = self._operand(other, len(self.values))
        return Coordinates([a / b for a, b in zip(self.values, o)])

    def __mul__(self, other: Any) -> "Coordinates":
        o = self._operand(other, len(self.values))
        return Coordinates([a * b for a, b in zip(self.values, o)])

    __rmul__ = __mul__

    def add(self, other: Any, alpha: float = 1) -> "Coordinates":
        return self.clone().add_(other, alpha=alpha)

    def addcmul(self, t1: "Coordinates", t2: "Coordinates", value: float = 1) -> "Coordinates":
        return self.clone().addcmul_(t1, t2, value=value)

    def sqrt(self) -> "Coordinates":
        return Coordinates([math.sqrt(v) if v >= 0 else math.nan for v in self.values])

    def maximum(self, other: "Coordinates") -> "Coordinates":
        return Coordinates([b if (b > a or b != b) else a for a, b in zip(self.values, other.values)])

    # -- in place -----------------------------------------------------------------------------
    def copy_(self, other: "Coordinates") -> "Coordinates":
        self.values[:] = other.values
        return self

    def mul_(self, other: Any) -> "Coordinates":
        if isinstance(other, Coordinates):
            self.values[:] = [a * b for a, b in zip(self.values, other.values)]
        else:
            self.values[:] = [a * other for a in self.values]
        return self

    def add_(self, other: Any, alpha: float = 1) -> "Coordinates":
        if not isinstance(other, Coordinates):
            self.values[:] = [a + alpha * other for a in self.values]
        elif alpha == 1:
            self.values[:] = [a + b for a, b in zip(self.values, other.values)]
        else:
            self.values[:] = [a + alpha * b for a, b in zip(self.values, other.values)]
        return self

    def sub_(self, other: Any) -> "Coordinates":
        o = self._operand(other, len(self.values))
        self.values[:] = [a - b for a, b in zip(self.values, o)]
        return self

    def sqrt_(self) -> "Coordinates":
        self.values[:] = self.sqrt().values
        return self

    def lerp_(self, end: "Coordinates", weight: float) -> "Coordinates":
        if abs(weight) < 0.5:
            self.values[:] = [a + weight * (b - a) for a, b in zip(self.values, end.values)]
        else:
            rest = 1 - weight
            self.values[:] = [b - (b - a) * rest for a, b in zip(self.values, end.values)]
        return self

    def addcmul_(self, t1: "Coordinates", t2: "Coordinates", value: float = 1) -> "Coordinates":
        self.values[:] = [a + value * b * c for a, b, c in zip(self.values, t1.values, t2.values)]
        return self

    def addcdiv_(self, t1: "Coordinates", t2: "Coordinates", value: float = 1) -> "Coordinates":
        self.values[:] = [a + value * b / c if c else _divide_by_zero(a, value * b)
                          for a, b, c in zip(self.values, t1.values, t2.values)]
        return self


def _divide_by_zero(base: float, numerator: float) -> float:
    """base + numerator / 0 as IEEE (torch) computes it: +-inf, or nan for 0/0."""
    if numerator == 0 or numerator != numerator:
        return math.nan
    return base + math.copysign(math.inf, numerator)


# -- closed-form values and gradients ------------------------------------------------------------
Analytic = Callable[[list[float]], tuple[float, list[float]]]


def _parameter(landscape: Landscape, name: str, default: float) -> float:
    """A landscape parameter as the factory read it (the spec keeps 'pi' multiples as text)."""
    from ..landscapes import _check_positive

    value = landscape.params.get(name, default)
    try:
        return float(value)
    except (TypeError, ValueError):
        return _check_positive(name, value, landscape.name)


def _rosenbrock(p: list[float]) -> tuple[float, list[float]]:
    x, y = p
    r = y - x * x
    return (1 - x) * (1 - x) + 100 * (r * r), [-2 * (1 - x) - 400 * x * r, 200 * r]


def _himmelblau(p: list[float]) -> tuple[float, list[float]]:
    x, y = p
    a, b = x * x + y - 11, x + y * y - 7
    return a * a + b * b, [4 * x * a + 2 * b, 2 * a + 4 * y * b]


def _beale(p: list[float]) -> tuple[float, list[float]]:
    x, y = p
    y2 = y * y
    y3 = y2 * y
    t1, t2, t3 = 1.5 - x + x * y, 2.25 - x + x * y2, 2.625 - x + x * y3
    return (t1 * t1 + t2 * t2 + t3 * t3,
            [2 * t1 * (y - 1) + 2 * t2 * (y2 - 1) + 2 * t3 * (y3 - 1), 2 * x * (t1 + 2 * t2 * y + 3 * t3 * y2)])


def _rastrigin(p: list[float]) -> tuple[float, list[float]]:
    two_pi = 2 * math.pi
    value = 10 * len(p) + sum(v * v - 10 * math.cos(two_pi * v) for v in p)
    return value, [2 * v + 10 * two_pi * math.sin(two_pi * v) for v in p]


def _cosh(c: float) -> Analytic:
    def cosh(p: list[float]) -> tuple[float, list[float]]:
        try:
            return math.cosh(c * p[0]), [c * math.sinh(c * p[0])]
        except OverflowError:
            return math.inf, [math.copysign(math.inf, c * p[0])]
    return cosh


def _xcos(c: float) -> Analytic:
    def xcos(p: list[float]) -> tuple[float, list[float]]:
        x = p[0]
        return x * math.cos(c * x), [math.cos(c * x) - c * x * math.sin(c * x)]
    return xcos


def _quadratic(kappa: float) -> Analytic:
    return lambda p: ((p[0] * p[0] + kappa * (p[1] * p[1])) / 2, [p[0], kappa * p[1]])


def _tanh(p: list[float]) -> tuple[float, list[float]]:
    t = math.tanh(p[0])
    return t, [1 - t * t]


ANALYTIC: dict[str, Callable[[Landscape], Analytic]] = {
    "xcos": lambda land: _xcos(_parameter(land, "c", math.pi)),
    "cube": lambda land: lambda p: (p[0] * p[0] * p[0], [3 * (p[0] * p[0])]),
    "tanh": lambda land: _tanh,
    "square": lambda land: lambda p: (p[0] * p[0], [2 * p[0]]),
    "cosh": lambda land: _cosh(_parameter(land, "c", 0.5)),
    "bowl": lambda land: lambda p: (p[0] * p[0] + 2 * (p[1] * p[1]), [2 * p[0], 4 * p[1]]),
    "valley": lambda land: lambda p: (0.1 * (p[0] * p[0]) + 2 * (p[1] * p[1]), [0.2 * p[0], 4 * p[1]]),
    "saddle": lambda land: lambda p: (p[0] * p[0] - p[1] * p[1], [2 * p[0], -2 * p[1]]),
    "monkey": lambda land: lambda p: (p[0] * p[0] * p[0] - 3 * p[0] * (p[1] * p[1]),
                                      [3 * (p[0] * p[0]) - 3 * (p[1] * p[1]), -6 * p[0] * p[1]]),
    "rosenbrock": lambda land: _rosenbrock,
    "himmelblau": lambda land: _himmelblau,
    "beale": lambda land: _beale,
    "rastrigin": lambda land: _rastrigin,
    "quadratic": lambda land: _quadratic(_parameter(land, "kappa", 10.0)),
}
"""f and its gradient in closed form, by landscape name (the tests check each against autograd)."""


def analytic_of(landscape: Landscape) -> Analytic | None:
    """The closed-form (f, grad f) of a landscape, or None when it has none here."""
    factory = ANALYTIC.get(landscape.name)
    return factory(landscape) if factory else None


def _safe(analytic: Analytic, point: list[float]) -> tuple[float, list[float]]:
    """(f, grad) at a finite point; an overflow (a run exploding) reads as inf/nan, as in torch."""
    try:
        return analytic(point)
    except OverflowError:
        return math.inf, [math.nan] * len(point)


# The classes whose rules Coordinates has been checked against (tests/test_fast_trajectory.py);
# any other optimizer (torch's other classes, Lion, schedule-free, SOAP...) takes the reference run.
FAST_CLASSES = ("SGD", "Adagrad", "RMSprop", "Adam", "AdamW")


def _fast_rule(name: str) -> bool:
    entry = get_entry(name)
    return not entry.needs_closure and entry.class_path.rpartition(":")[2] in FAST_CLASSES


def can_run_fast(spec: str | Spec, landscape: Landscape | str) -> bool:
    """True when :func:`run_fast_trajectory` runs without falling back to the reference run."""
    parsed = parse_spec(spec, "optimizer spec") if isinstance(spec, str) else spec
    return _fast_rule(parsed.name) and analytic_of(get_landscape(landscape)) is not None


def run_fast_trajectory(spec: str | Spec, landscape: Landscape | str, steps: int = 100, *,
                        start: Sequence[float] | Tensor | None = None, schedule: str | Spec | None = None,
                        noise: float = 0.0, seed: int = 0, tol: float = 1e-6,
                        max_seconds: float | None = None, classify: bool = True) -> Trace:
    """:func:`~optimlab.engine.trajectory.run_trajectory`, same arguments and Trace, ~50x faster.

    The optimizer is built by the registry on a dummy parameter (so its hyperparameters are
    validated and defaulted as always); each step calls its ``apply_rule`` on
    :class:`Coordinates` with the step number, as the optimizer's flat path does.
    ``classify=False`` leaves a finished run's outcome to :func:`classify_scene` (which batches the
    critical-point search of several runs): ``meta["outcome_pending"]`` is then True.
    """
    landscape = get_landscape(landscape)
    parsed = parse_spec(spec, "optimizer spec") if isinstance(spec, str) else spec
    analytic = analytic_of(landscape)
    if not _fast_rule(parsed.name) or analytic is None:
        return run_trajectory(parsed, landscape, steps, start=start, schedule=schedule, noise=noise, seed=seed,
                              tol=tol, max_seconds=max_seconds)
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 0:
        raise ValueError(f"steps={steps!r} must be an integer >= 0")
    noise = float(noise or landscape.noise)
    if not math.isfinite(noise) or noise < 0:
        raise ValueError(f"noise={noise!r} must be a finite number >= 0")
    start_values = _start_point(landscape, start).tolist()
    optimizer = create(parsed, [torch.zeros(landscape.dim, dtype=torch.float64, requires_grad=True)])
    group = optimizer.param_groups[0]
    scheduler = LRSchedule(optimizer, parse_schedule(schedule)) if schedule is not None else None
    generator = torch.Generator().manual_seed(seed)
    x = Coordinates(list(start_values))
    state = optimizer.init_state(x, group)
    state.pop("step", None)  # the step number is passed to the rule, as the flat path does
    rule = optimizer.apply_rule

    began = time.perf_counter()
    f, grad = analytic(x.values)
    f0 = f
    rows = [_row(0, x.values, f, grad, None, 0.0)]
    trace = Trace(str(parsed), landscape.spec, rows, meta={
        "landscape": landscape.spec, "start": rows[0]["x"], "steps": steps, "schedule": None if schedule is None
        else str(schedule), "noise": noise, "seed": seed, "tol": tol, "dim": landscape.dim})
    for step in range(1, steps + 1):
        lr = float(group["lr"])
        if noise:
            draws = torch.randn((landscape.dim,), generator=generator, dtype=torch.float64).tolist()
            seen = Coordinates([g + noise * r for g, r in zip(grad, draws)])
        else:
            seen = Coordinates(list(grad))
        rule(x, seen, state, group, step=float(step))
        if scheduler is not None:
            scheduler.step()
        if _all_finite(x.values):
            f, grad = _safe(analytic, x.values)
        else:
            f, grad = math.nan, [math.nan] * landscape.dim
        rows.append(_row(step, x.values, f, grad, lr, time.perf_counter() - began))
        if end_if_diverged(trace, landscape, step, f, f0):
            return trace
        if max_seconds is not None and step < steps and rows[-1]["time"] >= max_seconds:
            trace.meta["stopped_early"] = True
            break
    if classify:
        trace.outcome = classify_outcomes([trace], landscape, tol)[0]
    else:
        trace.meta["outcome_pending"] = True
    return trace


def classify_scene(traces: Sequence[Trace], landscape: Landscape | str, tol: float = 1e-6) -> None:
    """Set the outcome of every run left pending by ``run_fast_trajectory(..., classify=False)``,
    all in one batched critical-point search."""
    landscape = get_landscape(landscape)
    pending = [trace for trace in traces if trace.meta.pop("outcome_pending", False)]
    for trace, outcome in zip(pending, classify_outcomes(pending, landscape, tol) if pending else []):
        trace.outcome = outcome


def _row(step: int, x: list[float], f: float, grad: list[float], lr: float | None, elapsed: float) -> dict[str, Any]:
    return {"step": step, "x": list(x), "f": f, "grad_norm": math.hypot(*grad), "lr": lr, "time": elapsed}


def _all_finite(values: list[float]) -> bool:
    total = sum(values)  # finite only if every term is (an overflowing sum of finite terms: check each)
    return -math.inf < total < math.inf or all(math.isfinite(v) for v in values)


__all__ = ["Coordinates", "ANALYTIC", "analytic_of", "can_run_fast", "run_fast_trajectory", "classify_scene"]
