"""The ValidatingAdmissionPolicy export, evaluated by a real CEL engine (common-expression-language: cel-rust)."""

from __future__ import annotations

import re

import pytest

from gpuguard.model.admission import AdmissionConfig, Exemption
from gpuguard.policy.export import objects
from tests.admission.cases import CASES, Case
from tests.policy.engines import CEL_ENGINES, cel_context, cel_eval, vap_verdicts, verdict

# Kubernetes CEL library functions (and optional types) that a plain conformant engine lacks: never used.
NOT_STANDARD = re.compile(
    r"\?\.|\.orValue\(|optional\.|\.join\(|\.split\(|\.lowerAscii\(|\.indexOf\(|quantity\(|\.format\(|cel\.bind|"
    r"\.sets\.|url\(|ip\(|cidr\("
)


def _expressions(docs: list[dict]) -> list[str]:
    out = []
    for d in docs:
        spec = d["spec"]
        out += [v["expression"] for v in spec.get("variables", [])]
        out += [x for v in spec.get("validations", []) for x in (v["expression"], v["messageExpression"])]
    return out


@pytest.mark.parametrize("engine", CEL_ENGINES)
@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_cel_gives_the_table_verdict(case: Case, engine: str) -> None:
    found, messages = vap_verdicts(objects("vap", AdmissionConfig()), case, engine)
    expected = "allow" if case.expected == "patch" else case.expected
    assert verdict(found, patched=False) == expected, messages


@pytest.mark.parametrize("engine", CEL_ENGINES)
@pytest.mark.parametrize("case", [c for c in CASES if c.rule is not None], ids=lambda c: c.name)
def test_message_names_rule_and_container(case: Case, engine: str) -> None:
    _, messages = vap_verdicts(objects("vap", AdmissionConfig()), case, engine)
    (message,) = messages
    assert message.startswith(f"{case.rule}: ")
    spec = case.pod["spec"]
    names = [c["name"] for k in ("containers", "initContainers", "ephemeralContainers") for c in spec.get(k, [])]
    if case.rule in ("GG105", "GG106"):
        assert case.namespace in message
    else:
        assert any(f"container {n};" in message for n in names), message


def test_no_optional_types_and_no_kubernetes_library_functions() -> None:
    config = AdmissionConfig(exemptions=(Exemption("x", namespace_labels=(("team", "infra"),), images=("a/*",)),))
    for expression in _expressions(objects("vap", config)):
        assert not NOT_STANDARD.search(expression), expression


def test_one_policy_and_binding_per_mode() -> None:
    docs = objects("vap", AdmissionConfig(modes={"GG103": "enforce", "GG104": "warn", "GG106": "audit"}))
    pairs = [(d["kind"], d["metadata"]["name"]) for d in docs]
    assert pairs == [
        ("ValidatingAdmissionPolicy", "gpuguard-enforce"),
        ("ValidatingAdmissionPolicyBinding", "gpuguard-enforce"),
        ("ValidatingAdmissionPolicy", "gpuguard-warn"),
        ("ValidatingAdmissionPolicyBinding", "gpuguard-warn"),
        ("ValidatingAdmissionPolicy", "gpuguard-audit"),
        ("ValidatingAdmissionPolicyBinding", "gpuguard-audit"),
    ]
    assert [d["spec"]["validationActions"] for d in docs[1::2]] == [["Deny"], ["Warn"], ["Audit"]]
    assert all(d["apiVersion"] == "admissionregistration.k8s.io/v1" for d in docs)


def test_namespace_label_exemption_reads_namespace_object() -> None:
    case = next(c for c in CASES if c.name == "hostpath-dev")
    config = AdmissionConfig(
        exemptions=(Exemption("infra", namespace_labels=(("kubernetes.io/metadata.name", "ml-team"),)),)
    )
    assert verdict(vap_verdicts(objects("vap", config), case)[0], False) == "allow"


def test_request_namespace_is_used_when_the_object_has_none() -> None:
    case = next(c for c in CASES if c.name == "runtimeclass-gpu-operator")
    ctx = cel_context(case)
    del ctx["object"]["metadata"]["namespace"]
    policy = objects("vap", AdmissionConfig())[0]
    namespace = policy["spec"]["variables"][0]["expression"]
    assert cel_eval(namespace, ctx) == "gpu-operator"


def test_kubernetes_openapi_schemas_accept_the_objects() -> None:
    kv = pytest.importorskip("kubernetes_validate")
    for doc in objects("vap", AdmissionConfig()) + objects("map", AdmissionConfig()):
        kv.validate(doc, "1.34.0", strict=True)


def test_kubernetes_openapi_schemas_do_reject() -> None:
    kv = pytest.importorskip("kubernetes_validate")
    bad = objects("vap", AdmissionConfig())[1]
    bad["spec"]["validationAction"] = ["Deny"]  # misspelt: strict schemas refuse unknown fields
    with pytest.raises(kv.ValidationError):
        kv.validate(bad, "1.34.0", strict=True)
