"""nvidia-container-cli requirement expressions and CUDA_VERSION parsing (libnvidia-container src/cli/dsl.c)."""

from __future__ import annotations

import pytest

from gpuguard.engine.toolkit.requirements import compare_version, cuda_major_minor, evaluate, parse_bool

KNOWN = ("12.4", "550.54.15", "9.0", "tesla")  # cuda, driver, arch, brand
UNKNOWN = (None, None, None, None)


@pytest.mark.parametrize(
    ("v1", "op", "v2", "expected"),
    [
        ("12.4", ">=", "12.4", 1),
        ("12.4", ">=", "12.4.1", 0),
        ("12.4", ">", "12.3.9", 1),
        ("12.4", "<", "12.10", 1),
        ("12.4.0", "=", "12.4", 1),
        ("12.4", "!=", "12.4.0", 0),
        ("12.4", ">=", "12.x", 2),
    ],
)
def test_compare_version(v1: str, op: str, v2: str, expected: int) -> None:
    assert compare_version(v1, op, v2) == expected


@pytest.mark.parametrize(
    ("predicate", "facts", "gpus", "expected"),
    [
        ("", KNOWN, True, "ok"),
        ("cuda>=12.4", KNOWN, True, "ok"),
        ("cuda>=12.5", KNOWN, True, "fail"),
        ("CUDA>=12.5", KNOWN, True, "fail"),  # keys are case-insensitive
        ("cuda>=12.5 driver>=550", KNOWN, True, "ok"),  # space = OR
        ("driver>=550,driver<551", KNOWN, True, "ok"),  # comma = AND
        ("driver>=550,driver<550", KNOWN, True, "fail"),
        ("brand=TESLA", KNOWN, True, "ok"),  # brand compared case-insensitively
        ("brand=geforce", KNOWN, False, "ok"),  # no GPU selected: brand holds
        ("arch>=10.0", KNOWN, False, "ok"),
        ("arch>=10.0", KNOWN, True, "fail"),
        ("brand>tesla", KNOWN, True, "invalid"),
        ("foo=1", KNOWN, True, "invalid"),
        ("cuda==12", KNOWN, True, "invalid"),
        ("cuda>=", KNOWN, True, "invalid"),
        ("cuda!12.3", KNOWN, True, "ok"),  # "!" matches "!=" by prefix (strncmp)
        ("cuda!12.4", KNOWN, True, "fail"),
        ("cuda>=12.5", UNKNOWN, True, "unchecked"),
        ("cuda>=99 foo=1", KNOWN, True, "invalid"),  # reached after the first group fails
        ("cuda>=1 foo=1", KNOWN, True, "ok"),  # not reached
        ("cuda>=12.5 ,", KNOWN, True, "fail"),  # an all-empty group keeps the last result
    ],
)
def test_evaluate(predicate: str, facts: tuple[str | None, ...], gpus: bool, expected: str) -> None:
    assert evaluate(predicate, facts, gpus) == expected  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("value", "semver", "expected"),
    [
        ("11.0", False, "11.0"),
        ("11.0.3", False, "11.0"),
        ("9", False, "9.0"),
        ("011.2", False, "11.2"),
        ("11.0.3.1", False, None),
        ("v11.0", False, None),
        ("11.0", True, "11.0"),
        ("v11.0", True, "11.0"),
        ("12", True, "12.0"),
        ("011.2", True, None),  # semver: no leading zeros
        ("11.0.3.1", True, None),
        ("12.2.0-rc1", True, "12.2"),
        ("12.2-rc1", True, None),
        ("", True, None),
    ],
)
def test_cuda_major_minor(value: str, semver: bool, expected: str | None) -> None:
    assert cuda_major_minor(value, semver) == expected


@pytest.mark.parametrize(("value", "expected"), [("1", True), ("TRUE", True), ("yes", False), ("", False)])
def test_parse_bool(value: str, expected: bool) -> None:
    assert parse_bool(value) is expected
