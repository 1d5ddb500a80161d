"""The /slice page in a real browser (Debian's Chromium via Playwright): the contour of the slice, one
path per optimizer and the table of final losses, each checked against the JSON the server answered.

Screenshots go to pytest's tmp dir, or to $OPTIMLAB_SCREENSHOTS when set.
"""

from __future__ import annotations

import math

import pytest

pytestmark = pytest.mark.browser


def test_slice_page_draws_the_contour_each_path_and_the_final_losses(server, page, screenshot_dir):
    page.goto(server + "slice#task=digits-mlp&steps=60&every=10&resolution=21"
              "&optimizers=gd:0.5,momentum:0.05,adam:0.01")
    page.wait_for_function("['done', 'error'].includes(document.body.dataset.state)", timeout=120_000)
    assert page.evaluate("document.body.dataset.state") == "done", page.inner_text("#status")
    answer = page.evaluate("window.optimlabSlice.answer")
    drawn = page.evaluate("""document.getElementById('slice').data.map(t => ({meta: t.meta, type: t.type || 'scatter',
        x: Array.from(t.x), y: Array.from(t.y), z: t.z ? t.z.map(row => Array.from(row)) : null}))""")
    contour = [trace for trace in drawn if trace["meta"] == "slice"]
    assert len(contour) == 1 and contour[0]["type"] == "contour"
    assert len(contour[0]["z"]) == 21 and all(len(row) == 21 for row in contour[0]["z"])
    assert all(math.isfinite(value) and value > 0 for row in contour[0]["z"] for value in row)
    assert contour[0]["z"] == answer["losses"]
    paths = [trace for trace in drawn if str(trace["meta"]).startswith("path:")]
    assert len(paths) == 3  # one per optimizer
    for path, run in zip(paths, answer["runs"]):
        assert len(path["x"]) == 7 and path["x"] == run["alpha"] and path["y"] == run["beta"]  # steps 0, 10, ..., 60
    assert paths[0]["x"][-1] == pytest.approx(0.0, abs=1e-6)  # the first optimizer ends at the center
    assert page.locator("#slice .contour").count() >= 1  # plotly rendered the contour layer
    rows = page.eval_on_selector_all("#finals tr", "trs => trs.map(tr => Array.from(tr.cells, td => td.innerText.trim()))")
    assert [row[0] for row in rows] == ["gd:lr=0.5", "momentum:lr=0.05,momentum=0.9", "adam:lr=0.01,betas=0.9/0.999"]
    for row, run in zip(rows, answer["runs"]):
        assert row[1] == "60" and float(row[2]) == pytest.approx(run["final_loss"], rel=1e-3)
        assert 0 < float(row[2]) < math.log(10)  # below the untrained loss of 10 classes
    assert "sliced a 21² grid" in page.inner_text("#status")
    page.screenshot(path=str(screenshot_dir / "web_slice.png"), full_page=True)
    assert not page.errors, page.errors
