"""How a scan's observation becomes verdicts and a report, from hand-built observations (no containerd needed):
pod labels from the sandbox, degraded sources, containers not looked into, specs not read."""

from __future__ import annotations

from dataclasses import replace

import pytest

from gpuguard.agent.report import build_report
from gpuguard.agent.scan import Scanner, ScanOptions
from gpuguard.agent.toolkit import ToolkitReader
from gpuguard.model.observed import (
    ContainerAllocation,
    DeviceNode,
    HeldDevices,
    NodeGpu,
    NodeObservation,
    RuntimeContainer,
)
from gpuguard.model.report import Report

GPUS = tuple(NodeGpu(m, f"GPU-00000000-0000-0000-0000-{m:012d}", f"0000:1{m}:00.0") for m in range(2))
GPU0 = DeviceNode("nvidia0", 195, 0, "gpu")
CTL = DeviceNode("nvidiactl", 195, 255, "control")


def _container(cid: str, ns: str, pod: str, name: str | None = "main", **kw: object) -> RuntimeContainer:
    return RuntimeContainer(id=cid, namespace=ns, pod=pod, container=name, pod_uid=f"uid-{pod}", pid=100,
                            status="running", **kw)  # type: ignore[arg-type]


def _report(containers: list[RuntimeContainer], held: dict[str, HeldDevices],
            allocations: tuple[ContainerAllocation, ...] = (), degraded: dict[str, str] | None = None) -> Report:
    scanner = Scanner(ScanOptions(node="n1", toolkit_config="/nonexistent/config.toml", toolkit_version="1.17.8"))
    toolkit = replace(ToolkitReader(None, "1.17.8").read(), source="test")
    observation = NodeObservation(node="n1", containers=tuple(containers), held=held, allocations=allocations,
                                  gpus=GPUS, degraded=degraded or {})
    return build_report(observation, scanner.judge(observation, toolkit), toolkit, scanner.locations())


def _rules(report: Report) -> set[tuple[str, str]]:
    return {(f.rule_id, f.resource.name if f.resource else "") for f in report.findings}


SANDBOX_CASES = [
    # (sandbox labels, namespace, exempt?)
    ({"app": "nvidia-dcgm-exporter"}, "gpu-operator", True),
    ({"app": "nvidia-dcgm-exporter"}, "monitoring", False),  # not a trusted namespace
    ({"app": "my-exporter"}, "gpu-operator", False),
    (None, "gpu-operator", False),  # no sandbox listed: the container's own labels only
]


@pytest.mark.parametrize(("labels", "namespace", "exempt"), SANDBOX_CASES)
def test_the_pods_labels_come_from_its_sandbox(labels: dict[str, str] | None, namespace: str, exempt: bool) -> None:
    worker = _container("c1", namespace, "exporter-abc12", linux_devices=(GPU0, CTL))
    containers = [worker]
    if labels is not None:
        containers.insert(0, _container("s1", namespace, "exporter-abc12", None, sandbox=True,
                                        labels={"io.cri-containerd.kind": "sandbox", **labels}))
    report = _report(containers, {"c1": HeldDevices("c1", (GPU0, CTL)), "s1": HeldDevices("s1")})
    if exempt:
        assert not report.findings
        (entry,) = report.exempt
        assert (entry.resource.name, entry.container) == ("exporter-abc12", "main")
        assert "app=nvidia-dcgm-exporter" in entry.reason
    else:
        assert _rules(report) == {("GG401", "exporter-abc12")}
        assert not report.exempt
    assert report.objects == 1  # the sandbox is not judged


def test_allocations_unknown_judge_no_gg401_or_gg402() -> None:
    gpu1 = DeviceNode("nvidia1", 195, 1, "gpu")
    holder = _container("c1", "ml", "nb", linux_devices=(GPU0,))
    greedy = _container("c2", "ml", "greedy", linux_devices=(GPU0, gpu1))
    held = {"c1": HeldDevices("c1", (GPU0,)),
            "c2": HeldDevices("c2", (GPU0, gpu1))}
    allocations = (ContainerAllocation("ml", "greedy", "main", {"nvidia.com/gpu": (GPUS[0].uuid,)}),)
    complete = _report([holder, greedy], held, allocations)
    assert _rules(complete) == {("GG401", "nb"), ("GG402", "greedy")}
    degraded = _report([holder, greedy], held, (), {"kubelet": "no pod-resources socket"})
    assert not {r for r, _ in _rules(degraded)} & {"GG401", "GG402"}
    (error,) = degraded.errors
    assert error.message.startswith("kubelet: no pod-resources socket; allocations not read: GG401/GG402 not judged")


def test_containers_not_looked_into_are_notes_not_findings() -> None:
    gone = _container("c1", "ml", "gone")
    exited = replace(_container("c2", "ml", "done"), pid=None, status="stopped")
    unread = _container("c3", "ml", "odd", error="container c3: spec: not JSON")
    held = {"c1": HeldDevices("c1", error="/proc/100/root/dev: process or /dev is gone"),
            "c3": HeldDevices("c3", (GPU0,))}
    report = _report([gone, exited, unread], held)
    notes = report.profile.notes
    assert "not scanned: ml/gone/main: /proc/100/root/dev: process or /dev is gone" in notes
    assert "1 container without a running task (exited or not started): they hold no device" in notes
    assert "OCI spec not read: ml/odd/main: container c3: spec: not JSON (no prediction for it)" in notes
    assert _rules(report) == {("GG401", "odd")}  # what it holds is read even when its spec is not
    assert not report.errors


def test_containerd_unreadable_is_an_error_naming_the_socket() -> None:
    report = _report([], {}, (), {"containerd": "no socket at /run/containerd/containerd.sock"})
    (error,) = report.errors
    assert error.message == ("containerd: no socket at /run/containerd/containerd.sock; "
                             "containers not read: nothing was scanned")
    assert error.location is not None and error.location.path == "/run/containerd/containerd.sock"
    assert [r.id for r in report.rules] == ["GG401", "GG402", "GG403"]
