"""A real sweep worker process that SIGKILLs itself at a chosen moment (tests/test_sweep_kills.py).

``python tests/sweep_kill_worker.py URL SWEEP DB POINT`` arms POINT, then runs
:func:`optimlab.sweep.runner.work` like ``optimlab sweep --resume`` (heartbeat 1 s, grace 2 s):

* ``claim``: right after its first WAITING -> RUNNING transition, before anything else is written;
* ``journal-lock``: while it holds the journal's write lock (at its third append);
* ``trained``: after training and storing the runs of its first trial, before telling Optuna;
* ``requeue``: after failing a dead worker's trial, before re-queueing it;
* ``none``: not at all (the test kills it from outside).
"""

from __future__ import annotations

import os
import signal
import sys


def die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def arm(point: str) -> None:
    if point == "claim":
        import optuna.storages
        from optuna.trial import TrialState

        for cls in (optuna.storages.journal.JournalStorage, optuna.storages.RDBStorage):
            def claim_then_die(self, trial_id, state, values=None, _original=cls.set_trial_state_values):
                changed = _original(self, trial_id, state, values)
                if changed and state == TrialState.RUNNING:
                    die()
                return changed

            cls.set_trial_state_values = claim_then_die
    elif point == "journal-lock":
        from optuna.storages.journal import JournalFileBackend

        original, calls = JournalFileBackend.append_logs, []

        def append_or_die(self, logs):
            calls.append(logs)
            if len(calls) == 3:
                self._lock.acquire()
                die()
            return original(self, logs)

        JournalFileBackend.append_logs = append_or_die
    elif point == "trained":
        from optimlab.sweep import runner

        evaluate = runner.evaluate

        def evaluate_then_die(*args, **kwargs):
            evaluate(*args, **kwargs)
            die()

        runner.evaluate = evaluate_then_die
    elif point == "requeue":
        from optimlab.sweep import runner, storage

        runner.requeue_locked = storage.requeue_locked = lambda *args, **kwargs: die()
    elif point != "none":
        raise SystemExit(f"unknown point {point!r}")


if __name__ == "__main__":
    url, sweep, db, point = sys.argv[1:5]
    arm(point)
    from optimlab.sweep.runner import work

    work(url, sweep, db_path=db, heartbeat_interval=1, grace_period=2)
