"""The playground's FastAPI app: one static page and a small JSON API over the engine.

Routes: ``/`` (the page), ``/static/*`` (its CSS/JS), ``/vendor/plotly.min.js`` (served from the
installed plotly package: no CDN, no network), ``/api/landscapes``, ``/api/surface``,
``/api/optimizers``, ``/api/schedules``, ``POST /api/trace``; the schema is at ``/openapi.json``.
FastAPI's /docs and /redoc pages are off: they load Swagger/ReDoc from a CDN, and nothing here
may need the network.

Work is bounded per request (body size, steps, optimizers, each hyperparameter and landscape
argument, seconds; see :mod:`optimlab.web.models` and :mod:`optimlab.web.allowlist`) and
across requests: computations run in a small thread pool (``workers`` at a time) so the event
loop keeps serving, and a request that waits longer than ``queue_seconds`` for a worker gets 503.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import weakref
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, AsyncIterator, Callable

from fastapi import FastAPI, HTTPException, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles

from .. import __version__
from . import compute, live, runs, slice as landscape_slice
from .allowlist import adjustable, check_landscape
from .limits import MAX_MESSAGE, BodySizeLimit, clip, validation_content
from .models import (MAX_BODY_BYTES, MAX_RESOLUTION, MAX_SECONDS, MIN_RESOLUTION, LandscapeSummary, OptimizerInfo,
                     ScheduleInfo, SurfaceResponse, TraceRequest, TraceResponse)
from .pages import STATIC_DIR, add_page

DEFAULT_LANDSCAPE = "valley"  # the first preset's (static/presets.js), surfaced during warm-up
DEFAULT_RESOLUTION = 121


def plotly_js_path() -> Path:
    """plotly.min.js as shipped inside the installed plotly Python package."""
    import plotly

    package_dir = Path(plotly.__file__).parent
    candidate = package_dir / "package_data" / "plotly.min.js"
    if candidate.is_file():
        return candidate
    found = sorted(package_dir.rglob("plotly*.min.js"))
    if not found:
        raise FileNotFoundError(f"plotly.min.js not found under {package_dir}")
    return found[0]


class ComputeGate:
    """At most `workers` computations at once, in a private thread pool; waiting is bounded."""

    def __init__(self, workers: int, queue_seconds: float) -> None:
        self.executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="optimlab-web")
        self.workers = workers
        self.queue_seconds = queue_seconds
        self._semaphores: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()

    def _semaphore(self) -> asyncio.Semaphore:
        loop = asyncio.get_running_loop()
        if loop not in self._semaphores:
            self._semaphores[loop] = asyncio.Semaphore(self.workers)
        return self._semaphores[loop]

    async def run(self, function: Callable[..., Any], *args: Any) -> Any:
        semaphore = self._semaphore()
        try:
            await asyncio.wait_for(semaphore.acquire(), timeout=self.queue_seconds)
        except asyncio.TimeoutError:
            raise HTTPException(503, f"server busy: no worker free within {self.queue_seconds:g} s; retry") from None
        try:
            return await asyncio.get_running_loop().run_in_executor(self.executor, functools.partial(function, *args))
        except ValueError as error:  # a user error the engine found (e.g. a spec it cannot run)
            raise HTTPException(422, str(error)) from None
        finally:
            semaphore.release()


def warm_up(workers: int = 2, freeze_gc: bool = False) -> None:
    """One tiny run and one surface, so the first visitor does not pay for lazy imports and first calls;
    with `freeze_gc`, then hide everything alive from the garbage collector (see compute.freeze_imports)."""
    from ..engine.trajectory import run_trajectory

    run_trajectory("gd", "bowl", 3)
    compute.surface(DEFAULT_LANDSCAPE, DEFAULT_RESOLUTION)
    compute.scene_pool(workers).start()
    if freeze_gc:
        compute.freeze_imports()


def create_app(*, max_seconds: float = MAX_SECONDS, workers: int = 2, queue_seconds: float = 15.0,
               freeze_gc: bool = False) -> FastAPI:
    """The playground app. `max_seconds`: time budget of one /api/trace request. `freeze_gc`: after
    warming up, `gc.freeze()` this process (what `optimlab serve` does: the process is the server's
    alone; an app embedded in someone else's process leaves their garbage collector alone)."""
    gate = ComputeGate(workers, queue_seconds)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        asyncio.get_running_loop().run_in_executor(gate.executor, warm_up, workers, freeze_gc)  # in the background
        yield
        gate.executor.shutdown(wait=False, cancel_futures=True)

    app = FastAPI(
        title="optimlab playground",
        version=__version__,
        description="Optimizer trajectories on analytic landscapes, computed by optimlab's engine.",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
    )
    app.state.gate = gate

    @app.exception_handler(RequestValidationError)
    async def _invalid_request(request: Request, error: RequestValidationError) -> JSONResponse:
        return JSONResponse(status_code=422, content=validation_content(list(error.errors())))

    @app.exception_handler(HTTPException)
    async def _http_error(request: Request, error: HTTPException) -> JSONResponse:
        message = clip(str(error.detail), MAX_MESSAGE)
        return JSONResponse(status_code=error.status_code, content={"message": message, "detail": message})

    add_page(app, "/", "index.html")

    @app.get("/vendor/plotly.min.js", include_in_schema=False)
    def plotly_js() -> FileResponse:
        return FileResponse(plotly_js_path(), media_type="text/javascript",
                            headers={"Cache-Control": "public, max-age=86400"})

    @app.get("/api/landscapes", response_model=list[LandscapeSummary], tags=["landscapes"])
    def landscapes() -> list[dict[str, Any]]:
        """Every landscape of optimlab.landscapes: dimension, domain, default start, known minima."""
        return compute.list_landscapes()

    @app.get("/api/surface", response_model=SurfaceResponse, tags=["landscapes"])
    async def surface(
        landscape: str = Query(min_length=1, max_length=120, description="landscape spec"),
        resolution: int = Query(DEFAULT_RESOLUTION, ge=MIN_RESOLUTION, le=MAX_RESOLUTION),
    ) -> dict[str, Any]:
        """The landscape sampled on a grid over its domain, with its critical points classified."""
        try:
            check_landscape(landscape)
        except ValueError as error:
            raise HTTPException(422, str(error)) from None
        return await gate.run(compute.surface, landscape, resolution)

    @app.get("/api/optimizers", response_model=list[OptimizerInfo], tags=["optimizers"])
    def optimizers() -> list[dict[str, Any]]:
        """The optimizer registry with the default of each hyperparameter a request may set."""
        return adjustable(compute.list_optimizers())

    @app.get("/api/schedules", response_model=list[ScheduleInfo], tags=["optimizers"])
    def schedules() -> list[dict[str, Any]]:
        """The learning-rate schedules (multipliers of each optimizer's lr)."""
        return compute.list_schedules()

    @app.post("/api/trace", response_model=TraceResponse, tags=["trajectories"])
    async def trace(request: TraceRequest) -> Response:
        """Run each optimizer from the start point; returns x, f, |grad| and lr per step and the outcome."""
        body = await gate.run(compute.scene_pool(workers).scene_json, request, max_seconds)
        return Response(body, media_type="application/json")  # validated against TraceResponse by the worker

    app.include_router(live.create_router(max_seconds))  # /eos and the streamed /api/live/* (optimlab.web.live)
    app.include_router(landscape_slice.create_router(max_seconds))  # /slice and POST /api/live/slice
    app.include_router(runs.create_router())  # /runs and /api/runs* (optimlab.web.runs)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    app.add_middleware(BodySizeLimit, max_bytes=MAX_BODY_BYTES)
    return app
