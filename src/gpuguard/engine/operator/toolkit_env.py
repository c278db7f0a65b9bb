"""What the toolkit container's installer writes from its environment.

The GPU Operator configures nodes only through the env of the toolkit
container; the installer (``nvidia-ctk-installer``, ``tools/container`` up to
v1.17) turns that env into ``config.toml`` and into containerd / cri-o runtime
handlers. This module replays that step, version by version, so a profile says
what a node really runs rather than what the ClusterPolicy seems to ask for.

Installer facts modelled (boundaries in ``releases``):

* Booleans are Go ``strconv.ParseBool`` (``1 t T TRUE true True 0 f F FALSE false False``,
  no trimming). Anything else makes the installer exit, so the toolkit pod
  crash-loops and nothing is (re)written: that is an ``InputError`` here. A
  boolean set to ``""`` is false from toolkit 1.14.6 (urfave/cli 2.27), and
  leaves the default before.
* Several env names feed one flag; the first *present* name wins
  (``NVIDIA_RUNTIME_SET_AS_DEFAULT`` before ``CONTAINERD_SET_AS_DEFAULT``), so a
  user's ``CONTAINERD_SET_AS_DEFAULT=true`` does not beat the operator's
  ``NVIDIA_RUNTIME_SET_AS_DEFAULT=false``.
* containerd ``container_annotations`` come only from
  ``NVIDIA_CONTAINER_RUNTIME_MODES_CDI_ANNOTATION_PREFIXES`` (``<prefix>*`` on
  every NVIDIA handler); nothing is set otherwise.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from gpuguard.engine.operator import releases as r
from gpuguard.model.errors import InputError
from gpuguard.model.node import ContainerRuntime, NriPlugin, RuntimeHandler
from gpuguard.model.toolkit import ToolkitConfig
from gpuguard.model.version import Version

ACCEPT_ENVVAR = "accept-nvidia-visible-devices-envvar-when-unprivileged"
ACCEPT_MOUNTS = "accept-nvidia-visible-devices-as-volume-mounts"
MODE = "nvidia-container-runtime.mode"
DEFAULT_KIND = "nvidia-container-runtime.modes.cdi.default-kind"
ANNOTATION_PREFIXES = "nvidia-container-runtime.modes.cdi.annotation-prefixes"
SKIP_MODE_DETECTION = "nvidia-container-runtime-hook.skip-mode-detection"

_TRUE = frozenset({"1", "t", "T", "TRUE", "true", "True"})
_FALSE = frozenset({"0", "f", "F", "FALSE", "false", "False"})
_PLAIN_HANDLER = {"containerd": "runc", "cri-o": "crun"}
RUNTIME_KINDS = {"containerd": "containerd", "cri-o": "cri-o", "crio": "cri-o"}


@dataclass(frozen=True, slots=True)
class Installed:
    """The installer's output: config.toml, the CRI runtime config, the NRI plugin, and why."""

    config: ToolkitConfig
    runtime: ContainerRuntime
    nri: NriPlugin
    origin: Mapping[str, str]


def toolkit_config_from_env(env: Mapping[str, str], version: Version) -> ToolkitConfig:
    """The effective config.toml values the installer writes from ``env``."""
    return install(env, version).config


def container_runtime_from_env(
    env: Mapping[str, str], version: Version, runtime: str = "containerd"
) -> ContainerRuntime:
    """The containerd / cri-o configuration the installer writes from ``env``."""
    return install(env, version, runtime=runtime).runtime


def install(
    env: Mapping[str, str],
    version: Version,
    *,
    runtime: str = "containerd",
    operator_namespace: str = "gpu-operator",
    where: Mapping[str, str] | None = None,
) -> Installed:
    """Replay the installer; ``where`` maps env names to input paths for error messages."""
    reader = _Env(env, version, where or {})
    kind = runtime_kind(runtime)
    origin: dict[str, str] = {}
    config = _config(reader, version, origin)
    nri = _nri(reader, version, operator_namespace, origin)
    crt = _runtime(reader, version, kind, nri.enabled, origin)
    return Installed(config, crt, nri, origin)


def runtime_kind(runtime: str) -> str:
    """Normalise the CRI runtime name; docker is not modelled."""
    kind = RUNTIME_KINDS.get(runtime)
    if kind is None:
        raise InputError("runtime", f"expected containerd or cri-o, got {runtime!r}")
    return kind


def parse_go_bool(value: str) -> bool | None:
    """Go's strconv.ParseBool; None for a value it rejects."""
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    return None


class _Env:
    """Env lookups with the installer's parsing rules and error paths."""

    def __init__(self, env: Mapping[str, str], version: Version, where: Mapping[str, str]) -> None:
        for name, value in env.items():
            if not isinstance(name, str) or not isinstance(value, str):
                raise InputError(where.get(str(name), f"toolkit.env.{name}"), "expected a string value")
        self.env = env
        self.version = version
        self.where = where

    def first(self, names: Sequence[str]) -> tuple[str, str] | None:
        """The first of ``names`` that is present (urfave/cli EnvVars order)."""
        for name in names:
            if name in self.env:
                return name, self.env[name]
        return None

    def boolean(self, names: Sequence[str], default: bool) -> tuple[bool, str]:
        found = self.first(names)
        if found is None:
            return default, f"installer default {str(default).lower()} ({names[0]} not set)"
        name, value = found
        if value == "":
            if self.version >= r.TK_EMPTY_BOOL_IS_FALSE:
                return (
                    False,
                    f'false from {name}="" (empty means false since toolkit {r.TK_EMPTY_BOOL_IS_FALSE})',
                )
            return (
                default,
                f'installer default {str(default).lower()} ({name}="" is ignored before toolkit '
                f"{r.TK_EMPTY_BOOL_IS_FALSE})",
            )
        parsed = parse_go_bool(value)
        if parsed is None:
            raise InputError(
                self.where.get(name, f"toolkit.env.{name}"),
                f"{value!r} is not a boolean the toolkit installer accepts (1, t, true, TRUE, True, 0, f, "
                "false, FALSE, False); the toolkit container would exit and crash-loop",
            )
        return parsed, f"{str(parsed).lower()} from {name}={value}"

    def strings(self, name: str) -> tuple[str, ...]:
        """A comma-separated list flag; pieces are trimmed, empty pieces dropped."""
        return tuple(p.strip() for p in self.env.get(name, "").split(",") if p.strip())


def _config(env: _Env, version: Version, origin: dict[str, str]) -> ToolkitConfig:
    base = ToolkitConfig()
    if version < r.TK_ACCEPT_ENV:
        origin[ACCEPT_ENVVAR] = f"shipped default: toolkit {version} < {r.TK_ACCEPT_ENV} ignores ACCEPT_* env"
        origin[ACCEPT_MOUNTS] = origin[ACCEPT_ENVVAR]
        return base
    accept_env, why_env = env.boolean(("ACCEPT_NVIDIA_VISIBLE_DEVICES_ENVVAR_WHEN_UNPRIVILEGED",), True)
    accept_mounts, why_mounts = env.boolean(("ACCEPT_NVIDIA_VISIBLE_DEVICES_AS_VOLUME_MOUNTS",), False)
    origin[ACCEPT_ENVVAR] = why_env
    origin[ACCEPT_MOUNTS] = why_mounts
    explicit = {ACCEPT_ENVVAR, ACCEPT_MOUNTS}
    values: dict[str, object] = {
        "accept_envvar_unprivileged": accept_env,
        "accept_volume_mounts": accept_mounts,
    }
    if version >= r.TK_MODE_ENV:
        skip, origin[SKIP_MODE_DETECTION] = env.boolean(("NVIDIA_CONTAINER_RUNTIME_HOOK_SKIP_MODE_DETECTION",), True)
        values["skip_mode_detection"] = skip
        explicit.add(SKIP_MODE_DETECTION)
        for name, key, attr in (
            ("NVIDIA_CONTAINER_RUNTIME_MODE", MODE, "mode"),
            ("NVIDIA_CONTAINER_RUNTIME_MODES_CDI_DEFAULT_KIND", DEFAULT_KIND, "cdi_default_kind"),
        ):
            value = env.env.get(name, "")
            if value:  # written only when set and non-empty
                values[attr] = value
                explicit.add(key)
                origin[key] = f"from {name}={value}"
        prefixes = env.strings("NVIDIA_CONTAINER_RUNTIME_MODES_CDI_ANNOTATION_PREFIXES")
        if prefixes:
            values["cdi_annotation_prefixes"] = prefixes
            explicit.add(ANNOTATION_PREFIXES)
            origin[ANNOTATION_PREFIXES] = (
                f"from NVIDIA_CONTAINER_RUNTIME_MODES_CDI_ANNOTATION_PREFIXES={','.join(prefixes)}"
            )
    if version >= r.TK_OPT_IN_FEATURES:
        for feature in env.strings("NVIDIA_CONTAINER_TOOLKIT_OPT_IN_FEATURES"):
            key = f"features.{feature}"
            explicit.add(key)
            origin[key] = "true from NVIDIA_CONTAINER_TOOLKIT_OPT_IN_FEATURES"
            if feature == "ignore-imex-channel-requests":
                values["ignore_imex_channel_requests"] = True
            elif feature == "disable-imex-channel-creation":
                values["disable_imex_channel_creation"] = True
    return ToolkitConfig(
        accept_envvar_unprivileged=bool(values["accept_envvar_unprivileged"]),
        accept_volume_mounts=bool(values["accept_volume_mounts"]),
        mode=str(values.get("mode", base.mode)),
        cdi_default_kind=str(values.get("cdi_default_kind", base.cdi_default_kind)),
        cdi_annotation_prefixes=_tuple(values.get("cdi_annotation_prefixes"), base.cdi_annotation_prefixes),
        skip_mode_detection=bool(values.get("skip_mode_detection", base.skip_mode_detection)),
        ignore_imex_channel_requests=bool(values.get("ignore_imex_channel_requests", False)),
        disable_imex_channel_creation=bool(values.get("disable_imex_channel_creation", False)),
        explicit=frozenset(explicit),
    )


def _tuple(value: object, default: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(str(p) for p in value) if isinstance(value, tuple) else default


def _nri(env: _Env, version: Version, operator_namespace: str, origin: dict[str, str]) -> NriPlugin:
    if version < r.TK_NRI_PLUGIN:
        if "ENABLE_NRI_PLUGIN" in env.env:
            origin["nri.enabled"] = f"false: toolkit {version} < {r.TK_NRI_PLUGIN} has no NRI plugin"
        return NriPlugin(enabled=False, any_namespace_devices=False)
    enabled, origin["nri.enabled"] = env.boolean(("ENABLE_NRI_PLUGIN",), False)
    namespace = env.env.get("NRI_NAMESPACE") or operator_namespace
    management: tuple[str, ...] = ()
    if version >= r.TK_NRI_ANY_NAMESPACE:
        management = env.strings("NRI_MANAGEMENT_CDI_DEVICE_NAMESPACES")
        if management:
            origin["nri.management_namespaces"] = "from NRI_MANAGEMENT_CDI_DEVICE_NAMESPACES"
    any_namespace = version >= r.TK_NRI_ANY_NAMESPACE
    if enabled:
        origin["nri.any_namespace_devices"] = (
            f"toolkit {version} >= {r.TK_NRI_ANY_NAMESPACE}: non-management CDI devices from any namespace"
            if any_namespace
            else f"toolkit {version} < {r.TK_NRI_ANY_NAMESPACE}: only pods in {namespace} get devices"
        )
    return NriPlugin(
        enabled=enabled,
        operator_namespace=namespace,
        management_namespaces=management,
        any_namespace_devices=any_namespace,
    )


def _name_chain(kind: str, version: Version, suffix: str) -> tuple[str, ...]:
    """Env names feeding --runtime-name (suffix RUNTIME_CLASS) or --set-as-default (SET_AS_DEFAULT)."""
    own = {
        "RUNTIME_CLASS": {"containerd": "CONTAINERD_RUNTIME_CLASS", "cri-o": "CRIO_RUNTIME_CLASS"},
        "SET_AS_DEFAULT": {"containerd": "CONTAINERD_SET_AS_DEFAULT", "cri-o": "CRIO_SET_AS_DEFAULT"},
    }[suffix]
    generic = "NVIDIA_RUNTIME_NAME" if suffix == "RUNTIME_CLASS" else "NVIDIA_RUNTIME_SET_AS_DEFAULT"
    docker = "DOCKER_RUNTIME_NAME" if suffix == "RUNTIME_CLASS" else "DOCKER_SET_AS_DEFAULT"
    if version >= r.TK_OPT_IN_FEATURES:  # 1.17.0 merged the per-runtime flags into one set
        return (generic, own["containerd"], docker)
    if version >= r.TK_NVIDIA_RUNTIME_ENV:
        return (generic, own[kind])
    return (own[kind],)


def _runtime(env: _Env, version: Version, kind: str, nri: bool, origin: dict[str, str]) -> ContainerRuntime:
    plain = _PLAIN_HANDLER[kind]
    native_cdi = kind == "cri-o"
    if nri:
        origin["runtime"] = "NRI plugin mode: the installer leaves the runtime configuration untouched"
        origin["runtime.enable_cdi"] = "assumed on: NRI/CDI mode needs the runtime's native CDI support"
        return ContainerRuntime(kind=kind, default_handler=plain, handlers={}, enable_cdi=True)
    if kind == "cri-o":
        mode = _crio_mode(env, version, origin)
        if mode == "hook":
            origin["runtime.default_handler"] = f"{plain}: hook mode adds no runtime handlers"
            origin["runtime.oci_hook_all"] = "cri-o OCI hook with when.always=true runs for every container"
            origin["runtime.enable_cdi"] = "cri-o injects CDI devices natively"
            return ContainerRuntime(kind=kind, default_handler=plain, handlers={}, enable_cdi=True, oci_hook_all=True)
    name_found = env.first(_name_chain(kind, version, "RUNTIME_CLASS"))
    name = (name_found[1] if name_found else "") or "nvidia"
    set_default, why_default = env.boolean(_name_chain(kind, version, "SET_AS_DEFAULT"), True)
    modes = ["experimental"] if version < r.TK_MODE_HANDLERS else []
    if version >= r.TK_MODE_HANDLERS:
        modes = (["experimental"] if version < r.TK_NO_EXPERIMENTAL else []) + ["cdi", "legacy"]
    predefined = {f"nvidia-{m}" for m in modes}
    nvidia_name = "nvidia" if name in predefined else name
    annotations: tuple[str, ...] = ()
    if kind == "containerd" and version >= r.TK_MODE_ENV:
        annotations = tuple(f"{p}*" for p in env.strings("NVIDIA_CONTAINER_RUNTIME_MODES_CDI_ANNOTATION_PREFIXES"))
    handlers = {nvidia_name: RuntimeHandler(nvidia_name, nvidia=True, container_annotations=annotations)}
    for mode in modes:
        handlers[f"nvidia-{mode}"] = RuntimeHandler(
            f"nvidia-{mode}",
            nvidia=True,
            mode=None if mode == "experimental" else mode,
            container_annotations=annotations,
        )
    origin["runtime.handlers"] = f"{', '.join(handlers)}" + (
        f" (name from {name_found[0]})" if name_found else " (default name nvidia)"
    )
    default = name if set_default else plain
    origin["runtime.default_handler"] = (
        f"{default}: set-as-default {why_default}"
        if set_default
        else f"{plain}: nvidia is not the default ({why_default})"
    )
    origin["runtime.container_annotations"] = (
        f"{', '.join(annotations)} from NVIDIA_CONTAINER_RUNTIME_MODES_CDI_ANNOTATION_PREFIXES"
        if annotations
        else "none: NVIDIA_CONTAINER_RUNTIME_MODES_CDI_ANNOTATION_PREFIXES not set"
    )
    enable_cdi = native_cdi
    if native_cdi:
        origin["runtime.enable_cdi"] = "cri-o injects CDI devices natively"
    elif version >= r.TK_RUNTIME_ENABLE_CDI:
        enable_cdi, origin["runtime.enable_cdi"] = env.boolean(("RUNTIME_ENABLE_CDI",), False)
        if "RUNTIME_ENABLE_CDI" not in env.env:
            enable_cdi, why = env.boolean(("CDI_ENABLED", "ENABLE_CDI"), False)
            origin["runtime.enable_cdi"] = f"{why} (RUNTIME_ENABLE_CDI not set)"
    else:
        origin["runtime.enable_cdi"] = (
            f"not set by toolkit {version} < {r.TK_RUNTIME_ENABLE_CDI}: containerd's own enable_cdi applies "
            "(off before containerd 2.0), taken as off"
        )
    return ContainerRuntime(kind=kind, default_handler=default, handlers=handlers, enable_cdi=enable_cdi)


def _crio_mode(env: _Env, version: Version, origin: dict[str, str]) -> str:
    default = "config" if version >= r.TK_CRIO_CONFIG_DEFAULT else "hook"
    if version < r.TK_CRIO_CONFIG_MODE_ENV or "CRIO_CONFIG_MODE" not in env.env:
        origin["runtime.crio_config_mode"] = f"{default}: installer default of toolkit {version}"
        return default
    mode = env.env["CRIO_CONFIG_MODE"]
    if mode not in ("hook", "config"):
        raise InputError(
            env.where.get("CRIO_CONFIG_MODE", "toolkit.env.CRIO_CONFIG_MODE"),
            f"{mode!r}: expected hook or config; the toolkit container would exit and crash-loop",
        )
    origin["runtime.crio_config_mode"] = f"{mode} from CRIO_CONFIG_MODE"
    return mode
