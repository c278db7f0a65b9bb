"""The agent tests run on a real containerd of their own (``tests.node.runtime``), skipped where it cannot run."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator

import pytest

from tests.node.conftest import runtime  # a session containerd of the agent tests' own: they count its containers

__all__ = ["runtime", "short_dir"]


@pytest.fixture
def short_dir() -> Iterator[str]:
    """A directory with a short path: unix socket paths are limited to 107 bytes."""
    path = tempfile.mkdtemp(prefix="gg-agent-", dir="/tmp")
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)
