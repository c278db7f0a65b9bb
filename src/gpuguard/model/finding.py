"""Findings: what a rule says about one object, container or node setting.

Rules produce findings; formats, fixers, suppressions and baselines read
them. A finding names where the problem lives (the Kubernetes object, the
container, the file and line) and carries the engine's explanation trail and
a concrete remediation.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum

from gpuguard.model.decision import ContainerDecision, Step


class Severity(IntEnum):
    """Ordered severities; ``--fail-on`` compares them."""

    INFO = 0
    LOW = 1
    MEDIUM = 2
    HIGH = 3
    CRITICAL = 4

    @property
    def label(self) -> str:
        return self.name.lower()

    @classmethod
    def parse(cls, text: str) -> Severity:
        try:
            return cls[text.strip().upper()]
        except KeyError:
            names = ", ".join(s.label for s in cls)
            raise ValueError(f"unknown severity {text!r} (expected one of {names})") from None


@dataclass(frozen=True, slots=True)
class Resource:
    """The Kubernetes object a finding is about (a workload, a ClusterPolicy, a RuntimeClass)."""

    api_version: str
    kind: str
    namespace: str | None
    name: str


@dataclass(frozen=True, slots=True)
class Location:
    """Where a reader finds it: a file and line, or a command-line flag (``path="--toolkit-version"``)."""

    path: str
    line: int | None = None


@dataclass(frozen=True, slots=True)
class RuleInfo:
    """A rule as data: the registry holds one per id, and docs are generated from it."""

    id: str
    title: str
    severity: Severity
    rationale: str
    remediation: str
    references: tuple[str, ...] = ()
    scope: str = "container"  # "container" | "pod" | "node"


@dataclass(frozen=True, slots=True)
class Finding:
    """One problem, with everything a reader needs to understand and fix it."""

    rule_id: str
    severity: Severity
    message: str
    remediation: str
    resource: Resource | None = None
    container: str | None = None
    location: Location | None = None
    trail: tuple[Step, ...] = field(default=())
    decision: ContainerDecision | None = None  # the engine's answer behind a container finding
    subject: str | None = None  # what within the object, when one object can hold several (a config key)
    node: str | None = None  # the GPU node it was judged on (live cluster, node agent); not part of the identity

    @property
    def fingerprint(self) -> str:
        """Stable identity for baselines: rule, object, container and subject, not line numbers or wording."""
        r = self.resource
        obj = f"{r.kind}/{r.namespace or ''}/{r.name}" if r else (self.location.path if self.location else "")
        base = f"{self.rule_id}|{obj}|{self.container or ''}"
        return f"{base}|{self.subject}" if self.subject else base


@dataclass(frozen=True, slots=True)
class Exempt:
    """A container or object that legitimately reaches GPUs (GPU Operator components, allow-listed tools)."""

    resource: Resource
    container: str | None
    reason: str
    location: Location | None = None
    rule_ids: tuple[str, ...] = ()  # the rules that would otherwise have fired


@dataclass(frozen=True, slots=True)
class ReadError:
    """An input that could not be read; the run goes on with the rest."""

    message: str
    location: Location | None = None
