"""Workers: pop queued trials from the sweep's studies, run them, tell Optuna, until all are done.

Any number of worker processes, on one machine or several, run :func:`work` on the same storage
and sweep name. A worker exits when no study of the sweep has a queued or running trial left and
no coarse-to-fine round remains to queue.

A claim is one step under the sweep lock (:func:`optimlab.sweep.storage.sweep_lock`, released by
the kernel or the server when its holder dies): the trial goes WAITING -> RUNNING, gets its
heartbeat (PostgreSQL) and its owner ``worker = host:pid``, and only then is the lock released.
So a RUNNING trial without an owner, seen under the lock, belongs to a worker that died inside
its claim. Before each claim a worker fails and re-queues (:class:`~.storage.RequeueCallback`)
running trials whose worker died: no owner, a dead local ``host:pid``, or (PostgreSQL) a stale
heartbeat; and re-queues failed trials whose re-queue was cut short by a death.
"""

from __future__ import annotations

import hashlib
import multiprocessing
import sys
import threading
import time
from typing import Any, Callable

import optuna
from optuna.trial import TrialState

from . import space as spaces
from .objective import evaluate
from .plan import StudyPlan, advance_round, load_plan, sweep_study_names
from .storage import (MAX_RETRY, _quiet_experimental, has_sweep_lock, is_dead_local_worker, is_rdb, open_storage,
                      release, requeue_locked, retried_numbers, sweep_lock, worker_identity)

IDLE_SLEEP = 0.5
PROGRESS_POLL_SECONDS = 1.0


def make_sampler(plan: StudyPlan, slot: int) -> optuna.samplers.BaseSampler:
    """A sampler seeded per slot, so a slot draws the same point whichever worker runs it (and the
    random studies of different optimizers in one sweep draw the same points: paired samples)."""
    seed = int.from_bytes(hashlib.sha256(f"{plan.seed}/{slot}".encode()).digest()[:4], "big")
    if plan.sampler == "tpe":
        return optuna.samplers.TPESampler(seed=seed, constant_liar=True, n_startup_trials=min(10, max(2, plan.trials // 4)))
    return optuna.samplers.RandomSampler(seed=seed)  # grid/default trials have fixed parameters


def make_pruner(plan: StudyPlan) -> optuna.pruners.BasePruner:
    if plan.pruner == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=max(3, plan.trials // 5), n_warmup_steps=1)
    return optuna.pruners.NopPruner()


def claim_trial(url: str, study: optuna.Study, plan: StudyPlan) -> optuna.Trial | None:
    """Claim one waiting trial: RUNNING, heartbeat (PostgreSQL) and owner, in one step under the sweep lock.

    What ``Study.ask`` does first, without its fallback of creating a fresh trial when the queue
    is empty (that fallback would break the exact budget). The WAITING -> RUNNING transition is
    atomic in the storage (a trial another worker claimed first is skipped); the storage's public
    ``set_trial_state_values`` is reached through the study's ``_storage`` and ``_trial_id``.
    """
    if not study.get_trials(deepcopy=False, states=(TrialState.WAITING,)):
        return None
    storage = study._storage
    with sweep_lock(url, plan.sweep):
        for frozen in study.get_trials(deepcopy=False, states=(TrialState.WAITING,)):
            try:
                if not storage.set_trial_state_values(frozen._trial_id, state=TrialState.RUNNING):
                    continue
            except optuna.exceptions.UpdateFinishedTrialError:
                continue
            if is_rdb(url):
                storage.record_heartbeat(frozen._trial_id)
            storage.set_trial_user_attr(frozen._trial_id, "worker", worker_identity())
            return optuna.Trial(study, frozen._trial_id)
    return None


def suggest(trial: optuna.Trial, dim: spaces.Dimension) -> Any:
    if dim.kind == spaces.FLOAT:
        return trial.suggest_float(dim.name, dim.low, dim.high, log=dim.log)
    if dim.kind == spaces.INT:
        return trial.suggest_int(dim.name, int(dim.low), int(dim.high), log=dim.log)
    return trial.suggest_categorical(dim.name, list(dim.choices))


class Heartbeat:
    """Record the trial's heartbeat every `interval` seconds while the trial runs (RDB storage)."""

    def __init__(self, storage: Any, trial_id: int, interval: int | None) -> None:
        self.storage, self.trial_id, self.interval = storage, trial_id, interval
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._beat, daemon=True)

    def _beat(self) -> None:
        while True:
            self.storage.record_heartbeat(self.trial_id)
            if self.stop.wait(self.interval):
                return

    def __enter__(self) -> "Heartbeat":
        if self.interval:
            self.thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop.set()
        if self.thread.is_alive():
            self.thread.join()


def store_saver(db_path: str | None, plan: StudyPlan, trial: optuna.Trial, params: dict[str, Any]) -> Callable | None:
    """A function that saves one seed's run in the optimlab store (experiment = the sweep name).

    A re-queued trial first looks for the runs its killed attempt may have saved (same study,
    slot and seed: a worker killed between saving and telling Optuna) and reuses them.
    """
    if db_path is None:
        return None
    from ..store import Store
    from .objective import optimizer_spec

    slot = trial.user_attrs.get("slot")
    retried = trial.study._storage.get_trial(trial._trial_id).system_attrs.get("failed_trial") is not None

    def save(trace: Any, seed: int, outcome: str) -> Any:
        config = {"task": plan.task, "optimizer": optimizer_spec(plan, params), "epochs": plan.epochs,
                  "batch_size": plan.batch_size, "seed": seed, "sweep": plan.sweep, "study": plan.study_name,
                  "sampler": plan.sampler, "trial": trial.number, "slot": slot,
                  "round": trial.user_attrs.get("round"), "params": params, "budget": plan.budget,
                  "trial_outcome": outcome}
        with Store(db_path) as store:
            if retried:
                for run in store.list_runs(experiment=plan.sweep):
                    _, old = store.load_run(run["id"])
                    if (old.get("study"), old.get("slot"), old.get("seed")) == (plan.study_name, slot, seed):
                        return run["id"]
            return store.save_run(trace, config, experiment=plan.sweep)

    return save


def run_trial(study: optuna.Study, trial: optuna.Trial, plan: StudyPlan, db_path: str | None,
              heartbeat_interval: int | None) -> None:
    """Run one claimed trial and tell Optuna its result (COMPLETE, PRUNED, or FAIL on a crash).

    If another worker failed this trial meanwhile (its heartbeat looked stale under heavy load),
    the trial was re-queued there: this worker says so and goes on (the retry reuses the runs
    stored here).
    """
    with Heartbeat(study._storage, trial._trial_id, heartbeat_interval):
        try:
            _run_and_tell(study, trial, plan, db_path)
        except optuna.exceptions.UpdateFinishedTrialError:
            print(f"optimlab sweep: trial {trial.number} of {plan.study_name} was failed by another worker "
                  "(stale heartbeat) and re-queued; going on", file=sys.stderr)


def _run_and_tell(study: optuna.Study, trial: optuna.Trial, plan: StudyPlan, db_path: str | None) -> None:
    try:
        dims = spaces.parse_space(trial.user_attrs["space"])
        params = {dim.name: suggest(trial, dim) for dim in dims}
        result = evaluate(plan, params, trial=trial, save=store_saver(db_path, plan, trial, params))
    except optuna.exceptions.UpdateFinishedTrialError:
        raise
    except Exception as error:  # a bug or bad data: the trial fails, the sweep goes on
        trial.set_user_attr("error", f"{type(error).__name__}: {error}")
        study.tell(trial, state=TrialState.FAIL, skip_if_finished=True)
        print(f"optimlab sweep: trial {trial.number} of {plan.study_name} failed: {error}", file=sys.stderr)
        return
    for key, value in (("outcome", result.outcome), ("diverged_at", result.diverged_at),
                       ("curve", result.curve), ("steps_per_epoch", result.steps_per_epoch),
                       ("seconds", round(result.seconds, 3)), ("run_ids", result.run_ids),
                       ("seed_values", result.seed_values), ("target_reached", result.target_reached)):
        trial.set_user_attr(key, value)
    if result.pruned:
        study.tell(trial, state=TrialState.PRUNED, skip_if_finished=True)
    else:
        study.tell(trial, result.value, skip_if_finished=True)


def requeue_dead_workers(url: str, study: optuna.Study, plan: StudyPlan) -> int:
    """Fail and re-queue running trials whose worker died; return how many were re-queued.

    Dead: no owner (its worker died inside the claim; judged under the sweep lock, where no live
    claim is half done), a dead ``host:pid`` on this host, or (PostgreSQL, any host) a heartbeat
    older than the grace period. Also re-queues a FAILED trial that a worker failed as dead but
    died before re-queueing (no ``error`` attribute, not yet retried).
    """
    if is_rdb(url):
        with _quiet_experimental():
            optuna.storages.fail_stale_trials(study)  # calls RequeueCallback under the lock
    if not _suspects(study, has_sweep_lock(url)):
        return 0
    count = 0
    with sweep_lock(url, plan.sweep):
        for frozen in _suspects(study, has_sweep_lock(url)):
            if frozen.state == TrialState.RUNNING:
                try:
                    if not study._storage.set_trial_state_values(frozen._trial_id, state=TrialState.FAIL):
                        continue
                except optuna.exceptions.UpdateFinishedTrialError:
                    continue
                frozen = study._storage.get_trial(frozen._trial_id)
            count += requeue_locked(study, frozen)
    return count


def _suspects(study: optuna.Study, locked_claims: bool) -> list[optuna.trial.FrozenTrial]:
    """Running trials without a live owner, and failed-as-dead trials not yet re-queued.

    An ownerless running trial counts only where claims hold a real lock (`locked_claims`):
    elsewhere (sqlite, mysql) it may be a live claim half done, and the heartbeat judges it.
    """
    trials = study.get_trials(deepcopy=False, states=(TrialState.RUNNING, TrialState.FAIL))
    running = [t for t in trials if t.state == TrialState.RUNNING
               and (is_dead_local_worker(t.user_attrs.get("worker"))
                    or locked_claims and not t.user_attrs.get("worker"))]
    failed = [t for t in trials if t.state == TrialState.FAIL and "error" not in t.user_attrs]
    if failed:
        retried = retried_numbers(study)
        failed = [t for t in failed if t.number not in retried
                  and len(t.system_attrs.get("retry_history", ())) < MAX_RETRY]
    return running + failed


def work(url: str, sweep: str, *, db_path: str | None = None, heartbeat_interval: int = 10,
         grace_period: int = 30, torch_threads: int | None = None,
         on_trial: Callable[[StudyPlan, optuna.Trial], None] | None = None) -> int:
    """Run trials of sweep `sweep` until none is left; return how many this worker ran.
    ``on_trial(plan, trial)`` is called after each trial this worker finishes."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    if torch_threads:
        import torch

        torch.set_num_threads(torch_threads)
    storage = open_storage(url, heartbeat_interval=heartbeat_interval, grace_period=grace_period)
    interval = heartbeat_interval if is_rdb(url) else None
    ran = 0
    try:
        names = sweep_study_names(storage, sweep)
        if not names:
            raise ValueError(f"no study named {sweep!r} in {url}")
        while True:
            busy = False
            for name in names:
                study = optuna.load_study(study_name=name, storage=storage)
                plan = load_plan(study)
                requeue_dead_workers(url, study, plan)
                trial = claim_trial(url, study, plan)
                if trial is None:
                    busy |= advance_round(url, study, plan)
                    busy |= bool(study.get_trials(deepcopy=False, states=(TrialState.RUNNING, TrialState.WAITING)))
                    continue
                study.sampler = make_sampler(plan, trial.user_attrs.get("slot", trial.number))
                study.pruner = make_pruner(plan)
                run_trial(study, trial, plan, db_path, interval)
                ran, busy = ran + 1, True
                if on_trial is not None:
                    on_trial(plan, trial)
            if not busy:
                return ran
            if ran == 0 or not _any_waiting(storage, names):
                time.sleep(IDLE_SLEEP)
    finally:
        release(storage)


def _any_waiting(storage: Any, names: list[str]) -> bool:
    return any(optuna.load_study(study_name=n, storage=storage).get_trials(deepcopy=False, states=(TrialState.WAITING,))
               for n in names)


def _work_in_child(kwargs: dict[str, Any]) -> None:
    work(**kwargs)


def trial_counts(url: str, sweep: str) -> tuple[int, int]:
    """(finished trials, planned trials) over the sweep's studies: COMPLETE or PRUNED trials
    against each study's declared budget (failed trials are re-queued, so they do not count)."""
    storage = open_storage(url)
    try:
        done = total = 0
        for name in sweep_study_names(storage, sweep):
            study = optuna.load_study(study_name=name, storage=storage)
            total += load_plan(study).trials
            done += len(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED)))
        return done, total
    finally:
        release(storage)


def run_workers(count: int, progress: Any = None, **kwargs: Any) -> list[int]:
    """Run `count` worker processes (spawned, so each has a clean torch) and wait; exit codes.

    ``progress`` (:func:`optimlab.progress.progress_reporter`, unit trials) follows the sweep's
    finished trials: after each trial of the one in-process worker, or from the storage every
    second while several worker processes run.
    """
    if progress is not None:
        done, total = trial_counts(kwargs["url"], kwargs["sweep"])
        progress.set_total(total)
        progress.advance(done)
    if count == 1:
        def advance(plan: StudyPlan, trial: optuna.Trial) -> None:
            progress.advance(1, status=f"last: {plan.optimizer} {plan.sampler} trial {trial.number}")

        work(**kwargs, on_trial=advance if progress is not None else None)
        return [0]
    context = multiprocessing.get_context("spawn")
    processes = [context.Process(target=_work_in_child, args=(kwargs,)) for _ in range(count)]
    for process in processes:
        process.start()
    while progress is not None and any(process.is_alive() for process in processes):
        time.sleep(PROGRESS_POLL_SECONDS)
        progress.advance(trial_counts(kwargs["url"], kwargs["sweep"])[0] - progress.done)
    for process in processes:
        process.join()
    return [process.exitcode for process in processes]
