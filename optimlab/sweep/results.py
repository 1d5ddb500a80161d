"""Read a sweep back from its storage as plain rows (what reports and tests look at)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import TrialState

from .plan import StudyPlan, load_plan, sweep_study_names
from .storage import is_rdb, open_storage, release


@dataclass
class TrialRow:
    number: int
    slot: int | None
    round: int | None
    state: str  # COMPLETE, PRUNED, FAIL, RUNNING, WAITING
    value: float | None
    params: dict[str, Any]
    outcome: str | None
    curve: list[float] = field(default_factory=list)
    steps_per_epoch: int | None = None
    seconds: float | None = None
    retried_from: int | None = None
    run_ids: list[Any] = field(default_factory=list)


@dataclass
class StudyResult:
    plan: StudyPlan
    trials: list[TrialRow]

    @property
    def finished(self) -> list[TrialRow]:
        """Trials that ran to the end or were pruned, in slot order (the order they were queued)."""
        rows = [t for t in self.trials if t.state in ("COMPLETE", "PRUNED")]
        return sorted(rows, key=lambda t: (t.slot if t.slot is not None else t.number, t.number))

    @property
    def complete(self) -> list[TrialRow]:
        return [t for t in self.finished if t.state == "COMPLETE"]

    def best(self) -> TrialRow | None:
        done = self.complete
        return min(done, key=lambda t: t.value) if done else None


def _row(trial: optuna.trial.FrozenTrial) -> TrialRow:
    attrs = trial.user_attrs
    return TrialRow(number=trial.number, slot=attrs.get("slot"), round=attrs.get("round"),
                    state=trial.state.name, value=trial.value if trial.state == TrialState.COMPLETE else None,
                    params=dict(trial.params), outcome=attrs.get("outcome"), curve=list(attrs.get("curve") or []),
                    steps_per_epoch=attrs.get("steps_per_epoch"), seconds=attrs.get("seconds"),
                    retried_from=trial.system_attrs.get("failed_trial"), run_ids=list(attrs.get("run_ids") or []))


def load_sweep(url: str, sweep: str) -> list[StudyResult]:
    """Every study of sweep `sweep` with its trials; ValueError if there is none."""
    if not is_rdb(url) and not Path(url).exists():
        raise ValueError(f"no sweep storage at {url}; pass --storage (or --db) of the sweep")
    storage = open_storage(url)
    try:
        names = sweep_study_names(storage, sweep)
        if not names:
            known = sorted({n.split("/")[0] for n in optuna.get_all_study_names(storage)})
            raise ValueError(f"no sweep {sweep!r} in {url}; sweeps there: {', '.join(known) or 'none'}")
        results = []
        for name in names:
            study = optuna.load_study(study_name=name, storage=storage)
            results.append(StudyResult(load_plan(study), [_row(t) for t in study.get_trials(deepcopy=False)]))
        return results
    finally:
        release(storage)
