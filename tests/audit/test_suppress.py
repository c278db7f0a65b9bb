"""Suppressions: annotations (reason required), an ignore file with expiry, a baseline; unused ones listed."""

from __future__ import annotations

import datetime
from pathlib import Path

import pytest

from gpuguard.audit.suppress import read_ignore_file
from gpuguard.model.errors import InputError
from tests.audit.helpers import EXAMPLES, audit, audit_json, error_lines

JOB = EXAMPLES / "workloads" / "training-job.yaml"
DEBUG = EXAMPLES / "workloads" / "debug-pod.yaml"


def _annotated(tmp_path: Path, value: str) -> Path:
    text = DEBUG.read_text().replace(
        "  namespace: sre-tools\n", f'  namespace: sre-tools\n  annotations:\n    gpuguard.io/ignore: "{value}"\n'
    )
    path = tmp_path / "debug.yaml"
    path.write_text(text)
    return path


def test_annotation_suppresses_the_rules_it_names(tmp_path: Path) -> None:
    code, report, _ = audit_json(str(_annotated(tmp_path, "GG104: break-glass pod, removed after incident 4711")))
    assert code == 1
    assert [f["rule_id"] for f in report["findings"]] == ["GG103"]
    assert report["summary"]["suppressed"] == 1
    (s,) = report["suppressions"]
    assert s["rule_ids"] == ["GG104"] and s["matched"] == 1
    assert s["origin"] == "annotation on Pod sre-tools/node-debugger-gpu-worker-3"


def test_annotation_without_a_reason_is_reported_and_suppresses_nothing(tmp_path: Path) -> None:
    path = _annotated(tmp_path, "GG103,GG104")
    code, report, err = audit_json(str(path))
    assert code == 2
    assert {f["rule_id"] for f in report["findings"]} == {"GG103", "GG104"}
    (line,) = error_lines(err)
    assert line.startswith(f"gpuguard: error: {path}:3: ") and "a reason is required" in line


def _ignore(tmp_path: Path, text: str) -> str:
    path = tmp_path / ".gpuguardignore.yaml"
    path.write_text(text)
    return str(path)


def test_ignore_file_paths_rules_resource_and_unused_entries(tmp_path: Path) -> None:
    ignore = _ignore(tmp_path, """
- rules: [GG102]
  paths: ["*/workloads/training-job.yaml"]
  reason: benchmark job, single-tenant node pool
- rules: GG103, GG104
  resource: "Pod/sre-tools/*"
  reason: SRE debug pods are reviewed by hand
- rules: [GG101]
  reason: nothing matches this one
""")
    code, report, _ = audit_json("--ignore-file", ignore, str(JOB), str(DEBUG))
    assert code == 0
    assert report["findings"] == []
    matched = {s["origin"]: s["matched"] for s in report["suppressions"]}
    assert matched == {f"{ignore}: entry 1": 1, f"{ignore}: entry 2": 2, f"{ignore}: entry 3": 0}


def test_expired_entries_stop_suppressing_and_are_reported(tmp_path: Path) -> None:
    ignore = _ignore(tmp_path, "- rules: [GG102]\n  reason: until the fix ships\n  expires: 2024-01-31\n")
    code, report, _ = audit_json("--ignore-file", ignore, str(JOB))
    assert code == 1
    assert [f["rule_id"] for f in report["findings"]] == ["GG102"]
    assert any("expired on 2024-01-31" in note for note in report["profile"]["notes"])
    (s,) = report["suppressions"]
    assert s["matched"] == 0 and s["expires"] == "2024-01-31"


@pytest.mark.parametrize(
    ("text", "where"),
    [
        ("- rules: [GG102]\n", "entry 1.reason"),
        ("- reason: x\n", "entry 1.rules"),
        ("- rules: [GG9]\n  reason: x\n", "entry 1.rules"),
        ("- rules: [GG102]\n  reason: x\n  expires: next week\n", "entry 1.expires"),
        ("- rules: [GG102]\n  reason: x\n  colour: blue\n", "entry 1.colour"),
        ("rules: GG102\n", "ignore.yaml"),
    ],
)
def test_bad_ignore_files_name_the_field(text: str, where: str) -> None:
    with pytest.raises(InputError) as info:
        read_ignore_file("ignore.yaml", text.encode(), datetime.date(2026, 1, 1))
    assert where in str(info.value)


def test_baseline_reports_only_new_findings(tmp_path: Path) -> None:
    baseline = tmp_path / "base.json"
    assert audit("--format", "json", "--output", str(baseline), str(JOB))[0] == 1
    code, report, _ = audit_json("--baseline", str(baseline), str(JOB), str(DEBUG))
    assert code == 1
    assert {f["rule_id"] for f in report["findings"]} == {"GG103", "GG104"}
    (s,) = report["suppressions"]
    assert s["origin"] == f"baseline {baseline}" and s["matched"] == 1


def test_a_baseline_that_is_not_a_report_is_a_usage_error(tmp_path: Path) -> None:
    bad = tmp_path / "base.json"
    bad.write_text("[1, 2]")
    code, _, err = audit("--baseline", str(bad), str(JOB))
    assert code == 2 and "not a gpuguard JSON report" in err
