"""Where sweeps live: a journal file beside the optimlab db by default, or a PostgreSQL database.

* Default: ``optimlab.db`` -> ``optimlab.sweeps.journal``, Optuna's JournalStorage with its file
  backend. Zero set-up and safe for several worker processes on one machine (the journal is an
  append-only log guarded by a file lock; Optuna's FAQ advises against SQLite for parallel workers).
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
from pathlib import Path
from typing import Iterator

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


def _retry_callback() -> object:
    """Optuna >= 4.9 renamed RetryFailedTrialCallback; use whichever this version has."""
    cls = getattr(optuna.storages, "RetryHeartbeatStaleTrialCallback", None) or optuna.storages.RetryFailedTrialCallback
    with _quiet_experimental():
        return cls(max_retry=3)


def open_storage(url: str, *, heartbeat_interval: int = HEARTBEAT_INTERVAL,
                 grace_period: int = GRACE_PERIOD) -> optuna.storages.BaseStorage:
    """An Optuna storage for `url` (see the module docstring)."""
    if not is_rdb(url):
        return _journal_storage(url)
    options = {"heartbeat_interval": heartbeat_interval, "grace_period": grace_period}
    parameters = inspect.signature(RDBStorage.__init__).parameters
    callback_name = "heartbeat_stale_trial_callback" if "heartbeat_stale_trial_callback" in parameters else "failed_trial_callback"
    options[callback_name] = _retry_callback()
    engine_kwargs = {} if url.startswith("sqlite") else dict(POOL)
    with _quiet_experimental():
        return RDBStorage(url, engine_kwargs=engine_kwargs, **options)


def _journal_storage(path: str) -> optuna.storages.BaseStorage:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    journal = optuna.storages.journal
    backend_cls = getattr(journal, "JournalFileBackend", None)  # optuna >= 4.0
    if backend_cls is None:
        backend = optuna.storages.JournalFileStorage(path)  # optuna 3.x name
    else:
        backend = backend_cls(path)
    return journal.JournalStorage(backend)


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

    Held while a study is created with its trial budget and while a coarse-to-fine round is
    queued, so two workers never queue the same trials. A file lock beside the journal, or a
    PostgreSQL advisory lock.
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
