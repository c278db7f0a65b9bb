"""Version parsing and the per-release behaviour table (one row per boundary)."""

from __future__ import annotations

import pytest

from gpuguard.engine.toolkit.versions import NEWEST, OLDEST, behaviour, parse_toolkit_version
from gpuguard.model.errors import InputError
from gpuguard.model.version import v


@pytest.mark.parametrize(
    ("text", "expected"),
    [("1.0.5", (1, 0, 5)), ("v1.17.8-ubuntu20.04", (1, 17, 8)), ("1.20.0", (1, 20, 0)), ("1.20.3", (1, 20, 3))],
)
def test_parse_accepts_modelled_releases(text: str, expected: tuple[int, int, int]) -> None:
    ver = parse_toolkit_version(text)
    assert (ver.major, ver.minor, ver.patch) == expected


@pytest.mark.parametrize("text", ["garbage", "", "1.0.4", "0.9.0", "1.21.0", "2.0.0"])
def test_parse_refuses_garbage_and_unmodelled(text: str) -> None:
    with pytest.raises(InputError) as err:
        parse_toolkit_version(text)
    assert err.value.where == "toolkit.version"


def test_range_constants() -> None:
    assert str(OLDEST) == "1.0.5"
    assert str(NEWEST) == "1.20.0"


# (flag, last release without the new behaviour, first release with it, value before, value after)
BOUNDARIES = [
    ("mig_privilege_check", "1.0.5", "1.1.0", False, True),
    ("privilege_gate", "1.2.1", "1.3.0", False, True),
    ("gate_fails_container", "1.2.1", "1.3.0", False, True),
    ("gate_fails_container", "1.4.0", "1.4.1", True, False),
    ("swarm_first", "1.2.1", "1.3.0", True, False),
    ("swarm_first", "1.5.0", "1.5.1", False, True),
    ("default_caps", "1.3.0", "1.4.0", "utility", "utility,compute"),
    ("caps_era", "1.6.0", "1.7.0", "cli", "string"),
    ("caps_era", "1.13.5", "1.14.0", "string", "set"),
    ("runtime_modes", "1.9.0", "1.10.0", False, True),
    ("require_skips_jetpack", "1.9.0", "1.10.0", False, True),
    ("cdi_mode", "1.10.0", "1.11.0", False, True),
    ("token_parsing", "1.11.0", "1.12.0", False, True),
    ("cdi_annotations_first", "1.12.1", "1.13.0", False, True),
    ("skip_mode_detection_key", "1.12.1", "1.13.0", False, True),
    ("hook_mode_check_early", "1.13.5", "1.14.0", True, False),
    ("auto_cdi", "1.13.5", "1.14.0", "", "env"),
    ("auto_cdi", "1.14.6", "1.15.0", "env", "env+mounts"),
    ("auto_cdi", "1.17.9", "1.18.0", "env+mounts", "visible"),
    ("disable_require_empties", "1.13.5", "1.14.0", False, True),
    ("imex", "1.14.6", "1.15.0", "", "verbatim"),
    ("imex", "1.16.2", "1.17.0", "verbatim", "gated"),
    ("imex_drop_bare_all", "1.17.1", "1.17.2", False, True),
    ("imex_ignore_key", "1.17.4", "1.17.5", False, True),
    ("mount_dedup", "1.16.2", "1.17.0", False, True),
    ("runtime_default_mode", "1.17.9", "1.18.0", "legacy", "jit-cdi"),
    ("none_as_none", "1.18.1", "1.18.2", False, True),
    ("runtime_swarm", "1.18.2", "1.19.0", False, True),
    ("wsl_platform", "1.15.0", "1.16.0", False, True),
]


@pytest.mark.parametrize(("flag", "before", "after", "old", "new"), BOUNDARIES)
def test_behaviour_boundary(flag: str, before: str, after: str, old: object, new: object) -> None:
    assert getattr(behaviour(v(before)), flag) == old
    assert getattr(behaviour(v(after)), flag) == new


def test_behaviour_is_cached_per_version() -> None:
    assert behaviour(v("1.17.8")) is behaviour(v("v1.17.8"))
