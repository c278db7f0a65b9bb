"""Env list and device-list parsing, table-driven and as properties."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gpuguard.engine.toolkit.envvars import parse_env, tokens, whole_string

from ._util import devmount, run


@pytest.mark.parametrize(
    ("env", "expected", "bad"),
    [
        ((), {}, None),
        (("A=1", "B=x=y", "A=2"), {"A": "2", "B": "x=y"}, None),
        (("A=",), {"A": ""}, None),
        (("A=1", "NOEQUALS", "B=2"), {"A": "1"}, "NOEQUALS"),
    ],
)
def test_parse_env(env: tuple[str, ...], expected: dict[str, str], bad: str | None) -> None:
    got, got_bad = parse_env(env)
    assert got_bad == bad
    assert got == expected


@pytest.mark.parametrize(
    ("values", "any_set", "legacy", "expected"),
    [
        ((), False, False, None),
        ((), False, True, ("all",)),
        (("",), True, True, None),  # set but empty: no legacy default
        (("void",), True, False, None),
        (("GPU0,void",), True, False, None),
        (("none",), True, False, ("",)),
        (("GPU0,none,all",), True, False, ("",)),
        (("GPU0,all,none",), True, False, ("all",)),
        (("ALL",), True, False, ("ALL",)),
        (("GPU0,GPU1,GPU0",), True, False, ("", "GPU1", "GPU0")),
        ((" GPU0 ,\tGPU1",), True, False, ("GPU0", "GPU1")),
        (("GPU0", "GPU1"), True, False, ("GPU0", "GPU1")),
        (("\x1cGPU0",), True, False, ("\x1cGPU0",)),  # Go's TrimSpace keeps \x1c, Python's strip() would not
    ],
)
def test_tokens(values: tuple[str, ...], any_set: bool, legacy: bool, expected: tuple[str, ...] | None) -> None:
    assert tokens(values, any_set, legacy) == expected


@pytest.mark.parametrize(
    ("value", "legacy", "expected"),
    [
        (None, False, None),
        (None, True, ("all",)),
        ("", True, None),
        ("void", False, None),
        ("none", False, ("",)),
        ("GPU0,void", False, ("GPU0", "void")),
        ("all,GPU0", False, ("all", "GPU0")),
    ],
)
def test_whole_string(value: str | None, legacy: bool, expected: tuple[str, ...] | None) -> None:
    assert whole_string(value, legacy) == expected


PIECE = st.lists(st.sampled_from(["a", "GPU0", "GPU1", " ", ",", "\t", "-", "void", "none", "all"]), max_size=6).map(
    "".join
)


@given(st.lists(PIECE, max_size=4), st.booleans(), st.booleans())
def test_tokens_outcomes_are_the_documented_ones(values: list[str], any_set: bool, legacy: bool) -> None:
    got = tokens(tuple(values), any_set or bool(values), legacy)
    if got is None or got in (("all",), ("",)):
        return
    pieces = [p.strip() for v in values for p in v.split(",") if p.strip()]
    assert len(got) == len(pieces)
    assert set(got) - {""} == set(pieces)
    assert "void" not in got and "all" not in got and "none" not in got


@given(st.lists(PIECE, max_size=4), st.integers(min_value=0, max_value=3))
def test_void_anywhere_wins(values: list[str], at: int) -> None:
    values = list(values)
    values.insert(min(at, len(values)), "x, void ")
    assert tokens(tuple(values), True, True) is None


@given(st.lists(st.text(max_size=8), max_size=6))
def test_parse_env_never_raises(entries: list[str]) -> None:
    env, bad = parse_env(tuple(entries))
    if bad is None:
        assert all("=" in e for e in entries)
        assert set(env) == {e.split("=", 1)[0] for e in entries}
    else:
        assert "=" not in bad


NAME = st.text(alphabet="abcdefGPU0123-", min_size=1, max_size=6).filter(lambda s: s not in ("all", "none", "void"))


@given(NAME, NAME, NAME)
def test_source_precedence_annotations_mounts_env(ann: str, mount: str, env: str) -> None:
    doc = {"accept-nvidia-visible-devices-as-volume-mounts": True, "nvidia-container-runtime": {"mode": "cdi"}}
    full = run(
        "1.20.0",
        (f"NVIDIA_VISIBLE_DEVICES={env}",),
        mounts=(devmount(mount),),
        annotations={"cdi.k8s.io/x": f"vendor.com/cls={ann}"},
        doc=doc,
    )
    assert full.devices == (f"vendor.com/cls={ann}",)
    no_ann = run("1.20.0", (f"NVIDIA_VISIBLE_DEVICES={env}",), mounts=(devmount(mount),), doc=doc)
    assert no_ann.devices == (mount,)
    env_only = run("1.20.0", (f"NVIDIA_VISIBLE_DEVICES={env}",), doc=doc)
    assert env_only.devices == (env,)


@given(
    st.lists(st.text(max_size=10), max_size=5),
    st.sampled_from(["1.0.5", "1.3.0", "1.11.0", "1.17.8", "1.20.0"]),
    st.booleans(),
)
def test_decide_never_raises_on_any_env(entries: list[str], version: str, privileged: bool) -> None:
    d = run(version, tuple(entries), privileged=privileged)
    assert d.devices is None or isinstance(d.devices, tuple)
    if any("=" not in e for e in entries):
        assert d.error is not None
