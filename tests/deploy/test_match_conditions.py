"""The webhooks' matchConditions (CEL), evaluated by a real CEL implementation (cel-python) on AdmissionRequests.

What they must do: the mutating webhook sees CREATEs and pods/ephemeralcontainers updates only (container env
is immutable afterwards); the validating webhook also re-judges UPDATEs that change the spec (images) or the
annotations (CDI/NRI), and skips metadata churn. A condition that errors would follow failurePolicy (Fail:
reject), so absent fields (subResource, annotations) must be guarded with has().
"""

from __future__ import annotations

import copy
from typing import Any

import pytest

from tests.deploy.helpers import only, plain_docs

celpy = pytest.importorskip("celpy")

DOCS = plain_docs()
POD: dict[str, Any] = {
    "apiVersion": "v1",
    "kind": "Pod",
    "metadata": {"name": "p", "namespace": "ml", "labels": {"app": "a"}},
    "spec": {"containers": [{"name": "main", "image": "nvcr.io/nvidia/cuda:12.4.1-base-ubuntu22.04"}]},
}


def _matches(kind: str, request: dict[str, Any]) -> bool:
    (hook,) = only(DOCS, kind)["webhooks"]
    env = celpy.Environment()
    activation = {
        "request": celpy.json_to_cel(request),
        "object": celpy.json_to_cel(request.get("object")),
        "oldObject": celpy.json_to_cel(request.get("oldObject")),
    }
    results = [bool(env.program(env.compile(m["expression"])).evaluate(activation)) for m in hook["matchConditions"]]
    return all(results)


def _changed(**changes: Any) -> dict[str, Any]:
    pod = copy.deepcopy(POD)
    for path, value in changes.items():
        *parents, leaf = path.split("__")
        node = pod
        for p in parents:
            node = node.setdefault(p, {})
        node[leaf] = value
    return pod


def _update(new: dict[str, Any], sub: str | None = None) -> dict[str, Any]:
    request = {"operation": "UPDATE", "object": new, "oldObject": POD}
    if sub:
        request["subResource"] = sub
    return request


ephemeral = _changed(spec__ephemeralContainers=[{"name": "debug", "image": "busybox"}])
CASES = [
    # (request, mutating matches, validating matches)
    pytest.param({"operation": "CREATE", "object": POD, "oldObject": None}, True, True, id="create"),
    pytest.param(_update(ephemeral, "ephemeralcontainers"), True, True, id="ephemeral-containers"),
    pytest.param(_update(_changed(metadata__labels={"app": "b"})), False, False, id="label-change"),
    pytest.param(_update(_changed(metadata__finalizers=["x"])), False, False, id="finalizer-change"),
    pytest.param(_update(copy.deepcopy(POD)), False, False, id="no-op-update"),
    pytest.param(
        _update(_changed(spec__containers=[{"name": "main", "image": "vllm/vllm-openai"}])), False, True, id="image"
    ),
    pytest.param(
        _update(_changed(metadata__annotations={"cdi.k8s.io/gpu": "nvidia.com/gpu=all"})), False, True, id="cdi-annot"
    ),
]


@pytest.mark.parametrize(("request_", "mutating", "validating"), CASES)
def test_match_conditions(request_: dict[str, Any], mutating: bool, validating: bool) -> None:
    assert _matches("MutatingWebhookConfiguration", request_) is mutating
    assert _matches("ValidatingWebhookConfiguration", request_) is validating
