"""What the API computes: landscape grids with their critical points, and optimizer trajectories.

Plain functions of plain values (no FastAPI here), so they run in worker threads and in tests.
Trajectories come from :func:`optimlab.engine.fast_trajectory.run_fast_trajectory`: the engine's
run (:func:`optimlab.engine.trajectory.run_trajectory`, the one the CLI uses) with the same update
rules applied to plain floats and closed-form gradients, equal to it step by step to rounding, in a
few milliseconds per scene instead of a second.
"""

from __future__ import annotations

import atexit
import gc
import inspect
import math
import multiprocessing
import os
import re
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from functools import lru_cache
from typing import Any, Iterable

import pydantic
import torch

from ..optim.registry import OPTIMIZERS
from ..schedules import SCHEDULES
from ..spec import Spec
from ..trace import Trace
from .models import MAX_OPTIMIZERS, MAX_STEPS, TraceRequest, TraceResponse

# torch's plumbing flags: accepted for drop-in signatures, not something to play with on a page.
HIDDEN_HYPERPARAMETERS = {"foreach", "fused", "capturable", "differentiable", "maximize"}


def finite_or_none(value: Any) -> float | None:
    """JSON has no NaN or infinity: a diverged value becomes null."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def finite_column(values: Iterable[float | None]) -> list[float | None]:
    """A column of floats (or None) for JSON: NaN and infinities become null (fast path of
    :func:`finite_or_none` for values that are already floats)."""
    return [v if v is not None and -math.inf < v < math.inf else None for v in values]


def as_point(value: Any) -> list[float]:
    """A point given as a number, tuple, list or tensor, as a list of floats."""
    if isinstance(value, torch.Tensor):
        value = value.detach().reshape(-1).tolist()
    if isinstance(value, (int, float)):
        return [float(value)]
    return [float(v) for v in value]


def domain_of(landscape: Any) -> list[list[float]]:
    """[[xmin, xmax]] for 1-D, [[xmin, xmax], [ymin, ymax]] for 2-D."""
    return [[float(low), float(high)] for low, high in landscape.bounds]


def evaluate(landscape: Any, points: Iterable[list[float]]) -> list[float | None]:
    """f at each point, in one call of the landscape's vectorized f."""
    points = list(points)
    if not points:
        return []
    with torch.no_grad():
        values = landscape.f(torch.tensor(points, dtype=torch.float64))
    return [finite_or_none(v) for v in values.reshape(-1).tolist()]


def landscape_summary(landscape: Any) -> dict[str, Any]:
    return {
        "name": landscape.name,
        "spec": landscape.spec,
        "dim": int(landscape.dim),
        "formula": landscape.formula,
        "description": landscape.description,
        "start": as_point(landscape.start),
        "domain": domain_of(landscape),
        "minima": [{"x": as_point(m.point), "f": finite_or_none(m.value), "kind": "minimum"} for m in landscape.minima],
        "global_min": finite_or_none(landscape.global_min) if landscape.global_min is not None else None,
    }


def list_landscapes() -> list[dict[str, Any]]:
    from ..landscapes import LANDSCAPES

    return [landscape_summary(landscape) for landscape in LANDSCAPES.values()]


def critical_points(landscape: Any) -> list[dict[str, Any]]:
    """The critical points optimlab.analysis finds in the domain, each as {x, f, kind}.

    kind is the analysis's classification by Hessian eigenvalues: minimum, maximum, saddle or
    degenerate; a global minimum is reported as "global minimum".
    """
    from ..analysis.critical_points import find_critical_points

    return [{"x": as_point(point.point), "f": finite_or_none(point.value),
             "kind": f"global {point.kind}" if point.is_global_min else str(point.kind)}
            for point in find_critical_points(landscape)]


@lru_cache(maxsize=64)
def surface(spec: str, resolution: int) -> dict[str, Any]:
    """The landscape on a resolution x resolution grid over its domain (1-D: resolution points)."""
    from ..landscapes import get_landscape

    landscape = get_landscape(spec)
    summary = landscape_summary(landscape)
    axes = [torch.linspace(low, high, resolution, dtype=torch.float64) for low, high in summary["domain"]]
    with torch.no_grad():
        if landscape.dim == 1:
            z = [finite_or_none(v) for v in landscape.f(axes[0].unsqueeze(-1)).tolist()]
        else:
            grid_x, grid_y = torch.meshgrid(axes[0], axes[1], indexing="xy")  # shape (len(y), len(x))
            values = landscape.f(torch.stack([grid_x, grid_y], dim=-1))
            z = [[finite_or_none(v) for v in row] for row in values.tolist()]
    points = critical_points(landscape)
    minimum_values = [p["f"] for p in points + summary["minima"] if "minimum" in p["kind"] and p["f"] is not None]
    if summary["global_min"] is not None:
        minimum_values.append(summary["global_min"])
    return {
        **summary,
        "x": axes[0].tolist(),
        "y": axes[1].tolist() if landscape.dim == 2 else None,
        "z": z,
        "f_star": min(minimum_values) if minimum_values else None,
        "critical_points": points,
    }


def _kind_of(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float"
    if isinstance(value, (tuple, list)) and len(value) == 2:
        return "pair"
    return "text"


def _hyperparameters(defaults: dict[str, Any]) -> list[dict[str, Any]]:
    rows = []
    for name, default in defaults.items():
        if name in HIDDEN_HYPERPARAMETERS or default is None and name != "lr":
            continue
        if isinstance(default, tuple):
            default = list(default)
        rows.append({"name": name, "default": default, "kind": _kind_of(default)})
    return rows


def list_optimizers() -> list[dict[str, Any]]:
    return [
        {"name": entry.name, "class_name": entry.class_path.split(":")[1], "description": entry.description,
         "needs_closure": entry.needs_closure, "hyperparameters": _hyperparameters(entry.all_defaults())}
        for entry in OPTIMIZERS.values()
    ]


def _schedule_arguments(factory: Any) -> list[dict[str, Any]]:
    """A schedule's arguments; a required one, or an optional one defaulting to None, has
    default None and the kind of its annotation."""
    rows = []
    for parameter in inspect.signature(factory).parameters.values():
        if parameter.kind is not parameter.POSITIONAL_OR_KEYWORD:
            continue
        required = parameter.default is inspect.Parameter.empty
        if not required and parameter.default is not None:
            rows.extend(_hyperparameters({parameter.name: parameter.default}))
            continue
        annotation = str(parameter.annotation)
        kind = ("list" if re.search(r"tuple|list|Sequence", annotation) else "int" if "int" in annotation
                else "float" if "float" in annotation else "text")
        rows.append({"name": parameter.name, "default": None, "kind": kind, "required": required})
    return rows


def list_schedules() -> list[dict[str, Any]]:
    rows = []
    for name, factory in SCHEDULES.items():
        doc = (inspect.getdoc(factory) or "").splitlines()
        rows.append({"name": name, "description": doc[0] if doc else "",
                     "hyperparameters": _schedule_arguments(factory)})
    return rows


def trace_result(label: str, spec: Spec, trace: Trace, seconds: float, steps_requested: int) -> dict[str, Any]:
    rows = trace.steps
    steps_run = max(len(rows) - 1, 0)
    stopped_early = bool(trace.meta.get("stopped_early"))
    text = trace.outcome_text
    if stopped_early:
        text += f" (stopped at step {steps_run} of {steps_requested}: time budget)"
    return {
        "label": label,
        "spec": str(spec),
        "outcome": trace.outcome,
        "outcome_text": text,
        "diverged_at": trace.diverged_at,
        "steps_run": steps_run,
        "stopped_early": stopped_early,
        "seconds": seconds,
        "x": [[v if -math.inf < v < math.inf else None for v in row["x"]] for row in rows],
        "f": finite_column(row["f"] for row in rows),
        "grad_norm": finite_column(row["grad_norm"] for row in rows),
        "lr": finite_column(row["lr"] for row in rows),
    }


def skipped_result(label: str, spec: Spec, start: list[float], reason: str) -> dict[str, Any]:
    return {"label": label, "spec": str(spec), "outcome": "skipped", "outcome_text": reason,
            "diverged_at": None, "steps_run": 0, "stopped_early": True, "seconds": 0.0, "x": [start],
            "f": [None], "grad_norm": [None], "lr": [None]}


def run_scene(request: TraceRequest, max_seconds: float) -> dict[str, Any]:
    """Run every optimizer of the request on its landscape, within about `max_seconds` of wall time.

    Optimizers run one after the other with the same seed (the same gradient-noise draws). Each
    gets an equal share of the time left; one that cannot finish its steps in its share stops at
    the deadline (``stopped_early``; the outcome text says at which step), one that gets no time
    is reported as skipped. ``truncated`` is true when any run was cut.
    """
    from ..engine.fast_trajectory import classify_scene, run_fast_trajectory
    from ..landscapes import get_landscape

    began = time.perf_counter()
    landscape = get_landscape(request.landscape)
    start = list(request.start) if request.start is not None else as_point(landscape.start)
    schedule = str(request.schedule.to_spec()) if request.schedule else None
    runs: list[tuple[str, Spec, Trace | None, float]] = []
    for index, optimizer in enumerate(request.optimizers):
        spec = optimizer.to_spec()
        label = optimizer.label or str(spec)
        remaining = max_seconds - (time.perf_counter() - began)
        if remaining <= 0:
            runs.append((label, spec, None, 0.0))
            continue

        ran = time.perf_counter()
        share = remaining / (len(request.optimizers) - index)  # what the others do not use carries over
        trace = run_fast_trajectory(spec, landscape, request.steps, start=start, schedule=schedule, noise=request.noise,
                                    seed=request.seed, tol=request.tol, max_seconds=share, classify=False)
        runs.append((label, spec, trace, time.perf_counter() - ran))
    classify_scene([run[2] for run in runs if run[2] is not None], landscape, request.tol)  # one batched search
    results = [trace_result(label, spec, trace, seconds, request.steps) if trace is not None
               else skipped_result(label, spec, start, f"not run: time budget of {max_seconds:g} s spent")
               for label, spec, trace, seconds in runs]
    return {
        "landscape": landscape.spec,
        "dim": int(landscape.dim),
        "start": start,
        "steps": request.steps,
        "noise": request.noise,
        "schedule": schedule,
        "traces": results,
        "truncated": any(result["stopped_early"] for result in results),
        "elapsed_seconds": time.perf_counter() - began,
        "limits": {"max_steps": MAX_STEPS, "max_optimizers": MAX_OPTIMIZERS, "max_seconds": max_seconds},
    }


def scene_json(request: TraceRequest, max_seconds: float) -> bytes:
    """:func:`run_scene`'s result checked against :class:`TraceResponse` and serialized as JSON.

    Done in the worker process, so that the server's process only passes bytes along: no pickling
    of thousands of floats between processes, no validation and encoding under the server's GIL.
    """
    result = run_scene(request, max_seconds)
    try:
        return TraceResponse.model_validate(result).model_dump_json().encode()
    except pydantic.ValidationError as error:  # a ValueError, which the app would answer as the user's fault
        raise RuntimeError(f"a scene's result does not match TraceResponse: {error}") from None


class ScenePool:
    """Scenes computed in worker processes, so that concurrent requests use every core.

    A scene is pure Python arithmetic (see :mod:`optimlab.engine.fast_trajectory`), so threads of
    one process take turns on the GIL: 8 clients get no more throughput than one. The app's compute
    threads each hand their scene to this pool and wait (without the GIL) for the result. Workers
    are spawned (not forked: torch's threads do not survive a fork) on first use and warmed up; a
    pool whose worker died is replaced at the next request.
    """

    def __init__(self, workers: int) -> None:
        self.workers = workers
        self._executor: ProcessPoolExecutor | None = None
        self._lock = threading.Lock()

    def executor(self) -> ProcessPoolExecutor:
        with self._lock:
            if self._executor is None:
                self._executor = ProcessPoolExecutor(self.workers, mp_context=multiprocessing.get_context("spawn"),
                                                     initializer=_start_worker)
            return self._executor

    def start(self) -> None:
        """Spawn and warm every worker now (the first visitor should not wait for imports)."""
        for future in [self.executor().submit(os.getpid) for _ in range(self.workers)]:
            future.result()  # a worker takes tasks once its initializer has warmed it up

    def scene_json(self, request: TraceRequest, max_seconds: float) -> bytes:
        """:func:`scene_json` in a worker process."""
        executor = self.executor()
        try:
            return executor.submit(scene_json, request, max_seconds).result()
        except BrokenProcessPool:
            with self._lock:
                if self._executor is executor:
                    self._executor = None
            raise

    def shutdown(self) -> None:
        with self._lock:
            if self._executor is not None:
                self._executor.shutdown(wait=False, cancel_futures=True)
                self._executor = None


def _start_worker() -> None:
    """A pool worker's initializer: exit with the server, then warm up."""
    threading.Thread(target=_exit_with_parent, args=(os.getppid(),), daemon=True, name="exit-with-parent").start()
    _warm_worker()


def _exit_with_parent(parent: int, period: float = 1.0) -> None:
    """Exit when the process that started this worker is gone. A worker holds both ends of the pool's
    queue, so it never sees the server die: a server killed (SIGKILL, a test's timeout) used to leave
    its workers behind, 300 MB each, for ever."""
    while os.getppid() == parent:
        time.sleep(period)
    os._exit(0)


def _warm_worker() -> None:
    """Import and run everything a scene needs once (rules, closed forms, the Newton search)."""
    from ..engine.fast_trajectory import classify_scene, run_fast_trajectory

    traces = [run_fast_trajectory(name, "rosenbrock", 3, classify=False) for name in ("gd", "momentum", "adam")]
    classify_scene(traces, "rosenbrock")
    freeze_imports()


def freeze_imports() -> None:
    """Move every object alive now (torch, the app, ~300,000 of them) out of the garbage collector's
    view. A full collection otherwise scans them all: 133 ms measured in a warmed worker, which
    stalls the scenes queued behind it several times a minute under load."""
    gc.collect()
    gc.freeze()


_POOLS: dict[int, ScenePool] = {}


def scene_pool(workers: int = 2) -> ScenePool:
    """The process-wide pool with `workers` processes (one per size, created on first use)."""
    if workers not in _POOLS:
        _POOLS[workers] = ScenePool(workers)
    return _POOLS[workers]


@atexit.register
def _stop_pools() -> None:
    for pool in _POOLS.values():
        pool.shutdown()


__all__ = ["list_landscapes", "list_optimizers", "list_schedules", "surface", "run_scene", "scene_json", "scene_pool",
           "ScenePool"]
