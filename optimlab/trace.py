"""Trace: the plain table a run produces, read by the store, the reports and the web app.

One row per step (``steps``) and, for training tasks, one row per epoch (``epochs``). Rows are
dicts of plain numbers (and, for 2-D landscapes, the point as a list), so a Trace round-trips
through JSON and SQL unchanged.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

# Outcomes a run can end with; a divergence is a result, not an exception.
COMPLETED = "completed"
CONVERGED = "converged"
DIVERGED = "diverged"
UNSTABLE = "unstable"  # ran to the end, but the training loss grew (see engine.divergence.has_grown)


@dataclass
class Trace:
    optimizer: str
    problem: str
    steps: list[dict[str, Any]] = field(default_factory=list)
    epochs: list[dict[str, Any]] = field(default_factory=list)
    outcome: str = COMPLETED
    diverged_at: int | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    def column(self, name: str, table: str = "steps") -> list[Any]:
        """The values of one column, e.g. ``trace.column("loss")``; missing cells are None."""
        return [row.get(name) for row in getattr(self, table)]

    @property
    def outcome_text(self) -> str:
        """'diverged at step 37', 'unstable: train loss grew from 2.3 to 1.08e+03' or the outcome as it is."""
        if self.outcome == DIVERGED and self.diverged_at is not None:
            return f"diverged at step {self.diverged_at}"
        if self.outcome == UNSTABLE and len(self.epochs) > 1:
            first, last = self.epochs[0].get("train_loss"), self.epochs[-1].get("train_loss")
            if isinstance(first, (int, float)) and isinstance(last, (int, float)):
                return f"unstable: train loss grew from {first:.3g} to {last:.3g}"
        return self.outcome

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), allow_nan=True)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Trace":
        return cls(**data)

    @classmethod
    def from_json(cls, text: str) -> "Trace":
        return cls.from_dict(json.loads(text))
