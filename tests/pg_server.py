"""A throw-away PostgreSQL cluster for tests, from Debian's server binaries.

Started in a temp dir on a free loopback port (as the ``postgres`` user when we are root, since
initdb refuses root), stopped and removed after. Without the binaries the test is skipped,
except in CI (``CI=true``), where ``.ci/run`` installs them and their absence is a failure.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path
from typing import Iterator

import pytest


def server_binaries() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4]))
    return Path(found[-1]).parent if found else None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def throwaway_postgres(database: str, user: str = "optimlab") -> Iterator[str]:
    """Yield ``postgresql://user@127.0.0.1:PORT/database`` of a fresh cluster (a bare URL)."""
    bindir = server_binaries()
    if bindir is None:
        if os.environ.get("CI") == "true":
            pytest.fail("PostgreSQL server binaries missing in CI (.ci/run installs Debian's postgresql)")
        pytest.skip("PostgreSQL server binaries not installed (apt-get install postgresql)")
    pytest.importorskip("psycopg2")
    root = Path(tempfile.mkdtemp(prefix="optimlab-pg-"))
    as_root = os.geteuid() == 0
    if as_root:
        os.chown(root, pwd.getpwnam("postgres").pw_uid, -1)
    data, port = root / "data", _free_port()

    def server(*command: str) -> None:
        argv = [str(bindir / command[0]), *command[1:]]
        subprocess.run((["runuser", "-u", "postgres", "--"] if as_root else []) + argv,
                       check=True, capture_output=True, text=True, timeout=120)

    server("initdb", "-D", str(data), "-U", user, "--auth=trust", "--no-sync")
    server("pg_ctl", "-D", str(data), "-l", str(root / "log"), "-w", "-o", f"-h 127.0.0.1 -p {port} -k {root} -F", "start")
    try:
        server("createdb", "-h", "127.0.0.1", "-p", str(port), "-U", user, database)
        yield f"postgresql://{user}@127.0.0.1:{port}/{database}"
    finally:
        server("pg_ctl", "-D", str(data), "-m", "immediate", "-w", "stop")
        shutil.rmtree(root, ignore_errors=True)
