"""Kubernetes pods, reduced to what decides GPU exposure.

Sources turn manifests (any workload kind) and live objects into these; the
engine never sees raw Kubernetes dictionaries.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from gpuguard.model.finding import Location


@dataclass(frozen=True, slots=True)
class ValueRef:
    """Where a ``valueFrom`` points: configMapKeyRef, secretKeyRef, fieldRef or resourceFieldRef."""

    kind: str  # "configMapKeyRef" | "secretKeyRef" | "fieldRef" | "resourceFieldRef"
    name: str = ""  # ConfigMap/Secret name, or the field path / resource
    key: str = ""
    optional: bool = False


@dataclass(frozen=True, slots=True)
class EnvVar:
    """One ``env`` entry; exactly one of ``value`` or ``value_from`` is meaningful."""

    name: str
    value: str = ""
    value_from: ValueRef | None = None


@dataclass(frozen=True, slots=True)
class EnvFromSource:
    """One ``envFrom`` entry."""

    kind: str  # "configMapRef" | "secretRef"
    name: str
    prefix: str = ""
    optional: bool = False


@dataclass(frozen=True, slots=True)
class VolumeMount:
    name: str
    mount_path: str
    sub_path: str = ""
    read_only: bool = False


@dataclass(frozen=True, slots=True)
class Volume:
    """A pod volume; only hostPath volumes can reach host device nodes."""

    name: str
    host_path: str | None = None  # set for hostPath volumes
    kind: str = "other"  # "hostPath", "configMap", "emptyDir", ...


@dataclass(frozen=True, slots=True)
class SecurityContext:
    """The container's effective security context (pod-level values already applied)."""

    privileged: bool = False
    capabilities_add: tuple[str, ...] = ()
    capabilities_drop: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Container:
    """A container, init container or ephemeral container of a pod."""

    name: str
    image: str = ""
    kind: str = "container"  # "container" | "initContainer" | "ephemeralContainer"
    env: tuple[EnvVar, ...] = ()
    env_from: tuple[EnvFromSource, ...] = ()
    # Extended resources, limits merged over requests: {"nvidia.com/gpu": 1}
    resources: Mapping[str, int] = field(default_factory=dict)
    security: SecurityContext = field(default_factory=SecurityContext)
    volume_mounts: tuple[VolumeMount, ...] = ()


@dataclass(frozen=True, slots=True)
class OwnerReference:
    """An owner of the workload object (how GPU Operator components are recognised)."""

    api_version: str
    kind: str
    name: str
    controller: bool = False


@dataclass(frozen=True, slots=True)
class Pod:
    """A pod or the pod template of a workload, with where it came from."""

    name: str
    namespace: str = "default"
    containers: tuple[Container, ...] = ()
    volumes: tuple[Volume, ...] = ()
    annotations: Mapping[str, str] = field(default_factory=dict)
    labels: Mapping[str, str] = field(default_factory=dict)
    runtime_class_name: str | None = None
    service_account: str = "default"
    workload_kind: str = "Pod"  # the kind of the object that carried this pod template
    workload_name: str = ""
    node_name: str | None = None
    # Where in the workload object the pod template sits ("spec.template"; "" for a Pod).
    template_path: str = ""
    # The carrying object as a finding names it, and where it was read.
    workload_api_version: str = "v1"
    workload_namespace: str | None = None
    workload_annotations: Mapping[str, str] = field(default_factory=dict)
    workload_labels: Mapping[str, str] = field(default_factory=dict)
    owner_references: tuple[OwnerReference, ...] = ()
    location: Location | None = None
    # DRA: names of the pod's spec.resourceClaims (devices requested through ResourceClaims)
    resource_claims: tuple[str, ...] = ()
