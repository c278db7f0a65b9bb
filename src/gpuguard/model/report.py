"""The result of an audit: findings, exemptions, read errors and what was assumed.

``Report`` is what every output format renders; it is plain data so that
formats never reach back into sources or the engine.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from gpuguard.model.finding import Exempt, Finding, ReadError, RuleInfo, Severity

SCHEMA = "gpuguard.report/v1"


@dataclass(frozen=True, slots=True)
class ProfileSummary:
    """The node profile the manifests were judged against, in words a report header can show."""

    source: str  # e.g. "ClusterPolicy cluster-policy (deploy/gpu-operator.yaml:1)", "--operator-version 25.3.4"
    operator_version: str | None
    toolkit_version: str
    device_plugin_version: str | None
    settings: dict[str, str] = field(default_factory=dict)  # effective settings that decide exposure
    assumed: bool = False  # nothing was known: the most exposed common configuration was assumed
    notes: tuple[str, ...] = ()  # header lines: assumptions, e.g. "12 images assumed not to set ..."


@dataclass(frozen=True, slots=True)
class Suppression:
    """One suppression (annotation, ignore-file entry or baseline) and whether it matched anything."""

    rule_ids: tuple[str, ...]
    reason: str
    origin: str  # "annotation on Deployment research/notebook", ".gpuguardignore:3", "baseline"
    matched: int = 0
    expires: str | None = None


@dataclass(frozen=True, slots=True)
class Report:
    """Everything one audit run found."""

    profile: ProfileSummary
    findings: tuple[Finding, ...] = ()
    exempt: tuple[Exempt, ...] = ()
    errors: tuple[ReadError, ...] = ()
    suppressions: tuple[Suppression, ...] = ()
    suppressed: int = 0
    rules: tuple[RuleInfo, ...] = ()  # metadata of every rule that ran (SARIF tool.driver.rules)
    objects: int = 0  # Kubernetes objects read
    skipped_kinds: dict[str, int] = field(default_factory=dict)  # unknown kinds: counted, never errors
    files: int = 0
    schema: str = SCHEMA

    def count(self, at_least: Severity) -> int:
        return sum(1 for f in self.findings if f.severity >= at_least)

    def by_severity(self) -> dict[str, int]:
        counts = {s.label: 0 for s in Severity}
        for f in self.findings:
            counts[f.severity.label] += 1
        return counts
