"""``--policy-reports``: each node's agent writes its own PolicyReports (``gpuguard-agent-<node>``) through
``publish.policyreports``, prunes only its own, and writes again only when the results change.

Real scans of a real containerd; the API server stand-in of ``tests.cluster.apiserver`` keeps the reports
with the real server's write semantics.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from gpuguard.agent.loop import Loop
from gpuguard.agent.policyreports import NodePolicyReports, node_label
from gpuguard.agent.scan import Scanner, ScanOptions
from gpuguard.sources.cluster import ConnectOptions, connect
from tests.agent.node import NODE, Planned, Populated, agent_node, uuid_of
from tests.cluster.apiserver import ApiServer, Snapshot, serve
from tests.node.runtime import Runtime

NAME = f"gpuguard-agent-{NODE}"
LABELS = {"app.kubernetes.io/managed-by": "gpuguard-agent", "gpuguard.io/node": NODE}
PLAN = [
    Planned("notebook", namespace="research", gpus=(0,)),
    Planned("greedy", namespace="ml", gpus=(0, 1), env={"NVIDIA_VISIBLE_DEVICES": uuid_of(0)},
            allocated=(uuid_of(0),)),
    Planned("web", namespace="shop", container="nginx"),
]


def _foreign(namespace: str, name: str, labels: dict[str, str]) -> dict[str, Any]:
    return {"apiVersion": "wgpolicyk8s.io/v1alpha2", "kind": "PolicyReport",
            "metadata": {"name": name, "namespace": namespace, "labels": labels}, "results": [], "summary": {}}


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[tuple[ApiServer, Any]]:
    with serve(Snapshot(), tmp_path) as server:
        api, _ = connect(ConnectOptions(kubeconfig=str(server.kubeconfig(tmp_path / "kubeconfig"))))
        try:
            yield server, api
        finally:
            api.close()


@pytest.fixture
def options(runtime: Runtime) -> Iterator[tuple[Populated, ScanOptions, Any]]:
    with agent_node(runtime, PLAN, "prep") as n:
        yield n.node, n.options(), n.kubelet


def _results(obj: dict[str, Any]) -> set[tuple[str, str, str]]:
    return {(r["policy"], r["result"], r["resources"][0]["name"]) for r in obj["results"]}


def test_each_node_writes_and_prunes_only_its_own_reports(
    cluster: tuple[ApiServer, Any], options: tuple[Populated, ScanOptions, Any]
) -> None:
    server, api = cluster
    node, scan_options, kubelet = options
    audit_report = _foreign("research", "gpuguard", {"app.kubernetes.io/managed-by": "gpuguard"})
    other_node = _foreign("research", "gpuguard-agent-gpu-node-8",
                          {"app.kubernetes.io/managed-by": "gpuguard-agent", "gpuguard.io/node": "gpu-node-8"})
    server.add_report("policyreports", audit_report)
    server.add_report("policyreports", other_node)
    lines: list[str] = []
    with Scanner(scan_options) as scanner:
        loop = Loop(scanner, 1.0, threading.Event(), lines.append, policy_reports=NodePolicyReports(api, NODE))
        loop.once()
        stored = server.report_objects("policyreports")
        assert set(stored) == {("research", "gpuguard"), ("research", "gpuguard-agent-gpu-node-8"),
                               ("research", NAME), ("ml", NAME)}
        notebook, greedy, _ = PLAN
        assert _results(stored[("research", NAME)]) == {("GG401", "fail", notebook.pod_name)}
        assert _results(stored[("ml", NAME)]) == {("GG402", "fail", greedy.pod_name)}
        for key in (("research", NAME), ("ml", NAME)):
            assert stored[key]["metadata"]["labels"] == LABELS
        (cluster_report,) = server.report_objects("clusterpolicyreports").values()
        assert cluster_report["metadata"]["name"] == NAME and cluster_report["metadata"]["labels"] == LABELS
        lists = [q for m, p, q in server.requests if m == "GET" and p.endswith("policyreports")]
        assert lists and all(q["labelSelector"] == [f"app.kubernetes.io/managed-by=gpuguard-agent,"
                                                    f"gpuguard.io/node={NODE}"] for q in lists)

        # The same results again: nothing is written.
        before = len(server.requests)
        loop.once()
        assert len(server.requests) == before

        # research is clean now (the notebook is gone): this node's report there goes, nobody else's.
        node.remove()
        kubelet.set([a for a in node.allocations() if a["pod"] != notebook.pod_name])
        loop.once()
    stored = server.report_objects("policyreports")
    assert set(stored) == {("research", "gpuguard"), ("research", "gpuguard-agent-gpu-node-8")}
    assert stored[("research", "gpuguard")] == audit_report
    assert not [line for line in lines if line.startswith("policy reports:")]


def test_refusals_are_logged_and_written_at_the_next_scan(
    cluster: tuple[ApiServer, Any], options: tuple[Populated, ScanOptions, Any]
) -> None:
    server, api = cluster
    _, scan_options, _ = options
    server.forbidden = {"policyreports"}
    lines: list[str] = []
    with Scanner(scan_options) as scanner:
        loop = Loop(scanner, 1.0, threading.Event(), lines.append, policy_reports=NodePolicyReports(api, NODE))
        loop.once()
        (line,) = [line for line in lines if line.startswith("policy reports: ")]
        assert "403" in line or "forbidden" in line.lower()
        server.forbidden = set()
        loop.once()
    assert {ns for ns, _ in server.report_objects("policyreports")} == {"research", "ml"}


@pytest.mark.parametrize("node", ["gpu-node-7", "ip-10-0-1-17.eu-west-1.compute.internal"])
def test_node_names_that_fit_are_the_label(node: str) -> None:
    assert node_label(node) == node


def test_longer_node_names_become_a_digest_that_fits() -> None:
    long_a, long_b = "a" * 64, "a" * 63 + "b"
    for node in (long_a, long_b):
        label = node_label(node)
        assert label.startswith("sha256-") and len(label) <= 63
        assert all(c in "0123456789abcdef" for c in label.removeprefix("sha256-"))
    assert node_label(long_a) != node_label(long_b)
