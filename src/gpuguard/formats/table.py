"""``--format table`` (the default): findings grouped by object, for a person at a terminal.

The header says what the manifests were judged against, and says loudly when
nothing was known and the most exposed configuration was assumed: a reader must
not take "assumed" for "measured". Each object gets one table: severity
(coloured), rule, container, the message with a short "why" from the trail, and
the fix. With ``color=False`` (not a TTY, ``NO_COLOR``) the same text comes out
without escape codes.
"""

from __future__ import annotations

import io
import shutil

from rich.console import Console
from rich.table import Table
from rich.text import Text

from gpuguard.formats.base import location_text, object_label, rules_by_id, why
from gpuguard.model.finding import Finding, Severity
from gpuguard.model.report import Report

STYLE = {
    Severity.CRITICAL: "bold white on red",
    Severity.HIGH: "bold red",
    Severity.MEDIUM: "yellow",
    Severity.LOW: "cyan",
    Severity.INFO: "dim",
}
ASSUMED = "ASSUMED: nothing was known about the nodes; judged against the most exposed common configuration"


def render(report: Report, *, color: bool = False) -> bytes:
    width = max(80, shutil.get_terminal_size((120, 24)).columns)
    out = io.StringIO()
    console = Console(
        file=out,
        width=width,
        color_system="standard" if color else None,
        force_terminal=color,
        no_color=not color,
        highlight=False,
        markup=False,  # manifest text such as "[x]" must print as written
        emoji=False,
        soft_wrap=True,  # list lines stay whole; tables still fit the width
    )
    _header(console, report)
    _findings(console, report)
    _exempt(console, report)
    _errors(console, report)
    if report.skipped_kinds:
        kinds = ", ".join(f"{kind} ({n})" for kind, n in sorted(report.skipped_kinds.items()))
        console.print(Text(f"Not judged (kinds gpuguard does not check): {kinds}", style="dim"))
    return out.getvalue().encode()


def _header(console: Console, report: Report) -> None:
    p = report.profile
    console.print(Text.assemble(("Judged against: ", "bold"), p.source))
    versions = [f"toolkit {p.toolkit_version}"]
    if p.operator_version:
        versions.insert(0, f"GPU Operator {p.operator_version}")
    if p.device_plugin_version:
        versions.append(f"device plugin {p.device_plugin_version}")
    console.print("  " + ", ".join(versions))
    for key, value in sorted(p.settings.items()):
        console.print(f"  {key} = {value}")
    if p.assumed:
        console.print(Text(ASSUMED, style="bold yellow"))
    for note in p.notes:
        console.print(Text(f"  note: {note}", style="yellow"))
    console.print()


def _group_key(finding: Finding) -> tuple[str, ...]:
    """One group per object; findings without an object (files, flags) group by where they were read."""
    resource = finding.resource
    if resource is None:
        return ("", finding.location.path if finding.location else "")
    return (resource.kind, resource.namespace or "", resource.name, resource.api_version)


def _group_title(finding: Finding) -> str:
    """The object; for settings read from a file, the file (a flag keeps the "node settings" title)."""
    location = finding.location
    if finding.resource is None and location is not None and not location.path.startswith("--"):
        return location.path
    return object_label(finding.resource)


def _findings(console: Console, report: Report) -> None:
    if not report.findings:
        console.print(Text("No findings.", style="bold green"))
        console.print()
        return
    groups: dict[tuple[str, ...], list[Finding]] = {}
    for f in report.findings:  # objects in the order the report gives them
        groups.setdefault(_group_key(f), []).append(f)
    rules = rules_by_id(report)
    for findings in groups.values():
        first = findings[0]
        title = Text(_group_title(first), style="bold")
        where = _where(findings)
        if first.resource is None and first.location is not None and where.startswith(first.location.path + ":"):
            where = "line " + where[len(first.location.path) + 1 :]  # the title already names the file
        if where:
            title.append(f"  {where}", style="dim")
        console.print(title)
        table = Table(show_header=True, header_style="bold", show_lines=True, expand=True, pad_edge=False)
        table.add_column("Severity", no_wrap=True, width=10)
        table.add_column("Rule", no_wrap=True)
        table.add_column("Container", overflow="fold", max_width=24)
        table.add_column("Finding", ratio=3, overflow="fold")
        table.add_column("Fix", ratio=2, overflow="fold")
        for f in sorted(findings, key=lambda f: (-f.severity, f.container or "", f.rule_id)):
            finding = Text(f.message)
            reason = why(f.trail)
            if reason:
                finding.append(f"\nwhy: {reason}", style="dim")
            if f.rule_id in rules:
                finding.append(f"\n({rules[f.rule_id].title})", style="dim")
            table.add_row(
                Text(f.severity.label.upper(), style=STYLE[f.severity]),
                f.rule_id,
                f.container or "-",
                finding,
                f.remediation,
            )
        console.print(table)
        console.print()


def _where(findings: list[Finding]) -> str:
    """The object's file and line (or flag), once per group when the findings agree."""
    places = list(dict.fromkeys(location_text(f.location) for f in findings if f.location is not None))
    return places[0] if len(places) == 1 else ", ".join(places)


def _exempt(console: Console, report: Report) -> None:
    if not report.exempt:
        return
    console.print(Text(f"Exempt ({len(report.exempt)}): reach GPUs legitimately", style="bold"))
    for e in report.exempt:
        container = f" container {e.container}" if e.container else ""
        rules = f" [{', '.join(e.rule_ids)}]" if e.rule_ids else ""
        console.print(Text(f"  {object_label(e.resource)}{container}: {e.reason}{rules}"))
    console.print()


def _errors(console: Console, report: Report) -> None:
    if not report.errors:
        return
    console.print(Text(f"Input errors ({len(report.errors)}): these inputs were not judged", style="bold red"))
    for err in report.errors:
        where = location_text(err.location)
        console.print(Text(f"  {where}: {err.message}" if where else f"  {err.message}"))
    console.print()
