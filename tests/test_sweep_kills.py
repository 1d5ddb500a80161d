"""Sweep workers killed with real SIGKILLs at several moments, on the journal file and on PostgreSQL:
right after the claim, while holding the journal's lock, after training but before telling Optuna,
between failing a dead worker's trial and re-queueing it, mid-trial from outside, and the whole
process group. After each, a resume finishes within a bound and every planned trial completed
exactly once, in Optuna and in the optimlab store.

The workers are real processes (tests/sweep_kill_worker.py) on a cheap objective: wine-softmax,
178 rows, a trial takes well under a second; most of the time is the workers' start-up.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from optimlab.store import Store
from optimlab.sweep.plan import create_studies, load_plan, make_plans
from optimlab.sweep.runner import claim_trial, requeue_dead_workers, work
from optimlab.sweep.storage import open_storage, release, resolve_storage_url

REPO = Path(__file__).resolve().parents[1]
KILLER = Path(__file__).with_name("sweep_kill_worker.py")
TASK, TRIALS = "wine-softmax", 4
RESUME_LIMIT = 120.0  # seconds; a stalled sweep never finishes
ENV = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def create_sweep(url: str, sweep: str, epochs: int = 1) -> str:
    storage = open_storage(url, heartbeat_interval=1, grace_period=2)
    create_studies(url, storage, make_plans(sweep, [TASK], ["sgd"], ["random"], ["lr=log:1e-2:1"], trials=TRIALS,
                                            epochs=epochs, with_defaults=False))
    release(storage)
    return f"{sweep}/{TASK}/sgd/random"


def killer(url: str, sweep: str, db: str, point: str, **popen) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, str(KILLER), url, sweep, db, point], env=ENV,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **popen)


def killed(process: subprocess.Popen, timeout: float = 120) -> None:
    """Wait for a worker that should die by SIGKILL."""
    output, _ = process.communicate(timeout=timeout)
    assert process.returncode == -signal.SIGKILL, output


def resume(url: str, sweep: str, db: str) -> None:
    """`optimlab sweep --resume` in this process, bounded: a stalled sweep fails the test."""
    errors: list[BaseException] = []

    def run() -> None:
        try:
            work(url, sweep, db_path=db, heartbeat_interval=1, grace_period=2)
        except BaseException as error:  # noqa: BLE001 - reported below
            errors.append(error)

    thread = threading.Thread(target=run, daemon=True)
    began = time.monotonic()
    thread.start()
    thread.join(RESUME_LIMIT)
    assert not thread.is_alive(), f"resume stalled: still waiting after {RESUME_LIMIT:g} s"
    assert not errors, errors
    print(f"resume took {time.monotonic() - began:.1f} s")


def assert_exactly_once(url: str, name: str, db: str) -> list[optuna.trial.FrozenTrial]:
    """Every planned slot completed once; nothing waiting or running; failures all retried;
    the store holds one run per slot."""
    storage = open_storage(url, heartbeat_interval=1, grace_period=2)
    trials = optuna.load_study(study_name=name, storage=storage).get_trials()
    release(storage)
    finished = Counter(t.user_attrs["slot"] for t in trials if t.state in (TrialState.COMPLETE, TrialState.PRUNED))
    assert finished == Counter(range(TRIALS)), [(t.number, t.state.name, t.user_attrs) for t in trials]
    assert not [t for t in trials if t.state in (TrialState.WAITING, TrialState.RUNNING)]
    retried = {n for t in trials for n in t.system_attrs.get("retry_history", ())}
    assert {t.number for t in trials if t.state == TrialState.FAIL} <= retried
    with Store(db) as store:
        runs = store.list_runs(experiment=name.split("/")[0])
        slots = Counter(store.load_run(run["id"])[1]["slot"] for run in runs)
    assert slots == Counter(range(TRIALS))  # one stored run per slot, none twice
    return trials


def _wait_for(predicate, timeout: float = 120, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def running_owned_by(url: str, name: str, pid: int | None = None) -> bool:
    storage = open_storage(url, heartbeat_interval=1, grace_period=2)
    try:
        trials = optuna.load_study(study_name=name, storage=storage).get_trials(deepcopy=False)
        return any(t.state == TrialState.RUNNING and (pid is None or t.user_attrs.get("worker", "").endswith(f":{pid}"))
                   for t in trials)
    finally:
        release(storage)


def run_scenario(url: str, sweep: str, db: str, scenario: str) -> list[optuna.trial.FrozenTrial]:
    name = create_sweep(url, sweep, epochs=3 if scenario in ("mid-trial", "process-group") else 1)
    if scenario in ("claim", "journal-lock", "trained"):
        killed(killer(url, sweep, db, scenario))
    elif scenario == "requeue":  # one dies in its claim, the next dies re-queueing that trial
        killed(killer(url, sweep, db, "claim"))
        killed(killer(url, sweep, db, "requeue"))
    elif scenario == "mid-trial":
        process = killer(url, sweep, db, "none")
        try:
            _wait_for(lambda: running_owned_by(url, name, process.pid), what="a running trial")
            process.send_signal(signal.SIGKILL)
        finally:
            killed(process)
    elif scenario == "process-group":  # `optimlab sweep --workers 2` and its children, all at once
        command = [sys.executable, "-m", "optimlab", "sweep", "--resume", "--study", sweep, "--storage", url, "--db",
                   db, "--workers", "2", "--heartbeat", "1", "--grace", "2"]
        process = subprocess.Popen(command, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                   start_new_session=True)
        try:
            _wait_for(lambda: running_owned_by(url, name), what="a running trial")
            os.killpg(process.pid, signal.SIGKILL)
        finally:
            killed(process)
    resume(url, sweep, db)
    return assert_exactly_once(url, name, db)


JOURNAL_SCENARIOS = ["claim", "journal-lock", "requeue",
                     pytest.param("trained", marks=pytest.mark.slow), pytest.param("mid-trial", marks=pytest.mark.slow),
                     pytest.param("process-group", marks=pytest.mark.slow)]


@pytest.mark.timeout(300)
@pytest.mark.parametrize("scenario", JOURNAL_SCENARIOS)
def test_journal_survives_sigkill(tmp_path, scenario):
    trials = run_scenario(str(tmp_path / "s.journal"), "k", str(tmp_path / "o.db"), scenario)
    if scenario in ("claim", "requeue", "trained"):
        assert [t.state for t in trials].count(TrialState.FAIL) == 1  # the killed attempt, retried once


@pytest.fixture(scope="module")
def postgres_url():
    from pg_server import throwaway_postgres

    with throwaway_postgres("kills") as url:
        yield resolve_storage_url(url)


@pytest.mark.postgres
@pytest.mark.timeout(300)
@pytest.mark.parametrize("scenario", ["claim", pytest.param("requeue", marks=pytest.mark.slow),
                                      pytest.param("trained", marks=pytest.mark.slow),
                                      pytest.param("process-group", marks=pytest.mark.slow)])
def test_postgres_survives_sigkill(postgres_url, tmp_path, scenario):
    run_scenario(postgres_url, f"k{scenario.replace('-', '')}", str(tmp_path / "o.db"), scenario)


def test_killed_journal_lock_holder_frees_the_lock_at_once(tmp_path):
    """A process killed while it holds the journal's write lock: the next write goes through at once
    (Optuna's lock file would hold every writer for its 30 s grace period)."""
    url = str(tmp_path / "s.journal")
    release(open_storage(url))
    holder = subprocess.run([sys.executable, "-c", (
        "import os, signal, sys; from optimlab.sweep.storage import open_storage; "
        f"storage = open_storage({url!r}); storage._backend._lock.acquire(); os.kill(os.getpid(), signal.SIGKILL)")],
        env=ENV, capture_output=True, text=True, timeout=120)
    assert holder.returncode == -signal.SIGKILL, holder.stderr
    done = threading.Event()

    def write() -> None:
        optuna.create_study(study_name="after", storage=open_storage(url))
        done.set()

    threading.Thread(target=write, daemon=True).start()
    assert done.wait(10), "a write after the lock holder died waited more than 10 s"


def test_a_retry_does_not_inherit_the_dead_owner(tmp_path):
    """A re-queued trial carries no `worker`; once a live worker claims it, another worker's
    dead-worker check leaves it running (it used to fail it: UpdateFinishedTrialError at tell)."""
    url = str(tmp_path / "s.journal")
    name = create_sweep(url, "r")
    storage = open_storage(url)
    study = optuna.load_study(study_name=name, storage=storage)
    plan = load_plan(study)
    claimed = claim_trial(url, study, plan)
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    host = claimed.user_attrs["worker"].rpartition(":")[0]
    study._storage.set_trial_user_attr(claimed._trial_id, "worker", f"{host}:{int(dead.stdout)}")
    assert requeue_dead_workers(url, study, plan) == 1
    (retry,) = [t for t in study.get_trials() if t.system_attrs.get("failed_trial") == claimed.number]
    assert retry.state == TrialState.WAITING and "worker" not in retry.user_attrs
    assert retry.user_attrs["slot"] == claimed.user_attrs["slot"]
    while (again := claim_trial(url, study, plan)) is not None and again.number != retry.number:
        pass
    assert again is not None and again.user_attrs["worker"].endswith(f":{os.getpid()}")
    assert requeue_dead_workers(url, study, plan) == 0  # another worker's check
    assert study._storage.get_trial(again._trial_id).state == TrialState.RUNNING
    study.tell(again, 1.0)  # the live worker can still report
    release(storage)


def test_a_trial_claimed_without_an_owner_is_requeued_only_under_the_lock(tmp_path):
    """RUNNING without an owner means its claimer died inside the claim: re-queued once."""
    url = str(tmp_path / "s.journal")
    name = create_sweep(url, "o")
    storage = open_storage(url)
    study = optuna.load_study(study_name=name, storage=storage)
    waiting = study.get_trials(states=(TrialState.WAITING,))[0]
    assert study._storage.set_trial_state_values(waiting._trial_id, state=TrialState.RUNNING)  # no owner
    plan = load_plan(study)
    assert requeue_dead_workers(url, study, plan) == 1
    assert requeue_dead_workers(url, study, plan) == 0  # idempotent
    trials = study.get_trials()
    assert [t.state for t in trials].count(TrialState.WAITING) == TRIALS
    release(storage)


def test_without_a_real_lock_an_ownerless_trial_is_left_to_the_heartbeat(tmp_path):
    """sqlite URLs have no sweep lock: an ownerless running trial may be a live claim half done."""
    url = resolve_storage_url(f"sqlite:///{tmp_path / 's.db'}")
    name = create_sweep(url, "q")
    storage = open_storage(url, heartbeat_interval=1, grace_period=2)
    study = optuna.load_study(study_name=name, storage=storage)
    waiting = study.get_trials(states=(TrialState.WAITING,))[0]
    assert study._storage.set_trial_state_values(waiting._trial_id, state=TrialState.RUNNING)
    assert requeue_dead_workers(url, study, load_plan(study)) == 0
    assert study._storage.get_trial(waiting._trial_id).state == TrialState.RUNNING
    release(storage)
