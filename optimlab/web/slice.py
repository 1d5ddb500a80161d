"""A loss-landscape slice of a trained network, with the optimizers' paths on it: ``POST /api/live/slice``
and the ``/slice`` page.

Each optimizer (1 to 3; full-batch gd, momentum or Adam, as in :mod:`optimlab.web.live`) trains the
same network from the same initialization (same seed) with optimlab's engine
(:func:`optimlab.engine.training.train`); the weights are kept every ``every`` steps. The first
optimizer's final weights theta* (its last finite ones if it diverged) are the center of the slice:
the task's training objective on a
``resolution`` x ``resolution`` grid theta* + alpha d1 + beta d2 along two filter-normalized random
directions (Li et al. 2018, :mod:`optimlab.analysis.landscape_slice`), and every optimizer's kept
weights projected onto (d1, d2) by least squares. The answer is one JSON object::

    {"task": ..., "alphas": [...], "betas": [...], "losses": [[...]] (rows: beta),
     "center_loss": ...,
     "span": ..., "runs": [{"optimizer": "gd:lr=0.5", "steps": [0, 10, ...], "alpha": [...],
     "beta": [...], "final_loss": ..., "outcome": ..., "stopped": null | "time budget"}],
     "stopped": null | "time budget", "seconds": ...}

Caps, as for ``/api/live/eos``: validated fields (steps <= 2000, <= 200 kept weights a run, grid
resolution <= 41, <= 3 optimizers), one of the app's compute workers (503 after the queue wait), and
the per-request time budget: a run that reaches it stops (``"stopped": "time budget"``) and any run
after it is not trained; the grid, at most 41 x 41 evaluations, is computed in any case.
"""

from __future__ import annotations

import time
from typing import Any, Literal

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field, model_validator

from .live import FullBatchOptimizer, finite_or_none
from .models import MAX_SECONDS
from .pages import add_page

MAX_SLICE_STEPS = 2000
MAX_SNAPSHOTS = 200
MAX_SLICE_RESOLUTION = 41
MAX_SLICE_OPTIMIZERS = 3
SLICE_TASKS = ("digits-softmax", "digits-mlp")


class SliceRequest(BaseModel):
    """Train 1-3 full-batch optimizers from one init, then slice the loss around the first one's end."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"optimizers": [{"optimizer": "gd", "lr": 0.5}, {"optimizer": "adam", "lr": 0.01}],
         "task": "digits-mlp", "steps": 200, "every": 10, "resolution": 21}]})

    optimizers: list[FullBatchOptimizer] = Field(min_length=1, max_length=MAX_SLICE_OPTIMIZERS)
    task: Literal[SLICE_TASKS] = "digits-mlp"  # type: ignore[valid-type]
    steps: int = Field(default=200, ge=1, le=MAX_SLICE_STEPS)
    every: int = Field(default=10, ge=1, le=MAX_SLICE_STEPS, description="keep the weights every `every` steps")
    resolution: int = Field(default=21, ge=3, le=MAX_SLICE_RESOLUTION, description="grid points per axis")
    span: float | None = Field(default=None, gt=0.0, le=100.0, allow_inf_nan=False,
                               description="alpha, beta in [-span, span]; null: wide enough for every path")
    seed: int = Field(default=0, ge=0, le=2**31 - 1, description="initialization and directions")

    @model_validator(mode="after")
    def _bounded_snapshots(self) -> "SliceRequest":
        count = 1 + self.steps // self.every
        if count > MAX_SNAPSHOTS:
            raise ValueError(f"steps={self.steps} with every={self.every} keeps {count} weights a run; "
                             f"at most {MAX_SNAPSHOTS} (raise every)")
        return self


class _Snapshots:
    """A train() callback: the weights at step 0, every `every` steps and at the last step; stops at the deadline."""

    def __init__(self, every: int, deadline: float) -> None:
        self.every, self.deadline = every, deadline
        self.steps: list[int] = []
        self.weights: list[list[Any]] = []
        self.stopped: str | None = None

    def keep(self, state: Any) -> None:
        if self.steps and self.steps[-1] == state.step:
            return
        self.steps.append(int(state.step))
        self.weights.append([p.detach().clone() for p in state.model.parameters()])

    def __call__(self, event: str, state: Any) -> None:
        if (event == "epoch_end" and state.step == 0) or (event == "step_end" and state.step % self.every == 0):
            self.keep(state)
        elif event == "train_end":
            self.keep(state)
        if event == "step_end" and time.perf_counter() > self.deadline and not state.stop:
            self.stopped, state.stop = "time budget", True


def _path(run: dict[str, Any], coordinates: list[tuple[float, float]]) -> dict[str, Any]:
    return {**run, "alpha": [finite_or_none(a) for a, _ in coordinates],
            "beta": [finite_or_none(b) for _, b in coordinates]}


def _last_finite(snapshots: list[list[Any]]) -> list[Any]:
    """The last kept weights with no NaN or infinity (a diverged run's last are not a center)."""
    for weights in reversed(snapshots):
        if all(bool(w.isfinite().all()) for w in weights):
            return weights
    raise ValueError("the first optimizer diverged at once: no finite weights to center the slice on")


def run_slice(request: SliceRequest, max_seconds: float) -> dict[str, Any]:
    """Train each optimizer (in this worker thread), then the slice around the first one's final weights."""
    from ..analysis.landscape_slice import landscape_slice
    from ..engine.training import train
    from ..tasks import get_task

    began = time.perf_counter()
    task = get_task(request.task)
    inputs, targets = task.data("train")
    deadline = time.perf_counter() + max_seconds
    runs, kept, stopped = [], [], None
    for entry in request.optimizers:
        spec = entry.optimizer_spec()
        if time.perf_counter() > deadline:
            stopped = "time budget"
            runs.append({"optimizer": spec, "steps": [], "final_loss": None, "outcome": "not run", "stopped": stopped})
            kept.append([])
            continue
        snapshots = _Snapshots(request.every, deadline)
        trace = train(spec, task, batch_size="full", max_steps=request.steps, epochs=request.steps, seed=request.seed,
                      callbacks=[snapshots])
        stopped = stopped or snapshots.stopped
        runs.append({"optimizer": spec, "steps": snapshots.steps,
                     "final_loss": finite_or_none(trace.epochs[-1]["train_loss"]),
                     "outcome": trace.outcome, "stopped": snapshots.stopped})
        kept.append(snapshots.weights)
    model = task.make_model()
    center = _last_finite(kept[0])
    result = landscape_slice(model, lambda m: task.objective(m, inputs, targets), center, kept,
                             resolution=request.resolution, span=request.span, seed=request.seed)
    return {"task": request.task, "alphas": result.alphas, "betas": result.betas,
            "losses": [[finite_or_none(v) for v in row] for row in result.losses],
            "center_loss": finite_or_none(result.center_loss), "span": result.alphas[-1],
            "runs": [_path(run, path) for run, path in zip(runs, result.paths)],
            "stopped": stopped, "seconds": time.perf_counter() - began}


def create_router(max_seconds: float = MAX_SECONDS) -> APIRouter:
    """The /slice page and POST /api/live/slice; ``max_seconds`` caps one request's training time."""
    router = APIRouter()
    add_page(router, "/slice", "slice.html")

    @router.post("/api/live/slice", tags=["live"])
    async def loss_slice(body: SliceRequest, request: Request) -> dict[str, Any]:
        """Train 1-3 optimizers from one init; the loss slice around the first one's final weights along two
        filter-normalized random directions, with every optimizer's path projected on it (see the module)."""
        return await request.app.state.gate.run(run_slice, body, max_seconds)

    return router


__all__ = ["SliceRequest", "create_router", "run_slice", "MAX_SLICE_STEPS", "MAX_SLICE_RESOLUTION",
           "MAX_SLICE_OPTIMIZERS", "MAX_SNAPSHOTS"]
