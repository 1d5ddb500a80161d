"""Train a task with an optimizer spec: minibatch loop, per-step and per-epoch records -> Trace.

Rows it records (the contract the store, reports and other helpers read):

- step rows ``{"step", "epoch", "loss", "lr", "time"}``: ``step`` counts updates (1 = after the
  first), ``epoch`` = step / updates per epoch (fractional), ``loss`` = the objective on the
  minibatch the update used (before the update), ``lr`` = group 0's lr for that update, ``time`` =
  training seconds since the start (producing the batches included: a DataLoader's reading and
  collating), *excluding* evaluation and callbacks.
- epoch rows ``{"epoch", "step", "train_loss", "val_loss", "train_metric", "val_metric", "time",
  "lr"}``: the objective and metric on the whole train and validation splits; row 0 is the
  initial model, one row per completed epoch, and a last row with a fractional epoch when a step
  or time budget (or divergence) ends training mid-epoch.
- ``meta["final_test"] = {"loss", "metric", "examples"}``: the final model on the test split, for
  tasks that have one.

Batches come from ``task.train_batches(batch_size, generator)``: a built-in task indexes its
tensors, a :class:`optimlab.tasks.LoaderTask` iterates its DataLoader or Dataset; the seeded
``generator`` draws the order of both built-in tasks and Datasets.

A run whose minibatch loss becomes non-finite or explodes (:func:`has_diverged`) stops at once;
its outcome is ``diverged`` with ``diverged_at`` = the step. A run that ends with its training loss
above twice the initial one (:func:`has_grown`) is ``unstable``, not ``completed``. Callbacks are called as
``callback(event, state)`` with event ``"step_end"``, ``"epoch_end"`` or ``"train_end"``; ``state``
(:class:`TrainingState`) exposes model, optimizer, task, step, epoch, trace and ``row``, the row
just recorded, to which a callback may add keys. Setting ``state.stop = True`` ends training.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

import torch
from torch import nn
from torch.optim import Optimizer

from ..optim.beyond import evaluation_weights, is_schedule_free
from ..progress import progress_reporter
from ..schedules import LRSchedule, parse_schedule
from ..spec import Spec
from ..trace import COMPLETED, DIVERGED, UNSTABLE, Trace
from .divergence import has_diverged, has_grown

Callback = Callable[[str, "TrainingState"], None]
OptimizerFactory = Callable[[Iterable[torch.Tensor]], Optimizer]


@dataclass
class TrainingState:
    """What callbacks see; ``row`` is the dict just appended to the trace (add keys to it)."""

    model: nn.Module
    optimizer: Optimizer
    task: Any
    trace: Trace
    step: int = 0
    epoch: float = 0.0
    row: dict[str, Any] = field(default_factory=dict)
    batch: tuple[torch.Tensor, torch.Tensor] | None = None
    scheduler: LRSchedule | None = None
    stop: bool = False


def build_optimizer(spec: str | Spec | OptimizerFactory, model: nn.Module) -> tuple[Optimizer, str, bool]:
    """(optimizer, its spec text, whether ``step`` needs a closure) from a spec or a factory."""
    if callable(spec) and not isinstance(spec, (str, Spec)):
        optimizer = spec(model.parameters())
        needs_closure = bool(getattr(optimizer, "needs_closure", isinstance(optimizer, torch.optim.LBFGS)))
        return optimizer, type(optimizer).__name__, needs_closure
    from ..optim.registry import create, resolve

    entry, _ = resolve(spec)
    return create(spec, model.parameters()), str(spec), entry.needs_closure


def resolve_batch_size(batch_size: int | str | None, num_train: int, default: int) -> int:
    """An int batch size from ``N``, ``"full"`` (gradient descent) or None (the default)."""
    if batch_size is None:
        batch_size = default
    if isinstance(batch_size, str):
        if batch_size.strip().lower() == "full":
            return num_train
        try:
            batch_size = int(batch_size)
        except ValueError:
            raise ValueError(f"batch size {batch_size!r} must be a positive integer or 'full'") from None
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch size {batch_size!r} must be a positive integer or 'full'")
    return min(batch_size, num_train)


def plan_steps(task: Any, *, epochs: float | None, batch_size: int | str | None, max_steps: int | None,
               needs_closure: bool = False) -> tuple[int, int, int]:
    """(batch size, steps per epoch, total optimizer steps) that :func:`train` runs with these budgets.

    ``batch_size`` None: the task's default, or the full batch for closure optimizers (lbfgs, newton).
    """
    default_batch = "full" if needs_closure else task.default_batch_size
    size = resolve_batch_size(default_batch if batch_size is None else batch_size, task.num_train, task.default_batch_size)
    # a DataLoader-backed task knows its own count (drop_last, custom batch samplers)
    per_epoch = task.steps_per_epoch(size) if hasattr(task, "steps_per_epoch") else math.ceil(task.num_train / size)
    total = math.ceil((task.default_epochs if epochs is None else epochs) * per_epoch)
    return size, per_epoch, total if max_steps is None else min(total, int(max_steps))


def train(spec: str | Spec | OptimizerFactory, task: Any, *, epochs: float | None = None,
          batch_size: int | str | None = None, seed: int = 0, schedule: Any = None,
          max_steps: int | None = None, max_seconds: float | None = None, quiet: bool = True,
          callbacks: Iterable[Callback] = (), eval_every: int | None = None) -> Trace:
    """Train ``task`` (a Task or its name) with optimizer ``spec``; return the Trace.

    ``batch_size``: N, ``"full"`` (GD) or None (the task's default; the full batch for closure
    optimizers such as lbfgs/newton). ``epochs`` (None: the task's default; fractions allowed),
    ``max_steps`` and ``max_seconds`` (training time) are budgets: the first one reached ends the
    run. ``seed`` fixes the initialization (through ``torch.manual_seed``, torch's global generator)
    and the minibatch order (a private generator). ``schedule``: a schedule spec
    or callable ``factor(step)``, applied per step. ``eval_every``: extra evaluation rows every k
    steps (besides each epoch's end).
    """
    from ..tasks import get_task

    task = get_task(task) if isinstance(task, str) else task
    torch.manual_seed(seed)
    model = task.make_model()
    optimizer, spec_text, needs_closure = build_optimizer(spec, model)
    if is_schedule_free(optimizer):
        optimizer.train()  # the reference's classes start in eval mode
    epochs = task.default_epochs if epochs is None else epochs
    if not (isinstance(epochs, (int, float)) and epochs > 0 and math.isfinite(epochs)):
        raise ValueError(f"epochs={epochs!r} must be a positive number")
    for name, value in (("max_steps", max_steps), ("max_seconds", max_seconds), ("eval_every", eval_every)):
        if value is not None and not value > 0:
            raise ValueError(f"{name}={value!r} must be positive")
    size, steps_per_epoch, total_steps = plan_steps(task, epochs=epochs, batch_size=batch_size, max_steps=max_steps,
                                                    needs_closure=needs_closure)
    # a spec with unit=epoch counts epochs of this run's length; a callable is used as it is
    schedule_fn = None if schedule is None else parse_schedule(schedule, steps_per_epoch=steps_per_epoch)
    scheduler = LRSchedule(optimizer, schedule_fn) if schedule_fn is not None else None
    trace = Trace(spec_text, task.name, meta={
        "task": task.name, "task_options": task.options, "seed": seed, "batch_size": size,
        "batch_size_arg": "full" if size == task.num_train else size, "epochs": epochs,
        "steps_per_epoch": steps_per_epoch, "num_train": task.num_train, "metric": task.metric_name,
        "schedule": None if schedule is None else str(schedule), "max_steps": max_steps,
        "max_seconds": max_seconds, "torch": torch.__version__, "threads": torch.get_num_threads(),
        "higher_is_better": getattr(task, "higher_is_better", True),
    })
    state = TrainingState(model, optimizer, task, trace, scheduler=scheduler)
    loop = _Loop(task, model, optimizer, scheduler, needs_closure, state, list(callbacks), steps_per_epoch)
    loop.evaluate(epoch=0)
    initial_loss = trace.epochs[0]["train_loss"]
    generator = torch.Generator().manual_seed(seed)
    with progress_reporter(f"{spec_text} on {task.name}", total_steps, quiet=quiet) as progress:
        while state.step < total_steps and not state.stop:
            for x, y in _timed(_epoch_batches(task, size, generator), loop):
                loss = loop.step(x, y)
                progress.advance(1, status=lambda: f"loss {loss:.4g}")
                if has_diverged(loss, initial_loss):
                    trace.outcome, trace.diverged_at = DIVERGED, state.step
                    state.stop = True
                if max_seconds is not None and loop.train_time >= max_seconds:
                    state.stop = True
                if eval_every and state.step % eval_every == 0 and state.step % steps_per_epoch:
                    loop.evaluate(epoch=state.step / steps_per_epoch)
                if state.stop or state.step >= total_steps:
                    break
            if state.step % steps_per_epoch == 0:
                loop.evaluate(epoch=state.step // steps_per_epoch)
    if state.step % steps_per_epoch:  # stopped mid-epoch: one last row for the final model
        loop.evaluate(epoch=state.step / steps_per_epoch)
    loop.evaluate_test()
    trace.meta["steps"] = state.step
    trace.meta["train_seconds"] = loop.train_time
    if trace.outcome != DIVERGED:
        final_loss = trace.epochs[-1]["train_loss"]
        trace.outcome = UNSTABLE if has_grown(final_loss, initial_loss) else COMPLETED
    loop.notify("train_end", trace.epochs[-1])
    return trace


class _Loop:
    """The per-step update and the evaluation rows; keeps the training clock."""

    def __init__(self, task: Any, model: nn.Module, optimizer: Optimizer, scheduler: LRSchedule | None,
                 needs_closure: bool, state: TrainingState, callbacks: list[Callback], steps_per_epoch: int) -> None:
        self.task, self.model, self.optimizer, self.scheduler = task, model, optimizer, scheduler
        self.needs_closure, self.state, self.callbacks = needs_closure, state, callbacks
        self.steps_per_epoch = steps_per_epoch
        self.train_time = 0.0
        self.last_lr = optimizer.param_groups[0]["lr"]

    def step(self, x: torch.Tensor, y: torch.Tensor) -> float:
        started = time.perf_counter()
        lr = self.optimizer.param_groups[0]["lr"]

        def closure() -> torch.Tensor:
            self.optimizer.zero_grad()
            objective = self.task.objective(self.model, x, y)
            objective.backward()
            return objective

        if self.needs_closure:
            loss = self.optimizer.step(closure)
        else:
            loss = closure()
            self.optimizer.step()
        if self.scheduler is not None:
            self.scheduler.step()
        loss_value = float(loss.detach()) if isinstance(loss, torch.Tensor) else float(loss)
        self.train_time += time.perf_counter() - started
        self.last_lr = lr
        state = self.state
        state.step += 1
        state.epoch = state.step / self.steps_per_epoch
        state.batch = (x, y)
        row = {"step": state.step, "epoch": state.epoch, "loss": loss_value, "lr": lr, "time": self.train_time}
        state.trace.steps.append(row)
        self.notify("step_end", row)
        return loss_value

    def evaluate(self, epoch: float) -> None:
        with evaluation_weights(self.optimizer):  # schedule-free: evaluate the average x, not y
            train_loss, train_metric = self.task.evaluate(self.model, "train")
            val_loss, val_metric = self.task.evaluate(self.model, "val")
        row = {"epoch": epoch, "step": self.state.step, "train_loss": train_loss, "val_loss": val_loss,
               "train_metric": train_metric, "val_metric": val_metric, "time": self.train_time, "lr": self.last_lr}
        self.state.trace.epochs.append(row)
        self.state.epoch = epoch
        self.notify("epoch_end", row)

    def evaluate_test(self) -> None:
        """``meta["final_test"]`` = {"loss", "metric"} of the final model, for tasks with a test split."""
        count = self.task.num_examples("test") if hasattr(self.task, "num_examples") else 0
        if count:
            with evaluation_weights(self.optimizer):  # schedule-free: the average x
                loss, metric = self.task.evaluate(self.model, "test")
            self.state.trace.meta["final_test"] = {"loss": loss, "metric": metric, "examples": count}

    def notify(self, event: str, row: dict[str, Any]) -> None:
        """Call the callbacks, in order. When one of them reads the weights (EMA, snapshots,
        sharpness: any callback without ``reads_weights = False``) they run with the weights to
        evaluate swapped in; a progress counter alone costs no swap."""
        self.state.row = row
        if not any(getattr(callback, "reads_weights", True) for callback in self.callbacks):
            for callback in self.callbacks:
                callback(event, self.state)
            return
        with evaluation_weights(self.optimizer):
            for callback in self.callbacks:
                callback(event, self.state)


def _timed(batches: Iterable[tuple[Any, Any]], loop: "_Loop") -> Iterable[tuple[Any, Any]]:
    """The batches, with the time spent producing each (a DataLoader's reading and collating)
    added to the training clock."""
    iterator = iter(batches)
    while True:
        started = time.perf_counter()
        try:
            batch = next(iterator)
        except StopIteration:
            return
        finally:
            loop.train_time += time.perf_counter() - started
        yield batch


def _epoch_batches(task: Any, size: int, generator: torch.Generator) -> Iterable[tuple[Any, Any]]:
    """One epoch of (input, target) batches: the task's own iterator (built-in tensors or
    DataLoaders), or minibatches of ``task.split`` for a task object that only has tensors."""
    if hasattr(task, "train_batches"):
        return task.train_batches(size, generator)
    x, y = task.split.x_train, task.split.y_train
    order = torch.randperm(len(x), generator=generator) if size < len(x) else torch.arange(len(x))
    return ((x[order[i:i + size]], y[order[i:i + size]]) for i in range(0, len(x), size))


__all__ = ["train", "TrainingState", "build_optimizer", "resolve_batch_size", "plan_steps"]
