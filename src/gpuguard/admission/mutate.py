"""The mutation: ``NVIDIA_VISIBLE_DEVICES=void`` on every container that requests no GPU, as a JSONPatch.

A pod's own ``env`` beats both its image's ``ENV`` and any ``envFrom``, so one
entry settles the variable whatever the image or a ConfigMap says; ``void``
(never ``none``) tells the toolkit to leave the container alone. As in
``gpuguard fix``: exactly one such entry remains, with value ``void`` and no
``valueFrom``; other entries and ``envFrom`` are untouched; containers that
request devices (``nvidia.com/*`` or a DRA claim) and exempt workloads are
left alone. A pod already in that shape gets no patch (idempotent).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from gpuguard.engine.pod import requested
from gpuguard.model.pod import Container, Pod

if TYPE_CHECKING:
    from gpuguard.admission.policy import Policy

NVD = "NVIDIA_VISIBLE_DEVICES"
VOID = "void"
SUBRESOURCE_EPHEMERAL = "ephemeralcontainers"
LISTS = ("initContainers", "containers", "ephemeralContainers")  # the order the parser reads them
_ENTRY = {"name": NVD, "value": VOID}


def pointer(*parts: str | int) -> str:
    """An RFC 6901 JSON Pointer (``~`` and ``/`` escaped)."""
    return "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in parts)


def _requests_devices(raw: Mapping[str, Any], model: Container) -> bool:
    resources = raw.get("resources")
    claims = resources.get("claims") if isinstance(resources, Mapping) else None
    return requested(model) > 0 or bool(claims)


def _is_void(entry: object) -> bool:
    return isinstance(entry, Mapping) and entry.get("value") == VOID and entry.get("valueFrom") is None


def container_ops(raw: Mapping[str, Any], base: str) -> list[dict[str, Any]]:
    """The ops that leave exactly one ``NVIDIA_VISIBLE_DEVICES=void`` in one container's env."""
    env = raw.get("env")
    if not isinstance(env, list) or not env:
        return [{"op": "add", "path": base + "/env", "value": [dict(_ENTRY)]}]
    hits = [i for i, e in enumerate(env) if isinstance(e, Mapping) and e.get("name") == NVD]
    if not hits:
        return [{"op": "add", "path": base + "/env/-", "value": dict(_ENTRY)}]
    keep = hits[-1]  # the entry that was effective stays in its place
    ops: list[dict[str, Any]] = [{"op": "remove", "path": f"{base}/env/{i}"} for i in reversed(hits[:-1])]
    if not _is_void(env[keep]) or set(env[keep]) - {"name", "value", "valueFrom"}:
        at = keep - (len(hits) - 1)  # earlier removals shift it
        ops.append({"op": "replace", "path": f"{base}/env/{at}", "value": dict(_ENTRY)})
    return ops


def void_patch(
    obj: Mapping[str, Any],
    pod: Pod,
    policy: Policy,
    *,
    only_ephemeral: bool = False,
    old: frozenset[str] | None = None,
) -> tuple[dict[str, Any], ...]:
    """The JSONPatch for ``obj`` (already type-checked into ``pod``); () when nothing needs changing.

    ``only_ephemeral``: a ``pods/ephemeralcontainers`` update, where only ephemeral
    containers not in ``old`` (the names the pod already had) may change.
    """
    if policy.pod_exempt(pod) is not None:
        return ()
    spec = obj.get("spec") or {}
    models = iter(pod.containers)  # parsed in the same order: init, app, ephemeral
    ops: list[dict[str, Any]] = []
    for key in LISTS:
        for i, raw in enumerate(spec.get(key) or ()):
            model = next(models)
            if only_ephemeral and (key != "ephemeralContainers" or (old is not None and model.name in old)):
                continue
            if _requests_devices(raw, model) or policy.container_exempt(pod, model) is not None:
                continue
            ops.extend(container_ops(raw, pointer("spec", key, i)))
    return tuple(ops)


def with_patch(obj: Mapping[str, Any], patch: tuple[dict[str, Any], ...]) -> dict[str, Any]:
    """``obj`` with the ops of :func:`void_patch` applied (a copy): the pod as it will be admitted."""
    out = copy.deepcopy(dict(obj))
    for op in patch:
        parts = [p.replace("~1", "/").replace("~0", "~") for p in op["path"].split("/")[1:]]
        parent: Any = out
        for part in parts[:-1]:
            parent = parent[int(part)] if isinstance(parent, list) else parent[part]
        last = parts[-1]
        if op["op"] == "remove":
            del parent[int(last)]
        elif isinstance(parent, list):
            if last == "-":
                parent.append(copy.deepcopy(op["value"]))
            elif op["op"] == "replace":
                parent[int(last)] = copy.deepcopy(op["value"])
            else:
                parent.insert(int(last), copy.deepcopy(op["value"]))
        else:
            parent[last] = copy.deepcopy(op["value"])
    return out
