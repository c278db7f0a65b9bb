"""Workload fixer: NVIDIA_VISIBLE_DEVICES=void spliced into manifests, every other byte kept.

Expected outputs are typed by hand. Every case is also run twice to check idempotence.
"""

from __future__ import annotations

import pytest

from gpuguard.fixes.workload import ObjectId, edit_manifest, kustomize_patch, locate, requests_gpu, set_void
from gpuguard.model.finding import Resource

DEPLOYMENT = """\
# Source: notebooks/templates/deployment.yaml
apiVersion: v1
kind: ConfigMap
metadata:
  name: settings   # shared by the notebook
data:
  MODE: 'lab'
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: notebook
  namespace: research
  labels: &labels
    app: notebook
spec:
  selector:
    matchLabels: *labels
  template:
    metadata:
      labels: *labels
    spec:
      containers:
        - name: lab   # the notebook server
          image: "nvcr.io/nvidia/pytorch:24.05-py3"
          envFrom:
            - configMapRef: {name: settings}
          env:
            - name: JUPYTER_TOKEN
              valueFrom:
                secretKeyRef: {name: lab, key: token}
            - name: MODE
              value: "lab"   # keep quoted
          ports: [{containerPort: 8888}]
---
# trailing document, untouched
apiVersion: v1
kind: Service
metadata: {name: notebook, namespace: research}
"""

DEPLOYMENT_FIXED = """\
# Source: notebooks/templates/deployment.yaml
apiVersion: v1
kind: ConfigMap
metadata:
  name: settings   # shared by the notebook
data:
  MODE: 'lab'
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: notebook
  namespace: research
  labels: &labels
    app: notebook
spec:
  selector:
    matchLabels: *labels
  template:
    metadata:
      labels: *labels
    spec:
      containers:
        - name: lab   # the notebook server
          image: "nvcr.io/nvidia/pytorch:24.05-py3"
          envFrom:
            - configMapRef: {name: settings}
          env:
            - name: JUPYTER_TOKEN
              valueFrom:
                secretKeyRef: {name: lab, key: token}
            - name: MODE
              value: "lab"   # keep quoted
            - name: NVIDIA_VISIBLE_DEVICES
              value: void
          ports: [{containerPort: 8888}]
---
# trailing document, untouched
apiVersion: v1
kind: Service
metadata: {name: notebook, namespace: research}
"""

VALUE_FROM = """\
apiVersion: v1
kind: Pod
metadata:
  name: trainer
spec:
  containers:
  - name: main
    image: cuda
    env:
    - name: NVIDIA_VISIBLE_DEVICES
      valueFrom:
        configMapKeyRef:
          name: gpu-settings   # set by the platform team
          key: devices
    - name: AFTER
      value: x
"""

VALUE_FROM_FIXED = """\
apiVersion: v1
kind: Pod
metadata:
  name: trainer
spec:
  containers:
  - name: main
    image: cuda
    env:
    - name: NVIDIA_VISIBLE_DEVICES
      value: void
    - name: AFTER
      value: x
"""

NO_ENV = """\
apiVersion: batch/v1
kind: CronJob
metadata:
  name: report
spec:
  schedule: "0 * * * *"
  jobTemplate:
    spec:
      template:
        spec:
          restartPolicy: Never
          containers:
            - name: report
              image: nvcr.io/nvidia/cuda:12.4.1-base-ubuntu22.04
              envFrom:
                - secretRef:
                    name: report-env
              args:
                - --all
              # last comment of the container
          volumes: []
"""

NO_ENV_FIXED = """\
apiVersion: batch/v1
kind: CronJob
metadata:
  name: report
spec:
  schedule: "0 * * * *"
  jobTemplate:
    spec:
      template:
        spec:
          restartPolicy: Never
          containers:
            - name: report
              image: nvcr.io/nvidia/cuda:12.4.1-base-ubuntu22.04
              envFrom:
                - secretRef:
                    name: report-env
              args:
                - --all
              env:
                - name: NVIDIA_VISIBLE_DEVICES
                  value: void
              # last comment of the container
          volumes: []
"""

DUPLICATES = """\
kind: Pod
apiVersion: v1
metadata: {name: dup}
spec:
  containers:
  - name: c
    image: cuda
    env:
    - {name: NVIDIA_VISIBLE_DEVICES, value: all}  # from a chart default
    - name: OTHER
      value: "1"
    - name: NVIDIA_VISIBLE_DEVICES
      value: "0"
"""

DUPLICATES_FIXED = """\
kind: Pod
apiVersion: v1
metadata: {name: dup}
spec:
  containers:
  - name: c
    image: cuda
    env:
    - name: NVIDIA_VISIBLE_DEVICES
      value: void
    - name: OTHER
      value: "1"
"""

EMPTY_LIST = """\
kind: Pod
apiVersion: v1
metadata: {name: empty}
spec:
  containers:
  - name: c
    image: cuda
    env: []   # nothing yet
  - name: d
    image: cuda
    env:
"""

EMPTY_LIST_FIXED = """\
kind: Pod
apiVersion: v1
metadata: {name: empty}
spec:
  containers:
  - name: c
    image: cuda
    env:
    - name: NVIDIA_VISIBLE_DEVICES
      value: void   # nothing yet
  - name: d
    image: cuda
    env:
    - name: NVIDIA_VISIBLE_DEVICES
      value: void
"""

CRLF = "kind: Pod\r\napiVersion: v1\r\nmetadata:\r\n  name: w\r\nspec:\r\n  containers:\r\n  - name: c\r\n    image: x"
CRLF_FIXED = (
    f"{CRLF}"
    "\r\n    env:\r\n    - name: NVIDIA_VISIBLE_DEVICES\r\n      value: void\r\n"
)  # the whole input kept, the entry added after it

LIST = """\
apiVersion: v1
kind: List
items:
- apiVersion: apps/v1
  kind: Deployment
  metadata:
    name: a
    namespace: ml
  spec:
    template:
      spec:
        containers:
        - image: cuda
          name: a
- apiVersion: apps/v1
  kind: Deployment
  metadata:
    name: b
    namespace: ml
  spec:
    template:
      spec:
        containers:
        - image: cuda
          name: b
          env:
          - name: NVIDIA_VISIBLE_DEVICES
            value: all
"""

LIST_FIXED = """\
apiVersion: v1
kind: List
items:
- apiVersion: apps/v1
  kind: Deployment
  metadata:
    name: a
    namespace: ml
  spec:
    template:
      spec:
        containers:
        - image: cuda
          name: a
- apiVersion: apps/v1
  kind: Deployment
  metadata:
    name: b
    namespace: ml
  spec:
    template:
      spec:
        containers:
        - image: cuda
          name: b
          env:
          - name: NVIDIA_VISIBLE_DEVICES
            value: void
"""

FLOW = """\
kind: Pod
metadata: {name: f}
spec:
  containers:
  - {name: a, image: cuda}   # one line
  - {name: b, env: [{name: X, value: "1"},
      {name: NVIDIA_VISIBLE_DEVICES, value: all}, {name: NVIDIA_VISIBLE_DEVICES, value: '0'}]}
  - name: c
    env: [ {name: X, value: y} ]
  - name: d
    env: [{name: X, value: 'it''s'},]
  - {name: e, env: []}
  - {name: f,
     image: "cuda:12 # not a comment, {nor} [this]"}
"""

FLOW_FIXED = """\
kind: Pod
metadata: {name: f}
spec:
  containers:
  - {name: a, image: cuda, env: [{name: NVIDIA_VISIBLE_DEVICES, value: void}]}   # one line
  - {name: b, env: [{name: X, value: "1"},
      {name: NVIDIA_VISIBLE_DEVICES, value: void}]}
  - name: c
    env: [ {name: X, value: y}, {name: NVIDIA_VISIBLE_DEVICES, value: void} ]
  - name: d
    env: [{name: X, value: 'it''s'}, {name: NVIDIA_VISIBLE_DEVICES, value: void}]
  - {name: e, env: [{name: NVIDIA_VISIBLE_DEVICES, value: void}]}
  - {name: f,
     image: "cuda:12 # not a comment, {nor} [this]", env: [{name: NVIDIA_VISIBLE_DEVICES, value: void}]}
"""

CASES = [
    pytest.param(DEPLOYMENT, [(ObjectId("Deployment", "notebook", "research"), "spec.template.spec.containers[0]")],
                 DEPLOYMENT_FIXED, id="append-keeps-comments-quotes-anchors-flow-envFrom-other-docs"),
    pytest.param(VALUE_FROM, [(0, "spec.containers[0]")], VALUE_FROM_FIXED, id="valueFrom-replaced"),
    pytest.param(NO_ENV, [(0, "spec.jobTemplate.spec.template.spec.containers[0]")], NO_ENV_FIXED,
                 id="env-created-in-file-indent-style"),
    pytest.param(DUPLICATES, [(0, "spec.containers[0]")], DUPLICATES_FIXED, id="duplicates-leave-one"),
    pytest.param(EMPTY_LIST, [(0, "spec.containers[0]"), (0, "spec.containers[1]")], EMPTY_LIST_FIXED,
                 id="empty-and-null-env"),
    pytest.param(FLOW, [(0, f"spec.containers[{i}]") for i in range(6)], FLOW_FIXED, id="flow-style"),
    pytest.param(
        "base: &base\n  image: cuda\n  args: [x]\nkind: Pod\nspec:\n  containers:\n"
        "  - name: c\n    <<: *base\n    command: [y]\n  - <<: *base\n    name: d\n",
        [(0, "spec.containers[0]"), (0, "spec.containers[1]")],
        "base: &base\n  image: cuda\n  args: [x]\nkind: Pod\nspec:\n  containers:\n"
        "  - name: c\n    <<: *base\n    command: [y]\n"
        "    env:\n    - name: NVIDIA_VISIBLE_DEVICES\n      value: void\n"
        "  - <<: *base\n    name: d\n    env:\n    - name: NVIDIA_VISIBLE_DEVICES\n      value: void\n",
        id="merge-keys-without-env",
    ),
    pytest.param(CRLF, [(0, "spec.containers[0]")], CRLF_FIXED, id="crlf-no-final-newline"),
    pytest.param(LIST, [(0, "items[0].spec.template.spec.containers[0]"),
                        (ObjectId("Deployment", "b", "ml"), "spec.template.spec.containers[0]")],
                 LIST_FIXED.replace(
                     "        - image: cuda\n          name: a\n",
                     "        - image: cuda\n          name: a\n          env:\n"
                     "          - name: NVIDIA_VISIBLE_DEVICES\n            value: void\n",
                 ), id="kubectl-list"),
]  # fmt: skip


@pytest.mark.parametrize(("text", "targets", "expected"), CASES)
def test_set_void(text: str, targets: list, expected: str) -> None:
    assert set_void(text, targets) == expected


@pytest.mark.parametrize(("text", "targets", "expected"), CASES)
def test_idempotent(text: str, targets: list, expected: str) -> None:
    once = set_void(text, targets)
    again = edit_manifest(once, targets)
    assert again.text == once
    assert again.changed == ()


def test_already_void_quoted_is_left_alone() -> None:
    text = "kind: Pod\nspec:\n  containers:\n  - name: c\n    env:\n    - name: NVIDIA_VISIBLE_DEVICES\n"
    text += '      value: "void"\n'
    result = edit_manifest(text, [(0, "spec.containers[0]")])
    assert result.text == text
    assert result.changed == ()


SKIPS = [
    pytest.param(
        "kind: Pod\nspec:\n  containers:\n  - name: c\n    resources:\n      limits:\n        nvidia.com/gpu: 1\n",
        "requests GPUs",
        id="gpu-request",
    ),
    pytest.param(
        "kind: Pod\nspec:\n  containers:\n  - name: c\n    env: &shared\n    - {name: A, value: b}\n"
        "  - name: d\n    env: *shared\n",
        "anchor shared",
        id="anchored-env",
    ),
    pytest.param(
        "kind: Pod\nspec:\n  containers:\n  - &side\n    name: c\n  - *side\n",
        "YAML alias",
        id="aliased-container",
    ),
    pytest.param(
        "base: &base\n  env:\n  - {name: A, value: b}\nkind: Pod\nspec:\n  containers:\n  - <<: *base\n    name: c\n",
        "merge key",
        id="merge-key-env",
    ),
    pytest.param("kind: Pod\nspec:\n  containers: []\n", "nothing at 0", id="missing-container"),
]


@pytest.mark.parametrize(("text", "reason"), SKIPS)
def test_unsafe_targets_are_skipped_with_a_reason(text: str, reason: str) -> None:
    result = edit_manifest(text, [(0, "spec.containers[0]")])
    assert result.text == text
    assert len(result.skipped) == 1
    assert reason in result.skipped[0]


def test_locate_by_identity_container_name_and_gpu_siblings() -> None:
    text = """\
apiVersion: kubeflow.org/v1
kind: PyTorchJob
metadata: {name: train, namespace: ml}
spec:
  pytorchReplicaSpecs:
    Master:
      template:
        spec:
          containers:
          - name: pytorch
            image: pytorch/pytorch
            resources: {limits: {nvidia.com/gpu: 1}}
    Worker:
      template:
        spec:
          initContainers:
          - name: fetch
            image: pytorch/pytorch
          containers:
          - name: pytorch
            image: pytorch/pytorch
"""
    resource = Resource("kubeflow.org/v1", "PyTorchJob", "ml", "train")
    oid = ObjectId("PyTorchJob", "train", "ml")
    assert locate(text, resource, "fetch") == [(oid, "spec.pytorchReplicaSpecs.Worker.template.spec.initContainers[0]")]
    targets = locate(text, resource, "pytorch")
    assert targets == [
        (oid, "spec.pytorchReplicaSpecs.Master.template.spec.containers[0]"),
        (oid, "spec.pytorchReplicaSpecs.Worker.template.spec.containers[0]"),
    ]
    result = edit_manifest(text, targets)
    assert len(result.changed) == 1 and "Worker" in result.changed[0]
    assert len(result.skipped) == 1 and "Master" in result.skipped[0]
    assert result.text.endswith(
        "          - name: pytorch\n            image: pytorch/pytorch\n"
        "            env:\n            - name: NVIDIA_VISIBLE_DEVICES\n              value: void\n"
    )
    assert locate(text, ObjectId("PyTorchJob", "train", "other-ns"), "pytorch") == []


@pytest.mark.parametrize(
    ("resources", "expected"),
    [
        ({"limits": {"nvidia.com/gpu": 1}}, True),
        ({"requests": {"nvidia.com/mig-1g.10gb": 1}}, True),
        ({"limits": {"nvidia.com/gpu.shared": 1}}, True),
        ({"claims": [{"name": "gpu"}]}, True),
        ({"limits": {"cpu": "1", "memory": "1Gi"}}, False),
        (None, False),
    ],
)
def test_requests_gpu(resources: object, expected: bool) -> None:
    assert requests_gpu({"name": "c", "resources": resources}) is expected


def test_kustomize_patch() -> None:
    resource = Resource("apps/v1", "Deployment", "research", "notebook")
    patch = kustomize_patch(
        resource,
        [("spec.template.spec.containers[0]", "lab"), ("spec.template.spec.initContainers[1]", "fetch")],
    )
    assert (
        patch
        == """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: notebook
  namespace: research
spec:
  template:
    spec:
      containers:
      - name: lab
        env:
        - name: NVIDIA_VISIBLE_DEVICES
          value: void
          valueFrom: null  # clears a valueFrom, if any
      initContainers:
      - name: fetch
        env:
        - name: NVIDIA_VISIBLE_DEVICES
          value: void
          valueFrom: null  # clears a valueFrom, if any
"""
    )


def test_kustomize_patch_refuses_list_items_by_index() -> None:
    resource = Resource("ray.io/v1", "RayCluster", "ml", "rc")
    with pytest.raises(ValueError, match="by index"):
        kustomize_patch(resource, [("spec.workerGroupSpecs[0].template.spec.containers[0]", "worker")])


ARGO = """\
apiVersion: argoproj.io/v1alpha1
kind: Workflow
metadata: {name: wf, namespace: argo}
spec:
  templates:
  - name: train
    container:
      image: cuda
      resources: {limits: {nvidia.com/gpu: 1}}
    sidecars:
    - {name: monitor, image: dcgm}
  - name: evaluate
    script:
      image: nvcr.io/nvidia/pytorch:24.05-py3
      source: print("hi")
"""


def test_argo_single_containers_named_main_and_the_pod_name_picks_the_template() -> None:
    oid = ObjectId("Workflow", "wf", "argo")
    assert locate(ARGO, oid, "main") == [(oid, "spec.templates[0].container"), (oid, "spec.templates[1].script")]
    assert locate(ARGO, oid, "main", pod="wf/evaluate") == [(oid, "spec.templates[1].script")]
    assert locate(ARGO, oid, "monitor") == [(oid, "spec.templates[0].sidecars[0]")]
    fixed = set_void(ARGO, locate(ARGO, oid, "main", pod="wf/evaluate"))
    assert fixed == ARGO.replace(
        '      source: print("hi")\n',
        '      source: print("hi")\n      env:\n      - name: NVIDIA_VISIBLE_DEVICES\n        value: void\n',
    )


def test_pod_name_roles_pick_list_items_by_name_and_replica_keys() -> None:
    ray = """\
apiVersion: ray.io/v1
kind: RayCluster
metadata: {name: rc}
spec:
  headGroupSpec:
    template:
      spec:
        containers: [{name: ray, image: rayproject/ray-ml}]
  workerGroupSpecs:
  - groupName: cpu
    template:
      spec:
        containers: [{name: ray, image: rayproject/ray-ml}]
  - groupName: gpu
    template:
      spec:
        containers: [{name: ray, image: rayproject/ray-ml}]
"""
    oid = ObjectId("RayCluster", "rc")
    assert len(locate(ray, oid, "ray")) == 3
    assert locate(ray, oid, "ray", pod="rc/workerGroupSpecs[cpu]") == [
        (oid, "spec.workerGroupSpecs[0].template.spec.containers[0]")
    ]
    assert locate(ray, oid, "ray", pod="rc") == [(oid, "spec.headGroupSpec.template.spec.containers[0]")]
