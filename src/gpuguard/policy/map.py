"""MutatingAdmissionPolicy + Binding (admissionregistration.k8s.io/v1beta1): GG101 by ApplyConfiguration.

On CREATE, every container, init and ephemeral container that requests no
``nvidia.com/*`` resource (and has no DRA claim) gets ``NVIDIA_VISIBLE_DEVICES=void`` through server-side-apply merge
(containers and env are list-maps keyed by name, so other entries stay); on an
UPDATE of ``pods/ephemeralcontainers``, only the new ephemeral containers.
What an apply merge cannot do: drop a ``valueFrom`` on an existing
NVIDIA_VISIBLE_DEVICES entry (the API server then rejects the pod as invalid).
"""

from __future__ import annotations

from typing import Any

from gpuguard.model.admission import AdmissionConfig
from gpuguard.policy import cel
from gpuguard.policy.common import LABELS, NVD, VALIDATED, policy_annotations

API = "admissionregistration.k8s.io/v1beta1"
NAME = "gpuguard-void"
NOTE = (
    "GG101 only: sets NVIDIA_VISIBLE_DEVICES=void on containers without a GPU request; an existing "
    "NVIDIA_VISIBLE_DEVICES entry with valueFrom cannot be rewritten by an apply merge. Validation is in the "
    "ValidatingAdmissionPolicy export."
)


_NEW_EPHEMERAL = (
    "!(oldObject != null && has(oldObject.spec.ephemeralContainers) && "
    "oldObject.spec.ephemeralContainers.exists(o, o.name == c.name))"
)


def _kind(kind: str) -> str:
    """The apply entries for one container list: CREATE patches every list; an UPDATE of the
    ``pods/ephemeralcontainers`` subresource only the new ephemeral containers (the rest is immutable)."""
    if kind == "ephemeralContainers":
        pred, when = _NEW_EPHEMERAL, f"has(object.spec.{kind}) && "
    else:
        pred = f"!{cel.requests('c')} && !(has(c.resources) && has(c.resources.claims) && size(c.resources.claims) > 0)"
        when = "request.operation == 'CREATE' && " + ("" if kind == "containers" else f"has(object.spec.{kind}) && ")
    entry = f'Object.spec.{kind}.env{{name: "{NVD}", value: "void"}}'
    items = f"object.spec.{kind}.filter(c, {pred}).map(c, Object.spec.{kind}{{name: c.name, env: [{entry}]}})"
    return f"{when}!variables.exempt ? {items} : []"


def objects(config: AdmissionConfig) -> list[dict[str, Any]]:
    """The policy and its binding; nothing when mutation is off."""
    if not config.mutate:
        return []
    fields = ", ".join(f"{k}: {_kind(k)}" for k in cel.KINDS)
    expression = f"Object{{spec: Object.spec{{{fields}}}}}"
    return [
        {
            "apiVersion": API,
            "kind": "MutatingAdmissionPolicy",
            "metadata": {
                "name": NAME,
                "labels": dict(LABELS),
                "annotations": policy_annotations(config, VALIDATED, NOTE),
            },
            "spec": {
                "failurePolicy": "Fail",
                "reinvocationPolicy": "IfNeeded",
                "matchConstraints": {
                    "resourceRules": [
                        {"apiGroups": [""], "apiVersions": ["v1"], "operations": ["CREATE"], "resources": ["pods"]},
                        {
                            "apiGroups": [""],
                            "apiVersions": ["v1"],
                            "operations": ["UPDATE"],
                            "resources": ["pods/ephemeralcontainers"],
                        },
                    ]
                },
                "variables": cel.variables(config, ())[:3],
                "mutations": [{"patchType": "ApplyConfiguration", "applyConfiguration": {"expression": expression}}],
            },
        },
        {
            "apiVersion": API,
            "kind": "MutatingAdmissionPolicyBinding",
            "metadata": {"name": NAME, "labels": dict(LABELS)},
            "spec": {"policyName": NAME},
        },
    ]
