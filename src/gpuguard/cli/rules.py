"""``gpuguard rules``: the rule catalogue, from the one registry the audit runs."""

from __future__ import annotations

import click

from gpuguard.model.finding import RuleInfo


def _infos() -> tuple[RuleInfo, ...]:
    from gpuguard.audit.run import rule_infos  # noqa: PLC0415 - lazy: other commands start fast

    return tuple(sorted(rule_infos(), key=lambda r: r.id))


def _table(rules: tuple[RuleInfo, ...]) -> str:
    width = max((len(r.title) for r in rules), default=5)
    lines = [f"{'ID':<6} {'SEVERITY':<9} {'SCOPE':<10} {'TITLE':<{width}}"]
    lines += [f"{r.id:<6} {r.severity.label:<9} {r.scope:<10} {r.title}" for r in rules]
    return "\n".join(lines) + "\n"


def _markdown(rules: tuple[RuleInfo, ...]) -> str:
    out = ["| ID | Severity | Scope | Title |", "|----|----------|-------|-------|"]
    out += [f"| {r.id} | {r.severity.label} | {r.scope} | {r.title} |" for r in rules]
    for r in rules:
        out += ["", f"## {r.id}: {r.title}", "", f"Severity: {r.severity.label}. Scope: {r.scope}.", "",
                r.rationale, "", f"Remediation: {r.remediation}"]
        if r.references:
            out += ["", "References:", *(f"- {ref}" for ref in r.references)]
    return "\n".join(out) + "\n"


def _json(rules: tuple[RuleInfo, ...]) -> bytes:
    import orjson  # noqa: PLC0415

    return orjson.dumps(
        [
            {"id": r.id, "title": r.title, "severity": r.severity.label, "scope": r.scope, "rationale": r.rationale,
             "remediation": r.remediation, "references": list(r.references)}
            for r in rules
        ],
        option=orjson.OPT_INDENT_2,
    ) + b"\n"


@click.command("rules")
@click.option("--format", "fmt", type=click.Choice(["table", "json", "markdown"]), default="table",
              show_default=True, help="Output format.")
def rules_command(fmt: str) -> None:
    """List the rules gpuguard audit runs: id, severity, scope and title."""
    rules = _infos()
    if fmt == "json":
        click.echo(_json(rules), nl=False)
    elif fmt == "markdown":
        click.echo(_markdown(rules), nl=False)
    else:
        click.echo(_table(rules), nl=False)
