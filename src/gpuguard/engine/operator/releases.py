"""GPU Operator releases v22.9.0 .. v26.7.0 as data, and the component boundaries they depend on.

Every "since vX" the operator model needs is a named constant here, so a new
release is a new row and a changed rule is a changed constant. The rows were
copied from ``version_matrix.json`` (one record per tag) and checked against
the operator's ``controllers/object_controls.go``, its asset DaemonSets and the
chart ``values.yaml`` at each tag; the project does not read that file at run time.
"""

from __future__ import annotations

from dataclasses import dataclass

from gpuguard.model.errors import InputError
from gpuguard.model.node import CHART_DEVICE_PLUGIN_ENV
from gpuguard.model.version import Version, v

# --- GPU Operator boundaries -------------------------------------------------------------------

CDI_FIELD = v("23.3.0")  # spec.cdi.{enabled,default}; cdi.enabled=true forces the strategy
TOOLKIT_ASSET_NVD_VOID = v("23.3.2")  # toolkit asset sets NVIDIA_VISIBLE_DEVICES=void for itself
PSA_FIELD = v("23.6.0")  # chart psa.enabled
MPS_ROOT_ASSET = v("24.3.0")  # device-plugin asset sets MPS_ROOT; spec.devicePlugin.mps.root
CDI_HOOK_PATH_ENV = v("24.6.0")  # NVIDIA_CDI_HOOK_PATH replaces NVIDIA_CTK_PATH on the device plugin
TOOLKIT_PID_FILE_ASSET = v("24.6.0")  # toolkit asset sets TOOLKIT_PID_FILE
RUNTIME_ARGS_DROPPED = v("25.3.0")  # toolkit asset no longer sets RUNTIME_ARGS
CHART_DEFAULT_RUNTIME_DROPPED = v("25.3.0")  # chart values lose operator.defaultRuntime
USER_ENV_WINS = v("25.3.3")  # commit 825a4c38: user env applied after the CDI transform
CHART_DEVICE_PLUGIN_ENV_EMPTY = v("25.3.3")  # commit 1a1a5a1e: chart devicePlugin.env: []
RUNTIME_ENV_AFTER_USER_AGAIN = v("25.3.4")  # 25.3.3 alone applied user env after RUNTIME/CONTAINERD_RUNTIME_CLASS
CDI_DEFAULT_ON = v("25.10.0")  # commit 67d2e125: cdi.enabled nil -> true; nvidia not default; cdi.default no-op
NRI_PLUGIN = v("26.3.0")  # spec.cdi.nriPluginEnabled
NRI_REQUIRES_TOOLKIT = v("26.7.0")  # validateClusterPolicySpec also rejects NRI with toolkit.enabled=false

FIRST_LINE = v("22.9.0")
LAST_LINE = v("26.7.0")

# --- NVIDIA Container Toolkit installer (the toolkit container) boundaries ---------------------

TK_ACCEPT_ENV = v("1.11.0")  # ACCEPT_NVIDIA_VISIBLE_DEVICES_* honoured by the toolkit container
TK_CRIO_CONFIG_MODE_ENV = v("1.12.0")  # CRIO_CONFIG_MODE (hook | config)
TK_MODE_ENV = v("1.13.0")  # NVIDIA_CONTAINER_RUNTIME_MODE*, annotation prefixes, skip-mode-detection, CDI_ENABLED
TK_MODE_HANDLERS = v("1.13.0")  # nvidia-cdi and nvidia-legacy handlers
TK_NVIDIA_RUNTIME_ENV = v("1.13.3")  # NVIDIA_RUNTIME_SET_AS_DEFAULT / NVIDIA_RUNTIME_NAME (looked up first)
TK_NO_EXPERIMENTAL = v("1.14.0")  # nvidia-experimental handler removed
TK_EMPTY_BOOL_IS_FALSE = v("1.14.6")  # urfave/cli >= 2.27: a boolean env set to "" means false
TK_OPT_IN_FEATURES = v("1.17.0")  # NVIDIA_CONTAINER_TOOLKIT_OPT_IN_FEATURES -> [features]
TK_RUNTIME_ENABLE_CDI = v("1.17.5")  # installer sets containerd enable_cdi (RUNTIME_ENABLE_CDI, else CDI_ENABLED)
TK_CRIO_CONFIG_DEFAULT = v("1.18.0")  # cri-o default config mode "config" (was "hook")
TK_NRI_PLUGIN = v("1.19.0")  # ENABLE_NRI_PLUGIN
TK_NRI_ANY_NAMESPACE = v(
    "1.20.0"
)  # NRI: non-management devices from any namespace; NRI_MANAGEMENT_CDI_DEVICE_NAMESPACES

# --- k8s-device-plugin boundaries ----------------------------------------------------------------

DP_CDI_ANNOTATIONS = v("0.14.0")  # strategy cdi-annotations; comma-separated strategy list
DP_EMPTY_BOOL_IS_FALSE = v("0.14.5")  # urfave/cli >= 2.27
DP_CDI_CRI = v("0.15.0")  # strategy cdi-cri
DP_GDRCOPY_FLAG = v("0.18.0")  # GDRCOPY_ENABLED
DP_EXTRAS_DEFAULT_ON = (v("0.19.0"), v("0.19.3"))  # GDS/MOFED/GDRCopy default true in [0.19.0, 0.19.3)

CDI_ENV_WINS = "cdi_env_wins"
USER_ENV_WINS_NAME = "user_env_wins"

# Steps of the controller's transforms, in the order a release applies them.
USER = "user env"
CDI = "cdi transform"
RUNTIME = "runtime transform"
INSTALL_DIR = "installDir transform"
EXTRAS = "gds/gdrcopy transform"
MIG = "mig transform"
MPS = "mps transform"

MANAGEMENT_KIND = "management.nvidia.com/gpu"
OPERATOR_NAMESPACE_REF = "$(metadata.namespace)"  # NRI_NAMESPACE comes from a fieldRef


@dataclass(frozen=True, slots=True)
class Release:
    """What one operator release ships and how its controller renders the operands."""

    tag: str
    version: Version
    date: str
    toolkit: Version  # bundled container-toolkit image tag
    device_plugin: Version  # bundled k8s-device-plugin image tag
    cdi_field: bool  # spec.cdi.enabled exists
    cdi_default_field: bool  # chart values carry cdi.default
    nri_field: bool  # spec.cdi.nriPluginEnabled exists
    chart_cdi_enabled: bool | None  # chart default of cdi.enabled (None: no field)
    cdi_nil_means: bool | None  # IsEnabled() for an absent cdi.enabled
    cdi_strategy: str | None  # DEVICE_LIST_STRATEGY forced when CDI is on
    cdi_annotation_prefix: str | None  # CDI_ANNOTATION_PREFIX forced on the device plugin when CDI is on
    toolkit_cdi_annotation_prefixes: str | None  # NVIDIA_CONTAINER_RUNTIME_MODES_CDI_ANNOTATION_PREFIXES on CDI
    cdi_sets_runtime_not_default: bool  # CDI sets NVIDIA_RUNTIME_SET_AS_DEFAULT=false and mode cdi
    cdi_mode_only_if_default: bool  # runtime mode cdi only with cdi.default=true
    precedence: str | None  # user env vs the CDI transform: cdi_env_wins / user_env_wins
    toolkit_env_order: tuple[str, ...]
    device_plugin_env_order: tuple[str, ...]
    crio_hook_when_cdi_off: bool  # sets CRIO_CONFIG_MODE=hook on cri-o with CDI off
    cdi_hook_path_env: str  # NVIDIA_CTK_PATH or NVIDIA_CDI_HOOK_PATH
    sets_gdrcopy: bool  # spec.gdrcopy.enabled -> GDRCOPY_ENABLED
    nri_requires_toolkit: bool
    chart_device_plugin_env: tuple[tuple[str, str], ...]
    chart_default_runtime: str | None  # operator.defaultRuntime in values (ignored by the operator)
    chart_psa_enabled: bool | None
    toolkit_asset_env: tuple[tuple[str, str], ...]
    device_plugin_asset_env: tuple[tuple[str, str], ...]

    @property
    def line(self) -> tuple[int, int]:
        return (self.version.major, self.version.minor)


def _toolkit_asset_env(at: Version) -> tuple[tuple[str, str], ...]:
    if at < CDI_FIELD:
        return (("RUNTIME_ARGS", ""),)
    env = [("ROOT", "/usr/local/nvidia")]
    if at < RUNTIME_ARGS_DROPPED:
        env.append(("RUNTIME_ARGS", ""))
    env.append(("NVIDIA_CONTAINER_RUNTIME_MODES_CDI_DEFAULT_KIND", MANAGEMENT_KIND))
    if at >= TOOLKIT_ASSET_NVD_VOID:
        env.append(("NVIDIA_VISIBLE_DEVICES", "void"))
    if at >= TOOLKIT_PID_FILE_ASSET:
        env.append(("TOOLKIT_PID_FILE", "/run/nvidia/toolkit/toolkit.pid"))
    if at >= NRI_PLUGIN:
        env.append(("NRI_NAMESPACE", OPERATOR_NAMESPACE_REF))
    return tuple(env)


def _device_plugin_asset_env(at: Version) -> tuple[tuple[str, str], ...]:
    if at >= MPS_ROOT_ASSET:
        return (*CHART_DEVICE_PLUGIN_ENV, ("MPS_ROOT", "/run/nvidia/mps"))
    return CHART_DEVICE_PLUGIN_ENV


def _toolkit_order(at: Version) -> tuple[str, ...]:
    if at < USER_ENV_WINS:
        return (USER, CDI, INSTALL_DIR, RUNTIME)
    if at < RUNTIME_ENV_AFTER_USER_AGAIN:
        return (CDI, INSTALL_DIR, RUNTIME, USER)
    return (CDI, INSTALL_DIR, USER, RUNTIME)


def _device_plugin_order(at: Version) -> tuple[str, ...]:
    if at < USER_ENV_WINS:
        return (USER, EXTRAS, MIG, CDI, MPS)
    return (EXTRAS, MIG, CDI, MPS, USER)


def _release(tag: str, date: str, toolkit: str, device_plugin: str) -> Release:
    at = Version.parse(tag)
    has_cdi = at >= CDI_FIELD
    cdi_on_default = at >= CDI_DEFAULT_ON
    return Release(
        tag=tag,
        version=at,
        date=date,
        toolkit=Version.parse(toolkit),
        device_plugin=Version.parse(device_plugin),
        cdi_field=has_cdi,
        cdi_default_field=has_cdi and not cdi_on_default,
        nri_field=at >= NRI_PLUGIN,
        chart_cdi_enabled=cdi_on_default if has_cdi else None,
        cdi_nil_means=cdi_on_default if has_cdi else None,
        cdi_strategy=None if not has_cdi else "cdi-annotations,cdi-cri" if cdi_on_default else "envvar,cdi-annotations",
        cdi_annotation_prefix=None if not has_cdi else "cdi.k8s.io/" if cdi_on_default else "nvidia.cdi.k8s.io/",
        toolkit_cdi_annotation_prefixes="nvidia.cdi.k8s.io/" if has_cdi and not cdi_on_default else None,
        cdi_sets_runtime_not_default=cdi_on_default,
        cdi_mode_only_if_default=has_cdi and not cdi_on_default,
        precedence=None if not has_cdi else USER_ENV_WINS_NAME if at >= USER_ENV_WINS else CDI_ENV_WINS,
        toolkit_env_order=_toolkit_order(at),
        device_plugin_env_order=_device_plugin_order(at),
        crio_hook_when_cdi_off=cdi_on_default,
        cdi_hook_path_env="NVIDIA_CDI_HOOK_PATH" if at >= CDI_HOOK_PATH_ENV else "NVIDIA_CTK_PATH",
        sets_gdrcopy=cdi_on_default,
        nri_requires_toolkit=at >= NRI_REQUIRES_TOOLKIT,
        chart_device_plugin_env=() if at >= CHART_DEVICE_PLUGIN_ENV_EMPTY else CHART_DEVICE_PLUGIN_ENV,
        chart_default_runtime=None if at >= CHART_DEFAULT_RUNTIME_DROPPED else "docker",
        chart_psa_enabled=False if at >= PSA_FIELD else None,
        toolkit_asset_env=_toolkit_asset_env(at),
        device_plugin_asset_env=_device_plugin_asset_env(at),
    )


# tag, date, bundled toolkit, bundled device plugin (version_matrix.json)
_ROWS = (
    ("v22.9.0", "2022-09-30", "v1.11.0-ubuntu20.04", "v0.12.3-ubi8"),
    ("v22.9.1", "2022-12-13", "v1.11.0-ubuntu20.04", "v0.13.0-ubi8"),
    ("v22.9.2", "2023-01-30", "v1.11.0-ubuntu20.04", "v0.13.0-ubi8"),
    ("v23.3.0", "2023-04-04", "v1.13.0-ubuntu20.04", "v0.14.0-ubi8"),
    ("v23.3.1", "2023-04-05", "v1.13.0-ubuntu20.04", "v0.14.0-ubi8"),
    ("v23.3.2", "2023-05-22", "v1.13.0-ubuntu20.04", "v0.14.0-ubi8"),
    ("v23.6.0", "2023-08-04", "v1.13.4-ubuntu20.04", "v0.14.1-ubi8"),
    ("v23.6.1", "2023-08-30", "v1.13.4-ubuntu20.04", "v0.14.1-ubi8"),
    ("v23.6.2", "2023-12-13", "v1.13.4-ubuntu20.04", "v0.14.1-ubi8"),
    ("v23.9.0", "2023-10-20", "v1.14.3-ubuntu20.04", "v0.14.2-ubi8"),
    ("v23.9.1", "2023-12-07", "v1.14.3-ubuntu20.04", "v0.14.3-ubi8"),
    ("v23.9.2", "2024-03-06", "v1.14.6-ubuntu20.04", "v0.14.5-ubi8"),
    ("v24.3.0", "2024-04-29", "v1.15.0-ubuntu20.04", "v0.15.0-ubi8"),
    ("v24.6.0", "2024-07-29", "v1.16.1-ubuntu20.04", "v0.16.1-ubi8"),
    ("v24.6.1", "2024-08-08", "v1.16.1-ubuntu20.04", "v0.16.2-ubi8"),
    ("v24.6.2", "2024-09-24", "v1.16.2-ubuntu20.04", "v0.16.2-ubi8"),
    ("v24.9.0", "2024-10-31", "v1.17.0-ubuntu20.04", "v0.17.0-ubi9"),
    ("v24.9.1", "2024-12-04", "v1.17.3-ubuntu20.04", "v0.17.0"),
    ("v24.9.2", "2025-01-24", "v1.17.4-ubuntu20.04", "v0.17.0"),
    ("v25.3.0", "2025-03-26", "v1.17.5-ubuntu20.04", "v0.17.1"),
    ("v25.3.1", "2025-06-05", "v1.17.8-ubuntu20.04", "v0.17.2"),
    ("v25.3.2", "2025-07-24", "v1.17.8-ubuntu20.04", "v0.17.3"),
    ("v25.3.3", "2025-09-09", "v1.17.8-ubuntu20.04", "v0.17.4"),
    ("v25.3.4", "2025-09-17", "v1.17.8-ubuntu20.04", "v0.17.4"),
    ("v25.10.0", "2025-10-22", "v1.18.0", "v0.18.0"),
    ("v25.10.1", "2025-12-03", "v1.18.1", "v0.18.1"),
    ("v26.3.0", "2026-03-18", "v1.19.0", "v0.19.0"),
    ("v26.3.1", "2026-04-17", "v1.19.0", "v0.19.0"),
    ("v26.3.2", "2026-05-27", "v1.19.1", "v0.19.2"),
    ("v26.3.3", "2026-06-23", "v1.19.1", "v0.19.3"),
    ("v26.7.0", "2026-08-20", "v1.20.0", "v0.20.0"),
)

RELEASES: tuple[Release, ...] = tuple(_release(*row) for row in _ROWS)
NEWEST: Release = RELEASES[-1]


def release(version: Version | str) -> Release:
    """The release a version names; an unknown patch falls back to the nearest lower one of its line."""
    at = parse_operator_version(version)
    line = [r for r in RELEASES if r.line == (at.major, at.minor)]
    if not line:
        known = ", ".join(sorted({f"{r.line[0]}.{r.line[1]}" for r in RELEASES}, key=Version.parse))
        if at < FIRST_LINE:
            why = f"releases before {FIRST_LINE} are not modelled"
        elif at > LAST_LINE:
            why = f"releases after the {LAST_LINE.major}.{LAST_LINE.minor} line are not modelled yet"
        else:
            why = "no such release line"
        raise InputError("operator.version", f"{version!s}: {why} (known lines: {known})")
    lower = [r for r in line if r.version <= at]
    return lower[-1] if lower else line[0]


def parse_operator_version(version: Version | str) -> Version:
    """An operator version from a tag (``v25.3.4``, ``25.10``); ``InputError`` names ``operator.version``."""
    if isinstance(version, Version):
        return version
    try:
        return Version.parse(version)
    except ValueError as exc:
        raise InputError("operator.version", str(exc)) from None
