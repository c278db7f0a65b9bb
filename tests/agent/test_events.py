"""Event names and bodies for findings: valid for the API server whatever the container labels said."""

from __future__ import annotations

import datetime
import re

from hypothesis import given
from hypothesis import strategies as st

from gpuguard.model.finding import Finding, Resource, Severity
from gpuguard.publish.events import MAX_MESSAGE, event_body, event_name

# Kubernetes' DNS subdomain (metadata.name of an Event): lowercase alphanumerics, '-' and '.', <= 253.
SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")
NOW = datetime.datetime(2026, 11, 29, 9, 12, 44, tzinfo=datetime.UTC)


def _finding(pod: str, message: str = "holds GPU-0", rule: str = "GG401", container: str = "main") -> Finding:
    return Finding(rule, Severity.HIGH, message, "fix it", resource=Resource("v1", "Pod", "ml", pod),
                   container=container, node="n1")


@given(pod=st.text(max_size=300), node=st.text(max_size=80))
def test_names_are_dns_subdomains_whatever_the_labels_say(pod: str, node: str) -> None:
    name = event_name(_finding(pod), node)
    assert SUBDOMAIN.match(name) and len(name) <= 253


def test_names_are_stable_per_finding_and_node() -> None:
    a = event_name(_finding("nb-7d9f8-x2k9p"), "n1")
    assert a.startswith("nb-7d9f8-x2k9p.") and len(a) == len("nb-7d9f8-x2k9p.") + 16
    assert event_name(_finding("nb-7d9f8-x2k9p", message="other words"), "n1") == a  # the fingerprint, not wording
    assert event_name(_finding("nb-7d9f8-x2k9p"), "n2") != a
    assert event_name(_finding("nb-7d9f8-x2k9p", rule="GG403"), "n1") != a
    assert event_name(_finding("Not_A_Name"), "n1").startswith("gpuguard.")


def test_body_as_the_api_server_takes_it() -> None:
    body = event_body(_finding("nb-7d9f8-x2k9p", rule="GG402"), "n1", pod_uid="6f1c", now=NOW)
    assert body["reason"] == "GPUGuardExcessGPU" and body["type"] == "Warning"
    assert body["involvedObject"] == {"apiVersion": "v1", "kind": "Pod", "namespace": "ml", "name": "nb-7d9f8-x2k9p",
                                      "uid": "6f1c", "fieldPath": "spec.containers{main}"}
    assert body["firstTimestamp"] == body["lastTimestamp"] == "2026-11-29T09:12:44Z"
    assert body["count"] == 1 and body["metadata"]["namespace"] == "ml"
    long = event_body(_finding("nb", message="x" * 5000), "n1", pod_uid=None, now=NOW)
    assert len(long["message"]) == MAX_MESSAGE and long["message"].endswith("...")
    assert "uid" not in long["involvedObject"]
