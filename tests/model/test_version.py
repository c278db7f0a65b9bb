"""Loose version parsing: image tags name releases in many spellings."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gpuguard.model.version import Version, VersionError


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1.17.8", (1, 17, 8)),
        ("v1.17.8", (1, 17, 8)),
        ("v1.17.8-ubuntu20.04", (1, 17, 8)),
        ("v0.17.0-ubi9", (0, 17, 0)),
        ("v25.3.4", (25, 3, 4)),
        ("25.10", (25, 10, 0)),
        ("v22.9.0", (22, 9, 0)),
        (" 1.20.0 ", (1, 20, 0)),
    ],
)
def test_parse(text: str, expected: tuple[int, int, int]) -> None:
    parsed = Version.parse(text)
    assert (parsed.major, parsed.minor, parsed.patch) == expected


@pytest.mark.parametrize(
    ("low", "high"),
    [
        ("1.17.8", "1.18.0"),
        ("1.18.0-rc.6", "1.18.0"),
        ("1.18.0-rc.1", "1.18.0-rc.2"),
        ("1.9.0", "1.10.0"),
        ("25.3.4", "25.10.0"),
    ],
)
def test_order(low: str, high: str) -> None:
    assert Version.parse(low) < Version.parse(high)


def test_suffix_does_not_change_the_release() -> None:
    assert Version.parse("v1.17.8-ubuntu20.04") == Version.parse("1.17.8")


@pytest.mark.parametrize("text", ["", "banana", "1..2", "v", "1.2.3.4", "latest"])
def test_garbage_is_refused(text: str) -> None:
    with pytest.raises(VersionError):
        Version.parse(text)


@given(st.text(max_size=40))
def test_parse_never_raises_anything_else(text: str) -> None:
    with contextlib.suppress(VersionError):
        Version.parse(text)
