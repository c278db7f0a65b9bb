"""The device plugin's Allocate response: one row per rule and version boundary.

Expected strings are typed from k8s-device-plugin's server.go at each tag, not computed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from gpuguard.engine.device_plugin.allocate import (
    Allocation,
    DeviceSpec,
    allocate,
    check_version,
    parse_list_strategy,
)
from gpuguard.model.container import Mount
from gpuguard.model.errors import InputError
from gpuguard.model.node import DevicePlugin, Gpu
from gpuguard.model.version import v

G0 = Gpu("GPU-aaa", "0")
G1 = Gpu("GPU-bbb", "1")
MIG = Gpu("MIG-ccc", "1:0")
R0 = Gpu("GPU-aaa::0", "0")
R1 = Gpu("GPU-aaa::1", "0")
ROOT = "/var/run/nvidia-container-devices"
NVD = "NVIDIA_VISIBLE_DEVICES"
ANN = "cdi.k8s.io/nvidia-device-plugin_<response-uuid>"


@dataclass
class Row:
    id: str
    version: str
    strategies: tuple[str, ...]
    devices: tuple[Gpu, ...] = (G0,)
    opts: dict[str, Any] = field(default_factory=dict)
    envs: tuple[tuple[str, str], ...] = ()
    mounts: tuple[Mount, ...] = ()
    annotations: dict[str, str] = field(default_factory=dict)
    cdi: tuple[str, ...] = ()
    error: str | None = None


ROWS = [
    Row("v0.7 envvar uuid", "0.7.0", ("envvar",), (G0, G1), envs=((NVD, "GPU-aaa,GPU-bbb"),)),
    Row(
        "v0.7 volume-mounts",
        "0.7.0",
        ("volume-mounts",),
        envs=((NVD, ROOT),),
        mounts=(Mount("/dev/null", "/var/run/nvidia-container-devices/GPU-aaa"),),
    ),
    Row("v0.8 has no id strategy: index ignored", "0.8.2", ("envvar",), opts={"id_strategy": "index"},
        envs=((NVD, "GPU-aaa"),)),
    Row("v0.9 index", "0.9.0", ("envvar",), (G0, G1), opts={"id_strategy": "index"}, envs=((NVD, "0,1"),)),
    Row("v0.12 gds not yet", "0.12.3", ("envvar",), opts={"gds": True}, envs=((NVD, "GPU-aaa"),)),
    Row("v0.13 gds+mofed env", "0.13.0", ("envvar",), opts={"gds": True, "mofed": True},
        envs=((NVD, "GPU-aaa"), ("NVIDIA_GDS", "enabled"), ("NVIDIA_MOFED", "enabled"))),
    Row(
        "v0.14 envvar+volume-mounts: placeholder overwrites",
        "0.14.0",
        ("envvar", "volume-mounts"),
        envs=((NVD, ROOT),),
        mounts=(Mount("/dev/null", "/var/run/nvidia-container-devices/GPU-aaa"),),
    ),
    Row("v0.14 cdi-annotations only: no env", "0.14.0", ("cdi-annotations",),
        annotations={ANN: "k8s.device-plugin.nvidia.com/gpu=GPU-aaa"}),
    Row("v0.14 all-cdi + gds: nil map panic", "0.14.5", ("cdi-annotations",), opts={"gds": True},
        error="device plugin panics writing NVIDIA_GDS/NVIDIA_MOFED into a nil env map"),
    Row("v0.15 cdi-cri + gds: env still set", "0.15.0", ("cdi-cri",), opts={"gds": True},
        envs=(("NVIDIA_GDS", "enabled"),),
        cdi=("k8s.device-plugin.nvidia.com/gpu=GPU-aaa", "k8s.device-plugin.nvidia.com/gds=all")),
    Row("v0.16 all-cdi stops before feature env", "0.16.0", ("cdi-cri",), opts={"gds": True},
        cdi=("k8s.device-plugin.nvidia.com/gpu=GPU-aaa", "k8s.device-plugin.nvidia.com/gds=all")),
    Row("v0.19 feature env even with all-cdi", "0.19.0", ("cdi-cri",), opts={"gds": True},
        envs=(("NVIDIA_GDS", "enabled"),),
        cdi=("k8s.device-plugin.nvidia.com/gpu=GPU-aaa", "k8s.device-plugin.nvidia.com/gds=all")),
    Row("v0.16 no imex yet", "0.16.2", ("envvar",), opts={"imex_channel_ids": ("0",)},
        envs=((NVD, "GPU-aaa"),)),
    Row("v0.17 imex env", "0.17.0", ("envvar",), opts={"imex_channel_ids": ("0", "1")},
        envs=((NVD, "GPU-aaa"), ("NVIDIA_IMEX_CHANNELS", "0,1"))),
    Row(
        "v0.17 imex mounts",
        "0.17.0",
        ("volume-mounts",),
        opts={"imex_channel_ids": ("3",)},
        envs=((NVD, ROOT),),
        mounts=(
            Mount("/dev/null", "/var/run/nvidia-container-devices/GPU-aaa"),
            Mount("/dev/null", "/var/run/nvidia-container-devices/imex/3"),
        ),
    ),
    Row("v0.17 replicas keep duplicates", "0.17.4", ("envvar",), (R0, R1),
        envs=((NVD, "GPU-aaa,GPU-aaa"),)),
    Row("v0.18 replicas de-duplicated", "0.18.0", ("envvar",), (R0, R1), envs=((NVD, "GPU-aaa"),)),
    Row("v0.18 index replicas de-duplicated", "0.18.0", ("envvar",), (R0, R1), opts={"id_strategy": "index"},
        envs=((NVD, "0"),)),
    Row(
        "v0.18 all-cdi, every extra device, no env",
        "0.18.0",
        ("cdi-annotations", "cdi-cri"),
        opts={"gds": True, "mofed": True, "gdrcopy": True, "imex_channel_ids": ("0",)},
        annotations={
            ANN: "k8s.device-plugin.nvidia.com/gpu=GPU-aaa,k8s.device-plugin.nvidia.com/imex-channel=0,"
            "k8s.device-plugin.nvidia.com/gdrcopy=all,k8s.device-plugin.nvidia.com/gds=all,"
            "k8s.device-plugin.nvidia.com/mofed=all"
        },
        cdi=(
            "k8s.device-plugin.nvidia.com/gpu=GPU-aaa",
            "k8s.device-plugin.nvidia.com/imex-channel=0",
            "k8s.device-plugin.nvidia.com/gdrcopy=all",
            "k8s.device-plugin.nvidia.com/gds=all",
            "k8s.device-plugin.nvidia.com/mofed=all",
        ),
    ),
    Row("v0.20 all-cdi feature envs", "0.20.0", ("cdi-cri",),
        opts={"gds": True, "mofed": True, "gdrcopy": True},
        envs=(("NVIDIA_GDRCOPY", "enabled"), ("NVIDIA_GDS", "enabled"), ("NVIDIA_MOFED", "enabled")),
        cdi=(
            "k8s.device-plugin.nvidia.com/gpu=GPU-aaa",
            "k8s.device-plugin.nvidia.com/gdrcopy=all",
            "k8s.device-plugin.nvidia.com/gds=all",
            "k8s.device-plugin.nvidia.com/mofed=all",
        )),
    Row("v0.20 custom CDI annotation prefix", "0.20.0", ("cdi-annotations",),
        opts={"cdi_annotation_prefix": "nvidia.cdi.k8s.io/"},
        annotations={
            "nvidia.cdi.k8s.io/nvidia-device-plugin_<response-uuid>":
                "k8s.device-plugin.nvidia.com/gpu=GPU-aaa"
        }),
    Row("v0.20 envvar + cdi-annotations (operator 23.3-25.3)", "0.20.0", ("envvar", "cdi-annotations"),
        (G0, G1),
        envs=((NVD, "GPU-aaa,GPU-bbb"),),
        annotations={
            ANN: "k8s.device-plugin.nvidia.com/gpu=GPU-aaa,k8s.device-plugin.nvidia.com/gpu=GPU-bbb"
        }),
    Row("v0.20 MIG by index", "0.20.0", ("volume-mounts",), (MIG,), opts={"id_strategy": "index"},
        envs=((NVD, ROOT),), mounts=(Mount("/dev/null", "/var/run/nvidia-container-devices/1:0"),)),
    Row("v0.20 MIG by uuid", "0.20.0", ("envvar",), (MIG,), envs=((NVD, "MIG-ccc"),)),
]  # fmt: skip


@pytest.mark.parametrize("row", ROWS, ids=[r.id for r in ROWS])
def test_allocate(row: Row) -> None:
    plugin = DevicePlugin(version=v(row.version), list_strategies=row.strategies, **row.opts)
    got = allocate(plugin, row.devices)
    if row.error is not None:
        assert got.error == row.error
        return
    assert got.error is None
    assert got.envs == row.envs
    assert got.mounts == row.mounts
    assert dict(got.annotations) == row.annotations
    assert got.cdi_devices == row.cdi


CTL = ("/dev/nvidiactl", "/dev/nvidia-uvm", "/dev/nvidia-uvm-tools", "/dev/nvidia-modeset")


def test_device_specs_with_dev_root() -> None:
    plugin = DevicePlugin(v("0.20.0"), pass_device_specs=True, dev_root="/run/nvidia/driver")
    got = allocate(plugin, (G1,))
    assert got.device_specs == (
        DeviceSpec("/dev/nvidiactl", "/run/nvidia/driver/dev/nvidiactl"),
        DeviceSpec("/dev/nvidia-uvm", "/run/nvidia/driver/dev/nvidia-uvm"),
        DeviceSpec("/dev/nvidia-uvm-tools", "/run/nvidia/driver/dev/nvidia-uvm-tools"),
        DeviceSpec("/dev/nvidia-modeset", "/run/nvidia/driver/dev/nvidia-modeset"),
        DeviceSpec("/dev/nvidia1", "/run/nvidia/driver/dev/nvidia1"),
    )


def test_device_specs_v07_host_path_is_container_path_and_imex_from_v017() -> None:
    old = allocate(DevicePlugin(v("0.7.0"), pass_device_specs=True), (Gpu("GPU-x", "0", ("/dev/nvidia3",)),))
    assert old.device_specs[-1] == DeviceSpec("/dev/nvidia3", "/dev/nvidia3")
    new = allocate(DevicePlugin(v("0.17.0"), pass_device_specs=True, imex_channel_ids=("2",)), (G0,))
    assert new.device_specs[-1] == DeviceSpec(
        "/dev/nvidia-caps-imex-channels/channel2", "/dev/nvidia-caps-imex-channels/channel2"
    )


@pytest.mark.parametrize(
    ("version", "strategies", "specs"),
    [("0.15.1", ("cdi-cri",), 5), ("0.16.0", ("cdi-cri",), 0), ("0.20.0", ("envvar", "cdi-cri"), 5)],
)
def test_device_specs_and_all_cdi(version: str, strategies: tuple[str, ...], specs: int) -> None:
    got = allocate(DevicePlugin(v(version), list_strategies=strategies, pass_device_specs=True), (G0,))
    assert len(got.device_specs) == specs


@pytest.mark.parametrize(
    ("text", "version", "expected"),
    [
        ("envvar", "0.7.0", ("envvar",)),
        ("volume-mounts", "0.13.0", ("volume-mounts",)),
        ("envvar,volume-mounts", "0.13.0", None),  # a single string before v0.14.0
        ("cdi-annotations", "0.13.0", None),
        ("envvar, volume-mounts", "0.14.0", ("envvar", "volume-mounts")),  # items are trimmed
        ("cdi-annotations", "0.14.0", ("cdi-annotations",)),
        ("cdi-cri", "0.14.5", None),
        ("cdi-cri", "0.15.0", ("cdi-cri",)),
        ("cdi-annotations,cdi-cri", "0.17.0", ("cdi-annotations", "cdi-cri")),
        ("Envvar", "0.20.0", None),  # case-sensitive
        ("VOLUME-MOUNTS", "0.20.0", None),
        ("", "0.20.0", None),
        ("envvar,", "0.20.0", None),
        ("envvar,envvar", "0.20.0", ("envvar",)),
    ],
)
def test_parse_list_strategy(text: str, version: str, expected: tuple[str, ...] | None) -> None:
    if expected is None:
        with pytest.raises(InputError):
            parse_list_strategy(text, v(version))
    else:
        assert parse_list_strategy(text, v(version)) == expected


@pytest.mark.parametrize(("version", "ok"), [("0.6.0", False), ("0.7.0", True), ("0.20.3", True), ("0.21.0", False)])
def test_check_version(version: str, ok: bool) -> None:
    if ok:
        check_version(v(version))
    else:
        with pytest.raises(InputError):
            check_version(v(version))


def test_bad_plugin_settings_are_input_errors() -> None:
    with pytest.raises(InputError):
        allocate(DevicePlugin(v("0.13.0"), list_strategies=("envvar", "volume-mounts")), (G0,))
    with pytest.raises(InputError):
        allocate(DevicePlugin(v("0.20.0"), id_strategy="UUID"), (G0,))


def test_allocation_env_lookup() -> None:
    assert Allocation(envs=((NVD, "x"),)).env(NVD) == "x"
    assert Allocation().env(NVD) is None
