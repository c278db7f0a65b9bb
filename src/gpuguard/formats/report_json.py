"""``--format json``: the stable, versioned report (schema ``gpuguard.report/v1``).

Keys keep the order written here, every key is always present (null when
unknown), and lists keep the report's order, so two runs over the same inputs
give the same bytes. ``docs/report-schema.md`` documents it;
``schemas/report-v1.schema.json`` checks it. A breaking change gets a new
schema name; new keys may only be added.
"""

from __future__ import annotations

from typing import Any

import orjson

from gpuguard.model.finding import Exempt, Finding, Location, ReadError, Resource
from gpuguard.model.report import ProfileSummary, Report, Suppression

SCHEMA_FILE = "schemas/report-v1.schema.json"  # relative to this package


def render(report: Report, *, color: bool = False) -> bytes:
    """Pretty-printed JSON with a trailing newline; ``color`` is ignored."""
    return orjson.dumps(report_dict(report), option=orjson.OPT_INDENT_2) + b"\n"


def report_dict(report: Report) -> dict[str, Any]:
    return {
        "schema": report.schema,
        "profile": _profile(report.profile),
        "findings": [_finding(f) for f in report.findings],
        "exempt": [_exempt(e) for e in report.exempt],
        "errors": [_error(e) for e in report.errors],
        "suppressions": [_suppression(s) for s in report.suppressions],
        "summary": _summary(report),
        "objects": report.objects,
        "skipped_kinds": dict(sorted(report.skipped_kinds.items())),
    }


def _profile(p: ProfileSummary) -> dict[str, Any]:
    return {
        "source": p.source,
        "operator_version": p.operator_version,
        "toolkit_version": p.toolkit_version,
        "device_plugin_version": p.device_plugin_version,
        "settings": dict(sorted(p.settings.items())),
        "assumed": p.assumed,
        "notes": list(p.notes),
    }


def _resource(r: Resource | None) -> dict[str, Any] | None:
    if r is None:
        return None
    return {"apiVersion": r.api_version, "kind": r.kind, "namespace": r.namespace, "name": r.name}


def _location(loc: Location | None) -> dict[str, Any] | None:
    return None if loc is None else {"path": loc.path, "line": loc.line}


def _finding(f: Finding) -> dict[str, Any]:
    return {
        "rule_id": f.rule_id,
        "severity": f.severity.label,
        "resource": _resource(f.resource),
        "container": f.container,
        "node": f.node,
        "location": _location(f.location),
        "message": f.message,
        "trail": [step.as_dict() for step in f.trail],
        "remediation": f.remediation,
        "fingerprint": f.fingerprint,  # what --baseline matches on
    }


def _exempt(e: Exempt) -> dict[str, Any]:
    return {
        "resource": _resource(e.resource),
        "container": e.container,
        "location": _location(e.location),
        "reason": e.reason,
        "rule_ids": list(e.rule_ids),
    }


def _error(e: ReadError) -> dict[str, Any]:
    return {"message": e.message, "location": _location(e.location)}


def _suppression(s: Suppression) -> dict[str, Any]:
    return {
        "rule_ids": list(s.rule_ids),
        "reason": s.reason,
        "origin": s.origin,
        "matched": s.matched,
        "expires": s.expires,
    }


def _summary(report: Report) -> dict[str, Any]:
    return {
        "findings": len(report.findings),
        "by_severity": dict(reversed(report.by_severity().items())),  # critical first
        "exempt": len(report.exempt),
        "suppressed": report.suppressed,
        "errors": len(report.errors),
        "files": report.files,
        "objects": report.objects,
    }
