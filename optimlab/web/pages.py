"""The playground's HTML pages: static files, served so that a new version shows at the next load."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, FastAPI
from fastapi.responses import FileResponse

STATIC_DIR = Path(__file__).parent / "static"


def add_page(router: APIRouter | FastAPI, path: str, filename: str) -> None:
    """GET `path` answers the page `STATIC_DIR / filename` with ``Cache-Control: no-cache``."""

    def page() -> FileResponse:
        return FileResponse(STATIC_DIR / filename, headers={"Cache-Control": "no-cache"})

    page.__name__ = f"{Path(filename).stem}_page"
    router.add_api_route(path, page, methods=["GET"], include_in_schema=False)
