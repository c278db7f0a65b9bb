"""CDI name rules per release and the platform fallback of ``auto``."""

from __future__ import annotations

import pytest

from gpuguard.engine.toolkit.modes import is_qualified, platform_mode
from gpuguard.engine.toolkit.versions import behaviour
from gpuguard.model.toolkit import Platform
from gpuguard.model.version import v


@pytest.mark.parametrize(
    ("name", "rules", "expected"),
    [
        ("nvidia.com/gpu=all", 3, True),
        ("nvidia.com/gpu=0", 1, False),  # v1.11: device names start with a letter
        ("nvidia.com/gpu=0", 2, True),
        ("nvidia.com/gpu=GPU-1:0", 3, True),
        ("k8s.device-plugin.nvidia.com/gpu=MIG-abc", 3, True),
        ("nvidia.com/gpu.x=a1", 2, False),  # class with '.' only from v1.14
        ("nvidia.com/gpu.x=a1", 3, True),
        ("nvidia.com/gpu=", 3, False),
        ("nvidia.com=gpu", 3, False),
        ("/nvidia.com/gpu=0", 3, False),
        ("nvidia.com/gpu=a/b", 3, False),
        ("GPU0", 3, False),
        ("", 3, False),
    ],
)
def test_is_qualified(name: str, rules: int, expected: bool) -> None:
    assert is_qualified(name, rules) is expected


@pytest.mark.parametrize(
    ("version", "platform", "expected"),
    [
        ("1.17.8", Platform(), "legacy"),
        ("1.20.0", Platform(), "jit-cdi"),
        ("1.20.0", Platform(nvml=False, tegra=True), "csv"),
        ("1.20.0", Platform(nvml=True, tegra=True), "jit-cdi"),
        ("1.20.0", Platform(integrated_gpu=True), "csv"),
        ("1.13.0", Platform(integrated_gpu=True), "legacy"),
        ("1.20.0", Platform(wsl=True, nvml=False, tegra=True), "jit-cdi"),
        ("1.20.0", Platform(nvml=False), "jit-cdi"),
    ],
)
def test_platform_mode(version: str, platform: Platform, expected: str) -> None:
    b = behaviour(v(version))
    assert platform_mode(b, platform, b.runtime_default_mode)[0] == expected
