"""Stored runs over HTTP: /api/runs, /api/runs/curves, /api/runs/report, against the traces saved
into a fresh store (what was saved is what must be served), and the caps."""

from __future__ import annotations

import math

import pytest
from fastapi.testclient import TestClient

from optimlab.engine.training import train
from optimlab.store import Store
from optimlab.web.app import create_app

SPECS = ["gd:lr=0.5", "momentum:lr=0.1,momentum=0.9", "adam:lr=0.01"]


@pytest.fixture(scope="module")
def stored(tmp_path_factory) -> tuple[str, dict[int, object]]:
    path = str(tmp_path_factory.mktemp("store") / "runs.db")
    traces = {}
    with Store(path) as store:
        for spec in SPECS:
            trace = train(spec, "digits-softmax", epochs=2, batch_size=256, seed=0)
            traces[store.save_run(trace, {"spec": spec})] = trace
    return path, traces


@pytest.fixture
def client(stored, monkeypatch) -> TestClient:
    monkeypatch.setenv("OPTIMLAB_DB", stored[0])
    return TestClient(create_app())


def test_lists_the_stored_runs(client, stored):
    body = client.get("/api/runs").json()
    assert body["store"] == stored[0]
    assert [run["id"] for run in body["runs"]] == sorted(stored[1])
    assert [run["optimizer"] for run in body["runs"]] == [trace.optimizer for trace in stored[1].values()]


def test_curves_are_the_stored_rows(client, stored):
    ids = sorted(stored[1])
    body = client.get("/api/runs/curves", params={"ids": ",".join(map(str, ids))}).json()
    assert [run["id"] for run in body["runs"]] == ids
    for run, (run_id, trace) in zip(body["runs"], sorted(stored[1].items())):
        assert run["label"] == f"#{run_id} {SPECS[ids.index(run_id)]}"
        assert run["steps"] == [row["step"] for row in trace.steps]  # under 1000 points: not thinned
        assert run["loss"] == pytest.approx([row["loss"] for row in trace.steps], rel=1e-12)
        assert run["val_metric"] == pytest.approx([row["val_metric"] for row in trace.epochs], rel=1e-12)
        assert all(math.isfinite(v) for v in run["loss"])


def test_report_is_written_and_its_figures_served(client, stored):
    ids = ",".join(map(str, sorted(stored[1])[:2]))
    response = client.get("/api/runs/report", params={"ids": ids}, follow_redirects=False)
    assert response.status_code == 303
    page = client.get(response.headers["location"])
    assert page.status_code == 200 and "<html" in page.text.lower() and "runs " in page.text
    assert page.text.count('<img alt="') >= 2  # the report's figures, embedded in the page
    folder = response.headers["location"].rsplit("/", 1)[0]
    results = client.get(f"{folder}/results.json").json()
    assert [record["run_id"] for record in results] == sorted(stored[1])[:2]
    assert client.get(f"{folder}/..%2Fetc%2Fpasswd").status_code == 404


def test_caps_and_bad_ids(client):
    assert client.get("/api/runs/curves", params={"ids": ",".join(str(i) for i in range(1, 10))}).status_code == 422
    bad = client.get("/api/runs/curves", params={"ids": "1;DROP"})
    assert bad.status_code == 422 and "ids" in bad.json()["message"]
    missing = client.get("/api/runs/curves", params={"ids": "999"})
    assert missing.status_code == 422 and "no run with id 999" in missing.json()["message"]
    assert client.get("/api/runs", params={"limit": 10**6}).status_code == 422


def test_no_store_lists_nothing_and_creates_nothing(tmp_path, monkeypatch):
    monkeypatch.setenv("OPTIMLAB_DB", str(tmp_path / "absent.db"))
    body = TestClient(create_app()).get("/api/runs").json()
    assert body == {"store": None, "runs": []} and not (tmp_path / "absent.db").exists()
