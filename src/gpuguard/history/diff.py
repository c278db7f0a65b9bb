"""What changed between two runs, by fingerprint: new, fixed, still open (and which of those moved).

The fingerprint is the identity baselines use (rule, object, container,
subject), so a pod rescheduled onto another node is the same finding, still
open, and a finding whose severity was raised is not "fixed" plus "new".
"""

from __future__ import annotations

from collections.abc import Iterable

from gpuguard.history.store import HistoryStore
from gpuguard.model.history import Change, RunDiff, RunSummary, StoredFinding


def diff_findings(base: RunSummary | None, before: Iterable[StoredFinding], head: RunSummary,
                  after: Iterable[StoredFinding]) -> RunDiff:
    """``before`` (of ``base``; empty when there is no earlier run) against ``after`` (of ``head``), in report order.

    One run may hold several findings with one fingerprint (a rule saying two
    things about one ClusterPolicy): they pair up identical ones first, then in
    order; what is left over is new (in ``after``) or fixed (in ``before``).
    """
    old_list, new_list = list(before), list(after)
    waiting: dict[str, list[int]] = {}
    for i, f in enumerate(old_list):
        waiting.setdefault(f.fingerprint, []).append(i)
    paired: dict[int, int] = {}  # index in after -> index in before
    for exact in (True, False):
        for j, f in enumerate(new_list):
            if j in paired:
                continue
            candidates = waiting.get(f.fingerprint, [])
            for i in candidates:
                if not exact or _same(old_list[i], f):
                    paired[j] = i
                    candidates.remove(i)
                    break
    matched_old = set(paired.values())
    return RunDiff(
        base=base,
        head=head,
        new=tuple(f for j, f in enumerate(new_list) if j not in paired),
        fixed=tuple(f for i, f in enumerate(old_list) if i not in matched_old),
        still_open=tuple(f for j, f in enumerate(new_list) if j in paired),
        changed=tuple(Change(old_list[paired[j]], f) for j, f in enumerate(new_list)
                      if j in paired and (old_list[paired[j]].severity, old_list[paired[j]].node)
                      != (f.severity, f.node)),
    )


def _same(a: StoredFinding, b: StoredFinding) -> bool:
    return (a.severity, a.node, a.message) == (b.severity, b.node, b.message)

def diff_runs(store: HistoryStore, base_id: int | None, head_id: int) -> RunDiff:
    """Two stored runs compared; ``base_id`` None: the run of the head's cluster just before it."""
    head = store.run(head_id)
    base = store.run(base_id) if base_id is not None else store.previous(head)
    before = store.findings(base.id) if base else []
    return diff_findings(base, before, head, store.findings(head.id))
