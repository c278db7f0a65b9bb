"""GPU Operator components and allow-listed tools are reported as Exempt, not as findings (research §5, §9.11)."""

from __future__ import annotations

import dataclasses

from gpuguard.model.pod import OwnerReference
from gpuguard.rules.exempt import component_evidence
from gpuguard.rules.settings import load_settings
from tests.rules._build import CUDA, container, ids, operator_node, pod, run

DCGM = "nvcr.io/nvidia/k8s/dcgm-exporter:3.3.5-3.4.0-ubuntu22.04"
POLICY_OWNER = OwnerReference("nvidia.com/v1", "ClusterPolicy", "cluster-policy", controller=True)


def _dcgm(namespace: str):  # type: ignore[no-untyped-def]
    return pod(
        container("nvidia-dcgm-exporter", image=DCGM, securityContext={"privileged": True}),
        kind="DaemonSet",
        name="nvidia-dcgm-exporter",
        namespace=namespace,
        labels={"app": "nvidia-dcgm-exporter"},
        runtimeClassName="nvidia",
        serviceAccountName="nvidia-dcgm-exporter",
    )


def test_operator_component_in_its_namespace_is_exempt() -> None:
    findings, exempt = run(_dcgm("gpu-operator"), operator_node("25.3.4"))
    assert findings == []
    (entry,) = exempt
    assert entry.container == "nvidia-dcgm-exporter"
    assert entry.rule_ids == ("GG104",)
    assert "GPU Operator component" in entry.reason and "app=nvidia-dcgm-exporter" in entry.reason
    assert (entry.resource.kind, entry.resource.name) == ("DaemonSet", "nvidia-dcgm-exporter")


def test_same_component_elsewhere_is_flagged_with_a_hint() -> None:
    findings, exempt = run(_dcgm("monitoring"), operator_node("25.3.4"))
    assert exempt == []
    assert ids(findings) == {"GG104", "GG105"}
    assert all("looks like a GPU Operator component" in f.message for f in findings)


def test_validator_owned_by_cluster_policy_with_nri_annotation() -> None:
    p = pod(
        container("cuda-validation", image="nvcr.io/nvidia/cloud-native/gpu-operator-validator:v26.7.0",
                  securityContext={"privileged": True}),
        namespace="gpu-operator",
        name="nvidia-cuda-validator-abcde",
        annotations={"nvidia.cdi.k8s.io/container.cuda-validation": "management.nvidia.com/gpu=all"},
        serviceAccountName="nvidia-operator-validator",
    )  # fmt: skip
    p = dataclasses.replace(p, owner_references=(POLICY_OWNER,))
    assert component_evidence(p) == "owned by ClusterPolicy cluster-policy"
    findings, exempt = run(p, operator_node("26.7.0", {"cdi": {"enabled": True, "nriPluginEnabled": True}}))
    assert findings == []
    assert [e.rule_ids for e in exempt] == [("GG104",)]
    assert "owned by ClusterPolicy cluster-policy" in exempt[0].reason


def test_operator_deployment_is_not_exempt() -> None:
    """The operator itself and NFD need no GPU: flag them if they get any."""
    p = pod(container("gpu-operator", image=CUDA), kind="Deployment", name="gpu-operator", namespace="gpu-operator",
            labels={"app": "gpu-operator"}, serviceAccountName="gpu-operator")  # fmt: skip
    findings, exempt = run(p, operator_node("25.3.4"))
    assert ids(findings) == {"GG101"} and exempt == []


def test_allow_list_exempts_with_its_reason() -> None:
    entry = {"reason": "cluster DCGM exporter", "namespace": "monitoring", "serviceAccount": "nvidia-dcgm-exporter"}
    settings = load_settings({"exempt": [entry]})
    findings, exempt = run(_dcgm("monitoring"), operator_node("25.3.4"), settings=settings)
    assert findings == []
    assert {(e.container, e.rule_ids) for e in exempt} == {(None, ("GG105",)), ("nvidia-dcgm-exporter", ("GG104",))}
    assert all(e.reason == "allow-listed: cluster DCGM exporter" for e in exempt)


def test_trusted_namespaces_are_configurable() -> None:
    settings = load_settings({"trustedNamespaces": ["nvidia"]})
    findings, exempt = run(_dcgm("nvidia"), operator_node("25.3.4"), settings=settings)
    assert findings == [] and len(exempt) == 1
