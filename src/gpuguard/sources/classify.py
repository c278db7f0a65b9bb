"""What an input is: a workload, node settings, an env source, or something to count and skip.

Documents (parsed YAML/JSON) are sorted by ``kind`` and ``apiVersion``;
whole files by name (a toolkit ``config.toml``, a Dockerfile).  A GPU
Operator Helm values file is a mapping without ``kind`` whose top-level
keys are the chart's (``toolkit``, ``devicePlugin``, ``cdi``, ...); the
device plugin's config file is ``version: v1`` with ``flags`` or
``sharing``.

:func:`node_setting_spans` is the audit's cheap pre-scan: a bytes search for
the few things that describe GPU nodes (ClusterPolicy, RuntimeClass, Helm
values, a device plugin config), returning only the document slices that
hold them, so node settings are known before any workload is decided and
workloads are still parsed exactly once.
"""

from __future__ import annotations

import base64
import binascii
import bisect
import os
import re
from collections.abc import Iterator, Mapping
from enum import StrEnum
from typing import Any

from gpuguard.sources.kubernetes import POD_TEMPLATE_PATHS, is_known_kind

__all__ = [
    "Category",
    "classify",
    "env_source",
    "is_dockerfile",
    "is_toml",
    "node_setting_spans",
    "runtime_class_handler",
    "wanted_kind",
]

ENV_VALUE_LIMIT = 4096  # longer ConfigMap/Secret values (certificates, config files) are cut


class Category(StrEnum):
    WORKLOAD = "workload"
    CLUSTER_POLICY = "ClusterPolicy"
    NVIDIA_DRIVER = "NVIDIADriver"
    RUNTIME_CLASS = "RuntimeClass"
    CONFIG_MAP = "ConfigMap"
    SECRET = "Secret"
    DEVICE_PLUGIN_CONFIG = "device plugin config"
    HELM_VALUES = "GPU Operator Helm values"
    EMPTY = "empty"
    OTHER = "other"  # an unknown kind: counted, never an error


HELM_KEYS = frozenset({"operator", "toolkit", "devicePlugin", "driver", "cdi", "dcgmExporter", "validator", "nfd"})
_NODE_HELM_KEYS = frozenset({"toolkit", "devicePlugin", "cdi", "operator"})


def classify(obj: object) -> tuple[Category, str]:
    """The category of one object (List items already split) and the kind to count it under."""
    if obj is None:
        return Category.EMPTY, ""
    if not isinstance(obj, Mapping):
        return Category.OTHER, f"(a {type(obj).__name__} document)"
    kind = obj.get("kind")
    if not isinstance(kind, str):
        if _is_device_plugin_config(obj):
            return Category.DEVICE_PLUGIN_CONFIG, "device plugin config"
        if kind is None and sum(1 for k in obj if k in HELM_KEYS) >= 2 and any(k in obj for k in _NODE_HELM_KEYS):
            return Category.HELM_VALUES, "Helm values"
        return Category.OTHER, "(no kind)"
    api = obj.get("apiVersion")
    group = api.rpartition("/")[0] if isinstance(api, str) else ""
    if kind == "ClusterPolicy" and group in ("nvidia.com", ""):
        return Category.CLUSTER_POLICY, kind
    if kind == "NVIDIADriver" and group in ("nvidia.com", ""):
        return Category.NVIDIA_DRIVER, kind
    if kind == "RuntimeClass" and (group.startswith("node.k8s.io") or not group):
        return Category.RUNTIME_CLASS, kind
    if kind == "ConfigMap" and not group:
        return Category.CONFIG_MAP, kind
    if kind == "Secret" and not group:
        return Category.SECRET, kind
    if is_known_kind(obj):
        return Category.WORKLOAD, kind
    return Category.OTHER, kind


def _is_device_plugin_config(obj: Mapping[str, Any]) -> bool:
    return obj.get("version") == "v1" and ("flags" in obj or "sharing" in obj)


_WANTED = frozenset(
    {kind for _, kind in POD_TEMPLATE_PATHS} | {"ClusterPolicy", "NVIDIADriver", "RuntimeClass", "ConfigMap", "Secret"}
)


def wanted_kind(kind: str) -> bool:
    """Whether an audit needs a document of this ``kind`` built (others are only counted)."""
    return kind in _WANTED or kind.endswith("List")


def is_toml(path: str) -> bool:
    return path.endswith(".toml")


def is_dockerfile(path: str) -> bool:
    name = os.path.basename(path)
    return name.startswith("Dockerfile") or name.endswith(".Dockerfile") or name == "Containerfile"


def runtime_class_handler(obj: Mapping[str, Any]) -> tuple[str, str] | None:
    """A RuntimeClass's (name, handler), when both are strings."""
    meta = obj.get("metadata")
    name = meta.get("name") if isinstance(meta, Mapping) else None
    handler = obj.get("handler")
    if isinstance(name, str) and isinstance(handler, str) and name and handler:
        return name, handler
    return None


def env_source(obj: Mapping[str, Any]) -> tuple[tuple[str, str, str], dict[str, str]] | None:
    """A ConfigMap's or Secret's ``(namespace, kind, name)`` and string data, for env resolution.

    Secret values are decoded and kept only in memory, never printed; values
    that are not valid base64 text are dropped (the variable stays unknown).
    Values longer than :data:`ENV_VALUE_LIMIT` are cut, so memory stays small.
    """
    kind = obj.get("kind")
    meta = obj.get("metadata")
    if not isinstance(meta, Mapping) or not isinstance(meta.get("name"), str):
        return None
    namespace = meta.get("namespace") or "default"
    if not isinstance(namespace, str):
        return None
    out: dict[str, str] = {}
    data = obj.get("data")
    if isinstance(data, Mapping):
        for key, raw in data.items():
            if not isinstance(key, str) or not isinstance(raw, str):
                continue
            value = raw
            if kind == "Secret":
                try:
                    value = base64.b64decode(raw, validate=True).decode()
                except (binascii.Error, UnicodeDecodeError, ValueError):
                    continue
            out[key] = value[:ENV_VALUE_LIMIT]
    string_data = obj.get("stringData") if kind == "Secret" else None
    if isinstance(string_data, Mapping):
        out.update(
            {k: v[:ENV_VALUE_LIMIT] for k, v in string_data.items() if isinstance(k, str) and isinstance(v, str)}
        )
    return (namespace, str(kind), meta["name"]), out


# --- pre-scan ----------------------------------------------------------------------------------------

_NODE_MARKER = re.compile(
    rb"""kind["']?[ \t]*:[ \t]*["']?(?:ClusterPolicy|RuntimeClass)\b"""
    rb"""|^(?:toolkit|devicePlugin|cdi)[ \t]*:"""
    rb"""|^(?:flags|sharing)[ \t]*:""",
    re.M,
)
_LITERALS = (b"ClusterPolicy", b"RuntimeClass", b"toolkit", b"devicePlugin", b"cdi", b"flags", b"sharing")
_SEPARATOR = re.compile(rb"^---(?=[ \t\r\n]|\Z)", re.M)
_JSON_START = re.compile(rb"[ \t\r\n\xef\xbb\xbf]*[{\[]")


def node_setting_spans(data: bytes) -> Iterator[tuple[int, bytes]]:
    """Slices of ``data`` that may describe GPU nodes: (0-based line of the slice, its bytes).

    A YAML stream is cut at the ``---`` lines around each marker; JSON (and
    anything else the markers find but that cannot be cut) is one slice.
    The slices are parsed again by the caller, so false positives only cost
    a parse; a marker it misses (say, a ClusterPolicy written in flow style
    with a tag) would leave the node assumed, never read as safe.
    """
    if not any(literal in data for literal in _LITERALS):  # memchr-fast: most inputs stop here
        return
    first = _NODE_MARKER.search(data)
    if first is None:
        return
    if _JSON_START.match(data):
        yield 0, data
        return
    starts = [m.start() for m in _SEPARATOR.finditer(data)]
    done_until = -1
    pos = first.start()
    while True:
        i = bisect.bisect_right(starts, pos)
        begin = starts[i - 1] if i else 0
        end = starts[i] if i < len(starts) else len(data)
        if begin >= done_until:
            yield data.count(b"\n", 0, begin), data[begin:end]
            done_until = end
        m = _NODE_MARKER.search(data, end)
        if m is None:
            return
        pos = m.start()
