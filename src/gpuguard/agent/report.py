"""A scan as a ``Report``: the findings, the exempt holders, degraded sources and what was not scanned.

Every existing format renders it (json, table, policyreport, sarif, junit).
A source that could not be read is a report error (``--once`` exits 2); a
container that could not be looked into, or that has no running task, is a
note, because containers come and go during a scan and that is not an error.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from gpuguard.agent.toolkit import NodeToolkit
from gpuguard.model.finding import Exempt, Finding, Location, ReadError, Resource, RuleInfo
from gpuguard.model.observed import NodeObservation, RuntimeContainer
from gpuguard.model.report import ProfileSummary, Report
from gpuguard.rules.agent import ContainerVerdict
from gpuguard.rules.registry import rule

AGENT_RULES = ("GG401", "GG402", "GG403")
NOTE_LIMIT = 20  # per kind of note: a node with hundreds of churning containers must not drown the header
_SOURCE_WORDS = {
    "containerd": "containers not read: nothing was scanned",
    "kubelet": "allocations not read: GG401/GG402 not judged (no container is called unallocated on a guess)",
    "driver": "node GPUs not read: device nodes cannot be mapped to GPU UUIDs",
    "toolkit-config": "toolkit config not read: predictions use the toolkit's built-in defaults",
    "toolkit-log": "toolkit log not read",
}


def container_label(c: RuntimeContainer) -> str:
    """``namespace/pod/container``, or the containerd id for a container Kubernetes did not create."""
    if c.namespace and c.pod:
        return f"{c.namespace}/{c.pod}/{c.container or '(sandbox)'}"
    return f"container {c.id[:12]}"


def pod_resource(c: RuntimeContainer) -> Resource | None:
    if c.namespace and c.pod:
        return Resource("v1", "Pod", c.namespace, c.pod)
    return None


def build_report(
    observation: NodeObservation,
    verdicts: Sequence[ContainerVerdict],
    toolkit: NodeToolkit,
    locations: Mapping[str, str],
) -> Report:
    findings = sorted((f for v in verdicts for f in v.findings), key=_finding_key)
    exempt = tuple(
        Exempt(resource, v.container.container, v.exempt)
        for v in verdicts
        if v.exempt is not None and v.held and (resource := pod_resource(v.container)) is not None
    )
    errors = tuple(
        ReadError(f"{source}: {why}; {_SOURCE_WORDS.get(source, 'not read')}", Location(locations.get(source, source)))
        for source, why in sorted(observation.degraded.items())
    )
    config = toolkit.toolkit.config
    settings = {
        "node": observation.node,
        "gpus": str(len(observation.gpus)),
        "containers": str(len(observation.containers)),
        "accept-nvidia-visible-devices-envvar-when-unprivileged": str(config.accept_envvar_unprivileged).lower(),
        "accept-nvidia-visible-devices-as-volume-mounts": str(config.accept_volume_mounts).lower(),
        "toolkit mode": config.mode,
    }
    profile = ProfileSummary(
        source=f"node {observation.node}, {toolkit.source}",
        operator_version=None,
        toolkit_version=str(toolkit.toolkit.version),
        device_plugin_version=None,
        settings=settings,
        assumed=False,
        notes=(*toolkit.notes, *_scan_notes(observation, verdicts)),
    )
    return Report(
        profile=profile,
        findings=tuple(findings),
        exempt=exempt,
        errors=errors,
        rules=_rule_infos(),
        objects=len(verdicts),
    )


def _finding_key(f: Finding) -> tuple[str, str, str, str]:
    r = f.resource
    return (r.namespace or "" if r else "", r.name if r else "", f.container or "", f.rule_id)


def _rule_infos() -> tuple[RuleInfo, ...]:
    return tuple(rule(rule_id) for rule_id in AGENT_RULES)


def _scan_notes(observation: NodeObservation, verdicts: Sequence[ContainerVerdict]) -> list[str]:
    notes: list[str] = []
    by_id = {c.id: c for c in observation.containers}
    unreadable = [(by_id[cid], h.error) for cid, h in observation.held.items() if h.error is not None and cid in by_id]
    for c, error in unreadable[:NOTE_LIMIT]:
        notes.append(f"not scanned: {container_label(c)}: {error}")
    if len(unreadable) > NOTE_LIMIT:
        notes.append(f"not scanned: {len(unreadable) - NOTE_LIMIT} more containers")
    unread = [c for c in observation.containers if c.error is not None]
    notes += [f"OCI spec not read: {container_label(c)}: {c.error} (no prediction for it)" for c in unread[:NOTE_LIMIT]]
    idle = sum(1 for c in observation.containers if c.id not in observation.held and not c.sandbox)
    if idle:
        notes.append(f"{idle} container{'s' if idle != 1 else ''} without a running task (exited or not started): "
                     "they hold no device")
    notes += _log_notes(observation)
    judged = sum(1 for v in verdicts if v.held is not None)
    notes.append(f"{judged} running container{'s' if judged != 1 else ''} looked into through /proc")
    return notes


def _log_notes(observation: NodeObservation) -> list[str]:
    """Toolkit log lines about containers on the node that say a device request was ignored."""
    if not observation.logs:
        return []
    by_id = {c.id: c for c in observation.containers}
    ignored = [(by_id[e.container_id], e) for e in observation.logs
               if e.honoured is False and e.container_id in by_id]  # fmt: skip
    notes = [f"toolkit log: {container_label(c)}: request ignored: {e.message}" for c, e in ignored[:NOTE_LIMIT]]
    about = sum(1 for e in observation.logs if e.container_id in by_id)
    notes.append(f"toolkit log: {len(observation.logs)} entries read, {about} about containers on the node")
    return notes
