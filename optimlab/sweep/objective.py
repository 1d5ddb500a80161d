"""One trial: train the configuration on the task for each seed, with the engine; score it.

The score is the mean over seeds of the final epoch's ``val_loss`` (or ``train_loss``).

Divergence is a result, not a crash: a diverged run scores the loss at which the engine declares
divergence, ``1e6 * max(|initial loss|, 1)`` (:data:`optimlab.engine.divergence.EXPLOSION_FACTOR`),
a finite value worse than any run that did not diverge. The trial completes with that value and
the user attribute ``outcome="diverged"``, so samplers learn to avoid the region, pruners compare
it, and reports draw it as diverged.

With a pruner, the per-epoch score is reported as an intermediate value at step
``seed_index * epochs + epoch - 1``; a pruned trial stops training (``state.stop``) and is
recorded as PRUNED.
Every run (one per seed, pruned ones included) is saved in the optimlab store with the sweep,
study, trial number and slot in its config.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from ..engine.divergence import EXPLOSION_FACTOR
from ..spec import Spec
from ..trace import DIVERGED
from .plan import StudyPlan
from .space import optimizer_kwargs

PRUNED_OUTCOME = "pruned"
_TASKS: dict[tuple[str, str], Any] = {}


@dataclass
class TrialResult:
    """What a trial produced: its score, how it ended, the curve and the store run ids."""

    value: float
    outcome: str
    pruned: bool = False
    diverged_at: int | None = None
    curve: list[float] = field(default_factory=list)  # mean score per epoch over seeds
    steps_per_epoch: int | None = None
    seconds: float = 0.0
    run_ids: list[Any] = field(default_factory=list)
    seed_values: list[float] = field(default_factory=list)
    target_reached: list[Any] = field(default_factory=list)  # per seed: {"step", "seconds"} or None


def divergence_penalty(trace: Any) -> float:
    """The score of a diverged run: the engine's divergence threshold for this run
    (``EXPLOSION_FACTOR * max(|initial train loss|, 1)``, the initial loss from epoch row 0)."""
    initial = trace.epochs[0].get("train_loss") if trace.epochs else None
    initial = initial if initial is not None and math.isfinite(initial) else 1.0
    return EXPLOSION_FACTOR * max(abs(initial), 1.0)


def optimizer_spec(plan: StudyPlan, params: dict[str, Any]) -> str:
    """``adam`` + ``{"lr": 0.01, "betas1": 0.8}`` -> ``adam:lr=0.01,betas=0.8/0.999``."""
    return str(Spec(plan.optimizer, optimizer_kwargs(plan.optimizer, params)))


def load_task(plan: StudyPlan) -> Any:
    """The task, built once per process (datasets are small and deterministic); a
    ``module:function`` reference (``--task``) is called in each worker process."""
    from ..tasks import resolve_task

    key = (plan.task, repr(sorted(plan.task_options.items())))
    if key not in _TASKS:
        _TASKS[key] = resolve_task(plan.task, **plan.task_options)
    return _TASKS[key]


class EpochReporter:
    """Engine callback: report each epoch's score to the trial and stop when it is pruned."""

    def __init__(self, trial: Any, plan: StudyPlan, seed_index: int) -> None:
        self.trial, self.plan, self.offset = trial, plan, seed_index * plan.epochs
        self.pruned = False

    def __call__(self, event: str, state: Any) -> None:
        if event != "epoch_end" or self.trial is None or self.plan.pruner == "none":
            return
        epoch, value = state.row.get("epoch"), state.row.get(objective_column(state.trace, self.plan.objective))
        if not epoch or epoch != int(epoch) or value is None or not math.isfinite(value):
            return  # row 0 (the initial model), a mid-epoch row, or a non-finite loss
        self.trial.report(float(value), step=self.offset + int(epoch) - 1)
        if self.trial.should_prune():
            self.pruned = state.stop = True


def objective_column(trace: Any, objective: str) -> str:
    """`objective`, or ``train_loss`` for a task without a validation split (e.g. airfoil)."""
    if objective == "val_loss" and all(row.get("val_loss") is None for row in trace.epochs):
        return "train_loss"
    return objective


def final_score(trace: Any, objective: str) -> float:
    """The last epoch's objective column, or the divergence penalty if the run diverged."""
    if trace.outcome == DIVERGED:
        return divergence_penalty(trace)
    values = [v for v in trace.column(objective_column(trace, objective), "epochs") if v is not None]
    if not values or not math.isfinite(values[-1]):
        return divergence_penalty(trace)
    return float(values[-1])


def evaluate(plan: StudyPlan, params: dict[str, Any], *, trial: Any = None,
             save: Any = None) -> TrialResult:
    """Train `params` for every seed; `save(trace, seed, outcome) -> run_id` records each run."""
    from ..engine.training import train

    task = load_task(plan)
    spec = optimizer_spec(plan, params)
    result = TrialResult(value=0.0, outcome="completed")
    curves = []
    for seed_index in range(plan.seeds):
        reporter = EpochReporter(trial, plan, seed_index)
        callbacks: list[Any] = [reporter]
        if plan.target is not None:
            from ..benchmark.targets import Target, TargetStop

            callbacks.append(TargetStop(Target.from_dict(plan.target)))
        trace = train(spec, task, epochs=plan.epochs, batch_size=plan.batch_size, seed=plan.seed + seed_index,
                      quiet=True, callbacks=callbacks, eval_every=plan.eval_every)
        result.target_reached.append(trace.meta.get("target_reached"))
        pruned = reporter.pruned and trace.outcome != DIVERGED
        result.seconds += float(trace.meta.get("train_seconds") or 0.0)
        result.steps_per_epoch = trace.meta.get("steps_per_epoch")
        score = final_score(trace, plan.objective)
        outcome = PRUNED_OUTCOME if pruned else trace.outcome
        if save is not None:
            result.run_ids.append(save(trace, plan.seed + seed_index, outcome))
        result.seed_values.append(score)
        curves.append(_curve(trace, plan, score))
        if trace.outcome == DIVERGED:
            result.outcome, result.diverged_at = DIVERGED, trace.diverged_at
        if pruned:
            result.pruned, result.outcome = True, PRUNED_OUTCOME
            break
    result.value = sum(result.seed_values) / len(result.seed_values)
    result.curve = [sum(c[i] for c in curves) / len(curves) for i in range(min(map(len, curves)))]
    return result


def _curve(trace: Any, plan: StudyPlan, penalty: float) -> list[float]:
    """Score after each whole epoch (1, 2, ...); epochs after a divergence get the penalty."""
    rows = [r for r in trace.epochs if r.get("epoch") and r["epoch"] == int(r["epoch"])]
    values = [r.get(objective_column(trace, plan.objective)) for r in rows]
    values = [v if v is not None and math.isfinite(v) else penalty for v in values]
    if trace.outcome == DIVERGED:
        values = values + [penalty] * (plan.epochs - len(values))
    return [float(v) for v in values]
