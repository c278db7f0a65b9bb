"""The NVIDIA Container Toolkit's settings, as the toolkit itself reads them.

``ToolkitConfig`` holds the effective values of the ``config.toml`` keys that
decide GPU exposure, after the toolkit's own placement rules and built-in
defaults (see ``gpuguard.engine.toolkit.config``). ``ignored`` keeps the keys
that were written but that the toolkit never reads (a top-level key placed
under a ``[table]``), because that is exactly the mistake users make.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from gpuguard.model.version import Version


@dataclass(frozen=True, slots=True)
class IgnoredKey:
    """A key present in config.toml that the toolkit does not read where it stands."""

    path: str  # dotted TOML path as written, e.g. "nvidia-ctk.swarm-resource"
    belongs_at: str | None  # where the toolkit would read it, e.g. the root table; None for unknown keys
    why: str


@dataclass(frozen=True, slots=True)
class ToolkitConfig:
    """Effective values of the keys that decide exposure (defaults of v1.20)."""

    accept_envvar_unprivileged: bool = True
    accept_volume_mounts: bool = False
    swarm_resource: str = ""
    supported_driver_capabilities: str = "compat32,compute,display,graphics,ngx,utility,video"
    disable_require: bool = False
    mode: str = "auto"
    cdi_default_kind: str = "nvidia.com/gpu"
    cdi_annotation_prefixes: tuple[str, ...] = ("cdi.k8s.io/",)
    skip_mode_detection: bool = False
    ignore_imex_channel_requests: bool = False
    disable_imex_channel_creation: bool = False
    # [nvidia-container-cli] alpha-merge-visible-devices-envvars (toolkit v1.1.0..v1.2.x only).
    alpha_merge_visible_devices_envvars: bool = False
    # Keys set explicitly in the file (dotted paths where the toolkit reads them).
    explicit: frozenset[str] = frozenset()
    ignored: tuple[IgnoredKey, ...] = field(default=())
    # Values of ignored keys the toolkit would read elsewhere (IgnoredKey.path -> value), so the
    # engine can tell whether the misplaced key would have changed the outcome.
    ignored_values: tuple[tuple[str, object], ...] = ()


@dataclass(frozen=True, slots=True)
class Driver:
    """The node's driver, for ``NVIDIA_REQUIRE_*`` checks; unknown fields are None."""

    version: str | None = None  # e.g. "550.54.15"
    cuda: str | None = None  # highest CUDA version the driver supports, e.g. "12.4"
    brand: str | None = None  # e.g. "tesla"
    arch: str | None = None  # compute capability, e.g. "9.0"


@dataclass(frozen=True, slots=True)
class Platform:
    """What the toolkit's platform detection would find on the node."""

    nvml: bool = True
    tegra: bool = False
    wsl: bool = False
    integrated_gpu: bool = False
    driver: Driver = field(default_factory=Driver)


@dataclass(frozen=True, slots=True)
class Toolkit:
    """One toolkit installation: its release, its configuration and its platform."""

    version: Version
    config: ToolkitConfig
    platform: Platform = field(default_factory=Platform)
