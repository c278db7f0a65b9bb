"""One scan of the node: read every source, judge every container, build the report.

A source that cannot be read (containerd restarting, no kubelet socket, no
driver tree) is recorded in ``NodeObservation.degraded`` and the scan goes on
with the rest; nothing a source does ends the agent.  Clients are kept between
scans (continuous mode) and dropped after a failure, so the next scan
reconnects to a restarted containerd or kubelet.

Only containers with a task process (running, paused, or created: runc's
init already holds the container's /dev) are looked into, through
``/proc/<pid>/root/dev``; a container whose process is gone by then is "not
scanned" (a note), never a finding.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field

from gpuguard.agent.report import build_report
from gpuguard.agent.toolkit import NodeToolkit, ToolkitReader
from gpuguard.model.observed import ContainerAllocation, NodeObservation, RuntimeContainer, ToolkitLogEntry
from gpuguard.model.report import Report
from gpuguard.rules.agent import ContainerVerdict, judge_container, predict
from gpuguard.rules.settings import AuditSettings
from gpuguard.sources.node import NodeSourceError
from gpuguard.sources.node.containerd import ContainerdClient
from gpuguard.sources.node.devices import held_devices, node_gpus, node_majors
from gpuguard.sources.node.pod_resources import PodResourcesClient
from gpuguard.sources.node.toolkit_log import read_toolkit_log

# Every source a scan reads, as named in the report and in gpuguard_agent_source_up{source}.
SOURCES = ("containerd", "kubelet", "driver", "toolkit-config", "toolkit-log")
NEEDS_ALLOCATIONS = frozenset({"GG401", "GG402"})  # rules that compare with the kubelet's allocations
TOOLKIT_LOG_BYTES = 1 << 20  # the tail read per scan: recent requests are what correlate with live containers


@dataclass(frozen=True, slots=True)
class ScanOptions:
    """Where the node's sources are; the defaults are a GPU Operator node's paths."""

    node: str
    containerd_socket: str = "/run/containerd/containerd.sock"
    containerd_namespace: str = "k8s.io"
    pod_resources_socket: str = "/var/lib/kubelet/pod-resources/kubelet.sock"
    proc_root: str = "/proc"
    driver_root: str = "/proc/driver/nvidia"
    toolkit_config: str | None = None
    toolkit_logs: tuple[str, ...] = ()
    toolkit_version: str | None = None
    timeout: float = 5.0


@dataclass(frozen=True, slots=True)
class Scan:
    """What one scan read, what it concluded, and what it cost."""

    observation: NodeObservation
    verdicts: tuple[ContainerVerdict, ...]
    report: Report
    toolkit: NodeToolkit
    cpu_seconds: float
    wall_seconds: float
    locations: dict[str, str] = field(default_factory=dict)  # source -> the path it was read from

    @property
    def degraded(self) -> bool:
        return bool(self.observation.degraded)


class Scanner:
    """Reads the node on demand; keeps its gRPC clients open between scans."""

    def __init__(self, options: ScanOptions, settings: AuditSettings | None = None) -> None:
        self.options = options
        self.settings = settings or AuditSettings()
        self._toolkit = ToolkitReader(options.toolkit_config, options.toolkit_version)
        self._containerd: ContainerdClient | None = None
        self._kubelet: PodResourcesClient | None = None

    def close(self) -> None:
        for client in (self._containerd, self._kubelet):
            if client is not None:
                client.close()
        self._containerd = self._kubelet = None

    def __enter__(self) -> Scanner:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def scan(self) -> Scan:
        """Observe, judge and report; never raises for a source that cannot be read."""
        cpu0, wall0 = time.process_time(), time.perf_counter()
        observation, toolkit = self.observe()
        verdicts = self.judge(observation, toolkit)
        locations = self.locations()
        report = build_report(observation, verdicts, toolkit, locations)
        return Scan(observation, verdicts, report, toolkit, time.process_time() - cpu0, time.perf_counter() - wall0,
                    locations)

    def locations(self) -> dict[str, str]:
        o = self.options
        return {"containerd": o.containerd_socket, "kubelet": o.pod_resources_socket, "driver": o.driver_root,
                "toolkit-config": o.toolkit_config or "config.toml", "toolkit-log": ", ".join(o.toolkit_logs)}

    def observe(self) -> tuple[NodeObservation, NodeToolkit]:
        o = self.options
        degraded: dict[str, str] = {}
        containers = self._containers(degraded)
        allocations, allocatable = self._allocations(degraded)
        try:
            gpus = node_gpus(o.driver_root)
        except NodeSourceError as exc:
            gpus, degraded["driver"] = (), exc.message
        try:
            majors: dict[str, int] | None = node_majors(o.proc_root)  # nvidia-uvm's major is dynamic
        except NodeSourceError:
            majors = None  # then nvidia-uvm and the caps nodes are known by name
        held = {c.id: held_devices(c.id, c.pid, o.proc_root, majors=majors)
                for c in containers if c.pid is not None and not c.sandbox}  # a pause container runs no workload
        logs: tuple[ToolkitLogEntry, ...] = ()
        if o.toolkit_logs:
            try:
                logs = read_toolkit_log(o.toolkit_logs, max_bytes=TOOLKIT_LOG_BYTES)
            except NodeSourceError as exc:
                degraded["toolkit-log"] = exc.message
        toolkit = self._toolkit.read()
        if toolkit.error is not None:
            degraded["toolkit-config"] = toolkit.error
        observation = NodeObservation(
            node=o.node, containers=tuple(containers), held=held, allocations=allocations,
            allocatable=allocatable, gpus=gpus, logs=logs, degraded=degraded,
        )  # fmt: skip
        return observation, toolkit

    def judge(self, observation: NodeObservation, toolkit: NodeToolkit) -> tuple[ContainerVerdict, ...]:
        """One verdict per container; allocations are matched by (namespace, pod, container) names."""
        by_name = {(a.namespace, a.pod, a.container): a for a in observation.allocations}
        # The CRI plugin puts the pod's labels (app=...) on its sandbox only; the exemption of GPU Operator
        # components reads them, as the audit does.
        pod_labels = {c.pod_uid: c.labels for c in observation.containers if c.sandbox and c.pod_uid}
        out: list[ContainerVerdict] = []
        for c in observation.containers:
            if c.sandbox:
                continue  # a pause container: the kubelet allocates nothing to it and it runs no workload
            extra = pod_labels.get(c.pod_uid) if c.pod_uid else None
            if extra:
                c = dataclasses.replace(c, labels={**extra, **c.labels})  # noqa: PLW2901
            allocation = _allocation(by_name, c)
            verdict = judge_container(
                c, observation.held.get(c.id), allocation, observation.gpus, predict(c, toolkit.toolkit),
                node=observation.node, settings=self.settings,
            )  # fmt: skip
            if "kubelet" in observation.degraded and any(f.rule_id in NEEDS_ALLOCATIONS for f in verdict.findings):
                # Allocations unknown: "not allocated" would be a guess, and a false finding is worse than none.
                kept = tuple(f for f in verdict.findings if f.rule_id not in NEEDS_ALLOCATIONS)
                verdict = dataclasses.replace(verdict, findings=kept)
            out.append(verdict)
        return tuple(out)

    def _containers(self, degraded: dict[str, str]) -> list[RuntimeContainer]:
        o = self.options
        try:
            if self._containerd is None:
                self._containerd = ContainerdClient(o.containerd_socket, o.containerd_namespace, o.timeout)
            return self._containerd.containers()
        except NodeSourceError as exc:
            degraded["containerd"] = exc.message
            self._drop_containerd()
            return []

    def _allocations(
        self, degraded: dict[str, str]
    ) -> tuple[tuple[ContainerAllocation, ...], dict[str, tuple[str, ...]]]:
        o = self.options
        try:
            if self._kubelet is None:
                self._kubelet = PodResourcesClient(o.pod_resources_socket, o.timeout)
            allocations = self._kubelet.list()
            try:
                allocatable = self._kubelet.allocatable()
            except NodeSourceError:
                allocatable = {}  # older kubelets have List but not GetAllocatableResources: not degraded
            return allocations, allocatable
        except NodeSourceError as exc:
            degraded["kubelet"] = exc.message
            self._drop_kubelet()
            return (), {}

    def _drop_containerd(self) -> None:
        if self._containerd is not None:
            self._containerd.close()
        self._containerd = None

    def _drop_kubelet(self) -> None:
        if self._kubelet is not None:
            self._kubelet.close()
        self._kubelet = None


def _allocation(
    by_name: dict[tuple[str, str, str], ContainerAllocation], c: RuntimeContainer
) -> ContainerAllocation | None:
    if c.namespace is None or c.pod is None or c.container is None:
        return None
    return by_name.get((c.namespace, c.pod, c.container))


def scan_once(options: ScanOptions, settings: AuditSettings | None = None) -> Scan:
    """One scan with fresh clients, closed afterwards (``gpuguard agent --once``)."""
    with Scanner(options, settings) as scanner:
        return scanner.scan()
