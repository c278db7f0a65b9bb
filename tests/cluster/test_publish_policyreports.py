"""PolicyReports written into the cluster (``publish.policyreports``, ``audit --cluster --policy-reports``).

Against the API server stand-in (``apiserver.py``), through the official kubernetes client: create, replace
on 409 (GET resourceVersion, PUT), a concurrent writer in between, pruning of gpuguard's own reports of
namespaces that are clean now, other tools' reports left alone, 403 / CRD not installed / 429.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from gpuguard.cli.main import cli
from gpuguard.model.finding import Finding, ReadError, Resource, Severity
from gpuguard.model.report import ProfileSummary, Report
from gpuguard.publish.policyreports import PolicyReportWriter, Published
from gpuguard.sources.cluster import ConnectOptions, connect
from tests.cluster.apiserver import TOKEN, ApiServer

PROFILE = ProfileSummary(source="live cluster gpu-prod", operator_version="25.3.4", toolkit_version="1.17.8",
                         device_plugin_version="0.17.4")
MANAGED = {"app.kubernetes.io/managed-by": "gpuguard"}
GROUP = "/apis/wgpolicyk8s.io/v1alpha2"


def _finding(namespace: str | None, name: str, rule: str = "GG101", severity: Severity = Severity.HIGH) -> Finding:
    kind, api = ("Deployment", "apps/v1") if namespace else ("ClusterPolicy", "nvidia.com/v1")
    return Finding(rule, severity, f"{name}: sees every GPU", "request nvidia.com/gpu",
                   resource=Resource(api, kind, namespace, name), container="main" if namespace else None)


def _report(*findings: Finding, errors: tuple[ReadError, ...] = ()) -> Report:
    return Report(profile=PROFILE, findings=findings, errors=errors)


def _publish(kubeconfig: Path, report: Report, **options: Any) -> tuple[Published, list[float]]:
    slept: list[float] = []
    api, _ = connect(ConnectOptions(kubeconfig=str(kubeconfig)))
    try:
        return PolicyReportWriter(api, sleep=slept.append, **options).publish(report), slept
    finally:
        api.close()


def _writes(server: ApiServer) -> list[tuple[str, str]]:
    return [(method, path) for method, path, _ in server.requests if path.startswith(GROUP)]


def _results(obj: dict[str, Any]) -> list[tuple[str, str, str]]:
    return [(r["policy"], r["result"], r["resources"][0]["name"] if r.get("resources") else "")
            for r in obj["results"]]


TWO_NAMESPACES = _report(_finding("ml-notebooks", "jupyter"), _finding("research", "lab", "GG104", Severity.LOW),
                         _finding(None, "cluster-policy", "GG201", Severity.MEDIUM))


def test_first_run_creates_one_report_per_namespace_and_the_cluster_report(
    apiserver: ApiServer, kubeconfig: Path
) -> None:
    published, slept = _publish(kubeconfig, TWO_NAMESPACES)
    assert published.errors == [] and slept == []
    assert published.created == ["PolicyReport ml-notebooks/gpuguard", "PolicyReport research/gpuguard",
                                 "ClusterPolicyReport gpuguard"]
    assert published.replaced == published.deleted == []
    stored = apiserver.report_objects("policyreports")
    assert set(stored) == {("ml-notebooks", "gpuguard"), ("research", "gpuguard")}
    assert _results(stored[("ml-notebooks", "gpuguard")]) == [("GG101", "fail", "jupyter")]
    assert _results(stored[("research", "gpuguard")]) == [("GG104", "warn", "lab")]  # low: warn
    assert stored[("research", "gpuguard")]["summary"] == {"pass": 0, "fail": 0, "warn": 1, "error": 0, "skip": 0}
    (cluster,) = apiserver.report_objects("clusterpolicyreports").values()
    assert cluster["kind"] == "ClusterPolicyReport" and "namespace" not in cluster["metadata"]
    assert _results(cluster) == [("GG201", "fail", "cluster-policy")]
    for obj in [*stored.values(), cluster]:
        assert obj["apiVersion"] == "wgpolicyk8s.io/v1alpha2"
        assert obj["metadata"]["labels"] == MANAGED
    assert _writes(apiserver) == [
        ("POST", f"{GROUP}/namespaces/ml-notebooks/policyreports"),
        ("POST", f"{GROUP}/namespaces/research/policyreports"),
        ("POST", f"{GROUP}/clusterpolicyreports"),
        ("GET", f"{GROUP}/policyreports"),
        ("GET", f"{GROUP}/clusterpolicyreports"),
    ]
    lists = [q for m, p, q in apiserver.requests if m == "GET" and p.startswith(GROUP)]
    assert all(q["labelSelector"] == ["app.kubernetes.io/managed-by=gpuguard"] for q in lists)


def test_a_second_run_replaces_with_the_current_resource_version(apiserver: ApiServer, kubeconfig: Path) -> None:
    _publish(kubeconfig, TWO_NAMESPACES)
    before = apiserver.report_objects("policyreports")[("ml-notebooks", "gpuguard")]["metadata"]["resourceVersion"]
    apiserver.requests.clear()
    second = _report(_finding("ml-notebooks", "jupyter"), _finding("ml-notebooks", "vscode"),
                     _finding("research", "lab", "GG104", Severity.LOW))
    published, _ = _publish(kubeconfig, second)
    assert published.errors == [] and published.created == [] and published.deleted == []
    assert published.replaced == ["PolicyReport ml-notebooks/gpuguard", "PolicyReport research/gpuguard",
                                  "ClusterPolicyReport gpuguard"]
    stored = apiserver.report_objects("policyreports")[("ml-notebooks", "gpuguard")]
    assert _results(stored) == [("GG101", "fail", "jupyter"), ("GG101", "fail", "vscode")]
    assert int(stored["metadata"]["resourceVersion"]) > int(before)
    assert _results(apiserver.report_objects("clusterpolicyreports")[("", "gpuguard")]) == []  # clean now
    ml = f"{GROUP}/namespaces/ml-notebooks/policyreports"
    assert _writes(apiserver)[:3] == [("POST", ml), ("GET", f"{ml}/gpuguard"), ("PUT", f"{ml}/gpuguard")]


def test_a_concurrent_writer_between_get_and_put_is_retried(apiserver: ApiServer, kubeconfig: Path) -> None:
    _publish(kubeconfig, TWO_NAMESPACES)
    apiserver.requests.clear()
    apiserver.concurrent_writes = 1
    published, _ = _publish(kubeconfig, TWO_NAMESPACES)
    assert published.errors == []
    assert len(published.replaced) == 3
    ml = f"{GROUP}/namespaces/ml-notebooks/policyreports"
    assert _writes(apiserver)[:5] == [("POST", ml), ("GET", f"{ml}/gpuguard"), ("PUT", f"{ml}/gpuguard"),
                                      ("GET", f"{ml}/gpuguard"), ("PUT", f"{ml}/gpuguard")]


def test_always_conflicting_is_one_error_line(apiserver: ApiServer, kubeconfig: Path) -> None:
    _publish(kubeconfig, _report(_finding("ml-notebooks", "jupyter")))
    apiserver.concurrent_writes = 100
    published, _ = _publish(kubeconfig, _report(_finding("ml-notebooks", "jupyter")))
    assert published.errors == [
        "PolicyReport ml-notebooks/gpuguard: replace: still conflicting after 3 tries",
        "ClusterPolicyReport gpuguard: replace: still conflicting after 3 tries",
    ]


def test_a_namespace_clean_now_loses_its_report_and_other_tools_keep_theirs(
    apiserver: ApiServer, kubeconfig: Path
) -> None:
    kyverno = {"apiVersion": "wgpolicyk8s.io/v1alpha2", "kind": "PolicyReport",
               "metadata": {"name": "cpol-require-labels", "namespace": "research",
                            "labels": {"app.kubernetes.io/managed-by": "kyverno"}}, "results": []}
    unlabelled = {"apiVersion": "wgpolicyk8s.io/v1alpha2", "kind": "PolicyReport",
                  "metadata": {"name": "gpuguard", "namespace": "shop"}, "results": []}  # hand-made, not ours
    apiserver.add_report("policyreports", kyverno)
    apiserver.add_report("policyreports", unlabelled)
    _publish(kubeconfig, TWO_NAMESPACES)
    published, _ = _publish(kubeconfig, _report(_finding("ml-notebooks", "jupyter")))
    assert published.errors == []
    assert published.deleted == ["PolicyReport research/gpuguard"]
    assert set(apiserver.report_objects("policyreports")) == {
        ("ml-notebooks", "gpuguard"), ("research", "cpol-require-labels"), ("shop", "gpuguard")}
    assert ("DELETE", f"{GROUP}/namespaces/research/policyreports/gpuguard") in _writes(apiserver)


def test_a_stray_cluster_report_of_ours_is_deleted(apiserver: ApiServer, kubeconfig: Path) -> None:
    old = {"apiVersion": "wgpolicyk8s.io/v1alpha2", "kind": "ClusterPolicyReport",
           "metadata": {"name": "gpuguard-old", "labels": dict(MANAGED)}, "results": []}
    other = {"apiVersion": "wgpolicyk8s.io/v1alpha2", "kind": "ClusterPolicyReport",
             "metadata": {"name": "trivy", "labels": {"app.kubernetes.io/managed-by": "trivy-operator"}}}
    apiserver.add_report("clusterpolicyreports", old)
    apiserver.add_report("clusterpolicyreports", other)
    published, _ = _publish(kubeconfig, _report())
    assert published.deleted == ["ClusterPolicyReport gpuguard-old"]
    assert set(apiserver.report_objects("clusterpolicyreports")) == {("", "gpuguard"), ("", "trivy")}


def test_an_audit_of_one_namespace_prunes_only_there(apiserver: ApiServer, kubeconfig: Path) -> None:
    _publish(kubeconfig, TWO_NAMESPACES)
    apiserver.requests.clear()
    published, _ = _publish(kubeconfig, _report(), namespace="ml-notebooks")
    assert published.deleted == ["PolicyReport ml-notebooks/gpuguard"]
    assert set(apiserver.report_objects("policyreports")) == {("research", "gpuguard")}
    lists = [p for m, p, _ in apiserver.requests if m == "GET" and p.endswith("policyreports")]
    assert f"{GROUP}/namespaces/ml-notebooks/policyreports" in lists


def test_forbidden_is_one_line_per_refusal_and_the_rest_is_written(apiserver: ApiServer, kubeconfig: Path) -> None:
    apiserver.forbidden = {"policyreports"}
    published, _ = _publish(kubeconfig, TWO_NAMESPACES)
    assert published.created == ["ClusterPolicyReport gpuguard"]
    assert len(published.errors) == 3
    assert published.errors[0].startswith("PolicyReport ml-notebooks/gpuguard: create: forbidden (403): ")
    assert published.errors[1].startswith("PolicyReport research/gpuguard: create: forbidden (403): ")
    assert published.errors[2].startswith(
        "policyreports (app.kubernetes.io/managed-by=gpuguard): list: forbidden (403): ")
    assert 'cannot list resource "policyreports"' in published.errors[2]
    assert all(TOKEN not in line for line in published.errors)


def test_crd_not_installed_is_one_line_and_nothing_else_is_tried(apiserver: ApiServer, kubeconfig: Path) -> None:
    apiserver.reports_missing = True
    published, _ = _publish(kubeconfig, TWO_NAMESPACES)
    assert published.errors == ["wgpolicyk8s.io/v1alpha2: not served by the API server (are the PolicyReport CRDs "
                                "installed?): no reports written"]
    assert published.created == published.deleted == []
    assert _writes(apiserver) == [("POST", f"{GROUP}/namespaces/ml-notebooks/policyreports")]


def test_429_waits_for_retry_after(apiserver: ApiServer, kubeconfig: Path) -> None:
    apiserver.throttle_once = {"policyreports"}
    apiserver.retry_after = "4"
    published, slept = _publish(kubeconfig, TWO_NAMESPACES)
    assert slept == [4.0]
    assert published.errors == [] and published.retries == 1
    assert len(published.created) == 3
    posts = [p for m, p in _writes(apiserver) if m == "POST"]
    assert posts[:2] == [f"{GROUP}/namespaces/ml-notebooks/policyreports"] * 2  # the same write again


def test_429_past_the_retries_is_one_error(apiserver: ApiServer, kubeconfig: Path) -> None:
    apiserver.throttle_once = {"clusterpolicyreports"}
    published, slept = _publish(kubeconfig, _report(), max_retries=0)
    assert slept == []
    assert published.errors == ["ClusterPolicyReport gpuguard: create: too many requests (retries exhausted) (429): "
                                "Too many requests, please try again later."]


def test_input_errors_go_in_the_cluster_report(apiserver: ApiServer, kubeconfig: Path) -> None:
    report = _report(errors=(ReadError("list daemonsets: forbidden (403)"),))
    _publish(kubeconfig, report)
    cluster = apiserver.report_objects("clusterpolicyreports")[("", "gpuguard")]
    assert [(r["policy"], r["result"], r["message"]) for r in cluster["results"]] == [
        ("gpuguard-input", "error", "list daemonsets: forbidden (403)")]
    assert cluster["summary"]["error"] == 1


# -- the command ------------------------------------------------------------------------------------------------


def _run(*args: str) -> Any:
    return CliRunner().invoke(cli, ["audit", *args])


def test_audit_cluster_policy_reports_writes_what_it_prints(apiserver: ApiServer, kubeconfig: Path) -> None:
    result = _run("--cluster", "--kubeconfig", str(kubeconfig), "--policy-reports", "--format", "json")
    assert result.exit_code == 1, result.output  # the snapshot's exposed notebooks: high findings
    report = json.loads(result.stdout)
    namespaces = {f["resource"]["namespace"] for f in report["findings"] if f.get("resource")} - {None}
    assert "ml-notebooks" in namespaces
    namespaces |= {e["resource"]["namespace"] for e in report["exempt"]}  # the operator's own pods: skip results
    stored = apiserver.report_objects("policyreports")
    assert {ns for ns, _ in stored} == namespaces
    notebooks = stored[("ml-notebooks", "gpuguard")]
    names = {r["resources"][0]["name"] for r in notebooks["results"] if r["result"] == "fail"}
    # bob: on the H100 with its own toolkit; carol: pending, judged where most exposed; alice's A100 is hardened
    assert {"jupyter-bob", "jupyter-carol"} <= names and "jupyter-alice" not in names
    assert "gpuguard: policy reports: " in result.stderr and " created" in result.stderr
    assert TOKEN not in result.output


def test_a_failed_publish_keeps_the_report_and_exits_2(apiserver: ApiServer, kubeconfig: Path) -> None:
    apiserver.reports_missing = True
    result = _run("--cluster", "--kubeconfig", str(kubeconfig), "--policy-reports", "--format", "json")
    assert result.exit_code == 2
    assert json.loads(result.stdout)["findings"]  # the report is all there
    errors = [line for line in result.stderr.splitlines() if line.startswith("gpuguard: error: ")]
    assert errors == ["gpuguard: error: --policy-reports: wgpolicyk8s.io/v1alpha2: not served by the API server "
                      "(are the PolicyReport CRDs installed?): no reports written"]
    assert result.stderr.rstrip().splitlines()[-1].startswith("gpuguard: ")  # the summary still comes last


@pytest.mark.parametrize("args", [["--policy-reports", "-"], ["--policy-reports", "--kubeconfig", "k", "-"]])
def test_policy_reports_without_cluster_is_a_usage_error(args: list[str]) -> None:
    result = _run(*args)
    assert result.exit_code == 2
    assert "--policy-reports needs --cluster" in result.stderr
    assert result.stdout == ""


@pytest.mark.parametrize(
    ("selector", "labels", "selected"),
    [
        ("app.kubernetes.io/managed-by=gpuguard", {"app.kubernetes.io/managed-by": "gpuguard"}, True),
        ("app.kubernetes.io/managed-by==gpuguard", {"app.kubernetes.io/managed-by": "gpuguard"}, True),
        ("app.kubernetes.io/managed-by=gpuguard", {"app.kubernetes.io/managed-by": "kyverno"}, False),
        ("app.kubernetes.io/managed-by=gpuguard", {}, False),
        ("a=1,b=2", {"a": "1", "b": "2", "c": "3"}, True),
        ("a=1,b=2", {"a": "1"}, False),
        ("a!=1", {"a": "2"}, True),
        ("a!=1", {}, True),
        ("a!=1", {"a": "1"}, False),
        ("", {"a": "1"}, True),
    ],
)
def test_the_stand_ins_label_selector(selector: str, labels: dict[str, str], selected: bool) -> None:
    from tests.cluster.apiserver import _selected

    assert _selected(labels, selector) is selected
