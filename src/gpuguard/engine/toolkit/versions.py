"""Every toolkit version boundary the engine models, in one place.

The rest of ``gpuguard.engine.toolkit`` never compares versions: it reads the
``Behaviour`` of a release, derived once per version and cached, so that a
boundary is written (and checked against upstream) exactly once. Evidence
is cited as ``tag:path`` of NVIDIA/nvidia-container-toolkit.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from gpuguard.model.errors import InputError
from gpuguard.model.version import Version, VersionError, v

OLDEST = v("1.0.5")
NEWEST = v("1.20.0")  # newest modelled release; 1.20.x patch releases behave the same


def parse_toolkit_version(text: str) -> Version:
    """Parse a toolkit release, refusing garbage and releases we do not model."""
    try:
        version = Version.parse(text)
    except VersionError as exc:
        raise InputError("toolkit.version", str(exc)) from None
    if version < OLDEST or (version.major, version.minor) > (NEWEST.major, NEWEST.minor):
        raise InputError(
            "toolkit.version",
            f"{text!r} is outside the modelled range {OLDEST}..{NEWEST.major}.{NEWEST.minor}.x",
        )
    return version


@dataclass(frozen=True, slots=True, eq=False)  # identity hash: one cached instance per release
class Behaviour:
    """What one toolkit release does, as flags named after each boundary."""

    version: Version
    hook_name: str
    # v1.1.0:pkg/container_config.go — MIG config/monitor need CAP_SYS_ADMIN.
    mig_privilege_check: bool
    # v1.1.0:pkg/hook_config.go — [nvidia-container-cli] alpha-merge-visible-devices-envvars (gone in v1.3.0).
    alpha_merge_envvars: bool
    # v1.3.0:pkg/container_config.go — accept-* keys, mounts read first, privilege gate.
    privilege_gate: bool
    # v1.3.0..v1.4.0 panic on a gated request; v1.4.1:pkg/container_config.go only logs.
    gate_fails_container: bool
    # v1.3.0:pkg/container_config.go loop lacks `break` (last present var wins); fixed v1.5.1.
    swarm_first: bool
    # v1.3.0:pkg/capabilities.go adds ngx.
    all_caps: str
    # v1.4.0:pkg/container_config.go default "utility,compute" (was "utility").
    default_caps: str
    # "cli" (<1.7: capabilityToCLI panics), "string" (1.7–1.13), "set" (1.14+, b18ac09f).
    caps_era: str
    # v1.7.0:cmd/nvidia-container-toolkit/hook_config.go supported-driver-capabilities.
    supported_caps_key: bool
    # v1.10.0: nvidia-container-runtime modes; hook checks the mode.
    runtime_modes: bool
    # v1.10.0:internal/config/image/cuda_image.go: semver CUDA_VERSION, JETPACK skipped, env error text.
    semver_cuda_version: bool
    require_skips_jetpack: bool
    # v1.10.0..v1.13.x: hook mode check before reading the container (every container).
    hook_mode_check_early: bool
    # v1.14.0-rc.1:cmd/nvidia-container-runtime-hook/main.go: check after devices, with the image.
    hook_mode_check_late: bool
    # v1.13.0:cmd/nvidia-container-runtime-hook/main.go [nvidia-container-runtime-hook] skip-mode-detection.
    skip_mode_detection_key: bool
    # v1.11.0:internal/modifier/cdi.go
    cdi_mode: bool
    # CDI name rules: 1 = v1.11 (name starts with a letter), 2 = v1.12–1.13 (letter or digit),
    # 3 = v1.14+ (class may hold '.').
    cdi_name_rules: int
    # v1.12.0:internal/config/image/devices.go token parsing; comma-separated swarm-resource.
    token_parsing: bool
    # v1.13.0:internal/modifier/cdi.go: annotations win, configurable prefixes/default-kind, env gated.
    cdi_annotations_first: bool
    # v1.13.0: nvidia-container-runtime.cdi / .legacy executables (WithModeOverride).
    forced_mode_executables: bool
    # v1.14.0:internal/info/auto.go auto→cdi; "env" (1.14), "env+mounts" (1.15–1.17), "visible" (1.18+).
    auto_cdi: str
    # v1.14.0:internal/config/image/cuda_image.go GetRequirements empties the list when disabled.
    disable_require_empties: bool
    # v1.14.0:internal/runtime/runtime_factory.go builds the image (parses env) in every mode.
    runtime_parses_env: bool
    # v1.14.0: platform "uses nvgpu module" / integrated GPU resolves to csv.
    integrated_is_csv: bool
    # v1.16.0: go-nvlib ResolvePlatform (WSL first, unknown platform → default mode).
    wsl_platform: bool
    # v1.15.0:internal/modifier/cdi.go: cdi/ mounts in cdi mode; runtime.nvidia.com/gpu generated in memory.
    cdi_mount_requests: bool
    jit_names: bool
    # "" (<1.15), "verbatim" (v1.15.0-rc.4..1.16.x), "gated" (v1.17.0+).
    imex: str
    # v1.17.2:internal/config/image/cuda_image.go drops a bare ["all"].
    imex_drop_bare_all: bool
    # v1.17.5:internal/config/features.go ignore-imex-channel-requests.
    imex_ignore_key: bool
    # v1.17.0:internal/config/features.go disable-imex-channel-creation.
    imex_creation_key: bool
    # v1.17.0:internal/config/image/cuda_image.go DevicesFromMounts: dedup, hook skips cdi/ and imex/.
    mount_dedup: bool
    # v1.18.0:internal/config/image/cuda_image.go one VisibleDevices(): annotations → mounts → env.
    unified_visible_devices: bool
    # v1.18.0:internal/info/auto.go default mode of the runtime.
    runtime_default_mode: str
    jit_cdi_mode: bool
    # v1.18.0..v1.18.1 map "" to "<kind>=" (jit-cdi: all GPUs); v1.18.2:internal/modifier/cdi.go "none".
    none_as_none: bool
    # v1.19.0:internal/runtime/runtime_factory.go WithPreferredVisibleDevicesEnvVars(cfg.SwarmResource).
    runtime_swarm: bool
    # v1.19.0:internal/modifier/factory.go validate(): `invalid mode "x"`.
    invalid_mode_quoted: bool


def _b(version: Version) -> Behaviour:
    ge = version.__ge__
    return Behaviour(
        version=version,
        hook_name="nvidia-container-runtime-hook" if ge(v("1.11.0")) else "nvidia-container-toolkit",
        mig_privilege_check=ge(v("1.1.0")),
        alpha_merge_envvars=ge(v("1.1.0")) and not ge(v("1.3.0")),
        privilege_gate=ge(v("1.3.0")),
        gate_fails_container=ge(v("1.3.0")) and not ge(v("1.4.1")),
        swarm_first=not ge(v("1.3.0")) or ge(v("1.5.1")),
        all_caps=(
            "compute,compat32,graphics,utility,video,display,ngx"
            if ge(v("1.3.0"))
            else "compute,compat32,graphics,utility,video,display"
        ),
        default_caps="utility,compute" if ge(v("1.4.0")) else "utility",
        caps_era="set" if ge(v("1.14.0")) else "string" if ge(v("1.7.0")) else "cli",
        supported_caps_key=ge(v("1.7.0")),
        runtime_modes=ge(v("1.10.0")),
        semver_cuda_version=ge(v("1.10.0")),
        require_skips_jetpack=ge(v("1.10.0")),
        hook_mode_check_early=ge(v("1.10.0")) and not ge(v("1.14.0-rc.1")),
        hook_mode_check_late=ge(v("1.14.0-rc.1")),
        skip_mode_detection_key=ge(v("1.13.0")),
        cdi_mode=ge(v("1.11.0")),
        cdi_name_rules=3 if ge(v("1.14.0")) else 2 if ge(v("1.12.0")) else 1,
        token_parsing=ge(v("1.12.0")),
        cdi_annotations_first=ge(v("1.13.0")),
        forced_mode_executables=ge(v("1.13.0")),
        auto_cdi=(
            "visible" if ge(v("1.18.0")) else "env+mounts" if ge(v("1.15.0")) else "env" if ge(v("1.14.0")) else ""
        ),
        disable_require_empties=ge(v("1.14.0")),
        runtime_parses_env=ge(v("1.14.0")),
        integrated_is_csv=ge(v("1.14.0")),
        wsl_platform=ge(v("1.16.0")),
        cdi_mount_requests=ge(v("1.15.0")),
        jit_names=ge(v("1.15.0")),
        imex="gated" if ge(v("1.17.0")) else "verbatim" if ge(v("1.15.0-rc.4")) else "",
        imex_drop_bare_all=ge(v("1.17.2")),
        imex_ignore_key=ge(v("1.17.5")),
        imex_creation_key=ge(v("1.17.0")),
        mount_dedup=ge(v("1.17.0")),
        unified_visible_devices=ge(v("1.18.0")),
        runtime_default_mode="jit-cdi" if ge(v("1.18.0")) else "legacy",
        jit_cdi_mode=ge(v("1.18.0")),
        none_as_none=ge(v("1.18.2")),
        runtime_swarm=ge(v("1.19.0")),
        invalid_mode_quoted=ge(v("1.19.0")),
    )


@lru_cache(maxsize=256)
def behaviour(version: Version) -> Behaviour:
    """The cached behaviour of one release (one derivation per version)."""
    return _b(version)


# config.toml keys the engine models: dotted path where the toolkit reads it → (first release, release
# that dropped it). Evidence: the `toml:"…"` tags of the hook/runtime config structs at each tag
# (v1.3.0:pkg/hook_config.go, v1.7.0:cmd/nvidia-container-toolkit/hook_config.go,
# v1.10.0:internal/config/runtime.go,
# v1.13.0:internal/config/*.go, v1.17.0/v1.17.5:internal/config/features.go, v1.1.0:pkg/hook_config.go).
CONFIG_KEYS: dict[str, tuple[Version, Version | None]] = {
    "accept-nvidia-visible-devices-envvar-when-unprivileged": (v("1.3.0"), None),
    "accept-nvidia-visible-devices-as-volume-mounts": (v("1.3.0"), None),
    "swarm-resource": (OLDEST, None),
    "supported-driver-capabilities": (v("1.7.0"), None),
    "disable-require": (OLDEST, None),
    "nvidia-container-runtime.mode": (v("1.10.0"), None),
    "nvidia-container-runtime.modes.cdi.default-kind": (v("1.13.0"), None),
    "nvidia-container-runtime.modes.cdi.annotation-prefixes": (v("1.13.0"), None),
    "nvidia-container-runtime-hook.skip-mode-detection": (v("1.13.0"), None),
    "features.disable-imex-channel-creation": (v("1.17.0"), None),
    "features.ignore-imex-channel-requests": (v("1.17.5"), None),
    "nvidia-container-cli.alpha-merge-visible-devices-envvars": (v("1.1.0"), v("1.3.0")),
}


@lru_cache(maxsize=256)
def config_keys(version: Version) -> frozenset[str]:
    """The modelled config keys this release reads."""
    return frozenset(
        key for key, (since, until) in CONFIG_KEYS.items() if version >= since and (until is None or version < until)
    )


@lru_cache(maxsize=256)
def default_supported_caps(version: Version) -> str:
    """Built-in ``supported-driver-capabilities``: the release's full list."""
    if version >= v("1.14.0"):
        # v1.14.0: the sorted DriverCapabilities.String()
        return "compat32,compute,display,graphics,ngx,utility,video"
    return behaviour(version).all_caps
