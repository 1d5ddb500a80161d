"""Fixtures of the browser tests: `optimlab serve` on a free loopback port, Debian's Chromium
driven by Playwright (one browser and one context per module), a page that records script errors,
and where screenshots go (pytest's tmp dir, or $OPTIMLAB_SCREENSHOTS when set)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from browser_support import ANIMATION_MS, CHROMIUM, LAUNCH_ARGS, ROOT, require_chromium


@pytest.fixture(scope="module")
def server() -> str:
    process = subprocess.Popen([sys.executable, "-m", "optimlab", "serve", "--host", "127.0.0.1", "--port", "0"],
                               cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        line = process.stdout.readline()
        match = re.search(r"(http://127\.0\.0\.1:\d+/)", line)
        assert match, f"optimlab serve printed {line!r}"
        yield match.group(1)
    finally:
        process.terminate()
        process.wait(timeout=30)


@pytest.fixture(scope="module")
def browser():
    require_chromium()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=LAUNCH_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture(scope="module")
def context(browser):
    # One context for the module: its HTTP cache keeps plotly.min.js (4.8 MB) between tests.
    context = browser.new_context(viewport={"width": 1440, "height": 1000})
    yield context
    context.close()


@pytest.fixture
def page(context):
    page = context.new_page()
    page.add_init_script(f"window.optimlabAnimationMs = {ANIMATION_MS}")
    page.errors = []
    page.on("pageerror", lambda error: page.errors.append(str(error)))
    page.on("console", lambda message: message.type == "error" and page.errors.append(message.text))
    yield page
    page.close()


@pytest.fixture
def screenshot_dir(tmp_path) -> Path:
    directory = Path(os.environ.get("OPTIMLAB_SCREENSHOTS", tmp_path))
    directory.mkdir(parents=True, exist_ok=True)
    return directory
