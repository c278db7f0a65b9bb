"""Store tests run against SQLite and a real PostgreSQL (``store_url``, ``postgres_server``: tests/conftest.py)."""

from __future__ import annotations

from tests.cluster.conftest import apiserver, kubeconfig, snapshot  # noqa: F401 - the cluster stand-in, for audits
