"""Where sweeps live: a journal file beside the optimlab db by default, or a PostgreSQL database.

* Default: ``optimlab.db`` -> ``optimlab.sweeps.journal``, Optuna's JournalStorage with its file
  backend. Zero set-up and safe for several worker processes on one machine (the journal is an
  append-only log guarded by a file lock; Optuna's FAQ advises against SQLite for parallel workers).
  The lock is :class:`KernelFileLock` (``flock(2)`` on ``<journal>.flock``), not Optuna's default
  lock file: the kernel releases it the moment its holder dies, so a killed worker never freezes
  the others (Optuna's lock file waits out a 30 s grace period before it is broken).
* ``postgresql://user@host:port/db``: Optuna's RDBStorage, for workers on several machines. The
  connection pool is bounded (``pool_size`` + ``max_overflow`` connections per process,
  ``pool_pre_ping``) and released by :func:`release` at the end (optuna #1347). Trials send a
  heartbeat; a trial whose worker stopped beating for ``grace_period`` seconds is failed and
  re-queued with the same parameters (RetryFailedTrialCallback), so a killed worker loses at
  most its running trial.

``optuna-dashboard <storage URL or journal file>`` shows the same studies.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import inspect
import os
import socket
import threading
from pathlib import Path
from typing import Any, Iterator

import optuna
from optuna.storages import RDBStorage

from ..store import DEFAULT_DB, database_url

from .defaults import GRACE_PERIOD, HEARTBEAT_INTERVAL  # re-exported
POOL = {"pool_size": 2, "max_overflow": 2, "pool_pre_ping": True, "pool_recycle": 300}


def default_journal_path(db_path: str | os.PathLike = DEFAULT_DB) -> Path:
    """``optimlab.db`` -> ``optimlab.sweeps.journal`` (beside the db)."""
    path = Path(db_path)
    return path.with_name(path.stem + ".sweeps.journal")


def resolve_storage_url(storage: str | None, db_path: str | os.PathLike = DEFAULT_DB) -> str:
    """The storage the user asked for, normalized: a database URL or an absolute journal path."""
    if storage is None:
        return str(default_journal_path(db_path).resolve())
    if "://" in storage:
        scheme = storage.split("://", 1)[0].split("+", 1)[0]
        if scheme not in ("postgresql", "postgres", "mysql", "sqlite"):
            raise ValueError(f"--storage {storage!r}: expected postgresql://..., mysql://..., sqlite:///... or a journal file path")
        return database_url(storage)
    return str(Path(storage).resolve())


def is_rdb(url: str) -> bool:
    return "://" in url


MAX_RETRY = 3  # a trial whose worker died this many times is left FAILED (it probably kills workers)
QUEUED_ATTRS = ("slot", "round", "space")  # what queue_round gives a trial; a retry keeps only these


class RequeueCallback:
    """Re-queue a trial whose worker died: a new WAITING trial with its parameters and plan attributes.

    Optuna's own retry callback copies every user attribute, the dead worker's ``worker`` too, so
    another worker's dead-worker check could fail the retry while a live worker runs it. This one
    keeps only :data:`QUEUED_ATTRS`, records ``failed_trial`` (the first attempt's number) and
    ``retry_history`` as Optuna does, and is idempotent: a trial already re-queued (its number is
    in some trial's ``retry_history``) is not queued twice. Runs under the sweep lock, which it
    takes itself when Optuna's ``fail_stale_trials`` calls it (PostgreSQL heartbeats).
    """

    def __init__(self, url: str, max_retry: int = MAX_RETRY) -> None:
        self.url, self.max_retry = url, max_retry

    def __call__(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        with sweep_lock(self.url, sweep_of(study.study_name)):
            requeue_locked(study, trial, self.max_retry)


def requeue_locked(study: optuna.Study, trial: optuna.trial.FrozenTrial, max_retry: int = MAX_RETRY) -> bool:
    """:class:`RequeueCallback`'s work; the caller holds the sweep lock. True if it queued a retry."""
    if trial.number in retried_numbers(study):
        return False
    history = [*trial.system_attrs.get("retry_history", []), trial.number]
    if len(history) > max_retry:
        return False
    system_attrs = {**trial.system_attrs, "failed_trial": trial.system_attrs.get("failed_trial", trial.number),
                    "retry_history": history}
    study.add_trial(optuna.trial.create_trial(
        state=optuna.trial.TrialState.WAITING, params=trial.params, distributions=trial.distributions,
        user_attrs={k: v for k, v in trial.user_attrs.items() if k in QUEUED_ATTRS}, system_attrs=system_attrs))
    return True


def retried_numbers(study: optuna.Study) -> set[int]:
    """Numbers of the trials that some later trial retries."""
    return {number for t in study.get_trials(deepcopy=False) for number in t.system_attrs.get("retry_history", ())}


def sweep_of(study_name: str) -> str:
    """``NAME/task/optimizer/sampler`` -> ``NAME``."""
    return study_name.split("/", 1)[0]


def open_storage(url: str, *, heartbeat_interval: int = HEARTBEAT_INTERVAL,
                 grace_period: int = GRACE_PERIOD) -> optuna.storages.BaseStorage:
    """An Optuna storage for `url` (see the module docstring)."""
    if not is_rdb(url):
        return _journal_storage(url)
    options = {"heartbeat_interval": heartbeat_interval, "grace_period": grace_period}
    parameters = inspect.signature(RDBStorage.__init__).parameters
    callback_name = "heartbeat_stale_trial_callback" if "heartbeat_stale_trial_callback" in parameters else "failed_trial_callback"
    options[callback_name] = RequeueCallback(url)
    engine_kwargs = {} if url.startswith("sqlite") else dict(POOL)
    with _quiet_experimental():
        return RDBStorage(url, engine_kwargs=engine_kwargs, **options)


def _journal_storage(path: str) -> optuna.storages.BaseStorage:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    journal = optuna.storages.journal
    backend_cls = getattr(journal, "JournalFileBackend", None) or optuna.storages.JournalFileStorage  # 3.x name
    return journal.JournalStorage(backend_cls(path, lock_obj=KernelFileLock(path)))


class KernelFileLock:
    """The journal's write lock on ``flock(2)``; the kernel releases it when its holder dies.

    Optuna's journal backend calls ``acquire()`` and ``release()`` around each append (the
    interface of its ``JournalFileOpenLock``). The lock file ``<journal>.flock`` is never removed,
    so there is no stale lock to break; each acquire opens its own file description, so two
    storages in one process exclude each other too. Local file systems only (as the journal).
    """

    def __init__(self, journal_path: str) -> None:
        self.path = journal_path + ".flock"
        self._handle: Any = None
        self._in_process = threading.Lock()  # one holder per object (the storage also serializes)

    def acquire(self) -> bool:
        self._in_process.acquire()
        try:
            handle = open(self.path, "a")
            try:
                fcntl.flock(handle, fcntl.LOCK_EX)
            except BaseException:
                handle.close()
                raise
        except BaseException:
            self._in_process.release()
            raise
        self._handle = handle
        return True

    def release(self) -> None:
        handle, self._handle = self._handle, None
        try:
            if handle is not None:
                fcntl.flock(handle, fcntl.LOCK_UN)
                handle.close()
        finally:
            self._in_process.release()


def release(storage: optuna.storages.BaseStorage) -> None:
    """Return the database connections of `storage` (dispose the SQLAlchemy engine's pool)."""
    engine = getattr(storage, "engine", None)
    if engine is not None:
        engine.dispose()
    if hasattr(storage, "remove_session"):
        storage.remove_session()


@contextlib.contextmanager
def _quiet_experimental() -> Iterator[None]:
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        yield


@contextlib.contextmanager
def sweep_lock(url: str, name: str) -> Iterator[None]:
    """A lock shared by every worker of sweep `name` on storage `url`, on any machine.

    Held while a study is created with its trial budget, while a coarse-to-fine round is queued,
    while a worker claims a trial (WAITING -> RUNNING, then its owner), and while dead workers'
    trials are failed and re-queued: so two workers never queue the same trials, and nobody sees
    a claim half done. Both kinds are released when their holder dies, whatever kills it: a
    ``flock`` beside the journal (by the kernel), or a PostgreSQL session advisory lock (by the
    server, when the connection drops).
    """
    if not is_rdb(url):
        # not "<journal>.lock": that name is the journal backend's own lock file
        lock_path = Path(url).with_name(Path(url).name + ".sweep-lock")
        with open(lock_path, "a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)
        return
    if not url.startswith("postgresql"):
        yield  # sqlite/mysql: single-machine use, no advisory locks
        return
    import sqlalchemy

    key = int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)
    engine = sqlalchemy.create_engine(url, poolclass=sqlalchemy.pool.NullPool)
    try:
        with engine.connect() as connection:
            connection.execute(sqlalchemy.text("SELECT pg_advisory_lock(:key)"), {"key": key})
            try:
                yield
            finally:
                connection.execute(sqlalchemy.text("SELECT pg_advisory_unlock(:key)"), {"key": key})
                connection.commit()
    finally:
        engine.dispose()


def has_sweep_lock(url: str) -> bool:
    """True where :func:`sweep_lock` really locks (journal, PostgreSQL); sqlite/mysql URLs run unlocked."""
    return not is_rdb(url) or url.startswith("postgresql")


def worker_identity() -> str:
    """``host:pid`` of this process, recorded on each trial it runs."""
    return f"{socket.gethostname()}:{os.getpid()}"


def is_dead_local_worker(identity: str | None) -> bool:
    """True if `identity` names a process on this host that no longer exists."""
    if not identity or ":" not in identity:
        return False
    host, _, pid = identity.rpartition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return _is_zombie(int(pid))


def _is_zombie(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().rsplit(")", 1)[1].split()[0] == "Z"
    except (OSError, IndexError):
        return False
