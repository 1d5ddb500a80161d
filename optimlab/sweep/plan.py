"""A sweep's plan: one Optuna study per (task, optimizer, sampler), each with the same budget.

A study's trials are queued up front (``enqueue_trial``) when the study is created: one waiting
trial per budget slot, carrying its slot number, round and search space as user attributes;
grid studies carry the grid point as fixed parameters. Workers only pop queued trials, so a
study never runs more or fewer trials than its declared budget, however many workers join.
Coarse-to-fine rounds are queued when the previous round has finished, under the sweep lock.
"""

from __future__ import annotations

import json
import math
import random
from dataclasses import asdict, dataclass, field
from typing import Any

import optuna
from optuna.trial import TrialState

from . import space as spaces
from .storage import sweep_lock

from .defaults import SAMPLERS  # re-exported: plans.SAMPLERS
DEFAULT_SAMPLER = "default"  # the optimizer's registry defaults, one configuration
PLAN_ATTR = "optimlab_plan"
FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)


@dataclass(frozen=True)
class StudyPlan:
    """What one study searches and with what budget; stored in the study's user attributes."""

    sweep: str
    task: str
    optimizer: str
    sampler: str
    space: list[str]
    trials: int
    epochs: int
    seeds: int = 1
    batch_size: int = 64
    rounds: int = 1
    pruner: str = "none"
    objective: str = "val_loss"
    seed: int = 0
    task_options: dict[str, Any] = field(default_factory=dict)
    eval_every: int | None = None  # extra evaluation rows every k steps (benchmark: time-to-target resolution)
    target: dict[str, Any] | None = None  # benchmark: stop a run at this target (optimlab.benchmark.targets.Target)

    @property
    def study_name(self) -> str:
        return f"{self.sweep}/{self.task}/{self.optimizer}/{self.sampler}"

    @property
    def budget(self) -> dict[str, int]:
        """The declared budget: trials x epochs (x seeds), the same for every optimizer of a sweep."""
        return {"trials": self.trials, "epochs": self.epochs, "seeds": self.seeds,
                "epoch_runs": self.trials * self.epochs * self.seeds}

    def dimensions(self) -> list[spaces.Dimension]:
        return spaces.parse_space(self.space)

    def round_sizes(self) -> list[int]:
        """The trial budget split over the coarse-to-fine rounds (earlier rounds get the remainder)."""
        base, extra = divmod(self.trials, self.rounds)
        return [base + (1 if k < extra else 0) for k in range(self.rounds)]

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> "StudyPlan":
        return cls(**json.loads(text))


def check_budget(trials: int, epochs: int, seeds: int, rounds: int) -> None:
    for name, value in (("--trials", trials), ("--epochs", epochs), ("--seeds", seeds), ("--coarse-to-fine", rounds)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name}={value!r} must be a positive integer")
    if rounds > trials:
        raise ValueError(f"--coarse-to-fine {rounds} needs at least as many trials, got --trials {trials}")


def make_plans(sweep: str, tasks: list[str], optimizers: list[str], samplers: list[str],
               space_options: list[str], *, trials: int, epochs: int, seeds: int = 1,
               batch_size: int = 64, rounds: int = 1, pruner: str = "none",
               objective: str = "val_loss", seed: int = 0, with_defaults: bool = True) -> list[StudyPlan]:
    """Plans for every (task, optimizer, sampler), plus each optimizer's default configuration."""
    check_budget(trials, epochs, seeds, rounds)
    if "/" in sweep or not sweep.strip():
        raise ValueError(f"--study {sweep!r}: a sweep name must be non-empty and contain no '/'")
    for sampler in samplers:
        if sampler not in SAMPLERS:
            raise ValueError(f"--sampler {sampler!r}: choose one of {', '.join(SAMPLERS)}")
    if pruner not in ("none", "median"):
        raise ValueError(f"--pruner {pruner!r}: choose none or median")
    if objective not in ("val_loss", "train_loss"):
        raise ValueError(f"--objective {objective!r}: choose val_loss or train_loss")
    space = spaces.parse_space(space_options)
    if not space:
        raise ValueError("no --space given; e.g. --space lr=log:1e-5:1")
    common = dict(epochs=epochs, seeds=seeds, batch_size=batch_size, objective=objective, seed=seed)
    plans = []
    for task in tasks:
        for optimizer in optimizers:
            dims = spaces.space_for(space, optimizer)
            text = spaces.space_text([_unscoped(d) for d in dims])
            for sampler in samplers:
                if sampler == "grid":
                    spaces.grid_shape(trials // rounds, dims)  # raises if the budget is too small
                plans.append(StudyPlan(sweep, task, optimizer, sampler, text, trials, rounds=rounds,
                                       pruner=pruner, **common))
            if with_defaults:
                fixed = spaces.fixed_space(spaces.default_params(optimizer, dims), dims)
                plans.append(StudyPlan(sweep, task, optimizer, DEFAULT_SAMPLER, spaces.space_text(fixed), 1, **common))
    return plans


def _unscoped(dim: spaces.Dimension) -> spaces.Dimension:
    from dataclasses import replace

    return replace(dim, optimizer=None)


def sweep_study_names(storage: optuna.storages.BaseStorage, sweep: str) -> list[str]:
    return sorted(n for n in optuna.get_all_study_names(storage) if n.startswith(sweep + "/"))


def load_plan(study: optuna.Study) -> StudyPlan:
    return StudyPlan.from_json(study.user_attrs[PLAN_ATTR])


def create_studies(url: str, storage: optuna.storages.BaseStorage, plans: list[StudyPlan]) -> list[str]:
    """Create each study with its first round queued; an existing study must have the same plan."""
    names = []
    with sweep_lock(url, plans[0].sweep):
        existing = set(optuna.get_all_study_names(storage))
        for plan in plans:
            names.append(plan.study_name)
            if plan.study_name in existing:
                study = optuna.load_study(study_name=plan.study_name, storage=storage)
                if study.user_attrs.get(PLAN_ATTR) != plan.to_json():
                    raise ValueError(f"study {plan.study_name!r} exists with another plan; use --resume, or another --study name")
                continue
            study = optuna.create_study(study_name=plan.study_name, storage=storage, direction="minimize")
            study.set_user_attr(PLAN_ATTR, plan.to_json())
            study.set_user_attr("budget", plan.budget)
            queue_round(study, plan, 1, plan.dimensions())
    return names


def queue_round(study: optuna.Study, plan: StudyPlan, round_number: int, dims: list[spaces.Dimension]) -> None:
    """Queue this round's trials: one waiting trial per slot (a grid point for grid studies)."""
    sizes = plan.round_sizes()
    first_slot = sum(sizes[: round_number - 1])
    size = sizes[round_number - 1]
    if plan.sampler == "grid":  # visited in a seeded random order, as Optuna's GridSampler does
        points = spaces.grid_points(size, dims)
        random.Random(plan.seed * 7919 + round_number).shuffle(points)
    else:
        points = [{}] * size
    text = spaces.space_text(dims)
    for offset, params in enumerate(points):
        study.enqueue_trial(params, user_attrs={"slot": first_slot + offset, "round": round_number, "space": text})
    study.set_user_attr(f"round_{round_number}_size", len(points))


def advance_round(url: str, study: optuna.Study, plan: StudyPlan, top_fraction: float = 0.25) -> bool:
    """Queue the next coarse-to-fine round if the last one is finished; True if it queued one."""
    if plan.rounds == 1:
        return False
    with sweep_lock(url, plan.sweep):
        trials = study.get_trials(deepcopy=False)
        current = max(t.user_attrs.get("round", 1) for t in trials)
        if current >= plan.rounds:
            return False
        this_round = [t for t in trials if t.user_attrs.get("round") == current]
        if any(t.state in (TrialState.WAITING, TrialState.RUNNING) for t in this_round):
            return False
        done = sorted((t for t in this_round if t.state == TrialState.COMPLETE), key=lambda t: t.value)
        keep = max(2, math.ceil(top_fraction * len(done)))
        dims = spaces.parse_space(this_round[0].user_attrs["space"])
        queue_round(study, plan, current + 1, spaces.narrow(dims, [t.params for t in done[:keep]]))
        return True
