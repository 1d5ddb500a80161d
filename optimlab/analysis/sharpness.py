"""Sharpness during training: a callback for ``train(..., callbacks=[...])``.

``SharpnessTracker(every=50)`` measures at the initial model (into epoch row 0, step 0), after step 1
and every ``every`` steps (into that step's row: the model *after* the update), on a fixed set of
training examples (the task's objective: loss plus its penalty) and in a recorded model mode:

- ``sharpness``: lambda_max of the loss Hessian (Lanczos, ``iterations`` products);
- ``preconditioned_sharpness``: for Adam/AdamW/RMSprop/Adagrad, lambda_max(P^{-1/2} H P^{-1/2}) with P
  the optimizer's current diagonal preconditioner (see :mod:`optimlab.analysis.stability`);
- ``stability_threshold``: the threshold the tracked quantity is compared with (2/lr for GD, ...);
- ``sharpness_seconds``: the wall time this measurement took.

and adds these keys to the current step row. At the end of training it writes
``trace.meta["sharpness"]``: the settings, the operator's mode and data, the total seconds and the
cost relative to the training time. From the command line: ``--track sharpness:every=50``.
"""

from __future__ import annotations

import math
import time
from typing import Any

import torch
from torch import nn

from ..spec import Spec, parse_spec
from .curvature import extreme_eigenvalues
from .hvp import HessianOperator, check_mode
from .stability import PreconditionedOperator, preconditioner, stability_rule

TRACKED_COLUMNS = ("sharpness", "sharpness_error", "preconditioned_sharpness", "stability_threshold",
                   "sharpness_seconds")


def measure_sharpness(model: nn.Module, loss_fn: Any, inputs: torch.Tensor, targets: torch.Tensor, *,
                      optimizer: torch.optim.Optimizer | None = None, mode: str = "train",
                      max_examples: int | None = None, chunk_size: int | None = 2048, iterations: int = 20,
                      seed: int = 0, penalty: Any = None) -> dict[str, Any]:
    """One measurement: sharpness, its Lanczos error bound, and the optimizer's threshold and
    preconditioned sharpness (when an optimizer is given). Returns a row dict (keys TRACKED_COLUMNS)."""
    started = time.perf_counter()
    op = HessianOperator(model, loss_fn, inputs, targets, mode=mode, max_examples=max_examples,
                         chunk_size=chunk_size, penalty=penalty)
    top, _ = extreme_eigenvalues(op, 1, iterations=iterations, seed=seed)
    row: dict[str, Any] = {"sharpness": top.eigenvalues[0], "sharpness_error": top.error_bounds[0]}
    if optimizer is not None:
        rule = stability_rule(optimizer)
        row["stability_threshold"] = rule.threshold
        diagonal = preconditioner(optimizer, op.params)
        if rule.quantity == "preconditioned":
            if diagonal is None:
                row["preconditioned_sharpness"] = None  # no preconditioner before the first step
            else:
                pre, _ = extreme_eigenvalues(PreconditionedOperator(op, diagonal), 1, iterations=iterations,
                                             seed=seed)
                row["preconditioned_sharpness"] = pre.eigenvalues[0]
    row["sharpness_seconds"] = time.perf_counter() - started
    return row


class SharpnessTracker:
    """Training callback: ``callback(event, state)`` with state.model/.optimizer/.task/.step/.trace.

    Args:
        every: measure after step 1 and then every `every` steps (steps counted from 1).
        examples: the first N training examples (None: the whole training set); recorded.
        mode: "train" (the objective the optimizer sees; default) or "eval".
        iterations: Lanczos steps per measurement (each one Hessian-vector product).
        chunk_size: examples per forward pass (bounds memory; with BatchNorm in train mode it also
            sets the batch statistics, so keep it equal to the training batch for that case).
        seed: the Lanczos start vector's seed (the same at every measurement).
    """

    def __init__(self, every: int = 50, examples: int | None = None, mode: str = "train", iterations: int = 20,
                 chunk_size: int | None = 2048, seed: int = 0) -> None:
        if not isinstance(every, int) or every < 1:
            raise ValueError(f"every={every!r} must be a positive integer")
        if not isinstance(iterations, int) or iterations < 2:
            raise ValueError(f"iterations={iterations!r} must be an integer >= 2")
        if examples is not None and (not isinstance(examples, int) or examples < 1):
            raise ValueError(f"examples={examples!r} must be a positive integer")
        self.every, self.examples, self.mode = every, examples, check_mode(mode)
        self.iterations, self.chunk_size, self.seed = iterations, chunk_size, seed
        self.seconds, self.measurements = 0.0, 0
        self.operator_info: dict[str, Any] | None = None
        self.rule: dict[str, Any] = {}

    def __call__(self, event: str, state: Any) -> None:
        step = int(state.step)
        if event == "epoch_end" and step == 0 and not self.measurements:
            self.measure(state, current_row(state))  # the initial model: into epoch row 0
        elif event == "step_end" and (step == 1 or step % self.every == 0):
            self.measure(state, current_row(state))
        elif event == "train_end":
            self.finish(state)

    def measure(self, state: Any, row: dict[str, Any]) -> dict[str, Any]:
        inputs, targets = training_data(state.task, self.examples)
        measured = measure_sharpness(
            state.model, state.task.loss_fn, inputs, targets, optimizer=state.optimizer, mode=self.mode,
            max_examples=self.examples, chunk_size=self.chunk_size, iterations=self.iterations, seed=self.seed,
            penalty=getattr(state.task, "penalty", None),
        )
        if self.operator_info is None:
            rule = stability_rule(state.optimizer)
            self.rule = {"compared": rule.quantity, "formula": rule.formula}
            used = min(self.examples or len(inputs), len(inputs))
            self.operator_info = {"mode": self.mode, "examples": used,
                                  "of": getattr(state.task, "num_train", len(inputs))}
        self.seconds += measured["sharpness_seconds"]
        self.measurements += 1
        row.update(measured)
        return measured

    def finish(self, state: Any) -> None:
        """``trace.meta["sharpness"]``: settings, data, seconds, and ``cost_vs_training`` = tracker
        seconds / training seconds (the engine's clock excludes callbacks)."""
        trace = state.trace
        training = _training_seconds(trace)
        trace.meta["sharpness"] = {
            "every": self.every, "iterations": self.iterations, "seed": self.seed, "measurements": self.measurements,
            "seconds": self.seconds, "training_seconds": training,
            "cost_vs_training": self.seconds / training if training else None,
            "share_of_total": self.seconds / (self.seconds + training) if self.seconds + training > 0 else None,
            "data": self.operator_info, **self.rule,
        }


def _training_seconds(trace: Any) -> float:
    if trace.meta.get("train_seconds") is not None:
        return float(trace.meta["train_seconds"])
    times = [row.get("time") for row in trace.steps if row.get("time") is not None]
    return float(times[-1]) if times else 0.0


def current_row(state: Any) -> dict[str, Any]:
    """The row of the step that just ended (``state.row`` if the engine offers it, else the last step row)."""
    row = getattr(state, "row", None)
    if row is None:
        row = state.trace.steps[-1]
    return row


def training_data(task: Any, limit: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """(inputs, targets) of a task's training split, its first ``limit`` examples when given:
    ``task.data("train", limit)`` (a DataLoader-backed task gathers only those)."""
    return task.data("train") if limit is None else task.data("train", limit=limit)


def tracked_quantity(trace: Any) -> str:
    """The column compared with the threshold: the preconditioned sharpness when it was measured."""
    if any(row.get("preconditioned_sharpness") is not None for row in trace.steps + trace.epochs[:1]):
        return "preconditioned_sharpness"
    return "sharpness"


def sharpness_rows(trace: Any) -> list[dict[str, Any]]:
    """The measured rows: the initial model (epoch row 0, step 0) if measured, then the step rows."""
    initial = [row for row in trace.epochs[:1] if row.get("sharpness") is not None]
    return initial + [row for row in trace.steps if row.get("sharpness") is not None]


def first_crossing(trace: Any) -> int | None:
    """The first measured step whose tracked quantity reaches its stability threshold (None: never)."""
    quantity = tracked_quantity(trace)
    for row in sharpness_rows(trace):
        value, threshold = row.get(quantity), row.get("stability_threshold")
        if value is not None and threshold is not None and value >= threshold:
            return int(row["step"])
    return None


def sharpness_overview(trace: Any) -> dict[str, Any]:
    """Initial, max, final of the tracked quantity, the threshold, when training first reaches it, and
    ``near_threshold_after`` = the share of the later measurements within 10% of their threshold
    (close to 1 when the run hovers at the edge of stability)."""
    quantity = tracked_quantity(trace)
    rows = sharpness_rows(trace)
    values = [(row["step"], row.get(quantity)) for row in rows if row.get(quantity) is not None
              and math.isfinite(row.get(quantity))]
    thresholds = [row["stability_threshold"] for row in rows if row.get("stability_threshold") is not None]
    if not values:
        return {"quantity": quantity, "measurements": 0}
    peak = max(values, key=lambda pair: pair[1])
    late = [v for step, v in values if step >= 0.5 * values[-1][0]]
    crossing = first_crossing(trace)
    after = [row for row in rows if crossing is not None and row["step"] > crossing
             and row.get(quantity) is not None and row.get("stability_threshold")]
    near = [abs(row[quantity] / row["stability_threshold"] - 1) <= 0.1 for row in after]
    return {
        **{k: v for k, v in trace.meta.get("sharpness", {}).items() if k != "data"},
        "quantity": quantity, "measurements": len(values), "initial": values[0][1], "max": peak[1],
        "max_step": peak[0], "final": values[-1][1], "final_step": values[-1][0],
        "threshold": thresholds[-1] if thresholds else None,
        "mean_second_half": sum(late) / len(late), "first_crossing": crossing,
        "near_threshold_after": sum(near) / len(near) if near else None,
    }


TRACKERS = {"sharpness": SharpnessTracker}


def tracker_from_spec(spec: str | Spec) -> SharpnessTracker:
    """``"sharpness:every=50,examples=1000,mode=eval,iterations=20"`` -> a tracker callback."""
    parsed = parse_spec(spec, "track spec") if isinstance(spec, str) else spec
    if parsed.name not in TRACKERS:
        raise ValueError(f"unknown tracker {parsed.name!r}; choose one of: {', '.join(TRACKERS)}")
    allowed = ("every", "examples", "mode", "iterations", "chunk_size", "seed")
    for key in parsed.kwargs:
        if key not in allowed:
            raise ValueError(f"unknown option {key!r} for --track {parsed.name}; allowed: {', '.join(allowed)}")
    return TRACKERS[parsed.name](**parsed.kwargs)
