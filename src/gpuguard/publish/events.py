"""Kubernetes Events on the pod for the node agent's findings (``gpuguard agent --events``).

``kubectl describe pod`` then shows, beside the kubelet's own events, that the
pod holds GPUs it was not allocated.  One Event per finding while it lasts:
a finding seen again at the next scan is not sent again; one that went away
and came back is sent again.  Event names are derived from the finding's
fingerprint and the node, so an agent that restarts finds its earlier Event
(409 AlreadyExists) and refreshes it (``lastTimestamp``, ``count``) instead of
adding a copy, as the kubelet's own event recorder does.

Publishing never raises: an API error is counted and retried at the next scan.
"""

from __future__ import annotations

import datetime
import hashlib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from gpuguard.model.finding import Finding

COMPONENT = "gpuguard-agent"
MAX_MESSAGE = 1024  # the API server's limit on Event.message
REASONS = {
    "GG401": "GPUGuardUnallocatedGPU",
    "GG402": "GPUGuardExcessGPU",
    "GG403": "GPUGuardPredictionMismatch",
}
_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")
LABELS = {"app.kubernetes.io/managed-by": "gpuguard", "app.kubernetes.io/component": "node-agent"}


@dataclass(frozen=True, slots=True)
class Published:
    """What one ``publish`` call did."""

    created: int = 0
    refreshed: int = 0  # already there (an earlier run of the agent): count and lastTimestamp updated
    unchanged: int = 0  # sent at an earlier scan of this run
    failed: int = 0
    error: str | None = None  # the first API error, for the log (no request body, no credentials)


def event_name(finding: Finding, node: str) -> str:
    """``<pod>.<16 hex>``: stable for one finding on one node, a valid DNS subdomain (<= 253 characters).

    The pod's name comes from container labels, which anyone who can talk to containerd can set:
    one that is not a DNS subdomain is left out rather than sent to be refused at every scan.
    """
    pod = finding.resource.name if finding.resource is not None else ""
    digest = hashlib.sha256(f"{finding.fingerprint}|{node}".encode()).hexdigest()[:16]
    stem = pod if len(pod) <= 200 and _SUBDOMAIN.match(pod) else "gpuguard"
    return f"{stem}.{digest}"


def event_body(finding: Finding, node: str, *, pod_uid: str | None, now: datetime.datetime) -> dict[str, Any]:
    """The core/v1 Event for ``finding`` on its pod (a Warning, reason from ``REASONS``)."""
    r = finding.resource
    assert r is not None and r.namespace is not None  # callers pass only pod findings
    stamp = now.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    involved: dict[str, Any] = {"apiVersion": "v1", "kind": "Pod", "namespace": r.namespace, "name": r.name}
    if pod_uid:
        involved["uid"] = pod_uid
    if finding.container:
        involved["fieldPath"] = f"spec.containers{{{finding.container}}}"
    message = finding.message if len(finding.message) <= MAX_MESSAGE else finding.message[: MAX_MESSAGE - 3] + "..."
    return {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"name": event_name(finding, node), "namespace": r.namespace, "labels": dict(LABELS)},
        "involvedObject": involved,
        "reason": REASONS.get(finding.rule_id, f"GPUGuard{finding.rule_id}"),
        "message": message,
        "type": "Warning",
        "source": {"component": COMPONENT, "host": node},
        "reportingComponent": COMPONENT,
        "reportingInstance": f"{COMPONENT}-{node}"[:128],
        "firstTimestamp": stamp,
        "lastTimestamp": stamp,
        "count": 1,
    }


class EventPublisher:
    """Sends each pod finding once while it lasts; ``api`` is a ``kubernetes.client.ApiClient``."""

    def __init__(self, api: Any, node: str, *, clock: Any = None) -> None:
        from kubernetes import client  # noqa: PLC0415 - lazy: heavy import

        self._core: Any = client.CoreV1Api(api)  # bodies are plain dicts, as the API server reads them
        self._node = node
        self._clock = clock or (lambda: datetime.datetime.now(datetime.UTC))
        self._sent: set[str] = set()

    def publish(self, findings: Iterable[Finding], pod_uids: Mapping[tuple[str, str], str] | None = None) -> Published:
        from kubernetes.client.exceptions import ApiException  # noqa: PLC0415

        uids = pod_uids or {}
        current: set[str] = set()
        created = refreshed = unchanged = failed = 0
        error: str | None = None
        for f in findings:
            r = f.resource
            if r is None or r.kind != "Pod" or not r.namespace:
                continue
            name = event_name(f, self._node)
            current.add(name)
            if name in self._sent:
                unchanged += 1
                continue
            body = event_body(f, self._node, pod_uid=uids.get((r.namespace, r.name)), now=self._clock())
            try:
                try:
                    self._core.create_namespaced_event(r.namespace, body, _request_timeout=(5, 10))
                    created += 1
                except ApiException as exc:
                    if exc.status != 409:
                        raise
                    self._refresh(r.namespace, name, body)
                    refreshed += 1
                self._sent.add(name)
            except ApiException as exc:
                failed += 1
                error = error or f"events in {r.namespace}: HTTP {exc.status} {exc.reason}"
            except Exception as exc:  # the connection: urllib3 errors, timeouts
                failed += 1
                error = error or f"events in {r.namespace}: {type(exc).__name__}: {exc}"
        self._sent &= current  # a finding that went away is sent again when it comes back
        return Published(created, refreshed, unchanged, failed, error)

    def _refresh(self, namespace: str, name: str, body: Mapping[str, Any]) -> None:
        old = self._core.read_namespaced_event(name, namespace, _request_timeout=(5, 10))
        patch = {"count": (old.count or 1) + 1, "lastTimestamp": body["lastTimestamp"], "message": body["message"]}
        self._core.patch_namespaced_event(name, namespace, patch, _request_timeout=(5, 10))
