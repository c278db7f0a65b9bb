"""Real engines over the exports: Rego (regopy, rego-cpp) and CEL, twice: common-expression-language
(cel-rust) and cel-python (celpy), two independent implementations of the CEL spec.

Each returns the rule ids a policy object reports for one admission request,
grouped by what the engine would do with them: ``deny``, ``warn`` or ``audit``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import cel
import celpy
from celpy import celtypes
from regopy import Interpreter

from gpuguard.policy import gatekeeper
from tests.admission.cases import Case, admission_request

RULE_ID = re.compile(r"^(GG1\d\d): ")
GATEKEEPER_ACTIONS = {"deny": "deny", "warn": "warn", "dryrun": "audit"}
VAP_ACTIONS = {"Deny": "deny", "Warn": "warn", "Audit": "audit"}
KYVERNO_ACTIONS = {"Enforce": "deny", "Audit": "audit"}

Verdicts = dict[str, set[str]]


def verdict(found: Verdicts, patched: bool) -> object:
    """The table's verdict form: ("deny", id) / ("warn", id) / "patch" / "allow" (sets for several ids)."""
    for action in ("deny", "warn"):
        ids = found.get(action, set())
        if ids:
            return (action, next(iter(ids))) if len(ids) == 1 else (action, tuple(sorted(ids)))
    return "patch" if patched else "allow"


# --- Rego --------------------------------------------------------------------------------------------------------


def rego_violations(rego: str, review: Mapping[str, Any], parameters: Mapping[str, Any]) -> list[dict[str, Any]]:
    """``data.<package>.violation`` for one request, as Gatekeeper builds its input."""
    interpreter = Interpreter()
    interpreter.add_module("template.rego", rego)
    interpreter.set_input({"review": dict(review), "parameters": dict(parameters)})
    output = interpreter.query(f"data.{gatekeeper.PACKAGE}.violation")
    assert output.ok(), str(output)
    (result,) = output.results
    return list(result.expressions[0])


def gatekeeper_verdicts(objects: list[dict[str, Any]], case: Case) -> tuple[Verdicts, list[dict[str, Any]]]:
    template, *constraints = objects
    rego = template["spec"]["targets"][0]["rego"]
    found: Verdicts = {}
    every: list[dict[str, Any]] = []
    for constraint in constraints:
        violations = rego_violations(rego, admission_request(case), constraint["spec"]["parameters"])
        action = GATEKEEPER_ACTIONS[constraint["spec"]["enforcementAction"]]
        for v in violations:
            found.setdefault(action, set()).add(v["details"]["rule"])
        every += violations
    return found, every


# --- CEL ---------------------------------------------------------------------------------------------------------


def cel_context(case: Case) -> dict[str, Any]:
    """The variables Kubernetes binds for a ValidatingAdmissionPolicy (params unset: no paramKind)."""
    request = admission_request(case)
    namespace = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": case.namespace, "labels": {
        "kubernetes.io/metadata.name": case.namespace}}}  # fmt: skip
    return {
        "object": request["object"],
        "oldObject": request["oldObject"],
        "request": {k: v for k, v in request.items() if k not in ("object", "oldObject")},
        "params": None,
        "namespaceObject": namespace,
    }


CEL_ENGINES = ("cel-rust", "cel-python")
_CELPY = celpy.Environment()
_PROGRAMS: dict[str, Any] = {}


def cel_eval(expression: str, context: Mapping[str, Any]) -> Any:
    """``expression`` in cel-rust, over plain Python values."""
    return cel.evaluate(expression, dict(context))


def _celpy_eval(expression: str, activation: dict[str, Any]) -> Any:
    program = _PROGRAMS.get(expression)
    if program is None:
        program = _PROGRAMS[expression] = _CELPY.program(_CELPY.compile(expression))
    return program.evaluate(activation)


def _celpy_true(value: Any) -> bool:
    return isinstance(value, celtypes.BoolType) and bool(value)


def cel_failures(
    variables: list[dict[str, str]],
    validations: list[dict[str, str]],
    context: dict[str, Any],
    engine: str = "cel-rust",
) -> list[str]:
    """The messages of the failed validations (variables evaluated in order, as ``variables.<name>``)."""
    bound: dict[str, Any] = {}
    if engine == "cel-rust":
        ctx = {**context, "variables": bound}
        for var in variables:
            bound[var["name"]] = cel_eval(var["expression"], ctx)
        return [
            str(cel_eval(item["messageExpression"], ctx))
            for item in validations
            if cel_eval(item["expression"], ctx) is not True
        ]
    assert engine == "cel-python", engine
    act = {k: celpy.json_to_cel(v) for k, v in context.items()}
    for var in variables:
        act["variables"] = celtypes.MapType({celtypes.StringType(k): v for k, v in bound.items()})
        bound[var["name"]] = _celpy_eval(var["expression"], act)
    act["variables"] = celtypes.MapType({celtypes.StringType(k): v for k, v in bound.items()})
    return [
        str(_celpy_eval(item["messageExpression"], act))
        for item in validations
        if not _celpy_true(_celpy_eval(item["expression"], act))
    ]


def _rule_of(message: str) -> str:
    m = RULE_ID.match(message)
    assert m is not None, f"message does not start with the rule id: {message!r}"
    return m.group(1)


def vap_verdicts(objects: list[dict[str, Any]], case: Case, engine: str = "cel-rust") -> tuple[Verdicts, list[str]]:
    bindings = {o["spec"]["policyName"]: o for o in objects if o["kind"] == "ValidatingAdmissionPolicyBinding"}
    found: Verdicts = {}
    messages: list[str] = []
    ctx = cel_context(case)
    for policy in (o for o in objects if o["kind"] == "ValidatingAdmissionPolicy"):
        failed = cel_failures(policy["spec"]["variables"], policy["spec"]["validations"], ctx, engine)
        for action in bindings[policy["metadata"]["name"]]["spec"]["validationActions"]:
            for message in failed:
                found.setdefault(VAP_ACTIONS[action], set()).add(_rule_of(message))
        messages += failed
    return found, messages


def kyverno_verdicts(objects: list[dict[str, Any]], case: Case, engine: str = "cel-rust") -> Verdicts:
    found: Verdicts = {}
    ctx = cel_context(case)
    for policy in objects:
        spec = policy["spec"]
        if "validationFailureAction" not in spec:
            continue
        action = KYVERNO_ACTIONS[spec["validationFailureAction"]]
        if action == "audit" and spec.get("emitWarning"):
            action = "warn"
        for rule in spec["rules"]:
            body = rule["validate"]["cel"]
            for message in cel_failures(body["variables"], body["expressions"], ctx, engine):
                found.setdefault(action, set()).add(_rule_of(message))
    return found
