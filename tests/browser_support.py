"""What the browser tests share: Debian's Chromium, how to launch it, and helpers that read the
playground page. The fixtures built on it (server, browser, context, page, screenshot_dir) are in
conftest.py."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

CHROMIUM = "/usr/bin/chromium"
ROOT = Path(__file__).resolve().parents[1]
ANIMATION_MS = 600  # shorter than the page's 2.5 s: the frames are the same, fewer of them
LAUNCH_ARGS = ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
               "--disable-component-update", "--disable-sync"]


def require_chromium() -> None:
    """Skip when Chromium is missing outside CI; in CI (CI=true) a missing Chromium fails."""
    if Path(CHROMIUM).exists():
        return
    if os.environ.get("CI", "").strip().lower() in ("true", "1", "yes"):
        pytest.fail(f"{CHROMIUM} is missing in CI (.ci/run installs Debian's chromium)")
    pytest.skip(f"{CHROMIUM} is not installed (apt-get install -y chromium)")


def finished_runs(page) -> int:
    return page.evaluate("window.optimlab ? window.optimlab.completed : 0")


def wait_for_run(page, after: int) -> str:
    """Wait until a run later than `after` has finished its animation; return the page state."""
    page.wait_for_function(f"window.optimlab && window.optimlab.completed > {after} && "
                           "['done', 'error'].includes(document.body.dataset.state)", timeout=60_000)
    return page.evaluate("document.body.dataset.state")


def open_scene(page, url: str) -> None:
    page.goto(url)
    assert wait_for_run(page, 0) == "done", page.inner_text("#status")


def table(page) -> list[dict[str, str]]:
    rows = page.eval_on_selector_all("#outcomes tr", """rows => rows.map(row => {
        const cells = [...row.querySelectorAll('td')].map(td => td.innerText.trim());
        return {label: cells[1], outcome: cells[2], steps: cells[3], f: cells[4], x: cells[5]};
    })""")
    return rows


def plotted_paths(page) -> list[dict]:
    """Per optimizer path on the landscape plot: its x and y arrays as plotly holds them."""
    return page.evaluate("""document.getElementById('contour').data
        .filter(t => String(t.meta).startsWith('path-')).map(t => ({x: Array.from(t.x), y: Array.from(t.y)}))""")
