"""One row per rule and per version boundary of the per-container decision.

Expected values are typed from toolkit_semantics.md (§3, §4) and the upstream
code cited in the engine, never computed by the engine.
"""

from __future__ import annotations

from typing import Any

import pytest

from gpuguard.model.container import Mount
from gpuguard.model.toolkit import Driver, Platform

from ._util import devmount, run

NVD = "NVIDIA_VISIBLE_DEVICES"
AE = "accept-nvidia-visible-devices-envvar-when-unprivileged"
AM = "accept-nvidia-visible-devices-as-volume-mounts"
RT = "nvidia-container-runtime"
NOT_SET = object()
TEGRA = Platform(nvml=False, tegra=True)

# id, version, run() keyword arguments, expected Decision fields
ROWS: list[tuple[str, str, dict[str, Any], dict[str, Any]]] = [
    # --- pre-1.12 whole-string parsing vs 1.12 tokens ---
    ("whole-void-mixed-1.11", "1.11.0", {"env": (f"{NVD}=GPU0,void",)}, {"devices": ("GPU0", "void")}),
    ("tokens-void-mixed-1.12", "1.12.0", {"env": (f"{NVD}=GPU0,void",)}, {"devices": None}),
    ("whole-none-first-1.11", "1.11.0", {"env": (f"{NVD}=none,GPU0",)}, {"devices": ("none", "GPU0")}),
    ("tokens-none-first-1.12", "1.12.0", {"env": (f"{NVD}=none,GPU0",)}, {"devices": ("",)}),
    ("whole-none-1.0.5", "1.0.5", {"env": (f"{NVD}=none",)}, {"devices": ("",)}),
    ("whole-space-1.11", "1.11.0", {"env": (f"{NVD}= GPU0",)}, {"devices": (" GPU0",)}),
    ("tokens-trim-1.12", "1.12.0", {"env": (f"{NVD}= GPU0 ,,",)}, {"devices": ("GPU0",)}),
    ("whole-dup-1.11", "1.11.0", {"env": (f"{NVD}=GPU0,GPU0",)}, {"devices": ("GPU0", "GPU0")}),
    ("tokens-dup-quirk-1.12", "1.12.0", {"env": (f"{NVD}=GPU0,GPU0",)}, {"devices": ("", "GPU0")}),
    ("empty-is-not-gpu", "1.17.8", {"env": (f"{NVD}=",)}, {"devices": None}),
    ("all-then-none", "1.17.8", {"env": (f"{NVD}=all,none",)}, {"devices": ("all",)}),
    ("none-then-all", "1.17.8", {"env": (f"{NVD}=none,all",)}, {"devices": ("",)}),
    ("case-sensitive-ALL", "1.17.8", {"env": (f"{NVD}=ALL",)}, {"devices": ("ALL",)}),
    ("later-duplicate-wins", "1.17.8", {"env": (f"{NVD}=all", f"{NVD}=void")}, {"devices": None}),
    # --- legacy image ---
    ("legacy-image-all", "1.17.8", {"env": ("CUDA_VERSION=11.0",)}, {"devices": ("all",)}),
    (
        "modern-image-nothing",
        "1.17.8",
        {"env": ("CUDA_VERSION=11.0", "NVIDIA_REQUIRE_CUDA=cuda>=11.0")},
        {"devices": None},
    ),
    ("legacy-image-void", "1.17.8", {"env": ("CUDA_VERSION=11.0", f"{NVD}=void")}, {"devices": None}),
    ("legacy-image-gated", "1.17.8", {"env": ("CUDA_VERSION=11.0",), "doc": {AE: False}}, {"devices": None}),
    # --- swarm-resource ---
    (
        "swarm-first-1.2.1",
        "1.2.1",
        {"env": (f"{NVD}=all", "DOCKER_RESOURCE_GPU=GPU1"), "doc": {"swarm-resource": "DOCKER_RESOURCE_GPU"}},
        {"devices": ("GPU1",)},
    ),
    (
        "swarm-bug-1.3.0",
        "1.3.0",
        {"env": (f"{NVD}=all", "DOCKER_RESOURCE_GPU=GPU1"), "doc": {"swarm-resource": "DOCKER_RESOURCE_GPU"}},
        {"devices": ("all",)},
    ),
    (
        "swarm-bug-1.5.0",
        "1.5.0",
        {"env": (f"{NVD}=all", "DOCKER_RESOURCE_GPU=GPU1"), "doc": {"swarm-resource": "DOCKER_RESOURCE_GPU"}},
        {"devices": ("all",)},
    ),
    (
        "swarm-fixed-1.5.1",
        "1.5.1",
        {"env": (f"{NVD}=all", "DOCKER_RESOURCE_GPU=GPU1"), "doc": {"swarm-resource": "DOCKER_RESOURCE_GPU"}},
        {"devices": ("GPU1",)},
    ),
    (
        "swarm-list-1.12",
        "1.12.0",
        {"env": (f"{NVD}=all", "A=GPU1", "B=GPU2"), "doc": {"swarm-resource": "A, B"}},
        {"devices": ("GPU1", "GPU2")},
    ),
    (
        "swarm-absent-uses-nvd",
        "1.12.0",
        {"env": (f"{NVD}=GPU0",), "doc": {"swarm-resource": "A"}},
        {"devices": ("GPU0",)},
    ),
    (
        "swarm-ignored-by-runtime-1.18",
        "1.18.0",
        {"env": (f"{NVD}=all", "A=GPU1"), "doc": {"swarm-resource": "A"}},
        {"devices": ("all",), "mode": "jit-cdi", "cdi_devices": ("runtime.nvidia.com/gpu=all",)},
    ),
    (
        "swarm-runtime-1.19",
        "1.19.0",
        {"env": (f"{NVD}=all", "A=GPU1"), "doc": {"swarm-resource": "A"}},
        {"devices": ("GPU1",), "mode": "jit-cdi", "cdi_devices": ("runtime.nvidia.com/gpu=GPU1",)},
    ),
    (
        "swarm-hook-1.18",
        "1.18.0",
        {"env": (f"{NVD}=all", "A=GPU1"), "doc": {"swarm-resource": "A"}, "component": "hook"},
        {"devices": ("GPU1",), "mode": "legacy"},
    ),
    # --- privilege gate ---
    ("no-gate-1.2.1", "1.2.1", {"env": (f"{NVD}=all",), "doc": {AE: False}}, {"devices": ("all",)}),
    (
        "gate-panics-1.3.0",
        "1.3.0",
        {"env": (f"{NVD}=all",), "doc": {AE: False}},
        {"devices": None, "error": "insufficient privileges to read device list from NVIDIA_VISIBLE_DEVICES envvar"},
    ),
    (
        "gate-panics-1.4.0",
        "1.4.0",
        {"env": (f"{NVD}=all",), "doc": {AE: False}},
        {"devices": None, "error": "insufficient privileges to read device list from NVIDIA_VISIBLE_DEVICES envvar"},
    ),
    ("gate-ignores-1.4.1", "1.4.1", {"env": (f"{NVD}=all",), "doc": {AE: False}}, {"devices": None, "error": None}),
    (
        "gate-void-no-panic-1.3.0",
        "1.3.0",
        {"env": (f"{NVD}=void",), "doc": {AE: False}},
        {"devices": None, "error": None},
    ),
    (
        "privileged-passes-gate",
        "1.17.8",
        {"env": (f"{NVD}=all",), "doc": {AE: False}, "privileged": True},
        {"devices": ("all",)},
    ),
    # --- mounts ---
    (
        "mounts-ignored-without-accept",
        "1.17.8",
        {"env": (f"{NVD}=void",), "mounts": (devmount("GPU0"),)},
        {"devices": None},
    ),
    (
        "mounts-first",
        "1.17.8",
        {"env": (f"{NVD}=all",), "mounts": (devmount("GPU0"),), "doc": {AM: True}},
        {"devices": ("GPU0",)},
    ),
    (
        "mount-all-no-gate",
        "1.17.8",
        {"mounts": (devmount("all"),), "doc": {AM: True, AE: False}},
        {"devices": ("all",)},
    ),
    (
        "mount-prefix-quirk",
        "1.17.8",
        {
            "mounts": (Mount("/dev/null", "/var/run/nvidia-container-devicesX/GPU0"),),
            "doc": {AM: True},
        },
        {"devices": ("X/GPU0",)},
    ),
    (
        "mount-source-must-be-dev-null",
        "1.17.8",
        {
            "mounts": (Mount("/tmp/x", "/var/run/nvidia-container-devices/GPU0"),),
            "doc": {AM: True},
        },
        {"devices": None},
    ),
    (
        "mount-dup-1.16",
        "1.16.2",
        {"mounts": (devmount("GPU0"), devmount("GPU0/")), "doc": {AM: True}},
        {"devices": ("GPU0", "GPU0")},
    ),
    (
        "mount-dedup-1.17",
        "1.17.0",
        {"mounts": (devmount("GPU0"), devmount("GPU0/")), "doc": {AM: True}},
        {"devices": ("GPU0",)},
    ),
    (
        "hook-cdi-mount-verbatim-1.16",
        "1.16.2",
        {"mounts": (devmount("cdi/nvidia.com/gpu/0"),), "doc": {AM: True, RT: {"mode": "legacy"}}},
        {"devices": ("cdi/nvidia.com/gpu/0",), "mode": "legacy"},
    ),
    (
        "auto-cdi-from-cdi-mount-1.16",
        "1.16.2",
        {"mounts": (devmount("cdi/nvidia.com/gpu/0"),), "doc": {AM: True}},
        {"mode": "cdi", "cdi_devices": ("nvidia.com/gpu=0",)},
    ),
    (
        "hook-cdi-mount-skipped-1.17",
        "1.17.0",
        {"env": (f"{NVD}=GPU1",), "mounts": (devmount("cdi/nvidia.com/gpu/0"),), "doc": {AM: True}},
        {"devices": ("GPU1",), "mode": "legacy"},
    ),
    (
        "mount-key-missing-1.2.1",
        "1.2.1",
        {"env": (f"{NVD}=GPU1",), "mounts": (devmount("GPU0"),), "doc": {AM: True}},
        {"devices": ("GPU1",)},
    ),
    # --- modes ---
    (
        "mode-key-not-read-1.9",
        "1.9.0",
        {"env": (f"{NVD}=all",), "doc": {RT: {"mode": "cdi"}}},
        {"devices": ("all",), "mode": "legacy"},
    ),
    (
        "cdi-unknown-1.10",
        "1.10.0",
        {"env": (f"{NVD}=all",), "doc": {RT: {"mode": "cdi"}}},
        {"mode": "cdi", "error": "invalid runtime mode: cdi"},
    ),
    (
        "cdi-mode-1.11",
        "1.11.0",
        {"env": (f"{NVD}=all",), "doc": {RT: {"mode": "cdi"}}},
        {"mode": "cdi", "devices": ("all",), "cdi_devices": ("nvidia.com/gpu=all",), "error": None},
    ),
    (
        "jit-unknown-1.17",
        "1.17.8",
        {"env": (f"{NVD}=all",), "doc": {RT: {"mode": "jit-cdi"}}},
        {"error": "invalid runtime mode: jit-cdi"},
    ),
    (
        "bogus-mode-1.18.2",
        "1.18.2",
        {"env": (f"{NVD}=all",), "doc": {RT: {"mode": "bogus"}}},
        {"error": "invalid runtime mode: bogus"},
    ),
    (
        "bogus-mode-1.19",
        "1.19.0",
        {"env": (f"{NVD}=all",), "doc": {RT: {"mode": "bogus"}}},
        {"error": 'invalid mode "bogus"'},
    ),
    ("tegra-csv-1.10", "1.10.0", {"env": (f"{NVD}=all",), "platform": TEGRA}, {"mode": "csv", "devices": ("all",)}),
    ("tegra-1.9-hook-only", "1.9.0", {"env": (f"{NVD}=all",), "platform": TEGRA}, {"mode": "legacy"}),
    (
        "integrated-1.13",
        "1.13.0",
        {"env": (f"{NVD}=all",), "platform": Platform(integrated_gpu=True)},
        {"mode": "legacy"},
    ),
    ("integrated-1.14", "1.14.0", {"env": (f"{NVD}=all",), "platform": Platform(integrated_gpu=True)}, {"mode": "csv"}),
    (
        "wsl-tegra-1.15",
        "1.15.0",
        {"env": (f"{NVD}=all",), "platform": Platform(nvml=False, tegra=True, wsl=True)},
        {"mode": "csv"},
    ),
    (
        "wsl-first-1.16",
        "1.16.0",
        {"env": (f"{NVD}=all",), "platform": Platform(nvml=False, tegra=True, wsl=True)},
        {"mode": "legacy"},
    ),
    (
        "csv-ungated-1.17",
        "1.17.8",
        {"env": (f"{NVD}=all",), "platform": TEGRA, "doc": {AE: False}},
        {"mode": "csv", "devices": ("all",)},
    ),
    (
        "csv-gated-1.18",
        "1.18.0",
        {"env": (f"{NVD}=all",), "platform": TEGRA, "doc": {AE: False}},
        {"mode": "csv", "devices": None},
    ),
    ("unknown-platform-1.17", "1.17.8", {"env": (f"{NVD}=all",), "platform": Platform(nvml=False)}, {"mode": "legacy"}),
    (
        "unknown-platform-1.18",
        "1.18.0",
        {"env": (f"{NVD}=all",), "platform": Platform(nvml=False)},
        {"mode": "jit-cdi"},
    ),
    (
        "no-auto-cdi-1.13",
        "1.13.0",
        {"env": (f"{NVD}=nvidia.com/gpu=0",)},
        {"mode": "legacy", "devices": ("nvidia.com/gpu=0",)},
    ),
    (
        "auto-cdi-1.14",
        "1.14.0",
        {"env": (f"{NVD}=nvidia.com/gpu=0",)},
        {"mode": "cdi", "devices": ("nvidia.com/gpu=0",), "cdi_devices": ("nvidia.com/gpu=0",)},
    ),
    (
        "auto-cdi-ungated-1.17",
        "1.17.8",
        {"env": (f"{NVD}=nvidia.com/gpu=0",), "doc": {AE: False}},
        {"mode": "cdi", "devices": None},
    ),
    (
        "auto-cdi-gated-1.18",
        "1.18.0",
        {"env": (f"{NVD}=nvidia.com/gpu=0",), "doc": {AE: False}},
        {"mode": "jit-cdi", "devices": None},
    ),
    (
        "annotations-not-auto-1.17",
        "1.17.8",
        {"annotations": {"cdi.k8s.io/x": "nvidia.com/gpu=1"}},
        {"mode": "legacy", "devices": None},
    ),
    (
        "annotations-auto-cdi-1.18",
        "1.18.0",
        {"annotations": {"cdi.k8s.io/x": "nvidia.com/gpu=1"}},
        {"mode": "cdi", "devices": ("nvidia.com/gpu=1",), "cdi_devices": ("nvidia.com/gpu=1",)},
    ),
    (
        "unqualified-annotation-ignored-1.18",
        "1.18.0",
        {"annotations": {"cdi.k8s.io/x": "GPU1"}},
        {"mode": "jit-cdi", "devices": None},
    ),
    (
        "annotations-no-gate-1.18",
        "1.18.0",
        {"annotations": {"cdi.k8s.io/x": "nvidia.com/gpu=all"}, "doc": {AE: False}},
        {"mode": "cdi", "cdi_devices": ("nvidia.com/gpu=all",)},
    ),
    (
        "forced-cdi-before-executable",
        "1.12.0",
        {"env": (f"{NVD}=all",), "forced": "cdi"},
        {"error": "nvidia-container-runtime.cdi does not exist before toolkit v1.13.0"},
    ),
    (
        "forced-cdi-1.13",
        "1.13.0",
        {"env": (f"{NVD}=all",), "forced": "cdi"},
        {"mode": "cdi", "cdi_devices": ("nvidia.com/gpu=all",)},
    ),
    # --- cdi naming ---
    (
        "cdi-none-unresolvable-1.11",
        "1.11.0",
        {"env": (f"{NVD}=none",), "doc": {RT: {"mode": "cdi"}}},
        {
            "cdi_devices": ("nvidia.com/gpu=",),
            "error": "failed to inject CDI devices: unresolvable CDI devices nvidia.com/gpu=",
        },
    ),
    (
        "cdi-union-1.11",
        "1.11.0",
        {"env": (f"{NVD}=GPU0",), "annotations": {"cdi.k8s.io/a": "vendor.com/dev=dev0"}, "doc": {RT: {"mode": "cdi"}}},
        {"cdi_devices": ("nvidia.com/gpu=GPU0", "vendor.com/dev=dev0")},
    ),
    (
        "cdi-bad-annotation-1.11",
        "1.11.0",
        {"annotations": {"cdi.k8s.io/a": "GPU0"}, "doc": {RT: {"mode": "cdi"}}},
        {"error": 'failed to parse container annotations: invalid CDI device name "GPU0"'},
    ),
    (
        "cdi-annotations-win-1.13",
        "1.13.0",
        {"env": (f"{NVD}=all",), "annotations": {"cdi.k8s.io/a": "vendor.com/dev=dev0"}, "doc": {RT: {"mode": "cdi"}}},
        {"cdi_devices": ("vendor.com/dev=dev0",)},
    ),
    (
        "cdi-env-ungated-1.12",
        "1.12.0",
        {"env": (f"{NVD}=all",), "doc": {AE: False, RT: {"mode": "cdi"}}},
        {"cdi_devices": ("nvidia.com/gpu=all",)},
    ),
    (
        "cdi-env-gated-1.13",
        "1.13.0",
        {"env": (f"{NVD}=all",), "doc": {AE: False, RT: {"mode": "cdi"}}},
        {"cdi_devices": None, "devices": None},
    ),
    (
        "cdi-default-kind-1.13",
        "1.13.0",
        {
            "env": (f"{NVD}=all",),
            "doc": {RT: {"mode": "cdi", "modes": {"cdi": {"default-kind": "management.nvidia.com/gpu"}}}},
        },
        {"cdi_devices": ("management.nvidia.com/gpu=all",)},
    ),
    (
        "cdi-mounts-ignored-1.17",
        "1.17.8",
        {
            "env": (f"{NVD}=/var/run/nvidia-container-devices",),
            "mounts": (devmount("GPU-1"),),
            "doc": {AM: True, RT: {"mode": "cdi"}},
        },
        {"cdi_devices": ("nvidia.com/gpu=/var/run/nvidia-container-devices",)},
    ),
    (
        "cdi-mounts-honoured-1.18",
        "1.18.0",
        {
            "env": (f"{NVD}=/var/run/nvidia-container-devices",),
            "mounts": (devmount("GPU-1"),),
            "doc": {AM: True, RT: {"mode": "cdi"}},
        },
        {"cdi_devices": ("nvidia.com/gpu=GPU-1",)},
    ),
    (
        "cdi-mount-request-1.15",
        "1.15.0",
        {"mounts": (devmount("cdi/nvidia.com/gpu/0"),), "doc": {AM: True, RT: {"mode": "cdi"}}},
        {"cdi_devices": ("nvidia.com/gpu=0",)},
    ),
    (
        "cdi-mount-request-not-read-1.14",
        "1.14.0",
        {
            "env": (f"{NVD}=GPU3",),
            "mounts": (devmount("cdi/nvidia.com/gpu/0"),),
            "doc": {AM: True, RT: {"mode": "cdi"}},
        },
        {"cdi_devices": ("nvidia.com/gpu=GPU3",)},
    ),
    (
        "jit-mix-error-1.18",
        "1.18.0",
        {"env": (f"{NVD}=GPU0,nvidia.com/gpu=1",), "forced": "jit-cdi"},
        {
            "error": "requesting a CDI device with vendor 'runtime.nvidia.com' is not supported "
            "when requesting other CDI devices"
        },
    ),
    (
        "jit-none-all-1.18.0",
        "1.18.0",
        {"env": (f"{NVD}=none",)},
        {"devices": ("",), "cdi_devices": ("runtime.nvidia.com/gpu=all",)},
    ),
    (
        "jit-none-all-1.18.1",
        "1.18.1",
        {"env": (f"{NVD}=none",)},
        {"devices": ("",), "cdi_devices": ("runtime.nvidia.com/gpu=all",)},
    ),
    (
        "jit-none-fixed-1.18.2",
        "1.18.2",
        {"env": (f"{NVD}=none",)},
        {"devices": ("",), "cdi_devices": ("runtime.nvidia.com/gpu=none",)},
    ),
    (
        "jit-dup-quirk-1.18.0",
        "1.18.0",
        {"env": (f"{NVD}=GPU0,GPU0",)},
        {"cdi_devices": ("runtime.nvidia.com/gpu=GPU0",)},
    ),
    (
        "jit-dup-quirk-none-first-1.20",
        "1.20.0",
        {"env": (f"{NVD}=GPU0,GPU0",)},
        {"cdi_devices": ("runtime.nvidia.com/gpu=none",)},
    ),
    (
        "cdi-none-1.18.0",
        "1.18.0",
        {"env": (f"{NVD}=none",), "doc": {RT: {"mode": "cdi"}}},
        {"error": "failed to inject CDI devices: unresolvable CDI devices nvidia.com/gpu="},
    ),
    (
        "cdi-none-1.18.2",
        "1.18.2",
        {"env": (f"{NVD}=none",), "doc": {RT: {"mode": "cdi"}}},
        {"cdi_devices": ("nvidia.com/gpu=none",), "error": None},
    ),
    (
        "cdi-annotation-dedup-1.18",
        "1.18.0",
        {"annotations": {"cdi.k8s.io/b": "v.com/cl=x,v.com/cl=x", "cdi.k8s.io/a": "v.com/cl=y"}},
        {"devices": ("v.com/cl=y", "v.com/cl=x", "v.com/cl=x"), "cdi_devices": ("v.com/cl=y", "v.com/cl=x")},
    ),
    # --- IMEX ---
    ("imex-none-1.14", "1.14.0", {"env": (f"{NVD}=all", "NVIDIA_IMEX_CHANNELS=0")}, {"imex_channels": None}),
    (
        "imex-verbatim-1.15",
        "1.15.0",
        {"env": (f"{NVD}=all", "NVIDIA_IMEX_CHANNELS=0, 1")},
        {"imex_channels": ("0, 1",)},
    ),
    (
        "imex-ungated-1.16",
        "1.16.2",
        {"env": ("NVIDIA_IMEX_CHANNELS=0",), "mounts": (devmount("GPU0"),), "doc": {AM: True, AE: False}},
        {"devices": ("GPU0",), "imex_channels": ("0",)},
    ),
    (
        "imex-gated-1.17",
        "1.17.0",
        {"env": ("NVIDIA_IMEX_CHANNELS=0",), "mounts": (devmount("GPU0"),), "doc": {AM: True, AE: False}},
        {"devices": ("GPU0",), "imex_channels": None},
    ),
    ("imex-legacy-all-1.17.0", "1.17.0", {"env": ("CUDA_VERSION=11.0",)}, {"imex_channels": ("all",)}),
    ("imex-legacy-all-dropped-1.17.2", "1.17.2", {"env": ("CUDA_VERSION=11.0",)}, {"imex_channels": None}),
    (
        "imex-bare-all-dropped-1.17.2",
        "1.17.2",
        {"env": (f"{NVD}=all", "NVIDIA_IMEX_CHANNELS=all")},
        {"imex_channels": None},
    ),
    (
        "imex-ignore-1.17.5",
        "1.17.5",
        {"env": (f"{NVD}=all", "NVIDIA_IMEX_CHANNELS=0"), "doc": {"features": {"ignore-imex-channel-requests": True}}},
        {"imex_channels": None},
    ),
    (
        "imex-ignore-not-read-1.17.4",
        "1.17.4",
        {"env": (f"{NVD}=all", "NVIDIA_IMEX_CHANNELS=0"), "doc": {"features": {"ignore-imex-channel-requests": True}}},
        {"imex_channels": ("0",)},
    ),
    (
        "imex-mount-1.17",
        "1.17.0",
        {"mounts": (devmount("GPU0"), devmount("imex/3")), "doc": {AM: True}},
        {"devices": ("GPU0",), "imex_channels": ("3",)},
    ),
    ("imex-needs-gpu", "1.17.8", {"env": ("NVIDIA_IMEX_CHANNELS=0",)}, {"devices": None, "imex_channels": None}),
    (
        "imex-jit-1.18",
        "1.18.0",
        {"env": (f"{NVD}=all", "NVIDIA_IMEX_CHANNELS=0")},
        {"mode": "jit-cdi", "imex_channels": ("0",)},
    ),
    # --- hook: MIG ---
    ("mig-no-check-1.0.5", "1.0.5", {"env": (f"{NVD}=all", "NVIDIA_MIG_CONFIG_DEVICES=all")}, {"error": None}),
    (
        "mig-check-1.1.0",
        "1.1.0",
        {"env": (f"{NVD}=all", "NVIDIA_MIG_CONFIG_DEVICES=all")},
        {"error": "cannot set MIG_CONFIG_DEVICES in non privileged container"},
    ),
    (
        "mig-monitor-1.17",
        "1.17.8",
        {"env": (f"{NVD}=all", "NVIDIA_MIG_MONITOR_DEVICES=all")},
        {"error": "cannot set MIG_MONITOR_DEVICES in non privileged container"},
    ),
    (
        "mig-only-gpu-containers",
        "1.17.8",
        {"env": (f"{NVD}=void", "NVIDIA_MIG_CONFIG_DEVICES=all")},
        {"error": None, "devices": None},
    ),
    (
        "mig-privileged-ok",
        "1.17.8",
        {"env": (f"{NVD}=all", "NVIDIA_MIG_CONFIG_DEVICES=all"), "privileged": True},
        {"error": None},
    ),
    (
        "mig-not-checked-jit-1.18",
        "1.18.0",
        {"env": (f"{NVD}=all", "NVIDIA_MIG_CONFIG_DEVICES=all")},
        {"error": None, "mode": "jit-cdi"},
    ),
    # --- hook: capabilities ---
    (
        "caps-unsupported",
        "1.17.8",
        {"env": (f"{NVD}=all", "NVIDIA_DRIVER_CAPABILITIES=compute,foo")},
        {"error": "unsupported capabilities found in 'compute,foo' (allowed 'compute')"},
    ),
    (
        "caps-space-string-era-1.13",
        "1.13.0",
        {"env": (f"{NVD}=all", "NVIDIA_DRIVER_CAPABILITIES=compute, utility")},
        {"error": "unsupported capabilities found in 'compute, utility' (allowed 'compute,utility')"},
    ),
    (
        "caps-space-set-era-1.14",
        "1.14.0",
        {"env": (f"{NVD}=all", "NVIDIA_DRIVER_CAPABILITIES=compute, utility")},
        {"error": None},
    ),
    (
        "caps-ngx-unknown-1.2",
        "1.2.1",
        {"env": (f"{NVD}=all", "NVIDIA_DRIVER_CAPABILITIES=ngx")},
        {"error": "unknown driver capability: ngx"},
    ),
    ("caps-ngx-known-1.3", "1.3.0", {"env": (f"{NVD}=all", "NVIDIA_DRIVER_CAPABILITIES=ngx")}, {"error": None}),
    (
        "caps-supported-config",
        "1.17.8",
        {
            "env": (f"{NVD}=all", "NVIDIA_DRIVER_CAPABILITIES=graphics"),
            "doc": {"supported-driver-capabilities": "compute,utility"},
        },
        {"error": "unsupported capabilities found in 'graphics' (allowed '')"},
    ),
    (
        "caps-bad-config-every-container",
        "1.17.8",
        {"env": (f"{NVD}=void",), "doc": {"supported-driver-capabilities": "compute,foo"}},
        {
            "devices": None,
            "error": "Invalid value for config option 'supported-driver-capabilities'; compute,foo "
            "(supported: compat32,compute,display,graphics,ngx,utility,video)",
        },
    ),
    # --- hook: requirements ---
    ("cuda-version-bad-1.9", "1.9.0", {"env": ("CUDA_VERSION=11.0.3.1",)}, {"error": "invalid CUDA version: 11.0.3.1"}),
    ("cuda-version-v-1.9", "1.9.0", {"env": ("CUDA_VERSION=v11.0",)}, {"error": "invalid CUDA version: v11.0"}),
    ("cuda-version-v-1.10", "1.10.0", {"env": ("CUDA_VERSION=v11.0",)}, {"error": None}),
    (
        "cuda-version-bad-disabled-1.13",
        "1.13.0",
        {"env": ("CUDA_VERSION=11.x", "NVIDIA_DISABLE_REQUIRE=true")},
        {"error": "invalid CUDA version: 11.x"},
    ),
    (
        "cuda-version-bad-disabled-1.14",
        "1.14.0",
        {"env": ("CUDA_VERSION=11.x", "NVIDIA_DISABLE_REQUIRE=true")},
        {"error": None},
    ),
    (
        "cuda-version-bad-config-disabled-1.14",
        "1.14.0",
        {"env": ("CUDA_VERSION=11.x",), "doc": {"disable-require": True}},
        {"error": None},
    ),
    (
        "require-unsatisfied",
        "1.17.8",
        {"env": (f"{NVD}=all", "NVIDIA_REQUIRE_CUDA=cuda>=12.5"), "driver": Driver(cuda="12.4")},
        {
            "error": "requirement error: unsatisfied condition: cuda>=12.5, please update your driver to a newer "
            "version, or use an earlier cuda container"
        },
    ),
    (
        "require-satisfied",
        "1.17.8",
        {"env": (f"{NVD}=all", "NVIDIA_REQUIRE_CUDA=cuda>=12.5"), "driver": Driver(cuda="12.6")},
        {"error": None},
    ),
    ("require-unknown-driver", "1.17.8", {"env": (f"{NVD}=all", "NVIDIA_REQUIRE_CUDA=cuda>=12.5")}, {"error": None}),
    (
        "require-disabled-env",
        "1.17.8",
        {
            "env": (f"{NVD}=all", "NVIDIA_REQUIRE_CUDA=cuda>=12.5", "NVIDIA_DISABLE_REQUIRE=1"),
            "driver": Driver(cuda="12.4"),
        },
        {"error": None},
    ),
    (
        "require-or-groups",
        "1.17.8",
        {
            "env": (f"{NVD}=all", "NVIDIA_REQUIRE_CUDA=cuda>=13.0 brand=tesla,driver>=470"),
            "driver": Driver(version="550.54.15", cuda="12.4", brand="Tesla"),
        },
        {"error": None},
    ),
    (
        "require-or-groups-fail",
        "1.17.8",
        {
            "env": (f"{NVD}=all", "NVIDIA_REQUIRE_CUDA=cuda>=13.0 brand=tesla,driver>=470"),
            "driver": Driver(version="550.54.15", cuda="12.4", brand="geforce"),
        },
        {
            "error": "requirement error: unsatisfied condition: cuda>=13.0, please update your driver to a newer "
            "version, or use an earlier cuda container"
        },
    ),
    (
        "require-none-skips-brand",
        "1.17.8",
        {"env": (f"{NVD}=none", "NVIDIA_REQUIRE_X=brand=tesla"), "driver": Driver(brand="geforce")},
        {"error": None},
    ),
    (
        "jetpack-read-1.9",
        "1.9.0",
        {"env": (f"{NVD}=all", "NVIDIA_REQUIRE_JETPACK=csv-mounts=all")},
        {"error": "requirement error: invalid expression"},
    ),
    (
        "jetpack-skipped-1.10",
        "1.10.0",
        {"env": (f"{NVD}=all", "NVIDIA_REQUIRE_JETPACK=csv-mounts=all")},
        {"error": None},
    ),
    # --- hook: mode check ---
    (
        "hook-early-mode-check-1.12",
        "1.12.0",
        {"env": (f"{NVD}=void",), "component": "hook", "doc": {RT: {"mode": "cdi"}}},
        {
            "error": "invoking the NVIDIA Container Runtime Hook directly (e.g. specifying the docker --gpus flag) is "
            "not supported. Please use the NVIDIA Container Runtime (e.g. specify the --runtime=nvidia flag) "
            "instead"
        },
    ),
    (
        "hook-early-mode-check-1.10-text",
        "1.10.0",
        {"env": (f"{NVD}=void",), "component": "hook", "doc": {RT: {"mode": "cdi"}}},
        {
            "error": "invoking the NVIDIA Container Runtime Hook directly (e.g. specifying the docker --gpus flag) is "
            "not supported. Please use the NVIDIA Container Runtime instead"
        },
    ),
    (
        "hook-late-mode-check-1.14",
        "1.14.0",
        {"env": (f"{NVD}=void",), "component": "hook", "doc": {RT: {"mode": "cdi"}}},
        {"error": None},
    ),
    (
        "hook-skip-mode-detection-1.13",
        "1.13.0",
        {
            "env": (f"{NVD}=all",),
            "component": "hook",
            "doc": {RT: {"mode": "cdi"}, "nvidia-container-runtime-hook": {"skip-mode-detection": True}},
        },
        {"error": None, "devices": ("all",)},
    ),
    (
        "hook-skip-key-missing-1.12",
        "1.12.0",
        {
            "env": (f"{NVD}=all",),
            "component": "hook",
            "doc": {RT: {"mode": "cdi"}, "nvidia-container-runtime-hook": {"skip-mode-detection": True}},
        },
        {"error": NOT_SET},
    ),
    (
        "hook-auto-cdi-1.14",
        "1.14.0",
        {"env": (f"{NVD}=nvidia.com/gpu=0",), "component": "hook"},
        {"error": NOT_SET, "devices": ("nvidia.com/gpu=0",)},
    ),
    ("hook-tegra-1.18", "1.18.0", {"env": (f"{NVD}=all",), "component": "hook", "platform": TEGRA}, {"error": NOT_SET}),
    (
        "hook-jit-default-is-legacy-1.18",
        "1.18.0",
        {"env": (f"{NVD}=all",), "component": "hook"},
        {"error": None, "mode": "legacy", "devices": ("all",)},
    ),
    # --- env entries without '=' ---
    ("env-error-1.9", "1.9.0", {"env": ("FOO",)}, {"error": "environment error"}),
    ("env-error-1.10", "1.10.0", {"env": ("FOO",)}, {"error": "invalid environment variable: FOO"}),
    ("env-error-1.20", "1.20.0", {"env": (f"{NVD}=all", "FOO")}, {"error": "invalid environment variable: FOO"}),
    ("env-empty-key-ok", "1.17.8", {"env": ("=x", f"{NVD}=all")}, {"error": None, "devices": ("all",)}),
    # --- pre-1.10 runtime only inserts the hook ---
    (
        "alpha-merge-1.1",
        "1.1.0",
        {
            "env": ("NVIDIA_VISIBLE_DEVICES_A=GPU0",),
            "doc": {"nvidia-container-cli": {"alpha-merge-visible-devices-envvars": True}},
        },
        {"devices": ("GPU0",)},
    ),
    (
        "alpha-merge-gone-1.3",
        "1.3.0",
        {
            "env": ("NVIDIA_VISIBLE_DEVICES_A=GPU0",),
            "doc": {"nvidia-container-cli": {"alpha-merge-visible-devices-envvars": True}},
        },
        {"devices": None},
    ),
]


@pytest.mark.parametrize(("version", "kwargs", "expected"), [r[1:] for r in ROWS], ids=[r[0] for r in ROWS])
def test_rule(version: str, kwargs: dict[str, Any], expected: dict[str, Any]) -> None:
    d = run(version, **kwargs)
    for field, want in expected.items():
        got = getattr(d, field)
        if want is NOT_SET:
            assert got is not None, f"{field} should be set: {d}"
        else:
            assert got == want, f"{field}: {got!r} != {want!r}\n{d.trail}"
