"""``docs/rules.md``, rendered from the registry so the docs never drift from the code.

Regenerate with ``python -m gpuguard.rules.docs > docs/rules.md``; a test
compares the committed file with ``rules_markdown()``.
"""

from __future__ import annotations

from gpuguard.rules.registry import RULES

_SCOPES = {
    "container": "one container (its spec and the engine's decision)",
    "pod": "one pod (its spec)",
    "image": "the final stage of one Dockerfile (the env its image sets)",
    "node": "the node's effective settings (ClusterPolicy, Helm values, config.toml, flags)",
    "cluster": "the live cluster (gpuguard audit --cluster): its admission configuration, running pods and nodes",
}


def rules_markdown() -> str:
    """The rule catalogue as Markdown: a table, then one section per rule."""
    out = [
        "# gpuguard rules",
        "",
        "<!-- Generated from src/gpuguard/rules/registry.py by `python -m gpuguard.rules.docs`; do not edit. -->",
        "",
        "Each rule has a stable id. GG1xx judge workloads, GG2xx node settings, GG3xx known advisories, "
        "GG4xx what the node agent observes on a GPU node.",
        "Findings carry the rule's severity (GG301: that of the worst advisory that applies), the object,",
        "the container, where it was read, the engine's explanation trail and a remediation fitted to",
        "the node's release and runtime mode. GPU Operator components in trusted namespaces are reported",
        "as exempt, not as findings.",
        "",
        "| ID | Severity | Scope | Title |",
        "|----|----------|-------|-------|",
    ]
    out += [f"| [{r.id}](#{r.id.lower()}) | {r.severity.label} | {r.scope} | {r.title} |" for r in RULES.values()]
    for r in RULES.values():
        out += [
            "",
            f"## {r.id}",
            "",
            f"**{r.title}**",
            "",
            f"Severity: {r.severity.label}. Scope: {_SCOPES.get(r.scope, r.scope)}.",
            "",
            r.rationale,
            "",
            f"Remediation: {r.remediation}",
        ]
        if r.references:
            out += ["", "References:", "", *(f"- <{ref}>" for ref in r.references)]
    return "\n".join(out) + "\n"


if __name__ == "__main__":
    print(rules_markdown(), end="")
