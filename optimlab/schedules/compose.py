"""Compositions: linear warmup before any schedule, and durations counted in epochs.

``Warmup(inner, steps, start)``: the factor rises linearly from ``start`` to 1 over ``steps``
steps, then the inner schedule runs from its own step 0 (torch ``SequentialLR([LinearLR(
start_factor=start, total_iters=steps), inner], milestones=[steps])``). The inner schedule is
shifted, not overlaid: ``cosine:total=1000,warmup=100`` ends its cosine at step 1100.

``InEpochs(inner, steps_per_epoch)``: every duration of the inner schedule counts epochs. By
default the lr changes at epoch boundaries only (inner(floor(t / steps_per_epoch)), torch's
"scheduler.step() once per epoch"); with ``smooth`` it follows the fractional epoch
t / steps_per_epoch (torch's ``scheduler.step(epoch + i / iters)``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from ..optim.validate import check_nonnegative, check_positive_int
from .adapter import Schedule


@dataclass(frozen=True)
class Warmup:
    """factor(t) = start + (1 - start) * t / steps for t < steps, then inner(t - steps)."""

    inner: Schedule
    steps: int
    start: float = 0.0

    def __post_init__(self) -> None:
        check_positive_int("warmup", self.steps)
        check_nonnegative("warmup_start", self.start)

    def __call__(self, step: float) -> float:
        if step < self.steps:
            return self.start + (1 - self.start) * step / self.steps
        return self.inner(step - self.steps)

    def cycle_starts(self, total: int) -> list[int]:
        return [self.steps + start for start in cycle_starts(self.inner, total - self.steps)]


@dataclass(frozen=True)
class InEpochs:
    """factor(t) = inner(floor(t / steps_per_epoch)), or inner(t / steps_per_epoch) when ``smooth``."""

    inner: Schedule
    steps_per_epoch: int
    smooth: bool = False

    def __post_init__(self) -> None:
        check_positive_int("steps_per_epoch", self.steps_per_epoch)

    def __call__(self, step: float) -> float:
        epoch = step / self.steps_per_epoch
        return self.inner(epoch if self.smooth else math.floor(epoch))

    def cycle_starts(self, total: int) -> list[int]:
        epochs = cycle_starts(self.inner, total // self.steps_per_epoch)
        return [epoch * self.steps_per_epoch for epoch in epochs]


def cycle_starts(schedule: Schedule, total: int) -> list[int]:
    """The steps in (0, total] at which ``schedule`` restarts a cycle; [] for schedules without cycles."""
    method = getattr(schedule, "cycle_starts", None)
    return method(total) if method is not None and total > 0 else []


def snapshot_steps(schedule: Schedule, total: int) -> list[int]:
    """The steps after which a snapshot ensemble saves the model: the last step of each cycle."""
    return [start - 1 for start in cycle_starts(schedule, total)]
