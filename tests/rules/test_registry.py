"""The registry is the single source: ids, order, metadata, and the generated docs/rules.md."""

from __future__ import annotations

from pathlib import Path

import pytest

from gpuguard.model.finding import Severity
from gpuguard.rules import RULES, rule
from gpuguard.rules.docs import rules_markdown

EXPECTED = {
    "GG101": "container", "GG102": "container", "GG103": "container", "GG104": "container", "GG105": "pod",
    "GG106": "pod", "GG107": "container", "GG108": "container", "GG109": "image", "GG201": "node", "GG202": "node",
    "GG203": "node", "GG204": "node", "GG205": "node", "GG206": "node", "GG207": "cluster",
    "GG208": "cluster", "GG209": "cluster", "GG301": "node", "GG401": "container", "GG402": "container",
    "GG403": "container",
}  # fmt: skip
DOCS = Path(__file__).resolve().parents[2] / "docs" / "rules.md"


def test_ids_scopes_and_order() -> None:
    assert list(RULES) == sorted(EXPECTED)
    assert {k: r.scope for k, r in RULES.items()} == EXPECTED


@pytest.mark.parametrize("rule_id", sorted(EXPECTED))
def test_each_rule_is_complete(rule_id: str) -> None:
    info = rule(rule_id)
    assert info.id == rule_id
    assert isinstance(info.severity, Severity)
    assert info.title and info.rationale.endswith(".") and info.remediation
    assert info.references and all(ref.startswith("https://") for ref in info.references)


def test_unknown_rule() -> None:
    with pytest.raises(KeyError, match="GG999"):
        rule("GG999")


def test_committed_docs_match_the_registry() -> None:
    """Regenerate with: .venv/bin/python -m gpuguard.rules.docs > docs/rules.md"""
    assert DOCS.read_text(encoding="utf-8") == rules_markdown()


def test_docs_list_every_rule() -> None:
    text = rules_markdown()
    for rule_id, info in RULES.items():
        assert f"## {rule_id}" in text and info.title in text
