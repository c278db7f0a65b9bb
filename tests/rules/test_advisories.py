"""GG301: advisories in range of the running release, and which apply in the node's runtime modes (research §6)."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest

from gpuguard.engine.operator.profile import explicit_profile
from gpuguard.model.finding import Location, Severity
from gpuguard.model.node import NodeProfile
from gpuguard.rules.advisories import ADVISORIES, check_advisories
from tests.rules._build import operator_node

_ID = re.compile(r"(CVE-\d{4}-\d+|NCT-BUG-[A-Z-]+|GPUOP-BUG-[\w.-]+)")


def _applies(node: NodeProfile) -> tuple[set[str], set[str], Severity | None]:
    """(advisories that apply, advisories in range that do not apply here, severity) from the trail."""
    findings = check_advisories(node, None, Location("--operator-version"))
    if not findings:
        return set(), set(), None
    (finding,) = findings
    applies = {_ID.search(s.says).group(1) for s in finding.trail if " applies" in s.says}  # type: ignore[union-attr]
    others = {_ID.search(s.says).group(1) for s in finding.trail if "affects only" in s.says}  # type: ignore[union-attr]
    return applies, others, finding.severity


LEGACY_ONLY = {"CVE-2024-0132", "CVE-2024-0133", "CVE-2024-0135", "CVE-2024-0136", "CVE-2024-0137", "CVE-2025-23359"}

Row = tuple[str, Callable[[], NodeProfile], set[str], set[str], Severity | None]
ROWS: list[Row] = [
    # 24.6.1 bundles toolkit 1.16.1, CDI off: legacy mode, everything up to 23266/23267 (legacy only from 1.17.5)
    ("24.6.1 (toolkit 1.16.1, legacy)", lambda: operator_node("24.6.1"),
     LEGACY_ONLY | {"CVE-2024-0134", "CVE-2026-24260"}, {"CVE-2025-23266", "CVE-2025-23267"}, Severity.CRITICAL),
    # 24.9.2 bundles 1.17.4: 23266/23267 are CDI-only before 1.17.5, and this node runs legacy
    ("24.9.2 (toolkit 1.17.4, legacy)", lambda: operator_node("24.9.2"), {"CVE-2026-24260"},
     {"CVE-2025-23266", "CVE-2025-23267"}, Severity.MEDIUM),
    # 25.3.0 bundles 1.17.5: NVIDIAScape reaches legacy mode
    ("25.3.0 (toolkit 1.17.5)", lambda: operator_node("25.3.0"),
     {"CVE-2025-23266", "CVE-2025-23267", "CVE-2026-24260"}, set(), Severity.CRITICAL),
    ("25.3.4 (toolkit 1.17.8)", lambda: operator_node("25.3.4"), {"CVE-2026-24260"}, set(), Severity.MEDIUM),
    # 25.10.1: toolkit 1.18.1 in cdi mode: the `none` bug
    ("25.10.1 (toolkit 1.18.1, cdi)", lambda: operator_node("25.10.1"),
     {"NCT-BUG-VISIBLE-DEVICES-NONE", "CVE-2026-24260"}, set(), Severity.HIGH),
    # 26.3.1: device plugin 0.19.0 with GDS/MOFED/GDRCopy on by default
    ("26.3.1 (device plugin 0.19.0)", lambda: operator_node("26.3.1"),
     {"GPUOP-BUG-26.3-DP-FEATURE-FLAGS", "CVE-2026-24260"}, set(), Severity.MEDIUM),
    ("26.3.3 (fixed)", lambda: operator_node("26.3.3"), set(), set(), None),
    ("26.7.0 (newest)", lambda: operator_node("26.7.0"), set(), set(), None),
    # a newer toolkit pinned on an old operator: the toolkit that runs decides
    ("24.6.1 with toolkit v1.17.8 pinned", lambda: operator_node("24.6.1", {"toolkit": {"version": "v1.17.8"}}),
     {"CVE-2026-24260"}, set(), Severity.MEDIUM),
    # host-installed toolkit: its release is not known, so no toolkit advisory is claimed
    ("24.6.1 toolkit.enabled=false", lambda: operator_node("24.6.1", {"toolkit": {"enabled": False}}), set(), set(),
     None),
]  # fmt: skip


@pytest.mark.parametrize(("case", "make_node", "applies", "elsewhere", "severity"), ROWS, ids=[r[0] for r in ROWS])
def test_advisories(
    case: str,
    make_node: Callable[[], NodeProfile],
    applies: set[str],
    elsewhere: set[str],
    severity: Severity | None,
) -> None:
    assert _applies(make_node()) == (applies, elsewhere, severity)


def test_cdi_only_node_is_not_affected_by_cve_2024_0132() -> None:
    """Toolkit 1.16.1 forced into cdi mode with no legacy handler reachable: 0132 is out, 0134 stays."""
    node = explicit_profile("1.16.1", toolkit_env={"NVIDIA_CONTAINER_RUNTIME_MODE": "cdi"}, runtime_classes={})
    applies, elsewhere, severity = _applies(node)
    assert "CVE-2024-0132" in elsewhere and "CVE-2024-0134" in applies
    assert {"CVE-2025-23266", "CVE-2025-23267"} <= applies  # CDI mode before 1.17.5
    assert severity is Severity.CRITICAL  # NVIDIAScape


def test_a_legacy_runtime_class_brings_legacy_advisories_back() -> None:
    # RuntimeClasses for every NVIDIA handler, nvidia-legacy included
    node = explicit_profile("1.16.1", toolkit_env={"NVIDIA_CONTAINER_RUNTIME_MODE": "cdi"})
    applies, _, _ = _applies(node)
    assert "CVE-2024-0132" in applies


def test_finding_names_fix_and_object() -> None:
    (finding,) = check_advisories(operator_node("24.6.1"), None, Location("--operator-version"))
    assert finding.rule_id == "GG301" and finding.location == Location("--operator-version")
    assert "CVE-2024-0132" in finding.message and "GPU Operator 24.6.1" in finding.message
    assert "Upgrade the toolkit to 1.19.1 or later" in finding.remediation


def test_advisory_data_is_complete() -> None:
    assert len({a.id for a in ADVISORIES}) == len(ADVISORIES) == 12
    for a in ADVISORIES:
        assert a.references and a.summary
        assert a.since is None or a.since < a.fixed
