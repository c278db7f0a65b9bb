"""ValidatingAdmissionPolicy + Binding (admissionregistration.k8s.io/v1): GG102-GG107 in CEL.

A binding's ``validationActions`` hold for every validation of its policy, so
there is one policy and binding per mode: enforce -> Deny, warn -> Warn, audit -> Audit.
"""

from __future__ import annotations

from typing import Any

from gpuguard.model.admission import AUDIT, ENFORCE, WARN, AdmissionConfig
from gpuguard.policy import cel
from gpuguard.policy.common import LABELS, groups, policy_annotations

API = "admissionregistration.k8s.io/v1"
ACTIONS = {ENFORCE: ["Deny"], WARN: ["Warn"], AUDIT: ["Audit"]}
NOTE = (
    "GG102 here catches only the pod's own NVIDIA_VISIBLE_DEVICES (or privileged) widening a GPU request, "
    "never image env; NVIDIA runtime classes outside trusted namespaces are GG105. GG101 needs mutation "
    "(see the MutatingAdmissionPolicy export)."
)
MATCH = {
    "resourceRules": [
        {
            "apiGroups": [""],
            "apiVersions": ["v1"],
            "operations": ["CREATE", "UPDATE"],
            "resources": ["pods", "pods/ephemeralcontainers"],
        }
    ]
}


def objects(config: AdmissionConfig) -> list[dict[str, Any]]:
    """The policies and their bindings."""
    out: list[dict[str, Any]] = []
    for mode, ids in groups(config):
        name = f"gpuguard-{mode}"
        out.append(
            {
                "apiVersion": API,
                "kind": "ValidatingAdmissionPolicy",
                "metadata": {
                    "name": name,
                    "labels": dict(LABELS),
                    "annotations": policy_annotations(config, ["GG101"], NOTE),
                },
                "spec": {
                    "failurePolicy": "Fail",
                    "matchConstraints": MATCH,
                    "variables": cel.variables(config, ids),
                    "validations": cel.validations(config, ids),
                },
            }
        )
        out.append(
            {
                "apiVersion": API,
                "kind": "ValidatingAdmissionPolicyBinding",
                "metadata": {"name": name, "labels": dict(LABELS)},
                "spec": {"policyName": name, "validationActions": ACTIONS[mode]},
            }
        )
    return out
