"""What changed between two runs: new, fixed, still open (table-driven), in memory and through both backends."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from gpuguard.history import diff_findings, diff_runs, open_store, record_run
from gpuguard.model.finding import Finding, Severity
from gpuguard.model.history import RunSummary, StoredFinding
from tests.history.sample import pod, policy, report

ALICE = "GG101|Pod/ml-notebooks/jupyter-alice|notebook"
BOB = "GG101|Pod/ml-notebooks/jupyter-bob|notebook"
GG201 = "GG201|ClusterPolicy//cluster-policy|"
GG206 = "GG206|ClusterPolicy//cluster-policy|"


@dataclass(frozen=True)
class Case:
    name: str
    before: tuple[Finding, ...] | None  # None: there is no earlier run
    after: tuple[Finding, ...]
    new: list[str]
    fixed: list[str]
    still_open: list[str]
    changed: tuple[tuple[str, str | None, str | None], ...] = ()  # (fingerprint, severity or node: before, after)


CASES = [
    Case("first run: everything is new", None, (pod("jupyter-alice"), policy("GG201")),
         new=[ALICE, GG201], fixed=[], still_open=[]),
    Case("same findings: all still open", (pod("jupyter-alice"), pod("jupyter-bob")),
         (pod("jupyter-alice"), pod("jupyter-bob")), new=[], fixed=[], still_open=[ALICE, BOB]),
    Case("one fixed, one new", (pod("jupyter-alice"),), (pod("jupyter-bob"),),
         new=[BOB], fixed=[ALICE], still_open=[]),
    Case("everything fixed", (pod("jupyter-alice"), policy("GG201")), (),
         new=[], fixed=[ALICE, GG201], still_open=[]),
    Case("severity raised: still open and changed, not fixed + new",
         (pod("jupyter-alice", severity=Severity.HIGH),), (pod("jupyter-alice", severity=Severity.CRITICAL),),
         new=[], fixed=[], still_open=[ALICE], changed=((ALICE, "high", "critical"),)),
    Case("rescheduled onto another node: the same finding, still open",
         (pod("jupyter-alice", node="gpu-a100-1"),), (pod("jupyter-alice", node="gpu-h100-1"),),
         new=[], fixed=[], still_open=[ALICE], changed=((ALICE, "gpu-a100-1", "gpu-h100-1"),)),
    Case("reworded message: still open, unchanged", (pod("jupyter-alice", message="old words"),),
         (pod("jupyter-alice", message="new words"),), new=[], fixed=[], still_open=[ALICE]),
    Case("same pod name in another namespace: another finding",
         (pod("jupyter-alice"),), (pod("jupyter-alice", ns="research"),),
         new=["GG101|Pod/research/jupyter-alice|notebook"], fixed=[ALICE], still_open=[]),
    Case("another container of the same pod: another finding",
         (pod("jupyter-alice"),), (pod("jupyter-alice", container="sidecar"),),
         new=["GG101|Pod/ml-notebooks/jupyter-alice|sidecar"], fixed=[ALICE], still_open=[]),
    Case("two findings share a fingerprint; one of them goes",
         (policy("GG206", Severity.LOW, "a"), policy("GG206", Severity.MEDIUM, "b")),
         (policy("GG206", Severity.MEDIUM, "b"),), new=[], fixed=[GG206], still_open=[GG206]),
]


def _fps(findings: tuple[StoredFinding, ...]) -> list[str]:
    return [f.fingerprint for f in findings]


def _check(case: Case, diff: object) -> None:
    from gpuguard.model.history import RunDiff

    assert isinstance(diff, RunDiff)
    assert _fps(diff.new) == case.new
    assert _fps(diff.fixed) == case.fixed
    assert _fps(diff.still_open) == case.still_open
    got = []
    for c in diff.changed:
        if c.before.severity != c.after.severity:
            got.append((c.after.fingerprint, c.before.severity.label, c.after.severity.label))
        else:
            got.append((c.after.fingerprint, c.before.node, c.after.node))
    assert got == list(case.changed)


def _run(run_id: int) -> RunSummary:
    return RunSummary(id=run_id, started="2026-11-29T06:00:00Z", cluster="gpu-prod", profile_source="p")


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_diff_in_memory(case: Case) -> None:
    before = [StoredFinding.of(f) for f in case.before or ()]
    diff = diff_findings(_run(1) if case.before is not None else None, before, _run(2),
                         [StoredFinding.of(f) for f in case.after])
    _check(case, diff)


def test_the_fixed_one_is_the_one_that_went() -> None:
    before = [StoredFinding.of(policy("GG206", Severity.LOW, "a")), StoredFinding.of(policy("GG206", Severity.MEDIUM,
                                                                                             "b"))]
    diff = diff_findings(_run(1), before, _run(2), [StoredFinding.of(policy("GG206", Severity.MEDIUM, "b"))])
    assert [(f.severity, f.message) for f in diff.fixed] == [(Severity.LOW, "a")]
    assert diff.changed == ()


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_diff_of_stored_runs(case: Case, store_url: str) -> None:
    if case.before is not None:
        first = record_run(report(*case.before), url=store_url, cluster="gpu-prod")
        record_run(report(pod("other-cluster-pod")), url=store_url, cluster="gpu-staging")  # not in between
    second = record_run(report(*case.after), url=store_url, cluster="gpu-prod")
    with open_store(store_url) as store:
        diff = diff_runs(store, None, second)
        assert diff.head.id == second
        assert (diff.base.id if diff.base else None) == (first if case.before is not None else None)
    _check(case, diff)
