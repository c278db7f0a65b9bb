"""Runtime modes and CDI device names.

Mode resolution is ``internal/info/auto.go``: a mode other than ``auto`` is
used verbatim (validated later), ``auto`` may resolve to ``cdi`` from the
container's own request (v1.14+), and otherwise the platform decides. The CDI
name checks follow the vendored container-device-interface parser of each
release.
"""

from __future__ import annotations

from functools import lru_cache

from gpuguard.engine.toolkit.versions import Behaviour
from gpuguard.model.toolkit import Platform

VALID_MODES = ("legacy", "csv", "cdi", "jit-cdi")
JIT_KIND = "runtime.nvidia.com/gpu"
JIT_PREFIX = JIT_KIND + "="

_LETTERS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")
_ALNUM = _LETTERS | frozenset("0123456789")
_VENDOR_MID = _ALNUM | frozenset("_-.")
_CLASS_MID_OLD = _ALNUM | frozenset("_-")
_NAME_MID = _ALNUM | frozenset("_-.:")


def _vendor_or_class_ok(s: str, mid: frozenset[str]) -> bool:
    # Upstream indexes s[1:len-1], which panics for a one-character vendor/class;
    # we call such names unqualified (no real CDI kind is one character long).
    if len(s) < 2 or s[0] not in _LETTERS or s[-1] not in _ALNUM:
        return False
    return all(c in mid for c in s[1:-1])


@lru_cache(maxsize=4096)
def is_qualified(name: str, rules: int) -> bool:
    """``parser.IsQualifiedName``: ``vendor/class=name`` with the release's character rules."""
    # v1.11.0:vendor/.../cdi/qualified-device.go (names start with a letter, class without '.');
    # v1.12.0: names may start with a digit; v1.14.0:vendor/.../pkg/parser/parser.go: class may hold '.'.
    if not name or name[0] == "/":
        return False
    kind, sep, dev = name.partition("=")
    if not sep or not kind or not dev:
        return False
    vendor, sep, cls = kind.partition("/")
    if not sep or not vendor or not cls:
        return False
    if not _vendor_or_class_ok(vendor, _VENDOR_MID):
        return False
    if not _vendor_or_class_ok(cls, _VENDOR_MID if rules >= 3 else _CLASS_MID_OLD):
        return False
    first = _LETTERS if rules == 1 else _ALNUM
    if dev[0] not in first:
        return False
    if len(dev) == 1:
        return rules >= 2  # v1.11 indexes name[1:0] (panic); treat as unqualified
    return dev[-1] in _ALNUM and all(c in _NAME_MID for c in dev[1:-1])


def platform_mode(b: Behaviour, platform: Platform, default: str) -> tuple[str, str]:
    """The mode ``auto`` falls back to on this platform, and why."""
    if b.wsl_platform and platform.wsl:
        # v1.16.0:vendor/github.com/NVIDIA/go-nvlib/pkg/nvlib/info/resolver.go: dxcore first → PlatformWSL.
        return default, "WSL platform"
    tegra = platform.tegra and not platform.nvml
    if tegra or (b.integrated_is_csv and platform.integrated_gpu):
        # v1.10.0:internal/info/auto.go (tegra && !nvml); v1.14.0 adds the nvgpu/integrated-GPU probe.
        return "csv", "Tegra platform without NVML" if tegra else "integrated GPU"
    if platform.nvml:
        return default, "NVML platform"
    return default, "unknown platform"


def invalid_mode_error(b: Behaviour, mode: str) -> str:
    """The runtime's error for a mode it does not know."""
    if b.invalid_mode_quoted:
        return f'invalid mode "{mode}"'  # v1.19.0:internal/modifier/factory.go
    return f"invalid runtime mode: {mode}"  # v1.10.0:cmd/nvidia-container-runtime/runtime_factory.go


def mode_known(b: Behaviour, mode: str) -> bool:
    """Whether this release's runtime implements ``mode``."""
    if mode in {"legacy", "csv"}:
        return True
    if mode == "cdi":
        return b.cdi_mode
    if mode == "jit-cdi":
        return b.jit_cdi_mode
    return False


def cdi_names(b: Behaviour, devices: tuple[str, ...], kind: str, *, dedup: bool) -> tuple[str, ...]:
    """Qualify each request with ``kind`` (v1.13+ env path / v1.18+ all sources)."""
    out: list[str] = []
    seen: set[str] = set()
    rules = b.cdi_name_rules
    for raw in devices:
        name = "none" if raw == "" and b.none_as_none else raw  # v1.18.2:internal/modifier/cdi.go
        if not is_qualified(name, rules):
            name = f"{kind}={name}"
        if dedup:
            if name in seen:
                continue
            seen.add(name)
        out.append(name)
    return tuple(out)


def jit_automatic(b: Behaviour, name: str) -> bool:
    """Whether a CDI name triggers in-memory spec generation (``runtime.nvidia.com/gpu``)."""
    if b.jit_cdi_mode:
        return name.startswith(JIT_PREFIX)  # v1.18.0:internal/modifier/cdi.go filterAutomaticDevices
    # v1.15.0:internal/modifier/cdi.go uses parser.ParseDevice: an empty device name does not count.
    return name.startswith(JIT_PREFIX) and len(name) > len(JIT_PREFIX)
