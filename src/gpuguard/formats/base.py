"""The report-format interface: one small protocol, chosen by name on the CLI.

Every ``gpuguard audit --format NAME`` is an entry of ``FORMATS``: it renders a
``Report`` to the bytes written on stdout (or ``--output FILE``). Progress and
``summary_line`` go to stderr, so machine formats stay clean when piped.

Entries import their module on first use, so ``--format json`` never pays for
``rich`` and format modules may import the helpers below without an import cycle.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Protocol, cast

from gpuguard.model.decision import Step
from gpuguard.model.finding import Finding, Location, Resource, RuleInfo, Severity
from gpuguard.model.report import Report


class ReportFormat(Protocol):
    """What the CLI needs from an output format."""

    @property
    def name(self) -> str: ...

    @property
    def description(self) -> str: ...

    def render(self, report: Report, *, color: bool = False) -> bytes:
        """The whole report, ready to write; ``color`` only matters to formats for people."""
        ...


@dataclass(frozen=True, slots=True)
class _Lazy:
    """A format whose module is imported when it is first rendered."""

    name: str
    description: str
    module: str

    def render(self, report: Report, *, color: bool = False) -> bytes:
        module = importlib.import_module(f"gpuguard.formats.{self.module}")
        render = cast(Callable[..., bytes], module.render)
        return render(report, color=color)


FORMATS: dict[str, ReportFormat] = {
    f.name: f
    for f in (
        _Lazy("table", "coloured table grouped by object, for people (default)", "table"),
        _Lazy("json", "stable JSON, schema gpuguard.report/v1", "report_json"),
        _Lazy("sarif", "SARIF 2.1.0, for GitHub code scanning", "sarif"),
        _Lazy("junit", "JUnit XML, one test suite per rule, for CI test reports", "junit"),
        _Lazy("policyreport", "wgpolicyk8s.io/v1alpha2 PolicyReport and ClusterPolicyReport YAML", "policyreport"),
        _Lazy("html", "one self-contained HTML page: GPU node x namespace matrix and the findings", "html"),
    )
}
DEFAULT_FORMAT = "table"


def summary_line(report: Report) -> str:
    """One line for stderr: counts by severity, exemptions, errors, and what was judged against."""
    total = len(report.findings)
    counts = report.by_severity()
    by_sev = ", ".join(f"{counts[s.label]} {s.label}" for s in reversed(Severity) if counts[s.label])
    parts = [_plural(total, "finding") + (f" ({by_sev})" if by_sev else "")]
    if report.exempt:
        parts.append(f"{len(report.exempt)} exempt")
    if report.suppressed:
        parts.append(f"{report.suppressed} suppressed")
    if report.errors:
        parts.append(_plural(len(report.errors), "input error"))
    line = ", ".join(parts) + f"; judged against {report.profile.source}"
    if report.profile.assumed:
        line += " (assumed, not measured)"
    return line


def _plural(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


# Helpers shared by the formats: they read the model only.


def object_label(resource: Resource | None) -> str:
    """``Deployment research/notebook``; cluster-scoped objects have no namespace part."""
    if resource is None:
        return "node settings"
    where = f"{resource.namespace}/{resource.name}" if resource.namespace else resource.name
    return f"{resource.kind} {where}"


def location_text(location: Location | None) -> str:
    """``path:line``, or the bare flag / path when the line is unknown."""
    if location is None:
        return ""
    return f"{location.path}:{location.line}" if location.line is not None else location.path


def is_file(location: Location | None) -> bool:
    """True for a file path; False for a command-line flag (``--toolkit-version``) or stdin."""
    return location is not None and bool(location.path) and not location.path.startswith(("-", "<"))


def why(trail: Iterable[Step]) -> str:
    """The trail's conclusion in one line: the last step, what it read and what it says."""
    steps = list(trail)
    if not steps:
        return ""
    last = steps[-1]
    return f"{last.read} => {last.says}" if last.read else last.says


def rules_by_id(report: Report) -> dict[str, RuleInfo]:
    return {rule.id: rule for rule in report.rules}


def rule_title(report_rules: dict[str, RuleInfo], finding: Finding) -> str:
    rule = report_rules.get(finding.rule_id)
    return rule.title if rule else finding.rule_id
