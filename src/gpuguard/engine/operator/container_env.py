"""The env the operator renders on the toolkit and device plugin containers, in each release's order.

Asset defaults, then the controller's transforms and the user's ``env`` (before 25.3.3 the CDI
transform overwrites the user's ``DEVICE_LIST_STRATEGY``; from 25.3.3 the user wins).
"""

from __future__ import annotations

from collections.abc import Sequence

from gpuguard.engine.operator import releases as r
from gpuguard.engine.operator.releases import Release
from gpuguard.engine.operator.spec import DEFAULT_INSTALL_DIR, DEFAULT_MPS_ROOT, EnvEntry, Spec
from gpuguard.model.node import EnvOverride


class _Env:
    """A container env built with the controller's setContainerEnv: update in place, else append."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.values: dict[str, str] = {}
        self.source: dict[str, str] = {}
        self.where: dict[str, str] = {}
        self.note: dict[str, str] = {}
        self.user_where: dict[str, str] = {}  # names last set by the user's env -> where
        self.overrides: list[EnvOverride] = []  # user values the operator replaced afterwards

    def set(self, name: str, value: str, source: str, where: str | None = None) -> None:
        previous = self.source.get(name)
        self.note[name] = ""
        if previous is not None and self.values[name] != value:
            self.note[name] = f" (overrides {previous}={self.values[name]})"
            if name in self.user_where and where is None:
                container = self.prefix.split(".")[0]
                self.overrides.append(
                    EnvOverride(container, name, self.values[name], self.user_where[name], value, source)
                )
        if where is None:
            self.user_where.pop(name, None)
        else:
            self.user_where[name] = where
        self.values[name] = value
        self.source[name] = source
        if where is None:
            self.where.pop(name, None)
        else:
            self.where[name] = f"{where}.value"

    def user(self, entries: Sequence[EnvEntry]) -> None:
        for entry in entries:
            source = entry.where + (f" ({entry.note})" if entry.note else "")
            self.set(entry.name, entry.value, source, entry.where)

    def origin(self) -> dict[str, str]:
        return {
            f"{self.prefix}.{name}": f"{value}: {self.source[name]}{self.note[name]}"
            for name, value in self.values.items()
        }


def toolkit_env(rel: Release, spec: Spec, kind: str, namespace: str) -> _Env:
    tag = str(rel.version)
    env = _Env("toolkit.env")
    for name, value in rel.toolkit_asset_env:
        env.set(
            name,
            namespace if value == r.OPERATOR_NAMESPACE_REF else value,
            f"asset default of operator {tag}",
        )
    for step in rel.toolkit_env_order:
        if step == r.USER:
            env.user(spec.toolkit_env)
        elif step == r.CDI:
            _toolkit_cdi(rel, spec, kind, env)
        elif step == r.INSTALL_DIR and spec.install_dir != DEFAULT_INSTALL_DIR:
            env.set("ROOT", spec.install_dir, f"set by operator {tag} from spec.toolkit.installDir")
        elif step == r.RUNTIME:
            why = f"set by operator {tag} for the node's runtime"
            env.set("RUNTIME", "crio" if kind == "cri-o" else kind, why)
            if spec.nri:
                env.set("NRI_SOCKET", "/runtime/nri/nri.sock", why)
            elif kind == "containerd":
                env.set(
                    "CONTAINERD_RUNTIME_CLASS",
                    spec.runtime_class,
                    f"set by operator {tag} from spec.operator.runtimeClass",
                )
    return env


def _toolkit_cdi(rel: Release, spec: Spec, kind: str, env: _Env) -> None:
    tag = str(rel.version)
    if not spec.cdi_enabled:
        if kind == "cri-o" and rel.crio_hook_when_cdi_off:
            env.set("CRIO_CONFIG_MODE", "hook", f"forced by operator {tag} because cdi.enabled=false on cri-o")
        return
    why = f"forced by operator {tag} because cdi.enabled=true"
    env.set("CDI_ENABLED", "true", why)
    if rel.cdi_sets_runtime_not_default:
        env.set("NVIDIA_RUNTIME_SET_AS_DEFAULT", "false", why)
        env.set("NVIDIA_CONTAINER_RUNTIME_MODE", "cdi", why)
    elif rel.toolkit_cdi_annotation_prefixes:
        env.set("NVIDIA_CONTAINER_RUNTIME_MODES_CDI_ANNOTATION_PREFIXES", rel.toolkit_cdi_annotation_prefixes, why)
    env.set("CRIO_CONFIG_MODE", "config", why)
    if rel.cdi_mode_only_if_default and spec.cdi_default:
        env.set("NVIDIA_CONTAINER_RUNTIME_MODE", "cdi", f"{why} and cdi.default=true")
    if spec.nri:
        env.set("ENABLE_NRI_PLUGIN", "true", f"forced by operator {tag} because cdi.nriPluginEnabled=true")


def device_plugin_env(rel: Release, spec: Spec) -> _Env:
    tag = str(rel.version)
    env = _Env("devicePlugin.env")
    for name, value in rel.device_plugin_asset_env:
        env.set(name, value, f"asset default of operator {tag}")
    for step in rel.device_plugin_env_order:
        if step == r.USER:
            env.user(spec.device_plugin_env)
        elif step == r.EXTRAS:
            if spec.gds:
                env.set("GDS_ENABLED", "true", f"set by operator {tag} because gds.enabled=true")
                env.set("MOFED_ENABLED", "true", f"set by operator {tag} because gds.enabled=true")
            if spec.gdrcopy and rel.sets_gdrcopy:
                env.set("GDRCOPY_ENABLED", "true", f"set by operator {tag} because gdrcopy.enabled=true")
        elif step == r.MIG and spec.mig_strategy:
            env.set("MIG_STRATEGY", spec.mig_strategy, f"set by operator {tag} from spec.mig.strategy")
        elif step == r.CDI and spec.cdi_enabled:
            why = f"forced by operator {tag} because cdi.enabled=true"
            env.set("CDI_ENABLED", "true", why)
            env.set("DEVICE_LIST_STRATEGY", str(rel.cdi_strategy), why)
            env.set("CDI_ANNOTATION_PREFIX", str(rel.cdi_annotation_prefix), why)
            if spec.toolkit_enabled:
                hook = (
                    "toolkit/nvidia-cdi-hook"
                    if rel.cdi_hook_path_env == "NVIDIA_CDI_HOOK_PATH"
                    else "toolkit/nvidia-ctk"
                )
                env.set(rel.cdi_hook_path_env, f"{spec.install_dir.rstrip('/')}/{hook}", why)
        elif step == r.MPS and spec.mps_root and spec.mps_root != DEFAULT_MPS_ROOT and rel.version >= r.MPS_ROOT_ASSET:
            env.set("MPS_ROOT", spec.mps_root, f"set by operator {tag} from spec.devicePlugin.mps.root")
    return env
