"""``gpuguard history`` output: runs and diffs as a plain table for people or JSON for machines.

JSON keys keep the order written here and every key is always present, so
scripts can read it the way they read the audit report.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import orjson

from gpuguard.model.history import RunDiff, RunSummary, StoredFinding

SEVERITIES = ("critical", "high", "medium", "low", "info")


def run_dict(run: RunSummary) -> dict[str, Any]:
    return {"id": run.id, "started": run.started, "cluster": run.cluster, "profile_source": run.profile_source,
            "findings": run.total, "by_severity": {s: run.counts.get(s, 0) for s in SEVERITIES},
            "objects": run.objects, "errors": run.errors}


def finding_dict(f: StoredFinding) -> dict[str, Any]:
    return {"fingerprint": f.fingerprint, "rule_id": f.rule_id, "severity": f.severity.label, "kind": f.kind,
            "namespace": f.namespace, "name": f.name, "container": f.container, "node": f.node,
            "message": f.message}


def diff_dict(diff: RunDiff) -> dict[str, Any]:
    return {
        "from": run_dict(diff.base) if diff.base else None,
        "to": run_dict(diff.head),
        "new": [finding_dict(f) for f in diff.new],
        "fixed": [finding_dict(f) for f in diff.fixed],
        "still_open": [finding_dict(f) for f in diff.still_open],
        "changed": [{"fingerprint": c.after.fingerprint, "severity": [c.before.severity.label, c.after.severity.label],
                     "node": [c.before.node, c.after.node]} for c in diff.changed],
    }


def to_json(value: Any) -> str:
    return orjson.dumps(value, option=orjson.OPT_INDENT_2).decode() + "\n"


_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def _cell(text: str) -> str:
    """Names and messages come from the cluster: no escape sequence or line break reaches the terminal."""
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    rows = [[_cell(c) for c in row] for row in rows]
    widths = [max(len(header[i]), *(len(r[i]) for r in rows)) if rows else len(header[i]) for i in range(len(header))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in [header, *rows]]
    return "\n".join(lines) + "\n"


def runs_table(runs: Sequence[RunSummary]) -> str:
    if not runs:
        return "no runs recorded\n"
    return _table(["RUN", "STARTED", "CLUSTER", "CRIT", "HIGH", "MED", "LOW", "INFO", "OBJECTS", "ERRORS"],
                  [[str(r.id), r.started, r.cluster, *(str(r.counts.get(s, 0)) for s in SEVERITIES), str(r.objects),
                    str(r.errors)] for r in runs])


def _findings(title: str, findings: Sequence[StoredFinding]) -> str:
    if not findings:
        return f"{title} (0)\n"
    rows = [[f.severity.label, f.rule_id, f.object_label, f.container or "-", f.node or "-", f.message]
            for f in sorted(findings, key=lambda f: (-f.severity, f.fingerprint))]
    return f"{title} ({len(findings)})\n" + _table(["SEVERITY", "RULE", "OBJECT", "CONTAINER", "NODE", "MESSAGE"], rows)


def diff_table(diff: RunDiff) -> str:
    base = f"run {diff.base.id} ({diff.base.started})" if diff.base else "nothing (first run)"
    parts = [f"cluster {_cell(diff.head.cluster)}: {base} -> run {diff.head.id} ({diff.head.started})\n\n",
             _findings("NEW", diff.new), "\n", _findings("FIXED", diff.fixed), "\n",
             _findings("STILL OPEN", diff.still_open)]
    if diff.changed:
        rows = [[c.after.rule_id, c.after.object_label, f"{c.before.severity.label} -> {c.after.severity.label}",
                 f"{c.before.node or '-'} -> {c.after.node or '-'}"] for c in diff.changed]
        parts += ["\n", f"CHANGED ({len(diff.changed)})\n", _table(["RULE", "OBJECT", "SEVERITY", "NODE"], rows)]
    return "".join(parts)


def diff_summary(diff: RunDiff) -> str:
    base = f"run {diff.base.id}" if diff.base else "no earlier run"
    return (f"{len(diff.new)} new, {len(diff.fixed)} fixed, {len(diff.still_open)} still open "
            f"({base} -> run {diff.head.id}, cluster {_cell(diff.head.cluster)})")
