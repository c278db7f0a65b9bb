"""``--format policyreport``: wgpolicyk8s.io/v1alpha2 reports, as multi-document YAML.

One ``PolicyReport`` named ``gpuguard`` per namespace that has results, then one
``ClusterPolicyReport`` named ``gpuguard`` (always, so a clean run still says so)
for cluster-scoped objects (ClusterPolicy, RuntimeClass), node settings given
by flags, and input errors. ``kubectl apply -f`` takes the output as is, and
Policy Reporter or Kyverno's UI list it beside other tools' reports.

Result mapping: ``policy`` is the rule id, ``rule`` the rule title; a finding of
medium severity or above is ``fail``, below is ``warn``; an exemption is ``skip``
(one per rule it would have fired, else one under ``gpuguard-exempt``); an input error is ``error``. Details the
CRD has no field for (container, file and line, remediation, the trail's
conclusion, fingerprint) go in ``properties``, a string map. ``timestamp`` is
``SOURCE_DATE_EPOCH`` when set, so a rebuild gives the same bytes.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from typing import Any

import yaml

from gpuguard.formats.base import location_text, rules_by_id, why
from gpuguard.model.finding import Exempt, Finding, ReadError, Resource, RuleInfo, Severity
from gpuguard.model.report import Report

API_VERSION = "wgpolicyk8s.io/v1alpha2"
REPORT_NAME = "gpuguard"
SOURCE = "gpuguard"
LABELS = {"app.kubernetes.io/managed-by": "gpuguard"}
INPUT_POLICY = "gpuguard-input"  # the policy name input errors are reported under
EXEMPT_POLICY = "gpuguard-exempt"  # the policy name of an exemption that names no rule
RESULTS = ("pass", "fail", "warn", "error", "skip")


@dataclass
class _Bucket:
    results: list[dict[str, Any]] = field(default_factory=list)


def render(report: Report, *, color: bool = False) -> bytes:
    """Multi-document YAML, namespaces in order, the cluster report last; ``color`` is ignored."""
    docs = policy_reports(report)
    return yaml.safe_dump_all(docs, sort_keys=False, explicit_start=True, allow_unicode=True).encode()


def policy_reports(report: Report, *, now: int | None = None) -> list[dict[str, Any]]:
    seconds = _timestamp() if now is None else now
    rules = rules_by_id(report)
    namespaced: dict[str, _Bucket] = {}
    cluster = _Bucket()

    def bucket(resource: Resource | None) -> _Bucket:
        if resource is None or not resource.namespace:
            return cluster
        return namespaced.setdefault(resource.namespace, _Bucket())

    for f in report.findings:
        bucket(f.resource).results.append(_finding_result(f, rules, seconds))
    for e in report.exempt:
        for rule_id in e.rule_ids or (EXEMPT_POLICY,):
            bucket(e.resource).results.append(_exempt_result(e, rule_id, rules, seconds))
    for err in report.errors:
        cluster.results.append(_error_result(err, seconds))

    docs = [_doc("PolicyReport", namespaced[ns], ns) for ns in sorted(namespaced)]
    docs.append(_doc("ClusterPolicyReport", cluster, None))
    return docs


def _timestamp() -> int:
    epoch = os.environ.get("SOURCE_DATE_EPOCH", "").strip()
    return int(epoch) if epoch.isdigit() else int(time.time())


def _doc(kind: str, bucket: _Bucket, namespace: str | None) -> dict[str, Any]:
    metadata: dict[str, Any] = {"name": REPORT_NAME}
    if namespace is not None:
        metadata["namespace"] = namespace
    metadata["labels"] = dict(LABELS)
    summary = {key: sum(1 for r in bucket.results if r["result"] == key) for key in RESULTS}
    return {
        "apiVersion": API_VERSION,
        "kind": kind,
        "metadata": metadata,
        "summary": summary,
        "results": bucket.results,
    }


def _rule_name(rule_id: str, rules: dict[str, RuleInfo]) -> str:
    return rules[rule_id].title if rule_id in rules else rule_id


def _resources(resource: Resource | None) -> list[dict[str, str]]:
    if resource is None:
        return []
    ref = {"apiVersion": resource.api_version, "kind": resource.kind, "name": resource.name}
    if resource.namespace:
        ref["namespace"] = resource.namespace
    return [ref]


def _properties(**values: str | None) -> dict[str, str]:
    return {key: value for key, value in values.items() if value}


def _result(policy: str, rule: str, *, result: str, severity: str, message: str, seconds: int) -> dict[str, Any]:
    return {
        "source": SOURCE,
        "policy": policy,
        "rule": rule,
        "category": "GPU isolation",
        "result": result,
        "severity": severity,
        "scored": True,
        "message": message,
        "timestamp": {"seconds": seconds, "nanos": 0},
    }


def _finding_result(f: Finding, rules: dict[str, RuleInfo], seconds: int) -> dict[str, Any]:
    outcome = "fail" if f.severity >= Severity.MEDIUM else "warn"
    out = _result(
        f.rule_id,
        _rule_name(f.rule_id, rules),
        result=outcome,
        severity=f.severity.label,
        message=f.message,
        seconds=seconds,
    )
    resources = _resources(f.resource)
    if resources:
        out["resources"] = resources
    props = _properties(
        container=f.container,
        location=location_text(f.location),
        why=why(f.trail),
        remediation=f.remediation,
        fingerprint=f.fingerprint,
    )
    if props:
        out["properties"] = props
    return out


def _exempt_result(e: Exempt, rule_id: str, rules: dict[str, RuleInfo], seconds: int) -> dict[str, Any]:
    severity = rules[rule_id].severity.label if rule_id in rules else Severity.INFO.label
    out = _result(
        rule_id,
        _rule_name(rule_id, rules),
        result="skip",
        severity=severity,
        message=f"exempt: {e.reason}",
        seconds=seconds,
    )
    out["resources"] = _resources(e.resource)
    props = _properties(container=e.container, location=location_text(e.location))
    if props:
        out["properties"] = props
    return out


def _error_result(err: ReadError, seconds: int) -> dict[str, Any]:
    out = _result(
        INPUT_POLICY, "read input", result="error", severity=Severity.INFO.label, message=err.message, seconds=seconds
    )
    props = _properties(location=location_text(err.location))
    if props:
        out["properties"] = props
    return out
