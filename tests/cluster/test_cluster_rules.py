"""The cluster-only rules GG207-GG209 against the API server stand-in: each fires on its case and not on its twin."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from gpuguard.audit.cluster import ClusterAuditOptions, audit_with_reader
from gpuguard.model.report import Report
from gpuguard.rules.settings import AuditSettings
from gpuguard.sources.cluster import ClusterReader, ConnectOptions, connect
from tests.cluster.apiserver import ApiServer, Snapshot
from tests.cluster.conftest import OPERATOR_NS, _c, _meta, _pod

ROLLOUT = "2026-11-25T10:00:00Z"


def _audit(kubeconfig: Path) -> tuple[Report, ClusterReader]:
    options = ConnectOptions(kubeconfig=str(kubeconfig))
    api, context = connect(options)
    reader = ClusterReader(api, context, options, sleep=lambda _: None)
    return audit_with_reader(reader, AuditSettings(), ClusterAuditOptions()), reader


def _ids(report: Report, rule_id: str) -> list[Any]:
    return [f for f in report.findings if f.rule_id == rule_id]


def _pod_named(snapshot: Snapshot, name: str) -> dict[str, Any]:
    return next(p for p in snapshot.objects["pods"] if p["metadata"]["name"] == name)


# -- reader --------------------------------------------------------------------------------------------------------


def test_reader_reads_owners_drivers_and_admission(apiserver: ApiServer, kubeconfig: Path, snapshot: Snapshot) -> None:
    snapshot.objects["nvidiadrivers"] = [{"metadata": _meta("default-driver"), "spec": {"driverType": "gpu"}}]
    snapshot.objects["kyverno-clusterpolicies"] = [_kyverno("restrict-gpu-env", "NVIDIA_VISIBLE_DEVICES")]
    _, reader = _audit(kubeconfig)
    assert reader.errors == []
    options = ConnectOptions(kubeconfig=str(kubeconfig))
    api, context = connect(options)
    fresh = ClusterReader(api, context, options)
    alice = next(p for p in fresh.pods() if p.name == "jupyter-alice")
    assert [(o.kind, o.name) for o in alice.owner_references] == [("StatefulSet", "jupyter-alice")]
    assert [d["kind"] for d in fresh.nvidia_drivers()] == ["NVIDIADriver"]
    kinds = sorted(o["kind"] for o in fresh.admission())
    assert kinds == ["ClusterPolicy"]
    assert fresh.admission()[0]["apiVersion"] == "kyverno.io/v1"
    assert fresh.errors == []  # Gatekeeper's CRD is absent: 404 is no error


# -- GG207 ---------------------------------------------------------------------------------------------------------


def _kyverno(name: str, mentions: str) -> dict[str, Any]:
    return {"metadata": _meta(name), "spec": {"validationFailureAction": "Enforce", "rules": [{
        "name": "check", "match": {"any": [{"resources": {"kinds": ["Pod"]}}]},
        "validate": {"message": "no", "pattern": {"spec": {"containers": [{"env": [
            {"(name)": mentions, "value": "void"}]}]}}}}]}}


def _gpuguard_webhook() -> dict[str, Any]:
    return {"metadata": _meta("gpuguard", labels={"app.kubernetes.io/name": "gpuguard"}),
            "webhooks": [{"name": "pods.gpuguard.dev", "admissionReviewVersions": ["v1"], "sideEffects": "None",
                          "clientConfig": {"service": {"namespace": "gpuguard", "name": "gpuguard",
                                                       "path": "/validate", "port": 443}},
                          "rules": [{"apiGroups": [""], "apiVersions": ["v1"], "operations": ["CREATE"],
                                     "resources": ["pods"]}]}]}


def test_gg207_fires_without_admission_control(apiserver: ApiServer, kubeconfig: Path, snapshot: Snapshot) -> None:
    snapshot.objects["kyverno-clusterpolicies"] = [_kyverno("require-labels", "team")]  # not about GPUs
    report, _ = _audit(kubeconfig)
    assert len(_ids(report, "GG207")) == 1


def test_gg207_silent_with_a_kyverno_gpu_policy(apiserver: ApiServer, kubeconfig: Path, snapshot: Snapshot) -> None:
    snapshot.objects["kyverno-clusterpolicies"] = [_kyverno("restrict-gpu-env", "NVIDIA_VISIBLE_DEVICES")]
    report, _ = _audit(kubeconfig)
    assert _ids(report, "GG207") == []


def test_gg207_silent_with_the_gpuguard_webhook(apiserver: ApiServer, kubeconfig: Path, snapshot: Snapshot) -> None:
    snapshot.objects["validatingwebhookconfigurations"] = [_gpuguard_webhook()]
    report, _ = _audit(kubeconfig)
    assert _ids(report, "GG207") == []


def test_gg207_not_judged_when_admission_is_forbidden(
    apiserver: ApiServer, kubeconfig: Path, snapshot: Snapshot
) -> None:
    apiserver.forbidden = {"validatingadmissionpolicies"}
    report, _ = _audit(kubeconfig)
    assert _ids(report, "GG207") == []
    assert any("GG207 not judged" in n for n in report.profile.notes)


# -- GG208 ---------------------------------------------------------------------------------------------------------


def _rollout(snapshot: Snapshot, alice_started: str) -> None:
    for pod in snapshot.objects["pods"]:
        if pod["metadata"]["name"].startswith("nvidia-container-toolkit-daemonset-"):
            pod["status"]["startTime"] = ROLLOUT
        elif pod["spec"].get("nodeName"):
            pod["status"]["startTime"] = "2026-11-26T08:00:00Z"
    _pod_named(snapshot, "jupyter-alice")["status"]["startTime"] = alice_started


def test_gg208_fires_for_a_pod_started_before_the_rollout(
    apiserver: ApiServer, kubeconfig: Path, snapshot: Snapshot
) -> None:
    _rollout(snapshot, "2026-11-21T09:30:00Z")
    report, _ = _audit(kubeconfig)
    found = _ids(report, "GG208")
    assert [(f.resource.name, f.container) for f in found] == [("jupyter-alice", "notebook")]
    assert "restart" in found[0].message and ROLLOUT in found[0].message


def test_gg208_silent_for_a_pod_started_after_the_rollout(
    apiserver: ApiServer, kubeconfig: Path, snapshot: Snapshot
) -> None:
    _rollout(snapshot, "2026-11-25T11:00:00Z")
    report, _ = _audit(kubeconfig)
    assert _ids(report, "GG208") == []


# -- GG209 ---------------------------------------------------------------------------------------------------------


def _time_slicing(snapshot: Snapshot, second_namespace: str) -> None:
    snapshot.objects["configmaps"].append({
        "metadata": _meta("time-slicing-config", OPERATOR_NS),
        "data": {"a100": "version: v1\nsharing:\n  timeSlicing:\n    resources:\n"
                         "    - name: nvidia.com/gpu\n      replicas: 4\n"}})
    policy = snapshot.objects["clusterpolicies"][0]
    policy["spec"]["devicePlugin"]["config"] = {"name": "time-slicing-config", "default": "a100"}
    snapshot.objects["pods"].append(_pod("inference-0", second_namespace, "gpu-a100-1",
                                         [_c("server", "registry.example.com/ml/serve:2.0", gpus=1)]))


def test_gg209_fires_when_time_sliced_gpus_span_namespaces(
    apiserver: ApiServer, kubeconfig: Path, snapshot: Snapshot
) -> None:
    _time_slicing(snapshot, "team-b")
    report, _ = _audit(kubeconfig)
    found = _ids(report, "GG209")
    assert [f.resource.name for f in found] == ["gpu-a100-1"]
    assert "4 ways" in found[0].message and "team-b" in found[0].message


def test_gg209_silent_when_sharing_stays_in_one_namespace(
    apiserver: ApiServer, kubeconfig: Path, snapshot: Snapshot
) -> None:
    _time_slicing(snapshot, "ml-train")
    report, _ = _audit(kubeconfig)
    assert _ids(report, "GG209") == []
