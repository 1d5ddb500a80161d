"""Compare optimizers on one task: every optimizer x seed is trained, stored and summarized.

``compare_optimizers(task, specs, seeds=3, ...)`` returns one :class:`RunResult` per run. An
optimizer spec may carry two run options next to its hyperparameters: ``batch_size`` (N or
``full``) and ``epochs``, e.g. ``sgd:lr=0.005,batch_size=1`` or ``lbfgs:batch_size=full``.
Closure optimizers (lbfgs, newton) use the full batch unless told otherwise.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Callable

from ..progress import Progress, StepCounter, format_seconds
from ..spec import Spec, parse_spec
from ..summary import parse_target, summarize, time_to_target
from ..trace import Trace
from .ensembles import EnsemblePlan, held_out_record, schedule_text
from .training import train

RUN_OPTIONS = ("batch_size", "epochs")

# The notes' set with settings that work on standardized data at batch 32-128.
DEFAULT_SPECS = ["sgd:lr=0.1", "momentum:lr=0.05,momentum=0.9", "nesterov:lr=0.05,momentum=0.9",
                 "adagrad:lr=0.1", "rmsprop:lr=0.003,alpha=0.9", "adam:lr=0.003"]
# D2L chapter 11's settings on airfoil (batch 10, 2 epochs).
AIRFOIL_SPECS = ["sgd:lr=0.05", "momentum:lr=0.01,momentum=0.9", "nesterov:lr=0.01,momentum=0.9",
                 "adagrad:lr=0.1", "rmsprop:lr=0.01,alpha=0.9", "adam:lr=0.01"]
LBFGS_SPEC = "lbfgs:line_search_fn=strong_wolfe,batch_size=full"


@dataclass
class RunResult:
    spec: str  # the optimizer spec as given, run options included
    seed: int
    trace: Trace
    summary: dict[str, Any]
    run_id: int | None = None
    time_to_target: float | None = None
    config: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """The `--json` record of one run."""
        record = {**self.summary, "optimizer": self.spec, "seed": self.seed, "run_id": self.run_id,
                  "time_to_target": self.time_to_target}
        record.update(held_out_record(self.trace))  # test metrics of raw/averaged/ensembled models, if any
        return record


def default_specs(task: Any) -> tuple[list[str], list[str]]:
    """(specs, notes): the notes' optimizers, plus full-batch L-BFGS on convex tasks when registered."""
    from ..optim.registry import OPTIMIZERS

    specs = list(AIRFOIL_SPECS if task.name.startswith("airfoil") else DEFAULT_SPECS)
    notes = []
    if task.convex:
        if "lbfgs" in OPTIMIZERS:
            specs.append(LBFGS_SPEC)
        else:
            notes.append("lbfgs is not registered in this build: skipped")
    return specs, notes


def split_run_options(spec: str) -> tuple[str, dict[str, Any]]:
    """``"sgd:lr=0.1,batch_size=1"`` -> (``"sgd:lr=0.1"``, {"batch_size": 1})."""
    parsed = parse_spec(spec, "optimizer spec")
    options = {k: v for k, v in parsed.kwargs.items() if k in RUN_OPTIONS}
    rest = {k: v for k, v in parsed.kwargs.items() if k not in RUN_OPTIONS}
    return str(Spec(parsed.name, rest)), options


def compare_optimizers(task: Any, specs: list[str], *, seeds: int = 3, first_seed: int = 0,
                       epochs: float | None = None, batch_size: int | str | None = None,
                       schedule: Any = None, target: str | None = None, max_steps: int | None = None,
                       max_seconds: float | None = None, evals_per_epoch: int = 1, store: Any = None,
                       experiment: str | None = None, quiet: bool = True,
                       on_run: Callable[[RunResult], None] | None = None, average: str | None = None,
                       ensemble: str | None = None, track: str | None = None,
                       progress: Progress | None = None) -> list[RunResult]:
    """Train every spec x seed on ``task``; store each run when ``store`` is given.

    ``average`` (``ema:decay=0.999``, ``swa:start=500``) and ``ensemble`` (``snapshot:cycles=5``,
    ``seeds:5`` -- which trains 5 seeds) add the test metrics of the raw, averaged and ensembled
    models to each run (:mod:`optimlab.engine.ensembles`). ``track`` (``sharpness:every=50``) records
    the top Hessian eigenvalue against the optimizer's stability threshold (:mod:`optimlab.analysis.sharpness`).
    ``progress`` (:func:`optimlab.progress.progress_reporter`) is advanced every optimizer step over
    the planned steps of all runs and gets one note per finished run.
    """
    plan = EnsemblePlan(average, ensemble) if average or ensemble else None
    if track is not None:
        from ..analysis.sharpness import tracker_from_spec

        tracker_from_spec(track)  # validate before any training
    seeds = plan.seeds(seeds) if plan else seeds
    if seeds < 1:
        raise ValueError(f"seeds={seeds!r} must be >= 1")
    if isinstance(evals_per_epoch, bool) or not isinstance(evals_per_epoch, int) or evals_per_epoch < 1:
        raise ValueError(f"evals_per_epoch={evals_per_epoch!r} must be an integer >= 1")
    target_column = parse_target(target) if target else None
    plans = [(spec, *split_run_options(spec)) for spec in specs]  # validates every spec before any training
    from ..optim.registry import resolve

    closure_based = {spec: resolve(optimizer_spec)[0].needs_closure for spec, optimizer_spec, _ in plans}
    progress = progress or Progress("compare")
    planned = {spec: _planned_steps(task, options.get("epochs", epochs), options.get("batch_size"),
                                    closure_based[spec], batch_size, max_steps) for spec, _, options in plans}
    progress.set_total(seeds * sum(planned.values()))
    results = []
    for spec, optimizer_spec, options in plans:
        group, group_results = [], []
        for seed in range(first_seed, first_seed + seeds):
            run_epochs = options.get("epochs", epochs)
            # closure optimizers (lbfgs, newton) take the full batch unless their spec says otherwise
            run_batch = options.get("batch_size", "full" if closure_based[spec] else batch_size)
            eval_every = _eval_every(task, run_batch, evals_per_epoch, optimizer_spec)
            run_schedule, callbacks = (plan.prepare(task, schedule, epochs=run_epochs, batch_size=run_batch,
                                                    max_steps=max_steps) if plan else (schedule, []))
            if track is not None:
                callbacks = [*callbacks, tracker_from_spec(track)]
            counter = StepCounter(progress, f"{spec} seed {seed}")
            callbacks = [*callbacks, counter]
            trace = train(optimizer_spec, task, epochs=run_epochs, batch_size=run_batch, seed=seed,
                          schedule=run_schedule, max_steps=max_steps, max_seconds=max_seconds, quiet=quiet,
                          eval_every=eval_every, callbacks=callbacks)
            progress.advance(planned[spec] - counter.steps)  # a run that stopped early: its unused steps
            progress.note(_run_line(len(results) + 1, seeds * len(plans), spec, seed, trace, progress))
            group.append(trace)
            if plan and len(group) == seeds:
                plan.finish_group(group)  # seeds:N: the ensemble's metric goes into every run's meta
            config = {"command": "compare", "task": task.name, "task_options": task.options, "spec": spec,
                      "optimizer": optimizer_spec, "seed": seed, "epochs": run_epochs, "batch_size": run_batch,
                      "schedule": schedule_text(schedule, run_schedule), "target": target,
                      "average": average, "ensemble": ensemble, "track": track,
                      "max_steps": max_steps, "max_seconds": max_seconds, "experiment": experiment}
            result = RunResult(spec, seed, trace, summarize(trace), config=config)
            if target_column:
                result.time_to_target = time_to_target(trace, *target_column)
            results.append(result)
            group_results.append(result)
            if plan and plan.seed_ensemble and len(group) < seeds:
                continue  # store the seeds of an ensemble once the ensemble's metric is known
            for done in group_results:
                if store is not None:
                    done.run_id = store.save_run(done.trace, done.config, experiment=experiment)
                if on_run is not None:
                    on_run(done)
            group_results = []
    return results


def _planned_steps(task: Any, epochs: float | None, batch_size: Any, closure: bool, default_batch: Any,
                   max_steps: int | None) -> int:
    from .training import plan_steps

    size = batch_size if batch_size is not None else ("full" if closure else default_batch)
    return plan_steps(task, epochs=epochs, batch_size=size, max_steps=max_steps)[2]


def _run_line(done: int, total: int, spec: str, seed: int, trace: Trace, progress: Progress) -> str:
    summary = summarize(trace)
    loss = summary["final_train_loss"]
    loss_text = "-" if loss is None else f"{loss:.4g}"
    return (f"[{done}/{total}] {spec} seed {seed}: final train loss {loss_text}, {summary['outcome']} "
            f"({format_seconds(time.perf_counter() - progress.started)} elapsed)")


def _eval_every(task: Any, batch_size: Any, evals_per_epoch: int, optimizer_spec: str) -> int | None:
    if evals_per_epoch <= 1:
        return None
    from .training import resolve_batch_size

    size = resolve_batch_size(batch_size, task.num_train, task.default_batch_size)
    steps_per_epoch = -(-task.num_train // size)
    return max(1, steps_per_epoch // evals_per_epoch) if steps_per_epoch > 1 else None


__all__ = ["compare_optimizers", "default_specs", "RunResult", "split_run_options", "DEFAULT_SPECS"]
