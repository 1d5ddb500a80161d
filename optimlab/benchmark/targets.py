"""Targets and time to target: the arithmetic of ``optimlab benchmark`` (pure functions).

A target is a validation column (``val_metric`` or ``val_loss``), a value and a direction:
``higher_is_better`` (accuracy: reached when value >= target) or not (loss, bits per character:
reached when value <= target).

Derivation (AlgoPerf's recipe at laptop scale): run the reference optimizer with each
configuration of its grid for the workload's full budget; its best run is the one with the best
validation value at any evaluation; the target is that value relaxed by ``slack``:
``best * (1 - slack)`` when higher is better, ``best * (1 + slack)`` otherwise (for the
non-negative accuracies, losses and bits per character used here).

Time to target of a run: the ``step`` and the training ``time`` (seconds, evaluation excluded)
of its first evaluation row that reaches the target; never reached: (inf, inf). An optimizer's
time on a workload is the fastest of its tuning trials, on each clock separately (AlgoPerf's
external tuning with one study).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, Iterable, Mapping, Sequence

NEVER = (math.inf, math.inf)


@dataclass(frozen=True)
class Target:
    column: str
    value: float
    higher_is_better: bool

    def reached(self, value: Any) -> bool:
        if not isinstance(value, (int, float)) or not math.isfinite(value):
            return False
        return value >= self.value if self.higher_is_better else value <= self.value

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "Target":
        return cls(str(data["column"]), float(data["value"]), bool(data["higher_is_better"]))

    def __str__(self) -> str:
        return f"{self.column} {'>=' if self.higher_is_better else '<='} {self.value:.4g}"


def best_value(rows: Iterable[Mapping[str, Any]], column: str, higher_is_better: bool) -> float | None:
    """The best finite value of ``column`` over evaluation rows (None if there is none)."""
    values = [r.get(column) for r in rows]
    finite = [float(v) for v in values if isinstance(v, (int, float)) and math.isfinite(v)]
    if not finite:
        return None
    return max(finite) if higher_is_better else min(finite)


def derive_target(best_values: Sequence[float | None], column: str, higher_is_better: bool, slack: float) -> Target:
    """The target from the reference runs' best values: the best of them, relaxed by ``slack``."""
    if not 0 <= slack < 1:
        raise ValueError(f"slack={slack!r} must be in [0, 1)")
    finite = [v for v in best_values if v is not None and math.isfinite(v)]
    if not finite:
        raise ValueError(f"no reference run has a finite {column}: cannot derive a target")
    best = max(finite) if higher_is_better else min(finite)
    return Target(column, best * (1 - slack) if higher_is_better else best * (1 + slack), higher_is_better)


def time_to_target(rows: Iterable[Mapping[str, Any]], target: Target) -> tuple[float, float]:
    """(steps, seconds) of the first evaluation row that reaches ``target``; (inf, inf) if none does."""
    for row in rows:
        if target.reached(row.get(target.column)):
            return float(row["step"]), float(row["time"])
    return NEVER


def fastest(times: Iterable[tuple[float, float]]) -> tuple[float, float]:
    """The best (steps, seconds) over trials, each clock on its own; (inf, inf) for no trial."""
    times = list(times)
    if not times:
        return NEVER
    return min(t[0] for t in times), min(t[1] for t in times)


class TargetStop:
    """Engine callback: at each evaluation row, record when ``target`` is first reached (in
    ``trace.meta["target_reached"]``: step and seconds) and stop training there (AlgoPerf ends a
    run at its target)."""

    def __init__(self, target: Target) -> None:
        self.target = target
        self.reached: tuple[float, float] | None = None

    def __call__(self, event: str, state: Any) -> None:
        if event != "epoch_end" or self.reached is not None or not self.target.reached(state.row.get(self.target.column)):
            return
        self.reached = (float(state.row["step"]), float(state.row["time"]))
        state.trace.meta["target_reached"] = {"step": self.reached[0], "seconds": self.reached[1]}
        state.stop = True


__all__ = ["Target", "best_value", "derive_target", "time_to_target", "fastest", "TargetStop", "NEVER"]
