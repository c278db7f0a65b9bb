"""Findings for the page: three GPU nodes' worth of cells, hostile names, a finding with no node or namespace."""

from __future__ import annotations

from gpuguard.model.finding import Finding, Location, Resource, Severity
from gpuguard.model.report import ProfileSummary, Report

HOSTILE_POD = "<script>document.title='pwned'</script>"
HOSTILE_MESSAGE = "</td></tr></table><script>alert(1)</script><img src=x onerror=alert(2)>"
PROFILE = ProfileSummary(source="live cluster gpu-prod: 3 GPU nodes", operator_version="25.3.4",
                         toolkit_version="1.17.8", device_plugin_version="0.17.2")


def finding(name: str, ns: str | None, node: str | None, severity: Severity, *, rule: str = "GG101",
            kind: str = "Pod", message: str = "") -> Finding:
    return Finding(rule_id=rule, severity=severity, message=message or f"{name} can reach every GPU",
                   remediation="request nvidia.com/gpu", resource=Resource("v1", kind, ns, name),
                   container="main" if kind == "Pod" else None, location=Location("cluster:gpu-prod"), node=node)


# The matrix these make, typed by hand (rows: nodes, columns: namespaces, the "no" buckets last):
#                ml-notebooks      research       (no namespace)
# gpu-a100-1     -                 2 (medium)     -
# gpu-h100-1     2 (critical)      -              -
# (no node)      1 (high)          -              1 (high)
FINDINGS = (
    finding("jupyter-bob", "ml-notebooks", "gpu-h100-1", Severity.HIGH),
    finding("batch-report-0", "ml-notebooks", "gpu-h100-1", Severity.CRITICAL),
    finding(HOSTILE_POD, "research", "gpu-a100-1", Severity.MEDIUM, message=HOSTILE_MESSAGE),
    finding("train-x", "research", "gpu-a100-1", Severity.LOW),
    finding("cluster-policy", None, None, Severity.HIGH, rule="GG201", kind="ClusterPolicy"),
    finding("jupyter-carol", "ml-notebooks", None, Severity.HIGH),
)
MATRIX = {
    ("gpu-a100-1", "research"): (2, "medium"),
    ("gpu-h100-1", "ml-notebooks"): (2, "critical"),
    ("(no node)", "ml-notebooks"): (1, "high"),
    ("(no node)", "(no namespace)"): (1, "high"),
}
NODES = ["gpu-a100-1", "gpu-h100-1", "(no node)"]
NAMESPACES = ["ml-notebooks", "research", "(no namespace)"]


def report(*findings: Finding) -> Report:
    return Report(profile=PROFILE, findings=findings, objects=210)
