"""The session's real containerd (see ``tests.node.runtime``); skipped with a reason where it cannot run."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.node.runtime import Runtime, unavailable


@pytest.fixture(scope="session")
def runtime() -> Iterator[Runtime]:
    reason = unavailable()
    if reason is not None:
        pytest.skip(reason)
    rt = Runtime()
    try:
        yield rt
    finally:
        rt.close()
