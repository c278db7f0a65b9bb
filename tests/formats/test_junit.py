"""``--format junit``: one test suite per rule, read back with junitparser as CI tools read it."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from junitparser import Error, Failure, JUnitXml, Skipped

from gpuguard.formats.base import FORMATS
from gpuguard.model.finding import Finding, Severity
from gpuguard.model.report import Report
from tests.formats.sample import NOTEBOOK, PROFILE, RULES, empty_report, full_report


def parsed(report: Report) -> JUnitXml:
    return JUnitXml.fromstring(FORMATS["junit"].render(report))


def test_one_suite_per_rule_then_inputs() -> None:
    xml = parsed(full_report())
    assert [s.name for s in xml] == [
        "GG101 GPU visible without request",
        "GG102 Privileged GPU container",
        "GG201 Envvar accepted when unprivileged",
        "GG150 Image env not inspected",
        "GG301 Old device plugin",
        "GG302 Informational note",
        "GG199 Rule with no findings",
        "gpuguard.inputs",
    ]


def test_totals() -> None:
    root = ET.fromstring(FORMATS["junit"].render(full_report()))
    assert root.tag == "testsuites"
    assert {k: root.attrib[k] for k in ("tests", "failures", "errors", "skipped")} == {
        "tests": "10",
        "failures": "6",
        "errors": "1",
        "skipped": "2",
    }


def test_every_severity_fails_with_the_severity_as_type() -> None:
    xml = parsed(full_report())
    failures = [
        (case.classname, case.name, r.type)
        for suite in xml
        for case in suite
        for r in case.result
        if isinstance(r, Failure)
    ]
    assert failures == [
        ("gpuguard.GG101", "Deployment research/notebook container jupyter", "critical"),
        ("gpuguard.GG102", "Deployment research/notebook container sidecar", "high"),
        ("gpuguard.GG201", "ClusterPolicy cluster-policy", "high"),
        ("gpuguard.GG150", "Job ml/trainer container train", "medium"),
        ("gpuguard.GG301", "node settings", "low"),
        ("gpuguard.GG302", "node settings", "info"),
    ]


def test_failure_text_has_location_why_and_fix() -> None:
    suite = next(iter(parsed(full_report())))
    case = next(iter(suite))
    failure = case.result[0]
    assert failure.message == "Container sees all GPUs without requesting one."
    assert failure.text == (
        "Container sees all GPUs without requesting one.\n"
        "at: deploy/research.yaml:12\n"
        "why: NVIDIA_VISIBLE_DEVICES=all (image) => all GPUs\n"
        "fix: Set NVIDIA_VISIBLE_DEVICES=void in the container."
    )


def test_exempt_is_skipped_errors_are_errors_and_clean_rules_pass() -> None:
    suites = {s.name: s for s in parsed(full_report())}
    skipped = [c for c in suites["GG101 GPU visible without request"] if c.result and isinstance(c.result[0], Skipped)]
    assert [(c.name, c.result[0].message) for c in skipped] == [
        (
            "DaemonSet gpu-operator/nvidia-device-plugin-daemonset container nvidia-device-plugin",
            "exempt: GPU Operator component",
        ),
    ]
    errors = list(suites["gpuguard.inputs"])
    assert [(c.name, isinstance(c.result[0], Error), c.result[0].message) for c in errors] == [
        ("deploy/broken.yaml:7", True, "deploy/broken.yaml:7: mapping values are not allowed here"),
    ]
    clean = list(suites["GG199 Rule with no findings"])
    assert [(c.name, c.is_passed) for c in clean] == [("GG199: no findings (Rule with no findings)", True)]


def test_clean_run_is_all_passing() -> None:
    root = ET.fromstring(FORMATS["junit"].render(empty_report()))
    assert {k: root.attrib[k] for k in ("tests", "failures", "errors", "skipped")} == {
        "tests": "1",
        "failures": "0",
        "errors": "0",
        "skipped": "0",
    }


def test_characters_xml_cannot_carry_are_replaced() -> None:
    odd = Finding("GG101", Severity.HIGH, "bad \x1b[31m value & <tag>", "fix", resource=NOTEBOOK, container="c\x00")
    out = FORMATS["junit"].render(Report(profile=PROFILE, findings=(odd,), rules=RULES[:1]))
    case = ET.fromstring(out).find("testsuite/testcase")
    assert case is not None
    assert case.attrib["name"] == "Deployment research/notebook container c\ufffd"
    failure = case.find("failure")
    assert failure is not None
    assert failure.attrib["message"] == "bad \ufffd[31m value & <tag>"
