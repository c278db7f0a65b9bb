"""The history of audit runs as plain data: what a store keeps and what two runs differ by.

A stored finding keeps only what a later reader needs to recognise and show a
finding (no trail, no decision): the store stays small and the HTML page and
``gpuguard history`` render from these objects alone.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from gpuguard.model.finding import Finding, Severity


@dataclass(frozen=True, slots=True)
class RunSummary:
    """One recorded audit run: when, which cluster, against what, and how much it found."""

    id: int
    started: str  # UTC, ISO 8601 with a ``Z`` (2026-11-29T16:53:56Z)
    cluster: str
    profile_source: str
    counts: dict[str, int] = field(default_factory=dict)  # severity label -> findings
    objects: int = 0
    errors: int = 0

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def count(self, severity: Severity) -> int:
        return self.counts.get(severity.label, 0)


@dataclass(frozen=True, slots=True)
class StoredFinding:
    """A finding as the history keeps it; ``fingerprint`` is its identity across runs, as for baselines."""

    fingerprint: str
    rule_id: str
    severity: Severity
    kind: str | None
    namespace: str | None
    name: str | None
    container: str | None
    node: str | None
    message: str

    @classmethod
    def of(cls, finding: Finding) -> StoredFinding:
        r = finding.resource
        return cls(
            fingerprint=finding.fingerprint,
            rule_id=finding.rule_id,
            severity=finding.severity,
            kind=r.kind if r else None,
            namespace=r.namespace if r else None,
            name=r.name if r else (finding.location.path if finding.location else None),
            container=finding.container,
            node=finding.node,
            message=finding.message,
        )

    @property
    def object_label(self) -> str:
        """``Pod research/jupyter-alice``; a finding without an object shows its name alone."""
        where = f"{self.namespace}/{self.name}" if self.namespace else (self.name or "")
        return f"{self.kind} {where}" if self.kind else where


@dataclass(frozen=True, slots=True)
class Change:
    """A finding open in both runs whose severity or node changed (same fingerprint)."""

    before: StoredFinding
    after: StoredFinding


@dataclass(frozen=True, slots=True)
class RunDiff:
    """What changed from ``base`` to ``head``: ``base`` is None when ``head`` is the first run."""

    base: RunSummary | None
    head: RunSummary
    new: tuple[StoredFinding, ...] = ()
    fixed: tuple[StoredFinding, ...] = ()  # as they were in ``base``
    still_open: tuple[StoredFinding, ...] = ()  # as they are in ``head``
    changed: tuple[Change, ...] = ()  # the still-open ones whose severity or node moved
