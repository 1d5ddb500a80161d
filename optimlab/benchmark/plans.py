"""A benchmark is one optimlab sweep: one Optuna study per (workload, optimizer) with the same
declared budget (``trials`` random trials from the optimizer's search space, each trained for the
workload's epochs and stopped at its target). Workers are the sweep's workers, so trials spread
over processes and machines exactly as ``optimlab sweep`` does (journal file or PostgreSQL)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from ..sweep import plan as sweep_plans
from .targets import Target
from .workloads import Workload, search_space

SAMPLER = "random"  # seeded per slot: every optimizer's trial k sits at the same quantile of its space


def benchmark_plans(name: str, workloads: list[Workload], targets: dict[str, Target], optimizers: list[str], *,
                    trials: int, seed: int = 0, data_dir: str | None = None,
                    spaces: dict[str, list[str]] | None = None) -> list[sweep_plans.StudyPlan]:
    """The study plans of benchmark ``name`` (validated before anything is stored)."""
    if not optimizers:
        raise ValueError("no optimizer to benchmark")
    extra = sorted(set(spaces or {}) - set(optimizers))
    if extra:
        raise ValueError(f"--space for {extra[0]!r}, which is not benchmarked (add --opt {extra[0]})")
    plans = []
    for workload in workloads:
        if workload.needs_data_dir and not data_dir:
            raise ValueError(f"workload {workload.name} reads files from your disk: pass --data-dir DIR")
        for optimizer in optimizers:
            made = sweep_plans.make_plans(name, [workload.task], [optimizer], [SAMPLER], search_space(optimizer, spaces),
                                          trials=trials, epochs=workload.epochs, batch_size=workload.batch_size,
                                          seed=seed, with_defaults=False)
            plans += [replace(plan, task_options=workload.task_kwargs(data_dir), eval_every=workload.eval_every,
                              target=targets[workload.name].to_dict()) for plan in made]
    return plans


def workload_of(plan: sweep_plans.StudyPlan, workloads: list[Workload]) -> Workload | None:
    return next((w for w in workloads if w.task == plan.task), None)


def plan_summary(plans: list[sweep_plans.StudyPlan]) -> dict[str, Any]:
    """The declared budget of the benchmark: the same trials x epochs for every optimizer of a workload."""
    return {plan.study_name: plan.budget for plan in plans}


__all__ = ["benchmark_plans", "SAMPLER", "workload_of", "plan_summary"]
