"""Pods remember the object that carried them: what findings name and exemptions read."""

from __future__ import annotations

import pytest

from gpuguard.model.errors import InputError
from gpuguard.model.pod import OwnerReference
from gpuguard.sources.kubernetes import pods_from_object

DAEMONSET = {
    "apiVersion": "apps/v1",
    "kind": "DaemonSet",
    "metadata": {
        "name": "nvidia-dcgm-exporter",
        "namespace": "gpu-operator",
        "labels": {"app": "nvidia-dcgm-exporter"},
        "annotations": {"gpuguard.io/ignore": "GG101: scrapes every GPU"},
        "ownerReferences": [
            {"apiVersion": "nvidia.com/v1", "kind": "ClusterPolicy", "name": "cluster-policy", "controller": True}
        ],
    },
    "spec": {"template": {"metadata": {"labels": {"app": "x"}}, "spec": {
        "containers": [{"name": "exporter", "image": "dcgm-exporter"}],
        "resourceClaims": [{"name": "gpu", "resourceClaimTemplateName": "one-gpu"}],
    }}},
}


def test_the_carrying_object_is_kept() -> None:
    (pod,) = pods_from_object(DAEMONSET, "ds.yaml#0")
    assert pod.workload_api_version == "apps/v1"
    assert pod.workload_kind == "DaemonSet"
    assert pod.workload_name == "nvidia-dcgm-exporter"
    assert pod.workload_namespace == "gpu-operator"
    assert pod.workload_labels == {"app": "nvidia-dcgm-exporter"}
    assert pod.labels == {"app": "x"}
    assert pod.workload_annotations == {"gpuguard.io/ignore": "GG101: scrapes every GPU"}
    assert pod.owner_references == (OwnerReference("nvidia.com/v1", "ClusterPolicy", "cluster-policy", True),)
    assert pod.resource_claims == ("gpu",)


def test_a_missing_namespace_stays_unknown_on_the_object() -> None:
    obj = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": {"containers": [{"name": "c"}]}}
    (pod,) = pods_from_object(obj, "p.yaml#0")
    assert pod.namespace == "default"
    assert pod.workload_namespace is None


def test_owner_references_of_the_wrong_type_name_the_field() -> None:
    obj = {**DAEMONSET, "metadata": {**DAEMONSET["metadata"], "ownerReferences": [{"name": 3}]}}
    with pytest.raises(InputError, match=r"metadata\.ownerReferences\[0\]\.name"):
        pods_from_object(obj, "ds.yaml#0")
