"""Kyverno ClusterPolicies: GG102-GG107 as CEL validate rules, GG101 as a foreach mutate rule.

Kyverno's ``validationFailureAction`` is policy-wide in every release that has it,
so there is one policy per mode (enforce -> Enforce; warn -> Audit with
``emitWarning``, Kyverno >= 1.12; audit -> Audit) and one for the mutation.
The CEL is the ValidatingAdmissionPolicy's (Kyverno >= 1.11 evaluates CEL rules).
"""

from __future__ import annotations

from typing import Any

from gpuguard.model.admission import AUDIT, ENFORCE, WARN, AdmissionConfig
from gpuguard.policy import cel
from gpuguard.policy.common import AMOUNT_RESOURCES, COMPONENTS, LABELS, NVD, VALIDATED, groups, policy_annotations

ACTIONS = {ENFORCE: "Enforce", WARN: "Audit", AUDIT: "Audit"}
MATCH = {"any": [{"resources": {"kinds": ["Pod", "Pod/ephemeralcontainers"], "operations": ["CREATE", "UPDATE"]}}]}
NOTE = (
    "GG102 here catches only the pod's own NVIDIA_VISIBLE_DEVICES (or privileged) widening a GPU request, never "
    "image env (a Kyverno imageRegistry context could read it; not exported); NVIDIA runtime classes outside "
    "trusted namespaces are GG105."
)
MUTATE_NOTE = (
    "GG101: sets NVIDIA_VISIBLE_DEVICES=void on containers without an nvidia.com/* request (a request of 0 counts "
    "as a request here). GPU Operator components are recognised by their app label in trusted namespaces only; the "
    "configured exemptions are not applied."
)
# JMESPath: the nvidia.com/* device resources a container's limits or requests name.
_GPU_KEYS = (
    "{{{{ length(keys(element.resources.{side} || `{{}}`)[?starts_with(@, 'nvidia.com/') && "
    + " && ".join(f"@ != '{r}'" for r in AMOUNT_RESOURCES)
    + "]) }}}}"
)


def _no_reason(item: dict[str, str]) -> dict[str, str]:
    """Kyverno's CEL expressions have no ``reason``."""
    return {k: v for k, v in item.items() if k != "reason"}


_CLAIMS = "{{ length(element.resources.claims || `[]`) }}"
_NEW_EPHEMERAL = "{{ contains(request.oldObject.spec.ephemeralContainers[].name || `[]`, element.name) }}"
_CREATE = {"any": [{"resources": {"kinds": ["Pod"], "operations": ["CREATE"]}}]}


def _validate_policy(config: AdmissionConfig, mode: str, ids: tuple[str, ...]) -> dict[str, Any]:
    spec: dict[str, Any] = {"validationFailureAction": ACTIONS[mode], "background": True}
    if mode == WARN:
        spec["emitWarning"] = True
    rules = []
    for rule_id in ids:
        rules.append(
            {
                "name": rule_id.lower(),
                "match": MATCH,
                "validate": {
                    "cel": {
                        "variables": cel.variables(config, (rule_id,)),
                        "expressions": [_no_reason(item) for item in cel.validations(config, (rule_id,))],
                    }
                },
            }
        )
    spec["rules"] = rules
    return {
        "apiVersion": "kyverno.io/v1",
        "kind": "ClusterPolicy",
        "metadata": {
            "name": f"gpuguard-{mode}",
            "labels": dict(LABELS),
            "annotations": policy_annotations(config, ["GG101"], NOTE),
        },
        "spec": spec,
    }


def _foreach(kind: str) -> dict[str, Any]:
    """Set NVIDIA_VISIBLE_DEVICES=void on each ``kind`` entry without a device request (strategic merge by name)."""
    if kind == "ephemeralContainers":  # only new ones: an existing ephemeral container is immutable
        conditions = [{"key": _NEW_EPHEMERAL, "operator": "Equals", "value": False}]
    else:
        conditions = [
            {"key": _GPU_KEYS.format(side=side), "operator": "Equals", "value": 0} for side in ("limits", "requests")
        ]
        conditions.append({"key": _CLAIMS, "operator": "Equals", "value": 0})
    env = {"name": NVD, "value": "void"}
    patch = {"spec": {kind: [{"(name)": "{{ element.name }}", "env": [env]}]}}
    each = {"list": f"request.object.spec.{kind}", "preconditions": {"all": conditions}, "patchStrategicMerge": patch}
    return {"foreach": [each]}


def _mutate_policy(config: AdmissionConfig) -> dict[str, Any]:
    apps = COMPONENTS[0]
    selector = {"matchExpressions": [{"key": "app", "operator": "In", "values": apps}]}
    exclude = {"any": [{"resources": {"namespaces": list(config.trusted_namespaces), "selector": selector}}]}
    rules = []
    for kind in cel.KINDS:
        rule: dict[str, Any] = {
            "name": f"void-{kind.lower()}",
            "match": MATCH if kind == "ephemeralContainers" else _CREATE,
            "exclude": exclude,
            "mutate": _foreach(kind),
        }
        if kind != "containers":
            rule["preconditions"] = {
                "all": [
                    {
                        "key": f"{{{{ request.object.spec.{kind} || `[]` | length(@) }}}}",
                        "operator": "GreaterThan",
                        "value": 0,
                    }
                ]
            }
        rules.append(rule)
    return {
        "apiVersion": "kyverno.io/v1",
        "kind": "ClusterPolicy",
        "metadata": {
            "name": "gpuguard-void",
            "labels": dict(LABELS),
            "annotations": policy_annotations(config, VALIDATED, MUTATE_NOTE),
        },
        "spec": {"background": False, "rules": rules},
    }


def objects(config: AdmissionConfig) -> list[dict[str, Any]]:
    """One validating policy per mode, then the mutating policy (when mutation is on)."""
    out = [_validate_policy(config, mode, ids) for mode, ids in groups(config)]
    if config.mutate:
        out.append(_mutate_policy(config))
    return out
