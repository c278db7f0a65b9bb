"""The cluster reader and ``gpuguard audit --cluster`` against the Kubernetes API stand-in (``apiserver.py``)."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from gpuguard.audit.cluster import ClusterAuditOptions, audit_with_reader
from gpuguard.cli.main import cli
from gpuguard.model.finding import Resource
from gpuguard.model.report import Report
from gpuguard.rules.settings import AuditSettings
from gpuguard.sources.cluster import ClusterReader, ConnectOptions, connect
from tests.cluster.apiserver import TOKEN, ApiServer, Snapshot
from tests.cluster.conftest import A100, EXPOSED_ON, H100, OPERATOR_NS


def _reader(kubeconfig: Path, **options: Any) -> tuple[ClusterReader, list[float]]:
    slept: list[float] = []
    connect_options = ConnectOptions(kubeconfig=str(kubeconfig), **options)
    api, context = connect(connect_options)
    return ClusterReader(api, context, connect_options, sleep=slept.append), slept


def _audit(kubeconfig: Path, **options: Any) -> tuple[Report, ClusterReader, list[float]]:
    reader, slept = _reader(kubeconfig, **options)
    return audit_with_reader(reader, AuditSettings(), ClusterAuditOptions()), reader, slept


def _pod_findings(report: Report, name: str) -> list[Any]:
    return [f for f in report.findings if f.resource is not None and f.resource.kind == "Pod"
            and f.resource.name == name]


def _list_requests(server: ApiServer, path: str) -> list[dict[str, list[str]]]:
    return [q for method, p, q in server.requests if method == "GET" and p == path]


def test_pagination_reads_every_item_across_pages(apiserver: ApiServer, kubeconfig: Path, snapshot: Snapshot) -> None:
    reader, _ = _reader(kubeconfig, page_size=7)
    pods = list(reader.pods())
    expected = {(p["metadata"]["namespace"], p["metadata"]["name"]) for p in snapshot.objects["pods"]}
    assert len(expected) == len(snapshot.objects["pods"]) >= 200
    assert [(p.namespace, p.name) for p in pods] == [
        (p["metadata"]["namespace"], p["metadata"]["name"]) for p in snapshot.objects["pods"]]
    pages = _list_requests(apiserver, "/api/v1/pods")
    assert len(pages) == math.ceil(len(expected) / 7)
    assert all(q["limit"] == ["7"] for q in pages)
    assert "continue" not in pages[0] and all("continue" in q for q in pages[1:])
    assert {p.node_name for p in pods} >= {*A100, H100}
    assert reader.errors == []


def test_429_is_retried_after_retry_after(apiserver: ApiServer, kubeconfig: Path, snapshot: Snapshot) -> None:
    apiserver.throttle_once = {"pods"}
    apiserver.retry_after = "3"
    reader, slept = _reader(kubeconfig, page_size=50)
    pods = list(reader.pods())
    assert len(pods) == len(snapshot.objects["pods"])
    assert slept == [3.0]
    assert reader.retries == 1 and reader.errors == []
    first = _list_requests(apiserver, "/api/v1/pods")[:2]
    assert first[0] == first[1]  # the same page asked again


def test_429_retries_are_bounded(apiserver: ApiServer, kubeconfig: Path) -> None:
    apiserver.throttle_once = {"nodes"}
    reader, slept = _reader(kubeconfig, max_retries=0)
    assert reader.nodes() == []
    assert slept == []
    assert len(reader.errors) == 1 and "too many requests" in reader.errors[0].message


def test_403_on_one_resource_is_one_error_and_the_rest_is_reported(apiserver: ApiServer, kubeconfig: Path) -> None:
    apiserver.forbidden = {"daemonsets"}
    report, _, _ = _audit(kubeconfig)
    assert len(report.errors) == 1
    error = report.errors[0]
    assert "daemonsets.apps" in error.message and "forbidden (403)" in error.message
    assert error.location is not None and error.location.path == "cluster:gpu-prod"
    assert _pod_findings(report, "jupyter-bob")  # the run went on
    settings = report.profile.settings  # without the DaemonSets: the ClusterPolicy and the node labels
    for node in A100:
        assert "as the ClusterPolicy renders it (its DaemonSet was not read)" in settings[node]
        assert "envvar from unprivileged: false" in settings[node]
    assert "host toolkit (nvidia.com/gpu.deploy.container-toolkit=false)" in settings[H100]


def test_exposed_pods_are_reported_against_their_own_node(apiserver: ApiServer, kubeconfig: Path) -> None:
    report, _, _ = _audit(kubeconfig)
    assert report.errors == ()
    bob = _pod_findings(report, "jupyter-bob")
    assert {f.rule_id for f in bob} == {"GG101"}
    assert bob[0].resource == Resource("v1", "Pod", "ml-notebooks", "jupyter-bob")
    assert bob[0].location is not None and bob[0].location.path == "cluster:gpu-prod"
    assert bob[0].message.endswith(f"[node {EXPOSED_ON['jupyter-bob']}]")
    # the same notebook on a hardened A100 node is not exposed
    assert EXPOSED_ON["jupyter-alice"] in A100
    assert _pod_findings(report, "jupyter-alice") == []
    # env from a ConfigMap read from the cluster
    assert [f.rule_id for f in _pod_findings(report, "batch-report-0")] == ["GG101"]
    # a pending pod: judged where it would be most exposed
    carol = _pod_findings(report, "jupyter-carol")
    assert carol and carol[0].message.endswith(f"[pending: judged on {H100}]")
    # the operator's own pods are exempt, not findings
    assert not [f for f in report.findings if f.resource is not None and f.resource.namespace == OPERATOR_NS]
    assert any(e.resource.namespace == OPERATOR_NS for e in report.exempt)


def test_per_node_verdicts_differ_where_the_nodes_differ(apiserver: ApiServer, kubeconfig: Path) -> None:
    report, _, _ = _audit(kubeconfig)
    settings = report.profile.settings
    assert set(settings) == {*A100, H100}
    for node in A100:
        assert "envvar from unprivileged: false" in settings[node]
        assert "toolkit 1.17.8 from DaemonSet gpu-operator/nvidia-container-toolkit-daemonset env" in settings[node]
    assert "envvar from unprivileged: true" in settings[H100]
    assert "host toolkit (nvidia.com/gpu.deploy.container-toolkit=false)" in settings[H100]
    nodes_with_exposure = {f.message.rsplit(" ", 1)[-1].rstrip("]") for f in report.findings if f.rule_id == "GG101"}
    assert nodes_with_exposure == {H100}


def test_daemonset_env_is_preferred_over_the_cluster_policy(
    apiserver: ApiServer, kubeconfig: Path, snapshot: Snapshot
) -> None:
    # The ClusterPolicy was hardened, but the rendered toolkit DaemonSet still runs the old env
    # (the operator has not reconciled it): the nodes run what the DaemonSet says.
    toolkit = next(d for d in snapshot.objects["daemonsets"] if d["metadata"]["name"].startswith("nvidia-container"))
    container = toolkit["spec"]["template"]["spec"]["containers"][0]
    container["env"] = [e for e in container["env"]
                        if e["name"] != "ACCEPT_NVIDIA_VISIBLE_DEVICES_ENVVAR_WHEN_UNPRIVILEGED"]
    report, _, _ = _audit(kubeconfig)
    source = report.profile.settings[A100[0]]
    assert "differs from the ClusterPolicy in accept-nvidia-visible-devices-envvar-when-unprivileged" in source
    assert "envvar from unprivileged: true" in source
    alice = _pod_findings(report, "jupyter-alice")
    assert alice and alice[0].message.endswith(f"[node {EXPOSED_ON['jupyter-alice']}]")
    assert alice[0].node == "gpu-a100-1"  # structured, for the per-node matrix of reports


def test_namespace_lists_one_namespace(apiserver: ApiServer, kubeconfig: Path) -> None:
    reader, _ = _reader(kubeconfig, namespace="ml-notebooks")
    pods = list(reader.pods())
    assert {p.namespace for p in pods} == {"ml-notebooks"} and len(pods) == 4
    assert _list_requests(apiserver, "/api/v1/namespaces/ml-notebooks/pods")
    assert not _list_requests(apiserver, "/api/v1/pods")


def test_cli_cluster_json_report_and_no_token_printed(apiserver: ApiServer, kubeconfig: Path) -> None:
    apiserver.forbidden = {"runtimeclasses"}
    result = CliRunner().invoke(cli, ["audit", "--cluster", "--kubeconfig", str(kubeconfig), "--context", "gpu-prod",
                                      "--format", "json"])
    assert result.exit_code == 2, result.output  # a read error wins over findings
    assert TOKEN not in result.output and TOKEN not in result.stderr
    assert "runtimeclasses.node.k8s.io: forbidden (403)" in result.stderr
    report = json.loads(result.stdout)
    names = {f["resource"]["name"] for f in report["findings"] if f["resource"] and f["resource"]["kind"] == "Pod"}
    assert {"jupyter-bob", "jupyter-carol", "batch-report-0"} <= names
    assert "jupyter-alice" not in names


@pytest.mark.parametrize("args", [
    ["--kubeconfig", "kc"],
    ["--cluster", "some/path"],
    ["--cluster", "--resolve-images"],
])
def test_cli_usage_errors(args: list[str]) -> None:
    result = CliRunner().invoke(cli, ["audit", *args])
    assert result.exit_code == 2


def test_unknown_context_is_a_usage_error(apiserver: ApiServer, kubeconfig: Path) -> None:
    result = CliRunner().invoke(cli, ["audit", "--cluster", "--kubeconfig", str(kubeconfig), "--context", "nope"])
    assert result.exit_code == 2
    assert "no context 'nope'" in result.stderr
