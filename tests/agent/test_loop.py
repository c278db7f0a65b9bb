"""Scans in a row on a real containerd: metrics per container (and their removal), Events once per finding,
a container that exits mid-scan, sources that go away.  In process, with the CLI's own parts (Scanner,
Loop, AgentMetrics, EventPublisher); the subprocess runs are in test_continuous and test_acceptance.
"""

from __future__ import annotations

import dataclasses
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from prometheus_client.parser import text_string_to_metric_families

from gpuguard.agent.loop import Loop
from gpuguard.agent.metrics import AgentMetrics
from gpuguard.agent.report import build_report
from gpuguard.agent.scan import Scan, Scanner, ScanOptions
from gpuguard.publish.events import EventPublisher
from gpuguard.sources.node.devices import held_devices
from tests.agent.events_api import api_client, serve
from tests.agent.node import NODE, Planned, Populated, agent_node, uuid_of
from tests.node.kubelet import KubeletStandIn
from tests.node.runtime import Runtime

NVD = "NVIDIA_VISIBLE_DEVICES"
PLAN = [
    Planned("notebook", namespace="research", gpus=(0,)),
    Planned("greedy", namespace="ml", gpus=(0, 1), env={NVD: uuid_of(0)}, allocated=(uuid_of(0),)),
    Planned("train", namespace="ml", gpus=(2,), env={NVD: uuid_of(2)}, allocated=(uuid_of(2),)),
    Planned("web", namespace="shop", container="nginx"),
]


@dataclass
class Small:
    rt: Runtime
    node: Populated
    kubelet: KubeletStandIn
    options: ScanOptions


@pytest.fixture(scope="module")
def small(runtime: Runtime) -> Iterator[Small]:
    with agent_node(runtime, PLAN, "loop") as n:
        yield Small(runtime, n.node, n.kubelet, n.options())


def samples(metrics: AgentMetrics) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    out = {}
    for family in text_string_to_metric_families(metrics.render().decode()):
        for s in family.samples:
            out[(s.name, frozenset(s.labels.items()))] = s.value
    return out


def gpus(m: dict[tuple[str, frozenset[tuple[str, str]]], float], p: Planned, kind: str) -> float | None:
    labels = frozenset({"namespace": p.namespace, "pod": p.pod_name, "container": p.container, "kind": kind}.items())
    return m.get(("gpuguard_agent_container_gpus", labels))


def value(m: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str) -> float | None:
    return m.get((name, frozenset(labels.items())))


def findings_of(scan: Scan) -> set[tuple[str, str]]:
    return {(f.rule_id, f.resource.name if f.resource else "") for f in scan.report.findings}


def test_per_container_gauges_and_series_of_gone_containers_removed(small: Small) -> None:
    leaving = Planned("leaving", namespace="research", gpus=(3,))
    extra = Populated(small.rt, [leaving], "loop-extra")
    metrics = AgentMetrics()
    try:
        extra.start()
        with Scanner(small.options) as scanner:
            metrics.update(scanner.scan(), 1.0)
            m = samples(metrics)
            notebook, greedy, train, web = PLAN
            # (allocated, held, predicted), typed from the plan.
            for p, want in ((notebook, (0, 1, 1)), (greedy, (1, 2, 2)), (train, (1, 1, 1)), (web, (0, 0, 0)),
                            (leaving, (0, 1, 1))):
                got = tuple(gpus(m, p, kind) for kind in ("allocated", "held", "predicted"))
                assert got == want, p.name
            assert value(m, "gpuguard_agent_findings", rule="GG401") == 2
            assert value(m, "gpuguard_agent_findings", rule="GG402") == 1
            assert value(m, "gpuguard_agent_source_up", source="containerd") == 1
            assert value(m, "gpuguard_agent_source_up", source="kubelet") == 1
            assert value(m, "gpuguard_agent_scan_duration_seconds_count") == 1
            extra.remove()
            metrics.update(scanner.scan(), 2.0)
        m = samples(metrics)
        assert all(gpus(m, leaving, kind) is None for kind in ("allocated", "held", "predicted"))
        assert gpus(m, PLAN[0], "held") == 1
        assert value(m, "gpuguard_agent_findings", rule="GG401") == 1
        assert value(m, "gpuguard_agent_scan_duration_seconds_count") == 2
        assert value(m, "gpuguard_agent_last_scan_timestamp_seconds") == 2.0
    finally:
        extra.remove()


def test_missing_kubelet_keeps_the_last_allocations_and_counts(small: Small) -> None:
    metrics = AgentMetrics()
    with Scanner(small.options) as scanner:
        metrics.update(scanner.scan(), 1.0)
    gone = dataclasses.replace(small.options, pod_resources_socket="/nonexistent/kubelet.sock")
    with Scanner(gone) as scanner:
        scan = scanner.scan()
    metrics.update(scan, 2.0)
    assert set(scan.observation.degraded) == {"kubelet"}
    assert not [f for f in scan.report.findings if f.rule_id in ("GG401", "GG402")]
    m = samples(metrics)
    assert value(m, "gpuguard_agent_source_up", source="kubelet") == 0
    assert value(m, "gpuguard_agent_findings", rule="GG401") == 1  # not judged this time: the last count stands
    assert gpus(m, PLAN[1], "allocated") == 1 and gpus(m, PLAN[1], "held") == 2
    assert value(m, "gpuguard_agent_scans_total", outcome="degraded") == 1


def test_events_once_per_finding_then_refreshed_by_a_restarted_agent(small: Small) -> None:
    with serve() as api, Scanner(small.options) as scanner:
        publisher = EventPublisher(api_client(api), NODE)
        lines: list[str] = []
        loop = Loop(scanner, 1.0, threading.Event(), lines.append, events=publisher)
        loop.once()
        loop.once()
        assert api.calls("POST") == 2, api.requests  # GG401 notebook, GG402 greedy; the second scan sends nothing
        by_reason = {e["reason"]: e for e in api.events.values()}
        assert set(by_reason) == {"GPUGuardUnallocatedGPU", "GPUGuardExcessGPU"}
        event = by_reason["GPUGuardUnallocatedGPU"]
        notebook = PLAN[0]
        assert event["involvedObject"] == {
            "apiVersion": "v1", "kind": "Pod", "namespace": "research", "name": notebook.pod_name,
            "uid": str(uuid.uuid5(uuid.NAMESPACE_URL, f"research/{notebook.pod_name}")),
            "fieldPath": "spec.containers{main}",
        }
        assert event["type"] == "Warning" and event["count"] == 1
        assert event["source"] == {"component": "gpuguard-agent", "host": NODE}
        assert uuid_of(0) in event["message"]
        assert event["metadata"]["namespace"] == "research"
        # A restarted agent has no memory of what it sent: the Event is found (409) and refreshed, not doubled.
        loop.events = EventPublisher(api_client(api), NODE)
        loop.once()
        assert api.calls("POST") == 4 and api.calls("PATCH") == 2
        assert len(api.events) == 2
        assert {e["count"] for e in api.events.values()} == {2}
        assert not [line for line in lines if line.startswith("events:")]


def test_events_that_fail_are_sent_at_the_next_scan(small: Small) -> None:
    with serve() as api, Scanner(small.options) as scanner:
        lines: list[str] = []
        loop = Loop(scanner, 1.0, threading.Event(), lines.append, events=EventPublisher(api_client(api), NODE))
        api.fail = 2
        loop.once()
        assert not api.events
        assert [line for line in lines if line.startswith("events: 2 not sent: ")]
        assert "HTTP 500" in next(line for line in lines if line.startswith("events:"))
        loop.once()
        assert {e["reason"] for e in api.events.values()} == {"GPUGuardUnallocatedGPU", "GPUGuardExcessGPU"}


def test_a_container_that_exits_mid_scan_is_not_scanned_never_a_finding(small: Small) -> None:
    vanishing = Planned("vanishing", namespace="research", gpus=(1,))
    extra = Populated(small.rt, [vanishing], "loop-mid")
    try:
        extra.start()
        with Scanner(small.options) as scanner:
            observation, toolkit = scanner.observe()
            cid = extra.ids["vanishing"]
            (listed,) = [c for c in observation.containers if c.id == cid]
            assert listed.pid is not None and not observation.held[cid].error
            # It exits after containerd listed it and before its /dev is read: read it now, as the scan would.
            small.rt.exit(cid)
            held = dict(observation.held)
            held[cid] = held_devices(cid, listed.pid, "/proc")
            assert held[cid].error is not None
            late = dataclasses.replace(observation, held=held)
            verdicts = scanner.judge(late, toolkit)
            report = build_report(late, verdicts, toolkit, scanner.locations())
        assert vanishing.pod_name not in {f.resource.name for f in report.findings if f.resource}
        (note,) = [n for n in report.profile.notes if n.startswith("not scanned: ")]
        assert note.startswith(f"not scanned: research/{vanishing.pod_name}/main: /proc/{listed.pid}/root/dev: ")
        assert not report.errors
        assert ("GG401", PLAN[0].pod_name) in {(f.rule_id, f.resource.name if f.resource else "")
                                                for f in report.findings}
    finally:
        extra.remove()


def test_an_unexpected_error_in_one_scan_is_logged_and_the_loop_goes_on(small: Small) -> None:
    class Flaky(Scanner):
        calls = 0

        def observe(self):  # type: ignore[no-untyped-def]
            Flaky.calls += 1
            if Flaky.calls == 1:
                raise RuntimeError("the first scan breaks")
            return super().observe()

    lines: list[str] = []
    with Flaky(small.options) as scanner:
        loop = Loop(scanner, 1.0, threading.Event(), lines.append)
        assert loop.once() is None
        scan = loop.once()
    assert scan is not None and ("GG401", PLAN[0].pod_name) in findings_of(scan)
    assert lines[0] == "scan failed: RuntimeError: the first scan breaks"
    assert lines[-1].startswith("scan 1: 4 containers, 3 holding GPUs, 2 findings, 0 exempt (")


def test_a_restarted_container_exports_the_values_of_the_instance_that_runs(small: Small) -> None:
    # The CRI plugin keeps the exited instance beside the new one; containerd lists "new" before "old".
    new = Planned("new", namespace="ml", pod="restarted-7f9c4-abcde", gpus=(3,))
    old = Planned("old", namespace="ml", pod="restarted-7f9c4-abcde", gpus=(0, 1, 2), state="exited")
    extra = Populated(small.rt, [new, old], "loop-restart")
    metrics = AgentMetrics()
    try:
        extra.start()
        with Scanner(small.options) as scanner:
            scan = scanner.scan()
        ids = [c.id for c in scan.observation.containers]
        assert ids.index(extra.ids["new"]) < ids.index(extra.ids["old"])
        metrics.update(scan, 1.0)
        m = samples(metrics)
        assert (gpus(m, new, "held"), gpus(m, new, "predicted")) == (1, 1)
    finally:
        extra.remove()


def test_a_container_the_nvidia_runtime_handles_is_predicted_from_its_request(small: Small) -> None:
    # NVIDIA_VISIBLE_DEVICES=all under the NVIDIA runtime with the envvar accepted: every GPU predicted. This
    # node's runtime injects nothing, so reality disagrees (GG403); where the nodes are there, they agree.
    ignored = Planned("cuda-all", namespace="research", env={NVD: "all"}, nvidia_runtime=True)
    honoured = Planned("cuda-one", namespace="ml", gpus=(0,), env={NVD: uuid_of(0)}, allocated=(uuid_of(0),),
                       nvidia_runtime=True)
    extra = Populated(small.rt, [ignored, honoured], "loop-nvrt")
    metrics = AgentMetrics()
    try:
        extra.start()
        small.kubelet.set([*small.node.allocations(), *extra.allocations()])
        with Scanner(small.options) as scanner:
            scan = scanner.scan()
        by_id = {c.id: c for c in scan.observation.containers}
        assert by_id[extra.ids["cuda-all"]].runtime_binary.endswith("/nvidia-container-runtime")
        assert ("GG403", ignored.pod_name) in findings_of(scan)
        assert honoured.pod_name not in {name for _, name in findings_of(scan)}
        metrics.update(scan, 1.0)
        m = samples(metrics)
        assert (gpus(m, ignored, "held"), gpus(m, ignored, "predicted")) == (0, 4)
        assert (gpus(m, honoured, "allocated"), gpus(m, honoured, "held"), gpus(m, honoured, "predicted")) == (1, 1, 1)
    finally:
        small.kubelet.set(small.node.allocations())
        extra.remove()
