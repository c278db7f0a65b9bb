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
from dataclasses import replace

from gpuguard.engine.operator import releases as r
from gpuguard.engine.operator.container_env import device_plugin_env, toolkit_env
from gpuguard.engine.operator.device_plugin import plugin_settings
from gpuguard.engine.operator.helm import render_helm_values
from gpuguard.engine.operator.releases import Release, release
from gpuguard.engine.operator.spec import Spec, child_mapping, read_spec
from gpuguard.engine.operator.toolkit_env import install, runtime_kind
from gpuguard.model.errors import InputError, type_name
from gpuguard.model.node import ContainerRuntime, Gpu, NodeProfile, NriPlugin, OperatorState, RuntimeHandler
from gpuguard.model.toolkit import Platform, Toolkit, ToolkitConfig
from gpuguard.model.version import Version, v

MOST_EXPOSED_RELEASE = v("25.3.4")  # the last release with nvidia as default runtime and CDI off


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
            spec = child_mapping(cluster_policy, "spec", "clusterPolicy")
    read = read_spec(rel, spec, where)
    origin: dict[str, str] = {
        "operator.version": f"{at} (operator {rel.tag} rules, spec from {where})"
        if rel.version == at
        else f"{at}: modelled as {rel.tag}, the nearest known release of the {rel.line[0]}.{rel.line[1]} line"
    }
    origin.update(read.origin)
    unknown = dict(read.unknown)

    tk_env = toolkit_env(rel, read, kind, operator_namespace)
    dp_env = device_plugin_env(rel, read)
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
        plugin = plugin_settings(dp_env.values, read.device_plugin_version, dp_env.where, origin)
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
        operator=OperatorState(
            cdi_enabled=read.cdi_enabled,
            cdi_default=read.cdi_default,
            toolkit_enabled=read.toolkit_enabled,
            overrides=(*tk_env.overrides, *dp_env.overrides),
        ),
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


def _runtime_classes(rel: Release, read: Spec, origin: dict[str, str]) -> dict[str, str]:
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
        plugin = plugin_settings(
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
