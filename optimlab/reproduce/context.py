"""Shared pieces of the experiments: budgets, running several optimizers, the notes' print format."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

from ..engine.trajectory import run_trajectory
from ..landscapes import Landscape, get_landscape
from ..trace import Trace


@dataclass(frozen=True)
class Budget:
    """``quick`` shrinks epochs, seeds and data sizes (the slow test and fast previews use it);
    ``also`` adds optimizer specs next to the notes' own in the optimizer-zoo experiment."""

    quick: bool = False
    also: tuple[str, ...] = ()

    def epochs(self, full: float, quick: float) -> float:
        return quick if self.quick else full

    def count(self, full: int, quick: int) -> int:
        return quick if self.quick else full


def trajectories(landscape: str | Landscape, specs: Sequence[str], steps: int, **options: Any) -> list[Trace]:
    """One trajectory per optimizer spec on the same landscape and start."""
    landscape = get_landscape(landscape)
    return [run_trajectory(spec, landscape, steps, **options) for spec in specs]


def final_point(trace: Trace) -> list[float]:
    return trace.steps[-1]["x"]


def notes_line(trace: Trace) -> str:
    """The last iterate in the notes' format: ``epoch 10, x: 0.060466`` / ``epoch 20, x1: ..., x2: ...``."""
    epoch = trace.steps[-1]["step"]
    point = final_point(trace)
    if len(point) == 1:
        return f"epoch {epoch}, x: {point[0]:f}"
    return f"epoch {epoch}, x1: {point[0]:f}, x2: {point[1]:f}"
