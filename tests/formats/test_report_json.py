"""``--format json``: schema gpuguard.report/v1, validated against the JSON Schema shipped in the package."""

from __future__ import annotations

import json
from importlib import resources
from typing import Any

import jsonschema
import pytest

from gpuguard.formats import report_json
from gpuguard.formats.base import FORMATS
from gpuguard.model.report import Report
from tests.formats.sample import ASSUMED_PROFILE, empty_report, full_report


def schema() -> dict[str, Any]:
    text = resources.files("gpuguard.formats").joinpath("schemas/report-v1.schema.json").read_text("utf-8")
    return json.loads(text)


def rendered(report: Report) -> dict[str, Any]:
    return json.loads(FORMATS["json"].render(report))


def test_the_schema_is_a_valid_draft_2020_12_schema() -> None:
    s = schema()
    assert s["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    jsonschema.Draft202012Validator.check_schema(s)


@pytest.mark.parametrize("report", [full_report(), empty_report(), full_report(ASSUMED_PROFILE)])
def test_output_validates_against_the_schema(report: Report) -> None:
    jsonschema.Draft202012Validator(schema()).validate(rendered(report))


def test_schema_rejects_what_v1_does_not_allow() -> None:
    validator = jsonschema.Draft202012Validator(schema())
    doc = rendered(full_report())
    doc["findings"][0]["severity"] = "urgent"
    assert not validator.is_valid(doc)
    doc = rendered(full_report())
    del doc["findings"][0]["trail"]
    assert not validator.is_valid(doc)
    doc = rendered(full_report())
    doc["schema"] = "gpuguard.report/v2"
    assert not validator.is_valid(doc)


def test_key_order_is_fixed() -> None:
    doc = rendered(full_report())
    assert list(doc) == [
        "schema",
        "profile",
        "findings",
        "exempt",
        "errors",
        "suppressions",
        "summary",
        "objects",
        "skipped_kinds",
    ]
    assert list(doc["findings"][0]) == [
        "rule_id",
        "severity",
        "resource",
        "container",
        "node",
        "location",
        "message",
        "trail",
        "remediation",
        "fingerprint",
    ]
    assert list(doc["findings"][0]["resource"]) == ["apiVersion", "kind", "namespace", "name"]
    assert list(doc["findings"][0]["location"]) == ["path", "line"]
    assert list(doc["profile"]) == [
        "source",
        "operator_version",
        "toolkit_version",
        "device_plugin_version",
        "settings",
        "assumed",
        "notes",
    ]
    assert list(doc["summary"]["by_severity"]) == ["critical", "high", "medium", "low", "info"]


def test_values_as_typed() -> None:
    doc = rendered(full_report())
    assert doc["schema"] == "gpuguard.report/v1"
    first = doc["findings"][0]
    assert first == {
        "rule_id": "GG101",
        "severity": "critical",
        "resource": {"apiVersion": "apps/v1", "kind": "Deployment", "namespace": "research", "name": "notebook"},
        "container": "jupyter",
        "node": None,
        "location": {"path": "deploy/research.yaml", "line": 12},
        "message": "Container sees all GPUs without requesting one.",
        "trail": [
            {"rule": "k8s.request", "read": "resources.limits: none", "says": "no GPU requested"},
            {"rule": "toolkit.envvar", "read": "NVIDIA_VISIBLE_DEVICES=all (image)", "says": "all GPUs"},
        ],
        "remediation": "Set NVIDIA_VISIBLE_DEVICES=void in the container.",
        "fingerprint": "GG101|Deployment/research/notebook|jupyter",
    }
    node = doc["findings"][4]
    assert node["fingerprint"] == "GG301|--operator-version|"
    assert node["resource"] is None
    assert node["location"] == {"path": "--operator-version", "line": None}
    assert doc["findings"][5]["location"] is None
    assert doc["findings"][3]["resource"]["namespace"] is None
    assert doc["exempt"][1] == {
        "resource": {"apiVersion": "v1", "kind": "Pod", "namespace": "ops", "name": "nvidia-smi"},
        "container": None,
        "location": None,
        "reason": "allow-listed tool",
        "rule_ids": [],
    }
    assert doc["errors"] == [
        {
            "message": "deploy/broken.yaml:7: mapping values are not allowed here",
            "location": {"path": "deploy/broken.yaml", "line": 7},
        }
    ]
    assert doc["suppressions"] == [
        {
            "rule_ids": ["GG150"],
            "reason": "images checked by hand",
            "origin": ".gpuguardignore:3",
            "matched": 2,
            "expires": None,
        }
    ]
    assert doc["summary"] == {
        "findings": 6,
        "by_severity": {"critical": 1, "high": 2, "medium": 1, "low": 1, "info": 1},
        "exempt": 2,
        "suppressed": 2,
        "errors": 1,
        "files": 4,
        "objects": 9,
    }
    assert doc["objects"] == 9
    assert list(doc["skipped_kinds"].items()) == [("ConfigMap", 1), ("Service", 2)]  # sorted by kind


def test_assumed_profile_is_said() -> None:
    profile = rendered(full_report(ASSUMED_PROFILE))["profile"]
    assert profile["assumed"] is True
    assert profile["operator_version"] is None
    assert profile["notes"] == ["12 images assumed to set NVIDIA_VISIBLE_DEVICES=all"]


def test_same_report_same_bytes() -> None:
    assert FORMATS["json"].render(full_report()) == FORMATS["json"].render(full_report())
    assert report_json.render(full_report(), color=True) == report_json.render(full_report(), color=False)
