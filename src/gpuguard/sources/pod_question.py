"""The second ``gpuguard simulate`` form: a pod (any workload) on a described node.

::

    node:
      operator: {version: "25.3.4", clusterPolicy: {...} | values: {...}, runtime: containerd}
      # or explicit: toolkit: {...}, devicePlugin: {version, env}, runtime: containerd | {...}
      gpus: 4 | ["GPU-aaaa", ...]
    pod: <Pod, Deployment, Job, CronJob, PyTorchJob, RayCluster, ... or a List>
    images: {"<image>": ["KEY=VALUE", ...]}
    objects: [<ConfigMap or Secret>, ...]

With no node settings at all, the node is assumed to run the most exposed common
configuration, and the profile says so (``NodeProfile.assumed``).
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass

from gpuguard.engine.kubelet.env import Objects
from gpuguard.engine.operator.profile import explicit_profile, most_exposed_profile, node_profile
from gpuguard.model.errors import InputError, type_name
from gpuguard.model.node import Gpu, NodeProfile
from gpuguard.model.pod import Pod
from gpuguard.model.version import Version, VersionError
from gpuguard.sources.kubernetes import pods_from_object
from gpuguard.sources.simulate_input import read_toolkit

_TOP_KEYS = frozenset({"node", "pod", "images", "objects"})
_NODE_KEYS = frozenset({"operator", "toolkit", "devicePlugin", "runtime", "gpus"})
_OPERATOR_KEYS = frozenset({"version", "clusterPolicy", "values", "runtime", "namespace", "platform"})
_PLUGIN_KEYS = frozenset({"version", "env"})
_RUNTIME_KEYS = frozenset({"kind", "defaultHandler", "enableCDI"})
MAX_GPUS = 4096


@dataclass(frozen=True, slots=True)
class PodQuestion:
    """Which GPUs does each container of these pods get on this node?"""

    pods: tuple[Pod, ...]
    node: NodeProfile
    image_env: Mapping[str, tuple[str, ...]]
    objects: Objects


def is_pod_question(doc: object) -> bool:
    """The pod form is recognised by its ``pod`` or ``node`` key."""
    return isinstance(doc, Mapping) and ("pod" in doc or "node" in doc)


def read_pod_question(doc: object) -> PodQuestion:
    """Validate and convert the pod form; raise ``InputError`` naming the field."""
    top = _mapping(doc, "", "a mapping with node and pod")
    _known(top, _TOP_KEYS, "")
    if "pod" not in top:
        raise InputError("pod", "required: a Pod or any workload manifest")
    pod_doc = _mapping(top["pod"], "pod", "a Kubernetes object (Pod, Deployment, Job, ...)")
    pods = tuple(pods_from_object(pod_doc, "pod"))
    if not pods:
        kind = pod_doc.get("kind")
        raise InputError("pod.kind", f"{kind!r} carries no pod template that gpuguard knows")
    return PodQuestion(
        pods=pods,
        node=read_node(top.get("node")),
        image_env=_images(top.get("images")),
        objects=_objects(top.get("objects")),
    )


def read_node(section: object, where: str = "node") -> NodeProfile:
    """A node from a GPU Operator release, from explicit settings, or the most exposed assumption."""
    body = _mapping(section, where, "a mapping with operator or toolkit/devicePlugin/runtime, and gpus") \
        if section is not None else {}
    _known(body, _NODE_KEYS, where)
    gpus = _gpus(body.get("gpus", 2), f"{where}.gpus")
    if "operator" in body:
        clash = sorted(k for k in ("toolkit", "devicePlugin", "runtime") if k in body)
        if clash:
            raise InputError(f"{where}.{clash[0]}", "give either operator or explicit settings, not both")
        return _operator_node(body["operator"], gpus, f"{where}.operator")
    if not any(k in body for k in ("toolkit", "devicePlugin", "runtime")):
        return most_exposed_profile(gpus)
    toolkit = read_toolkit(body.get("toolkit"), f"{where}.toolkit")
    plugin = _mapping(body.get("devicePlugin") or {}, f"{where}.devicePlugin", "a mapping with version and env")
    _known(plugin, _PLUGIN_KEYS, f"{where}.devicePlugin")
    plugin_version = plugin.get("version")
    if plugin_version is not None and not isinstance(plugin_version, str):
        raise InputError(f"{where}.devicePlugin.version", f"expected a string, got {type_name(plugin_version)}")
    plugin_env = _string_map(plugin.get("env"), f"{where}.devicePlugin.env")
    kind, default_handler, enable_cdi = _runtime(body.get("runtime"), f"{where}.runtime")
    profile = explicit_profile(
        toolkit.version,
        toolkit.config,
        device_plugin_version=plugin_version,
        device_plugin_env=plugin_env,
        runtime=kind,
        gpus=gpus,
        platform=toolkit.platform,
    )
    runtime = profile.runtime
    if default_handler is not None:
        runtime = dataclasses.replace(runtime, default_handler=default_handler)
    if enable_cdi is not None:
        runtime = dataclasses.replace(runtime, enable_cdi=enable_cdi)
    return dataclasses.replace(profile, runtime=runtime)


def _operator_node(section: object, gpus: tuple[Gpu, ...], where: str) -> NodeProfile:
    body = _mapping(section, where, "a mapping with version and clusterPolicy or values")
    _known(body, _OPERATOR_KEYS, where)
    version = body.get("version")
    if not isinstance(version, str):
        raise InputError(f"{where}.version", f"expected a release such as \"25.3.4\", got {type_name(version)}")
    try:
        Version.parse(version)
    except VersionError as exc:
        raise InputError(f"{where}.version", str(exc)) from None
    policy = body.get("clusterPolicy")
    values = body.get("values")
    if policy is not None:
        policy = _mapping(policy, f"{where}.clusterPolicy", "a ClusterPolicy object or its spec")
    if values is not None:
        values = _mapping(values, f"{where}.values", "a Helm values document")
    runtime = body.get("runtime", "containerd")
    if not isinstance(runtime, str):
        raise InputError(f"{where}.runtime", f"expected containerd or cri-o, got {type_name(runtime)}")
    platform = read_toolkit({"platform": body["platform"]}, where).platform if "platform" in body else None
    namespace = body.get("namespace", "gpu-operator")
    if not isinstance(namespace, str):
        raise InputError(f"{where}.namespace", f"expected a string, got {type_name(namespace)}")
    return node_profile(version, policy, helm_values=values, gpus=gpus, runtime=runtime,
                        platform=platform, operator_namespace=namespace)


def _runtime(section: object, where: str) -> tuple[str, str | None, bool | None]:
    """The runtime kind, and the default handler and native CDI switch when given."""
    if section is None:
        return "containerd", None, None
    if isinstance(section, str):
        return section, None, None
    body = _mapping(section, where, "containerd, cri-o, or a mapping with kind, defaultHandler, enableCDI")
    _known(body, _RUNTIME_KEYS, where)
    kind = body.get("kind", "containerd")
    if not isinstance(kind, str):
        raise InputError(f"{where}.kind", f"expected a string, got {type_name(kind)}")
    handler = body.get("defaultHandler")
    if handler is not None and not isinstance(handler, str):
        raise InputError(f"{where}.defaultHandler", f"expected a string, got {type_name(handler)}")
    enable = body.get("enableCDI")
    if enable is not None and not isinstance(enable, bool):
        raise InputError(f"{where}.enableCDI", f"expected true or false, got {type_name(enable)}")
    return kind, handler, enable


def _gpus(value: object, where: str) -> tuple[Gpu, ...]:
    """``4`` names GPU-0..GPU-3; a list gives the ids the device plugin reports, in order."""
    if isinstance(value, bool):
        raise InputError(where, "expected a count or a list of GPU ids, got boolean")
    if isinstance(value, int):
        if not 0 <= value <= MAX_GPUS:
            raise InputError(where, f"expected 0 to {MAX_GPUS} GPUs, got {value}")
        return tuple(Gpu(uuid=f"GPU-{i}", index=str(i)) for i in range(value))
    if not isinstance(value, list):
        raise InputError(where, f"expected a count or a list of GPU ids, got {type_name(value)}")
    gpus = []
    for i, item in enumerate(value):
        if isinstance(item, str):
            gpus.append(Gpu(uuid=item, index=str(i)))
        elif isinstance(item, Mapping) and isinstance(item.get("uuid"), str):
            index = item.get("index", str(i))
            gpus.append(Gpu(uuid=item["uuid"], index=str(index)))
        else:
            raise InputError(f"{where}[{i}]", f"expected a GPU id or {{uuid, index}}, got {type_name(item)}")
    if len({g.uuid for g in gpus}) != len(gpus):
        raise InputError(where, "GPU ids must be unique")
    return tuple(gpus)


def _images(section: object) -> dict[str, tuple[str, ...]]:
    if section is None:
        return {}
    body = _mapping(section, "images", "a mapping of image reference to its env list")
    out: dict[str, tuple[str, ...]] = {}
    for image, env in body.items():
        if not isinstance(env, list) or not all(isinstance(e, str) for e in env):
            raise InputError(f"images.{image}", "expected a list of KEY=VALUE strings")
        out[image] = tuple(env)
    return out


def _objects(section: object) -> dict[tuple[str, str, str], Mapping[str, str]]:
    """ConfigMaps and Secrets that env and envFrom may refer to; Secret data is base64."""
    if section is None:
        return {}
    if not isinstance(section, list):
        raise InputError("objects", f"expected a list of ConfigMaps and Secrets, got {type_name(section)}")
    out: dict[tuple[str, str, str], Mapping[str, str]] = {}
    for i, item in enumerate(section):
        where = f"objects[{i}]"
        obj = _mapping(item, where, "a ConfigMap or Secret")
        kind = obj.get("kind")
        if kind not in ("ConfigMap", "Secret"):
            raise InputError(f"{where}.kind", f"expected ConfigMap or Secret, got {kind!r}")
        meta = _mapping(obj.get("metadata") or {}, f"{where}.metadata", "a mapping")
        name, namespace = meta.get("name"), meta.get("namespace", "default")
        if not isinstance(name, str) or not isinstance(namespace, str):
            raise InputError(f"{where}.metadata", "name and namespace must be strings")
        data = dict(_string_map(obj.get("data"), f"{where}.data"))
        if kind == "Secret":
            for key, encoded in data.items():
                try:
                    data[key] = base64.b64decode(encoded, validate=True).decode()
                except (binascii.Error, UnicodeDecodeError):
                    # Say where, never what: the value is a secret.
                    raise InputError(f"{where}.data.{key}", "not valid base64 text") from None
            data.update(_string_map(obj.get("stringData"), f"{where}.stringData"))
        out[(namespace, kind, name)] = data
    return out


def _string_map(value: object, where: str) -> dict[str, str]:
    if value is None:
        return {}
    body = _mapping(value, where, "a mapping of strings")
    for key, item in body.items():
        if not isinstance(item, str):
            raise InputError(f"{where}.{key}", f"expected a string, got {type_name(item)}")
    return dict(body)  # type: ignore[arg-type]


def _mapping(value: object, where: str, expected: str) -> Mapping[str, object]:
    if not isinstance(value, Mapping):
        raise InputError(where, f"expected {expected}, got {type_name(value)}")
    return value


def _known(body: Mapping[str, object], known: frozenset[str], where: str) -> None:
    for key in body:
        if key not in known:
            path = f"{where}.{key}" if where else str(key)
            raise InputError(path, f"unknown field (expected {', '.join(sorted(known))})")
