"""Live mode of the playground in a real browser (Debian's Chromium via Playwright): a slider or a
dragged start point recomputes the scene without pressing Run, and what is drawn is checked
against closed forms (gradient descent on the valley 0.1 x1^2 + 2 x2^2).

Screenshots go to pytest's tmp dir, or to $OPTIMLAB_SCREENSHOTS when set.
"""

from __future__ import annotations

import pytest

from browser_support import finished_runs, open_scene, plotted_paths, table

pytestmark = pytest.mark.browser


def wait_for_live_run(page, after: int) -> None:
    page.wait_for_function(f"window.optimlab.completed > {after} && document.body.dataset.state === 'done' "
                           "&& !window.optimlab.liveInFlight", timeout=60_000)


def gd_first_step(start: tuple[float, float], lr: float) -> tuple[float, float]:
    """One GD step on 0.1 x1^2 + 2 x2^2: x1 (1 - 0.2 lr), x2 (1 - 4 lr)."""
    return start[0] * (1 - 0.2 * lr), start[1] * (1 - 4 * lr)


def test_lr_slider_recomputes_without_run(server, page, screenshot_dir):
    open_scene(page, server + "#preset=zigzag")
    assert page.is_checked("#live")
    before_path = plotted_paths(page)[0]
    before = finished_runs(page)
    slider = page.locator("#optimizers .opt-card").first.locator("input[data-slider='lr']")
    slider.fill("300")  # position 300 of 400 on log10 [1e-5, 2]: lr = 10^(-5 + 0.75 * log10(2e5))
    wait_for_live_run(page, before)
    lr = float(page.locator("#optimizers .opt-card").first.locator("input[data-hp='lr']").input_value())
    assert lr == pytest.approx(10 ** (-5 + 0.75 * (5 + 0.30103)), rel=5e-3)
    after_path = plotted_paths(page)[0]
    assert after_path["x"][1] != before_path["x"][1]  # the curve moved with the slider
    start = (after_path["x"][0], after_path["y"][0])
    assert (after_path["x"][1], after_path["y"][1]) == pytest.approx(gd_first_step(start, lr), rel=1e-9)
    shown_lr = page.locator("#optimizers .opt-card").first.locator("input[data-hp='lr']").input_value()
    assert table(page)[0]["label"] == f"gd:lr={shown_lr}"
    assert "Live: computed" in page.inner_text("#status")
    assert "lr%3D" in page.url  # the link follows the slider
    page.screenshot(path=str(screenshot_dir / "playground_live_slider.png"), full_page=True)
    assert not page.errors, page.errors


def test_dragging_the_start_point_recomputes(server, page, screenshot_dir):
    open_scene(page, server + "#preset=zigzag")
    to_pixels = """([x, y]) => {
        const gd = document.getElementById('contour'), fl = gd._fullLayout, r = gd.getBoundingClientRect();
        return [r.left + fl.xaxis._offset + fl.xaxis.d2p(x), r.top + fl.yaxis._offset + fl.yaxis.d2p(y)];
    }"""
    before = finished_runs(page)
    page.mouse.move(*page.evaluate(to_pixels, [-4.0, 1.0]))
    page.mouse.down()
    for point in ([-3.0, 1.2], [-2.0, 1.4], [-1.0, 1.5]):
        page.mouse.move(*page.evaluate(to_pixels, point), steps=3)  # pixels from the layout of the moment
    page.wait_for_timeout(200)
    page.mouse.move(*page.evaluate(to_pixels, [-1.0, 1.5]))
    page.mouse.up()
    page.wait_for_function("Math.abs(Number(document.getElementById('start-x').value) + 1) < 0.05")
    wait_for_live_run(page, before)
    page.wait_for_timeout(300)  # the last debounced edit
    wait_for_live_run(page, finished_runs(page) - 1)
    start = (float(page.input_value("#start-x")), float(page.input_value("#start-y")))
    assert start == pytest.approx((-1.0, 1.5), abs=0.05)
    path = plotted_paths(page)[0]
    assert (path["x"][0], path["y"][0]) == start  # the drawn run starts where the pointer let go
    lr = float(table(page)[0]["label"].split("lr=")[1])
    assert (path["x"][1], path["y"][1]) == pytest.approx(gd_first_step(start, lr), rel=1e-9)
    page.screenshot(path=str(screenshot_dir / "playground_live_drag.png"), full_page=True)
    assert not page.errors, page.errors


def test_live_off_waits_for_run(server, page):
    open_scene(page, server + "#preset=zigzag")
    page.uncheck("#live")
    before = finished_runs(page)
    lr = page.locator("#optimizers .opt-card").first.locator("input[data-hp='lr']")
    lr.fill("0.2")
    lr.dispatch_event("change")
    page.wait_for_timeout(500)
    assert finished_runs(page) == before  # nothing recomputed
    page.click("#run")
    page.wait_for_function(f"window.optimlab.completed > {before} && document.body.dataset.state === 'done'",
                           timeout=60_000)
    assert table(page)[0]["label"] == "gd:lr=0.2"


def test_edge_of_stability_page_streams_sharpness_against_two_over_lr(server, page, screenshot_dir):
    # gd with lr 1 on the depth-3 MLP: the sharpness rises to 2/lr = 2 within a few dozen steps.
    page.goto(server + "eos#optimizer=gd&lr=1&steps=60&every=5&task=digits-mlp:depth=3")
    page.wait_for_function("window.optimlabEos.rows.length >= 3", timeout=60_000)
    partial = page.evaluate("window.optimlabEos.rows.length")
    page.wait_for_function("['done', 'error'].includes(document.body.dataset.state)", timeout=120_000)
    assert page.evaluate("document.body.dataset.state") == "done", page.inner_text("#status")
    rows = page.evaluate("window.optimlabEos.rows")
    expected_steps = [1] + list(range(5, 61, 5))
    assert partial < len(rows)  # drawn while streaming
    assert [row["step"] for row in rows] == expected_steps[:len(rows)]
    if len(rows) < len(expected_steps):  # a loaded machine: the server's time budget ended the stream
        assert "stopped: time budget" in page.inner_text("#status")
    assert all(row["threshold"] == pytest.approx(2.0, rel=1e-12) for row in rows)  # 2/lr
    plotted = page.evaluate("""Object.fromEntries(document.getElementById('sharpness').data
        .map(t => [t.meta, Array.from(t.y)]))""")
    assert plotted["threshold"] == pytest.approx([2.0] * len(rows))
    assert plotted["sharpness"] == pytest.approx([row["sharpness"] for row in rows])
    assert max(plotted["sharpness"]) > 2.0  # the sharpness reaches the edge
    cells = page.eval_on_selector_all("#latest td", "tds => tds.map(td => td.innerText.trim())")
    assert cells[0] == str(rows[-1]["step"]) and float(cells[4]) == pytest.approx(2.0)
    assert float(cells[5]) == pytest.approx(rows[-1]["sharpness"] / 2.0, rel=2e-3)
    page.screenshot(path=str(screenshot_dir / "eos_live.png"), full_page=True)
    assert not page.errors, page.errors
