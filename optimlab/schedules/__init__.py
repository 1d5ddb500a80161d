"""Learning-rate schedules as pure functions of the step.

A schedule is a callable ``factor(step) -> float``: the multiplier applied to each param group's
base lr at optimizer step ``step`` (0 for the first step). Because it is a pure function,
resuming recomputes the lr from the step instead of replaying updates.

* :mod:`.decay`: constant, step, multi-step, exponential, inverse-time (1/t), polynomial, cosine,
  linear;
* :mod:`.cyclic`: cosine with warm restarts (SGDR), triangular/cyclic, one-cycle (for these the
  group's lr is the *peak* lr);
* :mod:`.compose`: linear warmup before any schedule, durations in epochs;
* :mod:`.parse`: spec strings (``cosine:total=1000,warmup=100``, ``step:every=10,factor=0.5``);
* :mod:`.adapter`: ``LRSchedule(optimizer, schedule)`` drives any optimizer (optimlab's or
  torch.optim's) with torch's LRScheduler conventions: ``step()``, ``get_last_lr()``,
  ``state_dict()``.
"""

from __future__ import annotations

from .adapter import LRSchedule, Schedule
from .compose import InEpochs, Warmup, cycle_starts, snapshot_steps
from .cyclic import CosineRestarts, Cyclic, OneCycle
from .decay import Constant, Cosine, Exponential, InverseTime, Linear, MultiStep, Polynomial, StepDecay
from .parse import SCHEDULES, parse_schedule

__all__ = [
    "Schedule", "SCHEDULES", "parse_schedule", "LRSchedule",
    "Constant", "StepDecay", "MultiStep", "Exponential", "InverseTime", "Polynomial", "Cosine", "Linear",
    "CosineRestarts", "Cyclic", "OneCycle", "Warmup", "InEpochs", "cycle_starts", "snapshot_steps",
]
