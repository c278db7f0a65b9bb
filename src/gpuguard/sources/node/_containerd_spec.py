"""A container's OCI spec (as containerd stores it) -> the parts that decide GPU exposure.

The spec is JSON written by whoever created the container; it is read as
untrusted: a wrong type or an oversized spec raises ``SpecError`` naming the
field, and the caller reports that one container as unreadable.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from gpuguard.model.container import ContainerSpec, Mount
from gpuguard.model.observed import DeviceNode
from gpuguard.sources.node.devices import classify

MAX_SPEC_BYTES = 4 << 20  # containerd's own specs are a few KiB; a privileged one lists every host device


class SpecError(ValueError):
    """The spec (or one of its fields) is not what the OCI runtime spec says."""


@dataclass(frozen=True, slots=True)
class SpecParts:
    spec: ContainerSpec
    linux_devices: tuple[DeviceNode, ...]
    privileged: bool


def _get(obj: Mapping[str, Any], key: str, kind: type, where: str) -> Any:
    value = obj.get(key)
    if value is None:
        return kind()
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
        raise SpecError(f"{where}{key}: expected {kind.__name__}, got {type(value).__name__}")
    return value


def _strings(values: list[Any], where: str) -> tuple[str, ...]:
    for i, v in enumerate(values):
        if not isinstance(v, str):
            raise SpecError(f"{where}[{i}]: expected str, got {type(v).__name__}")
    return tuple(values)


def _mounts(values: list[Any]) -> tuple[Mount, ...]:
    mounts = []
    for i, m in enumerate(values):
        if not isinstance(m, dict):
            raise SpecError(f"mounts[{i}]: expected object, got {type(m).__name__}")
        where = f"mounts[{i}]."
        mounts.append(Mount(_get(m, "source", str, where), _get(m, "destination", str, where)))
    return tuple(mounts)


def _devices(values: list[Any]) -> tuple[tuple[DeviceNode, ...], bool]:
    """NVIDIA nodes of ``linux.devices``, and whether it lists /dev/mem (only a host-devices spec does)."""
    nodes, host = [], False
    for i, d in enumerate(values):
        if not isinstance(d, dict):
            raise SpecError(f"linux.devices[{i}]: expected object, got {type(d).__name__}")
        where = f"linux.devices[{i}]."
        path, kind = _get(d, "path", str, where), _get(d, "type", str, where)
        major, minor = _get(d, "major", int, where), _get(d, "minor", int, where)
        host = host or path == "/dev/mem"
        if kind in ("c", "u"):
            node = classify(path.removeprefix("/dev/"), major, minor)
            if node is not None:
                nodes.append(node)
    return tuple(nodes), host


def _allows_all_devices(linux: Mapping[str, Any]) -> bool:
    """The device cgroup allows every device (``--privileged``'s ``a *:* rwm``)."""
    rules = _get(_get(linux, "resources", dict, "linux."), "devices", list, "linux.resources.")
    return any(
        isinstance(r, dict) and r.get("allow") is True and r.get("type") in (None, "a")
        and r.get("major") is None and r.get("minor") is None and "m" in str(r.get("access", ""))
        for r in rules
    )


def spec_parts(raw: bytes) -> SpecParts:
    """Parse one container's OCI spec JSON; raises SpecError naming the bad field."""
    if len(raw) > MAX_SPEC_BYTES:
        raise SpecError(f"spec is {len(raw)} bytes, over the {MAX_SPEC_BYTES} byte limit")
    try:
        doc = orjson.loads(raw)
    except orjson.JSONDecodeError as e:
        raise SpecError(f"spec is not JSON: {e}") from None
    if not isinstance(doc, dict):
        raise SpecError(f"spec: expected object, got {type(doc).__name__}")
    process = _get(doc, "process", dict, "")
    env = _strings(_get(process, "env", list, "process."), "process.env")
    caps = _get(process, "capabilities", dict, "process.")
    bounding_list = _get(caps, "bounding", list, "process.capabilities.")
    bounding = frozenset(_strings(bounding_list, "process.capabilities.bounding"))
    mounts = _mounts(_get(doc, "mounts", list, ""))
    annotations = _get(doc, "annotations", dict, "")
    _strings(list(annotations.values()), "annotations")
    linux = _get(doc, "linux", dict, "")
    nodes, host_devices = _devices(_get(linux, "devices", list, "linux."))
    dev_bind = any(m.destination.rstrip("/") == "/dev" and m.source.rstrip("/") == "/dev" for m in mounts)
    spec = ContainerSpec(env=env, bounding=bounding, mounts=mounts, annotations=dict(annotations))
    allows_all = _allows_all_devices(linux)
    privileged = spec.privileged and (dev_bind or host_devices or allows_all)
    return SpecParts(spec, nodes, privileged)
