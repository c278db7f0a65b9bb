"""The shared admission case table: one behaviour, four engines.

Each ``Case`` is a realistic Pod as the API server hands it to admission
(quantities serialised as strings, ``metadata.namespace`` filled in) and the
verdict under the default ``AdmissionConfig``: ``"allow"``, ``"patch"``
(allowed, and GG101's mutation sets ``NVIDIA_VISIBLE_DEVICES=void``),
``("deny", "GG1xx")`` or ``("warn", "GG1xx")`` (allowed with a warning; GG104 is
``warn`` by default). A denied or warned pod may be patched too; the verdict
names what the validation decides. The webhook tests and every policy export's
tests read this table.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

Verdict = str | tuple[str, str]

TENANT = "ml-team"
OPERATOR = "gpu-operator"
CUDA = "nvcr.io/nvidia/cuda:12.4.1-base-ubuntu22.04"
PYTORCH = "nvcr.io/nvidia/pytorch:24.05-py3"
NVD = "NVIDIA_VISIBLE_DEVICES"


@dataclass(frozen=True)
class Case:
    """A pod, where it is admitted, and the verdict every engine must give (or list as unexpressed)."""

    name: str
    pod: dict[str, Any]
    namespace: str
    expected: Verdict
    note: str
    subresource: str = ""  # "ephemeralcontainers": an UPDATE of that subresource (kubectl debug)
    old_pod: dict[str, Any] | None = field(default=None, compare=False)

    @property
    def rule(self) -> str | None:
        return self.expected[1] if isinstance(self.expected, tuple) else None


def pod(
    name: str,
    containers: list[dict[str, Any]],
    namespace: str = TENANT,
    *,
    init: list[dict[str, Any]] | None = None,
    ephemeral: list[dict[str, Any]] | None = None,
    volumes: list[dict[str, Any]] | None = None,
    labels: dict[str, str] | None = None,
    annotations: dict[str, str] | None = None,
    **spec: Any,
) -> dict[str, Any]:
    """A Pod manifest as admission sees it."""
    meta: dict[str, Any] = {"name": name, "namespace": namespace, "labels": labels or {"app": name}}
    if annotations:
        meta["annotations"] = annotations
    body: dict[str, Any] = {"restartPolicy": "Always", **spec, "containers": containers}
    if init:
        body["initContainers"] = init
    if ephemeral:
        body["ephemeralContainers"] = ephemeral
    if volumes:
        body["volumes"] = volumes
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": body}


def container(
    name: str, image: str, *, gpus: int = 0, resource: str = "nvidia.com/gpu", **fields: Any
) -> dict[str, Any]:
    c: dict[str, Any] = {"name": name, "image": image, **fields}
    if gpus:
        c["resources"] = {"limits": {resource: str(gpus)}, "requests": {resource: str(gpus)}}
    return c


def host_path(name: str, path: str, kind: str = "") -> dict[str, Any]:
    hp: dict[str, Any] = {"path": path}
    if kind:
        hp["type"] = kind
    return {"name": name, "hostPath": hp}


def _mount(name: str, at: str, **extra: Any) -> dict[str, Any]:
    return {"name": name, "mountPath": at, **extra}


_DEBUG = {
    "name": "debugger",
    "image": "busybox:1.36",
    "command": ["sh"],
    "stdin": True,
    "tty": True,
    "targetContainerName": "app",
    "securityContext": {"privileged": True},
}

_OPERATOR_DS_POD = pod(
    "nvidia-device-plugin-daemonset-x7k2p",
    [
        container(
            "nvidia-device-plugin",
            "nvcr.io/nvidia/k8s-device-plugin:v0.17.1",
            env=[{"name": NVD, "value": "all"}, {"name": "DEVICE_LIST_STRATEGY", "value": "envvar"}],
            securityContext={"privileged": True},
            volumeMounts=[_mount("device-plugin", "/var/lib/kubelet/device-plugins"), _mount("dev", "/dev")],
        )
    ],
    OPERATOR,
    labels={"app": "nvidia-device-plugin-daemonset", "controller-revision-hash": "6d9f8c7b5"},
    volumes=[host_path("device-plugin", "/var/lib/kubelet/device-plugins"), host_path("dev", "/dev")],
    serviceAccountName="nvidia-device-plugin",
    runtimeClassName="nvidia",
    priorityClassName="system-node-critical",
)
_OPERATOR_DS_POD["metadata"]["ownerReferences"] = [
    {
        "apiVersion": "apps/v1",
        "kind": "DaemonSet",
        "name": "nvidia-device-plugin-daemonset",
        "uid": "0f1e",
        "controller": True,
        "blockOwnerDeletion": True,
    }
]

_APP = container("app", "python:3.12-slim", env=[{"name": NVD, "value": "void"}])
_EPHEMERAL_OLD = pod("debug-target", [_APP])

CASES: list[Case] = [
    Case(
        "cuda-image-no-request",
        pod("notebook", [container("jupyter", CUDA, command=["jupyter", "lab"])]),
        TENANT,
        "patch",
        "CUDA images set NVIDIA_VISIBLE_DEVICES=all: a container without a GPU request gets void (GG101 by mutation)",
    ),
    Case(
        "plain-image-no-request",
        pod("web", [container("nginx", "nginx:1.27", ports=[{"containerPort": 80}])]),
        TENANT,
        "patch",
        "every container that requests no GPU is patched, whatever its image",
    ),
    Case(
        "already-void",
        pod("web-void", [container("nginx", "nginx:1.27", env=[{"name": NVD, "value": "void"}])]),
        TENANT,
        "allow",
        "NVIDIA_VISIBLE_DEVICES=void already: nothing to patch (the mutation is idempotent)",
    ),
    Case(
        "gpu-plain-limit",
        pod("train", [container("trainer", PYTORCH, gpus=1, command=["python", "train.py"])]),
        TENANT,
        "allow",
        "a GPU request and no env override: the device plugin's allocation decides",
    ),
    Case(
        "mig-request",
        pod("infer-mig", [container("server", CUDA, gpus=1, resource="nvidia.com/mig-1g.10gb")]),
        TENANT,
        "allow",
        "MIG devices are nvidia.com/* requests too",
    ),
    Case(
        "gpu-env-all",
        pod("train-greedy", [container("trainer", PYTORCH, gpus=1, env=[{"name": NVD, "value": "all"}])]),
        TENANT,
        ("deny", "GG102"),
        "the pod's own NVIDIA_VISIBLE_DEVICES=all overrides the device plugin's list (envvar strategy)",
    ),
    Case(
        "gpu-privileged",
        pod("train-priv", [container("trainer", PYTORCH, gpus=1, securityContext={"privileged": True})]),
        TENANT,
        ("deny", "GG102"),
        "a privileged container that requests one GPU gets every device node",
    ),
    Case(
        "hostpath-nvidia0",
        pod(
            "sneaky",
            [container("app", CUDA, volumeMounts=[_mount("gpu0", "/dev/nvidia0")])],
            volumes=[host_path("gpu0", "/dev/nvidia0", "CharDevice")],
        ),
        TENANT,
        ("deny", "GG103"),
        "hostPath /dev/nvidia0 bypasses the device plugin and the toolkit",
    ),
    Case(
        "hostpath-dev",
        pod(
            "node-tool",
            [container("tool", "alpine:3.20", volumeMounts=[_mount("dev", "/host/dev", readOnly=True)])],
            volumes=[host_path("dev", "/dev", "Directory")],
        ),
        TENANT,
        ("deny", "GG103"),
        "hostPath /dev holds every GPU device node",
    ),
    Case(
        "hostpath-root-subpath",
        pod(
            "subpath",
            [container("tool", "alpine:3.20", volumeMounts=[_mount("root", "/gpu", subPath="dev/nvidiactl")])],
            volumes=[host_path("root", "/")],
        ),
        TENANT,
        ("deny", "GG103"),
        "hostPath / with subPath dev/nvidiactl reaches the device node all the same",
    ),
    Case(
        "init-container-hostpath",
        pod(
            "init-probe",
            [container("app", "python:3.12-slim")],
            init=[container("probe", "busybox:1.36", volumeMounts=[_mount("ctl", "/dev/nvidiactl")])],
            volumes=[host_path("ctl", "/dev/nvidiactl", "CharDevice")],
        ),
        TENANT,
        ("deny", "GG103"),
        "init containers are judged like the others",
    ),
    Case(
        "privileged-no-gpu",
        pod("sysadmin", [container("agent", "alpine:3.20", securityContext={"privileged": True})]),
        TENANT,
        ("warn", "GG104"),
        "privileged without a GPU request: the toolkit honours any device request from it (warn by default)",
    ),
    Case(
        "sys-admin-no-gpu",
        pod("fuse", [container("fuse", "alpine:3.20", securityContext={"capabilities": {"add": ["SYS_ADMIN"]}})]),
        TENANT,
        ("warn", "GG104"),
        "CAP_SYS_ADMIN is what the toolkit calls privileged",
    ),
    Case(
        "runtimeclass-tenant",
        pod("train-rc", [container("trainer", PYTORCH, gpus=1)], runtimeClassName="nvidia"),
        TENANT,
        ("deny", "GG105"),
        "runtimeClassName nvidia outside the trusted namespaces (as NVIDIA's CDI docs still suggest)",
    ),
    Case(
        "runtimeclass-gpu-operator",
        pod("validator-job", [container("cuda-check", CUDA, gpus=1)], OPERATOR, runtimeClassName="nvidia"),
        OPERATOR,
        "allow",
        "runtimeClassName nvidia in the GPU Operator's namespace is trusted",
    ),
    Case(
        "cdi-annotation",
        pod("cdi", [container("app", "python:3.12-slim")], annotations={"cdi.k8s.io/gpus": "nvidia.com/gpu=all"}),
        TENANT,
        ("deny", "GG106"),
        "a CDI device annotation asks the runtime for every GPU directly",
    ),
    Case(
        "nri-annotation",
        pod(
            "nri",
            [container("app", "python:3.12-slim")],
            annotations={"nvidia.cdi.k8s.io/container.app": "management.nvidia.com/gpu=all"},
        ),
        TENANT,
        ("deny", "GG106"),
        "the toolkit NRI plugin's per-container annotation",
    ),
    Case(
        "forged-volume-mount",
        pod(
            "forged",
            [
                container(
                    "app", "python:3.12-slim", volumeMounts=[_mount("req", "/var/run/nvidia-container-devices/all")]
                )
            ],
            volumes=[host_path("req", "/dev/null", "CharDevice")],
        ),
        TENANT,
        ("deny", "GG107"),
        "hostPath /dev/null under /var/run/nvidia-container-devices forges a device-plugin request",
    ),
    Case(
        "envfrom-configmap",
        pod(
            "settings",
            [container("app", "python:3.12-slim", envFrom=[{"configMapRef": {"name": "app-settings"}}])],
        ),
        TENANT,
        "patch",
        "envFrom may set NVIDIA_VISIBLE_DEVICES; the explicit void entry overrides it (GG108 is warn, not needed here)",
    ),
    Case(
        "ephemeral-debug-cuda",
        pod("debug-target", [_APP], ephemeral=[{**_DEBUG, "image": CUDA, "securityContext": {}}]),
        TENANT,
        "patch",
        "kubectl debug with a CUDA image: the new ephemeral container is patched to void",
        subresource="ephemeralcontainers",
        old_pod=_EPHEMERAL_OLD,
    ),
    Case(
        "ephemeral-debug-privileged",
        pod("debug-target", [_APP], ephemeral=[{**_DEBUG, "env": [{"name": NVD, "value": "void"}]}]),
        TENANT,
        ("warn", "GG104"),
        "a privileged ephemeral container can never request GPUs",
        subresource="ephemeralcontainers",
        old_pod=_EPHEMERAL_OLD,
    ),
    Case(
        "gpu-operator-daemonset-pod",
        _OPERATOR_DS_POD,
        OPERATOR,
        "allow",
        "the device plugin's own pod: privileged, hostPath /dev, NVIDIA_VISIBLE_DEVICES=all, runtimeClassName nvidia; "
        "a GPU Operator component in its namespace is exempt",
    ),
    Case(
        "operator-lookalike-in-tenant",
        pod(
            "nvidia-device-plugin-daemonset-fake",
            [container("plugin", "alpine:3.20", volumeMounts=[_mount("dev", "/dev")])],
            labels={"app": "nvidia-device-plugin-daemonset"},
            volumes=[host_path("dev", "/dev")],
        ),
        TENANT,
        ("deny", "GG103"),
        "an operand's labels copied into a tenant namespace exempt nothing",
    ),
]


def admission_request(case: Case, *, uid: str = "", dry_run: bool = False) -> dict[str, Any]:
    """The ``admission.k8s.io/v1`` AdmissionRequest the API server would send for ``case``."""
    update = bool(case.subresource)
    request: dict[str, Any] = {
        "uid": uid or f"uid-{case.name}",
        "kind": {"group": "", "version": "v1", "kind": "Pod"},
        "resource": {"group": "", "version": "v1", "resource": "pods"},
        "requestKind": {"group": "", "version": "v1", "kind": "Pod"},
        "requestResource": {"group": "", "version": "v1", "resource": "pods"},
        "name": case.pod["metadata"]["name"],
        "namespace": case.namespace,
        "operation": "UPDATE" if update else "CREATE",
        "userInfo": {"username": "system:serviceaccount:kube-system:replicaset-controller", "groups": []},
        "object": copy.deepcopy(case.pod),
        "oldObject": copy.deepcopy(case.old_pod) if update else None,
        "dryRun": dry_run,
        "options": {"apiVersion": "meta.k8s.io/v1", "kind": "UpdateOptions" if update else "CreateOptions"},
    }
    if case.subresource:
        request["subResource"] = case.subresource
        request["requestSubResource"] = case.subresource
    return request


def admission_review(case: Case, *, uid: str = "", dry_run: bool = False) -> dict[str, Any]:
    """``case`` wrapped into an AdmissionReview request body."""
    return {
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": admission_request(case, uid=uid, dry_run=dry_run),
    }
