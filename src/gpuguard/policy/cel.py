"""The admission rules in CEL, shared by the ValidatingAdmissionPolicy and Kyverno's CEL validate rules.

Only standard CEL (macros ``has``/``exists``/``all``/``filter``/``map``, ``matches``,
``startsWith``, ``size``, ``string``): no optional types, no Kubernetes library
functions, so every conformant engine evaluates it. Each rule is a variable
holding the names of the offending containers (empty when the pod is exempt),
and a validation that the list is empty.
"""

from __future__ import annotations

import json

from gpuguard.model.admission import AdmissionConfig
from gpuguard.policy.common import (
    AMOUNT_RESOURCES,
    COMPONENTS,
    DEV_NULL_RE,
    DEVICE_PATH_RE,
    FORGED_MOUNT_RE,
    NVD,
    SAFE_VALUES,
    glob_re,
    title,
)

KINDS = ("containers", "initContainers", "ephemeralContainers")


def lit(value: object) -> str:
    """A CEL literal (JSON strings and lists are CEL literals too)."""
    return json.dumps(value)


def _has_true(path: str, leaf: str) -> str:
    return f"has({path}.{leaf}) && {path}.{leaf} == true"


def requests(c: str) -> str:
    def side(field: str) -> str:
        m = f"{c}.resources.{field}"
        return (
            f"(has({m}) && {m}.exists(k, k.startsWith('nvidia.com/') && !(k in {lit(list(AMOUNT_RESOURCES))}) "
            f"&& string({m}[k]) != '0'))"
        )

    return f"(has({c}.resources) && ({side('limits')} || {side('requests')}))"


def _host_mount(c: str, path_re: str, mount_re: str | None = None) -> str:
    sub = "(has(m.subPath) && m.subPath != '' ? '/' + m.subPath : '')"
    at = f" && m.mountPath.matches({lit(mount_re)})" if mount_re else ""
    return (
        f"(has({c}.volumeMounts) && has(object.spec.volumes) && {c}.volumeMounts.exists(m, "
        f"object.spec.volumes.exists(v, v.name == m.name && has(v.hostPath) && "
        f"(v.hostPath.path + {sub}).matches({lit(path_re)})){at}))"
    )


def _privileged(c: str) -> str:
    sc = f"{c}.securityContext"
    caps = f"{sc}.capabilities"
    return (
        f"(has({sc}) && (({_has_true(sc, 'privileged')}) || (has({caps}) && has({caps}.add) && "
        f"{caps}.add.exists(a, a == 'SYS_ADMIN' || a == 'CAP_SYS_ADMIN'))))"
    )


def _env_widens(c: str) -> str:
    return (
        f"(has({c}.env) && {c}.env.exists(e, e.name == '{NVD}' && has(e.value) && "
        f"!(e.value in {lit(list(SAFE_VALUES))})))"
    )


def container_predicates(kind: str) -> dict[str, str]:
    """Per-container CEL predicates over ``c`` (a container of ``kind``) for the container rules."""
    req = "false" if kind == "ephemeralContainers" else requests("c")
    claims = "(has(object.spec.resourceClaims) && size(object.spec.resourceClaims) > 0)"
    return {
        "GG102": f"{req} && ({_env_widens('c')} || {_privileged('c')})",
        "GG103": _host_mount("c", DEVICE_PATH_RE),
        "GG104": f"!{req} && !{claims} && {_privileged('c')}",
        "GG107": _host_mount("c", DEV_NULL_RE, FORGED_MOUNT_RE),
    }


def _image_exempt(config: AdmissionConfig) -> str:
    patterns = [glob_re(p) for e in config.exemptions for p in e.images]
    if not patterns:
        return ""
    return " && !(" + " || ".join(f"c.image.matches({lit(p)})" for p in patterns) + ")"


def _offenders(rule_id: str, config: AdmissionConfig) -> str:
    parts = []
    for kind in KINDS:
        pred = container_predicates(kind)[rule_id] + _image_exempt(config)
        lst = f"object.spec.{kind}"
        found = f"{lst}.filter(c, {pred}).map(c, c.name)"
        parts.append(found if kind == "containers" else f"(has({lst}) ? {found} : [])")
    return "variables.exempt ? [] : " + " + ".join(parts)


def _labels(path: str, pairs: tuple[tuple[str, str], ...]) -> str:
    return " && ".join(f"has({path}.labels) && {lit(k)} in {path}.labels && {path}.labels[{lit(k)}] == {lit(v)}"
                       for k, v in pairs)  # fmt: skip


def exempt_expression(config: AdmissionConfig) -> str:
    """GPU Operator components in trusted namespaces, and the configured exemptions (pod-wide)."""
    apps, accounts, owners = COMPONENTS
    meta = "object.metadata"
    component = (
        f"variables.trusted && ((has({meta}.labels) && 'app' in {meta}.labels && "
        f"({meta}.labels['app'] in {lit(apps)} || {meta}.labels['app'].startsWith('nvidia-gpu-driver-'))) || "
        f"(has(object.spec.serviceAccountName) && object.spec.serviceAccountName in {lit(accounts)}) || "
        f"(has({meta}.ownerReferences) && {meta}.ownerReferences.exists(r, r.kind in {lit(owners)} && "
        f"r.apiVersion.startsWith('nvidia.com/'))))"
    )
    terms = [f"({component})"]
    for e in config.exemptions:
        cond = []
        if e.namespaces:
            cond.append(f"variables.namespace in {lit(list(e.namespaces))}")
        if e.service_accounts:
            cond.append(
                f"(variables.namespace + '/' + (has(object.spec.serviceAccountName) ? object.spec.serviceAccountName "
                f": 'default')) in {lit(list(e.service_accounts))}"
            )
        if e.pod_labels:
            cond.append(f"({_labels(meta, e.pod_labels)})")
        if e.namespace_labels:
            cond.append(f"(namespaceObject != null && {_labels('namespaceObject.metadata', e.namespace_labels)})")
        if cond:  # image-only exemptions are per container, in the offender lists
            terms.append("(" + " && ".join(cond) + ")")
    return " || ".join(terms)


def variables(config: AdmissionConfig, rule_ids: tuple[str, ...]) -> list[dict[str, str]]:
    """The variables the validations of ``rule_ids`` read, in dependency order."""
    out = [
        {
            "name": "namespace",
            "expression": "has(object.metadata.namespace) && object.metadata.namespace != '' ? "
            "object.metadata.namespace : request.namespace",
        },
        {"name": "trusted", "expression": f"variables.namespace in {lit(list(config.trusted_namespaces))}"},
        {"name": "exempt", "expression": exempt_expression(config)},
    ]
    for rule_id in rule_ids:
        if rule_id in ("GG102", "GG103", "GG104", "GG107"):
            out.append({"name": rule_id.lower(), "expression": _offenders(rule_id, config)})
    return out


_FIX = {
    "GG102": f"remove {NVD} from its env (let the device plugin's allocation decide) and drop privileged",
    "GG103": "remove the hostPath volume and request GPUs with resources.limits nvidia.com/gpu",
    "GG104": "drop privileged and SYS_ADMIN, or request GPUs with nvidia.com/gpu",
    "GG107": "remove the hostPath /dev/null volume mounted under /var/run/nvidia-container-devices",
}


def validations(config: AdmissionConfig, rule_ids: tuple[str, ...]) -> list[dict[str, str]]:
    """One validation per rule, with a messageExpression naming the rule and the container."""
    out = []
    for rule_id in rule_ids:
        if rule_id == "GG105":
            rc = "object.spec.runtimeClassName"
            out.append(
                {
                    "expression": f"variables.exempt || variables.trusted || !has({rc}) || "
                    f"!({rc} in {lit(list(config.runtime_handlers))})",
                    "messageExpression": f"{lit('GG105: ' + title('GG105') + ': runtimeClassName ')} + {rc} + "
                    "' in namespace ' + variables.namespace + "
                    "'; remove runtimeClassName (GPU requests do not need it)'",
                    "reason": "Forbidden",
                }
            )
            continue
        if rule_id == "GG106":
            ann = "object.metadata.annotations"
            keys = " || ".join(f"k.startsWith({lit(p)})" for p in config.cdi_annotation_prefixes) or "false"
            keys += " || k == 'nvidia.cdi.k8s.io'"
            out.append(
                {
                    "expression": f"variables.exempt || variables.trusted || !has({ann}) || !{ann}.exists(k, {keys})",
                    "messageExpression": f"{lit('GG106: ' + title('GG106') + ': annotation ')} + "
                    f"{ann}.filter(k, {keys})[0] + "
                    "' in namespace ' + variables.namespace + '; remove it and request GPUs with nvidia.com/gpu'",
                    "reason": "Forbidden",
                }
            )
            continue
        var = f"variables.{rule_id.lower()}"
        more = f"(size({var}) > 1 ? ' (and ' + string(size({var}) - 1) + ' more)' : '')"
        out.append(
            {
                "expression": f"size({var}) == 0",
                "messageExpression": f"{lit(f'{rule_id}: {title(rule_id)}: container ')} + {var}[0] + {more} + "
                f"{lit('; ' + _FIX[rule_id])}",
                "reason": "Forbidden",
            }
        )
    return out
