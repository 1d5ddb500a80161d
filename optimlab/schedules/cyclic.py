"""Schedules that rise again: cosine with warm restarts (SGDR), triangular/cyclic, one-cycle.

Convention (differs from torch, which takes absolute lrs): a schedule is a multiplier of the
group's lr, so for the cyclic and one-cycle schedules **the group's lr is the peak (max) lr**
and the low end is a fraction of it:

* ``Cyclic(low=base_lr / max_lr)`` == torch ``CyclicLR(base_lr, max_lr)`` with the optimizer
  built with ``lr=max_lr``;
* ``OneCycle(div=div_factor, final_div=final_div_factor)`` == torch ``OneCycleLR(max_lr)`` with
  the optimizer built with ``lr=max_lr``; it starts at max_lr/div and ends at
  max_lr/(div*final_div).

torch's cyclic schedulers also cycle momentum by default; optimlab's schedules set only the lr
(torch's ``cycle_momentum=False``).

Each schedule with cycles has ``cycle_starts(total)``: the steps (<= total) at which a new
cycle begins; a snapshot ensemble takes its snapshot after the step just before each of them,
where the lr is at its lowest.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ..optim.validate import check_nonnegative, check_positive_int, check_unit_interval
from .decay import cosine_anneal

CYCLIC_MODES = ("triangular", "triangular2", "exp_range")
ANNEAL_STRATEGIES = ("cos", "linear")


@dataclass(frozen=True)
class CosineRestarts:
    """SGDR: cosine from 1 to ``final`` over a cycle, then restart at 1; cycle i lasts period * mult^i.

    eta_t = eta_0 * (final + (1 - final) * (1 + cos(pi * T_cur / T_i)) / 2), T_cur the steps since
    the last restart, T_i the current cycle's length
    (torch CosineAnnealingWarmRestarts(T_0=period, T_mult=mult, eta_min=final * eta_0)).
    """

    period: int
    mult: int = 1
    final: float = 0.0

    def __post_init__(self) -> None:
        check_positive_int("period", self.period)
        check_positive_int("mult", self.mult)
        check_nonnegative("final", self.final)

    def cycle_of(self, step: float) -> tuple[float, int]:
        """(start step, length) of the cycle that contains ``step``."""
        if self.mult == 1:
            return step - step % self.period, self.period
        start, length = 0, self.period
        while step >= start + length:
            start, length = start + length, length * self.mult
        return start, length

    def __call__(self, step: float) -> float:
        start, length = self.cycle_of(step)
        return cosine_anneal((step - start) / length, self.final)

    def cycle_starts(self, total: int) -> list[int]:
        starts, start, length = [], self.period, self.period * self.mult
        while start <= total:
            starts.append(start)
            start, length = start + length, length * self.mult
        return starts


@dataclass(frozen=True)
class Cyclic:
    """Triangular cyclic lr (Smith 2017): up ``up`` steps from ``low`` to 1, down ``down`` steps back.

    cycle = floor(1 + t / (up + down)),  x = 1 + t / (up + down) - cycle,
    s = x / r if x <= r else (x - 1) / (r - 1)  with r = up / (up + down),
    eta_t = eta_0 * (low + (1 - low) * s * scale),  scale = 1 (triangular),
    1 / 2^(cycle - 1) (triangular2), gamma^t (exp_range)   (torch CyclicLR, see module note).
    """

    up: int
    down: int | None = None
    low: float = 0.1
    mode: str = "triangular"
    gamma: float = 1.0

    def __post_init__(self) -> None:
        check_positive_int("up", self.up)
        if self.down is None:
            object.__setattr__(self, "down", self.up)
        check_positive_int("down", self.down)
        check_unit_interval("low", self.low, closed_right=True)
        check_unit_interval("gamma", self.gamma, closed_right=True)
        if self.mode not in CYCLIC_MODES:
            raise ValueError(f"mode={self.mode!r} must be one of: {', '.join(CYCLIC_MODES)}")

    @property
    def cycle_length(self) -> int:
        return self.up + self.down  # type: ignore[operator]

    def __call__(self, step: float) -> float:
        cycle = math.floor(1 + step / self.cycle_length)
        x = 1.0 + step / self.cycle_length - cycle
        ratio = self.up / self.cycle_length
        height = x / ratio if x <= ratio else (x - 1) / (ratio - 1)
        if self.mode == "triangular":
            scale = 1.0
        elif self.mode == "triangular2":
            scale = 1 / 2.0 ** (cycle - 1)
        else:
            scale = self.gamma**step
        return self.low + (1 - self.low) * height * scale

    def cycle_starts(self, total: int) -> list[int]:
        # the lr is lowest AT step k*(up+down); count that step as the end of cycle k
        return list(range(self.cycle_length + 1, total + 1, self.cycle_length))


@dataclass(frozen=True)
class OneCycle:
    """One-cycle (Smith & Topin 2018): warm up from 1/div to 1, then anneal to 1/(div * final_div).

    Phase ends (steps): pct_start*total - 1 and total - 1; with ``three_phase`` the lr goes
    1/div -> 1 -> 1/div -> 1/(div*final_div) with ends pct_start*total - 1, 2*pct_start*total - 2,
    total - 1. Within a phase, cos: end + (start - end) * (1 + cos(pi * p)) / 2, linear:
    start + (end - start) * p, with p the fraction of the phase done (torch OneCycleLR, see the
    module note). After ``total`` steps the factor stays at the last value.
    """

    total: int
    pct_start: float = 0.3
    div: float = 25.0
    final_div: float = 1e4
    anneal: str = "cos"
    three_phase: bool = False

    def __post_init__(self) -> None:
        check_positive_int("total", self.total)
        check_unit_interval("pct_start", self.pct_start)
        check_nonnegative("div", self.div)
        check_nonnegative("final_div", self.final_div)
        if self.div == 0 or self.final_div == 0:
            raise ValueError(f"div={self.div!r} and final_div={self.final_div!r} must be > 0")
        if self.anneal not in ANNEAL_STRATEGIES:
            raise ValueError(f"anneal={self.anneal!r} must be one of: {', '.join(ANNEAL_STRATEGIES)}")
        ends = [end for end, _, _ in self.phases()]
        if any(b <= a for a, b in zip([0.0] + ends, ends)):
            raise ValueError(f"pct_start={self.pct_start!r} leaves an empty phase for total={self.total!r}")

    def phases(self) -> list[tuple[float, float, float]]:
        """(end step, start factor, end factor) of each phase."""
        initial, peak = 1 / self.div, 1.0
        final = initial / self.final_div
        rise_end = float(self.pct_start * self.total) - 1
        if self.three_phase:
            return [(rise_end, initial, peak), (float(2 * self.pct_start * self.total) - 2, peak, initial),
                    (float(self.total - 1), initial, final)]
        return [(rise_end, initial, peak), (float(self.total - 1), peak, final)]

    def __call__(self, step: float) -> float:
        step = min(step, self.total - 1)
        phase_start = 0.0
        for end, start_factor, end_factor in self.phases():
            if step <= end:
                break
            phase_start = end
        done = (step - phase_start) / (end - phase_start)
        if self.anneal == "cos":
            return end_factor + (start_factor - end_factor) / 2.0 * (math.cos(math.pi * done) + 1)
        return (end_factor - start_factor) * done + start_factor
