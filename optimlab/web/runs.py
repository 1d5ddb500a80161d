"""Stored runs in the browser: ``/runs`` (page), ``/api/runs``, ``/api/runs/curves``, ``/api/runs/report``.

Pick runs from the results store (:class:`optimlab.store.Store`, ``$OPTIMLAB_DB`` or ./optimlab.db;
read only: a missing database lists no runs and is not created), see their training-loss and
validation curves side by side (the figures of ``optimlab report``, drawn interactively), and open
their HTML report (``optimlab report``'s page, written on demand by
:func:`optimlab.report.compare_report.write_compare_report` into a temporary folder, one per set
of ids, and served under ``/api/runs/report/...``).

Caps: at most ``MAX_LISTED`` runs listed, ``MAX_PICKED`` compared at once, ``MAX_POINTS`` points
per curve (evenly thinned); the report is written in one of the app's compute workers.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from pathlib import Path
from typing import Any

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import FileResponse, RedirectResponse

from .pages import add_page

MAX_LISTED = 500
MAX_PICKED = 8
MAX_POINTS = 1000
REPORT_ROOT = Path(tempfile.gettempdir()) / f"optimlab-web-reports-{os.getuid() if hasattr(os, 'getuid') else 0}"


def _store_location() -> str | None:
    """The store's location, or None when it is a SQLite file that does not exist (nothing stored)."""
    from ..store import default_db

    location = default_db()
    if "://" not in location and not Path(location).is_file():
        return None
    return location


def parse_ids(text: str) -> list[int]:
    """'3,5,9' -> [3, 5, 9]: distinct positive ids, at most MAX_PICKED; ValueError naming the problem."""
    if not re.fullmatch(r"\s*\d+(\s*,\s*\d+)*\s*", text or ""):
        raise ValueError(f"ids={text!r} must be run ids separated by commas, e.g. 3,5,9")
    ids = list(dict.fromkeys(int(part) for part in text.split(",")))
    if len(ids) > MAX_PICKED:
        raise ValueError(f"ids: {len(ids)} runs given; compare at most {MAX_PICKED} at once")
    return ids


def _thinned(rows: list[dict[str, Any]], key: str) -> tuple[list[float], list[float | None]]:
    points = [(row.get("step"), row.get(key)) for row in rows if row.get(key) is not None]
    stride = max(1, -(-len(points) // MAX_POINTS))
    kept = points[::stride]
    if points and kept[-1] is not points[-1]:
        kept.append(points[-1])
    finite = lambda v: v if isinstance(v, (int, float)) and v == v and abs(v) != float("inf") else None  # noqa: E731
    return [p[0] for p in kept], [finite(p[1]) for p in kept]


def list_stored_runs(limit: int = MAX_LISTED) -> dict[str, Any]:
    from ..store import Store

    location = _store_location()
    if location is None:
        return {"store": None, "runs": []}
    with Store(location) as store:
        return {"store": store.location, "runs": store.list_runs(limit=limit)}


def run_curves(ids: list[int]) -> dict[str, Any]:
    """Per run: label, task, outcome, training loss per step, validation loss/metric per epoch."""
    from ..store import Store

    location = _store_location()
    if location is None:
        raise ValueError("no results store: set $OPTIMLAB_DB or run from the folder holding optimlab.db")
    curves = []
    with Store(location) as store:
        for run_id in ids:
            trace, config = store.load_run(run_id)
            steps, loss = _thinned(trace.steps, "loss")
            epochs = [row for row in trace.epochs]
            curves.append({"id": run_id, "label": f"#{run_id} {config.get('spec', trace.optimizer)}",
                           "task": trace.problem, "outcome": trace.outcome_text, "steps": steps, "loss": loss,
                           "epoch_steps": [row.get("step") for row in epochs],
                           "val_loss": [row.get("val_loss") for row in epochs],
                           "val_metric": [row.get("val_metric") for row in epochs],
                           "metric": trace.meta.get("metric", "acc")})
    return {"store": location, "runs": curves}


def write_report(ids: list[int]) -> str:
    """Write (or reuse) the HTML report of these runs; returns its folder name under REPORT_ROOT."""
    from ..report.compare_report import stored_runs, write_compare_report
    from ..store import Store

    location = _store_location()
    if location is None:
        raise ValueError("no results store: set $OPTIMLAB_DB or run from the folder holding optimlab.db")
    store_key = hashlib.sha256(f"{location}:{os.stat(location).st_mtime_ns if '://' not in location else ''}"
                               .encode()).hexdigest()[:8]  # another store (or a changed one): another report
    name = f"runs-{store_key}-" + "-".join(str(i) for i in ids)
    out = REPORT_ROOT / name
    if (out / "index.html").is_file():
        return name
    with Store(location) as store:
        runs = stored_runs(store, ids)
    tasks = sorted({trace.problem for trace, _ in runs})
    write_compare_report(runs, out, f"optimlab report: {', '.join(tasks)} (runs {', '.join(map(str, ids))})",
                         [f"Redrawn from stored traces in {location}: runs {', '.join(map(str, ids))}."])
    return name


def create_router() -> APIRouter:
    router = APIRouter()
    add_page(router, "/runs", "runs.html")

    @router.get("/api/runs", tags=["runs"])
    async def stored_runs(request: Request, limit: int = Query(MAX_LISTED, ge=1, le=MAX_LISTED)) -> dict[str, Any]:
        """The stored runs' summaries (newest `limit`), and where the store is (null: no store)."""
        return await request.app.state.gate.run(list_stored_runs, limit)

    @router.get("/api/runs/curves", tags=["runs"])
    async def curves(request: Request, ids: str = Query(max_length=200)) -> dict[str, Any]:
        """Training loss per step and validation loss/metric per epoch of up to 8 runs."""
        try:
            picked = parse_ids(ids)
        except ValueError as error:
            raise HTTPException(422, str(error)) from None
        return await request.app.state.gate.run(run_curves, picked)

    @router.get("/api/runs/report", tags=["runs"])
    async def report(request: Request, ids: str = Query(max_length=200)) -> RedirectResponse:
        """The runs' HTML report (``optimlab report``), written on first request; redirects to its page
        (whose figures are relative links in the same folder)."""
        try:
            picked = parse_ids(ids)
        except ValueError as error:
            raise HTTPException(422, str(error)) from None
        name = await request.app.state.gate.run(write_report, picked)
        return RedirectResponse(f"/api/runs/report/{name}/index.html", status_code=303)

    @router.get("/api/runs/report/{name}/{filename}", include_in_schema=False)
    def report_file(name: str, filename: str) -> FileResponse:
        if not re.fullmatch(r"runs-[0-9a-f]{8}(-\d+)+", name) or not re.fullmatch(r"[\w.\-]+\.(png|svg|json|html)", filename):
            raise HTTPException(404, "not found")
        path = REPORT_ROOT / name / filename
        if not path.is_file():
            raise HTTPException(404, "not found")
        return FileResponse(path)

    return router


__all__ = ["create_router", "list_stored_runs", "run_curves", "write_report", "parse_ids"]
