"""Real networks in the playground, streamed as they train: ``POST /api/live/eos`` and the ``/eos`` page.

Edge of stability (Cohen et al. 2021) live: full-batch gradient descent, momentum or Adam on the
digits task, trained by optimlab's engine (:func:`optimlab.engine.training.train`) with its
:class:`~optimlab.analysis.sharpness.SharpnessTracker`. Every measured step is sent as one NDJSON
line (``application/x-ndjson``) the moment it is measured:

    {"type": "start", "threshold_formula": "2/lr", "compared": "sharpness", ...}
    {"type": "step", "step": 20, "loss": 0.41, "sharpness": 1.7, "preconditioned_sharpness": null,
     "threshold": 2.0, "seconds": 0.8}
    {"type": "end", "steps": 300, "stopped": null | "time budget", "seconds": 6.1}

(``{"type": "error", "message": ...}`` if training fails.) The page plots the tracked quantity
(sharpness for GD and momentum, Adam's preconditioned sharpness) against its threshold 2/lr,
2(1+beta)/lr or (2+2 beta1)/((1-beta1) lr) (= 38/lr at beta1 = 0.9), see
:mod:`optimlab.analysis.stability`.

Caps, as for ``/api/trace``: the request is validated (optimizer from an allowlist with
bounded hyperparameters, task from an allowlist, steps and measurements bounded), the training runs
in one of the app's compute workers (a busy server answers 503 after its queue wait), and the
stream ends at the app's per-request time budget (``"stopped": "time budget"``) or when the client
goes away.
"""

from __future__ import annotations

import asyncio
import json
import math
import threading
import time
from typing import Any, AsyncIterator, Literal

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ConfigDict, Field, model_validator

from .models import MAX_SECONDS
from .pages import add_page

MAX_EOS_STEPS = 2000
MAX_MEASUREMENTS = 200
EOS_TASKS = ("digits-mlp", "digits-mlp:depth=3", "digits-softmax")
EOS_OPTIMIZERS = {"gd": ("lr",), "momentum": ("lr", "momentum"), "adam": ("lr", "betas")}


class FullBatchOptimizer(BaseModel):
    """A full-batch optimizer of the live views: gd, heavy-ball momentum or Adam, bounded hyperparameters."""

    model_config = ConfigDict(extra="forbid")

    optimizer: Literal["gd", "momentum", "adam"] = "gd"
    lr: float = Field(default=1.0, gt=0.0, le=100.0, allow_inf_nan=False)
    momentum: float = Field(default=0.9, ge=0.0, lt=1.0, allow_inf_nan=False, description="momentum only")
    beta1: float = Field(default=0.9, ge=0.0, lt=1.0, allow_inf_nan=False, description="adam only")
    beta2: float = Field(default=0.999, ge=0.0, lt=1.0, allow_inf_nan=False, description="adam only")

    def optimizer_spec(self) -> str:
        if self.optimizer == "gd":
            return f"gd:lr={self.lr!r}"
        if self.optimizer == "momentum":
            return f"momentum:lr={self.lr!r},momentum={self.momentum!r}"
        return f"adam:lr={self.lr!r},betas={self.beta1!r}/{self.beta2!r}"


class EdgeOfStabilityRequest(FullBatchOptimizer):
    """One live edge-of-stability run: full-batch training with sharpness every ``every`` steps."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"optimizer": "gd", "lr": 1.0, "task": "digits-mlp:depth=3", "steps": 200, "every": 4}]})

    task: Literal[EOS_TASKS] = "digits-mlp:depth=3"  # type: ignore[valid-type]
    steps: int = Field(default=200, ge=1, le=MAX_EOS_STEPS)
    every: int = Field(default=4, ge=1, le=MAX_EOS_STEPS, description="measure after step 1 and every `every` steps")
    examples: int = Field(default=512, ge=16, le=2048, description="training examples the Hessian is measured on")
    iterations: int = Field(default=20, ge=4, le=50, description="Lanczos iterations per measurement")
    seed: int = Field(default=0, ge=0, le=2**31 - 1)

    @model_validator(mode="after")
    def _bounded_measurements(self) -> "EdgeOfStabilityRequest":
        count = 1 + self.steps // self.every
        if count > MAX_MEASUREMENTS:
            raise ValueError(f"steps={self.steps} with every={self.every} asks for {count} sharpness measurements; "
                             f"at most {MAX_MEASUREMENTS} (raise every)")
        return self


def finite_or_none(value: Any) -> float | None:
    """A float for JSON: None for None, NaN and infinities."""
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


class _Stream:
    """Bridges the training thread and the response: rows go into an asyncio queue."""

    def __init__(self, loop: asyncio.AbstractEventLoop, budget_seconds: float) -> None:
        self.loop, self.budget_seconds = loop, budget_seconds
        self.deadline = time.perf_counter() + budget_seconds
        self.queue: asyncio.Queue = asyncio.Queue()
        self.cancelled = threading.Event()
        self.stopped: str | None = None

    def put(self, message: dict[str, Any]) -> None:
        self.loop.call_soon_threadsafe(self.queue.put_nowait, message)

    def callback(self, event: str, state: Any) -> None:
        """After the SharpnessTracker (it fills the row first): send measured rows, stop when asked."""
        row = state.row if getattr(state, "row", None) else (state.trace.steps[-1] if state.trace.steps else {})
        if event == "step_end" and "sharpness" in row:
            self.put({"type": "step", "step": int(state.step), "loss": finite_or_none(row.get("loss")),
                      "sharpness": finite_or_none(row.get("sharpness")),
                      "preconditioned_sharpness": finite_or_none(row.get("preconditioned_sharpness")),
                      "threshold": finite_or_none(row.get("stability_threshold")), "lr": finite_or_none(row.get("lr"))})
        if self.cancelled.is_set():
            self.stopped, state.stop = "client left", True
        elif time.perf_counter() > self.deadline:
            self.stopped, state.stop = "time budget", True


def run_edge_of_stability(request: EdgeOfStabilityRequest, stream: _Stream) -> None:
    """Train in this (worker) thread, sending rows to `stream`; always ends with an end/error line."""
    from ..analysis.sharpness import SharpnessTracker
    from ..analysis.stability import stability_rule
    from ..engine.training import build_optimizer, train
    from ..tasks import get_task

    began = time.perf_counter()
    try:
        task = get_task(request.task)
        spec = request.optimizer_spec()
        probe, _, _ = build_optimizer(spec, task.make_model())
        rule = stability_rule(probe)
        stream.put({"type": "start", "task": request.task, "optimizer": spec, "compared": rule.quantity,
                    "threshold_formula": rule.formula, "threshold": rule.threshold, "steps": request.steps,
                    "every": request.every, "examples": request.examples})
        # the budget counts training and measuring, not the one-time imports and data loading before
        stream.deadline = time.perf_counter() + stream.budget_seconds
        tracker = SharpnessTracker(every=request.every, examples=request.examples, iterations=request.iterations,
                                   seed=request.seed)
        trace = train(spec, task, batch_size="full", max_steps=request.steps, epochs=request.steps, seed=request.seed,
                      callbacks=[tracker, stream.callback])
        stream.put({"type": "end", "steps": len(trace.steps), "stopped": stream.stopped, "outcome": trace.outcome,
                    "seconds": time.perf_counter() - began})
    except Exception as error:  # noqa: BLE001 - reported to the page as one line
        stream.put({"type": "error", "message": f"{type(error).__name__}: {error}"})


def create_router(max_seconds: float = MAX_SECONDS) -> APIRouter:
    """The live routes; the app includes them. ``max_seconds`` caps one stream's wall time."""
    router = APIRouter()
    add_page(router, "/eos", "eos.html")

    @router.post("/api/live/eos", tags=["live"], response_class=StreamingResponse,
                 responses={200: {"content": {"application/x-ndjson": {}}}})
    async def edge_of_stability(body: EdgeOfStabilityRequest, request: Request) -> StreamingResponse:
        """Full-batch training on digits with sharpness vs its stability threshold, one NDJSON line per
        measurement (see the module docstring); capped by the per-request time budget."""
        gate = request.app.state.gate
        semaphore = gate._semaphore()
        try:
            await asyncio.wait_for(semaphore.acquire(), timeout=gate.queue_seconds)
        except asyncio.TimeoutError:
            raise HTTPException(503, f"server busy: no worker free within {gate.queue_seconds:g} s; retry") from None
        loop = asyncio.get_running_loop()
        stream = _Stream(loop, max_seconds)
        job = loop.run_in_executor(gate.executor, run_edge_of_stability, body, stream)

        async def lines() -> AsyncIterator[bytes]:
            try:
                while True:
                    message = await stream.queue.get()
                    yield (json.dumps(message) + "\n").encode()
                    if message["type"] in ("end", "error"):
                        break
            finally:
                stream.cancelled.set()  # the client left early: the training stops at its next step
                await asyncio.shield(job)
                semaphore.release()

        return StreamingResponse(lines(), media_type="application/x-ndjson",
                                 headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})

    return router


__all__ = ["EdgeOfStabilityRequest", "FullBatchOptimizer", "finite_or_none", "create_router", "run_edge_of_stability",
           "MAX_EOS_STEPS", "MAX_MEASUREMENTS"]
