"""The playground page in a real browser: Playwright driving Debian's Chromium against
`optimlab serve` on a free loopback port. Outcomes are checked against closed forms and scipy.

Skips only when /usr/bin/chromium is missing outside CI; in CI (CI=true) a missing Chromium fails.
Screenshots go to pytest's tmp dir, or to $OPTIMLAB_SCREENSHOTS when set. The fixtures are in
conftest.py, the shared helpers in browser_support.py.
"""

from __future__ import annotations

import math

import pytest

from browser_support import ANIMATION_MS, finished_runs, open_scene, plotted_paths, table, wait_for_run

pytestmark = pytest.mark.browser


def first_divergence(lr: float, start: tuple[float, float], steps: int) -> int | None:
    """GD on x1^2 + 2 x2^2 in closed form: x_k = ((1-2lr)^k x1, (1-4lr)^k x2); the first k where f
    exceeds 1e6 * max(|f_0|, 1) (the engine's documented divergence rule), or None."""
    f = lambda k: ((1 - 2 * lr) ** k * start[0]) ** 2 + 2 * ((1 - 4 * lr) ** k * start[1]) ** 2
    limit = 1e6 * max(abs(f(0)), 1.0)
    return next((k for k in range(1, steps + 1) if f(k) > limit), None)


def test_preset_runs_animates_and_tables_the_outcomes(server, page, screenshot_dir):
    open_scene(page, server)
    page.select_option("#preset", "lr-too-large")  # loads the scene and runs it once
    assert wait_for_run(page, 1) == "done"
    before = finished_runs(page)
    page.click("#run")
    assert wait_for_run(page, before) == "done", page.inner_text("#status")

    rows = table(page)
    assert [row["label"] for row in rows] == ["gd:lr=0.1", "gd:lr=0.45", "gd:lr=0.6"]
    for row, lr in zip(rows, (0.1, 0.45, 0.6)):
        diverges_at = first_divergence(lr, (-4.0, 1.8), 40)
        if diverges_at is None:
            assert not row["outcome"].startswith("diverged"), row
        else:
            assert row["outcome"] == f"diverged at step {diverges_at}", row
    assert first_divergence(0.6, (-4.0, 1.8), 40) is not None  # the scene does show a divergence

    paths = plotted_paths(page)
    assert len(paths) == 3
    for path, row in zip(paths, rows):  # the animation ended: every step of every run is drawn
        assert len(path["x"]) == int(row["steps"]) + 1
    end = (paths[0]["x"][-1], paths[0]["y"][-1])
    assert end == pytest.approx((-4.0 * 0.8**40, 1.8 * 0.6**40), abs=1e-9)
    loss_lines = page.evaluate("document.getElementById('loss').data.filter(t => t.x.length > 1).length")
    assert loss_lines == 3
    assert page.evaluate("document.getElementById('loss').layout.yaxis.type") == "log"
    page.screenshot(path=str(screenshot_dir / "playground_lr_too_large.png"), full_page=True)
    assert not page.errors, page.errors


def test_click_sets_the_start_and_the_link_restores_the_scene(server, page, context):
    open_scene(page, server + "#preset=zigzag")
    # Click where the plot draws the point (-2, 1): plotly's own axes give the pixel.
    x, y = page.evaluate("""(() => {
        const gd = document.getElementById('contour'), fl = gd._fullLayout, r = gd.getBoundingClientRect();
        return [r.left + fl.xaxis._offset + fl.xaxis.d2p(-2), r.top + fl.yaxis._offset + fl.yaxis.d2p(1)];
    })()""")
    page.mouse.click(x, y)
    page.wait_for_function("document.getElementById('start-x').value !== '-5'")
    start = (float(page.input_value("#start-x")), float(page.input_value("#start-y")))
    assert start == pytest.approx((-2.0, 1.0), abs=0.03)

    lr = page.locator("#optimizers .opt-card").first.locator("input[data-hp='lr']")
    lr.fill("0.3")
    lr.dispatch_event("change")
    page.click("#add-optimizer")
    assert page.locator("#optimizers .opt-card").count() == 4
    page.locator("#optimizers .opt-card").nth(1).locator("button[aria-label='remove optimizer']").click()
    assert page.locator("#optimizers .opt-card").count() == 3
    link = page.url
    assert "gd%3Alr%3D0.3" in link and "s=" in link and "preset=" not in link

    shared = context.new_page()
    shared.add_init_script(f"window.optimlabAnimationMs = {ANIMATION_MS}")
    try:
        shared.goto(link)
        shared.wait_for_function("window.optimlab && window.optimlab.completed > 0 && "
                                 "document.body.dataset.state === 'done'", timeout=60_000)
        assert (float(shared.input_value("#start-x")), float(shared.input_value("#start-y"))) == start
        assert [row["label"] for row in table(shared)] == ["gd:lr=0.3", "momentum:lr=0.6,momentum=0.5", "adam:lr=0.1"]
        first_path = plotted_paths(shared)[0]
        assert (first_path["x"][0], first_path["y"][0]) == start
        # GD on 0.1 x1^2 + 2 x2^2 from the clicked point, in closed form.
        assert first_path["x"][1] == pytest.approx(start[0] * (1 - 0.2 * 0.3), rel=1e-9)
        assert first_path["y"][1] == pytest.approx(start[1] * (1 - 4 * 0.3), rel=1e-9)
    finally:
        shared.close()
    assert not page.errors, page.errors


def test_one_dimensional_scene_local_vs_global(server, page, screenshot_dir):
    from scipy.optimize import brentq

    open_scene(page, server + "#preset=local-global")
    derivative = lambda x: math.cos(math.pi * x) - math.pi * x * math.sin(math.pi * x)
    local, global_ = brentq(derivative, -0.5, -0.1), brentq(derivative, 0.8, 1.4)
    rows = {row["label"]: row for row in table(page)}
    gd = rows["gd:lr=0.05"]
    assert gd["outcome"] == "in a local minimum"
    assert float(gd["x"].strip("()")) == pytest.approx(local, abs=1e-3)
    heavy = rows["momentum:lr=0.05,momentum=0.9"]
    assert heavy["outcome"] == "converged"
    assert float(heavy["x"].strip("()")) == pytest.approx(global_, abs=1e-3)
    kinds = page.evaluate("document.getElementById('contour').data.map(t => t.name)")
    assert {"f(x)", "global minimum", "local minimum", "maximum"} <= set(kinds)
    assert len(plotted_paths(page)) == 3
    page.screenshot(path=str(screenshot_dir / "playground_local_global.png"), full_page=True)
    assert not page.errors, page.errors


def test_invalid_hyperparameter_shows_the_servers_message(server, page):
    open_scene(page, server + "#preset=adagrad-rmsprop")
    lr = page.locator("#optimizers .opt-card").first.locator("input[data-hp='lr']")
    lr.fill("-1")
    lr.dispatch_event("change")
    before = finished_runs(page)
    page.click("#run")
    assert wait_for_run(page, before) == "error"
    assert "lr=-1 must be a finite number in [0, 1000]" in page.inner_text("#status")
    assert all("422" in error for error in page.errors), page.errors  # only the refused request is logged
