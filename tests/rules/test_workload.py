"""GG101-GG108, one row per case: a positive and its safe twin, expected outcomes typed from the research notes."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import pytest

from gpuguard.model.node import NodeProfile
from gpuguard.model.pod import Pod
from tests.rules._build import (
    BUSYBOX,
    CUDA,
    GPUS,
    LEGACY_CUDA,
    NVD,
    container,
    env,
    gpu,
    hardened_legacy,
    ids,
    operator_node,
    pod,
    run,
)


def old() -> NodeProfile:
    """GPU Operator 25.3.4 chart defaults: CDI off, nvidia the default runtime, envvar, env accepted (row A)."""
    return operator_node("25.3.4")


def new() -> NodeProfile:
    """GPU Operator 26.7.0 chart defaults: CDI on, runc default, nvidia* RuntimeClasses, env accepted (row D)."""
    return operator_node("26.7.0")


def nri() -> NodeProfile:
    """GPU Operator 26.7.0 with the toolkit's NRI plugin (row E): annotations are the path."""
    return operator_node("26.7.0", {"cdi": {"enabled": True, "nriPluginEnabled": True}})


def jit_cdi_1_18_1() -> NodeProfile:
    """GPU Operator 25.10.1 with CDI turned off: nvidia default, mode auto -> jit-cdi on toolkit 1.18.1."""
    return operator_node("25.10.1", {"cdi": {"enabled": False}})


def custom_class() -> NodeProfile:
    """25.3.4 with operator.runtimeClass renamed: the RuntimeClass fast-gpu points at the nvidia runtime."""
    return operator_node("25.3.4", {"operator": {"runtimeClass": "fast-gpu"}})


def with_gvisor() -> NodeProfile:
    node = new()
    return dataclasses.replace(node, runtime_classes={**node.runtime_classes, "gvisor": "runsc"})


DEV_VOLUME = [{"name": "dev", "hostPath": {"path": "/dev"}}]
NULL_VOLUME = [{"name": "null", "hostPath": {"path": "/dev/null"}}]
FORGED = [{"name": "null", "mountPath": "/var/run/nvidia-container-devices/all"}]
CLAIMS = [{"name": "gpu", "resourceClaimName": "one-gpu"}]
NRI_ANNOTATION = {"nvidia.cdi.k8s.io/container.c": "k8s.device-plugin.nvidia.com/gpu=GPU-0aaa"}
SECRET_ENV = [{"name": NVD, "valueFrom": {"secretKeyRef": {"name": "gpu-env", "key": "devices"}}}]
ENV_OBJECTS = {("team", "ConfigMap", "gpu-env"): {NVD: "all"}}

Row = tuple[str, Callable[[], Pod], Callable[[], NodeProfile], dict[str, Any], set[str]]
ROWS: list[Row] = [
    # GG101: no request, GPUs from env / envFrom / image env
    ("GG101 CUDA image env, no request", lambda: pod(container(image=CUDA)), old, {}, {"GG101"}),
    ("GG101 own env all", lambda: pod(container(env=env("all"))), old, {}, {"GG101"}),
    ("GG101 envFrom ConfigMap", lambda: pod(container(envFrom=[{"configMapRef": {"name": "gpu-env"}}])), old,
     {"objects": ENV_OBJECTS}, {"GG101"}),
    ("GG101 legacy CUDA image (unset means all)", lambda: pod(container(image=LEGACY_CUDA)), old, {}, {"GG101"}),
    ("GG101 CDI default, runtimeClass nvidia", lambda: pod(container(image=CUDA), runtimeClassName="nvidia"), new, {},
     {"GG101", "GG105"}),
    ("GG101 none means all on toolkit 1.18.1 jit-cdi", lambda: pod(container(env=env("none"))), jit_cdi_1_18_1, {},
     {"GG101"}),
    ("safe: none means libraries only on toolkit 1.17.8", lambda: pod(container(env=env("none"))), old, {}, set()),
    ("safe: CUDA image with void", lambda: pod(container(image=CUDA, env=env("void"))), old, {}, set()),
    ("safe: plain image", lambda: pod(container()), old, {}, set()),
    ("safe: CUDA image on CDI default, no runtimeClass", lambda: pod(container(image=CUDA)), new, {}, set()),
    ("safe: CUDA image on a hardened node", lambda: pod(container(image=CUDA)), hardened_legacy, {}, set()),
    # GG102: a request, widened
    ("GG102 request 1, env all", lambda: pod(container(image=CUDA, env=env("all"), resources=gpu(1))), old, {},
     {"GG102"}),
    ("GG102 privileged with a request", lambda: pod(container(resources=gpu(1), securityContext={"privileged": True})),
     old, {}, {"GG102"}),
    ("safe: plain GPU request", lambda: pod(container(image=CUDA, resources=gpu(1))), old, {}, set()),
    ("safe: plain GPU request on CDI default", lambda: pod(container(image=CUDA, resources=gpu(1))), new, {}, set()),
    ("safe: time-sliced replica request",
     lambda: pod(container(image=CUDA, resources={"limits": {"nvidia.com/gpu.shared": 1}})), old, {}, set()),
    ("safe: MIG device request",
     lambda: pod(container(image=CUDA, resources={"limits": {"nvidia.com/mig-1g.10gb": 1}})), old, {}, set()),
    ("safe: DRA claim is a request", lambda: pod(container(image=CUDA), resourceClaims=CLAIMS), old, {}, set()),
    # GG103: host device nodes
    ("GG103 hostPath /dev/nvidia0",
     lambda: pod(container(volumeMounts=[{"name": "d", "mountPath": "/dev/nvidia0"}]),
                 volumes=[{"name": "d", "hostPath": {"path": "/dev/nvidia0"}}]), old, {}, {"GG103"}),
    ("GG103 hostPath /dev", lambda: pod(container(volumeMounts=[{"name": "dev", "mountPath": "/host-dev"}]),
                                        volumes=DEV_VOLUME), old, {}, {"GG103"}),
    ("GG103 hostPath /dev with subPath dri",
     lambda: pod(container(volumeMounts=[{"name": "dev", "mountPath": "/dev/dri", "subPath": "dri"}]),
                 volumes=DEV_VOLUME), old, {}, {"GG103"}),
    ("safe: hostPath /var/log", lambda: pod(container(volumeMounts=[{"name": "l", "mountPath": "/logs"}]),
                                            volumes=[{"name": "l", "hostPath": {"path": "/var/log"}}]), old, {}, set()),
    ("safe: /dev volume declared, not mounted", lambda: pod(container(), volumes=DEV_VOLUME), old, {}, set()),
    # GG104: privileged / SYS_ADMIN without a request
    ("GG104 privileged, no request", lambda: pod(container(securityContext={"privileged": True})), old, {}, {"GG104"}),
    ("GG104 SYS_ADMIN beats the hardened gate",
     lambda: pod(container(image=CUDA, securityContext={"capabilities": {"add": ["SYS_ADMIN"]}})), hardened_legacy, {},
     {"GG101", "GG104"}),
    ("safe: NET_ADMIN", lambda: pod(container(securityContext={"capabilities": {"add": ["NET_ADMIN"]}})), old, {},
     set()),
    # GG105: NVIDIA runtime classes outside trusted namespaces
    ("GG105 runtimeClass nvidia, no GPU", lambda: pod(container(), runtimeClassName="nvidia"), new, {}, {"GG105"}),
    ("GG105 nvidia-legacy with a request",
     lambda: pod(container(image=CUDA, resources=gpu(1)), runtimeClassName="nvidia-legacy"), new, {}, {"GG105"}),
    ("GG105 renamed RuntimeClass to the nvidia runtime", lambda: pod(container(), runtimeClassName="fast-gpu"),
     custom_class, {}, {"GG105"}),
    ("safe: runtimeClass nvidia in the operator namespace",
     lambda: pod(container(), runtimeClassName="nvidia", namespace="gpu-operator"), new, {}, set()),
    ("safe: a non-NVIDIA runtime class", lambda: pod(container(), runtimeClassName="gvisor"), with_gvisor, {}, set()),
    # GG106: CDI / NRI annotations
    ("GG106 NRI annotation injects a GPU", lambda: pod(container(), annotations=NRI_ANNOTATION), nri, {}, {"GG106"}),
    ("GG106 cdi.k8s.io annotation", lambda: pod(container(), annotations={"cdi.k8s.io/x": "nvidia.com/gpu=all"}), old,
     {}, {"GG106"}),
    ("safe: NRI annotation in the operator namespace",
     lambda: pod(container(), annotations=NRI_ANNOTATION, namespace="gpu-operator"), nri, {}, set()),
    ("safe: unrelated annotation", lambda: pod(container(), annotations={"prometheus.io/scrape": "true"}), nri, {},
     set()),
    # GG107: forged volume-mount requests
    ("GG107 forged mount on a hardened node", lambda: pod(container(volumeMounts=FORGED), volumes=NULL_VOLUME),
     hardened_legacy, {}, {"GG107"}),
    ("GG107 forged mount on a default node", lambda: pod(container(volumeMounts=FORGED), volumes=NULL_VOLUME), old, {},
     {"GG107"}),
    ("safe: /dev/null mounted elsewhere",
     lambda: pod(container(volumeMounts=[{"name": "null", "mountPath": "/tmp/null"}]), volumes=NULL_VOLUME), old, {},
     set()),
    # GG108: undecidable
    ("GG108 NGC image not inspected", lambda: pod(container(image="nvcr.io/nvidia/pytorch:24.01-py3")), old, {},
     {"GG108"}),
    ("GG108 env from a Secret not given", lambda: pod(container(env=SECRET_ENV)), old, {}, {"GG108"}),
    ("safe: other image not inspected", lambda: pod(container(image="registry.example.com/team/app:1")), old, {},
     set()),
    ("safe: GPU image not inspected, env void",
     lambda: pod(container(image="nvcr.io/nvidia/pytorch:24.01-py3", env=env("void"))), old, {}, set()),
    ("safe: GPU image not inspected on CDI default", lambda: pod(container(image="vllm/vllm-openai:v0.6.0")), new, {},
     set()),
]  # fmt: skip


@pytest.mark.parametrize(("case", "make_pod", "make_node", "extra", "expected"), ROWS, ids=[r[0] for r in ROWS])
def test_rule_fires_exactly(
    case: str,
    make_pod: Callable[[], Pod],
    make_node: Callable[[], NodeProfile],
    extra: dict[str, Any],
    expected: set[str],
) -> None:
    findings, exempt = run(make_pod(), make_node(), **extra)
    assert ids(findings) == expected, [f.message for f in findings]
    assert exempt == []


@pytest.mark.parametrize(
    ("make_pod", "extra", "words"),
    [
        (lambda: pod(container(image=CUDA)), {}, "its image env"),
        (lambda: pod(container(env=env("all"))), {}, "its env entry NVIDIA_VISIBLE_DEVICES=all"),
        (
            lambda: pod(container(envFrom=[{"configMapRef": {"name": "gpu-env"}}])),
            {"objects": ENV_OBJECTS},
            "envFrom (configMap gpu-env)",
        ),
        (lambda: pod(container(image=LEGACY_CUDA)), {}, "legacy CUDA image"),
    ],
)
def test_gg101_says_where_the_gpus_came_from(make_pod: Callable[[], Pod], extra: dict[str, Any], words: str) -> None:
    (finding,) = run(make_pod(), old(), **extra)[0]
    assert words in finding.message
    assert "every GPU" in finding.message


def test_container_finding_carries_object_container_location_decision_and_trail() -> None:
    p = pod(container("jupyter", image=CUDA), kind="Deployment", name="notebook", namespace="research")
    (finding,) = run(p, old())[0]
    assert finding.rule_id == "GG101"
    assert finding.severity.label == "high"
    assert (finding.resource.api_version, finding.resource.kind) == ("apps/v1", "Deployment")  # type: ignore[union-attr]
    assert (finding.resource.namespace, finding.resource.name) == ("research", "notebook")  # type: ignore[union-attr]
    assert finding.container == "jupyter"
    assert finding.location == p.location
    assert finding.decision is not None and finding.decision.container == "jupyter"
    rules = [s.rule for s in finding.trail]
    assert rules[-1] == "GG101"  # the rule's conclusion last: formats show it as the "why"
    assert "toolkit.gate" in rules and rules[-2] == "k8s.sees"  # the toolkit's steps told in place


def test_remediation_fits_the_release() -> None:
    """Row A recommends the volume-mounts recipe; CDI-default releases never do (gpu-operator#1876)."""
    (legacy,) = run(pod(container(image=CUDA)), old())[0]
    assert 'ACCEPT_NVIDIA_VISIBLE_DEVICES_AS_VOLUME_MOUNTS="true"' in legacy.remediation
    assert "void" in legacy.remediation
    cdi = [f for f in run(pod(container(image=CUDA), runtimeClassName="nvidia"), new())[0] if f.rule_id == "GG101"]
    assert 'ACCEPT_NVIDIA_VISIBLE_DEVICES_AS_VOLUME_MOUNTS="true"' not in cdi[0].remediation
    assert "Do not add" in cdi[0].remediation
    assert "Remove runtimeClassName: nvidia" in cdi[0].remediation
    overwrite = operator_node("25.3.2", {"cdi": {"enabled": True}})
    (b,) = run(pod(container(image=CUDA)), overwrite)[0]
    assert "overwrites devicePlugin.env DEVICE_LIST_STRATEGY" in b.remediation


def test_gg108_says_what_would_decide_it() -> None:
    (image,) = run(pod(container(image="nvcr.io/nvidia/pytorch:24.01-py3")), old())[0]
    assert "nvcr.io/nvidia/*" in image.message and "inspect the image" in image.remediation
    (secret,) = run(pod(container(env=SECRET_ENV)), old())[0]
    assert "Secret team/gpu-env" in secret.message


def test_pod_rules_have_no_container_and_name_the_class() -> None:
    (finding,) = run(pod(container(), runtimeClassName="nvidia"), new())[0]
    assert finding.container is None and finding.decision is None
    assert "runtimeClassName nvidia" in finding.message


def test_dra_claims_are_noted() -> None:
    p = pod(container(securityContext={"privileged": True}, resources=gpu(1)), resourceClaims=CLAIMS)
    (finding,) = run(p, old())[0]
    assert finding.rule_id == "GG102"
    assert "DRA resourceClaims" in finding.message


def test_nothing_fires_for_many_safe_containers() -> None:
    p = pod(*(container(f"c{i}", image=BUSYBOX) for i in range(20)))
    assert run(p, old()) == ([], [])
    assert len(GPUS) == 4
