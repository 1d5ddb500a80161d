"""The results store on a real PostgreSQL server: same tables, round trip, two writers at once.

A throw-away cluster is started from Debian's server binaries in a temp dir on a free loopback
port (initdb refuses root, so it runs as the ``postgres`` user when we are root).
"""

import glob
import math
import os
import pwd
import shutil
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from optimlab.store import Store
from test_store import WRITER, same, sample_trace

pytestmark = pytest.mark.postgres


def server_binaries() -> Path | None:
    initdbs = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4]))
    return Path(initdbs[-1]).parent if initdbs else None


@pytest.fixture(scope="module")
def postgres_url():
    bindir = server_binaries()
    if bindir is None:
        if os.environ.get("CI") == "true":
            pytest.fail("PostgreSQL server binaries missing in CI (apt-get install postgresql)")
        pytest.skip("PostgreSQL server binaries not installed (apt-get install postgresql)")
    root = Path(tempfile.mkdtemp(prefix="optimlab-store-pg-"))
    as_root = os.geteuid() == 0
    if as_root:
        os.chown(root, pwd.getpwnam("postgres").pw_uid, -1)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]

    def server(*command: str) -> None:
        argv = [str(bindir / command[0]), *command[1:]]
        subprocess.run((["runuser", "-u", "postgres", "--"] if as_root else []) + argv,
                       check=True, capture_output=True, timeout=120)

    server("initdb", "-D", str(root / "data"), "-U", "lab", "--auth=trust", "--no-sync")
    server("pg_ctl", "-D", str(root / "data"), "-l", str(root / "log"), "-w",
           "-o", f"-h 127.0.0.1 -p {port} -k {root} -F", "start")
    try:
        server("createdb", "-h", "127.0.0.1", "-p", str(port), "-U", "lab", "runs")
        yield f"postgresql://lab@127.0.0.1:{port}/runs"  # bare URL: the store picks an installed driver
    finally:
        server("pg_ctl", "-D", str(root / "data"), "-m", "immediate", "-w", "stop")
        shutil.rmtree(root, ignore_errors=True)


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
