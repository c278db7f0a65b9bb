"""``--format junit``: JUnit XML for CI test reports (GitLab, Jenkins, Azure, GitHub test-report actions).

One ``<testsuite>`` per rule that ran, so the CI view reads as a checklist:
a rule with no findings is one passing test case, each finding is a failing
test case named after the object and container (any severity fails; the
severity is the failure ``type``), and each exemption is a skipped case with its
reason. Input errors form a last suite, ``gpuguard.inputs``, of ``<error>`` cases.
Times are 0: gpuguard judges files, it does not time them.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field

from gpuguard.formats.base import location_text, object_label, rules_by_id, why
from gpuguard.model.finding import Exempt, Finding, RuleInfo
from gpuguard.model.report import Report

# Characters XML 1.0 cannot carry at all, even escaped; a manifest value could hold one.
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def _x(text: str) -> str:
    return _NOT_XML.sub("\ufffd", text)


@dataclass
class _Suite:
    name: str
    cases: list[ET.Element] = field(default_factory=list)
    failures: int = 0
    errors: int = 0
    skipped: int = 0


def render(report: Report, *, color: bool = False) -> bytes:
    """The XML document with its declaration, UTF-8; ``color`` is ignored."""
    root = junit_tree(report)
    ET.indent(root)
    xml: bytes = ET.tostring(root, encoding="utf-8", xml_declaration=True)
    return xml + b"\n"


def junit_tree(report: Report) -> ET.Element:
    rules = rules_by_id(report)
    order = list(rules)
    order += [f.rule_id for f in report.findings if f.rule_id not in rules]
    suites = {rule_id: _Suite(_suite_name(rule_id, rules.get(rule_id))) for rule_id in dict.fromkeys(order)}
    for f in report.findings:
        suite = suites[f.rule_id]
        suite.cases.append(_failure_case(f))
        suite.failures += 1
    for e in report.exempt:
        for rule_id in e.rule_ids:
            if rule_id in suites:
                suites[rule_id].cases.append(_skipped_case(rule_id, e))
                suites[rule_id].skipped += 1
    for rule_id, suite in suites.items():
        if not suite.failures:
            title = rules[rule_id].title if rule_id in rules else rule_id
            suite.cases.insert(0, _case(f"gpuguard.{rule_id}", f"{rule_id}: no findings ({title})"))
    if report.errors:
        inputs = _Suite("gpuguard.inputs")
        for i, err in enumerate(report.errors, 1):
            case = _case("gpuguard.inputs", location_text(err.location) or f"input {i}")
            ET.SubElement(case, "error", message=_x(err.message), type="InputError").text = _x(err.message)
            inputs.cases.append(case)
            inputs.errors += 1
        suites["gpuguard.inputs"] = inputs

    all_suites = list(suites.values())
    root = ET.Element("testsuites", attrib={"name": "gpuguard", **_counts(all_suites)})
    for suite in all_suites:
        el = ET.SubElement(root, "testsuite", attrib={"name": _x(suite.name), **_counts([suite])})
        el.extend(suite.cases)
    return root


def _suite_name(rule_id: str, rule: RuleInfo | None) -> str:
    return f"{rule_id} {rule.title}" if rule else rule_id


def _counts(suites: list[_Suite]) -> dict[str, str]:
    return {
        "tests": str(sum(len(s.cases) for s in suites)),
        "failures": str(sum(s.failures for s in suites)),
        "errors": str(sum(s.errors for s in suites)),
        "skipped": str(sum(s.skipped for s in suites)),
        "time": "0",
    }


def _case(classname: str, name: str) -> ET.Element:
    return ET.Element("testcase", classname=_x(classname), name=_x(name), time="0")


def _subject(resource_label: str, container: str | None) -> str:
    return resource_label + (f" container {container}" if container else "")


def _failure_case(f: Finding) -> ET.Element:
    case = _case(f"gpuguard.{f.rule_id}", _subject(object_label(f.resource), f.container))
    details = [f.message]
    if f.location is not None:
        details.append(f"at: {location_text(f.location)}")
    if f.trail:
        details.append(f"why: {why(f.trail)}")
    if f.remediation:
        details.append(f"fix: {f.remediation}")
    failure = ET.SubElement(case, "failure", message=_x(f.message), type=f.severity.label)
    failure.text = _x("\n".join(details))
    return case


def _skipped_case(rule_id: str, e: Exempt) -> ET.Element:
    case = _case(f"gpuguard.{rule_id}", _subject(object_label(e.resource), e.container))
    ET.SubElement(case, "skipped", message=_x(f"exempt: {e.reason}"))
    return case
