"""The NVIDIA k8s-device-plugin's Allocate response, version by version.

The response is what kubelet hands the CRI runtime for one container: env
vars, ``/dev/null`` mounts, CDI annotations, CDI device names and device
nodes. The toolkit later reads the env and mounts, and the CRI runtime the CDI
names, so the exact strings matter. Boundaries are cited as ``tag:path`` of
NVIDIA/k8s-device-plugin.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache

from gpuguard.engine.paths import join as join_path
from gpuguard.model.container import Mount
from gpuguard.model.errors import InputError
from gpuguard.model.node import DevicePlugin, Gpu
from gpuguard.model.version import Version, v

ENVVAR = "envvar"
VOLUME_MOUNTS = "volume-mounts"
CDI_ANNOTATIONS = "cdi-annotations"
CDI_CRI = "cdi-cri"

VISIBLE_DEVICES = "NVIDIA_VISIBLE_DEVICES"
IMEX_CHANNELS = "NVIDIA_IMEX_CHANNELS"
DEVICES_ROOT = "/var/run/nvidia-container-devices"
DEV_NULL = "/dev/null"
CDI_VENDOR = "k8s.device-plugin.nvidia.com"
DEFAULT_CDI_ANNOTATION_PREFIX = "cdi.k8s.io/"
# The real key ends in a random uuid.New() per response; only its prefix matters downstream.
ANNOTATION_KEY = "nvidia-device-plugin_<response-uuid>"
CONTROL_NODES = ("/dev/nvidiactl", "/dev/nvidia-uvm", "/dev/nvidia-uvm-tools", "/dev/nvidia-modeset")
IMEX_CHANNEL_DIR = "/dev/nvidia-caps-imex-channels"

OLDEST = v("0.7.0")
NEWEST_MINOR = (0, 20)
V0_9 = v("0.9.0")  # v0.9.0:main.go: --device-id-strategy, env DEVICE_*_STRATEGY via urfave/cli
V0_12 = v("0.12.0")  # v0.12.0:cmd/nvidia-device-plugin/server.go: index ids via Devices().Subset (a map)
V0_13 = v("0.13.0")  # v0.13.0:cmd/nvidia-device-plugin/server.go: NVIDIA_GDS / NVIDIA_MOFED envs
V0_14 = v("0.14.0")  # v0.14.0:api/config/v1/strategy.go: strategy list, cdi-annotations
V0_15 = v("0.15.0")  # v0.15.0:api/config/v1/consts.go: cdi-cri; Envs map always allocated
V0_16 = v("0.16.0")  # v0.16.0:internal/plugin/server.go: AllCDIEnabled() stops the response early
V0_17 = v("0.17.0")  # v0.17.0:internal/plugin/server.go: IMEX channels (env, mounts, CDI, specs)
V0_18 = v("0.18.0")  # v0.18.0:internal/plugin/server.go: uniqueDeviceIDs...; gdrcopy
V0_19 = v("0.19.0")  # v0.19.0:internal/plugin/server.go: feature envs set before the all-CDI return


@dataclass(frozen=True, slots=True)
class DeviceSpec:
    """One device node the plugin asks kubelet to add (PASS_DEVICE_SPECS)."""

    container_path: str
    host_path: str
    permissions: str = "rw"


@dataclass(frozen=True, slots=True)
class Allocation:
    """One ContainerAllocateResponse.

    ``envs`` keeps a fixed order for readability; upstream it is a Go map, so
    kubelet's order is random, which never matters because the keys differ.
    ``ids`` are the device ids as the plugin wrote them (uuid or index).
    ``error`` is set when Allocate itself fails (the pod then fails admission).
    """

    envs: tuple[tuple[str, str], ...] = ()
    mounts: tuple[Mount, ...] = ()
    annotations: Mapping[str, str] = field(default_factory=dict)
    cdi_devices: tuple[str, ...] = ()
    device_specs: tuple[DeviceSpec, ...] = ()
    ids: tuple[str, ...] = ()
    error: str | None = None
    notes: tuple[str, ...] = ()

    def env(self, name: str) -> str | None:
        for key, value in self.envs:
            if key == name:
                return value
        return None


def check_version(version: Version) -> None:
    """Refuse versions whose Allocate behaviour we have not read (v0.7.0 … v0.20.x)."""
    if version < OLDEST or (version.major, version.minor) > NEWEST_MINOR:
        raise InputError("devicePlugin.version", f"{version} is outside the modelled range v0.7.0 … v0.20.x")


def valid_strategies(version: Version) -> tuple[str, ...]:
    """The ``--device-list-strategy`` values a release accepts."""
    if version >= V0_15:
        return (ENVVAR, VOLUME_MOUNTS, CDI_ANNOTATIONS, CDI_CRI)
    if version >= V0_14:
        return (ENVVAR, VOLUME_MOUNTS, CDI_ANNOTATIONS)
    return (ENVVAR, VOLUME_MOUNTS)


def parse_list_strategy(text: str, version: Version) -> tuple[str, ...]:
    """Parse ``DEVICE_LIST_STRATEGY`` as the given release does.

    Before v0.14.0 the flag is one string compared exactly (v0.13.0:cmd/
    nvidia-device-plugin/main.go), so ``envvar,volume-mounts`` is invalid.
    From v0.14.0 it is a urfave/cli string slice: split on ``,`` and each item
    trimmed (v0.20.0:vendor/github.com/urfave/cli/v2/flag_string_slice.go),
    then each must be a known strategy, case-sensitive
    (v0.20.0:api/config/v1/strategy.go). An empty item is invalid. Note that
    v0.7.x/v0.8.x read only the ``--device-list-strategy`` flag, not the env var.
    """
    check_version(version)
    valid = valid_strategies(version)
    where = "devicePlugin.DEVICE_LIST_STRATEGY"
    if version < V0_14:
        if text not in valid:
            raise InputError(
                where,
                f"invalid --device-list-strategy option: {text!r} (v{version}: {'|'.join(valid)})",
            )
        return (text,)
    items = tuple(item.strip() for item in text.split(","))
    for item in items:
        if item not in valid:
            raise InputError(where, f"invalid strategy: {item!r} (v{version} accepts {', '.join(valid)})")
    seen: list[str] = []
    for item in items:
        if item not in seen:
            seen.append(item)
    return tuple(seen)


@dataclass(frozen=True, slots=True)
class _Era:
    """Which boundaries a release has crossed, computed once per version."""

    id_strategy: bool
    map_order: bool
    features: bool
    strategy_list: bool
    envs_map: bool
    all_cdi_stops: bool
    imex: bool
    dedup: bool
    early_features: bool
    host_is_path: bool


@lru_cache(maxsize=64)
def _era(version: Version) -> _Era:
    return _Era(
        id_strategy=version >= V0_9,
        map_order=version >= V0_12,
        features=version >= V0_13,
        strategy_list=version >= V0_14,
        envs_map=version >= V0_15,
        all_cdi_stops=version >= V0_16,
        imex=version >= V0_17,
        dedup=version >= V0_18,
        early_features=version >= V0_19,
        host_is_path=version < V0_9,
    )


def _device_ids(plugin: DevicePlugin, era: _Era, devices: Sequence[Gpu]) -> tuple[str, ...]:
    index = plugin.id_strategy == "index" and era.id_strategy
    ids = [d.index if index else d.uuid.split("::", 1)[0] for d in devices]
    if not era.dedup:
        return tuple(ids)
    unique: list[str] = []
    for i in ids:
        if i not in unique:
            unique.append(i)
    return tuple(unique)


def _device_paths(gpu: Gpu) -> tuple[str, ...]:
    if gpu.paths:
        return gpu.paths
    return (f"/dev/nvidia{gpu.index}",) if gpu.index.isdigit() else ()


def _device_specs(plugin: DevicePlugin, era: _Era, devices: Sequence[Gpu]) -> tuple[DeviceSpec, ...]:
    # The control nodes are passed only if they exist in the plugin container; we assume they do.
    paths = list(CONTROL_NODES)
    for gpu in devices:
        for p in _device_paths(gpu):
            paths.append(p)
    if era.imex:
        paths.extend(f"{IMEX_CHANNEL_DIR}/channel{c}" for c in plugin.imex_channel_ids)
    if era.host_is_path:  # v0.7.0:server.go: HostPath is the container path itself
        return tuple(DeviceSpec(p, p) for p in paths)
    return tuple(DeviceSpec(p, join_path(plugin.dev_root, p)) for p in paths)


def _cdi_names(plugin: DevicePlugin, era: _Era, ids: Sequence[str]) -> list[str]:
    names = [f"{CDI_VENDOR}/gpu={i}" for i in ids]
    if era.imex:
        names.extend(f"{CDI_VENDOR}/imex-channel={c}" for c in plugin.imex_channel_ids)
    # v0.18.0:internal/cdi/cdi.go AdditionalDevices(): gdrcopy, gds, mofed (when their spec exists).
    if plugin.gdrcopy and era.dedup:  # gdrcopy arrived with the de-duplication, in v0.18.0
        names.append(f"{CDI_VENDOR}/gdrcopy=all")
    if plugin.gds and era.features:
        names.append(f"{CDI_VENDOR}/gds=all")
    if plugin.mofed and era.features:
        names.append(f"{CDI_VENDOR}/mofed=all")
    return names


def _feature_envs(plugin: DevicePlugin, era: _Era) -> list[tuple[str, str]]:
    envs: list[tuple[str, str]] = []
    if plugin.gdrcopy and era.dedup:
        envs.append(("NVIDIA_GDRCOPY", "enabled"))
    if plugin.gds and era.features:
        envs.append(("NVIDIA_GDS", "enabled"))
    if plugin.mofed and era.features:
        envs.append(("NVIDIA_MOFED", "enabled"))
    return envs


@lru_cache(maxsize=64)
def _check_plugin(version: Version, strategies: tuple[str, ...]) -> None:
    check_version(version)
    valid = valid_strategies(version)
    for s in strategies:
        if s not in valid:
            raise InputError("devicePlugin.list_strategies", f"{s!r} is not a strategy of v{version}")


def allocate(plugin: DevicePlugin, devices: Sequence[Gpu]) -> Allocation:
    """The Allocate response for one container that was given ``devices``."""
    version = plugin.version
    strategies = plugin.list_strategies
    _check_plugin(version, strategies)
    era = _era(version)
    if not era.strategy_list and len(strategies) != 1:
        raise InputError("devicePlugin.list_strategies", f"v{version} takes exactly one strategy")
    if plugin.id_strategy not in ("uuid", "index"):
        raise InputError("devicePlugin.id_strategy", f"invalid --device-id-strategy option: {plugin.id_strategy!r}")
    notes: list[str] = []
    if plugin.id_strategy == "index" and not era.id_strategy:
        notes.append(f"v{version} has no --device-id-strategy; ids are UUIDs")
    if plugin.id_strategy == "index" and len(devices) > 1 and era.map_order:
        notes.append("index ids come from a Go map upstream: their order is not deterministic")

    ids = _device_ids(plugin, era, devices)
    any_cdi = any(s.startswith("cdi-") for s in strategies)
    all_cdi = all(s.startswith("cdi-") for s in strategies)
    envs: dict[str, str] = {}
    annotations: dict[str, str] = {}
    cdi_devices: tuple[str, ...] = ()
    mounts: list[Mount] = []
    specs: tuple[DeviceSpec, ...] = ()

    if any_cdi:
        names = _cdi_names(plugin, era, ids)
        if names:
            if CDI_ANNOTATIONS in strategies:
                # cdiapi.UpdateAnnotations(…, "nvidia-device-plugin", uuid, devices), prefix swapped.
                annotations[plugin.cdi_annotation_prefix + ANNOTATION_KEY] = ",".join(names)
            if CDI_CRI in strategies:
                cdi_devices = tuple(names)

    if era.early_features:
        envs.update(_feature_envs(plugin, era))
    if all_cdi and era.all_cdi_stops:
        return Allocation(tuple(envs.items()), (), annotations, cdi_devices, (), ids, None, tuple(notes))

    if ENVVAR in strategies:
        envs[VISIBLE_DEVICES] = ",".join(ids)
        if era.imex and plugin.imex_channel_ids:
            envs[IMEX_CHANNELS] = ",".join(plugin.imex_channel_ids)
    if VOLUME_MOUNTS in strategies:
        # The placeholder overwrites the envvar strategy's value when both are set.
        envs[VISIBLE_DEVICES] = DEVICES_ROOT
        mounts.extend(Mount(DEV_NULL, join_path(DEVICES_ROOT, i)) for i in ids)
        if era.imex:
            mounts.extend(Mount(DEV_NULL, join_path(DEVICES_ROOT, "imex", c)) for c in plugin.imex_channel_ids)
    if plugin.pass_device_specs:
        specs = _device_specs(plugin, era, devices)
    if not era.early_features:
        features = _feature_envs(plugin, era)
        if features and not era.envs_map and ENVVAR not in strategies and VOLUME_MOUNTS not in strategies:
            # v0.14.x: Envs is nil unless a non-CDI strategy set it; the write panics the plugin.
            return Allocation(error="device plugin panics writing NVIDIA_GDS/NVIDIA_MOFED into a nil env map")
        envs.update(features)
    return Allocation(tuple(envs.items()), tuple(mounts), annotations, cdi_devices, specs, ids, None, tuple(notes))
