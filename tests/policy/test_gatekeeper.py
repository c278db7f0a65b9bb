"""The Gatekeeper export, evaluated by a real Rego engine (regopy: rego-cpp) over the shared case table."""

from __future__ import annotations

import re

import pytest
import yaml

from gpuguard.model.admission import AdmissionConfig, Exemption
from gpuguard.policy import gatekeeper
from gpuguard.policy.export import export, objects
from tests.admission.cases import CASES, Case
from tests.policy.engines import gatekeeper_verdicts, rego_violations, verdict


def _validation_only(expected: object) -> object:
    return "allow" if expected == "patch" else expected


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_rego_gives_the_table_verdict(case: Case) -> None:
    found, violations = gatekeeper_verdicts(objects("gatekeeper", AdmissionConfig()), case)
    assert verdict(found, patched=False) == _validation_only(case.expected), violations
    for v in violations:  # every message names the rule and what it is about
        assert v["msg"].startswith(v["details"]["rule"] + ": ")
        if "container" in v["details"]:
            assert f"container {v['details']['container']};" in v["msg"]


def test_rego_is_v1_syntax() -> None:
    rego = gatekeeper.rego()
    assert "import rego.v1" in rego
    assert "import future.keywords" not in rego
    # every rule with a body uses `if`; every partial set rule uses `contains`
    for line in rego.splitlines():
        if line.endswith("{") and not line.startswith(("\t", " ")):
            assert " if {" in line or line.startswith("package"), line
        if line.startswith("violation"):
            assert line.startswith("violation contains ")
    assert not re.search(r"^\w+\[", rego, re.MULTILINE), "v0 partial-set syntax (rule[x] { ... })"


def test_one_constraint_per_mode_with_the_gatekeeper_action() -> None:
    config = AdmissionConfig(modes={"GG102": "enforce", "GG103": "warn", "GG104": "audit", "GG105": "off"})
    docs = objects("gatekeeper", config)
    assert [d["kind"] for d in docs] == [
        "ConstraintTemplate",
        "GpuguardPodDevices",
        "GpuguardPodDevices",
        "GpuguardPodDevices",
    ]
    assert [(d["spec"]["enforcementAction"], d["spec"]["parameters"]["rules"]) for d in docs[1:]] == [
        ("deny", ["GG102"]),
        ("warn", ["GG103"]),
        ("dryrun", ["GG104"]),
    ]
    assert docs[0]["spec"]["crd"]["spec"]["names"]["kind"] == docs[1]["kind"]


def test_modes_change_the_verdict() -> None:
    case = next(c for c in CASES if c.name == "privileged-no-gpu")
    strict = AdmissionConfig(modes={**AdmissionConfig().modes, "GG104": "enforce"})
    assert verdict(gatekeeper_verdicts(objects("gatekeeper", strict), case)[0], False) == ("deny", "GG104")
    off = AdmissionConfig(modes={**AdmissionConfig().modes, "GG104": "off"})
    assert verdict(gatekeeper_verdicts(objects("gatekeeper", off), case)[0], False) == "allow"


def test_parameters_carry_the_config() -> None:
    case = next(c for c in CASES if c.name == "runtimeclass-tenant")
    trusting = AdmissionConfig(trusted_namespaces=("ml-team",))
    assert verdict(gatekeeper_verdicts(objects("gatekeeper", trusting), case)[0], False) == "allow"
    other_handlers = AdmissionConfig(runtime_handlers=("nvidia-cdi",))
    assert verdict(gatekeeper_verdicts(objects("gatekeeper", other_handlers), case)[0], False) == "allow"


@pytest.mark.parametrize(
    "exemption",
    [
        Exemption("lab", namespaces=("ml-team",)),
        Exemption("node tools", service_accounts=("ml-team/node-tool",)),
        Exemption("labelled", pod_labels=(("app", "node-tool"),)),
        Exemption("alpine images", images=("alpine:*",)),
    ],
    ids=["namespace", "service-account", "pod-label", "image"],
)
def test_exemptions(exemption: Exemption) -> None:
    case = next(c for c in CASES if c.name == "hostpath-dev")
    case.pod["spec"]["serviceAccountName"] = "node-tool"
    try:
        found, _ = gatekeeper_verdicts(objects("gatekeeper", AdmissionConfig(exemptions=(exemption,))), case)
        assert verdict(found, False) == "allow"
    finally:
        del case.pod["spec"]["serviceAccountName"]


def test_several_rules_and_containers_are_all_reported() -> None:
    rego = gatekeeper.rego()
    review = {
        "namespace": "team",
        "object": {
            "metadata": {"namespace": "team", "annotations": {"cdi.k8s.io/x": "nvidia.com/gpu=all"}},
            "spec": {
                "runtimeClassName": "nvidia-cdi",
                "volumes": [{"name": "d", "hostPath": {"path": "/dev/"}}],
                "containers": [
                    {"name": "a", "image": "x", "volumeMounts": [{"name": "d", "mountPath": "/d"}]},
                    {"name": "b", "image": "x", "securityContext": {"privileged": True}},
                ],
            },
        },
    }
    params = gatekeeper.parameters(AdmissionConfig(), ("GG103", "GG104", "GG105", "GG106"))
    got = sorted(
        (v["details"]["rule"], v["details"].get("container", "")) for v in rego_violations(rego, review, params)
    )
    assert got == [("GG103", "a"), ("GG104", "b"), ("GG105", ""), ("GG106", "")]


def test_yaml_round_trips_and_keeps_the_rego_readable() -> None:
    text = export("gatekeeper")
    docs = list(yaml.safe_load_all(text))
    assert docs == objects("gatekeeper", AdmissionConfig())
    assert "rego: |" in text
