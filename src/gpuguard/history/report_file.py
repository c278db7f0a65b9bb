"""A gpuguard JSON report (``audit --format json``) read back as stored findings, for the HTML page.

Only what the page shows is read; anything else in the file is ignored so
newer reports (which may add keys) still load. Bad input names the key.
"""

from __future__ import annotations

from typing import Any

import orjson

from gpuguard.model.errors import InputError, type_name
from gpuguard.model.finding import Severity
from gpuguard.model.history import StoredFinding

SCHEMA = "gpuguard.report/v1"


def load_report_findings(data: bytes, where: str) -> tuple[str, list[StoredFinding]]:
    """(profile source, findings) of the report in ``data``; ``where`` names the file in errors."""
    try:
        doc = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise InputError(where, f"not JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise InputError(where, f"expected a gpuguard JSON report (a mapping), got {type_name(doc)}")
    if doc.get("schema") != SCHEMA:
        raise InputError(f"{where}: schema", f"expected {SCHEMA!r}, got {doc.get('schema')!r}")
    profile = doc.get("profile")
    source = profile.get("source") if isinstance(profile, dict) else None
    items = doc.get("findings")
    if not isinstance(items, list):
        raise InputError(f"{where}: findings", f"expected a list, got {type_name(items)}")
    return (source if isinstance(source, str) else "", [_finding(f, f"{where}: findings[{i}]")
                                                          for i, f in enumerate(items)])


def _finding(item: Any, where: str) -> StoredFinding:
    if not isinstance(item, dict):
        raise InputError(where, f"expected a mapping, got {type_name(item)}")
    label = _text(item, "severity", where)
    try:
        severity = Severity.parse(label)
    except ValueError as exc:
        raise InputError(f"{where}.severity", str(exc)) from None
    resource = item.get("resource")
    if resource is not None and not isinstance(resource, dict):
        raise InputError(f"{where}.resource", f"expected a mapping or null, got {type_name(resource)}")
    res = resource or {}
    location = item.get("location")
    path = location.get("path") if isinstance(location, dict) else None
    return StoredFinding(
        fingerprint=_text(item, "fingerprint", where),
        rule_id=_text(item, "rule_id", where),
        severity=severity,
        kind=_optional(res, "kind", f"{where}.resource"),
        namespace=_optional(res, "namespace", f"{where}.resource"),
        name=_optional(res, "name", f"{where}.resource") or (path if isinstance(path, str) else None),
        container=_optional(item, "container", where),
        node=_optional(item, "node", where),
        message=_text(item, "message", where),
    )


def _text(item: dict[str, Any], key: str, where: str) -> str:
    value = item.get(key)
    if not isinstance(value, str):
        raise InputError(f"{where}.{key}", f"expected a string, got {type_name(value)}")
    return value


def _optional(item: dict[str, Any], key: str, where: str) -> str | None:
    value = item.get(key)
    if value is not None and not isinstance(value, str):
        raise InputError(f"{where}.{key}", f"expected a string or null, got {type_name(value)}")
    return value
