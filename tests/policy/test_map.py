"""The MutatingAdmissionPolicy export: its ApplyConfiguration evaluated by a real CEL engine.

Object construction (``Object.spec.containers{...}``) is Kubernetes' typed
syntax; the test rewrites it to map literals, which keeps every other part of
the expression (the GPU-request predicate, the exemption, the has() guards) as
written, and evaluates that.
"""

from __future__ import annotations

import copy
import dataclasses
import re
from typing import Any

import pytest

from gpuguard.model.admission import AdmissionConfig
from gpuguard.policy.export import objects
from tests.admission.cases import CASES, CUDA, NVD, Case
from tests.policy.engines import cel_context, cel_eval
from tests.policy.test_kyverno import kyverno_patches

_TYPED = re.compile(r"Object(\.spec(\.\w+)*)?\{")
_FIELD = re.compile(r"([{,]\s*)(\w+): ")


def as_map_literals(expression: str) -> str:
    return _FIELD.sub(r'\1"\2": ', _TYPED.sub("{", expression))


def applied(case: Case, config: AdmissionConfig | None = None) -> dict[str, Any]:
    """The apply configuration the policy computes for ``case``."""
    policy = objects("map", config or AdmissionConfig())[0]
    ctx = cel_context(case)
    bound: dict[str, Any] = {}
    ctx["variables"] = bound
    for var in policy["spec"]["variables"]:
        bound[var["name"]] = cel_eval(var["expression"], ctx)
    (mutation,) = policy["spec"]["mutations"]
    return dict(cel_eval(as_map_literals(mutation["applyConfiguration"]["expression"]), ctx))


def changes(case: Case, config: AdmissionConfig | None = None) -> list[str]:
    """Containers whose env the apply would change (an existing NVIDIA_VISIBLE_DEVICES=void is a no-op)."""
    spec = case.pod["spec"]
    out = []
    for kind, entries in applied(case, config)["spec"].items():
        current = {c["name"]: c for c in spec.get(kind, [])}
        for entry in entries:
            assert entry["env"] == [{"name": NVD, "value": "void"}]
            if {"name": NVD, "value": "void"} not in current[entry["name"]].get("env", []):
                out.append(entry["name"])
    return out


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_map_patches_what_the_table_patches(case: Case) -> None:
    """A pod is "patch" when a container changes and validation allows it (deny/warn cases may be patched too)."""
    if case.expected in ("patch", "allow"):
        assert bool(changes(case)) == (case.expected == "patch")


def test_gpu_containers_and_exempt_pods_are_left_alone() -> None:
    by_name = {c.name: c for c in CASES}
    assert changes(by_name["gpu-plain-limit"]) == []
    assert changes(by_name["gpu-operator-daemonset-pod"]) == []
    assert sorted(changes(by_name["init-container-hostpath"])) == ["app", "probe"]
    assert changes(by_name["ephemeral-debug-cuda"]) == ["debugger"]


def test_mutation_off_exports_nothing() -> None:
    assert objects("map", AdmissionConfig(mutate=False)) == []


def test_binding_and_versions() -> None:
    policy, binding = objects("map", AdmissionConfig())
    assert policy["apiVersion"] == binding["apiVersion"] == "admissionregistration.k8s.io/v1beta1"
    assert binding["spec"]["policyName"] == policy["metadata"]["name"]
    assert policy["spec"]["mutations"][0]["patchType"] == "ApplyConfiguration"


def test_an_ephemeral_update_patches_only_the_new_ephemeral_container() -> None:
    base = next(c for c in CASES if c.name == "ephemeral-debug-cuda")
    old = copy.deepcopy(base.old_pod)
    assert old is not None
    old["spec"]["containers"][0].pop("env")  # an existing container without void: immutable now, left alone
    old["spec"]["ephemeralContainers"] = [{"name": "earlier", "image": CUDA}]
    new = copy.deepcopy(old)
    new["spec"]["ephemeralContainers"].append(base.pod["spec"]["ephemeralContainers"][0])
    case = dataclasses.replace(base, pod=new, old_pod=old)
    assert changes(case) == ["debugger"]
    docs = objects("kyverno", AdmissionConfig())
    assert kyverno_patches(docs[-1], new, old) == ["debugger"]


def test_only_creates_and_ephemeral_updates_are_mutated() -> None:
    policy = objects("map", AdmissionConfig())[0]
    rules = [(r["operations"], r["resources"]) for r in policy["spec"]["matchConstraints"]["resourceRules"]]
    assert rules == [(["CREATE"], ["pods"]), (["UPDATE"], ["pods/ephemeralcontainers"])]
