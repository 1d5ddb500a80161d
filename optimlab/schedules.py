"""Learning-rate schedules as pure functions of the step.

A schedule is a callable ``factor(step) -> float``: the multiplier applied to each param
group's base lr at optimizer step ``step`` (0 for the first step). Because it is a pure
function, resuming recomputes the lr from the step instead of replaying updates.
``LRSchedule(optimizer, schedule)`` drives any optimizer (optimlab's or torch.optim's) with
torch's LRScheduler conventions: ``step()``, ``get_last_lr()``, ``state_dict()``.

Spec strings: ``constant``, ``exponential:gamma=0.99``, ``inverse_time:k=0.1`` (1/t decay),
``step:every=10,factor=0.5``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from torch.optim import Optimizer

from .optim.validate import check_nonnegative, check_positive_int, check_unit_interval
from .spec import Spec, parse_spec

Schedule = Callable[[int], float]


@dataclass(frozen=True)
class Constant:
    """eta_t = eta_0."""

    def __call__(self, step: int) -> float:
        return 1.0


@dataclass(frozen=True)
class StepDecay:
    """eta_t = eta_0 * factor^floor(t / every)  (torch StepLR)."""

    every: int
    factor: float = 0.1

    def __post_init__(self) -> None:
        check_positive_int("every", self.every)
        check_nonnegative("factor", self.factor)

    def __call__(self, step: int) -> float:
        return self.factor ** (step // self.every)


@dataclass(frozen=True)
class Exponential:
    """eta_t = eta_0 * gamma^t = eta_0 * e^(-k t) with k = -ln(gamma)  (torch ExponentialLR)."""

    gamma: float

    def __post_init__(self) -> None:
        check_unit_interval("gamma", self.gamma, closed_right=True)

    def __call__(self, step: int) -> float:
        return self.gamma**step


@dataclass(frozen=True)
class InverseTime:
    """eta_t = eta_0 / (1 + k t)^power: the notes' 1/t decay (power 1) and D2L's polynomial decay."""

    k: float
    power: float = 1.0

    def __post_init__(self) -> None:
        check_nonnegative("k", self.k)
        check_nonnegative("power", self.power)

    def __call__(self, step: int) -> float:
        return (1 + self.k * step) ** -self.power


SCHEDULES: dict[str, Callable[..., Schedule]] = {
    "constant": Constant,
    "step": StepDecay,
    "exponential": Exponential,
    "inverse_time": InverseTime,
}


def parse_schedule(spec: str | Spec | None) -> Schedule:
    """A schedule from a spec string such as ``"step:every=10,factor=0.5"`` (None: constant)."""
    if spec is None:
        return Constant()
    parsed = parse_spec(spec, "schedule spec") if isinstance(spec, str) else spec
    try:
        factory = SCHEDULES[parsed.name]
    except KeyError:
        raise ValueError(f"unknown schedule {parsed.name!r}; choose one of: {', '.join(SCHEDULES)}") from None
    try:
        return factory(**parsed.kwargs)
    except TypeError as error:
        raise ValueError(f"bad arguments for schedule {parsed.name!r}: {error}") from None


class LRSchedule:
    """Sets ``group['lr'] = base_lr * schedule(step)`` for every group; torch LRScheduler conventions.

    The lr for the first step is set at construction (``last_epoch = 0``), and each ``step()``
    after ``optimizer.step()`` advances it, as with torch's schedulers.
    """

    def __init__(self, optimizer: Optimizer, schedule: Schedule, last_epoch: int = -1) -> None:
        self.optimizer = optimizer
        self.schedule = schedule
        if last_epoch == -1:
            for group in optimizer.param_groups:
                group.setdefault("initial_lr", group["lr"])
        self.base_lrs = [group["initial_lr"] for group in optimizer.param_groups]
        self.last_epoch = last_epoch
        self.step()

    def get_last_lr(self) -> list[float]:
        return list(self._last_lr)

    def step(self) -> None:
        self.last_epoch += 1
        factor = self.schedule(self.last_epoch)
        for group, base_lr in zip(self.optimizer.param_groups, self.base_lrs):
            group["lr"] = base_lr * factor
        self._last_lr = [group["lr"] for group in self.optimizer.param_groups]

    def state_dict(self) -> dict[str, Any]:
        return {"last_epoch": self.last_epoch, "base_lrs": list(self.base_lrs)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Resume: the lr is recomputed from the step, never replayed."""
        self.base_lrs = list(state["base_lrs"])
        self.last_epoch = state["last_epoch"] - 1
        self.step()


def lr_at(schedule: Schedule, base_lr: float, step: int) -> float:
    return base_lr * schedule(step)


__all__ = ["Schedule", "SCHEDULES", "parse_schedule", "LRSchedule", "lr_at"]
