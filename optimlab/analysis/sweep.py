"""What a sweep says: learning-rate sensitivity, robustness, search convergence, performance profiles.

Pure functions of plain numbers (lists of (lr, loss) pairs, per-epoch curves), so each has a
closed form to test against.
"""

from __future__ import annotations

import math
import statistics
from typing import Mapping, Sequence


def lr_sensitivity(points: Sequence[tuple[float, float]], bins_per_decade: int = 2) -> list[dict[str, float]]:
    """Bin (lr, final loss) points by log10(lr); per bin the best and median loss.

    Bin k covers log10(lr) in [k/b, (k+1)/b) for b = `bins_per_decade`; a row has ``lr``, the
    geometric mean of the bin's learning rates, the ``best`` loss and the lr it was reached at
    (``best_lr``), the ``median`` loss and the number of points ``n``.
    """
    if bins_per_decade < 1:
        raise ValueError(f"bins_per_decade={bins_per_decade!r} must be >= 1")
    bins: dict[int, list[tuple[float, float]]] = {}
    for lr, loss in points:
        if lr > 0 and loss is not None and math.isfinite(loss):
            bins.setdefault(math.floor(math.log10(lr) * bins_per_decade + 1e-9), []).append((lr, loss))
    rows = []
    for _, members in sorted(bins.items()):
        losses = [loss for _, loss in members]
        centre = math.exp(sum(math.log(lr) for lr, _ in members) / len(members))
        best_lr, best = min(members, key=lambda member: member[1])
        rows.append({"lr": centre, "best": best, "best_lr": best_lr, "median": statistics.median(losses),
                     "n": len(members)})
    return rows


def robust_lr_range(points: Sequence[tuple[float, float]], within: float = 0.1) -> dict[str, float]:
    """The widest run of learning rates around the best one whose loss stays within `within` of it.

    Points are sorted by lr; "good" means ``loss <= (1 + within) * best_loss``. The run is the
    maximal sequence of consecutive good points that contains the best point; its width in
    decades is ``log10(lr_high / lr_low)`` (0 when only the best point qualifies). Returns the
    best lr and loss, the run's ends, the width and the threshold.
    """
    if within < 0:
        raise ValueError(f"within={within!r} must be >= 0")
    finite = sorted((lr, loss) for lr, loss in points if lr > 0 and loss is not None and math.isfinite(loss))
    if not finite:
        raise ValueError("no finite (lr, loss) points to measure robustness on")
    best_index = min(range(len(finite)), key=lambda i: finite[i][1])
    threshold = finite[best_index][1] * (1 + within) if finite[best_index][1] >= 0 else finite[best_index][1] * (1 - within)
    low = high = best_index
    while low > 0 and finite[low - 1][1] <= threshold:
        low -= 1
    while high < len(finite) - 1 and finite[high + 1][1] <= threshold:
        high += 1
    return {"best_lr": finite[best_index][0], "best_loss": finite[best_index][1], "lr_low": finite[low][0],
            "lr_high": finite[high][0], "decades": math.log10(finite[high][0] / finite[low][0]),
            "threshold": threshold, "n_good": high - low + 1, "n": len(finite)}


def best_so_far(values: Sequence[float | None]) -> list[float]:
    """Running minimum of the trial values in order (None/NaN: a trial without a value)."""
    out, best = [], math.inf
    for value in values:
        if value is not None and math.isfinite(value):
            best = min(best, value)
        out.append(best)
    return out


def time_to_target(curve: Sequence[float], target: float, unit: float = 1.0) -> float:
    """``unit * (first 1-based epoch whose value <= target)``, or inf if it never gets there."""
    for epoch, value in enumerate(curve, start=1):
        if value <= target:
            return epoch * unit
    return math.inf


def performance_ratios(times: Mapping[str, Mapping[str, float]]) -> dict[str, dict[str, float]]:
    """``times[task][optimizer]`` -> ratio of each optimizer's time to the task's best time.

    A task no optimizer solved gives every optimizer an infinite ratio.
    """
    ratios: dict[str, dict[str, float]] = {}
    for task, by_optimizer in times.items():
        fastest = min(by_optimizer.values())
        ratios[task] = {opt: t / fastest if math.isfinite(fastest) else math.inf for opt, t in by_optimizer.items()}
    return ratios


def performance_profile(ratios: Mapping[str, Mapping[str, float]], taus: Sequence[float]) -> dict[str, list[float]]:
    """rho_o(tau) = fraction of tasks on which optimizer o's ratio is <= tau (Dolan & More 2002;
    the AlgoPerf benchmark scores optimizers by the area under this curve for tau in [1, 4])."""
    optimizers = sorted({opt for by_opt in ratios.values() for opt in by_opt})
    tasks = list(ratios)
    return {opt: [sum(ratios[t].get(opt, math.inf) <= tau for t in tasks) / len(tasks) for tau in taus]
            for opt in optimizers}


def profile_score(ratios: Mapping[str, Mapping[str, float]], optimizer: str, tau_max: float = 4.0) -> float:
    """The area under rho(tau) for tau in [1, tau_max], divided by (tau_max - 1): each task adds
    ``(tau_max - r) / (tau_max - 1)`` for a ratio r <= tau_max (1 at r = 1), nothing otherwise,
    averaged over the tasks (AlgoPerf's benchmark score)."""
    values = [ratios[t].get(optimizer, math.inf) for t in ratios]
    return sum((tau_max - r) / (tau_max - 1) for r in values if r <= tau_max) / len(values)


def targets_from_best(best_values: Mapping[str, Mapping[str, float]], slack: float = 0.1) -> dict[str, float]:
    """Per task, the target loss: the best final loss any optimizer reached, times (1 + slack)."""
    return {task: min(v.values()) * (1 + slack) for task, v in best_values.items()}
