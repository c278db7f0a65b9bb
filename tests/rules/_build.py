"""Inputs for rule tests, built with the real sources and engine (never with the code under test)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from gpuguard.engine.operator.profile import node_profile
from gpuguard.engine.pod import decide_pod
from gpuguard.model.finding import Exempt, Finding
from gpuguard.model.node import Gpu, NodeProfile
from gpuguard.model.pod import Pod
from gpuguard.rules.settings import AuditSettings
from gpuguard.rules.workload import check_pod
from gpuguard.sources.kubernetes import pods_from_object

GPUS = tuple(Gpu(f"GPU-{i}aaa", str(i)) for i in range(4))
NVD = "NVIDIA_VISIBLE_DEVICES"

# Image configs as the registry would give them.
CUDA = "nvcr.io/nvidia/cuda:12.4.1-base-ubuntu22.04"
LEGACY_CUDA = "example.com/legacy/tf-1.15:old"
BUSYBOX = "busybox:1.36"
IMAGES: dict[str, tuple[str, ...]] = {
    CUDA: ("PATH=/usr/bin", "NVIDIA_REQUIRE_CUDA=cuda>=12.4", f"{NVD}=all", "CUDA_VERSION=12.4.1"),
    LEGACY_CUDA: ("PATH=/usr/bin", "CUDA_VERSION=10.0.130"),  # no NVD, no NVIDIA_REQUIRE_CUDA: "all"
    BUSYBOX: ("PATH=/usr/bin",),
}

ACCEPT_FALSE = {"name": "ACCEPT_NVIDIA_VISIBLE_DEVICES_ENVVAR_WHEN_UNPRIVILEGED", "value": "false"}
ACCEPT_MOUNTS = {"name": "ACCEPT_NVIDIA_VISIBLE_DEVICES_AS_VOLUME_MOUNTS", "value": "true"}
VOLUME_MOUNTS = {"name": "DEVICE_LIST_STRATEGY", "value": "volume-mounts"}


def operator_node(version: str, spec: Mapping[str, Any] | None = None, **kw: Any) -> NodeProfile:
    return node_profile(version, dict(spec) if spec is not None else None, gpus=GPUS, **kw)


def hardened_legacy() -> NodeProfile:
    """GPU Operator 25.3.4 with the research's mode-A recipe."""
    return operator_node(
        "25.3.4", {"toolkit": {"env": [ACCEPT_FALSE, ACCEPT_MOUNTS]}, "devicePlugin": {"env": [VOLUME_MOUNTS]}}
    )


def container(name: str = "c", image: str = BUSYBOX, **fields: Any) -> dict[str, Any]:
    return {"name": name, "image": image, **fields}


def gpu(n: int = 1) -> dict[str, Any]:
    return {"limits": {"nvidia.com/gpu": n}}


def env(value: str) -> list[dict[str, str]]:
    return [{"name": NVD, "value": value}]


def pod(
    *containers: dict[str, Any],
    namespace: str = "team",
    kind: str = "Pod",
    name: str = "w",
    labels: Mapping[str, str] | None = None,
    annotations: Mapping[str, str] | None = None,
    **spec: Any,
) -> Pod:
    """One Pod from a small manifest: a bare Pod, or a Deployment/DaemonSet with a template."""
    meta: dict[str, Any] = {"labels": dict(labels or {}), "annotations": dict(annotations or {})}
    body = {"containers": list(containers), **spec}
    if kind == "Pod":
        obj = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": name, "namespace": namespace, **meta},
            "spec": body,
        }
    else:
        obj = {
            "apiVersion": "apps/v1",
            "kind": kind,
            "metadata": {"name": name, "namespace": namespace},
            "spec": {"template": {"metadata": meta, "spec": body}},
        }
    (out,) = pods_from_object(obj, "test.yaml")
    return out


def run(
    p: Pod,
    node: NodeProfile,
    *,
    images: Mapping[str, Sequence[str]] | None = None,
    objects: Mapping[tuple[str, str, str], Mapping[str, str]] | None = None,
    settings: AuditSettings | None = None,
) -> tuple[list[Finding], list[Exempt]]:
    image_env = {k: tuple(v) for k, v in (IMAGES if images is None else images).items()}
    decisions = decide_pod(p, node, image_env=image_env, objects=objects)
    return check_pod(p, decisions, node, settings or AuditSettings())


def ids(findings: Sequence[Finding]) -> set[str]:
    return {f.rule_id for f in findings}
