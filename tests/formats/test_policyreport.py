"""``--format policyreport``: wgpolicyk8s.io/v1alpha2 reports, split by namespace, checked against the CRD.

The CRD check runs the validators that the npm package @kubernetes-models/kyverno (0.3.4)
generates from the wgpolicyk8s.io PolicyReport and ClusterPolicyReport CRDs; ``scripts/test``
installs it under .cache/npm. No PyPI package ships that CRD.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from gpuguard.formats.base import FORMATS
from gpuguard.formats.policyreport import policy_reports
from gpuguard.model.report import Report
from tests.formats.sample import empty_report, full_report

ROOT = Path(__file__).resolve().parents[2]
NODE_MODULES = ROOT / ".cache" / "npm" / "node_modules"
VALIDATOR = Path(__file__).with_name("validate_policyreport.cjs")

# The fields of the CRD's openAPIV3Schema (wgpolicyk8s.io/v1alpha2), for the structural check.
REPORT_KEYS = {"apiVersion", "kind", "metadata", "results", "scope", "scopeSelector", "summary"}
RESULT_KEYS = {
    "category",
    "message",
    "policy",
    "properties",
    "resourceSelector",
    "resources",
    "result",
    "rule",
    "scored",
    "severity",
    "source",
    "timestamp",
}
RESOURCE_KEYS = {"apiVersion", "fieldPath", "kind", "name", "namespace", "resourceVersion", "uid"}


def documents(report: Report, monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1767225600")  # 2026-01-01T00:00:00Z
    return list(yaml.safe_load_all(FORMATS["policyreport"].render(report)))


def test_one_policy_report_per_namespace_and_one_cluster_report(monkeypatch: pytest.MonkeyPatch) -> None:
    docs = documents(full_report(), monkeypatch)
    assert [(d["kind"], d["metadata"].get("namespace")) for d in docs] == [
        ("PolicyReport", "gpu-operator"),
        ("PolicyReport", "ml"),
        ("PolicyReport", "ops"),
        ("PolicyReport", "research"),
        ("ClusterPolicyReport", None),
    ]
    assert all(d["apiVersion"] == "wgpolicyk8s.io/v1alpha2" and d["metadata"]["name"] == "gpuguard" for d in docs)
    research = docs[3]
    assert [(r["policy"], r["result"], r["severity"]) for r in research["results"]] == [
        ("GG101", "fail", "critical"),
        ("GG102", "fail", "high"),
    ]
    assert research["summary"] == {"pass": 0, "fail": 2, "warn": 0, "error": 0, "skip": 0}
    assert research["results"][0]["resources"] == [
        {"apiVersion": "apps/v1", "kind": "Deployment", "name": "notebook", "namespace": "research"}
    ]


def test_cluster_report_holds_cluster_objects_node_settings_and_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    cluster = documents(full_report(), monkeypatch)[-1]
    assert "namespace" not in cluster["metadata"]
    assert [(r["policy"], r["result"], r["severity"]) for r in cluster["results"]] == [
        ("GG201", "fail", "high"),
        ("GG301", "warn", "low"),
        ("GG302", "warn", "info"),
        ("gpuguard-input", "error", "info"),
    ]
    assert cluster["results"][0]["resources"] == [
        {"apiVersion": "nvidia.com/v1", "kind": "ClusterPolicy", "name": "cluster-policy"}
    ]
    node = cluster["results"][1]
    assert "resources" not in node
    assert node["properties"] == {
        "location": "--operator-version",
        "remediation": "Upgrade the device plugin.",
        "fingerprint": "GG301|--operator-version|",
    }
    assert cluster["summary"] == {"pass": 0, "fail": 1, "warn": 2, "error": 1, "skip": 0}


def test_exempt_is_skip(monkeypatch: pytest.MonkeyPatch) -> None:
    docs = {d["metadata"].get("namespace"): d for d in documents(full_report(), monkeypatch)}
    operator = docs["gpu-operator"]
    assert [(r["policy"], r["result"]) for r in operator["results"]] == [("GG101", "skip"), ("GG102", "skip")]
    assert operator["results"][0]["message"] == "exempt: GPU Operator component"
    assert operator["results"][0]["properties"] == {
        "container": "nvidia-device-plugin",
        "location": "deploy/gpu-operator.yaml:40",
    }
    assert [(r["policy"], r["result"]) for r in docs["ops"]["results"]] == [("gpuguard-exempt", "skip")]


def test_timestamp_comes_from_source_date_epoch(monkeypatch: pytest.MonkeyPatch) -> None:
    docs = documents(full_report(), monkeypatch)
    stamps = {json.dumps(r["timestamp"]) for d in docs for r in d["results"]}
    assert stamps == {'{"seconds": 1767225600, "nanos": 0}'}
    assert FORMATS["policyreport"].render(full_report()) == FORMATS["policyreport"].render(full_report())


def test_clean_run_still_has_a_cluster_report(monkeypatch: pytest.MonkeyPatch) -> None:
    docs = documents(empty_report(), monkeypatch)
    assert [(d["kind"], d["results"], d["summary"]["fail"]) for d in docs] == [("ClusterPolicyReport", [], 0)]


def test_fields_are_those_of_the_crd(monkeypatch: pytest.MonkeyPatch) -> None:
    for doc in documents(full_report(), monkeypatch):
        assert set(doc) <= REPORT_KEYS
        assert set(doc["summary"]) <= {"pass", "fail", "warn", "error", "skip"}
        for result in doc["results"]:
            assert set(result) <= RESULT_KEYS
            assert result["result"] in {"pass", "fail", "warn", "error", "skip"}
            assert result["severity"] in {"critical", "high", "medium", "low", "info"}
            assert all(isinstance(v, str) for v in result.get("properties", {}).values())
            for ref in result.get("resources", []):
                assert set(ref) <= RESOURCE_KEYS


def _validate_with_crd(docs: list[dict[str, Any]]) -> list[str]:
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed: the CRD validators are JavaScript")
    if not (NODE_MODULES / "@kubernetes-models" / "kyverno").is_dir():
        pytest.fail("the PolicyReport CRD validators are missing: run ./scripts/test (it installs them)")
    env = {**os.environ, "NODE_PATH": str(NODE_MODULES)}
    done = subprocess.run(
        [node, str(VALIDATOR)], input=json.dumps(docs), capture_output=True, text=True, env=env, check=True, timeout=60
    )
    return done.stdout.splitlines()


def test_output_validates_against_the_policyreport_crds() -> None:
    docs = policy_reports(full_report(), now=1767225600) + policy_reports(empty_report(), now=0)
    assert _validate_with_crd(docs) == ["ok"] * len(docs)


def test_the_crd_validator_does_reject() -> None:
    bad = policy_reports(full_report(), now=1)[0]
    bad["results"][0]["result"] = "failed"
    bad["results"][0]["severity"] = "urgent"
    bad["results"][0]["timestamp"] = "2026-01-01T00:00:00Z"
    lines = _validate_with_crd([bad])
    assert len(lines) == 1
    assert lines[0].startswith("invalid ")
    assert "result" in lines[0] and "severity" in lines[0] and "timestamp" in lines[0]
