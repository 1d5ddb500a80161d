"""Training with parameter averaging and ensembles: raw, averaged and ensembled test metrics.

``train_evaluated(spec, task, average="ema:decay=0.999", ensemble="snapshot:cycles=5", ...)``
runs :func:`optimlab.engine.training.train` with a callback that keeps an EMA/SWA of the weights
and collects snapshots at the ends of warm-restart cycles, and at the end evaluates on the test
split: the raw model, the averaged model and the snapshot ensemble (mean of the members' softmax
probabilities). ``ensemble="seeds:5"`` trains 5 seeds and adds the metric of their ensemble.

The results land in each Trace's ``meta["test"]``, e.g.
``{"raw": 0.961, "ema": 0.967, "snapshot_ensemble": 0.972, "snapshots": 5}`` plus the test data
loss of each (``raw_loss``, ``ema_loss``...: for classification, the NLL of the (averaged)
probabilities), and the epoch rows
get ``val_metric_<averaging>`` (the averaged model's validation metric).

Ensemble specs: ``snapshot:cycles=M`` (shorthand ``snapshot:M``): with no schedule, cosine with
warm restarts of period total_steps // M (SGDR); with a schedule that restarts, its cycle ends
(the last M of them). ``keep=K``: ensemble only the last K snapshots (early ones are weaker).
``seeds:N`` (shorthand ``seeds:N``, also ``seeds:n=N``): N independent runs, seeds seed..seed+N-1.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Callable

import torch

from ..averaging import SnapshotEnsemble, average_predictions, parse_averager, predict_ensemble
from ..optim.validate import check_positive_int
from ..schedules import CosineRestarts, parse_schedule, snapshot_steps
from ..spec import Spec, parse_spec
from ..trace import Trace

ENSEMBLES = ("snapshot", "seeds")


def parse_ensemble(text: str | None) -> Spec | None:
    """``snapshot:cycles=5`` / ``snapshot:5`` / ``seeds:5`` / ``seeds:n=5`` -> Spec(name, {cycles|n})."""
    if text is None:
        return None
    shorthand = re.fullmatch(r"\s*(\w+)\s*:\s*(\d+)\s*", text)
    if shorthand:
        name = shorthand.group(1)
        text = f"{name}:{'cycles' if name == 'snapshot' else 'n'}={shorthand.group(2)}"
    spec = parse_spec(text, "ensemble spec")
    allowed = {"snapshot": {"cycles", "keep"}, "seeds": {"n"}}
    if spec.name not in allowed:
        raise ValueError(f"unknown ensemble {spec.name!r}; choose one of: {', '.join(ENSEMBLES)}")
    unknown = set(spec.kwargs) - allowed[spec.name]
    if unknown:
        raise ValueError(f"bad arguments for ensemble {spec.name!r}: {', '.join(sorted(unknown))} "
                         f"(allowed: {', '.join(sorted(allowed[spec.name]))})")
    if spec.name == "seeds":
        check_positive_int("seeds", spec.kwargs.get("n"))
    else:
        for key in ("cycles", "keep"):
            if key in spec.kwargs:
                check_positive_int(key, spec.kwargs[key])
    return spec


def plan_schedule(schedule: Any, ensemble: Spec | None, total: int, per_epoch: int) -> tuple[Any, list[int]]:
    """The schedule to train with and the (0-based) steps after which to take snapshots."""
    resolved = None if schedule is None else parse_schedule(schedule, steps_per_epoch=per_epoch)
    if ensemble is None or ensemble.name != "snapshot":
        return resolved, []
    cycles = ensemble.kwargs.get("cycles")
    if resolved is None:
        if cycles is None:
            raise ValueError("snapshot ensembles without a schedule need cycles=M")
        if total < cycles:
            raise ValueError(f"cycles={cycles} needs at least {cycles} steps; the run has {total}")
        resolved = CosineRestarts(period=total // cycles)
    steps = snapshot_steps(resolved, total)
    if not steps:
        raise ValueError(f"schedule {schedule!s} has no restarts within {total} steps: a snapshot ensemble "
                         "needs one (e.g. cosine_restarts:period=N), or give no schedule")
    keep = ensemble.kwargs.get("keep", cycles)
    return resolved, steps[-keep:] if keep else steps


@dataclass
class AveragingCallback:
    """Keeps an averager and snapshots during ``train``; evaluates them on the test split at the end."""

    average: str | Spec | None = None
    snapshot_at: list[int] = field(default_factory=list)
    averager: Any = None
    snapshots: SnapshotEnsemble | None = None
    test_outputs: torch.Tensor | None = None

    @property
    def average_name(self) -> str | None:
        if self.average is None:
            return None
        return (parse_spec(self.average) if isinstance(self.average, str) else self.average).name

    def __call__(self, event: str, state: Any) -> None:
        if self.average is not None and self.averager is None:  # the first event: the initial model
            self.averager = parse_averager(self.average, state.model)
        if event == "step_end":
            if self.averager is not None:
                self.averager.update(state.model)
            if self.snapshot_at:
                if self.snapshots is None:
                    self.snapshots = SnapshotEnsemble(self.snapshot_at)
                self.snapshots.maybe_collect(state.model, state.step - 1)  # state.step counts from 1
        elif event == "epoch_end" and self.averager is not None:
            with self.averager.averaged(state.model):
                state.row[f"val_metric_{self.average_name}"] = state.task.evaluate(state.model, "val")[1]
        elif event == "train_end":
            state.trace.meta["test"] = self.evaluate_on_test(state.model, state.task)

    def evaluate_on_test(self, model: torch.nn.Module, task: Any) -> dict[str, Any]:
        """Test metric (and data loss, as ``<name>_loss``) of the raw, averaged and ensembled models."""
        x, y = task.data("test")
        self.test_outputs = predict_ensemble([model], x, "regression")  # one member: its raw output
        outputs = {"raw": self.test_outputs}
        if self.averager is not None:
            with self.averager.averaged(model):
                outputs[self.average_name] = predict_ensemble([model], x, "regression")
        if self.snapshots is not None and len(self.snapshots):
            outputs["snapshot_ensemble"] = predict_ensemble(self.snapshots.snapshots, x, task.kind, model=model)
        results: dict[str, Any] = {}
        for name, output in outputs.items():
            results[name] = task.metric(output, y)
            # the ensemble's output is log(mean probability); cross-entropy of it is its test NLL
            results[f"{name}_loss"] = float(task.loss_fn(output, y))
        if "snapshot_ensemble" in outputs:
            results["snapshots"] = len(self.snapshots)
        return results


class EnsemblePlan:
    """What ``--average``/``--ensemble`` add to a set of runs: the schedule, callbacks, seed ensembles.

    For each run: ``schedule, callbacks = evaluation.prepare(schedule, epochs, batch_size, max_steps)``
    and train with them; after the seeds of one configuration, ``evaluation.finish_group(traces)``
    adds the seed ensemble's metric. ``seeds(default)`` is the number of seeds to train.
    """

    def __init__(self, average: str | None = None, ensemble: str | None = None) -> None:
        if average is not None:
            parse_averager(average, torch.nn.Linear(1, 1))  # validate the spec before any training
        self.average = average
        self.ensemble = parse_ensemble(ensemble)
        self.task: Any = None
        self._hooks: list[AveragingCallback] = []

    @property
    def seed_ensemble(self) -> bool:
        return self.ensemble is not None and self.ensemble.name == "seeds"

    def seeds(self, default: int) -> int:
        """``seeds:N`` trains N seeds; otherwise ``default``."""
        return self.ensemble.kwargs["n"] if self.seed_ensemble else default

    def prepare(self, task: Any, schedule: Any, *, epochs: float | None, batch_size: Any,
                max_steps: int | None) -> tuple[Any, list[AveragingCallback]]:
        """(schedule to train with, callbacks) for one run."""
        self.task = task
        from .training import plan_steps

        _, per_epoch, total = plan_steps(task, epochs=epochs, batch_size=batch_size, max_steps=max_steps)
        resolved, snapshot_at = plan_schedule(schedule, self.ensemble, total, per_epoch)
        hook = AveragingCallback(self.average, snapshot_at)
        self._hooks.append(hook)
        return resolved, [hook]

    def finish_group(self, traces: list[Trace]) -> None:
        """After the seeds of one configuration: the seed ensemble's test metric and loss."""
        hooks, self._hooks = self._hooks, []
        outputs = [hook.test_outputs for hook in hooks if hook.test_outputs is not None]
        if not self.seed_ensemble or len(outputs) < 2:
            return
        x, y = self.task.data("test")
        combined = average_predictions(outputs, self.task.kind)
        for trace in traces:
            trace.meta["test"]["seed_ensemble"] = self.task.metric(combined, y)
            trace.meta["test"]["seed_ensemble_loss"] = float(self.task.loss_fn(combined, y))
            trace.meta["test"]["ensemble_size"] = len(outputs)


def schedule_text(schedule: Any, resolved: Any) -> str | None:
    """The schedule a run used, as a spec string (the SGDR a snapshot ensemble chose, too)."""
    if schedule is not None:
        return str(schedule)
    return None if resolved is None else f"cosine_restarts:period={resolved.period}"


def held_out_record(trace: Trace) -> dict[str, Any]:
    """Flat ``--json`` fields of a run's test evaluation: test_metric, test_metric_ema, test_loss_ema..."""
    record = {}
    for key, value in trace.meta.get("test", {}).items():
        if key in ("snapshots", "ensemble_size"):
            record[key] = value
        elif key.endswith("_loss"):
            name = key[: -len("_loss")]
            record["test_loss" if name == "raw" else f"test_loss_{name}"] = value
        else:
            record["test_metric" if key == "raw" else f"test_metric_{key}"] = value
    return record


def train_evaluated(spec: Any, task: Any, *, average: str | None = None, ensemble: str | None = None,
                    schedule: Any = None, seed: int = 0, epochs: float | None = None, batch_size: Any = None,
                    max_steps: int | None = None, callbacks: tuple[Callable, ...] = (),
                    **train_kwargs: Any) -> list[Trace]:
    """Train (one run, or N seeds for ``seeds:N``) and report raw/averaged/ensembled test metrics.

    Returns the Traces (one per seed); each has ``meta["test"]``; with ``seeds:N`` each also
    carries ``meta["test"]["seed_ensemble"]``, the metric of the N models' averaged predictions.
    """
    from ..tasks import get_task
    from .training import train

    task = get_task(task) if isinstance(task, str) else task
    if batch_size is None and isinstance(spec, (str, Spec)):
        from ..optim.registry import resolve

        batch_size = "full" if resolve(spec)[0].needs_closure else None  # as train() chooses
    evaluation = EnsemblePlan(average, ensemble)
    traces = []
    for run_seed in range(seed, seed + evaluation.seeds(1)):
        resolved, hooks = evaluation.prepare(task, schedule, epochs=epochs, batch_size=batch_size,
                                             max_steps=max_steps)
        trace = train(spec, task, seed=run_seed, schedule=resolved, epochs=epochs, batch_size=batch_size,
                      max_steps=max_steps, callbacks=(*hooks, *callbacks), **train_kwargs)
        trace.meta["schedule"] = schedule_text(schedule, resolved)
        trace.meta["average"], trace.meta["ensemble"] = average, ensemble
        traces.append(trace)
    evaluation.finish_group(traces)
    return traces


__all__ = ["train_evaluated", "EnsemblePlan", "AveragingCallback", "parse_ensemble", "plan_schedule",
           "schedule_text", "held_out_record"]
