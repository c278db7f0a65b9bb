"""Hand-made findings and reports for the history tests (a notebook pod, a ClusterPolicy setting)."""

from __future__ import annotations

from gpuguard.model.finding import Finding, Location, Resource, Severity
from gpuguard.model.report import ProfileSummary, Report

PROFILE = ProfileSummary(source="live cluster gpu-prod: 3 GPU nodes", operator_version="25.3.4",
                         toolkit_version="1.17.8", device_plugin_version="0.17.2")


def pod(name: str, *, ns: str = "ml-notebooks", container: str = "notebook", rule: str = "GG101",
        severity: Severity = Severity.HIGH, node: str | None = "gpu-h100-1", message: str = "") -> Finding:
    return Finding(rule_id=rule, severity=severity, message=message or f"{name} sees every GPU [node {node}]",
                   remediation="request nvidia.com/gpu or unset NVIDIA_VISIBLE_DEVICES",
                   resource=Resource("v1", "Pod", ns, name), container=container,
                   location=Location("cluster:gpu-prod"), node=node)


def policy(rule: str, severity: Severity = Severity.MEDIUM, message: str = "setting") -> Finding:
    return Finding(rule_id=rule, severity=severity, message=message, remediation="harden the ClusterPolicy",
                   resource=Resource("nvidia.com/v1", "ClusterPolicy", None, "cluster-policy"),
                   location=Location("cluster:gpu-prod"))


def report(*findings: Finding, objects: int = 210, errors: int = 0) -> Report:
    from gpuguard.model.finding import ReadError

    return Report(profile=PROFILE, findings=findings, objects=objects,
                  errors=tuple(ReadError(f"forbidden {i}") for i in range(errors)))
