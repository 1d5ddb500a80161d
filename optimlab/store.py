"""Results store: runs, their config and their traces in SQL (SQLite file by default).

``Store()`` opens ``$OPTIMLAB_DB`` or ``./optimlab.db``; ``Store("results.db")`` a file;
``Store("postgresql://user@host/db")`` any SQLAlchemy URL (the tables use only portable types).

Schema (plain SQL, one row per run / per trace row):

- ``runs``: id (integer key), created_at (ISO-8601 UTC), experiment (a group name, e.g. one
  ``compare`` invocation), task, optimizer (spec string), seed, batch_size (text: N or "full"),
  epochs (real: epochs done), steps, outcome ("completed", "diverged at step 37", ...),
  diverged_at, final_train_loss, best_val_metric, seconds_per_epoch (training seconds per epoch,
  evaluation excluded), config (JSON text: how the run was asked for), meta (JSON text: the
  Trace's meta), trace_outcome (the Trace's outcome word).
- ``step_rows``: run_id, idx (row number), step, epoch, loss, lr, time, extra (JSON text with any
  other keys, e.g. a callback's, and non-finite values).
- ``epoch_rows``: run_id, idx, epoch, step, train_loss, val_loss, train_metric, val_metric,
  time, lr, extra.
- ``experiments``: name (the runs' experiment), status ("running", "complete" or "incomplete":
  interrupted, its runs are a part of the plan), updated_at.

``Store(path, create=False)`` (the read-only verbs: runs list/show/export, report) never creates a
database: a missing file is "no such database: PATH". Any location that cannot be opened (a
folder, a file that is not SQLite, an unreachable server, a driver that is not installed) is one
ValueError line naming it, raised by the constructor, so a command fails before any training.

SQLite is opened in WAL mode with a 60 s busy timeout and every write transaction starts with
``BEGIN IMMEDIATE``, so several processes can write one file at once without losing rows.
"""

from __future__ import annotations

import csv
import json
import math
import os
from datetime import datetime, timezone
from pathlib import Path
from typing import IO, Any, Iterable

from sqlalchemy import (Column, Float, ForeignKey, Integer, MetaData, String, Table, Text, create_engine, event,
                        inspect, select)
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError
from sqlalchemy.engine import Engine

from .summary import summarize
from .trace import Trace

DEFAULT_DB = "optimlab.db"
EXPERIMENT_STATUSES = ("running", "complete", "incomplete")
BUSY_TIMEOUT_S = 60

metadata = MetaData()
runs_table = Table(
    "runs", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("created_at", String(40), nullable=False),
    Column("experiment", String(200)),
    Column("task", String(200)),
    Column("optimizer", String(500)),
    Column("seed", Integer),
    Column("batch_size", String(40)),
    Column("epochs", Float),
    Column("steps", Integer),
    Column("outcome", String(100)),
    Column("diverged_at", Integer),
    Column("final_train_loss", Float),
    Column("best_val_metric", Float),
    Column("seconds_per_epoch", Float),
    Column("config", Text),
    Column("meta", Text),
    Column("trace_outcome", String(40)),
)
# One row per experiment that has a status: "running" while a compare trains, "complete" when it
# finished, "incomplete" when it was interrupted (its stored runs are a subset of the plan).
experiments_table = Table(
    "experiments", metadata,
    Column("name", String(200), primary_key=True),
    Column("status", String(20), nullable=False),
    Column("updated_at", String(40), nullable=False),
)
STEP_COLUMNS = ("step", "epoch", "loss", "lr", "time")
EPOCH_COLUMNS = ("epoch", "step", "train_loss", "val_loss", "train_metric", "val_metric", "time", "lr")


def _rows_table(name: str, columns: tuple[str, ...]) -> Table:
    typed = [Column(c, Integer if c == "step" else Float) for c in columns]
    return Table(name, metadata,
                 Column("run_id", Integer, ForeignKey("runs.id"), primary_key=True),
                 Column("idx", Integer, primary_key=True), *typed, Column("extra", Text))


step_rows_table = _rows_table("step_rows", STEP_COLUMNS)
epoch_rows_table = _rows_table("epoch_rows", EPOCH_COLUMNS)
ROW_TABLES = {"steps": (step_rows_table, STEP_COLUMNS), "epochs": (epoch_rows_table, EPOCH_COLUMNS)}
SUMMARY_COLUMNS = ("id", "created_at", "experiment", "task", "optimizer", "seed", "batch_size", "epochs", "steps",
                   "outcome", "final_train_loss", "best_val_metric", "seconds_per_epoch")


def default_db() -> str:
    """``$OPTIMLAB_DB`` if set, else ``./optimlab.db``."""
    return os.environ.get("OPTIMLAB_DB") or DEFAULT_DB


def postgres_driver() -> str:
    """SQLAlchemy >= 2.1 reads a bare postgresql:// as psycopg (3); fall back to psycopg2."""
    import importlib.util

    return "psycopg" if importlib.util.find_spec("psycopg") else "psycopg2"


def database_url(url: str) -> str:
    """``postgres://`` and ``postgresql://`` name an installed driver; other URLs pass unchanged."""
    scheme, _, rest = url.partition("://")
    if scheme in ("postgres", "postgresql"):
        return f"postgresql+{postgres_driver()}://{rest}"
    return url


def _url(location: str) -> str:
    if "://" in location:
        return database_url(location)
    return f"sqlite:///{Path(location).expanduser().resolve()}"


def _sqlite_engine(url: str) -> Engine:
    engine = create_engine(url, connect_args={"timeout": BUSY_TIMEOUT_S})

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # we issue BEGIN ourselves (pysqlite's is deferred)
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_S * 1000}")
        cursor.execute("PRAGMA journal_mode = WAL")
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")  # take the write lock now: no upgrade deadlocks

    return engine


def _plain(value: Any) -> Any:
    return value if not isinstance(value, float) or math.isfinite(value) else None


def _split_row(row: dict[str, Any], columns: tuple[str, ...]) -> dict[str, Any]:
    """A trace row -> the table's columns + ``extra`` JSON: other keys, non-finite numbers, and
    ``_absent`` (columns the row does not have, so that NULL can mean None)."""
    record: dict[str, Any] = {}
    extra: dict[str, Any] = {}
    absent = [column for column in columns if column not in row]
    for column in columns:
        value = row.get(column)
        if isinstance(value, float) and not math.isfinite(value):
            extra[column] = value
            value = None
        elif column == "step" and value is not None:
            value = int(value)
        record[column] = value
    extra.update({k: v for k, v in row.items() if k not in columns})
    if absent:
        extra["_absent"] = absent
    record["extra"] = json.dumps(extra, allow_nan=True, default=str) if extra else None
    return record


def _join_row(record: Any, columns: tuple[str, ...]) -> dict[str, Any]:
    extra = json.loads(record.extra) if record.extra else {}
    absent = set(extra.pop("_absent", ()))
    row = {c: getattr(record, c) for c in columns if c not in absent}
    row.update(extra)
    return row


def _check_sqlite_file(location: str, create: bool) -> None:
    """One line for a path that cannot be a SQLite store (checked before SQLAlchemy sees it)."""
    path = Path(location).expanduser()
    if path.is_dir():
        raise ValueError(f"database {location!r} is a folder, not a file")
    if not path.exists():
        if not create:
            raise ValueError(f"no such database: {location}")
        parent = path.resolve().parent
        if parent.exists() and not parent.is_dir():
            raise ValueError(f"database {location!r}: {str(parent)!r} is a file, not a folder")
        if not parent.is_dir():
            raise ValueError(f"database {location!r}: folder {str(parent)!r} does not exist")
        if not os.access(parent, os.W_OK):
            raise ValueError(f"database {location!r}: folder {str(parent)!r} is not writable")


def _shown(location: str) -> str:
    """The location with any password hidden."""
    if "://" not in location:
        return location
    try:
        return make_url(location).render_as_string(hide_password=True)
    except ArgumentError:
        return location.split("://")[0] + "://..."


def _open_error(location: str, error: BaseException) -> ValueError:
    """A one-line reason why ``location`` cannot be opened as a results database."""
    if isinstance(error, ImportError):
        driver = getattr(error, "name", None) or "its driver"
        return ValueError(f"database {_shown(location)}: the driver {driver!r} is not installed "
                          "(for PostgreSQL: pip install psycopg2-binary)")
    reason = str(getattr(error, "orig", None) or error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    if "file is not a database" in reason:
        reason = "the file is not a SQLite database"
    return ValueError(f"cannot open database {_shown(location)}: {reason}")


class Store:
    """A results database; see the module docstring for the schema."""

    def __init__(self, location: str | os.PathLike | None = None, *, create: bool = True) -> None:
        self.location = str(location) if location is not None else default_db()
        if not self.location.strip():
            raise ValueError("empty database location")
        if "://" not in self.location:
            _check_sqlite_file(self.location, create)
        try:
            url = _url(self.location)
            self.engine = _sqlite_engine(url) if url.startswith("sqlite") else create_engine(url, pool_pre_ping=True)
            if create:
                metadata.create_all(self.engine)
            elif not inspect(self.engine).has_table("runs"):
                self.engine.dispose()
                raise ValueError(f"{_shown(self.location)} is not an optimlab results database (no runs table)")
        except (SQLAlchemyError, ImportError) as error:
            raise _open_error(self.location, error) from None

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> "Store":
        return self

    def __exit__(self, *_exc: Any) -> None:
        self.close()

    @staticmethod
    def check_fits(*, task: str | None = None, optimizer: str | None = None, experiment: str | None = None) -> None:
        """ValueError if a name is longer than its column (PostgreSQL would refuse the run after training)."""
        for name, value in (("task", task), ("optimizer", optimizer), ("experiment", experiment)):
            limit = runs_table.c[name].type.length
            if value is not None and len(value) > limit:
                raise ValueError(f"{name} {value[:40]!r}... is {len(value)} characters; the store keeps at most {limit}")

    def save_run(self, trace: Trace, config: dict[str, Any] | None = None, experiment: str | None = None) -> int:
        """Store a run (its summary, config, meta and every row) in one transaction; return its id."""
        config = dict(config or {})
        summary = summarize(trace)
        run = {
            "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "experiment": experiment or config.get("experiment"),
            "task": summary["task"], "optimizer": trace.optimizer, "seed": summary["seed"],
            "batch_size": None if summary["batch_size"] is None else str(summary["batch_size"]),
            "epochs": _plain(summary["epochs"]), "steps": summary["steps"], "outcome": trace.outcome_text,
            "diverged_at": trace.diverged_at, "final_train_loss": _plain(summary["final_train_loss"]),
            "best_val_metric": _plain(summary["best_val_metric"]),
            "seconds_per_epoch": _plain(summary["seconds_per_epoch"]),
            "config": json.dumps(config, default=str), "meta": json.dumps(trace.meta, default=str, allow_nan=True),
            "trace_outcome": trace.outcome,
        }
        with self.engine.begin() as connection:
            run_id = int(connection.execute(runs_table.insert().values(**run)).inserted_primary_key[0])
            for name, (table, columns) in ROW_TABLES.items():
                records = [{"run_id": run_id, "idx": i, **_split_row(row, columns)}
                           for i, row in enumerate(getattr(trace, name))]
                if records:
                    connection.execute(table.insert(), records)
        return run_id

    def load_run(self, run_id: int) -> tuple[Trace, dict[str, Any]]:
        """(Trace, config) of a stored run; ValueError for an unknown id."""
        with self.engine.connect() as connection:
            run = connection.execute(select(runs_table).where(runs_table.c.id == int(run_id))).first()
            if run is None:
                raise ValueError(f"no run with id {run_id} in {self.location}")
            tables = {}
            for name, (table, columns) in ROW_TABLES.items():
                records = connection.execute(select(table).where(table.c.run_id == run.id).order_by(table.c.idx))
                tables[name] = [_join_row(record, columns) for record in records]
        trace = Trace(run.optimizer, run.task, steps=tables["steps"], epochs=tables["epochs"],
                      outcome=run.trace_outcome, diverged_at=run.diverged_at, meta=json.loads(run.meta or "{}"))
        return trace, json.loads(run.config or "{}")

    def list_runs(self, *, task: str | None = None, optimizer: str | None = None, experiment: str | None = None,
                  ids: Iterable[int] | None = None, limit: int | None = None) -> list[dict[str, Any]]:
        """Run summaries (newest last), filtered by exact task/optimizer/experiment or ids."""
        query = select(*(runs_table.c[c] for c in SUMMARY_COLUMNS)).order_by(runs_table.c.id)
        for column, value in (("task", task), ("optimizer", optimizer), ("experiment", experiment)):
            if value is not None:
                query = query.where(runs_table.c[column] == value)
        if ids is not None:
            query = query.where(runs_table.c.id.in_([int(i) for i in ids]))
        if limit is not None:
            query = query.order_by(None).order_by(runs_table.c.id.desc()).limit(int(limit))
        with self.engine.connect() as connection:
            rows = [dict(row._mapping) for row in connection.execute(query)]
        return sorted(rows, key=lambda row: row["id"])

    def count_rows(self, table: str = "steps") -> int:
        from sqlalchemy import func

        with self.engine.connect() as connection:
            return int(connection.execute(select(func.count()).select_from(ROW_TABLES[table][0])).scalar_one())

    def set_experiment_status(self, name: str, status: str) -> None:
        """Record ``status`` ("running", "complete" or "incomplete") for experiment ``name``."""
        if status not in EXPERIMENT_STATUSES:
            raise ValueError(f"status={status!r} must be one of: {', '.join(EXPERIMENT_STATUSES)}")
        now = datetime.now(timezone.utc).isoformat(timespec="seconds")
        with self.engine.begin() as connection:
            table = experiments_table
            if connection.execute(select(table.c.name).where(table.c.name == name)).first() is None:
                connection.execute(table.insert().values(name=name, status=status, updated_at=now))
            else:
                connection.execute(table.update().where(table.c.name == name).values(status=status, updated_at=now))

    def experiment_status(self, name: str) -> str | None:
        """The recorded status of experiment ``name``, or None (never recorded)."""
        with self.engine.connect() as connection:
            row = connection.execute(select(experiments_table.c.status).where(experiments_table.c.name == name)).first()
        return None if row is None else row.status

    def existing_ids(self, ranges: Iterable[tuple[int, int]]) -> list[int]:
        """The stored run ids inside the inclusive ``(first, last)`` ranges, ascending (asked of the
        database, so ``1-999999999`` costs what is stored, not what was typed)."""
        from sqlalchemy import or_

        ranges = list(ranges)
        if not ranges:
            return []
        condition = or_(*(runs_table.c.id.between(first, last) for first, last in ranges))
        with self.engine.connect() as connection:
            return [row.id for row in connection.execute(select(runs_table.c.id).where(condition).order_by(runs_table.c.id))]

    def export_csv(self, run_ids: Iterable[int], out: IO[str], table: str = "epochs") -> int:
        """Write the rows of ``table`` ("steps", "epochs" or "runs") of the given runs as CSV; return the row count.

        The header is the union of every run's columns (a column only some runs have, e.g.
        ``sharpness``, is empty for the others); runs are read one at a time, twice.
        """
        run_ids = list(run_ids)
        if table == "runs":
            rows = self.list_runs(ids=run_ids)
            writer = csv.DictWriter(out, fieldnames=list(SUMMARY_COLUMNS))
            writer.writeheader()
            writer.writerows(rows)
            return len(rows)
        if table not in ROW_TABLES:
            raise ValueError(f"unknown table {table!r}; choose one of: runs, steps, epochs")
        base = ROW_TABLES[table][1]
        others: set[str] = set()
        for run_id in run_ids:  # first pass: the union of the columns
            others.update(k for row in getattr(self.load_run(run_id)[0], table) for k in row)
        fields = ["run_id", "task", "optimizer", "seed", *base, *sorted(others - set(base))]
        writer = csv.DictWriter(out, fieldnames=fields, extrasaction="ignore")
        writer.writeheader()
        written = 0
        for run_id in run_ids:
            trace, _ = self.load_run(run_id)
            for row in getattr(trace, table):
                writer.writerow({"run_id": run_id, "task": trace.problem, "optimizer": trace.optimizer,
                                 "seed": trace.meta.get("seed"), **row})
                written += 1
        return written


__all__ = ["Store", "default_db", "DEFAULT_DB"]
