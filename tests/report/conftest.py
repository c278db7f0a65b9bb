"""The report tests use the history's fixtures: both backends, a real PostgreSQL."""

from __future__ import annotations

from tests.history.conftest import postgres_server, store_url  # noqa: F401 - fixtures
