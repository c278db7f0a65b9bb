"""A Prometheus snapshot of one audit run, for a scheduled audit that no scraper can reach while it runs.

Two ways out: a text file for node-exporter's textfile collector (written beside the target and renamed
over it, so the collector never reads half a file), or a push to a Pushgateway (job ``gpuguard-audit``,
grouped by ``cluster``, so each cluster's last run replaces only its own series).  Each run builds its own
``CollectorRegistry``: nothing of the process's default registry leaks into the snapshot.

Alert on ``gpuguard_audit_success == 0`` and on ``time() - gpuguard_audit_last_run_timestamp_seconds``
growing past the schedule (a CronJob that stopped running pushes nothing).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Gauge, push_to_gateway, write_to_textfile

from gpuguard.model.report import Report

JOB = "gpuguard-audit"
PUSH_TIMEOUT = 10.0  # seconds


@dataclass(frozen=True, slots=True)
class RunFacts:
    """When the run ended, how long it took, and whether it could read everything it was asked to."""

    finished: float  # Unix seconds
    duration: float  # seconds
    success: bool


def snapshot(report: Report, run: RunFacts) -> CollectorRegistry:
    """The run's gauges in a registry of their own."""
    registry = CollectorRegistry(auto_describe=True)
    findings = Gauge("gpuguard_findings", "Findings of the last audit run, by rule, severity, namespace and node.",
                     ["rule", "severity", "namespace", "node"], registry=registry)
    counts = Counter((f.rule_id, f.severity.label, (f.resource.namespace if f.resource else None) or "",
                      f.node or "") for f in report.findings)
    for labels, count in sorted(counts.items()):
        findings.labels(*labels).set(count)
    exposed = Gauge("gpuguard_exposed_pods", "Pods with a container that sees GPUs beyond its allocation, by the "
                    "GPU node it runs on (or, pending, would be most exposed on).", ["node"], registry=registry)
    pods: dict[str, set[tuple[str, str]]] = {}
    for f in report.findings:
        if f.decision is not None and f.decision.overreach:
            pods.setdefault(f.node or "", set()).add((f.decision.namespace, f.decision.pod))
    for node, names in sorted(pods.items()):
        exposed.labels(node).set(len(names))
    for name, text, value in (
        ("gpuguard_audit_last_run_timestamp_seconds", "When the last audit run ended (Unix seconds).", run.finished),
        ("gpuguard_audit_duration_seconds", "How long the last audit run took.", run.duration),
        ("gpuguard_audit_objects", "Kubernetes objects the last audit run read.", report.objects),
        ("gpuguard_audit_read_errors", "Inputs or API lists the last audit run could not read.", len(report.errors)),
        ("gpuguard_audit_success", "1 when the last audit run read everything it was asked to, else 0.",
         1 if run.success else 0),
    ):
        Gauge(name, text, registry=registry).set(value)
    return registry


def write_textfile(registry: CollectorRegistry, path: str) -> None:
    """Text exposition format at ``path``, replaced atomically (a temporary file renamed over it)."""
    write_to_textfile(path, registry)


def push(registry: CollectorRegistry, url: str, cluster: str, *, timeout: float = PUSH_TIMEOUT) -> None:
    """PUT the snapshot to the Pushgateway at ``url``: it replaces this cluster's previous run, nothing else."""
    push_to_gateway(url, job=JOB, registry=registry, grouping_key={"cluster": cluster}, timeout=timeout)


__all__ = ["JOB", "RunFacts", "push", "snapshot", "write_textfile"]
