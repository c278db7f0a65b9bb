"""Kubelet's env resolution and containerd's process.env, one row per rule."""

from __future__ import annotations

import pytest

from gpuguard.engine.kubelet.env import expand, oci_env, pod_env
from gpuguard.model.pod import Container, EnvFromSource, EnvVar, Pod, ValueRef

# Kubelet's own expansion tests (third_party/forked/golang/expansion/expand_test.go), typed here.
CONTEXT = {"VAR_A": "A", "VAR_B": "B", "VAR_C": "C", "VAR_REF": "$(VAR_A)", "VAR_EMPTY": ""}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("$(VAR_A)", "A"),
        ("___$(VAR_B)___", "___B___"),
        ("$$(VAR_B)_$(VAR_A)", "$(VAR_B)_A"),
        ("f000-$$VAR_A", "f000-$VAR_A"),
        ("$(VAR_A$(VAR_B))", "$(VAR_A$(VAR_B))"),
        ("$(VAR_REF)", "$(VAR_A)"),
        ("foo$(VAR_EMPTY)bar", "foobar"),
        ("foo$(VAR_Awhoops!", "foo$(VAR_Awhoops!"),
        ("$?_boo_$!", "$?_boo_$!"),
        ("$VAR_A", "$VAR_A"),
        ("$(VAR_DNE)", "$(VAR_DNE)"),
        ("$$$$$$(BIG_MONEY)", "$$$(BIG_MONEY)"),
        ("$$$$$$$(GOOD_ODDS)", "$$$$(GOOD_ODDS)"),
        ("$$$$$$$(VAR_A)", "$$$A"),
        ("${VAR_A}", "${VAR_A}"),
        ("$(VAR_C)_______$(", "C_______$("),
        ("$(VAR_A)foobarzab$", "Afoobarzab$"),
        ("--$($($($($--", "--$($($($($--"),
        ("$(foo$$var)", "$(foo$$var)"),
    ],
)
def test_expand_like_kubelet(text: str, expected: str) -> None:
    assert expand(text, CONTEXT) == (expected, None)


def test_expand_reports_unknown_reference() -> None:
    assert expand("$(SECRET),x", {}, {"SECRET": "why"}) == ("$(SECRET),x", "SECRET")
    assert expand("$$(SECRET)", {}, {"SECRET": "why"}) == ("$(SECRET)", None)


POD = Pod(name="p", namespace="ns", labels={"gpu": "all"}, node_name=None)
CM = ("ns", "ConfigMap", "cm")
SEC = ("ns", "Secret", "s")
OBJECTS = {CM: {"NVIDIA_VISIBLE_DEVICES": "all", "OTHER": "1"}, SEC: {"dev": "GPU-1"}}


def test_env_after_env_from_and_later_wins() -> None:
    got = pod_env(
        POD,
        Container(
            "c",
            env_from=(EnvFromSource("configMapRef", "cm"),),
            env=(EnvVar("NVIDIA_VISIBLE_DEVICES", "void"), EnvVar("X", "$(NVIDIA_VISIBLE_DEVICES)-x")),
        ),
        OBJECTS,
    )
    assert got.values == (("NVIDIA_VISIBLE_DEVICES", "void"), ("OTHER", "1"), ("X", "void-x"))
    assert got.unknown == {}
    assert got.error is None


def test_env_from_prefix() -> None:
    got = pod_env(POD, Container("c", env_from=(EnvFromSource("configMapRef", "cm", prefix="P_"),)), OBJECTS)
    assert got.values == (("P_NVIDIA_VISIBLE_DEVICES", "all"), ("P_OTHER", "1"))


@pytest.mark.parametrize(
    ("prefix", "names"),
    [
        ("", {"NVIDIA_VISIBLE_DEVICES", "CUDA_VERSION", "NVIDIA_REQUIRE_*", "NVIDIA_IMEX_CHANNELS"}),
        ("NVIDIA_", {"NVIDIA_VISIBLE_DEVICES", "NVIDIA_REQUIRE_*"}),
        ("NVIDIA_VISIBLE_", {"NVIDIA_VISIBLE_DEVICES"}),
        ("NVIDIA_REQUIRE_CU", {"NVIDIA_REQUIRE_*"}),
        ("CUDA_", {"CUDA_VERSION"}),
        ("APP_", set()),
    ],
)
def test_unknown_env_from_marks_reachable_names(prefix: str, names: set[str]) -> None:
    got = pod_env(POD, Container("c", env_from=(EnvFromSource("configMapRef", "missing", prefix=prefix),)), {})
    assert names <= set(got.unknown)
    if not names:
        assert got.unknown == {}
    for name in names:
        assert got.unknown[name] == "ConfigMap ns/missing (envFrom) is not known"


def test_unknown_env_from_then_explicit_env_is_known_again() -> None:
    got = pod_env(
        POD,
        Container("c", env_from=(EnvFromSource("secretRef", "x"),), env=(EnvVar("NVIDIA_VISIBLE_DEVICES", "void"),)),
        None,
    )
    assert "NVIDIA_VISIBLE_DEVICES" not in got.unknown
    assert ("NVIDIA_VISIBLE_DEVICES", "void") in got.values


@pytest.mark.parametrize(
    ("ref", "values", "unknown", "error"),
    [
        (ValueRef("secretKeyRef", "s", "dev"), (("NVIDIA_VISIBLE_DEVICES", "GPU-1"),), set(), None),
        (ValueRef("secretKeyRef", "nope", "dev"), (), {"NVIDIA_VISIBLE_DEVICES"}, None),
        (ValueRef("secretKeyRef", "nope", "dev", optional=True), (), {"NVIDIA_VISIBLE_DEVICES"}, None),
        (ValueRef("configMapKeyRef", "cm", "absent", optional=True), (), set(), None),
        (
            ValueRef("configMapKeyRef", "cm", "absent"),
            (),
            set(),
            "couldn't find key absent in ConfigMap ns/cm",
        ),
        (ValueRef("fieldRef", "metadata.namespace"), (("NVIDIA_VISIBLE_DEVICES", "ns"),), set(), None),
        (ValueRef("fieldRef", "metadata.labels['gpu']"), (("NVIDIA_VISIBLE_DEVICES", "all"),), set(), None),
        (ValueRef("fieldRef", "status.podIP"), (), {"NVIDIA_VISIBLE_DEVICES"}, None),
        (ValueRef("resourceFieldRef", "limits.cpu"), (), {"NVIDIA_VISIBLE_DEVICES"}, None),
    ],
)
def test_value_from(ref: ValueRef, values: tuple[tuple[str, str], ...], unknown: set[str], error: str | None) -> None:
    got = pod_env(POD, Container("c", env=(EnvVar("NVIDIA_VISIBLE_DEVICES", value_from=ref),)), OBJECTS)
    assert got.values == values
    assert set(got.unknown) == unknown
    assert got.error == error


def test_optional_missing_key_keeps_earlier_value() -> None:
    got = pod_env(
        POD,
        Container(
            "c",
            env=(
                EnvVar("NVIDIA_VISIBLE_DEVICES", "void"),
                EnvVar("NVIDIA_VISIBLE_DEVICES", value_from=ValueRef("configMapKeyRef", "cm", "absent", True)),
            ),
        ),
        OBJECTS,
    )
    assert got.values == (("NVIDIA_VISIBLE_DEVICES", "void"),)


def test_value_from_is_not_expanded_but_references_to_unknown_are_unknown() -> None:
    got = pod_env(
        POD,
        Container(
            "c",
            env=(
                EnvVar("S", value_from=ValueRef("secretKeyRef", "nope", "k")),
                EnvVar("NVIDIA_VISIBLE_DEVICES", "$(S)"),
                EnvVar("LIT", value_from=ValueRef("fieldRef", "metadata.annotations['a']")),
            ),
        ),
        OBJECTS,
    )
    assert got.unknown["NVIDIA_VISIBLE_DEVICES"] == "$(S) in its value is unknown"
    assert got.values == (("LIT", ""),)


@pytest.mark.parametrize(
    ("base", "image", "cri", "expected"),
    [
        ((), ("NVIDIA_VISIBLE_DEVICES=all",), (), ("NVIDIA_VISIBLE_DEVICES=all",)),
        # Keys not in the base spec are appended, duplicates included: the last one is what the toolkit reads.
        (
            (),
            ("PATH=/usr/bin", "NVIDIA_VISIBLE_DEVICES=all"),
            (("NVIDIA_VISIBLE_DEVICES", "GPU-1"), ("NVIDIA_VISIBLE_DEVICES", "void")),
            (
                "PATH=/usr/bin",
                "NVIDIA_VISIBLE_DEVICES=all",
                "NVIDIA_VISIBLE_DEVICES=GPU-1",
                "NVIDIA_VISIBLE_DEVICES=void",
            ),
        ),
        # Keys of the base spec are replaced in place.
        (
            ("PATH=/bin", "HOSTNAME=h"),
            ("PATH=/usr/bin",),
            (("A", "1"),),
            ("PATH=/usr/bin", "HOSTNAME=h", "A=1"),
        ),
        # An entry without "=" unsets a base key.
        (("PATH=/bin", "X=1"), ("X",), (), ("PATH=/bin",)),
    ],
)
def test_oci_env(
    base: tuple[str, ...], image: tuple[str, ...], cri: tuple[tuple[str, str], ...], expected: tuple[str, ...]
) -> None:
    assert oci_env(image, cri, base) == expected


def test_reference_to_a_name_an_unknown_env_from_could_define_is_unknown() -> None:
    got = pod_env(
        POD,
        Container(
            "c",
            env_from=(EnvFromSource("configMapRef", "missing", prefix="APP_"),),
            env=(EnvVar("NVIDIA_VISIBLE_DEVICES", "$(APP_GPUS)"), EnvVar("OTHER", "$(ELSE)")),
        ),
        {},
    )
    assert got.unknown == {"NVIDIA_VISIBLE_DEVICES": "$(APP_GPUS) in its value is unknown"}
    assert got.values == (("OTHER", "$(ELSE)"),)
