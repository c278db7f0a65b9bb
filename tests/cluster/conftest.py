"""Fixtures: a realistic GPU cluster snapshot served by the API server stand-in (``apiserver.py``).

The cluster: one GPU Operator 25.3.4 (ClusterPolicy ``cluster-policy``,
hardened with ``ACCEPT_NVIDIA_VISIBLE_DEVICES_ENVVAR_WHEN_UNPRIVILEGED=false``
in ``spec.toolkit.env``, which the operator rendered into the
``nvidia-container-toolkit-daemonset``), 2 CPU nodes and 3 GPU nodes:

* ``gpu-a100-1``, ``gpu-a100-2``: A100 pool; the operator's toolkit DaemonSet runs there;
* ``gpu-h100-1``: an H100 node whose OS ships its own NVIDIA Container Toolkit, so it is
  labelled ``nvidia.com/gpu.deploy.container-toolkit=false`` and the operator's toolkit
  DaemonSet (node selector ``nvidia.com/gpu.deploy.container-toolkit=true``) does not run
  there: the node's toolkit is not configured by the ClusterPolicy at all.

That is how the same operator leaves nodes on different settings.  Labels are those
GPU Feature Discovery and the operator set (``nvidia.com/gpu.present``, ``gpu.count``,
``gpu.product``, ``cuda.driver.*``, ``gpu.deploy.*``).

About 200 pods: system and web pods on the CPU nodes, the operator's own pods,
GPU training jobs, and exposed notebooks (CUDA images with
``NVIDIA_VISIBLE_DEVICES=all``, no GPU request) on both kinds of GPU node, one
of them pending.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.cluster.apiserver import ApiServer, Snapshot, serve

OPERATOR_NS = "gpu-operator"
A100 = ("gpu-a100-1", "gpu-a100-2")
H100 = "gpu-h100-1"
CPU = ("cpu-1", "cpu-2")
EXPOSED_ON = {"jupyter-alice": "gpu-a100-1", "jupyter-bob": H100, "jupyter-carol": None}  # None: Pending

_uid = 0


def _meta(name: str, namespace: str | None = None, **extra: Any) -> dict[str, Any]:
    global _uid  # noqa: PLW0603 - a counter for stable fake UIDs
    _uid += 1
    meta: dict[str, Any] = {"name": name, "uid": f"6f1c2a4e-0000-4000-8000-{_uid:012d}",
                            "resourceVersion": str(700000 + _uid), "creationTimestamp": "2026-11-20T09:12:44Z"}
    if namespace is not None:
        meta["namespace"] = namespace
    meta.update(extra)
    return meta


def _node(name: str, gpus: int = 0, product: str = "", host_toolkit: bool = False) -> dict[str, Any]:
    labels = {"kubernetes.io/hostname": name, "kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64",
              "node.kubernetes.io/instance-type": "p4d.24xlarge" if "a100" in name else "m6i.4xlarge"}
    allocatable = {"cpu": "95690m", "memory": "1135Gi", "pods": "110", "ephemeral-storage": "900Gi"}
    if gpus:
        labels.update({
            "feature.node.kubernetes.io/pci-10de.present": "true",
            "nvidia.com/gpu.present": "true",
            "nvidia.com/gpu.count": str(gpus),
            "nvidia.com/gpu.product": product,
            "nvidia.com/gpu.memory": "81920",
            "nvidia.com/gpu.family": "ampere" if "A100" in product else "hopper",
            "nvidia.com/gpu.machine": "p4d.24xlarge" if "A100" in product else "DGX-H100",
            "nvidia.com/cuda.driver.major": "550", "nvidia.com/cuda.driver.minor": "127",
            "nvidia.com/cuda.driver.rev": "05",
            "nvidia.com/cuda.runtime.major": "12", "nvidia.com/cuda.runtime.minor": "4",
            "nvidia.com/mig.capable": "true", "nvidia.com/mig.strategy": "single",
            "nvidia.com/gpu.deploy.driver": "true", "nvidia.com/gpu.deploy.gpu-feature-discovery": "true",
            "nvidia.com/gpu.deploy.device-plugin": "true", "nvidia.com/gpu.deploy.dcgm-exporter": "true",
            "nvidia.com/gpu.deploy.operator-validator": "true",
            "nvidia.com/gpu.deploy.container-toolkit": "false" if host_toolkit else "true",
        })
        allocatable["nvidia.com/gpu"] = str(gpus)
    return {
        "metadata": _meta(name, labels=labels, annotations={"nfd.node.kubernetes.io/feature-labels": "pci-10de.present"}
                          if gpus else {}),
        "spec": {"podCIDR": "10.244.1.0/24", "providerID": f"aws:///us-east-1a/i-{abs(hash(name)) % 10**12:012d}"},
        "status": {"allocatable": allocatable, "capacity": dict(allocatable),
                   "nodeInfo": {"containerRuntimeVersion": "containerd://1.7.22", "kubeletVersion": "v1.31.2",
                                "osImage": "Ubuntu 22.04.5 LTS", "architecture": "amd64"},
                   "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady"}]},
    }


def _pod(name: str, namespace: str, node: str | None, containers: list[dict[str, Any]], *,
         owner: tuple[str, str] | None = None, sa: str = "default", **spec: Any) -> dict[str, Any]:
    extra: dict[str, Any] = {"labels": {"app": name.rsplit("-", 1)[0]}}
    if owner is not None:
        extra["ownerReferences"] = [{"apiVersion": "apps/v1", "kind": owner[0], "name": owner[1],
                                     "uid": "0a1b2c3d-0000-4000-8000-000000000001", "controller": True,
                                     "blockOwnerDeletion": True}]
    body: dict[str, Any] = {"containers": containers, "serviceAccountName": sa, "restartPolicy": "Always",
                            "dnsPolicy": "ClusterFirst", "schedulerName": "default-scheduler",
                            "terminationGracePeriodSeconds": 30, **spec}
    if node is not None:
        body["nodeName"] = node
    status: dict[str, Any] = {"phase": "Running" if node else "Pending", "qosClass": "Burstable"}
    if node is None:
        status["conditions"] = [{"type": "PodScheduled", "status": "False", "reason": "Unschedulable",
                                 "message": "0/5 nodes are available: 3 Insufficient cpu."}]
    return {"metadata": _meta(name, namespace, **extra), "spec": body, "status": status}


def _c(name: str, image: str, env: list[dict[str, Any]] | None = None, gpus: int = 0, **extra: Any) -> dict[str, Any]:
    c: dict[str, Any] = {"name": name, "image": image, "imagePullPolicy": "IfNotPresent",
                         "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}},
                         "terminationMessagePath": "/dev/termination-log", "terminationMessagePolicy": "File"}
    if gpus:
        c["resources"] = {"limits": {"nvidia.com/gpu": str(gpus)}, "requests": {"nvidia.com/gpu": str(gpus)}}
    if env:
        c["env"] = env
    c.update(extra)
    return c


TOOLKIT_IMAGE = "nvcr.io/nvidia/k8s/container-toolkit:v1.17.8-ubuntu20.04"
TOOLKIT_ENV = [  # as the operator 25.3.4 renders it from the ClusterPolicy below
    {"name": "ROOT", "value": "/usr/local/nvidia"},
    {"name": "NVIDIA_CONTAINER_RUNTIME_MODES_CDI_DEFAULT_KIND", "value": "management.nvidia.com/gpu"},
    {"name": "NVIDIA_VISIBLE_DEVICES", "value": "void"},
    {"name": "TOOLKIT_PID_FILE", "value": "/run/nvidia/toolkit/toolkit.pid"},
    {"name": "ACCEPT_NVIDIA_VISIBLE_DEVICES_ENVVAR_WHEN_UNPRIVILEGED", "value": "false"},
    {"name": "RUNTIME", "value": "containerd"},
    {"name": "CONTAINERD_RUNTIME_CLASS", "value": "nvidia"},
    {"name": "RUNTIME_CONFIG", "value": "/runtime/config-dir/config.toml"},
    {"name": "CONTAINERD_CONFIG", "value": "/runtime/config-dir/config.toml"},
    {"name": "RUNTIME_SOCKET", "value": "/runtime/sock-dir/containerd.sock"},
    {"name": "CONTAINERD_SOCKET", "value": "/runtime/sock-dir/containerd.sock"},
    {"name": "NODE_NAME", "valueFrom": {"fieldRef": {"apiVersion": "v1", "fieldPath": "spec.nodeName"}}},
]
DEVICE_PLUGIN_ENV = [
    {"name": "PASS_DEVICE_SPECS", "value": "true"},
    {"name": "FAIL_ON_INIT_ERROR", "value": "true"},
    {"name": "DEVICE_LIST_STRATEGY", "value": "envvar"},
    {"name": "DEVICE_ID_STRATEGY", "value": "uuid"},
    {"name": "NVIDIA_VISIBLE_DEVICES", "value": "all"},
    {"name": "NVIDIA_DRIVER_CAPABILITIES", "value": "all"},
    {"name": "MPS_ROOT", "value": "/run/nvidia/mps"},
    {"name": "MIG_STRATEGY", "value": "single"},
    {"name": "NODE_NAME", "valueFrom": {"fieldRef": {"apiVersion": "v1", "fieldPath": "spec.nodeName"}}},
]


def _daemonset(name: str, container: str, image: str, env: list[dict[str, Any]], component: str) -> dict[str, Any]:
    labels = {"app": name, "app.kubernetes.io/managed-by": "gpu-operator", "helm.sh/chart": "gpu-operator-v25.3.4"}
    return {
        "metadata": _meta(name, OPERATOR_NS, labels=labels, generation=3,
                          annotations={"deprecated.daemonset.template.generation": "3",
                                       "nvidia.com/last-applied-hash": "1876345099"},
                          ownerReferences=[{"apiVersion": "nvidia.com/v1", "kind": "ClusterPolicy",
                                            "name": "cluster-policy", "uid": "c1c1c1c1-0000-4000-8000-000000000001",
                                            "controller": True, "blockOwnerDeletion": True}]),
        "spec": {"selector": {"matchLabels": {"app": name}},
                 "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "1"}},
                 "template": {"metadata": {"labels": {"app": name}},
                              "spec": {"nodeSelector": {f"nvidia.com/gpu.deploy.{component}": "true"},
                                       "priorityClassName": "system-node-critical",
                                       "serviceAccountName": name.replace("-daemonset", ""),
                                       "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists",
                                                        "effect": "NoSchedule"}],
                                       "containers": [{"name": container, "image": image, "env": env,
                                                       "securityContext": {"privileged": True}}]}}},
        "status": {"currentNumberScheduled": 2, "desiredNumberScheduled": 2, "numberReady": 2},
    }


def cluster_policy() -> dict[str, Any]:
    return {
        "metadata": _meta("cluster-policy", labels={"app.kubernetes.io/component": "gpu-operator",
                                                    "app.kubernetes.io/managed-by": "Helm",
                                                    "helm.sh/chart": "gpu-operator-v25.3.4"},
                          annotations={"meta.helm.sh/release-name": "gpu-operator",
                                       "meta.helm.sh/release-namespace": OPERATOR_NS}, generation=4),
        "spec": {
            "operator": {"defaultRuntime": "containerd", "runtimeClass": "nvidia"},
            "driver": {"enabled": True, "repository": "nvcr.io/nvidia", "image": "driver", "version": "550.127.05"},
            "toolkit": {"enabled": True, "repository": "nvcr.io/nvidia/k8s", "image": "container-toolkit",
                        "version": "v1.17.8-ubuntu20.04", "installDir": "/usr/local/nvidia",
                        "env": [{"name": "ACCEPT_NVIDIA_VISIBLE_DEVICES_ENVVAR_WHEN_UNPRIVILEGED", "value": "false"}]},
            "devicePlugin": {"enabled": True, "repository": "nvcr.io/nvidia", "image": "k8s-device-plugin",
                             "version": "v0.17.4", "env": []},
            "cdi": {"enabled": False, "default": False},
            "gfd": {"enabled": True}, "dcgmExporter": {"enabled": True}, "migManager": {"enabled": True},
        },
        "status": {"state": "ready", "namespace": OPERATOR_NS},
    }


def realistic_cluster() -> Snapshot:
    """The snapshot described in the module docstring (about 200 pods)."""
    nodes = [_node(n) for n in CPU] + [_node(n, 8, "NVIDIA-A100-SXM4-80GB") for n in A100]
    nodes.append(_node(H100, 8, "NVIDIA-H100-80GB-HBM3", host_toolkit=True))
    gpu_nodes = [*A100, H100]
    pods: list[dict[str, Any]] = []
    for i in range(12):
        pods.append(_pod(f"coredns-7db6d8ff4d-{i:05x}", "kube-system", CPU[i % 2],
                         [_c("coredns", "registry.k8s.io/coredns/coredns:v1.11.3")], owner=("ReplicaSet", "coredns")))
    for node in [*CPU, *gpu_nodes]:
        pods.append(_pod(f"kube-proxy-{node}", "kube-system", node,
                         [_c("kube-proxy", "registry.k8s.io/kube-proxy:v1.31.2",
                             securityContext={"privileged": True})], owner=("DaemonSet", "kube-proxy")))
    for n, node in enumerate(gpu_nodes):  # the operator's own pods
        sel_toolkit = node != H100
        if sel_toolkit:
            pods.append(_pod(f"nvidia-container-toolkit-daemonset-{n}x7k2", OPERATOR_NS, node,
                             [_c("nvidia-container-toolkit-ctr", TOOLKIT_IMAGE, TOOLKIT_ENV,
                                 securityContext={"privileged": True})],
                             owner=("DaemonSet", "nvidia-container-toolkit-daemonset"),
                             sa="nvidia-container-toolkit"))
        pods.append(_pod(f"nvidia-device-plugin-daemonset-{n}q9zp", OPERATOR_NS, node,
                         [_c("nvidia-device-plugin", "nvcr.io/nvidia/k8s-device-plugin:v0.17.4", DEVICE_PLUGIN_ENV,
                             securityContext={"privileged": True})],
                         owner=("DaemonSet", "nvidia-device-plugin-daemonset"), sa="nvidia-device-plugin"))
    for i in range(162):  # the web tier: CPU only
        pods.append(_pod(f"shop-frontend-5d8f7c9b6-{i:05x}", "shop", CPU[i % 2],
                         [_c("frontend", "registry.example.com/shop/frontend:2.14.1",
                             [{"name": "PORT", "value": "8080"}])], owner=("ReplicaSet", "shop-frontend-5d8f7c9b6")))
    for i in range(12):  # training jobs that ask for GPUs
        pods.append(_pod(f"train-llm-{i}", "ml-train", gpu_nodes[i % 3],
                         [_c("trainer", "registry.example.com/ml/trainer:1.4", gpus=1 + i % 2)],
                         owner=("Job", f"train-llm-{i}")))
    for name, node in EXPOSED_ON.items():  # notebooks: a CUDA image, NVIDIA_VISIBLE_DEVICES=all, no GPU request
        pods.append(_pod(name, "ml-notebooks", node,
                         [_c("notebook", "registry.example.com/ml/notebook:3.1",
                             [{"name": "NVIDIA_VISIBLE_DEVICES", "value": "all"}])],
                         owner=("StatefulSet", name)))
    pods.append(_pod("batch-report-0", "ml-notebooks", H100,  # the same, through a ConfigMap key
                     [_c("report", "registry.example.com/ml/report:0.9",
                         [{"name": "NVIDIA_VISIBLE_DEVICES",
                           "valueFrom": {"configMapKeyRef": {"name": "gpu-env", "key": "devices"}}}])]))
    config_maps = [
        {"metadata": _meta("gpu-env", "ml-notebooks"), "data": {"devices": "all"}},
        {"metadata": _meta("kube-root-ca.crt", "ml-notebooks"), "data": {"ca.crt": "-----BEGIN CERTIFICATE-----"}},
        {"metadata": _meta("device-plugin-config", OPERATOR_NS),
         "data": {"default": "version: v1\nflags:\n  migStrategy: single\n"}},
    ]
    return Snapshot({
        "nodes": nodes,
        "pods": pods,
        "configmaps": config_maps,
        "clusterpolicies": [cluster_policy()],
        "daemonsets": [
            _daemonset("nvidia-container-toolkit-daemonset", "nvidia-container-toolkit-ctr",
                       "nvcr.io/nvidia/k8s/container-toolkit:v1.17.8-ubuntu20.04", TOOLKIT_ENV, "container-toolkit"),
            _daemonset("nvidia-device-plugin-daemonset", "nvidia-device-plugin",
                       "nvcr.io/nvidia/k8s-device-plugin:v0.17.4", DEVICE_PLUGIN_ENV, "device-plugin"),
            _daemonset("kube-proxy", "kube-proxy", "registry.k8s.io/kube-proxy:v1.31.2", [], "none")
            | {"metadata": _meta("kube-proxy", "kube-system")},
        ],
        "runtimeclasses": [{"metadata": _meta("nvidia"), "handler": "nvidia"}],
    })


@pytest.fixture
def snapshot() -> Snapshot:
    return copy.deepcopy(realistic_cluster())


@pytest.fixture
def apiserver(snapshot: Snapshot, tmp_path: Path) -> Iterator[ApiServer]:
    with serve(snapshot, tmp_path) as server:
        yield server


@pytest.fixture
def kubeconfig(apiserver: ApiServer, tmp_path: Path) -> Path:
    return apiserver.kubeconfig(tmp_path / "kubeconfig")
