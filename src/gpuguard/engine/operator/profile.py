"""The node a GPU Operator release renders from a ClusterPolicy (or Helm values).

The operator only reaches nodes through two container envs: the toolkit
container's (which the installer turns into config.toml and runtime handlers)
and the device plugin's. So the profile is built the way the controller builds
those envs: the release's asset defaults, then its transforms and the user's
``env`` in that release's order (before 25.3.3 the CDI transform overwrites the
user's ``DEVICE_LIST_STRATEGY``; from 25.3.3 the user wins), then the
installer and the device plugin read them.

``NodeProfile.origin`` keys: ``operator.version``, ``cdi.enabled``, ``cdi.default``,
``cdi.nriPluginEnabled``, ``toolkit.version``, ``devicePlugin.version``,
``toolkit.env.<NAME>`` / ``devicePlugin.env.<NAME>`` (every effective env var),
config.toml keys (``accept-nvidia-visible-devices-envvar-when-unprivileged``, ...),
``runtime.*``, ``nri.*``, ``device_plugin.*``, ``runtimeClasses``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace

from gpuguard.engine.operator import releases as r
from gpuguard.engine.operator.releases import Release, release
from gpuguard.engine.operator.toolkit_env import install, parse_go_bool, runtime_kind
from gpuguard.model.errors import InputError, type_name
from gpuguard.model.node import ContainerRuntime, DevicePlugin, Gpu, NodeProfile, NriPlugin, RuntimeHandler
from gpuguard.model.toolkit import Platform, Toolkit, ToolkitConfig
from gpuguard.model.version import Version, v

DEFAULT_INSTALL_DIR = "/usr/local/nvidia"
DEFAULT_MPS_ROOT = "/run/nvidia/mps"
MOST_EXPOSED_RELEASE = v("25.3.4")
_STRATEGIES = ("envvar", "volume-mounts", "cdi-annotations", "cdi-cri")


# --- input shapes -----------------------------------------------------------------------------


def _section(parent: Mapping[str, object], key: str, where: str) -> Mapping[str, object]:
    value = parent.get(key)
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise InputError(f"{where}.{key}", f"expected a mapping, got {type_name(value)}")
    return value


def _opt_bool(section: Mapping[str, object], key: str, where: str) -> bool | None:
    value = section.get(key)
    if value is None or isinstance(value, bool):
        return value
    raise InputError(f"{where}.{key}", f"expected true or false, got {type_name(value)} {value!r}")


def _opt_str(section: Mapping[str, object], key: str, where: str) -> str | None:
    value = section.get(key)
    if value is None or isinstance(value, str):
        return value
    raise InputError(f"{where}.{key}", f"expected a string (quote it), got {type_name(value)} {value!r}")


@dataclass(frozen=True, slots=True)
class _EnvEntry:
    name: str
    value: str
    where: str  # e.g. clusterPolicy.spec.toolkit.env[1]
    note: str = ""


def _env_list(section: Mapping[str, object], where: str) -> tuple[_EnvEntry, ...]:
    """A ClusterPolicy ``env`` list: ``{name, value}`` with string values (gpuv1.EnvVar)."""
    value = section.get("env")
    if value is None:
        return ()
    if not isinstance(value, list | tuple):
        raise InputError(f"{where}.env", f"expected a list of {{name, value}}, got {type_name(value)}")
    entries = []
    for i, item in enumerate(value):
        at = f"{where}.env[{i}]"
        if not isinstance(item, Mapping):
            raise InputError(at, f"expected a mapping with name and value, got {type_name(item)}")
        name = item.get("name")
        if not isinstance(name, str) or not name:
            raise InputError(f"{at}.name", f"expected a non-empty string, got {type_name(name)}")
        val = item.get("value", "")
        if val is None:
            val = ""
        if not isinstance(val, str):
            raise InputError(
                f"{at}.value",
                f"expected a string, got {type_name(val)} {val!r}: the API server rejects a ClusterPolicy "
                "whose env value is not a string (quote it, or use helm --set-string)",
            )
        note = ""
        if "valueFrom" in item:
            note = "valueFrom is not supported by ClusterPolicy env and is pruned by the API server"
        entries.append(_EnvEntry(name, val, at, note))
    return tuple(entries)


# --- the spec, read -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Spec:
    """The ClusterPolicy fields the exposure model reads, with CRD defaults applied."""

    cdi_enabled: bool
    cdi_default: bool
    nri: bool
    toolkit_enabled: bool
    toolkit_version: Version
    toolkit_env: tuple[_EnvEntry, ...]
    install_dir: str
    device_plugin_enabled: bool
    device_plugin_version: Version
    device_plugin_env: tuple[_EnvEntry, ...]
    mps_root: str
    runtime_class: str
    mig_strategy: str
    gds: bool
    gdrcopy: bool
    origin: dict[str, str] = field(default_factory=dict)
    unknown: dict[str, str] = field(default_factory=dict)


def _image_version(
    section: Mapping[str, object],
    where: str,
    bundled: Version,
    *,
    what: str,
    origin: dict[str, str],
    unknown: dict[str, str],
) -> Version:
    """``version`` (or the tag of ``image``), parsed loosely; the bundled one when absent."""
    text = _opt_str(section, "version", where)
    at = f"{where}.version"
    if not text:
        image = _opt_str(section, "image", where) or ""
        tail = image.rsplit("/", 1)[-1]
        if "@" in tail:
            text = "sha256:"  # pinned by digest
        elif ":" in tail:
            text, at = tail.split(":", 1)[1], f"{where}.image"
    if text and text.startswith("sha256:"):
        origin[what] = f"{bundled}: bundled with the operator (image pinned by digest, version unknown)"
        unknown[what] = f"{where} pins the image by digest; assumed the bundled {bundled}"
        return bundled
    if not text:
        origin[what] = f"{bundled}: bundled with the operator"
        return bundled
    try:
        parsed = Version.parse(text)
    except ValueError as exc:
        raise InputError(at, f"cannot tell the release from {text!r}: {exc}") from None
    origin[what] = f"{parsed} from {at}={text}"
    return parsed


def _read_spec(rel: Release, spec: Mapping[str, object], where: str) -> _Spec:
    origin: dict[str, str] = {}
    unknown: dict[str, str] = {}
    cdi = _section(spec, "cdi", where)
    toolkit = _section(spec, "toolkit", where)
    plugin = _section(spec, "devicePlugin", where)
    operator = _section(spec, "operator", where)
    cdi_where = f"{where}.cdi"

    enabled = _opt_bool(cdi, "enabled", cdi_where)
    default = _opt_bool(cdi, "default", cdi_where)
    nri = _opt_bool(cdi, "nriPluginEnabled", cdi_where)
    tag = str(rel.version)
    if not rel.cdi_field:
        if cdi:
            origin["cdi.enabled"] = f"false: operator {tag} has no spec.cdi (the API server prunes it)"
        cdi_enabled = False
    elif enabled is None:
        cdi_enabled = bool(rel.cdi_nil_means)
        origin["cdi.enabled"] = (
            f"{str(cdi_enabled).lower()}: absent, and nil means {str(cdi_enabled).lower()} on operator {tag}"
        )
    else:
        cdi_enabled = enabled
        origin["cdi.enabled"] = f"{str(enabled).lower()} from {cdi_where}.enabled"
    cdi_default = False
    if default and rel.cdi_mode_only_if_default:
        cdi_default = True
        origin["cdi.default"] = f"true from {cdi_where}.default"
    elif default:
        origin["cdi.default"] = (
            f"ignored: cdi.default is a no-op on operator {tag}"
            if rel.cdi_field
            else f"ignored: operator {tag} has no spec.cdi"
        )
    nri_on = False
    if nri and not rel.nri_field:
        origin["cdi.nriPluginEnabled"] = f"ignored: operator {tag} < {r.NRI_PLUGIN} has no NRI plugin field"
    elif nri:
        nri_on = True
        origin["cdi.nriPluginEnabled"] = f"true from {cdi_where}.nriPluginEnabled"

    tk_where = f"{where}.toolkit"
    toolkit_enabled = _opt_bool(toolkit, "enabled", tk_where)
    toolkit_enabled = True if toolkit_enabled is None else toolkit_enabled
    if nri_on and not cdi_enabled:
        raise InputError(
            f"{cdi_where}.nriPluginEnabled",
            f"operator {tag} rejects the ClusterPolicy: the NRI Plugin cannot be enabled when CDI is disabled",
        )
    if nri_on and not toolkit_enabled and rel.nri_requires_toolkit:
        raise InputError(
            f"{cdi_where}.nriPluginEnabled",
            f"operator {tag} rejects the ClusterPolicy: the NRI "
            "Plugin cannot be enabled when the Container Toolkit is disabled",
        )
    dp_where = f"{where}.devicePlugin"
    dp_enabled = _opt_bool(plugin, "enabled", dp_where)
    mps = _section(plugin, "mps", dp_where)
    mig = _section(spec, "mig", where)
    return _Spec(
        cdi_enabled=cdi_enabled,
        cdi_default=cdi_default,
        nri=nri_on,
        toolkit_enabled=toolkit_enabled,
        toolkit_version=_image_version(
            toolkit, tk_where, rel.toolkit, what="toolkit.version", origin=origin, unknown=unknown
        ),
        toolkit_env=_env_list(toolkit, tk_where),
        install_dir=_opt_str(toolkit, "installDir", tk_where) or DEFAULT_INSTALL_DIR,
        device_plugin_enabled=True if dp_enabled is None else dp_enabled,
        device_plugin_version=_image_version(
            plugin, dp_where, rel.device_plugin, what="devicePlugin.version", origin=origin, unknown=unknown
        ),
        device_plugin_env=_env_list(plugin, dp_where),
        mps_root=_opt_str(mps, "root", f"{dp_where}.mps") or "",
        runtime_class=_opt_str(operator, "runtimeClass", f"{where}.operator") or "nvidia",
        mig_strategy=_opt_str(mig, "strategy", f"{where}.mig") or "",
        gds=bool(_opt_bool(_section(spec, "gds", where), "enabled", f"{where}.gds")),
        gdrcopy=bool(_opt_bool(_section(spec, "gdrcopy", where), "enabled", f"{where}.gdrcopy")),
        origin=origin,
        unknown=unknown,
    )


# --- effective container env --------------------------------------------------------------------


class _Env:
    """A container env built with the controller's setContainerEnv: update in place, else append."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.values: dict[str, str] = {}
        self.source: dict[str, str] = {}
        self.where: dict[str, str] = {}
        self.note: dict[str, str] = {}

    def set(self, name: str, value: str, source: str, where: str | None = None) -> None:
        previous = self.source.get(name)
        self.note[name] = ""
        if previous is not None and self.values[name] != value:
            self.note[name] = f" (overrides {previous}={self.values[name]})"
        self.values[name] = value
        self.source[name] = source
        if where is None:
            self.where.pop(name, None)
        else:
            self.where[name] = f"{where}.value"

    def user(self, entries: Sequence[_EnvEntry]) -> None:
        for entry in entries:
            source = entry.where + (f" ({entry.note})" if entry.note else "")
            self.set(entry.name, entry.value, source, entry.where)

    def origin(self) -> dict[str, str]:
        return {
            f"{self.prefix}.{name}": f"{value}: {self.source[name]}{self.note[name]}"
            for name, value in self.values.items()
        }


def _toolkit_env(rel: Release, spec: _Spec, kind: str, namespace: str) -> _Env:
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


def _toolkit_cdi(rel: Release, spec: _Spec, kind: str, env: _Env) -> None:
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


def _device_plugin_env(rel: Release, spec: _Spec) -> _Env:
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


# --- device plugin --------------------------------------------------------------------------------


def device_plugin_from_env(env: Mapping[str, str], version: Version) -> DevicePlugin:
    """The device plugin settings its env selects (flags are not modelled; env beats the config file)."""
    return _device_plugin(env, version, {}, {})


def _dp_bool(env: Mapping[str, str], name: str, default: bool, version: Version, where: Mapping[str, str]) -> bool:
    if name not in env:
        return default
    value = env[name]
    if value == "":
        return False if version >= r.DP_EMPTY_BOOL_IS_FALSE else default
    parsed = parse_go_bool(value)
    if parsed is None:
        raise InputError(
            where.get(name, f"devicePlugin.env.{name}"),
            f"{value!r} is not a boolean; the device plugin would exit and crash-loop",
        )
    return parsed


def _device_plugin(
    env: Mapping[str, str], version: Version, where: Mapping[str, str], origin: dict[str, str]
) -> DevicePlugin:
    at = where.get("DEVICE_LIST_STRATEGY", "devicePlugin.env.DEVICE_LIST_STRATEGY")
    raw = env.get("DEVICE_LIST_STRATEGY", "")
    allowed = [
        s
        for s in _STRATEGIES
        if (s != "cdi-annotations" or version >= r.DP_CDI_ANNOTATIONS) and (s != "cdi-cri" or version >= r.DP_CDI_CRI)
    ]
    if not raw:
        strategies: tuple[str, ...] = ("envvar",)
    elif version < r.DP_CDI_ANNOTATIONS:
        strategies = (raw,)
    else:
        strategies = tuple(p.strip() for p in raw.split(","))
    for strategy in strategies:
        if strategy not in allowed:
            raise InputError(
                at,
                f"{strategy!r} is not a device list strategy of device plugin {version} "
                f"(expected {', '.join(allowed)}); the plugin would exit and crash-loop",
            )
    id_strategy = env.get("DEVICE_ID_STRATEGY") or "uuid"
    if id_strategy not in ("uuid", "index"):
        raise InputError(
            where.get("DEVICE_ID_STRATEGY", "devicePlugin.env.DEVICE_ID_STRATEGY"),
            f"{id_strategy!r}: expected uuid or index; the plugin would exit and crash-loop",
        )
    low, high = r.DP_EXTRAS_DEFAULT_ON
    extras = low <= version < high
    if extras:
        origin["device_plugin.extras"] = (
            f"GDS/MOFED/GDRCopy default on in device plugin {low} .. {high} (fixed in {high})"
        )
    origin["device_plugin.list_strategies"] = (
        f"DEVICE_LIST_STRATEGY={raw}" if raw else "envvar: device plugin default (DEVICE_LIST_STRATEGY not set)"
    )
    return DevicePlugin(
        version=version,
        list_strategies=strategies,
        id_strategy=id_strategy,
        pass_device_specs=_dp_bool(env, "PASS_DEVICE_SPECS", False, version, where),
        cdi_annotation_prefix=env.get("CDI_ANNOTATION_PREFIX") or "cdi.k8s.io/",
        imex_channel_ids=tuple(p.strip() for p in env.get("IMEX_CHANNEL_IDS", "").split(",") if p.strip()),
        gds=_dp_bool(env, "GDS_ENABLED", extras, version, where),
        mofed=_dp_bool(env, "MOFED_ENABLED", extras, version, where),
        gdrcopy=version >= r.DP_GDRCOPY_FLAG and _dp_bool(env, "GDRCOPY_ENABLED", extras, version, where),
        dev_root=env.get("NVIDIA_DEV_ROOT") or "/",
    )


# --- Helm values -> ClusterPolicy spec --------------------------------------------------------------


def _chart_defaults(rel: Release) -> dict[str, object]:
    cdi: dict[str, object] = {}
    if rel.cdi_field:
        cdi["enabled"] = rel.chart_cdi_enabled
        if rel.cdi_default_field:
            cdi["default"] = False
        if rel.nri_field:
            cdi["nriPluginEnabled"] = False
    return {
        "operator": {"runtimeClass": "nvidia"},
        "cdi": cdi,
        "mig": {"strategy": "single"},
        "toolkit": {
            "enabled": True,
            "version": rel.toolkit.text,
            "env": [],
            "installDir": DEFAULT_INSTALL_DIR,
        },
        "devicePlugin": {
            "enabled": True,
            "version": rel.device_plugin.text,
            "env": [{"name": n, "value": val} for n, val in rel.chart_device_plugin_env],
        },
        "gds": {"enabled": False},
        "gdrcopy": {"enabled": False},
    }


def _merge(base: Mapping[str, object], over: Mapping[str, object]) -> dict[str, object]:
    """Helm's values merge: maps merge, lists and scalars replace, null deletes."""
    out = dict(base)
    for key, value in over.items():
        if value is None:
            out.pop(key, None)
        elif isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = _merge(out[key], value)  # type: ignore[arg-type]
        else:
            out[key] = value
    return out


_YAML_BOOLS = {"true": True, "True": True, "TRUE": True, "false": False, "False": False, "FALSE": False}


def _rendered_bool(value: object, where: str) -> bool | None:
    """``key: {{ .Values.x }}`` re-read as YAML: a bool, a bool-looking string, or nothing."""
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value in _YAML_BOOLS:
        return _YAML_BOOLS[value]
    raise InputError(where, f"expected true or false, got {type_name(value)} {value!r}")


def render_helm_values(version: Version | str, values: Mapping[str, object]) -> dict[str, object]:
    """The ClusterPolicy spec ``templates/clusterpolicy.yaml`` renders from a values document.

    Chart defaults of the release fill what ``values`` omits; ``cdi.enabled`` is always rendered
    (``nriPluginEnabled`` only when both it and ``cdi.enabled`` are true).
    """
    if not isinstance(values, Mapping):
        raise InputError("helmValues", f"expected a mapping, got {type_name(values)}")
    rel = release(version)
    merged = _merge(_chart_defaults(rel), values)
    spec: dict[str, object] = {}
    for key in ("operator", "cdi", "mig", "toolkit", "devicePlugin", "gds", "gdrcopy"):
        _section(merged, key, "helmValues")
    operator = _section(merged, "operator", "helmValues")
    if operator.get("runtimeClass"):
        spec["operator"] = {"runtimeClass": operator["runtimeClass"]}
    if rel.cdi_field:
        cdi = _section(merged, "cdi", "helmValues")
        rendered: dict[str, object] = {}
        enabled = _rendered_bool(cdi.get("enabled"), "helmValues.cdi.enabled")
        if enabled is not None:
            rendered["enabled"] = enabled
        default = _rendered_bool(cdi.get("default"), "helmValues.cdi.default")
        if default is not None and (rel.cdi_default_field or default):
            rendered["default"] = default
        nri = _rendered_bool(cdi.get("nriPluginEnabled"), "helmValues.cdi.nriPluginEnabled")
        if rel.nri_field and enabled and nri:
            rendered["nriPluginEnabled"] = True
        spec["cdi"] = rendered
    mig = _section(merged, "mig", "helmValues")
    if mig.get("strategy"):
        spec["mig"] = {"strategy": mig["strategy"]}
    for key in ("toolkit", "devicePlugin"):
        section = _section(merged, key, "helmValues")
        out: dict[str, object] = {}
        enabled = _rendered_bool(section.get("enabled"), f"helmValues.{key}.enabled")
        if enabled is not None:
            out["enabled"] = enabled
        for name in ("repository", "image", "version", "installDir", "env"):
            if section.get(name):
                out[name] = section[name]
        spec[key] = out
    for key in ("gds", "gdrcopy"):
        enabled = _rendered_bool(_section(merged, key, "helmValues").get("enabled"), f"helmValues.{key}.enabled")
        spec[key] = {"enabled": bool(enabled)}
    return spec


# --- profiles -------------------------------------------------------------------------------------


def node_profile(
    version: Version | str,
    cluster_policy: Mapping[str, object] | None = None,
    *,
    helm_values: Mapping[str, object] | None = None,
    gpus: Sequence[Gpu] = (),
    runtime: str = "containerd",
    platform: Platform | None = None,
    operator_namespace: str = "gpu-operator",
) -> NodeProfile:
    """The node an operator release renders from a ClusterPolicy ``spec`` (or a whole ClusterPolicy).

    With ``helm_values`` instead, the spec is what the chart renders; with neither, the chart
    defaults of the release (a fresh install).
    """
    at = version if isinstance(version, Version) else r.parse_operator_version(version)
    rel = release(at)
    kind = runtime_kind(runtime)
    if cluster_policy is not None and helm_values is not None:
        raise InputError("helmValues", "give either a ClusterPolicy spec or Helm values, not both")
    if cluster_policy is None:
        spec: Mapping[str, object] = render_helm_values(rel.version, helm_values or {})
        where = "helmValues" if helm_values is not None else "chartDefaults"
    else:
        if not isinstance(cluster_policy, Mapping):
            raise InputError("clusterPolicy.spec", f"expected a mapping, got {type_name(cluster_policy)}")
        spec, where = cluster_policy, "clusterPolicy.spec"
        if cluster_policy.get("kind") == "ClusterPolicy":
            spec = _section(cluster_policy, "spec", "clusterPolicy")
    read = _read_spec(rel, spec, where)
    origin: dict[str, str] = {
        "operator.version": f"{at} (operator {rel.tag} rules, spec from {where})"
        if rel.version == at
        else f"{at}: modelled as {rel.tag}, the nearest known release of the {rel.line[0]}.{rel.line[1]} line"
    }
    origin.update(read.origin)
    unknown = dict(read.unknown)

    tk_env = _toolkit_env(rel, read, kind, operator_namespace)
    dp_env = _device_plugin_env(rel, read)
    origin.update(tk_env.origin())
    origin.update(dp_env.origin())
    if read.toolkit_enabled:
        installed = install(
            tk_env.values,
            read.toolkit_version,
            runtime=kind,
            operator_namespace=operator_namespace,
            where=tk_env.where,
        )
        config, crt, nri = installed.config, installed.runtime, installed.nri
        origin.update(installed.origin)
    else:
        config, crt, nri = _host_toolkit(kind, read.toolkit_version, origin, unknown)
    plugin = None
    if read.device_plugin_enabled:
        plugin = _device_plugin(dp_env.values, read.device_plugin_version, dp_env.where, origin)
    else:
        origin["device_plugin"] = f"none: {where}.devicePlugin.enabled=false"
    classes = _runtime_classes(rel, read, origin)
    return NodeProfile(
        toolkit=Toolkit(version=read.toolkit_version, config=config, platform=platform or Platform()),
        runtime=crt,
        device_plugin=plugin,
        gpus=tuple(gpus),
        nri=nri,
        runtime_classes=classes,
        operator_version=at,
        origin=origin,
        unknown=unknown,
    )


def _host_toolkit(
    kind: str, version: Version, origin: dict[str, str], unknown: dict[str, str]
) -> tuple[ToolkitConfig, ContainerRuntime, NriPlugin]:
    """toolkit.enabled=false: the host's own toolkit; assume its most exposed common setup."""
    why = (
        "spec.toolkit.enabled=false: the host-installed toolkit's /etc/nvidia-container-runtime/config.toml "
        "and runtime config are not known; assumed the defaults (nvidia default runtime, envvar accepted "
        "from unprivileged containers)"
    )
    unknown["toolkit.config"] = why
    unknown["runtime"] = why
    unknown["toolkit.version"] = "host-installed toolkit: version not known"
    origin["toolkit"] = why
    handlers = {
        name: RuntimeHandler(name, nvidia=True, mode=mode)
        for name, mode in (("nvidia", None), ("nvidia-cdi", "cdi"), ("nvidia-legacy", "legacy"))
    }
    crt = ContainerRuntime(kind=kind, default_handler="nvidia", handlers=handlers, enable_cdi=kind == "cri-o")
    return (
        ToolkitConfig(),
        crt,
        NriPlugin(enabled=False, any_namespace_devices=version >= r.TK_NRI_ANY_NAMESPACE),
    )


def _runtime_classes(rel: Release, read: _Spec, origin: dict[str, str]) -> dict[str, str]:
    tag = str(rel.version)
    if read.nri:
        origin["runtimeClasses"] = f"none: operator {tag} deletes the nvidia RuntimeClasses in NRI plugin mode"
        return {}
    classes = {read.runtime_class: read.runtime_class}
    why = f"{read.runtime_class} from spec.operator.runtimeClass"
    if read.cdi_enabled:
        classes["nvidia-cdi"] = "nvidia-cdi"
        classes["nvidia-legacy"] = "nvidia-legacy"
        why += "; nvidia-cdi and nvidia-legacy because cdi.enabled=true"
    origin["runtimeClasses"] = f"{why} (operator {tag})"
    return classes


def most_exposed_profile(gpus: Sequence[Gpu] = ()) -> NodeProfile:
    """Nothing known about the node: the most exposed common setup (an operator 25.3.4 default install)."""
    profile = node_profile(MOST_EXPOSED_RELEASE, gpus=gpus)
    origin = dict(profile.origin)
    origin["assumed"] = (
        f"nothing known about the node: assumed GPU Operator {MOST_EXPOSED_RELEASE} defaults "
        "(nvidia default runtime, envvar strategy, envvar accepted from unprivileged containers)"
    )
    return replace(profile, operator_version=None, origin=origin, assumed=True)


def explicit_profile(
    toolkit_version: Version | str,
    toolkit_config: ToolkitConfig | None = None,
    *,
    toolkit_env: Mapping[str, str] | None = None,
    device_plugin_version: Version | str | None = None,
    device_plugin_env: Mapping[str, str] | None = None,
    runtime: ContainerRuntime | str = "containerd",
    runtime_classes: Mapping[str, str] | None = None,
    nri: NriPlugin | None = None,
    gpus: Sequence[Gpu] = (),
    platform: Platform | None = None,
) -> NodeProfile:
    """A node described directly, without an operator.

    ``toolkit_config`` is the effective config.toml; without it, what the toolkit container's
    installer writes from ``toolkit_env`` (installer defaults when that is empty too).
    ``runtime`` is a ``ContainerRuntime`` or a runtime kind whose configuration then also comes
    from ``toolkit_env``. No ``device_plugin_version`` means no device plugin. Without
    ``runtime_classes``, every NVIDIA handler is assumed to have a RuntimeClass of its name.
    """
    tk_version = _version(toolkit_version, "toolkit.version")
    installed = install(
        dict(toolkit_env or {}),
        tk_version,
        runtime="containerd" if isinstance(runtime, ContainerRuntime) else runtime,
    )
    origin = dict(installed.origin)
    config = installed.config
    if toolkit_config is not None:
        config = toolkit_config
        origin["toolkit.config"] = "given explicitly"
    crt = installed.runtime
    if isinstance(runtime, ContainerRuntime):
        crt = runtime
        origin["runtime"] = "given explicitly"
    plugin = None
    if device_plugin_version is not None:
        plugin = _device_plugin(
            dict(device_plugin_env or {}), _version(device_plugin_version, "devicePlugin.version"), {}, origin
        )
    if runtime_classes is None:
        runtime_classes = {name: name for name, handler in crt.handlers.items() if handler.nvidia}
        origin["runtimeClasses"] = "assumed: one RuntimeClass per NVIDIA handler"
    return NodeProfile(
        toolkit=Toolkit(version=tk_version, config=config, platform=platform or Platform()),
        runtime=crt,
        device_plugin=plugin,
        gpus=tuple(gpus),
        nri=nri if nri is not None else installed.nri,
        runtime_classes=dict(runtime_classes),
        origin=origin,
    )


def _version(value: Version | str, where: str) -> Version:
    if isinstance(value, Version):
        return value
    if not isinstance(value, str):
        raise InputError(where, f"expected a version string, got {type_name(value)}")
    try:
        return Version.parse(value)
    except ValueError as exc:
        raise InputError(where, str(exc)) from None
