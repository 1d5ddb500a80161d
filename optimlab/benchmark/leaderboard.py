"""From a finished benchmark to its leaderboard: per workload and optimizer the fastest time to
target on both clocks (steps, training seconds), the performance ratios r = time / fastest
optimizer's time, the performance profiles rho(tau) for tau in [1, 4] and AlgoPerf's score (the
normalized area under rho, :func:`optimlab.analysis.sweep.profile_score`)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Sequence

import optuna
from optuna.trial import TrialState

from ..analysis.sweep import performance_profile, performance_ratios, profile_score
from ..sweep.plan import load_plan, sweep_study_names
from ..sweep.storage import open_storage, release
from .targets import fastest

TAU_MAX = 4.0
TAUS = [1 + 0.05 * i for i in range(61)]  # 1 .. 4
CLOCKS = ("steps", "seconds")


@dataclass
class TrialTimes:
    params: dict[str, Any]
    steps: float
    seconds: float
    state: str
    outcome: str | None


@dataclass
class Cell:
    """One (workload, optimizer): its trials and the fastest time to target on each clock."""

    workload: str
    optimizer: str
    trials: list[TrialTimes] = field(default_factory=list)
    budget: dict[str, int] = field(default_factory=dict)
    target: dict[str, Any] | None = None

    @property
    def best(self) -> tuple[float, float]:
        return fastest((t.steps, t.seconds) for t in self.trials if t.state == "COMPLETE")

    @property
    def reached(self) -> int:
        return sum(math.isfinite(t.steps) for t in self.trials)

    def best_params(self, clock: str) -> dict[str, Any] | None:
        done = [t for t in self.trials if math.isfinite(getattr(t, clock))]
        return min(done, key=lambda t: getattr(t, clock)).params if done else None


def trial_times(trial: optuna.trial.FrozenTrial) -> TrialTimes:
    """A trial's (steps, seconds) to target: the slowest of its seeds (inf if one seed missed)."""
    reached = trial.user_attrs.get("target_reached") or [None]
    steps = max((r["step"] if r else math.inf) for r in reached)
    seconds = max((r["seconds"] if r else math.inf) for r in reached)
    return TrialTimes(dict(trial.params), steps, seconds, trial.state.name, trial.user_attrs.get("outcome"))


def load_cells(url: str, name: str, workload_names: dict[str, str]) -> tuple[list[Cell], dict[str, str]]:
    """Every (workload, optimizer) cell of benchmark ``name`` (``workload_names`` maps task ->
    workload) and each optimizer's search space as stored in its plans."""
    storage = open_storage(url)
    try:
        names = sweep_study_names(storage, name)
        if not names:
            raise ValueError(f"no benchmark {name!r} in {url}")
        cells, spaces = [], {}
        for study_name in names:
            study = optuna.load_study(study_name=study_name, storage=storage)
            plan = load_plan(study)
            cell = Cell(workload_names.get(plan.task, plan.task), plan.optimizer, budget=plan.budget, target=plan.target)
            finished = (TrialState.COMPLETE, TrialState.PRUNED)
            cell.trials = [trial_times(t) for t in study.get_trials(deepcopy=False, states=finished)]
            cells.append(cell)
            spaces[plan.optimizer] = ", ".join(plan.space)
        return cells, spaces
    finally:
        release(storage)


def times_by_clock(cells: Sequence[Cell]) -> dict[str, dict[str, dict[str, float]]]:
    """``{clock: {workload: {optimizer: time}}}`` (inf where the target was never reached)."""
    out: dict[str, dict[str, dict[str, float]]] = {clock: {} for clock in CLOCKS}
    for cell in cells:
        for index, clock in enumerate(CLOCKS):
            out[clock].setdefault(cell.workload, {})[cell.optimizer] = cell.best[index]
    return out


def leaderboard(cells: Sequence[Cell]) -> dict[str, Any]:
    """Ratios, profiles and scores per clock, the raw times, and the ranking (by the seconds score)."""
    times = times_by_clock(cells)
    optimizers = sorted({c.optimizer for c in cells})
    clocks = {}
    for clock, table in times.items():
        ratios = performance_ratios(table)
        clocks[clock] = {"times": table, "ratios": ratios, "taus": TAUS,
                         "rho": performance_profile(ratios, TAUS),
                         "score": {opt: profile_score(ratios, opt, TAU_MAX) for opt in optimizers}}
    rows = []
    for optimizer in optimizers:
        mine = [c for c in cells if c.optimizer == optimizer]
        rows.append({"optimizer": optimizer, "score_seconds": clocks["seconds"]["score"][optimizer],
                     "score_steps": clocks["steps"]["score"][optimizer],
                     "workloads_reached": sum(math.isfinite(c.best[0]) for c in mine), "workloads": len(mine),
                     "trials_reached": sum(c.reached for c in mine), "trials": sum(len(c.trials) for c in mine)})
    rows.sort(key=lambda r: (-r["score_seconds"], -r["score_steps"], r["optimizer"]))
    raw = [{"workload": c.workload, "optimizer": c.optimizer, "steps": c.best[0], "seconds": c.best[1],
            "ratio_steps": clocks["steps"]["ratios"][c.workload][c.optimizer],
            "ratio_seconds": clocks["seconds"]["ratios"][c.workload][c.optimizer],
            "reached": c.reached, "trials": len(c.trials), "best_params": c.best_params("seconds"),
            "target": c.target, "budget": c.budget} for c in cells]
    return {"ranking": rows, "clocks": clocks, "raw": raw, "tau_max": TAU_MAX}


def _number(value: float, digits: str = ".3g") -> str:
    return "-" if not math.isfinite(value) else format(value, digits)


def format_leaderboard(board: dict[str, Any]) -> str:
    """The ranking and the raw per-workload numbers as two text tables."""
    from ..report.tables import render_text

    ranking = [[str(i + 1), r["optimizer"], f"{r['score_seconds']:.3f}", f"{r['score_steps']:.3f}",
                f"{r['workloads_reached']}/{r['workloads']}", f"{r['trials_reached']}/{r['trials']}"]
               for i, r in enumerate(board["ranking"])]
    text = render_text(["rank", "optimizer", "score (seconds)", "score (steps)", "workloads reached",
                        "trials reached"], ranking)
    raw = [[r["workload"], r["optimizer"], _number(r["steps"], ".0f"), _number(r["seconds"]),
            _number(r["ratio_steps"], ".2f"), _number(r["ratio_seconds"], ".2f"), f"{r['reached']}/{r['trials']}",
            ",".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in (r["best_params"] or {}).items()) or "-"]
           for r in sorted(board["raw"], key=lambda r: (r["workload"], r["optimizer"]))]
    text += "\n\n" + render_text(["workload", "optimizer", "steps to target", "seconds to target", "ratio (steps)",
                                  "ratio (seconds)", "trials reached", "fastest trial"], raw)
    return text


__all__ = ["Cell", "TrialTimes", "load_cells", "leaderboard", "format_leaderboard", "times_by_clock", "TAUS", "CLOCKS"]
