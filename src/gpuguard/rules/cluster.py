"""Rules only a live cluster can answer (GG207-GG209): admission control, stale GPU grants, shared GPUs.

Pure functions over what the cluster reader read; the audit calls GG207 once
per audit, GG208 once per pod and GG209 once per GPU node.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from gpuguard.model.decision import ContainerDecision, Step
from gpuguard.model.finding import Finding, Location, Resource
from gpuguard.model.pod import Pod
from gpuguard.rules.registry import rule

# What a policy must mention to count as covering GPU exposure.
GPU_MARKERS = ("NVIDIA_VISIBLE_DEVICES", "nvidia.com/gpu", "runtimeClassName")
# gpuguard's own webhook: its service paths and how the chart names and labels it.
WEBHOOK_PATHS = ("/validate", "/mutate")
WEBHOOK_KINDS = ("ValidatingWebhookConfiguration", "MutatingWebhookConfiguration")


def is_gpuguard_webhook(obj: Mapping[str, Any]) -> bool:
    """A webhook configuration of ours: named or labelled gpuguard, calling a service at /validate or /mutate."""
    meta = obj.get("metadata") if isinstance(obj.get("metadata"), Mapping) else {}
    assert isinstance(meta, Mapping)
    labels = meta.get("labels") if isinstance(meta.get("labels"), Mapping) else {}
    assert isinstance(labels, Mapping)
    ours = "gpuguard" in str(meta.get("name", "")) or any("gpuguard" in str(v) for v in labels.values())
    if not ours:
        return False
    for hook in obj.get("webhooks") or ():
        service = ((hook or {}).get("clientConfig") or {}).get("service") or {}
        if isinstance(service, Mapping) and str(service.get("path", "")) in WEBHOOK_PATHS:
            return True
    return False


def covers_gpu(obj: Mapping[str, Any]) -> bool:
    """A Kyverno/Gatekeeper/VAP policy (or webhook of ours) that covers GPU exposure."""
    if obj.get("kind") in WEBHOOK_KINDS:
        return is_gpuguard_webhook(obj)
    text = json.dumps(obj.get("spec", obj), default=str)
    return any(marker in text for marker in GPU_MARKERS)


def check_admission(objects: Sequence[Mapping[str, Any]], location: Location | None) -> list[Finding]:
    """GG207: nothing at admission stops a pod from reaching GPUs it did not request."""
    if any(covers_gpu(o) for o in objects):
        return []
    info = rule("GG207")
    seen = sorted({str(o.get("kind", "")) for o in objects if o.get("kind")})
    what = f"read {len(objects)} admission objects ({', '.join(seen)})" if objects else "no admission objects read"
    return [Finding(
        rule_id=info.id, severity=info.severity,
        message=("No admission control covers GPU exposure: no gpuguard webhook and no Kyverno, Gatekeeper or "
                 f"ValidatingAdmissionPolicy that mentions {', '.join(GPU_MARKERS)} ({what})."),
        remediation=info.remediation, location=location,
        trail=(Step(info.id, "admission configuration", what),),
    )]


def _sees_more(before: tuple[str, ...] | None, now: tuple[str, ...] | None) -> bool:
    if not before or before == now:
        return False
    return before == ("all",) or not now or len(before) > len(now)


def stale_containers(current: Sequence[ContainerDecision], exposed: Sequence[ContainerDecision]) -> list[str]:
    """Containers that see GPUs under the most exposed settings (``exposed``) but fewer or none now."""
    now = {d.container: d.sees for d in current}
    return [d.container for d in exposed if _sees_more(d.sees, now.get(d.container))]


def check_restart(  # noqa: PLR0917 - one pod and what the audit knows of its node
    pod: Pod,
    started: str,
    rollout: str,
    current: Sequence[ContainerDecision],
    exposed: Sequence[ContainerDecision],
    location: Location | None,
) -> list[Finding]:
    """GG208: the pod started before the toolkit's last rollout and got GPUs then that it would not get today.

    Heuristic: "the GPUs it got then" is the engine's answer under the most exposed common
    configuration (the operator's pre-hardening defaults); "today" is its answer under the node's
    current profile. Timestamps are RFC 3339 in UTC, so they compare as strings.
    """
    if not started or not rollout or started >= rollout:
        return []
    stale = stale_containers(current, exposed)
    if not stale:
        return []
    info = rule("GG208")
    return [Finding(
        rule_id=info.id, severity=info.severity,
        message=(f"Pod {pod.namespace}/{pod.name} started {started}, before the NVIDIA Container Toolkit was "
                 f"rolled out on node {pod.node_name} ({rollout}); container(s) {', '.join(stale)} would get GPUs "
                 "under the previous settings and not under the current ones: restart it."),
        remediation=info.remediation,
        resource=Resource(pod.workload_api_version or "v1", pod.workload_kind,
                          pod.workload_namespace or pod.namespace, pod.workload_name or pod.name),
        container=stale[0], location=location, node=pod.node_name,
        trail=(Step(info.id, f"pod started {started}", f"toolkit pod on the node started {rollout}"),),
    )]


def check_sharing(
    node: str, replicas: int, strategy: str, namespaces: Mapping[str, Sequence[str]], location: Location | None
) -> list[Finding]:
    """GG209: GPUs shared by time-slicing or MPS among pods of two or more namespaces on one node."""
    if replicas <= 1 or len(namespaces) < 2:
        return []
    info = rule("GG209")
    listed = "; ".join(f"{ns}: {', '.join(sorted(pods)[:3])}" for ns, pods in sorted(namespaces.items()))
    return [Finding(
        rule_id=info.id, severity=info.severity,
        message=(f"Node {node} shares each GPU {replicas} ways by {strategy} among pods of {len(namespaces)} "
                 f"namespaces ({listed}): no memory or fault isolation between them."),
        remediation=info.remediation,
        resource=Resource("v1", "Node", None, node), location=location, subject=strategy, node=node,
        trail=(Step(info.id, f"{strategy} replicas {replicas}", f"{len(namespaces)} namespaces on {node}"),),
    )]


__all__ = ["GPU_MARKERS", "check_admission", "check_restart", "check_sharing", "covers_gpu", "is_gpuguard_webhook",
           "stale_containers"]
