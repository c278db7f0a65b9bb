"""A container's final environment, as kubelet builds it and containerd writes it.

Kubelet (``pkg/kubelet/kubelet_pods.go``): the device plugin's envs come
first, then the pod's own env: ``envFrom`` sources in order, then ``env``
entries, later names replacing earlier ones; literal ``env`` values get
``$(VAR)`` expansion against what was defined before them
(``third_party/forked/golang/expansion``). containerd's CRI then writes
``process.env`` as the image env followed by the CRI envs in one
``oci.WithEnv`` call, whose ``replaceOrAppendEnvValues`` replaces keys of the
base spec in place and appends everything else, duplicates included. The
toolkit reads the last duplicate, so order is what decides.

An input we cannot see (a Secret not given, a fieldRef to the pod IP, an image
never inspected) makes the variable *unknown*, never empty.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from gpuguard.model.pod import Container, EnvVar, Pod

ObjectKey = tuple[str, str, str]  # (namespace, kind "ConfigMap" | "Secret", name)
Objects = Mapping[ObjectKey, Mapping[str, str]]

# Variables the toolkit reads; an unknown envFrom source may set any of them.
TOOLKIT_NAMES = (
    "NVIDIA_VISIBLE_DEVICES",
    "NVIDIA_DRIVER_CAPABILITIES",
    "NVIDIA_DISABLE_REQUIRE",
    "NVIDIA_IMEX_CHANNELS",
    "NVIDIA_MIG_CONFIG_DEVICES",
    "NVIDIA_MIG_MONITOR_DEVICES",
    "NVIDIA_GDS",
    "NVIDIA_MOFED",
    "NVIDIA_GDRCOPY",
    "NVIDIA_NVSWITCH",
    "CUDA_VERSION",
)
REQUIRE_FAMILY = "NVIDIA_REQUIRE_"  # recorded as the key "NVIDIA_REQUIRE_*"

_KIND = {
    "configMapRef": "ConfigMap",
    "secretRef": "Secret",
    "configMapKeyRef": "ConfigMap",
    "secretKeyRef": "Secret",
}


@dataclass(frozen=True, slots=True)
class PodEnv:
    """The pod's own env for one container, after kubelet's resolution.

    ``values`` is in first-definition order (upstream a Go map: random order,
    harmless since names are unique). ``unknown`` maps names to why. ``error``
    is kubelet's CreateContainerConfigError: the container never starts.
    """

    values: tuple[tuple[str, str], ...] = ()
    unknown: Mapping[str, str] = field(default_factory=dict)
    error: str | None = None


def expand(
    value: str,
    lookup: Mapping[str, str],
    unknown: Mapping[str, str] | None = None,
    unknown_prefixes: Sequence[str] = (),
) -> tuple[str, str | None]:
    """Kubelet's ``$(VAR)`` expansion; returns the value and the first unknown name it referenced.

    ``$$`` is an escaped ``$``; ``$(NAME)`` is replaced when NAME is in
    ``lookup``, else kept verbatim; a ``$`` before anything else, or ``$(``
    with no closing ``)``, is kept as it is. A reference to a name in
    ``unknown``, or to an undefined name that an unknown envFrom source could
    define (its prefix in ``unknown_prefixes``), makes the whole value unknown.
    """
    if "$" not in value:
        return value, None
    out: list[str] = []
    i = 0
    n = len(value)
    first_unknown: str | None = None
    while i < n:
        c = value[i]
        if c != "$" or i + 1 >= n:
            out.append(c)
            i += 1
            continue
        nxt = value[i + 1]
        if nxt == "$":
            out.append("$")
            i += 2
        elif nxt == "(":
            close = value.find(")", i + 2)
            if close < 0:
                out.append("$(")
                i += 2
                continue
            name = value[i + 2 : close]
            if name in lookup:
                out.append(lookup[name])
            else:
                out.append(value[i : close + 1])
                if first_unknown is None and (
                    (unknown is not None and name in unknown) or any(name.startswith(p) for p in unknown_prefixes)
                ):
                    first_unknown = name
            i = close + 1
        else:
            out.append(c)
            out.append(nxt)
            i += 2
    return "".join(out), first_unknown


def _names_from_prefix(prefix: str, extra: Sequence[str]) -> list[str]:
    """Toolkit-relevant names an envFrom source with ``prefix`` could produce."""
    names = [n for n in (*TOOLKIT_NAMES, *extra) if n.startswith(prefix)]
    if REQUIRE_FAMILY.startswith(prefix) or prefix.startswith(REQUIRE_FAMILY):
        names.append(REQUIRE_FAMILY + "*")
    return names


def _field_ref(pod: Pod, path: str) -> str | None:
    """Values of ``fieldRef`` that the pod object itself determines; None when only the node knows."""
    simple = {
        "metadata.name": pod.name,
        "metadata.namespace": pod.namespace,
        "spec.serviceAccountName": pod.service_account,
    }
    if path in simple:
        return simple[path]
    if path == "spec.nodeName":
        return pod.node_name
    for prefix, source in (("metadata.labels['", pod.labels), ("metadata.annotations['", pod.annotations)):
        if path.startswith(prefix) and path.endswith("']"):
            return source.get(path[len(prefix) : -2], "")
    return None


def pod_env(
    pod: Pod,
    container: Container,
    objects: Objects | None = None,
    *,
    swarm_names: Sequence[str] = (),
) -> PodEnv:
    """Resolve ``envFrom`` and ``env`` of one container as kubelet does.

    ``objects`` holds the ConfigMaps/Secrets we know; one that is not there
    makes what it would provide unknown (it may exist in the cluster), whether
    or not the reference is optional. A key missing from a known object unsets
    nothing when ``optional`` and fails the container otherwise.
    ``swarm_names`` are extra names the toolkit reads (``swarm-resource``).
    """
    values: dict[str, str] = {}
    unknown: dict[str, str] = {}
    open_prefixes: list[str] = []  # prefixes of envFrom sources we could not read
    ns = pod.namespace
    for src in container.env_from:
        kind = _KIND.get(src.kind, src.kind)
        data = None if objects is None else objects.get((ns, kind, src.name))
        if data is None:
            why = f"{kind} {ns}/{src.name} (envFrom) is not known"
            for name in _names_from_prefix(src.prefix, swarm_names):
                unknown[name] = why
                values.pop(name, None)
            open_prefixes.append(src.prefix)
            continue
        for key, val in data.items():
            name = src.prefix + key
            values[name] = val
            unknown.pop(name, None)
    for var in container.env:
        error = _apply_env(pod, var, values=values, unknown=unknown, objects=objects, open_prefixes=open_prefixes)
        if error is not None:
            return PodEnv(tuple(values.items()), unknown, error)
    return PodEnv(tuple(values.items()), unknown, None)


def _apply_env(
    pod: Pod,
    var: EnvVar,
    *,
    values: dict[str, str],
    unknown: dict[str, str],
    objects: Objects | None,
    open_prefixes: Sequence[str],
) -> str | None:
    """Apply one ``env`` entry; returns kubelet's error when the container cannot be created."""
    ref = var.value_from
    name = var.name
    if ref is None:
        val, used_unknown = expand(var.value, values, unknown, open_prefixes)
        if used_unknown is not None:
            unknown[name] = f"$({used_unknown}) in its value is unknown"
            values.pop(name, None)
            return None
        values[name] = val
        unknown.pop(name, None)
        return None
    if ref.kind in ("configMapKeyRef", "secretKeyRef"):
        kind = _KIND[ref.kind]
        data = None if objects is None else objects.get((pod.namespace, kind, ref.name))
        if data is None:
            unknown[name] = f"{kind} {pod.namespace}/{ref.name} key {ref.key!r} is not known"
            values.pop(name, None)
            return None
        if ref.key not in data:
            if ref.optional:
                return None  # kubelet `continue`s: an earlier value of the name stays
            return f"couldn't find key {ref.key} in {kind} {pod.namespace}/{ref.name}"
        values[name] = data[ref.key]
        unknown.pop(name, None)
        return None
    if ref.kind == "fieldRef":
        field_value = _field_ref(pod, ref.name)
        if field_value is None:
            unknown[name] = f"fieldRef {ref.name} is only known on the node"
            values.pop(name, None)
            return None
        values[name] = field_value
        unknown.pop(name, None)
        return None
    unknown[name] = f"{ref.kind} {ref.name} is only known on the node"
    values.pop(name, None)
    return None


def oci_env(
    image_env: Sequence[str],
    cri_env: Sequence[tuple[str, str]],
    base: Sequence[str] = (),
) -> tuple[str, ...]:
    """containerd's ``process.env``: ``base`` then ``oci.WithEnv(image env + CRI envs)``.

    Keys already in ``base`` are replaced in place; every other entry is
    appended, duplicates included (the cache is not updated for appended keys).
    An entry without ``=`` removes the key from ``base``.
    """
    result = list(base)
    index = {e.split("=", 1)[0]: i for i, e in enumerate(base)}
    removed: set[int] = set()
    for entry in (*image_env, *(f"{k}={v}" for k, v in cri_env)):
        key, sep, _ = entry.partition("=")
        pos = index.get(key)
        if not sep:
            if pos is not None:
                removed.add(pos)
            continue
        if pos is not None:
            result[pos] = entry
            removed.discard(pos)
        else:
            result.append(entry)
    if removed:
        return tuple(e for i, e in enumerate(result) if i not in removed)
    return tuple(result)
