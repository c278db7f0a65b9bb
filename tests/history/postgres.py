"""A real PostgreSQL 15 server in a temporary directory, for the tests of the PostgreSQL backend.

``initdb`` and ``postgres`` run as the ``postgres`` system user (PostgreSQL
refuses to run as root) through ``runuser``; the server listens on a free TCP
port on 127.0.0.1 and on a unix socket in the temporary directory. The
superuser has a password (scram-sha-256 over TCP), so tests can check that it
never leaks into a message. Readiness is polled by connecting, with a deadline.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

PG_BIN = Path("/usr/lib/postgresql/15/bin")
PASSWORD = "s3cret-pw-Zq9"  # the superuser's password: must never appear in gpuguard's output
USER = "postgres"
READY_WITHIN_S = 30.0


@dataclass
class PostgresServer:
    port: int
    socket_dir: Path
    password: str = PASSWORD
    _databases: int = 0

    def url(self, database: str, *, password: str | None = None) -> str:
        return f"postgresql://{USER}:{password or self.password}@127.0.0.1:{self.port}/{database}"

    def create_database(self) -> str:
        """A fresh, empty database; its URL (with the password)."""
        import psycopg

        self._databases += 1
        name = f"gpuguard_t{self._databases}"
        with psycopg.connect(self.url("postgres"), autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {name}")
        return self.url(name)


def missing_reason() -> str | None:
    for tool in ("initdb", "postgres", "pg_ctl"):
        if not (PG_BIN / tool).is_file():
            return f"PostgreSQL 15 not installed ({PG_BIN / tool} missing; scripts/test installs postgresql)"
    if os.geteuid() == 0 and shutil.which("runuser") is None:
        return "runuser missing: cannot run PostgreSQL as the postgres user"
    return None


def _as_postgres(args: list[str]) -> list[str]:
    return ["runuser", "-u", USER, "--", *args] if os.geteuid() == 0 else args


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def running_postgres() -> Iterator[PostgresServer]:
    import psycopg

    root = Path(tempfile.mkdtemp(prefix="gpuguard-pg-"))
    data, sockets, pwfile, log = root / "data", root / "sock", root / "pw", root / "postgres.log"
    sockets.mkdir()
    pwfile.write_text(PASSWORD + "\n")
    if os.geteuid() == 0:
        for path in (root, sockets, pwfile):
            shutil.chown(path, USER, USER)
    proc: subprocess.Popen[bytes] | None = None
    try:
        subprocess.run(_as_postgres([str(PG_BIN / "initdb"), "-D", str(data), "-U", USER, f"--pwfile={pwfile}",
                                     "--auth-local=trust", "--auth-host=scram-sha-256", "-E", "UTF8",
                                     "--no-sync"]), check=True, capture_output=True, timeout=60)
        port = _free_port()
        with open(log, "wb") as out:
            proc = subprocess.Popen(_as_postgres([str(PG_BIN / "postgres"), "-D", str(data), "-p", str(port),
                                                  "-k", str(sockets), "-c", "listen_addresses=127.0.0.1",
                                                  "-c", "fsync=off", "-c", "synchronous_commit=off",
                                                  "-c", "full_page_writes=off"]),
                                    stdout=out, stderr=subprocess.STDOUT)
        server = PostgresServer(port=port, socket_dir=sockets)
        deadline = time.monotonic() + READY_WITHIN_S
        while True:
            try:
                psycopg.connect(server.url("postgres"), connect_timeout=2).close()
                break
            except psycopg.OperationalError as exc:
                try:
                    proc.wait(timeout=0.05)  # waits only on the server exiting, which ends the poll
                except subprocess.TimeoutExpired:
                    pass
                else:
                    raise RuntimeError(f"postgres exited: {log.read_text(errors='replace')[-2000:]}") from exc
                if time.monotonic() > deadline:
                    raise RuntimeError(f"postgres not ready in {READY_WITHIN_S}s: {exc}") from exc
        yield server
    finally:
        if proc is not None:
            subprocess.run(_as_postgres([str(PG_BIN / "pg_ctl"), "stop", "-D", str(data), "-m", "immediate", "-w"]),
                           capture_output=True, timeout=60, check=False)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
        shutil.rmtree(root, ignore_errors=True)
