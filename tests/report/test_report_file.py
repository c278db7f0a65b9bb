"""A JSON report read back for the page: what ``audit --format json`` writes loads; bad input names the key."""

from __future__ import annotations

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from gpuguard.formats import report_json
from gpuguard.history.report_file import load_report_findings
from gpuguard.model.errors import InputError
from gpuguard.model.finding import Severity
from gpuguard.model.history import StoredFinding
from tests.report.sample import FINDINGS, HOSTILE_POD, report


def test_an_audit_json_report_loads() -> None:
    source, findings = load_report_findings(report_json.render(report(*FINDINGS)), "r.json")
    assert source == "live cluster gpu-prod: 3 GPU nodes"
    assert findings[2] == StoredFinding(f"GG101|Pod/research/{HOSTILE_POD}|main", "GG101", Severity.MEDIUM, "Pod",
                                        "research", HOSTILE_POD, "main", "gpu-a100-1",
                                        "</td></tr></table><script>alert(1)</script><img src=x onerror=alert(2)>")
    assert findings[4] == StoredFinding("GG201|ClusterPolicy//cluster-policy|", "GG201", Severity.HIGH,
                                        "ClusterPolicy", None, "cluster-policy", None, None,
                                        "cluster-policy can reach every GPU")
    assert len(findings) == 6


def _doc(**finding: object) -> bytes:
    base: dict[str, object] = {"rule_id": "GG101", "severity": "high", "resource": None, "container": None,
                               "node": None, "message": "m", "fingerprint": "GG101|f|"}
    base.update(finding)
    return orjson.dumps({"schema": "gpuguard.report/v1", "profile": {"source": "s"}, "findings": [base]})


@pytest.mark.parametrize(("data", "message"), [
    (b"{", "r.json: not JSON: "),
    (b"[]", "r.json: expected a gpuguard JSON report (a mapping), got list"),
    (b'{"schema": "other/v9", "findings": []}', "r.json: schema: expected 'gpuguard.report/v1', got 'other/v9'"),
    (b'{"schema": "gpuguard.report/v1", "findings": {}}', "r.json: findings: expected a list, got mapping"),
    (_doc(severity="urgent"), "r.json: findings[0].severity: unknown severity 'urgent'"),
    (_doc(severity=3), "r.json: findings[0].severity: expected a string, got number"),
    (_doc(fingerprint=None), "r.json: findings[0].fingerprint: expected a string, got null"),
    (_doc(resource=[]), "r.json: findings[0].resource: expected a mapping or null, got list"),
    (_doc(resource={"kind": 1}), "r.json: findings[0].resource.kind: expected a string or null, got number"),
    (_doc(node=False), "r.json: findings[0].node: expected a string or null, got boolean"),
])
def test_bad_reports(data: bytes, message: str) -> None:
    with pytest.raises(InputError) as caught:
        load_report_findings(data, "r.json")
    assert str(caught.value).startswith(message)


_json = st.recursive(st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.text(max_size=8),
                     lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner,
                                                                                  max_size=4), max_leaves=12)
_finding = st.fixed_dictionaries({}, optional={k: _json | st.sampled_from(["high", "low", "x"]) for k in
                                               ("rule_id", "severity", "resource", "container", "node", "message",
                                                "fingerprint", "location")})


@given(st.lists(_finding | _json, max_size=4))
def test_any_findings_list_loads_or_is_one_input_error(items: list[object]) -> None:
    data = orjson.dumps({"schema": "gpuguard.report/v1", "findings": items})
    try:
        _, findings = load_report_findings(data, "r.json")
    except InputError as exc:
        assert str(exc).startswith("r.json: findings[")
    else:
        assert len(findings) == len(items)


@given(st.binary(max_size=64))
def test_any_bytes_load_or_are_one_input_error(data: bytes) -> None:
    try:
        load_report_findings(data, "r.json")
    except InputError as exc:
        assert str(exc).startswith("r.json")
