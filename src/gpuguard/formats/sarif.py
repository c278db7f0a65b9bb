"""``--format sarif``: SARIF 2.1.0, as GitHub code scanning reads it.

Choices, so that GitHub shows what matters and nothing else:

- Every rule that ran is in ``tool.driver.rules`` with a ``security-severity``
  number (GitHub's critical/high/medium/low bands) and the ``security`` tag.
- A result points at the manifest file and line, relative to the repository
  root (``%SRCROOT%``). Findings about a command-line flag (``--operator-version``)
  have no file: they carry a logical location only, which GitHub lists without
  an annotation.
- Exempt containers (GPU Operator components, allow-listed tools) become results
  with an ``external``/``accepted`` suppression, one per rule they would have
  fired, so the exemption is on record but raises no alert. Exemptions that
  name no rule are omitted.
- Input errors are ``toolExecutionNotifications`` of the invocation.
- ``partialFingerprints["gpuguard/v1"]`` is ``Finding.fingerprint``: rule, object
  and container, stable across line moves and rewording.
"""

from __future__ import annotations

from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import quote

import orjson

import gpuguard
from gpuguard.formats.base import is_file, object_label, rules_by_id
from gpuguard.model.finding import Exempt, Finding, Location, ReadError, Resource, RuleInfo, Severity
from gpuguard.model.report import Report

SARIF_SCHEMA = "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json"
FINGERPRINT_KEY = "gpuguard/v1"
SRCROOT = "%SRCROOT%"

LEVEL = {
    Severity.CRITICAL: "error",
    Severity.HIGH: "error",
    Severity.MEDIUM: "warning",
    Severity.LOW: "note",
    Severity.INFO: "note",
}
# GitHub bands: >= 9.0 critical, 7.0-8.9 high, 4.0-6.9 medium, below 4.0 low.
SECURITY_SEVERITY = {
    Severity.CRITICAL: "9.5",
    Severity.HIGH: "8.0",
    Severity.MEDIUM: "5.5",
    Severity.LOW: "3.0",
    Severity.INFO: "1.0",
}


def render(report: Report, *, color: bool = False) -> bytes:
    """The SARIF log as pretty JSON; ``color`` is ignored."""
    return orjson.dumps(sarif_log(report), option=orjson.OPT_INDENT_2) + b"\n"


def sarif_log(report: Report) -> dict[str, Any]:
    rules = _rules(report)
    index = {rule["id"]: i for i, rule in enumerate(rules)}
    results = [_result(f, index) for f in report.findings]
    results += [r for e in report.exempt for r in _exempt_results(e, rules, index)]
    profile = report.profile
    run: dict[str, Any] = {
        "tool": {
            "driver": {
                "name": "gpuguard",
                "version": gpuguard.__version__,
                "semanticVersion": gpuguard.__version__,
                "rules": rules,
            }
        },
        "invocations": [
            {
                "executionSuccessful": True,
                "toolExecutionNotifications": [_notification(e) for e in report.errors],
            }
        ],
        "results": results,
        "properties": {
            "schema": report.schema,
            "profile": {
                "source": profile.source,
                "assumed": profile.assumed,
                "notes": list(profile.notes),
            },
        },
    }
    return {"$schema": SARIF_SCHEMA, "version": "2.1.0", "runs": [run]}


def _rules(report: Report) -> list[dict[str, Any]]:
    """Rules that ran, plus any rule a finding names that the report did not list."""
    known = rules_by_id(report)
    for f in report.findings:
        known.setdefault(
            f.rule_id,
            RuleInfo(id=f.rule_id, title=f.rule_id, severity=f.severity, rationale=f.message, remediation=""),
        )
    return [_rule(rule) for rule in known.values()]


def _rule(rule: RuleInfo) -> dict[str, Any]:
    help_md = f"**Remediation**\n\n{rule.remediation}" if rule.remediation else rule.title
    if rule.references:
        help_md += "\n\n**References**\n\n" + "\n".join(f"- <{ref}>" for ref in rule.references)
    out: dict[str, Any] = {
        "id": rule.id,
        "name": _pascal(rule.title),
        "shortDescription": {"text": rule.title},
        "fullDescription": {"text": rule.rationale or rule.title},
        "help": {"text": rule.remediation or rule.title, "markdown": help_md},
        "defaultConfiguration": {"level": LEVEL[rule.severity]},
        "properties": {
            "tags": ["security", "kubernetes", "gpu", rule.scope],
            "precision": "very-high",
            "problem.severity": "recommendation" if rule.severity <= Severity.LOW else LEVEL[rule.severity],
            "security-severity": SECURITY_SEVERITY[rule.severity],
        },
    }
    if rule.references:
        out["helpUri"] = rule.references[0]
    return out


def _pascal(title: str) -> str:
    """SARIF ``name`` is an identifier-like word: "GPU visible without request" -> "GpuVisibleWithoutRequest"."""
    words = "".join(c if c.isalnum() else " " for c in title).split()
    return "".join(w[:1].upper() + w[1:].lower() for w in words) or "Rule"


def _result(f: Finding, index: dict[str, int]) -> dict[str, Any]:
    text = f.message
    subject = object_label(f.resource) + (f", container {f.container!r}" if f.container else "")
    if f.resource is not None or f.container:
        text = f"{subject}: {text}"
    result: dict[str, Any] = {
        "ruleId": f.rule_id,
        "ruleIndex": index[f.rule_id],
        "level": LEVEL[f.severity],
        "message": {"text": f"{text}\nFix: {f.remediation}" if f.remediation else text},
        "locations": [_location(f.location, f.resource)],
        "partialFingerprints": {FINGERPRINT_KEY: f.fingerprint},
        "properties": {"severity": f.severity.label},
    }
    if f.container:
        result["properties"]["container"] = f.container
    return result


def _exempt_results(e: Exempt, rules: list[dict[str, Any]], index: dict[str, int]) -> list[dict[str, Any]]:
    out = []
    subject = object_label(e.resource) + (f", container {e.container!r}" if e.container else "")
    for rule_id in e.rule_ids:
        if rule_id not in index:  # a rule that did not run here: nothing to suppress
            continue
        fingerprint = Finding(rule_id, Severity.INFO, "", "", resource=e.resource, container=e.container).fingerprint
        out.append(
            {
                "ruleId": rule_id,
                "ruleIndex": index[rule_id],
                "level": rules[index[rule_id]]["defaultConfiguration"]["level"],
                "message": {"text": f"{subject}: exempt: {e.reason}"},
                "locations": [_location(e.location, e.resource)],
                "partialFingerprints": {FINGERPRINT_KEY: fingerprint},
                "suppressions": [{"kind": "external", "status": "accepted", "justification": e.reason}],
            }
        )
    return out


def _location(loc: Location | None, resource: Resource | None) -> dict[str, Any]:
    logical: dict[str, Any] = {
        "name": resource.name if resource else (loc.path if loc else "node"),
        "fullyQualifiedName": object_label(resource) if resource else (loc.path if loc else "node"),
        "kind": "resource" if resource else "parameter",  # a node setting given by a flag or file
    }
    out: dict[str, Any] = {"logicalLocations": [logical]}
    if loc is not None and is_file(loc):
        physical: dict[str, Any] = {"artifactLocation": _artifact(loc.path)}
        if loc.line is not None and loc.line >= 1:
            physical["region"] = {"startLine": loc.line}
        out = {"physicalLocation": physical, **out}
    return out


def _artifact(path: str) -> dict[str, Any]:
    """A relative URI under ``%SRCROOT%``; an absolute path outside the working directory stays a file URI."""
    p = Path(path)
    if p.is_absolute():
        try:
            p = p.relative_to(Path.cwd())
        except ValueError:
            return {"uri": p.as_uri()}
    return {"uri": quote(PurePosixPath(p.as_posix()).as_posix(), safe="/"), "uriBaseId": SRCROOT}


def _notification(e: ReadError) -> dict[str, Any]:
    out: dict[str, Any] = {"level": "error", "message": {"text": e.message}}
    if e.location is not None and is_file(e.location):
        physical: dict[str, Any] = {"artifactLocation": _artifact(e.location.path)}
        if e.location.line is not None and e.location.line >= 1:
            physical["region"] = {"startLine": e.location.line}
        out["locations"] = [{"physicalLocation": physical}]
    return out
