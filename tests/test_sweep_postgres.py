"""Sweeps on a real PostgreSQL server: 2 workers on one study, one killed mid-trial (SIGKILL),
a resumed worker; nothing lost, nothing duplicated; connections released.

The fixture starts a throw-away cluster (tests/pg_server.py) and stops it after.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from pg_server import throwaway_postgres

pytestmark = pytest.mark.postgres

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def postgres_url():
    with throwaway_postgres("sweeps") as url:
        yield url


def _worker(url: str, db: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.Popen([sys.executable, "-m", "optimlab", "sweep", "--resume", "--study", "pg", "--storage", url,
                             "--db", db, "--heartbeat", "1", "--grace", "2"],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _wait_for_running_trial(storage, name: str, pid: int, timeout: float = 120) -> None:
    import optuna

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        study = optuna.load_study(study_name=name, storage=storage)
        # mid-trial: claimed by this worker (the owner is recorded with the claim) and its
        # parameters drawn, so the retry can be checked to reuse them
        if any(t.user_attrs.get("worker", "").endswith(f":{pid}") and t.params
               for t in study.get_trials(deepcopy=False) if t.state.name == "RUNNING"):
            return
        time.sleep(0.1)
    raise AssertionError(f"worker {pid} never ran a trial")


def test_killed_worker_loses_nothing(postgres_url, tmp_path):
    import optuna
    import sqlalchemy
    from optuna.trial import TrialState

    from optimlab.store import Store
    from optimlab.sweep.plan import create_studies, make_plans
    from optimlab.sweep.runner import work
    from optimlab.sweep.storage import open_storage, release, resolve_storage_url

    url = resolve_storage_url(postgres_url)
    db = str(tmp_path / "optimlab.db")
    name = "pg/digits-mlp/adam/random"
    storage = open_storage(url, heartbeat_interval=1, grace_period=2)
    create_studies(url, storage, make_plans("pg", ["digits-mlp"], ["adam"], ["random"], ["lr=log:1e-4:1e-1"],
                                            trials=4, epochs=1, with_defaults=False))
    first, second = _worker(url, db), _worker(url, db)
    try:
        _wait_for_running_trial(storage, name, first.pid)
        first.send_signal(signal.SIGKILL)  # mid-trial: its trial stays RUNNING, its heartbeat stops
        first.wait(timeout=30)
        # resume (what `optimlab sweep --resume` runs) in this process, beside the surviving worker
        work(url, "pg", db_path=db, heartbeat_interval=1, grace_period=2)
        output, _ = second.communicate(timeout=300)
        assert second.returncode == 0, output
    finally:
        for process in (first, second):
            if process.poll() is None:
                process.kill()
    study = optuna.load_study(study_name=name, storage=storage)
    trials = study.get_trials()
    finished = [t for t in trials if t.state == TrialState.COMPLETE]
    assert Counter(t.user_attrs["slot"] for t in finished) == Counter(range(4))  # every slot once
    killed = [t for t in trials if t.state == TrialState.FAIL]
    assert len(killed) == 1 and killed[0].user_attrs["worker"].endswith(f":{first.pid}")
    retry = [t for t in finished if t.system_attrs.get("failed_trial") == killed[0].number]
    assert len(retry) == 1 and retry[0].params == killed[0].params  # re-queued with the same parameters
    assert not [t for t in trials if t.state in (TrialState.RUNNING, TrialState.WAITING)]
    with Store(db) as store:
        runs = store.list_runs(experiment="pg")
        slots = Counter(store.load_run(run["id"])[1]["slot"] for run in runs)
    assert slots == Counter(range(4))  # one stored run per slot: the killed attempt saved none
    release(storage)
    # every worker gave its connections back: only this query's connection remains (a backend
    # leaves pg_stat_activity shortly after its client disconnects, so allow a few seconds)
    engine = sqlalchemy.create_engine(url, poolclass=sqlalchemy.pool.NullPool)
    query = sqlalchemy.text("SELECT count(*) FROM pg_stat_activity WHERE datname = 'sweeps' AND pid <> pg_backend_pid()")
    deadline = time.monotonic() + 10
    with engine.connect() as connection:
        while (others := connection.execute(query).scalar()) and time.monotonic() < deadline:
            time.sleep(0.2)
    engine.dispose()
    assert others == 0
