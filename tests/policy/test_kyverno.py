"""The Kyverno export: Kyverno's CRD schema (@kubernetes-models/kyverno validators and field tree), its CEL
validate rules evaluated by a real CEL engine, and its mutate preconditions by a real JMESPath engine."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import jmespath
import pytest

from gpuguard.model.admission import AdmissionConfig
from gpuguard.policy.export import objects
from tests.admission.cases import CASES, NVD, Case
from tests.policy.crd_fields import field_tree, unknown_fields
from tests.policy.engines import CEL_ENGINES, kyverno_verdicts, verdict

ROOT = Path(__file__).resolve().parents[2]
NODE_MODULES = ROOT / ".cache" / "npm" / "node_modules"
MODELS = NODE_MODULES / "@kubernetes-models" / "kyverno"
VALIDATOR = Path(__file__).with_name("validate_clusterpolicy.cjs")
# Fields newer than the CRD in @kubernetes-models/kyverno 0.3.4 (Kyverno 1.11): an older Kyverno prunes them.
NEWER_FIELDS = {".spec.emitWarning"}  # Kyverno >= 1.12: Audit results also sent as admission warnings


def _models() -> Path:
    if not MODELS.is_dir():
        pytest.fail("the Kyverno CRD validators are missing: run ./scripts/test (it installs them)")
    return MODELS


def _validate_with_crd(docs: list[dict[str, Any]]) -> list[str]:
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed: the CRD validators are JavaScript")
    _models()
    env = {**os.environ, "NODE_PATH": str(NODE_MODULES)}
    done = subprocess.run(
        [node, str(VALIDATOR)], input=json.dumps(docs), capture_output=True, text=True, env=env, check=True, timeout=60
    )
    return done.stdout.splitlines()


CONFIGS = [
    AdmissionConfig(),
    AdmissionConfig(modes={"GG102": "audit", "GG103": "warn", "GG104": "enforce", "GG105": "off"}, mutate=False),
]


@pytest.mark.parametrize("config", CONFIGS, ids=["defaults", "mixed-modes"])
def test_policies_validate_against_the_clusterpolicy_crd(config: AdmissionConfig) -> None:
    docs = objects("kyverno", config)
    assert _validate_with_crd(docs) == ["ok"] * len(docs)


def test_the_crd_validator_does_reject() -> None:
    bad = objects("kyverno", AdmissionConfig())[0]
    bad["spec"]["validationFailureAction"] = "Deny"
    bad["spec"]["rules"][0]["validate"]["cel"]["expressions"][0]["expression"] = 42
    (line,) = _validate_with_crd([bad])
    assert line.startswith("invalid ")
    assert "validationFailureAction" in line and "expression" in line


@pytest.mark.parametrize("config", CONFIGS, ids=["defaults", "mixed-modes"])
def test_every_field_is_known_to_the_crd(config: AdmissionConfig) -> None:
    tree = field_tree(_models() / "kyverno.io" / "v1" / "ClusterPolicy.d.ts", "IClusterPolicy")
    for doc in objects("kyverno", config):
        assert set(unknown_fields(doc, tree)) <= NEWER_FIELDS, doc["metadata"]["name"]


def test_field_tree_finds_unknown_fields() -> None:
    tree = field_tree(_models() / "kyverno.io" / "v1" / "ClusterPolicy.d.ts", "IClusterPolicy")
    doc = objects("kyverno", AdmissionConfig())[0]
    doc["spec"]["rules"][0]["validate"]["failureActions"] = "Enforce"
    assert unknown_fields(doc, tree) == [".spec.rules[0].validate.failureActions"]


def test_one_policy_per_mode_and_one_for_the_mutation() -> None:
    docs = objects("kyverno", AdmissionConfig())
    summary = [
        (d["metadata"]["name"], d["spec"].get("validationFailureAction"), d["spec"].get("emitWarning"),
         [r["name"] for r in d["spec"]["rules"]])
        for d in docs
    ]  # fmt: skip
    assert summary == [
        ("gpuguard-enforce", "Enforce", None, ["gg102", "gg103", "gg105", "gg106", "gg107"]),
        ("gpuguard-warn", "Audit", True, ["gg104"]),
        ("gpuguard-void", None, None, ["void-containers", "void-initcontainers", "void-ephemeralcontainers"]),
    ]
    for rule in docs[0]["spec"]["rules"]:
        assert rule["match"]["any"][0]["resources"]["kinds"] == ["Pod", "Pod/ephemeralcontainers"]


# --- the mutation, by JMESPath ------------------------------------------------------------------------------------


def _jmes(template: str, data: dict[str, Any]) -> Any:
    assert template.startswith("{{") and template.endswith("}}"), template
    return jmespath.search(template[2:-2].strip(), data)


def _condition(cond: dict[str, Any], data: dict[str, Any]) -> bool:
    value = _jmes(cond["key"], data)
    if cond["operator"] == "Equals":
        return bool(value == cond["value"])
    assert cond["operator"] == "GreaterThan"
    return bool(value > cond["value"])


def _excluded(rule: dict[str, Any], pod: dict[str, Any]) -> bool:
    for item in rule.get("exclude", {}).get("any", []):
        res = item["resources"]
        if pod["metadata"]["namespace"] not in res.get("namespaces", []):
            continue
        labels = pod["metadata"].get("labels", {})
        exprs = res["selector"]["matchExpressions"]
        if all(e["operator"] == "In" and labels.get(e["key"]) in e["values"] for e in exprs):
            return True
    return False


def _matches(rule: dict[str, Any], operation: str) -> bool:
    return any(operation in m["resources"]["operations"] for m in rule["match"]["any"])


def kyverno_patches(policy: dict[str, Any], pod: dict[str, Any], old: dict[str, Any] | None = None) -> list[str]:
    """Names of the containers whose env the mutate rules change (an UPDATE when ``old`` is given)."""
    changed = []
    for rule in policy["spec"]["rules"]:
        if _excluded(rule, pod) or not _matches(rule, "UPDATE" if old else "CREATE"):
            continue
        data: dict[str, Any] = {"request": {"object": pod, "oldObject": old}}
        if not all(_condition(c, data) for c in rule.get("preconditions", {}).get("all", [])):
            continue
        (each,) = rule["mutate"]["foreach"]
        for element in _jmes("{{" + each["list"] + "}}", data) or []:
            scope = {**data, "element": element}
            if not all(_condition(c, scope) for c in each.get("preconditions", {}).get("all", [])):
                continue
            ((entry,),) = each["patchStrategicMerge"]["spec"].values()
            assert entry == {"(name)": "{{ element.name }}", "env": [{"name": NVD, "value": "void"}]}
            if {"name": NVD, "value": "void"} not in element.get("env", []):
                changed.append(element["name"])
    return changed


@pytest.mark.parametrize("engine", CEL_ENGINES)
@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_kyverno_gives_the_table_verdict(case: Case, engine: str) -> None:
    docs = objects("kyverno", AdmissionConfig())
    found = kyverno_verdicts(docs, case, engine)
    patched = bool(kyverno_patches(docs[-1], case.pod, case.old_pod if case.subresource else None))
    assert verdict(found, patched) == case.expected
