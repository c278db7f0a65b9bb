"""The report tests audit the cluster stand-in (``tests.cluster``); the history fixtures are in tests/conftest.py."""

from __future__ import annotations

from tests.cluster.conftest import apiserver, kubeconfig, snapshot  # noqa: F401 - the cluster stand-in, for audits
