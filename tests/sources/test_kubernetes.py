"""Kubernetes objects to Pod models: every kind that carries a pod template, and bad input."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from gpuguard.model.errors import InputError
from gpuguard.model.pod import (
    Container,
    EnvFromSource,
    EnvVar,
    Pod,
    SecurityContext,
    ValueRef,
    Volume,
    VolumeMount,
)
from gpuguard.sources.documents import load_documents
from gpuguard.sources.kubernetes import POD_TEMPLATE_PATHS, is_known_kind, objects, pods_from_object

FIXTURES = Path(__file__).parent.parent / "fixtures" / "manifests"


def pods_in(fixture: str) -> list[Pod]:
    out: list[Pod] = []
    for doc in load_documents((FIXTURES / fixture).read_bytes(), fixture):
        assert doc.ok, doc.error
        out.extend(pods_from_object(doc.obj, doc.where))
    return out


def summary(pods: list[Pod]) -> list[tuple[str, str, str, list[str]]]:
    return [(p.workload_kind, p.name, p.template_path, [f"{c.kind}:{c.name}" for c in p.containers]) for p in pods]


KINDS = [
    ("pod.yaml", [("Pod", "cuda-test", "",
                   ["initContainer:setup", "container:main", "ephemeralContainer:debugger"])]),
    ("deployment.yaml", [("Deployment", "web", "spec.template", ["container:app"])]),
    ("statefulset.yaml", [("StatefulSet", "statefulset-app", "spec.template", ["container:app"])]),
    ("daemonset.yaml", [("DaemonSet", "daemonset-app", "spec.template", ["container:app"])]),
    ("replicaset.yaml", [("ReplicaSet", "replicaset-app", "spec.template", ["container:app"])]),
    ("replicationcontroller.yaml",
     [("ReplicationController", "rc-app", "spec.template", ["container:app"])]),
    ("job.yaml", [("Job", "once", "spec.template", ["container:work"])]),
    ("cronjob.yaml", [("CronJob", "nightly", "spec.jobTemplate.spec.template", ["container:report"])]),
    ("podtemplate.yaml", [("PodTemplate", "tmpl", "template", ["container:c"])]),
    ("pytorchjob.yaml", [
        ("PyTorchJob", "train/Master", "spec.pytorchReplicaSpecs.Master.template", ["container:pytorch"]),
        ("PyTorchJob", "train/Worker", "spec.pytorchReplicaSpecs.Worker.template", ["container:pytorch"]),
    ]),
    ("tfjob.yaml", [("TFJob", "tfjob-run/Worker", "spec.tfReplicaSpecs.Worker.template", ["container:worker"])]),
    ("mpijob.yaml", [("MPIJob", "mpijob-run/Worker", "spec.mpiReplicaSpecs.Worker.template", ["container:worker"])]),
    ("xgboostjob.yaml",
     [("XGBoostJob", "xgboostjob-run/Worker", "spec.xgbReplicaSpecs.Worker.template", ["container:worker"])]),
    ("paddlejob.yaml",
     [("PaddleJob", "paddlejob-run/Worker", "spec.paddleReplicaSpecs.Worker.template", ["container:worker"])]),
    ("raycluster.yaml", [
        ("RayCluster", "rc/headGroupSpec", "spec.headGroupSpec.template", ["container:ray-head"]),
        ("RayCluster", "rc/workerGroupSpecs[gpu-group]", "spec.workerGroupSpecs[0].template",
         ["container:ray-worker"]),
        ("RayCluster", "rc/workerGroupSpecs[cpu-group]", "spec.workerGroupSpecs[1].template",
         ["container:ray-worker"]),
    ]),
    ("rayjob.yaml", [
        ("RayJob", "rj/headGroupSpec", "spec.rayClusterSpec.headGroupSpec.template", ["container:ray-head"]),
        ("RayJob", "rj/workerGroupSpecs[workers]", "spec.rayClusterSpec.workerGroupSpecs[0].template",
         ["container:ray-worker"]),
        ("RayJob", "rj/submitterPodTemplate", "spec.submitterPodTemplate", ["container:submitter"]),
    ]),
    ("rayservice.yaml", [
        ("RayService", "rs/headGroupSpec", "spec.rayClusterConfig.headGroupSpec.template",
         ["container:ray-head"]),
        ("RayService", "rs/workerGroupSpecs[serve]", "spec.rayClusterConfig.workerGroupSpecs[0].template",
         ["container:ray-worker"]),
    ]),
    ("jobset.yaml", [
        ("JobSet", "js/replicatedJobs[leader]", "spec.replicatedJobs[0].template.spec.template",
         ["container:leader"]),
        ("JobSet", "js/replicatedJobs[workers]", "spec.replicatedJobs[1].template.spec.template",
         ["container:worker"]),
    ]),
    ("leaderworkerset.yaml", [
        ("LeaderWorkerSet", "lws/leaderTemplate", "spec.leaderWorkerTemplate.leaderTemplate",
         ["container:leader"]),
        ("LeaderWorkerSet", "lws/workerTemplate", "spec.leaderWorkerTemplate.workerTemplate",
         ["container:worker"]),
    ]),
    ("argo-workflow.yaml", [
        ("Workflow", "wf/train", "spec.templates[1]",
         ["initContainer:fetch", "container:main", "container:monitor"]),
        ("Workflow", "wf/evaluate", "spec.templates[2]", ["container:main"]),
        ("Workflow", "wf/multi", "spec.templates[3]", ["container:a", "container:b"]),
    ]),
    ("argo-workflowtemplate.yaml", [("WorkflowTemplate", "wft/run", "spec.templates[0]",
     ["container:runner"])]),
    ("argo-cronworkflow.yaml",
     [("CronWorkflow", "cwf/run", "spec.workflowSpec.templates[0]", ["container:main"])]),
    ("kubectl-get-list.json", [
        ("Pod", "web-6d4cf56db6-x7k2p", "items[0]", ["container:app"]),
        ("Deployment", "web", "items[1].spec.template", ["container:app"]),
    ]),
    ("kubectl-get-list.yaml", [
        ("DaemonSet", "nvidia-device-plugin-daemonset", "items[0].spec.template",
         ["container:nvidia-device-plugin"]),
        ("Pod", "nested", "items[1].items[0]", ["container:c"]),
    ]),
    ("api-deploymentlist.json", [
        ("Deployment", "a", "items[0].spec.template", ["container:c"]),
        ("Deployment", "b", "items[1].spec.template", ["container:c"]),
    ]),
    ("anchors.yaml", [("Deployment", "anchored", "spec.template", ["container:a", "container:b"])]),
    ("unknown-kinds.yaml", []),
]  # fmt: skip


@pytest.mark.parametrize(("fixture", "expected"), KINDS, ids=[k[0] for k in KINDS])
def test_kinds(fixture: str, expected: list[tuple[str, str, str, list[str]]]) -> None:
    assert summary(pods_in(fixture)) == expected


def test_every_fixture_is_in_the_table() -> None:
    tested = {k[0] for k in KINDS} | {"billion-laughs.yaml", "broken-middle.yaml"}
    assert {p.name for p in FIXTURES.iterdir()} == tested


def test_every_kind_in_the_path_table_has_a_fixture() -> None:
    seen = {p.workload_kind for fixture, _ in KINDS for p in pods_in(fixture)}
    untested = {kind for (_, kind) in POD_TEMPLATE_PATHS} - seen
    # Old API groups and kinds covered by the same code path as a tested sibling.
    assert untested <= {"ClusterWorkflowTemplate", "MXJob", "JAXJob"}


def test_pod_fields() -> None:
    (pod,) = pods_in("pod.yaml")
    main = pod.containers[1]
    assert pod.namespace == "gpu"
    assert pod.labels == {"app": "cuda"} and pod.annotations == {"team": "ml"}
    assert pod.runtime_class_name == "nvidia"
    assert pod.service_account == "runner"
    assert pod.node_name == "gpu-node-1"
    assert pod.workload_name == "cuda-test"
    assert main == Container(
        name="main",
        image="nvcr.io/nvidia/cuda:12.4.0-base-ubuntu22.04",
        kind="container",
        env=(
            EnvVar("NVIDIA_VISIBLE_DEVICES", "all"),
            EnvVar("FROM_CM", value_from=ValueRef("configMapKeyRef", "gpu-config", "devices", optional=True)),
            EnvVar("FROM_SECRET", value_from=ValueRef("secretKeyRef", "creds", "token")),
            EnvVar("POD_NAME", value_from=ValueRef("fieldRef", "metadata.name")),
            EnvVar("GPU_LIMIT", value_from=ValueRef("resourceFieldRef", "limits.nvidia.com/gpu", "main")),
        ),
        env_from=(
            EnvFromSource("configMapRef", "env-cm", prefix="CM_"),
            EnvFromSource("secretRef", "env-secret", optional=True),
        ),
        resources={"nvidia.com/gpu": 2},
        security=SecurityContext(privileged=True, capabilities_add=("SYS_ADMIN",), capabilities_drop=("ALL",)),
        volume_mounts=(
            VolumeMount("dev", "/host/dev", read_only=True),
            VolumeMount("cache", "/cache", sub_path="cuda"),
        ),
    )
    assert pod.volumes == (
        Volume("dev", host_path="/dev", kind="hostPath"),
        Volume("cache", kind="emptyDir"),
        Volume("cfg", kind="configMap"),
    )


def test_workload_defaults_and_template_metadata() -> None:
    (pod,) = pods_in("deployment.yaml")
    assert pod.namespace == "prod"
    assert pod.annotations == {"pod-level": "yes"}  # the template's, not the Deployment's
    assert pod.labels == {"app": "web"}
    assert pod.service_account == "default"
    assert pod.runtime_class_name is None and pod.node_name is None
    (job,) = pods_in("job.yaml")
    assert job.namespace == "default"
    (rc,) = pods_in("replicationcontroller.yaml")
    assert rc.service_account == "old-style"  # the deprecated serviceAccount field


def test_argo_pod_level_fields() -> None:
    train, evaluate, _ = pods_in("argo-workflow.yaml")
    assert train.namespace == "argo"
    assert train.service_account == "wf-runner" and evaluate.service_account == "evaluator"
    assert train.labels == {"from": "podMetadata", "shared": "template"}
    assert train.annotations == {"step": "train"}
    assert train.volumes == (Volume("dev", host_path="/dev", kind="hostPath"),)
    assert train.containers[1].resources == {"nvidia.com/gpu": 1}


def test_anchored_values_are_shared_correctly() -> None:
    (pod,) = pods_in("anchors.yaml")
    a, b = pod.containers
    assert a.env == b.env == (EnvVar("NVIDIA_VISIBLE_DEVICES", "none"),)
    assert a.resources == b.resources == {"nvidia.com/gpu": 1}


@pytest.mark.parametrize(
    ("quantity", "expected"),
    [(1, 1), ("1", 1), (2, 2), ("2", 2), (" 3 ", 3), (1.0, 1), ("1000m", 1), ("1k", 1000),
     ("2e1", 20), ("1Ki", 1024), ("+4", 4), ("0", 0), ("8.", 8)],
)  # fmt: skip
def test_extended_resource_counts(quantity: object, expected: int) -> None:
    (pod,) = pods_from_object(_pod_with(resources={"limits": {"nvidia.com/gpu": quantity}}), "p.yaml#0")
    assert pod.containers[0].resources == {"nvidia.com/gpu": expected}


@pytest.mark.parametrize(
    ("quantity", "needle"),
    [(0.5, "cannot be fractional"), ("0.5", "cannot be fractional"), ("500m", "cannot be fractional"),
     ("1.5", "cannot be fractional"), ("-1", "out of range"), ("one", "invalid quantity"),
     ("1e999", "out of range"), (True, "expected a quantity, got boolean"), ([1],
      "expected a quantity, got list"),
     (None, "expected a quantity, got null"), (float("nan"), "invalid quantity")],
)  # fmt: skip
def test_bad_extended_resources(quantity: object, needle: str) -> None:
    with pytest.raises(InputError) as info:
        pods_from_object(_pod_with(resources={"limits": {"nvidia.com/gpu": quantity}}), "p.yaml#0")
    assert info.value.where == "p.yaml#0 spec.containers[0].resources.limits[nvidia.com/gpu]"
    assert needle in info.value.message


def test_limits_merge_over_requests_and_native_resources_are_left_out() -> None:
    resources = {
        "requests": {"nvidia.com/gpu": 1, "example.com/fpga": "2", "cpu": "250m", "memory": "1Gi"},
        "limits": {"nvidia.com/gpu": 4, "hugepages-2Mi": "1Gi", "kubernetes.io/x": "0.5"},
    }
    (pod,) = pods_from_object(_pod_with(resources=resources), "p")
    assert pod.containers[0].resources == {"nvidia.com/gpu": 4, "example.com/fpga": 2}


def _pod_with(**container: Any) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
            "spec": {"containers": [{"name": "c", "image": "x", **container}]}}  # fmt: skip


BAD = [
    ("containers: x", "spec.containers", "expected a list, got string"),
    ("containers: [x]", "spec.containers[0]", "expected a mapping, got string"),
    ("containers: [{image: x}]", "spec.containers[0].name", "required field is missing"),
    ("containers: [{name: ''}]", "spec.containers[0].name", "required field is empty"),
    ("containers: [{name: 3}]", "spec.containers[0].name", "expected a string, got number"),
    ("containers: [{name: c, image: [x]}]", "spec.containers[0].image", "expected a string, got list"),
    ("containers: [{name: c, env: {A: b}}]", "spec.containers[0].env", "expected a list, got mapping"),
    ("containers: [{name: c, env: [{name: A, value: 1}]}]", "spec.containers[0].env[0].value",
     "expected a string, got number"),
    ("containers: [{name: c, env: [{name: A, value: yes}]}]", "spec.containers[0].env[0].value",
     "expected a string, got boolean"),
    ("containers: [{name: c, env: [{value: x}]}]", "spec.containers[0].env[0].name",
     "required field is missing"),
    ("containers: [{name: c, env: [{name: A, valueFrom: {}}]}]", "spec.containers[0].env[0].valueFrom",
     "expected exactly one of configMapKeyRef, secretKeyRef, fieldRef, resourceFieldRef, got 0"),
    ("containers: [{name: c, env: [{name: A, value: x, valueFrom: {fieldRef: {fieldPath: a}}}]}]",
     "spec.containers[0].env[0]", "value and valueFrom are both set; Kubernetes allows one"),
    ("containers: [{name: c, env: [{name: A, valueFrom: {secretKeyRef: {name: s}}}]}]",
     "spec.containers[0].env[0].valueFrom.secretKeyRef.key", "required field is missing"),
    ("containers: [{name: c, env: [{name: A, valueFrom: {secretKeyRef: {key: k, optional: 'true'}}}]}]",
     "spec.containers[0].env[0].valueFrom.secretKeyRef.optional", "expected true or false, got string"),
    ("containers: [{name: c, envFrom: [{prefix: X}]}]", "spec.containers[0].envFrom[0]",
     "expected exactly one of configMapRef, secretRef, got 0"),
    ("containers: [{name: c, securityContext: {privileged: 'true'}}]",
     "spec.containers[0].securityContext.privileged", "expected true or false, got string"),
    ("containers: [{name: c, securityContext: {capabilities: {add: SYS_ADMIN}}}]",
     "spec.containers[0].securityContext.capabilities.add", "expected a list, got string"),
    ("containers: [{name: c, securityContext: {capabilities: {add: [1]}}}]",
     "spec.containers[0].securityContext.capabilities.add[0]", "expected a string, got number"),
    ("containers: [{name: c, volumeMounts: [{name: v}]}]", "spec.containers[0].volumeMounts[0].mountPath",
     "required field is missing"),
    ("containers: [{name: c, resources: {limits: [1]}}]", "spec.containers[0].resources.limits",
     "expected a mapping, got list"),
    ("containers: [{name: c, resources: {limits: {1: 1}}}]", "spec.containers[0].resources.limits[1]",
     "expected a resource name (string), got number"),
    ("containers: [{name: c, resources: {limits: {cpu: {}}}}]", "spec.containers[0].resources.limits.cpu",
     "expected a quantity, got mapping"),
    ("containers: [{name: ok}, {name: c, env: [{name: a}, {name: b}, {name: c}, {name: d, value: 7}]}]",
     "spec.containers[1].env[3].value", "expected a string, got number"),
    ("initContainers: [{image: x}]", "spec.initContainers[0].name", "required field is missing"),
    ("ephemeralContainers: 1", "spec.ephemeralContainers", "expected a list, got number"),
    ("volumes: [{name: v, hostPath: {}}]", "spec.volumes[0].hostPath.path", "required field is missing"),
    ("volumes: [{hostPath: {path: /dev}}]", "spec.volumes[0].name", "required field is missing"),
    ("volumes: [{name: v, hostPath: /dev}]", "spec.volumes[0].hostPath", "expected a mapping, got string"),
    ("runtimeClassName: 1", "spec.runtimeClassName", "expected a string, got number"),
    ("serviceAccountName: [a]", "spec.serviceAccountName", "expected a string, got list"),
    ("nodeName: {a: 1}", "spec.nodeName", "expected a string, got mapping"),
    ("securityContext: []", "spec.securityContext", "expected a mapping, got list"),
]  # fmt: skip


@pytest.mark.parametrize(("spec", "path", "message"), BAD, ids=[b[1] + ":" + b[2][:20] for b in BAD])
def test_wrong_types_name_the_path(spec: str, path: str, message: str) -> None:
    obj = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": yaml.safe_load(spec)}
    with pytest.raises(InputError) as info:
        pods_from_object(obj, "pod.yaml#0")
    assert info.value.where == f"pod.yaml#0 {path}"
    assert info.value.message == message


def test_error_paths_inside_templates_and_lists() -> None:
    deploy = yaml.safe_load((FIXTURES / "deployment.yaml").read_text())
    deploy["spec"]["template"]["spec"]["containers"][0]["env"] = [{"name": "A"}] * 3 + [{"name": "B", "value": 1}]
    with pytest.raises(InputError) as info:
        pods_from_object(deploy, "deploy.yaml#0")
    assert (
        str(info.value) == "deploy.yaml#0 spec.template.spec.containers[0].env[3].value: expected a string, got number"
    )

    listed = {"apiVersion": "v1", "kind": "List", "items": [deploy]}
    with pytest.raises(InputError, match=r"^l.json#0 items\[0\]\.spec\.template\.spec\.containers\[0\]\.env\[3\]"):
        pods_from_object(listed, "l.json#0")


@pytest.mark.parametrize(
    ("meta", "path", "message"),
    [
        ({"name": 1}, "metadata.name", "expected a string, got number"),
        ({"name": "p", "namespace": ["a"]}, "metadata.namespace", "expected a string, got list"),
        ({"name": "p", "labels": {"gpu": True}}, "spec.template.metadata.labels.gpu",
         "expected a string (quote it), got boolean"),
        ({"name": "p", "annotations": "x"}, "spec.template.metadata.annotations",
         "expected a mapping, got string"),
    ],
)  # fmt: skip
def test_metadata_errors(meta: dict[str, Any], path: str, message: str) -> None:
    obj: dict[str, Any] = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {k: v for k, v in meta.items() if k in ("name", "namespace")},
        "spec": {"template": {"metadata": {k: v for k, v in meta.items() if k in ("labels", "annotations")},
                              "spec": {"containers": [{"name": "c"}]}}},
    }  # fmt: skip
    with pytest.raises(InputError) as info:
        pods_from_object(obj, "d#0")
    assert info.value.where == f"d#0 {path}"
    assert info.value.message == message


def test_wrong_type_on_the_way_to_a_template() -> None:
    with pytest.raises(InputError, match=r"^d#0 spec.template: expected a mapping, got number"):
        pods_from_object({"apiVersion": "apps/v1", "kind": "Deployment", "spec": {"template": 42}}, "d#0")
    with pytest.raises(InputError, match=r"^r#0 spec.workerGroupSpecs: expected a list, got mapping"):
        pods_from_object({"apiVersion": "ray.io/v1", "kind": "RayCluster", "spec": {"workerGroupSpecs": {}}}, "r#0")
    with pytest.raises(InputError, match=r"^w#0 spec.templates\[0\].container.env: expected a list"):
        obj = {"apiVersion": "argoproj.io/v1alpha1", "kind": "Workflow",
               "spec": {"templates": [{"name": "t", "container": {"env": "x"}}]}}  # fmt: skip
        pods_from_object(obj, "w#0")


def test_absent_parts_give_no_pods() -> None:
    assert pods_from_object({"apiVersion": "apps/v1", "kind": "Deployment"}, "d") == []
    assert pods_from_object({"apiVersion": "apps/v1", "kind": "Deployment", "spec": None}, "d") == []
    assert pods_from_object({"apiVersion": "v1", "kind": "List", "items": None}, "l") == []


@pytest.mark.parametrize(
    "obj",
    [
        {"apiVersion": "v1", "kind": "ConfigMap", "data": {"a": "b"}},
        {"apiVersion": "example.com/v1", "kind": "Deployment", "spec": {"template": 42}},
        {"kind": 42},
        {},
        {"apiVersion": "v1", "kind": "List", "items": [1, "x", None]},
    ],
)
def test_unknown_kinds_give_nothing(obj: dict[str, Any]) -> None:
    assert pods_from_object(obj, "x") == []


def test_is_known_kind() -> None:
    assert is_known_kind({"apiVersion": "apps/v1", "kind": "Deployment"})
    assert is_known_kind({"kind": "Deployment"})  # no apiVersion: the built-in group
    assert is_known_kind({"apiVersion": "v1", "kind": "List", "items": []})
    assert not is_known_kind({"apiVersion": "v1", "kind": "Service"})
    assert not is_known_kind({"apiVersion": "example.com/v1", "kind": "Deployment"})
    assert not is_known_kind(["kind", "Pod"])


def test_objects_lets_callers_isolate_bad_items() -> None:
    good = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "good"},
        "spec": {"containers": [{"name": "c"}]},
    }
    bad = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "bad"}, "spec": {"containers": "x"}}
    listed = {"apiVersion": "v1", "kind": "List", "items": [bad, good]}
    results: list[str] = []
    for item, path in objects(listed, "l.yaml#0"):
        try:
            results += [p.name for p in pods_from_object(item, "l.yaml#0", path=path)]
        except InputError as e:
            results.append(str(e))
    assert results == ["l.yaml#0 items[0].spec.containers: expected a list, got string", "good"]
    with pytest.raises(InputError, match=r"^l#0 items: expected a list, got string"):
        list(objects({"kind": "List", "items": "x"}, "l#0"))


def test_volcano_job_is_not_a_batch_job() -> None:
    obj = {"apiVersion": "batch.volcano.sh/v1alpha1", "kind": "Job", "metadata": {"name": "vj"},
           "spec": {"tasks": [{"name": "t",
            "template": {"spec": {"containers": [{"name": "c"}]}}}]}}  # fmt: skip
    assert summary(pods_from_object(obj, "v")) == [("Job", "vj/tasks[t]", "spec.tasks[0].template", ["container:c"])]
