"""The OCI spec parts the toolkit reads: capabilities, host devices, mounts, annotations."""

from __future__ import annotations

import pytest

from gpuguard.engine.device_plugin.allocate import Allocation
from gpuguard.engine.kubelet.oci import (
    ALL_CAPS,
    bounding_set,
    container_spec,
    host_devices,
    oci_annotations,
    path_match,
    volume_mounts,
)
from gpuguard.model.container import Mount
from gpuguard.model.node import RuntimeHandler
from gpuguard.model.pod import Container, Pod, SecurityContext, Volume, VolumeMount


@pytest.mark.parametrize(
    ("security", "runtime", "sys_admin"),
    [
        (SecurityContext(), "containerd", False),
        (SecurityContext(privileged=True), "containerd", True),
        (
            SecurityContext(privileged=True, capabilities_drop=("ALL",)),
            "containerd",
            True,
        ),  # privileged ignores drop
        (SecurityContext(capabilities_add=("SYS_ADMIN",)), "containerd", True),
        (SecurityContext(capabilities_add=("sys_admin",)), "containerd", True),
        (
            SecurityContext(capabilities_add=("CAP_SYS_ADMIN",)),
            "containerd",
            False,
        ),  # becomes CAP_CAP_SYS_ADMIN
        (SecurityContext(capabilities_add=("CAP_SYS_ADMIN",)), "cri-o", True),
        (SecurityContext(capabilities_add=("ALL",)), "containerd", True),
        (SecurityContext(capabilities_add=("all",)), "containerd", True),
        (SecurityContext(capabilities_add=("ALL",), capabilities_drop=("SYS_ADMIN",)), "containerd", False),
        (SecurityContext(capabilities_add=("SYS_ADMIN",), capabilities_drop=("ALL",)), "containerd", True),
        (SecurityContext(capabilities_add=("ALL",), capabilities_drop=("ALL",)), "containerd", False),
        (
            SecurityContext(capabilities_add=("SYS_ADMIN",), capabilities_drop=("SYS_ADMIN",)),
            "containerd",
            False,
        ),
    ],
)
def test_sys_admin_in_bounding_set(security: SecurityContext, runtime: str, sys_admin: bool) -> None:
    assert ("CAP_SYS_ADMIN" in bounding_set(security, runtime)) is sys_admin


def test_bounding_sets() -> None:
    assert bounding_set(SecurityContext(privileged=True)) == ALL_CAPS
    assert len(ALL_CAPS) == 41
    assert bounding_set(SecurityContext(capabilities_drop=("ALL",))) == frozenset()
    assert "CAP_MKNOD" in bounding_set(SecurityContext())
    assert "CAP_MKNOD" not in bounding_set(SecurityContext(), "cri-o")


@pytest.mark.parametrize(
    ("security", "handler", "expected"),
    [
        (SecurityContext(privileged=True), None, True),
        (SecurityContext(privileged=True), RuntimeHandler("nvidia", nvidia=True), True),
        (
            SecurityContext(privileged=True),
            RuntimeHandler("runc", privileged_without_host_devices=True),
            False,
        ),
        (SecurityContext(capabilities_add=("SYS_ADMIN",)), None, False),
    ],
)
def test_host_devices(security: SecurityContext, handler: RuntimeHandler | None, expected: bool) -> None:
    assert host_devices(security, handler) is expected


POD = Pod(
    name="p",
    volumes=(
        Volume("null", host_path="/dev/null", kind="hostPath"),
        Volume("dev", host_path="/dev", kind="hostPath"),
        Volume("scratch", kind="emptyDir"),
    ),
)


def test_volume_mounts() -> None:
    c = Container(
        "c",
        volume_mounts=(
            VolumeMount("null", "/var/run/nvidia-container-devices/all"),
            VolumeMount("dev", "/var/run/nvidia-container-devices/GPU-1", sub_path="null"),
            VolumeMount("scratch", "/scratch"),
        ),
    )
    assert volume_mounts(POD, c) == (
        Mount("/dev/null", "/var/run/nvidia-container-devices/all"),
        # subPath: kubelet bind-mounts it under its pod dir first; the source is not /dev/null.
        Mount("/var/lib/kubelet/pods/<p-uid>/volume-subpaths/dev/c/1", "/var/run/nvidia-container-devices/GPU-1"),
    )


@pytest.mark.parametrize(
    ("pattern", "name", "ok"),
    [
        ("nvidia.cdi.k8s.io/*", "nvidia.cdi.k8s.io/nvidia-device-plugin_1", True),
        ("cdi.k8s.io*", "cdi.k8s.io/nvidia-device-plugin_1", False),  # * never matches "/"
        ("cdi.k8s.io/*", "nvidia.cdi.k8s.io/x", False),
        ("*", "a/b", False),
        ("a?c", "abc", True),
        ("a[b-d]c", "acc", True),
        ("a[^b]c", "abc", False),
        ("a\\*c", "a*c", True),
        ("a[bc", "abc", False),  # bad pattern: no match
    ],
)
def test_path_match(pattern: str, name: str, ok: bool) -> None:
    assert path_match(pattern, name) is ok


def test_annotations_pass_through_only_matching_handler_patterns() -> None:
    cri = {"cdi.k8s.io/nvidia-device-plugin_1": "k8s.device-plugin.nvidia.com/gpu=GPU-1"}
    assert oci_annotations(cri, RuntimeHandler("nvidia", nvidia=True)) == {}
    assert oci_annotations(cri, RuntimeHandler("nvidia", container_annotations=("cdi.k8s.io/*",))) == cri
    assert oci_annotations(cri, None, "cri-o") == cri


def test_container_spec_orders_plugin_mounts_first_and_sorts_by_depth() -> None:
    c = Container(
        "c",
        security=SecurityContext(capabilities_add=("SYS_ADMIN",)),
        volume_mounts=(
            VolumeMount("null", "/var/run/nvidia-container-devices/all"),
            VolumeMount("dev", "/d"),
        ),
    )
    alloc = Allocation(
        envs=(("NVIDIA_VISIBLE_DEVICES", "/var/run/nvidia-container-devices"),),
        mounts=(Mount("/dev/null", "/var/run/nvidia-container-devices/GPU-1"),),
        annotations={"nvidia.cdi.k8s.io/nvidia-device-plugin_1": "k8s.device-plugin.nvidia.com/gpu=GPU-1"},
    )
    handler = RuntimeHandler("nvidia", nvidia=True, container_annotations=("nvidia.cdi.k8s.io/*",))
    spec = container_spec(POD, c, env=("A=1",), allocation=alloc, handler=handler, unknown_env={"X": "why"})
    assert spec.mounts == (
        Mount("/dev", "/d"),
        Mount("/dev/null", "/var/run/nvidia-container-devices/GPU-1"),
        Mount("/dev/null", "/var/run/nvidia-container-devices/all"),
    )
    assert spec.privileged
    assert spec.annotations == {"nvidia.cdi.k8s.io/nvidia-device-plugin_1": "k8s.device-plugin.nvidia.com/gpu=GPU-1"}
    assert spec.env == ("A=1",)
    assert spec.unknown_env == {"X": "why"}
