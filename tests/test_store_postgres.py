"""The results store on a real PostgreSQL server: same tables, round trip, two writers at once.

The cluster is a throw-away one (tests/pg_server.py).
"""

import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

from optimlab.store import Store
from pg_server import throwaway_postgres
from test_store import WRITER, same, sample_trace

pytestmark = pytest.mark.postgres


@pytest.fixture(scope="module")
def postgres_url():
    with throwaway_postgres("runs", user="lab") as url:  # a bare URL: the store picks an installed driver
        yield url


def test_round_trip_on_postgres(postgres_url):
    trace = sample_trace(seed=3)
    with Store(postgres_url) as store:
        run_id = store.save_run(trace, {"where": "postgres"}, experiment="pg")
        loaded, config = store.load_run(run_id)
        assert config == {"where": "postgres"} and same(loaded.to_dict(), trace.to_dict())
        assert math.isnan(loaded.steps[-1]["loss"]) and loaded.epochs[-1]["val_loss"] == math.inf
        assert [r["id"] for r in store.list_runs(experiment="pg")] == [run_id]


def test_two_processes_writing_at_once_on_postgres(postgres_url, tmp_path):
    tests = Path(__file__).resolve().parent
    script = tmp_path / "writer.py"
    script.write_text(WRITER.format(root=str(tests.parent), tests=str(tests)))
    barrier = str(tmp_path / "go")  # the writer's barrier files live next to this prefix
    writers = [subprocess.Popen([sys.executable, str(script), postgres_url, "10", name],
                                env={**os.environ, "OPTIMLAB_BARRIER": barrier}) for name in ("a", "b")]
    assert [w.wait(timeout=120) for w in writers] == [0, 0]
    with Store(postgres_url) as store:
        mine = [r for r in store.list_runs() if store.load_run(r["id"])[1].get("writer") in ("a", "b")]
        assert len(mine) == 20
