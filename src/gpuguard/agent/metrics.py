"""Prometheus metrics of the node agent, in a registry of its own (no process-global state in tests).

Per-container gauges carry ``namespace``, ``pod`` and ``container`` labels, so
a dashboard can show allocated vs held vs predicted GPUs of one workload; the
series of a container that is gone are removed at the next scan, so a node
with churning pods does not grow its /metrics without bound.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from gpuguard.agent.report import AGENT_RULES
from gpuguard.agent.scan import NEEDS_ALLOCATIONS, SOURCES, Scan

# A scan reads a few hundred containers: milliseconds normally, seconds when a source is slow to answer.
_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
KINDS = ("allocated", "held", "predicted")

_Labels = tuple[str, str, str, str]  # namespace, pod, container, kind


class AgentMetrics:
    """Updated once per scan; ``render()`` is what /metrics serves."""

    def __init__(self) -> None:
        self.registry = r = CollectorRegistry()
        self.container_gpus = Gauge(
            "gpuguard_agent_container_gpus", "GPUs of a container: allocated by the kubelet, held (device nodes "
            "in its /dev), predicted by the engine", ("namespace", "pod", "container", "kind"), registry=r)
        self.findings = Gauge("gpuguard_agent_findings", "Findings of the last scan, by rule", ("rule",), registry=r)
        self.duration = Histogram("gpuguard_agent_scan_duration_seconds", "Wall time of one scan", buckets=_BUCKETS,
                                  registry=r)  # fmt: skip
        self.cpu = Gauge("gpuguard_agent_scan_cpu_seconds", "CPU time of the last scan", registry=r)
        self.source_up = Gauge("gpuguard_agent_source_up", "1 when the last scan could read the source",
                               ("source",), registry=r)  # fmt: skip
        self.scans = Counter("gpuguard_agent_scans", "Scans by outcome (complete or degraded)", ("outcome",),
                             registry=r)  # fmt: skip
        self.containers = Gauge("gpuguard_agent_containers", "Containers of the last scan, by state", ("state",),
                                registry=r)  # fmt: skip
        self.exempt = Gauge("gpuguard_agent_exempt_containers", "Exempt containers holding GPUs", registry=r)
        self.last_scan = Gauge("gpuguard_agent_last_scan_timestamp_seconds", "When the last scan ended",
                               registry=r)  # fmt: skip
        for rule_id in AGENT_RULES:
            self.findings.labels(rule_id)
        for outcome in ("complete", "degraded"):
            self.scans.labels(outcome)
        self._series: set[_Labels] = set()

    def update(self, scan: Scan, now: float) -> None:
        obs = scan.observation
        self.duration.observe(scan.wall_seconds)
        self.cpu.set(scan.cpu_seconds)
        self.last_scan.set(now)
        self.scans.labels("degraded" if obs.degraded else "complete").inc()
        for source in SOURCES:
            self.source_up.labels(source).set(0 if source in obs.degraded else 1)
        if "containerd" in obs.degraded:
            return  # nothing was seen: keep the last known per-container series and counts, source_up says why
        live = sum(1 for v in scan.verdicts if v.held is not None)
        self.containers.labels("scanned").set(live)
        self.containers.labels("not_scanned").set(sum(1 for h in obs.held.values() if h.error is not None))
        self.containers.labels("not_running").set(
            sum(1 for c in obs.containers if c.id not in obs.held and not c.sandbox))
        unjudged = NEEDS_ALLOCATIONS if "kubelet" in obs.degraded else frozenset()
        counts = dict.fromkeys(AGENT_RULES, 0)
        for f in scan.report.findings:
            counts[f.rule_id] = counts.get(f.rule_id, 0) + 1
        for rule_id, n in counts.items():
            if rule_id not in unjudged:  # not judged this time: the last count stands
                self.findings.labels(rule_id).set(n)
        self.exempt.set(sum(1 for v in scan.verdicts if v.exempt is not None and v.held))
        self._containers(scan, keep_allocated="kubelet" in obs.degraded)

    def _containers(self, scan: Scan, *, keep_allocated: bool) -> None:
        seen: set[_Labels] = set()
        # A restarted container leaves its exited instance beside the new one, under the same names:
        # the instance that runs is set last, so its values are the ones exported.
        for v in sorted(scan.verdicts, key=lambda v: v.held is not None):
            c = v.container
            if c.sandbox or not (c.namespace and c.pod and c.container):
                continue
            for kind, gpus in (("allocated", v.allocated), ("held", v.held), ("predicted", v.predicted)):
                if gpus is None or (kind == "allocated" and keep_allocated):
                    continue
                labels = (c.namespace, c.pod, c.container, kind)
                self.container_gpus.labels(*labels).set(len(gpus))
                seen.add(labels)
        for gone in self._series - seen:
            if keep_allocated and gone[3] == "allocated":
                seen.add(gone)  # allocations unknown this time: the last known value stands
                continue
            self.container_gpus.remove(*gone)
        self._series = seen

    def render(self) -> bytes:
        return generate_latest(self.registry)
