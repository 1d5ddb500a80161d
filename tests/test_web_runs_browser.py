"""The stored-runs page in Debian's Chromium: runs listed from a fresh store, picked runs' curves
drawn side by side (equal to the saved rows), the table's numbers, the report link."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from optimlab.engine.training import train
from optimlab.store import Store
from browser_support import ROOT

pytestmark = pytest.mark.browser
SPECS = ["gd:lr=0.5", "momentum:lr=0.1,momentum=0.9", "adam:lr=0.01"]


@pytest.fixture(scope="module")
def stored(tmp_path_factory):
    path = str(tmp_path_factory.mktemp("store") / "runs.db")
    with Store(path) as store:
        traces = {store.save_run(train(spec, "digits-softmax", epochs=3, batch_size=128, seed=0), {"spec": spec}): spec
                  for spec in SPECS}
    with Store(path) as store:
        return path, {run_id: store.load_run(run_id)[0] for run_id in traces}


@pytest.fixture(scope="module")
def runs_server(stored):
    process = subprocess.Popen([sys.executable, "-m", "optimlab", "serve", "--host", "127.0.0.1", "--port", "0"],
                               cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               env={**os.environ, "OPTIMLAB_DB": stored[0]})
    try:
        match = re.search(r"(http://127\.0\.0\.1:\d+/)", process.stdout.readline())
        assert match
        yield match.group(1)
    finally:
        process.terminate()
        process.wait(timeout=30)


def test_runs_page_draws_the_picked_runs_side_by_side(runs_server, stored, page, screenshot_dir):
    page.goto(runs_server + "runs")
    page.wait_for_function("document.body.dataset.state === 'done' && window.optimlabRuns.curves.length === 3",
                           timeout=60_000)
    assert page.locator("#run-list input[type=checkbox]").count() == 3
    plotted = page.evaluate("""document.getElementById('train-loss').data.map(t => ({name: t.name, y: Array.from(t.y)}))""")
    for trace_plot, (run_id, trace) in zip(plotted, sorted(stored[1].items())):
        assert trace_plot["name"].startswith(f"#{run_id} ")
        assert trace_plot["y"] == pytest.approx([row["loss"] for row in trace.steps], rel=1e-12)
    rows = page.eval_on_selector_all("#picked tr", "trs => trs.map(tr => [...tr.children].map(td => td.innerText))")
    assert [row[0] for row in rows] == [f"#{run_id} {spec}" for run_id, spec in zip(sorted(stored[1]), SPECS)]
    for row, trace in zip(rows, (stored[1][i] for i in sorted(stored[1]))):
        assert float(row[4]) == pytest.approx(trace.epochs[-1]["train_loss"], rel=1e-3)
    page.screenshot(path=str(screenshot_dir / "runs_view.png"), full_page=True)

    page.locator("#run-list input[type=checkbox]").first.uncheck()  # the newest run
    page.wait_for_function("window.optimlabRuns.curves.length === 2 && document.body.dataset.state === 'done'")
    assert page.evaluate("document.getElementById('train-loss').data.length") == 2
    href = page.get_attribute("#report-link", "href")
    assert href.startswith("/api/runs/report?ids=")
    report = page.context.new_page()
    try:
        report.goto(runs_server + href.lstrip("/"))
        assert "optimlab report" in report.title()
        assert report.locator("img").count() >= 2
    finally:
        report.close()
    assert not page.errors, page.errors
