"""Results store: round trip, listing, CSV export, and two processes writing one file at once."""

import csv
import io
import math
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from optimlab.store import Store, default_db
from optimlab.trace import DIVERGED, Trace


def sample_trace(seed: int = 0, n_steps: int = 50) -> Trace:
    steps = [{"step": i + 1, "epoch": (i + 1) / 10, "loss": 1.0 / (i + 1 + seed), "lr": 0.1, "time": 0.01 * i}
             for i in range(n_steps)]
    steps[3]["grad_norm"] = 2.5  # a callback's key
    steps[-1]["loss"] = float("nan")
    epochs = [{"epoch": e, "step": 10 * e, "train_loss": 1.0 / (e + 1), "val_loss": None if e == 0 else 1.1 / (e + 1),
               "train_metric": 0.5 + 0.1 * e, "val_metric": 0.45 + 0.1 * e, "time": 0.1 * e, "lr": 0.1}
              for e in range(n_steps // 10 + 1)]
    epochs[-1]["val_loss"] = float("inf")
    meta = {"task": "wine-softmax", "seed": seed, "batch_size": 16, "batch_size_arg": 16, "steps": n_steps,
            "steps_per_epoch": 10, "train_seconds": 0.5, "metric": "acc"}
    return Trace("adam:lr=0.001", "wine-softmax", steps, epochs, DIVERGED, n_steps, meta)


def same(a, b) -> bool:
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    return a == b


def test_round_trip(tmp_path):
    trace = sample_trace()
    with Store(tmp_path / "runs.db") as store:
        run_id = store.save_run(trace, {"task": "wine-softmax", "epochs": 5}, experiment="exp-1")
        loaded, config = store.load_run(run_id)
        assert config == {"task": "wine-softmax", "epochs": 5}
        assert same(loaded.to_dict(), trace.to_dict())
        assert loaded.outcome_text == "diverged at step 50"
        [summary] = store.list_runs(experiment="exp-1")
        assert summary["id"] == run_id and summary["optimizer"] == "adam:lr=0.001"
        assert summary["final_train_loss"] == pytest.approx(1 / 6) and summary["best_val_metric"] == pytest.approx(0.95)
        assert summary["seconds_per_epoch"] == pytest.approx(0.1)
        with pytest.raises(ValueError, match="no run with id 999"):
            store.load_run(999)
    # the schema is plain SQL that any client reads
    with sqlite3.connect(tmp_path / "runs.db") as connection:
        assert connection.execute("select count(*) from step_rows where run_id = ?", (run_id,)).fetchone() == (50,)
        assert connection.execute("pragma journal_mode").fetchone() == ("wal",)


def test_list_filters_and_csv(tmp_path):
    with Store(tmp_path / "runs.db") as store:
        ids = [store.save_run(sample_trace(seed), {}, experiment="a" if seed < 2 else "b") for seed in range(3)]
        assert [r["id"] for r in store.list_runs(experiment="a")] == ids[:2]
        assert [r["id"] for r in store.list_runs(limit=2)] == ids[1:]
        assert store.list_runs(task="nope") == []
        out = io.StringIO()
        assert store.export_csv(ids[:2], out, table="steps") == 100
        rows = list(csv.DictReader(io.StringIO(out.getvalue())))
        assert rows[0]["run_id"] == str(ids[0]) and "grad_norm" in rows[0] and rows[3]["grad_norm"] == "2.5"
        out = io.StringIO()
        store.export_csv(ids, out, table="runs")
        assert len(out.getvalue().strip().splitlines()) == 4


def test_default_location(monkeypatch, tmp_path):
    monkeypatch.delenv("OPTIMLAB_DB", raising=False)
    assert default_db() == "optimlab.db"
    monkeypatch.setenv("OPTIMLAB_DB", str(tmp_path / "env.db"))
    with Store() as store:
        store.save_run(sample_trace(), {})
    assert (tmp_path / "env.db").exists()


WRITER = textwrap.dedent("""
    import os, sys, time
    from pathlib import Path
    sys.path.insert(0, {root!r})
    sys.path.insert(0, {tests!r})
    from test_store import sample_trace
    from optimlab.store import Store
    store = Store(sys.argv[1])
    barrier = os.environ.get("OPTIMLAB_BARRIER", sys.argv[1])
    Path(barrier + "." + sys.argv[3]).touch()  # a barrier: start writing when both are ready
    deadline = time.monotonic() + 90
    while not all(Path(barrier + "." + name).exists() for name in "ab"):
        if time.monotonic() > deadline:  # the other writer died before the barrier: say so, don't hang
            sys.exit("the other writer never reached the barrier")
        time.sleep(0.01)
    for i in range(int(sys.argv[2])):
        store.save_run(sample_trace(i, n_steps=400), {{"writer": sys.argv[3], "i": i}})
""")


def test_two_processes_writing_at_once_lose_nothing(tmp_path):
    root = str(Path(__file__).resolve().parents[1])
    script = tmp_path / "writer.py"
    script.write_text(WRITER.format(root=root, tests=str(Path(__file__).resolve().parent)))
    db = str(tmp_path / "shared.db")
    runs_each = 25
    writers = [subprocess.Popen([sys.executable, str(script), db, str(runs_each), name], stderr=subprocess.PIPE,
                                text=True) for name in ("a", "b")]
    try:
        errors = [w.communicate(timeout=120)[1] for w in writers]  # a writer's traceback shows in the failure
    except subprocess.TimeoutExpired:
        for writer in writers:
            writer.kill()
        pytest.fail(f"writers still running after 120 s; their stderr: {[w.communicate()[1] for w in writers]}")
    assert [w.returncode for w in writers] == [0, 0], errors
    with Store(db) as store:
        runs = store.list_runs()
        assert len(runs) == 2 * runs_each
        assert store.count_rows("steps") == 2 * runs_each * 400
        configs = {(c["writer"], c["i"]) for c in (store.load_run(r["id"])[1] for r in runs)}
        assert configs == {(w, i) for w in "ab" for i in range(runs_each)}
    with sqlite3.connect(db) as connection:
        assert connection.execute("pragma integrity_check").fetchone() == ("ok",)
