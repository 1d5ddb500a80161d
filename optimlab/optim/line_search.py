"""The strong-Wolfe line search of L-BFGS: bracket, then zoom, trial steps by cubic interpolation.

Along a direction d from w, with phi(t) = f(w + t d) and phi'(t) = g(w + t d)^T d, a step t
satisfies the strong Wolfe conditions when

    phi(t) <= phi(0) + c1 t phi'(0)        (sufficient decrease, "Armijo")
    |phi'(t)| <= c2 |phi'(0)|              (curvature: the slope has flattened enough)

The search follows Nocedal & Wright's Algorithms 3.5 (bracketing) and 3.6 (zoom), with the
details of minFunc that torch.optim.LBFGS also uses, so both make the same decisions.
Values are kept as the 0-d tensors or floats they arrive as, for bit-for-bit agreement.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any, Callable

from torch import Tensor


@dataclass
class LinePoint:
    """One evaluated point on the line: step t, value phi(t), gradient g, slope phi'(t) = g^T d."""

    t: Any
    f: Any
    g: Tensor
    gtd: Any = None


def _sqrt(value: Any) -> Any:
    return value.sqrt() if isinstance(value, Tensor) else math.sqrt(value)


def cubic_minimizer(a: LinePoint, b: LinePoint, bounds: tuple[Any, Any] | None = None) -> Any:
    """The minimizer of the cubic through (t, f, slope) at a and b, clipped to ``bounds``.

    With d1 = phi'_a + phi'_b - 3 (f_a - f_b) / (t_a - t_b) and d2 = sqrt(d1^2 - phi'_a phi'_b),
    the minimizer is t_b - (t_b - t_a) (phi'_b + d2 - d1) / (phi'_b - phi'_a + 2 d2) (for
    t_a <= t_b; symmetric otherwise). Without a real minimizer (d1^2 < phi'_a phi'_b) the midpoint
    of the bounds is returned. ``bounds`` default to the interval between a and b.
    """
    if bounds is None:
        bounds = (a.t, b.t) if a.t <= b.t else (b.t, a.t)
    low, high = bounds
    d1 = a.gtd + b.gtd - 3 * (a.f - b.f) / (a.t - b.t)
    d2_square = d1**2 - a.gtd * b.gtd
    if not d2_square >= 0:
        return (low + high) / 2.0
    d2 = _sqrt(d2_square)
    near, far = (a, b) if a.t <= b.t else (b, a)
    t_min = far.t - (far.t - near.t) * ((far.gtd + d2 - d1) / (far.gtd - near.gtd + 2 * d2))
    return min(max(t_min, low), high)


def strong_wolfe_search(
    evaluate: Callable[[Any, Tensor], tuple[float, Tensor]],
    t: Any,
    d: Tensor,
    f: float,
    g: Tensor,
    gtd: Any,
    c1: float = 1e-4,
    c2: float = 0.9,
    tolerance_change: float = 1e-9,
    max_ls: int = 25,
) -> tuple[float, Tensor, Any, int]:
    """A step t along d satisfying the strong Wolfe conditions; returns (f_t, g_t, t, evaluations).

    ``evaluate(t, d)`` returns (f, g) at w + t d. ``f, g, gtd`` are phi(0), its gradient and
    phi'(0) < 0. At most ``max_ls`` further evaluations after the first; if the conditions are
    not met by then, the lowest point found is returned.
    """
    origin = LinePoint(0, f, g.clone(), gtd)
    f_new, g_new = evaluate(t, d)
    trial = LinePoint(t, f_new, g_new, g_new.dot(d))
    evaluations, iterations = 1, 0

    def armijo_fails(point: LinePoint) -> bool:
        return point.f > f + c1 * point.t * gtd

    def wolfe_curvature_holds(point: LinePoint) -> bool:
        return abs(point.gtd) <= -c2 * gtd

    # 1. bracketing: grow t until an interval [previous, trial] must contain an acceptable step
    previous, bracket, done = origin, None, False
    while iterations < max_ls:
        if armijo_fails(trial) or (iterations > 1 and trial.f >= previous.f):
            bracket = [previous, replace(trial, g=trial.g.clone())]
            break
        if wolfe_curvature_holds(trial):
            bracket, done = [trial], True
            break
        if trial.gtd >= 0:  # the slope turned: a minimizer lies between previous and trial
            bracket = [previous, replace(trial, g=trial.g.clone())]
            break
        # extrapolate: somewhere in [t + 0.01 (t - t_prev), 10 t]
        next_t = cubic_minimizer(previous, trial, bounds=(trial.t + 0.01 * (trial.t - previous.t), trial.t * 10))
        previous = replace(trial, g=trial.g.clone())
        f_new, g_new = evaluate(next_t, d)
        trial = LinePoint(next_t, f_new, g_new, g_new.dot(d))
        evaluations += 1
        iterations += 1
    if iterations == max_ls:  # out of evaluations: the best of the start and the last trial
        bracket = [replace(origin, gtd=None), replace(trial, gtd=None)]

    # 2. zoom: shrink the bracket around an acceptable step
    low, high = (0, 1) if bracket[0].f <= bracket[-1].f else (1, 0)
    insufficient_progress = False
    while not done and iterations < max_ls:
        if abs(bracket[1].t - bracket[0].t) * d.abs().max() < tolerance_change:
            break  # the bracket is too small to matter
        new_t = cubic_minimizer(bracket[0], bracket[1])
        new_t, insufficient_progress = _keep_away_from_ends(new_t, bracket, insufficient_progress)
        f_new, g_new = evaluate(new_t, d)
        point = LinePoint(new_t, f_new, g_new.clone(), g_new.dot(d))
        evaluations += 1
        iterations += 1
        if armijo_fails(point) or point.f >= bracket[low].f:
            bracket[high] = point  # the new point is too high: it replaces the high end
            low, high = (0, 1) if bracket[0].f <= bracket[1].f else (1, 0)
        else:
            if wolfe_curvature_holds(point):
                done = True
            elif point.gtd * (bracket[high].t - bracket[low].t) >= 0:
                bracket[high] = bracket[low]  # the slope points away from high: old low becomes high
            bracket[low] = point
    best = bracket[low]
    return best.f, best.g, best.t, evaluations


def _keep_away_from_ends(t: Any, bracket: list[LinePoint], insufficient_progress: bool) -> tuple[Any, bool]:
    """Move a trial within 10% of the bracket's ends to 10% inside, if progress was already poor.

    A trial close to an end of the bracket shrinks it little; the first time this happens it is
    allowed (``insufficient_progress`` is set), the second time, or when t lies on or outside an
    end, t moves to 10% of the bracket's length inside the nearer end.
    """
    left, right = min(p.t for p in bracket), max(p.t for p in bracket)
    margin = 0.1 * (right - left)
    if not min(right - t, t - left) < margin:
        return t, False
    if insufficient_progress or t >= right or t <= left:
        return (right - margin if abs(t - right) < abs(t - left) else left + margin), False
    return t, True
