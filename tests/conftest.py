"""Session fixtures shared by several test packages: one real PostgreSQL server per run.

It skips with a reason where its Debian package (installed by ``scripts/test``) is missing.  (The real
containerd is per package on purpose: tests/node and tests/agent each count every container theirs holds.)
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.history.postgres import PostgresServer, missing_reason, running_postgres


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """A real PostgreSQL server in a temporary directory (``tests.history.postgres``): tests/history, tests/report."""
    reason = missing_reason()
    if reason:
        pytest.skip(reason)
    with running_postgres() as server:
        yield server


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A URL of a fresh, empty history: a SQLite file, or a new database on the test PostgreSQL server."""
    if request.param == "sqlite":
        return f"sqlite://{tmp_path / 'history.db'}"
    server: PostgresServer = request.getfixturevalue("postgres_server")
    return server.create_database()
