"""Suppressions: object annotations, an ignore file, and a baseline report.

* Annotation ``gpuguard.io/ignore: "GG101,GG104: <reason>"`` on the object
  (or its pod template) silences those rules for that object; a reason is
  required, and an annotation without one suppresses nothing and is reported.
* Ignore file (``--ignore-file``), YAML: a list (or ``ignore:`` list) of
  ``{rules, paths, resource, reason, expires}``.  ``rules`` and ``reason`` are
  required; ``paths`` are globs on the finding's file; ``resource`` is a glob
  on ``Kind/namespace/name``; an entry past ``expires`` suppresses nothing and
  is reported.
* Baseline (``--baseline``): a previous JSON report; findings whose
  fingerprint it holds are not reported.

Every suppression is listed in the report with how many findings it matched,
so unused ones (``matched=0``) can be cleaned up.
"""

from __future__ import annotations

import datetime
import fnmatch
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from gpuguard.model.errors import InputError, type_name
from gpuguard.model.finding import Finding, Location, ReadError, Resource
from gpuguard.model.report import Suppression
from gpuguard.sources.documents import load_document

ANNOTATION = "gpuguard.io/ignore"
_RULE_ID = re.compile(r"^(?:GG\d{3}|\*)$")


@dataclass(slots=True)
class _Entry:
    rule_ids: tuple[str, ...]
    reason: str
    origin: str
    paths: tuple[str, ...] = ()
    resource: str | None = None
    expires: str | None = None
    expired: bool = False
    matched: int = 0

    def covers(self, finding: Finding) -> bool:
        if self.expired or not _rule_matches(self.rule_ids, finding.rule_id):
            return False
        if self.paths:
            path = finding.location.path if finding.location is not None else ""
            if not any(fnmatch.fnmatch(path, p) or fnmatch.fnmatch(path, f"*/{p}") for p in self.paths):
                return False
        if self.resource is not None:
            r = finding.resource
            if r is None or not fnmatch.fnmatch(f"{r.kind}/{r.namespace or ''}/{r.name}", self.resource):
                return False
        return True


def _rule_matches(rule_ids: Sequence[str], rule_id: str) -> bool:
    return "*" in rule_ids or rule_id in rule_ids


@dataclass(slots=True)
class Suppressor:
    """Decides which findings are suppressed, and counts what each suppression matched."""

    entries: list[_Entry] = field(default_factory=list)
    baseline: frozenset[str] = frozenset()
    baseline_origin: str | None = None
    baseline_matched: int = 0
    annotations: dict[str, _Entry] = field(default_factory=dict)
    suppressed: int = 0

    def object_rules(
        self, resource: Resource, annotations: Sequence[Mapping[str, str]], location: Location | None
    ) -> tuple[_Entry | None, ReadError | None]:
        """The annotation suppression of one object (shared by its pod templates), or the error in it."""
        value = next((a[ANNOTATION] for a in annotations if ANNOTATION in a), None)
        if value is None:
            return None, None
        key = f"{resource.kind}/{resource.namespace or ''}/{resource.name}"
        if key in self.annotations:
            return self.annotations[key], None
        ids_text, sep, reason = value.partition(":")
        ids = tuple(x.strip() for x in re.split(r"[,\s]+", ids_text) if x.strip())
        origin = f"annotation on {resource.kind} {resource.namespace + '/' if resource.namespace else ''}" \
                 f"{resource.name}"
        bad = [x for x in ids if not _RULE_ID.match(x)]
        if not sep or not reason.strip() or not ids or bad:
            why = f"unknown rule id {bad[0]!r}" if bad else "a reason is required"
            message = (f'{origin}: {ANNOTATION}: "{value}" suppresses nothing: {why} '
                       f'(write "GG101,GG104: <reason>")')
            return None, ReadError(message, location)
        entry = _Entry(ids, reason.strip(), origin)
        self.annotations[key] = entry
        return entry, None

    def check(self, finding: Finding, annotation: _Entry | None) -> bool:
        """True when ``finding`` is suppressed (and counted against what suppressed it)."""
        if annotation is not None and _rule_matches(annotation.rule_ids, finding.rule_id):
            annotation.matched += 1
        elif (entry := next((e for e in self.entries if e.covers(finding)), None)) is not None:
            entry.matched += 1
        elif self.baseline and finding.fingerprint in self.baseline:
            self.baseline_matched += 1
        else:
            return False
        self.suppressed += 1
        return True

    def report(self) -> tuple[Suppression, ...]:
        out = [
            Suppression(e.rule_ids, e.reason, e.origin, e.matched, e.expires)
            for e in (*self.annotations.values(), *self.entries)
        ]
        if self.baseline_origin is not None:
            out.append(Suppression(("*",), "known before", self.baseline_origin, self.baseline_matched))
        return tuple(out)

    def expired_notes(self) -> list[str]:
        return [f"{e.origin}: expired on {e.expires}; it no longer suppresses {','.join(e.rule_ids)}"
                for e in self.entries if e.expired]


# --- reading ---------------------------------------------------------------------------------------------


def read_ignore_file(path: str, data: bytes, today: datetime.date | None = None) -> list[_Entry]:
    """Entries of an ignore file; raise ``InputError`` naming the entry and field."""
    today = today or datetime.date.today()
    doc = load_document(data, path)
    if isinstance(doc, Mapping):
        if "ignore" not in doc:
            raise InputError(path, "expected a list of entries, or a mapping with an ignore: list")
        doc = doc["ignore"]
    if doc is None:
        return []
    if not isinstance(doc, list):
        raise InputError(path, f"expected a list of entries (or ignore: [...]), got {type_name(doc)}")
    return [_entry(item, f"{path}: entry {i + 1}", today) for i, item in enumerate(doc)]


def _strings(value: object, where: str) -> tuple[str, ...]:
    if isinstance(value, str):
        return tuple(x.strip() for x in re.split(r"[,\s]+", value) if x.strip())
    if isinstance(value, list) and all(isinstance(x, str) for x in value):
        return tuple(value)
    raise InputError(where, f"expected a list of strings, got {type_name(value)}")


def _entry(item: Any, where: str, today: datetime.date) -> _Entry:
    if not isinstance(item, Mapping):
        raise InputError(where, f"expected a mapping with rules and reason, got {type_name(item)}")
    unknown = sorted(set(item) - {"rules", "paths", "resource", "reason", "expires"})
    if unknown:
        raise InputError(f"{where}.{unknown[0]}", "unknown field (expected rules, paths, resource, reason, expires)")
    if "rules" not in item:
        raise InputError(f"{where}.rules", "required: the rule ids to ignore (or \"*\")")
    rules = _strings(item["rules"], f"{where}.rules")
    bad = [x for x in rules if not _RULE_ID.match(x)]
    if bad or not rules:
        raise InputError(f"{where}.rules", f"unknown rule id {bad[0]!r}" if bad else "empty")
    reason = item.get("reason")
    if not isinstance(reason, str) or not reason.strip():
        raise InputError(f"{where}.reason", "required: say why these findings are accepted")
    paths = _strings(item["paths"], f"{where}.paths") if item.get("paths") is not None else ()
    resource = item.get("resource")
    if resource is not None and not isinstance(resource, str):
        raise InputError(f"{where}.resource", f"expected Kind/namespace/name (globs allowed), got "
                         f"{type_name(resource)}")
    expires, expired = None, False
    if item.get("expires") is not None:
        text = str(item["expires"])
        try:
            date = datetime.date.fromisoformat(text)
        except ValueError:
            raise InputError(f"{where}.expires", f"expected a date such as 2026-12-31, got {text!r}") from None
        expires, expired = date.isoformat(), date < today
    return _Entry(rules, reason.strip(), where, paths, resource, expires, expired)


def read_baseline(path: str, data: bytes) -> frozenset[str]:
    """Fingerprints of the findings in a previous JSON report."""
    try:
        doc = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise InputError(path, f"not a gpuguard JSON report: {exc}") from None
    findings = doc.get("findings") if isinstance(doc, dict) else None
    if not isinstance(findings, list):
        raise InputError(path, "not a gpuguard JSON report: no findings list")
    out = set()
    for f in findings:
        if not isinstance(f, dict):
            continue
        if isinstance(f.get("fingerprint"), str):
            out.add(f["fingerprint"])
            continue
        r = f.get("resource")
        loc = f.get("location")
        if isinstance(r, dict):
            obj = f"{r.get('kind')}/{r.get('namespace') or ''}/{r.get('name')}"
        else:
            obj = loc.get("path", "") if isinstance(loc, dict) else ""
        out.add(f"{f.get('rule_id')}|{obj}|{f.get('container') or ''}")
    return frozenset(out)
