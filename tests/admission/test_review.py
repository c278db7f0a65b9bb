"""The admission core: mutation shapes, verdicts per rule and mode, exemptions, dry-run, ephemeral
containers, and hostile requests (which must give an error Response, never an exception)."""

from __future__ import annotations

import base64
import copy
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gpuguard.admission.config import load_admission_config
from gpuguard.admission.mutate import pointer, with_patch
from gpuguard.admission.policy import Policy
from gpuguard.admission.review import Response, Reviewer, review, review_of
from gpuguard.model.admission import AdmissionConfig, Exemption

NVD = "NVIDIA_VISIBLE_DEVICES"
VOID = {"name": NVD, "value": "void"}
GPU = {"limits": {"nvidia.com/gpu": 1}}


def request(
    containers: list[dict[str, Any]] | None = None,
    *,
    op: str = "CREATE",
    namespace: str = "team",
    sub: str = "",
    old: dict[str, Any] | None = None,
    dry_run: bool = False,
    **spec: Any,
) -> dict[str, Any]:
    meta = spec.pop("metadata", {"name": "p"})
    obj = {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": {"containers": containers or [], **spec}}
    req: dict[str, Any] = {
        "uid": "uid-1",
        "kind": {"group": "", "version": "v1", "kind": "Pod"},
        "resource": {"group": "", "version": "v1", "resource": "pods"},
        "operation": op,
        "namespace": namespace,
        "object": obj,
        "dryRun": dry_run,
        "userInfo": {"username": "alice"},
    }
    if sub:
        req["subResource"] = sub
    if old is not None:
        req["oldObject"] = old
    return req


def c(name: str = "app", image: str = "busybox", **fields: Any) -> dict[str, Any]:
    return {"name": name, "image": image, **fields}


REVIEWER = Reviewer(Policy(AdmissionConfig()))


def run(req: dict[str, Any], **kw: Any) -> Response:
    return REVIEWER.review(req, **kw)


def patched(req: dict[str, Any], r: Response) -> dict[str, Any]:
    return with_patch(req["object"], r.patch)


def envs(obj: dict[str, Any], key: str = "containers", i: int = 0) -> list[dict[str, Any]] | None:
    return obj["spec"][key][i].get("env")


# --- mutation shapes -------------------------------------------------------------------------------------

MUTATIONS = [
    pytest.param(c(), [VOID], id="no-env"),
    pytest.param(c(env=None), [VOID], id="env-null"),
    pytest.param(c(env=[]), [VOID], id="env-empty"),
    pytest.param(c(env=[{"name": "A", "value": "1"}]), [{"name": "A", "value": "1"}, VOID], id="other-env-kept"),
    pytest.param(c(env=[{"name": NVD, "value": "all"}]), [VOID], id="value-replaced"),
    pytest.param(
        c(env=[{"name": NVD, "valueFrom": {"configMapKeyRef": {"name": "cm", "key": "k"}}}]), [VOID],
        id="valueFrom-replaced",
    ),
    pytest.param(
        c(env=[{"name": NVD, "value": "0"}, {"name": "A", "value": "$(NVIDIA_VISIBLE_DEVICES)"},
               {"name": NVD, "value": "all"}]),
        [{"name": "A", "value": "$(NVIDIA_VISIBLE_DEVICES)"}, VOID], id="duplicates-collapsed-to-one",
    ),
    pytest.param(c(env=[{"name": NVD, "value": "none"}]), [VOID], id="none-is-not-void"),
    pytest.param(c(env=[{"name": NVD, "value": "void"}]), [VOID], id="already-void"),
]  # fmt: skip


@pytest.mark.parametrize(("container", "expected"), MUTATIONS)
def test_mutation_leaves_exactly_one_void_entry(container: dict[str, Any], expected: list[dict[str, Any]]) -> None:
    req = request([container])
    r = run(req, validate=False)
    assert r.allowed
    after = patched(req, r)
    assert envs(after) == expected
    # idempotent: the mutated pod gets no patch
    again = run(request([after["spec"]["containers"][0]]), validate=False)
    assert again.patch == ()


def test_envfrom_untouched_and_env_beats_it() -> None:
    env_from = [{"configMapRef": {"name": "gpu-env"}}, {"secretRef": {"name": "s"}, "prefix": "X_"}]
    req = request([c(envFrom=copy.deepcopy(env_from))])
    after = patched(req, run(req))
    assert after["spec"]["containers"][0]["envFrom"] == env_from
    assert envs(after) == [VOID]


def test_gpu_containers_untouched_others_voided_in_every_list() -> None:
    req = request(
        [c("trainer", "nvcr.io/nvidia/pytorch:24.01-py3", resources=GPU), c("sidecar")],
        initContainers=[c("init")],
        ephemeralContainers=[c("debug")],
    )
    r = run(req)
    paths = sorted(op["path"] for op in r.patch)
    assert paths == ["/spec/containers/1/env", "/spec/ephemeralContainers/0/env", "/spec/initContainers/0/env"]
    assert r.allowed


@pytest.mark.parametrize(
    "resources",
    [
        {"limits": {"nvidia.com/gpu": 2}},
        {"requests": {"nvidia.com/mig-1g.10gb": "1"}, "limits": {"nvidia.com/mig-1g.10gb": "1"}},
        {"limits": {"nvidia.com/gpu.shared": 1}},
        {"claims": [{"name": "gpu"}]},
    ],
    ids=["gpu", "mig", "shared", "dra-claim"],
)
def test_device_requests_are_not_voided(resources: dict[str, Any]) -> None:
    req = request([c(resources=resources)], resourceClaims=[{"name": "gpu", "resourceClaimName": "x"}])
    assert run(req, validate=False).patch == ()


def test_patch_is_base64_jsonpatch_in_the_review() -> None:
    review_doc = run(request([c()])).to_review()
    response = review_doc["response"]
    assert response["patchType"] == "JSONPatch"
    ops = orjson.loads(base64.b64decode(response["patch"]))
    assert ops == [{"op": "add", "path": "/spec/containers/0/env", "value": [VOID]}]
    assert review_doc["apiVersion"] == "admission.k8s.io/v1"


def test_pointer_escapes() -> None:
    assert pointer("metadata", "annotations", "a/b~c") == "/metadata/annotations/a~1b~0c"


def test_mutate_disabled_by_config() -> None:
    r = review(request([c()]), load_admission_config({"mutate": False}))
    assert r.patch == ()


def test_pod_update_is_not_patched() -> None:
    """The API server forbids env changes on pod updates; a patch would break every label update."""
    assert run(request([c()], op="UPDATE")).patch == ()


# --- validation: rules, messages, modes -----------------------------------------------------------------


def hostpath(path: str, at: str | None = None) -> dict[str, Any]:
    return {
        "containers": [c(volumeMounts=[{"name": "d", "mountPath": at or path}])],
        "volumes": [{"name": "d", "hostPath": {"path": path}}],
    }


def one(containers: list[dict[str, Any]], **spec: Any) -> dict[str, Any]:
    return request(containers, **spec)


VERDICTS = [
    # (request, denied rules, warned rules)
    pytest.param(one([c()]), set(), set(), id="plain-allowed"),
    pytest.param(one([c(image="nvidia/cuda:12.4.0-base-ubuntu22.04")]), set(), set(), id="cuda-no-gpu-fixed"),
    pytest.param(request(**hostpath("/dev/nvidia0")), {"GG103"}, set(), id="hostpath-dev-nvidia0"),
    pytest.param(request(**hostpath("/dev")), {"GG103"}, set(), id="hostpath-dev"),
    pytest.param(
        one([c(resources=GPU, env=[{"name": NVD, "value": "all"}])]), {"GG102"}, set(), id="overreach-env-all"
    ),
    pytest.param(one([c(securityContext={"privileged": True})]), set(), {"GG104"}, id="privileged-warns"),
    pytest.param(
        one([c(securityContext={"capabilities": {"add": ["SYS_ADMIN"]}})]), set(), {"GG104"}, id="sys-admin-warns"
    ),
    pytest.param(one([c(resources=GPU)], runtimeClassName="nvidia"), {"GG105"}, set(), id="nvidia-runtime-class"),
    pytest.param(
        one([c()], metadata={"name": "p", "annotations": {"cdi.k8s.io/x": "nvidia.com/gpu=all"}}),
        {"GG106"}, set(), id="cdi-annotation",
    ),
    pytest.param(
        request(**hostpath("/dev/null", "/var/run/nvidia-container-devices/all")), {"GG107"}, set(),
        id="forged-volume-mount-request",
    ),
    pytest.param(
        one([c(resources=GPU, env=[{"name": NVD, "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}}])]),
        set(), {"GG108"}, id="unknown-secret-warns",
    ),
]  # fmt: skip


@pytest.mark.parametrize(("req", "denied", "warned"), VERDICTS)
def test_verdicts_with_default_modes(req: dict[str, Any], denied: set[str], warned: set[str]) -> None:
    r = run(req)
    by_mode = {(rule, mode) for rule, mode in r.decisions}
    assert {rule for rule, mode in by_mode if mode == "enforce"} == denied
    assert {rule for rule, mode in by_mode if mode == "warn"} == warned
    assert r.allowed is (not denied)
    for rule in denied:
        assert f"[{rule}]" in r.message
        assert "Fix:" in r.message
    for rule in warned:
        assert any(w.startswith(f"[{rule}]") and "Fix:" in w for w in r.warnings)
    assert all(len(w) <= 256 for w in r.warnings)


def test_deny_message_names_rule_container_and_fix() -> None:
    r = run(request(**hostpath("/dev/nvidia0")))
    review_doc = r.to_review()["response"]
    assert review_doc["allowed"] is False
    assert review_doc["status"]["code"] == 403
    message = review_doc["status"]["message"]
    assert "GG103" in message and "'app'" in message and "Remove the hostPath volume" in message


@pytest.mark.parametrize(
    ("mode", "allowed", "warned", "audited"),
    [("enforce", False, False, False), ("warn", True, True, False), ("audit", True, False, True),
     ("off", True, False, False)],
)  # fmt: skip
def test_modes(mode: str, allowed: bool, warned: bool, audited: bool) -> None:
    config = load_admission_config({"modes": {"GG103": mode}})
    r = review(request(**hostpath("/dev/nvidia0")), config)
    assert r.allowed is allowed
    assert bool(r.warnings) is warned
    assert ("gg103" in r.audit_annotations) is audited


def test_deny_unknown_env_refs() -> None:
    req = one([c(resources=GPU, env=[{"name": NVD, "valueFrom": {"configMapKeyRef": {"name": "cm", "key": "k"}}}])])
    assert review(req).allowed
    r = review(req, load_admission_config({"denyUnknownEnvRefs": True}))
    assert not r.allowed and "GG108" in r.message


def test_unknown_env_ref_on_a_non_gpu_container_is_made_safe_by_the_mutation() -> None:
    req = one([c(envFrom=[{"configMapRef": {"name": "cm"}}])])
    r = review(req, load_admission_config({"denyUnknownEnvRefs": True}))
    assert r.allowed and r.patch


def test_validate_only_judges_the_object_as_sent() -> None:
    req = one([c(image="nvidia/cuda:12.4.0-base-ubuntu22.04")])
    r = run(req, mutate=False)
    assert r.patch == ()
    assert [rule for rule, _ in r.decisions] == ["GG108"]  # the mutating webhook would have fixed it


# --- exemptions ------------------------------------------------------------------------------------------------


def test_gpu_operator_components_are_exempt_by_default() -> None:
    req = request(
        [c("toolkit", "nvcr.io/nvidia/k8s/container-toolkit:v1.17.0", securityContext={"privileged": True})],
        namespace="gpu-operator",
        metadata={"name": "t", "namespace": "gpu-operator", "labels": {"app": "nvidia-container-toolkit-daemonset"}},
        runtimeClassName="nvidia",
    )
    r = run(req)
    assert r.allowed and r.patch == () and r.decisions == ()


def test_operator_lookalike_outside_trusted_namespace_is_judged() -> None:
    req = request([c(securityContext={"privileged": True})], runtimeClassName="nvidia",
                  metadata={"name": "t", "labels": {"app": "nvidia-container-toolkit-daemonset"}})  # fmt: skip
    r = run(req)
    assert not r.allowed and "GG105" in r.message


@pytest.mark.parametrize(
    ("exemption", "exempt"),
    [
        (Exemption("ns", namespaces=("team",)), True),
        (Exemption("other ns", namespaces=("other",)), False),
        (Exemption("sa", service_accounts=("team/monitor",)), True),
        (Exemption("sa other ns", service_accounts=("other/monitor",)), False),
        (Exemption("labels", pod_labels=(("gpuguard.io/exempt", "dcgm"),)), True),
        (Exemption("image", images=("registry.example.com/dcgm*",)), True),
        (Exemption("ns+image", namespaces=("team",), images=("nope/*",)), False),
        (Exemption("namespace labels cannot be seen", namespace_labels=(("team", "gpu"),)), False),
    ],
)
def test_exemptions(exemption: Exemption, exempt: bool) -> None:
    req = request(
        [c(image="registry.example.com/dcgm-exporter:3", securityContext={"privileged": True})],
        serviceAccountName="monitor",
        metadata={"name": "p", "labels": {"gpuguard.io/exempt": "dcgm"}},
        volumes=[{"name": "d", "hostPath": {"path": "/dev"}}],
    )
    req["object"]["spec"]["containers"][0]["volumeMounts"] = [{"name": "d", "mountPath": "/dev"}]
    config = AdmissionConfig(exemptions=(exemption,))
    assert review(req, config).allowed is exempt
    assert (review(req, config, validate=False).patch == ()) is exempt


# --- dry run, skipped requests, ephemeral containers ------------------------------------------------------


def test_dry_run_same_verdict() -> None:
    for req in (request(**hostpath("/dev/nvidia0")), request([c()])):
        wet, dry = run(req), run({**req, "dryRun": True})
        assert dry.dry_run and not wet.dry_run
        assert (dry.allowed, dry.patch, dry.message, dry.decisions) == (wet.allowed, wet.patch, wet.message,
                                                                        wet.decisions)  # fmt: skip


@pytest.mark.parametrize(
    "change",
    [
        {"operation": "DELETE"},
        {"operation": "CONNECT"},
        {"kind": {"group": "apps", "version": "v1", "kind": "Deployment"}},
        {"resource": {"group": "", "version": "v1", "resource": "configmaps"}, "kind": {"kind": "ConfigMap"}},
        {"subResource": "status", "operation": "UPDATE"},
        {"subResource": "binding"},
    ],
)
def test_requests_not_judged_are_allowed_untouched(change: dict[str, Any]) -> None:
    req = {**request(**hostpath("/dev/nvidia0")), **change}
    r = run(req)
    assert r.allowed and r.patch == () and r.skipped


def test_terminating_pod_updates_are_allowed() -> None:
    req = request(op="UPDATE", **hostpath("/dev/nvidia0"))
    req["object"]["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    assert run(req).allowed


def test_update_is_validated() -> None:
    req = request([c()], op="UPDATE", metadata={"name": "p", "annotations": {"cdi.k8s.io/x": "nvidia.com/gpu=all"}})
    assert not run(req).allowed
    req["oldObject"] = {"metadata": {"name": "p"}, "spec": {"containers": [c()]}}
    assert not run(req).allowed  # the update adds the annotation


def test_update_of_a_pod_admitted_before_is_not_blocked_by_what_it_already_had() -> None:
    """Controllers must still be able to relabel, adopt or finalize a pod that predates the webhook."""
    req = request(op="UPDATE", **hostpath("/dev/nvidia0"))
    req["oldObject"] = copy.deepcopy(req["object"])
    req["object"]["metadata"]["labels"] = {"adopted": "yes"}
    assert run(req).allowed
    req["object"]["metadata"]["annotations"] = {"cdi.k8s.io/x": "nvidia.com/gpu=all"}
    r = run(req)
    assert not r.allowed and [rule for rule, _ in r.decisions] == ["GG106"]


def test_ephemeral_containers_subresource() -> None:
    old = {"spec": {"containers": [c(securityContext={"privileged": True})],
                    "ephemeralContainers": [c("old-debug")]}}  # fmt: skip
    req = request(
        [c(securityContext={"privileged": True})],
        op="UPDATE",
        sub="ephemeralcontainers",
        old=old,
        ephemeralContainers=[c("old-debug"), c("debug", env=[{"name": NVD, "value": "all"}])],
    )
    r = run(req)
    # only the new ephemeral container is patched; the app container's GG104 is not judged again
    assert [op["path"] for op in r.patch] == ["/spec/ephemeralContainers/1/env/0"]
    assert r.allowed and r.decisions == ()
    after = patched(req, r)
    assert after["spec"]["ephemeralContainers"][1]["env"] == [VOID]


def test_new_privileged_ephemeral_container_is_judged() -> None:
    req = request([c()], op="UPDATE", sub="ephemeralcontainers", old={"spec": {"containers": [c()]}},
                  ephemeralContainers=[c("debug", securityContext={"privileged": True})])  # fmt: skip
    r = run(req)
    assert [rule for rule, _ in r.decisions] == ["GG104"]


def test_namespace_from_the_request_when_metadata_has_none() -> None:
    req = request([c(resources=GPU)], namespace="gpu-operator", runtimeClassName="nvidia")
    assert run(req).allowed  # trusted namespace: GG105 does not apply
    req = request([c(resources=GPU)], namespace="team", runtimeClassName="nvidia")
    assert not run(req).allowed


# --- hostile input ----------------------------------------------------------------------------------------------

HOSTILE = [
    pytest.param(None, id="none"),
    pytest.param([], id="list"),
    pytest.param({"kind": {"kind": "Pod"}}, id="no-uid"),
    pytest.param({"uid": 5, "kind": {"kind": "Pod"}}, id="uid-number"),
    pytest.param({"uid": "u", "kind": "Pod", "operation": "CREATE"}, id="kind-string"),
    pytest.param({"uid": "u", "kind": {"kind": "Pod"}, "operation": 1}, id="operation-number"),
    pytest.param({"uid": "u", "kind": {"kind": "Pod"}, "operation": "CREATE", "object": "pod"}, id="object-string"),
    pytest.param({"uid": "u", "kind": {"kind": "Pod"}, "operation": "CREATE", "object": {"spec": []}}, id="spec-list"),
    pytest.param({"uid": "u", "kind": {"kind": "Pod"}, "operation": "CREATE", "namespace": 3, "object": {}},
                 id="namespace-number"),
    pytest.param({"uid": "u", "kind": {"kind": "Pod"}, "operation": "CREATE",
                  "object": {"spec": {"containers": [{"name": "a", "env": "x"}]}}}, id="env-string"),
    pytest.param({"uid": "u", "kind": {"kind": "Pod"}, "operation": "CREATE",
                  "object": {"spec": {"containers": [1, 2]}}}, id="containers-numbers"),
    pytest.param({"uid": "u", "kind": {"kind": "Pod"}, "operation": "CREATE", "metadata": None,
                  "object": {"metadata": "x", "spec": {}}}, id="metadata-string"),
    pytest.param({"uid": "u", "kind": {"kind": "Pod"}, "operation": "CREATE", "object": {"spec": {"containers": [
                      {"name": "a", "resources": {"limits": {"nvidia.com/gpu": "x"}}}]}}}, id="bad-quantity"),
]  # fmt: skip


@pytest.mark.parametrize("req", HOSTILE)
def test_hostile_requests_give_error_responses(req: Any) -> None:
    r = run(req)
    assert isinstance(r, Response)
    assert r.error and not r.allowed and r.code == 400
    assert r.message.startswith("gpuguard: bad request:")
    r.to_review()  # serialisable


def test_error_names_the_field() -> None:
    r = run(request([{"name": "a", "env": [{"name": NVD, "value": 1}]}]))
    assert "spec.containers[0].env[0].value" in r.message


def test_huge_container_list_is_judged() -> None:
    req = request([c(f"c{i}") for i in range(2000)])
    r = run(req, validate=False)
    assert len(r.patch) == 2000


def test_review_of_envelope() -> None:
    assert isinstance(review_of({"kind": "AdmissionReview"}), Response)
    assert isinstance(review_of({"kind": "AdmissionReview", "apiVersion": "admission.k8s.io/v1beta1"}), Response)
    ok = review_of({"kind": "AdmissionReview", "apiVersion": "admission.k8s.io/v1", "request": {"uid": "x"}})
    assert ok == ("x", {"uid": "x"})


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=8),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=30,
)
container_keys = st.sampled_from(["name", "image", "env", "envFrom", "resources", "securityContext", "volumeMounts"])


@st.composite
def hostile_requests(draw: st.DrawFn) -> dict[str, Any]:
    containers = draw(st.lists(st.dictionaries(container_keys, json_values, max_size=5) | json_values, max_size=4))
    other = draw(st.sampled_from(["initContainers", "ephemeralContainers", "volumes", "runtimeClassName",
                                  "resourceClaims"]))
    spec = {"containers": containers, other: draw(json_values)}
    op = draw(st.sampled_from(["CREATE", "UPDATE"]))
    req = request(op=op, sub=draw(st.sampled_from(["", "ephemeralcontainers"])))
    req["object"]["spec"] = draw(st.sampled_from([spec, json_values]))  # type: ignore[arg-type]
    if draw(st.booleans()):
        req["object"]["metadata"] = draw(json_values)
    if draw(st.booleans()):
        req["oldObject"] = draw(json_values)
    return req  # fmt: skip


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(hostile_requests())
def test_fuzzed_requests_never_raise(req: dict[str, Any]) -> None:
    r = run(req)
    assert isinstance(r, Response)
    assert r.code != 500, r.message  # hostile input is a 400, never an internal error
    r.to_review()
    if r.patch:
        after = with_patch(req["object"], r.patch)  # the patch applies to the object it was made for
        assert run({**req, "object": after}, validate=False).patch == ()


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from([
    {"name": NVD, "value": "all"}, {"name": NVD, "value": "void"}, {"name": NVD, "value": ""},
    {"name": NVD, "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}, {"name": "A", "value": "1"},
    {"name": "B", "value": "$(NVIDIA_VISIBLE_DEVICES)"},
]), max_size=6))  # fmt: skip
def test_mutation_property(env: list[dict[str, Any]]) -> None:
    req = request([c(env=copy.deepcopy(env))])
    after = patched(req, run(req, validate=False))
    result = envs(after) or []
    assert [e for e in result if e["name"] == NVD] == [VOID]
    assert [e for e in result if e["name"] != NVD] == [e for e in env if e["name"] != NVD]
    assert run(request([after["spec"]["containers"][0]]), validate=False).patch == ()


def test_configured_runtime_handlers_are_nvidia() -> None:
    req = one([c(resources=GPU)], runtimeClassName="gpu-custom")
    config = load_admission_config({"runtimeHandlers": ["nvidia", "gpu-custom"]})
    r = review(req, config)
    assert not r.allowed and "GG105" in r.message
    assert review({**req, "namespace": "gpu-operator"}, config).allowed


def test_many_warnings_fit_the_api_servers_total() -> None:
    req = request([c(f"c{i}", securityContext={"privileged": True}) for i in range(60)])
    r = run(req)
    assert r.allowed and sum(len(w) for w in r.warnings) <= 4096
    assert r.warnings[-1].startswith("gpuguard:") and "more warning" in r.warnings[-1]
