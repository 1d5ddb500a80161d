"""Monotone decay schedules: factor(t), the multiplier of a group's base lr at step t.

Each class is a frozen dataclass whose ``__call__`` is the closed form written in its docstring,
so it is a pure function of the step (t may be a float: a fractional epoch). The torch scheduler
each one matches, step by step, is named in its docstring.
"""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass

from ..optim.validate import check_nonnegative, check_positive_int, check_unit_interval


@dataclass(frozen=True)
class Constant:
    """eta_t = eta_0  (torch ConstantLR with factor=1)."""

    def __call__(self, step: float) -> float:
        return 1.0


@dataclass(frozen=True)
class StepDecay:
    """eta_t = eta_0 * factor^floor(t / every)  (torch StepLR(step_size=every, gamma=factor))."""

    every: int
    factor: float = 0.1

    def __post_init__(self) -> None:
        check_positive_int("every", self.every)
        check_nonnegative("factor", self.factor)

    def __call__(self, step: float) -> float:
        return self.factor ** math.floor(step / self.every)


@dataclass(frozen=True)
class MultiStep:
    """eta_t = eta_0 * factor^(number of milestones <= t)  (torch MultiStepLR(milestones, gamma=factor))."""

    milestones: tuple[int, ...]
    factor: float = 0.1

    def __post_init__(self) -> None:
        milestones = self.milestones if isinstance(self.milestones, (tuple, list)) else (self.milestones,)
        for index, milestone in enumerate(milestones):
            check_positive_int(f"milestones[{index}]", milestone)
        if list(milestones) != sorted(set(milestones)):
            raise ValueError(f"milestones={self.milestones!r} must be strictly increasing")
        object.__setattr__(self, "milestones", tuple(milestones))
        check_nonnegative("factor", self.factor)

    def __call__(self, step: float) -> float:
        return self.factor ** bisect.bisect_right(self.milestones, step)


@dataclass(frozen=True)
class Exponential:
    """eta_t = eta_0 * gamma^t = eta_0 * e^(-k t) with k = -ln(gamma)  (torch ExponentialLR).

    Give ``gamma`` (torch's way) or ``k`` (the notes' alpha_0 * e^(-kt)).
    """

    gamma: float | None = None
    k: float | None = None

    def __post_init__(self) -> None:
        if (self.gamma is None) == (self.k is None):
            raise ValueError(f"exponential needs exactly one of gamma, k (got gamma={self.gamma!r}, k={self.k!r})")
        if self.k is not None:
            object.__setattr__(self, "gamma", math.exp(-check_nonnegative("k", self.k)))
        check_unit_interval("gamma", self.gamma, closed_right=True)

    def __call__(self, step: float) -> float:
        return self.gamma**step


@dataclass(frozen=True)
class InverseTime:
    """eta_t = eta_0 / (1 + k t)^power: the notes' 1/t decay (power 1) and D2L's polynomial decay."""

    k: float
    power: float = 1.0

    def __post_init__(self) -> None:
        check_nonnegative("k", self.k)
        check_nonnegative("power", self.power)

    def __call__(self, step: float) -> float:
        return (1 + self.k * step) ** -self.power


@dataclass(frozen=True)
class Polynomial:
    """eta_t = eta_0 * (final + (1 - final) * (1 - min(t, total) / total)^power).

    With final=0 this is torch PolynomialLR(total_iters=total, power); after ``total`` steps the
    factor stays at ``final``.
    """

    total: int
    power: float = 1.0
    final: float = 0.0

    def __post_init__(self) -> None:
        check_positive_int("total", self.total)
        check_nonnegative("power", self.power)
        check_nonnegative("final", self.final)

    def __call__(self, step: float) -> float:
        remaining = 1 - min(step, self.total) / self.total
        return self.final + (1 - self.final) * remaining**self.power


@dataclass(frozen=True)
class Cosine:
    """eta_t = eta_0 * (final + (1 - final) * (1 + cos(pi * min(t, total) / total)) / 2).

    torch CosineAnnealingLR(T_max=total, eta_min=final * eta_0) for t <= total; afterwards the
    factor stays at ``final`` (torch's closed form would rise again).
    """

    total: int
    final: float = 0.0

    def __post_init__(self) -> None:
        check_positive_int("total", self.total)
        check_nonnegative("final", self.final)

    def __call__(self, step: float) -> float:
        return cosine_anneal(min(step, self.total) / self.total, self.final)


@dataclass(frozen=True)
class Linear:
    """eta_t = eta_0 * (start + (end - start) * min(t, total) / total)  (torch LinearLR)."""

    total: int
    start: float = 1.0 / 3
    end: float = 1.0

    def __post_init__(self) -> None:
        check_positive_int("total", self.total)
        check_nonnegative("start", self.start)
        check_nonnegative("end", self.end)

    def __call__(self, step: float) -> float:
        return self.start + (self.end - self.start) * min(step, self.total) / self.total


def cosine_anneal(fraction: float, final: float) -> float:
    """From 1 at fraction 0 to ``final`` at fraction 1 along half a cosine wave."""
    return final + (1 - final) * (1 + math.cos(math.pi * fraction)) / 2
