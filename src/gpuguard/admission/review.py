"""One ``admission.k8s.io/v1`` AdmissionRequest in, one verdict out: allow, deny, warn, audit, patch.

Pure and synchronous: the webhook decodes the body and hands the request here.
Everything a request carries is untrusted, so a wrong type anywhere gives a
clear error ``Response`` (HTTP-style code 400 inside the review), never an
exception.

Mutation (GG101 by construction) sets ``NVIDIA_VISIBLE_DEVICES=void`` on every
container that requests no GPU; validation judges the pod with the engine on
the configured node profile and the workload rules, and applies the rule's
mode. What the webhook cannot see: ConfigMaps/Secrets (their values are
unknown: GG108, denied with ``denyUnknownEnvRefs``), namespace labels (an
AdmissionRequest carries none, so exemptions by ``namespaceLabels`` never match
here: select those namespaces with the webhook's ``namespaceSelector``), and
image env unless image inspection is configured (GPU-family images are then
unknown, others assumed not to set the variable, as in ``gpuguard audit``).
With inspection, the webhook passes what it found as ``images``
(:class:`~gpuguard.admission.policy.ImageLookups`): inspected env is used,
unreadable images stay unknown with their reason (GG108), and an image whose
lookup timed out where it decides a container's exposure is answered per
``failurePolicy`` (``Fail`` denies, ``Ignore`` allows with a warning).
"""

from __future__ import annotations

import base64
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from gpuguard.admission.mutate import SUBRESOURCE_EPHEMERAL, void_patch, with_patch
from gpuguard.admission.policy import ImageLookups, Policy, image_unknown
from gpuguard.model.admission import AUDIT, ENFORCE, OFF, WARN, AdmissionConfig
from gpuguard.model.errors import InputError, type_name
from gpuguard.model.finding import Finding
from gpuguard.model.node import NodeProfile
from gpuguard.model.pod import Pod
from gpuguard.sources.kubernetes import pods_from_object

API_VERSION = "admission.k8s.io/v1"
WARNING_LIMIT = 256  # the API server may truncate longer admission warnings
WARNINGS_TOTAL = 4096  # ... and drops warnings past this many characters in all
_OPERATIONS = frozenset({"CREATE", "UPDATE"})


@dataclass(frozen=True, slots=True)
class Response:
    """The verdict for one request, plus what the metrics count."""

    uid: str
    allowed: bool = True
    code: int = 200
    message: str = ""
    warnings: tuple[str, ...] = ()
    audit_annotations: Mapping[str, str] = field(default_factory=dict)
    patch: tuple[dict[str, Any], ...] = ()
    decisions: tuple[tuple[str, str], ...] = ()  # (rule id, mode) of every finding acted on
    dry_run: bool = False
    error: bool = False  # the request itself was malformed
    skipped: str = ""  # why the request was not judged (not a pod, a DELETE, ...)

    def to_review(self) -> dict[str, Any]:
        """The ``AdmissionReview`` response object."""
        response: dict[str, Any] = {"uid": self.uid, "allowed": self.allowed}
        if not self.allowed or self.error:
            response["status"] = {"code": self.code, "message": self.message}
        if self.warnings:
            response["warnings"] = list(self.warnings)
        if self.audit_annotations:
            response["auditAnnotations"] = dict(self.audit_annotations)
        if self.patch:
            response["patchType"] = "JSONPatch"
            response["patch"] = base64.b64encode(orjson.dumps(list(self.patch))).decode("ascii")
        return {"apiVersion": API_VERSION, "kind": "AdmissionReview", "response": response}


def error_response(uid: str, message: str) -> Response:
    """A malformed request: denied with code 400 and the reason (fail closed)."""
    return Response(uid=uid, allowed=False, code=400, message=f"gpuguard: bad request: {message}", error=True)


def review(
    request: object,
    config: AdmissionConfig | None = None,
    node: NodeProfile | None = None,
    *,
    mutate: bool = True,
    validate: bool = True,
) -> Response:
    """Judge one AdmissionRequest; see :class:`Reviewer` (this builds one per call: slow, for tests)."""
    return Reviewer(Policy(config or AdmissionConfig(), node)).review(request, mutate=mutate, validate=validate)


def review_of(body: object) -> tuple[str, Mapping[str, Any]] | Response:
    """The request of an ``AdmissionReview`` document, or an error Response naming what is wrong."""
    if not isinstance(body, Mapping):
        return error_response("", f"expected an AdmissionReview object, got {type_name(body)}")
    if body.get("kind") != "AdmissionReview":
        return error_response("", f"kind: expected AdmissionReview, got {body.get('kind')!r}")
    if body.get("apiVersion") != API_VERSION:
        return error_response("", f"apiVersion: expected {API_VERSION}, got {body.get('apiVersion')!r}")
    request = body.get("request")
    if not isinstance(request, Mapping):
        return error_response("", f"request: expected a mapping, got {type_name(request)}")
    uid = request.get("uid")
    if not isinstance(uid, str) or not uid:
        return error_response("", "request.uid: required (a non-empty string)")
    return uid, request


class Reviewer:
    """Reviews requests under one policy (config + node), reused across requests for speed."""

    def __init__(self, policy: Policy) -> None:
        self.policy = policy

    def review(
        self, request: object, *, mutate: bool = True, validate: bool = True, images: ImageLookups | None = None
    ) -> Response:
        """The verdict; ``images``: what the webhook's image inspection found (None: image env is assumed)."""
        if not isinstance(request, Mapping):
            return error_response("", f"request: expected a mapping, got {type_name(request)}")
        uid = request.get("uid")
        if not isinstance(uid, str) or not uid:
            return error_response("", "request.uid: required (a non-empty string)")
        try:
            return self._review(uid, request, mutate=mutate, validate=validate, images=images)
        except InputError as exc:
            return error_response(uid, str(exc))
        except RecursionError:
            return error_response(uid, "request.object: nested too deeply")
        except Exception as exc:  # a bug must still answer, closed, and never echo the object
            return Response(uid=uid, allowed=False, code=500, error=True,
                            message=f"gpuguard: internal error ({type(exc).__name__}); the pod is denied")  # fmt: skip

    def images_to_inspect(self, request: object) -> tuple[str, ...]:
        """The images whose env a review of ``request`` may read: of the containers it judges.

        Exempt containers, GPU Operator components, ephemeral containers the pod already had and
        requests that are not judged need none. Never raises: a malformed request needs no lookup
        (the review itself answers it with the reason).
        """
        try:
            if not isinstance(request, Mapping):
                return ()
            parsed = self._parse(request)
            if isinstance(parsed, str):
                return ()
            _operation, _subresource, _obj, pod, old, _namespace = parsed
            if self.policy.pod_exempt(pod) is not None:
                return ()
            out: dict[str, None] = {}
            for c in pod.containers:
                if old is not None and (c.kind != "ephemeralContainer" or c.name in old):
                    continue
                if c.image and self.policy.container_exempt(pod, c) is None:
                    out[c.image] = None
            return tuple(out)
        except Exception:  # the review itself reports what is wrong with the request
            return ()

    def _parse(
        self, request: Mapping[str, Any]
    ) -> tuple[str, str, dict[str, Any], Pod, frozenset[str] | None, str] | str:
        """(operation, subresource, pod object, parsed pod, old ephemeral names, namespace), or why not judged."""
        what = _target(request)
        if isinstance(what, str):
            return what
        operation, subresource = what
        obj = request.get("object")
        if not isinstance(obj, Mapping):
            raise InputError("request.object", f"expected a Pod object, got {type_name(obj)}")
        meta = obj.get("metadata")
        if meta is not None and not isinstance(meta, Mapping):
            raise InputError("request.object.metadata", f"expected a mapping, got {type_name(meta)}")
        if meta is not None and meta.get("deletionTimestamp") is not None:
            return "the pod is being deleted"
        namespace = request.get("namespace")
        if namespace is not None and not isinstance(namespace, str):
            raise InputError("request.namespace", f"expected a string, got {type_name(namespace)}")
        pod_obj = _as_pod(obj, namespace or "")
        old = _old_ephemeral(request) if subresource == SUBRESOURCE_EPHEMERAL else None
        # Parse (and type-check every field) once; an error names the field.
        pods = pods_from_object(pod_obj, "request.object")
        if len(pods) != 1:
            raise InputError("request.object", "expected one Pod")
        return operation, subresource, pod_obj, pods[0], old, namespace or ""

    def _review(
        self, uid: str, request: Mapping[str, Any], *, mutate: bool, validate: bool, images: ImageLookups | None
    ) -> Response:
        dry_run = request.get("dryRun") is True
        parsed = self._parse(request)
        if isinstance(parsed, str):
            return Response(uid=uid, dry_run=dry_run, skipped=parsed)
        operation, subresource, obj, pod, old, namespace = parsed
        patch: tuple[dict[str, Any], ...] = ()
        # A plain pod UPDATE cannot change env (the API server forbids it), so only CREATE and the
        # ephemeralcontainers subresource are patched.
        if mutate and self.policy.config.mutate and (operation == "CREATE" or subresource == SUBRESOURCE_EPHEMERAL):
            patch = void_patch(obj, pod, self.policy, only_ephemeral=subresource == SUBRESOURCE_EPHEMERAL, old=old)
        if not validate:
            return Response(uid=uid, patch=patch, dry_run=dry_run)
        if patch:  # judge what will be admitted: the pod after the mutation
            pod = pods_from_object(with_patch(obj, patch), "request.object")[0]
        findings = self.policy.judge(pod, images)
        if old is not None:  # ephemeral containers: only the new ones are being admitted
            findings = [f for f in findings if f.container is not None and f.container not in old
                        and _is_ephemeral(f)]  # fmt: skip
        elif operation == "UPDATE" and findings:
            findings = self._new_on_update(request, findings, namespace, images)
        late = _timed_out(pod, findings, images)
        return self._verdict(uid, findings, patch, dry_run, pod_name(obj, namespace), late=late, images=images)

    def _new_on_update(
        self, request: Mapping[str, Any], findings: list[Finding], namespace: str, images: ImageLookups | None
    ) -> list[Finding]:
        """On a pod UPDATE, only what the update introduces: a pod admitted before the webhook (or under
        another config) must stay updatable (labels, finalizers, owner references) by its controllers."""
        old_obj = request.get("oldObject")
        if not isinstance(old_obj, Mapping):
            return findings
        try:
            old_pods = pods_from_object(_as_pod(old_obj, namespace), "request.oldObject")
        except InputError:
            return findings
        if len(old_pods) != 1:
            return findings
        before = {(f.rule_id, f.container) for f in self.policy.judge(old_pods[0], images)}
        return [f for f in findings if (f.rule_id, f.container) not in before]

    def _verdict(
        self,
        uid: str,
        findings: list[Finding],
        patch: tuple[dict[str, Any], ...],
        dry_run: bool,
        who: str,
        *,
        late: Sequence[tuple[str, str]] = (),
        images: ImageLookups | None = None,
    ) -> Response:
        denied: list[str] = []
        warnings: list[str] = []
        code = 403
        if late:  # image lookups that ran out of time, where the image decides the exposure: failurePolicy
            seconds = images.seconds if images is not None else 0.0
            named = ", ".join(f"{image} (container '{name}')" for name, image in late)
            if self.policy.config.failure_policy == "Fail":
                denied.append(
                    f"[image lookup] the image lookup timed out after {seconds:g}s for {named}, so GPU exposure "
                    "cannot be decided; failurePolicy Fail denies what it cannot check. Fix: retry (a late answer "
                    "is cached), make the registry reachable from the webhook, or set NVIDIA_VISIBLE_DEVICES=void "
                    "in the container's env."
                )
                code = 504
            else:
                warning = (f"gpuguard: the image lookup timed out after {seconds:g}s for {named}; failurePolicy "
                           "Ignore allows the pod with its GPU exposure unknown")  # fmt: skip
                warnings.append(warning[:WARNING_LIMIT])
        audits: dict[str, list[str]] = {}
        decisions: list[tuple[str, str]] = []
        for f in findings:
            mode = self.policy.mode_of(f)
            if mode == OFF:
                continue
            decisions.append((f.rule_id, mode))
            if mode == ENFORCE:
                denied.append(_full(f))
                code = 403
            elif mode == WARN:
                warnings.append(_short(f))
            elif mode == AUDIT:
                audits.setdefault(f.rule_id.lower(), []).append(_full(f))
        annotations = {key: " | ".join(values) for key, values in audits.items()}
        warnings = _within_total(warnings)
        if denied:
            message = f"gpuguard denied pod {who}: " + " ".join(denied)
            return Response(uid=uid, allowed=False, code=code, message=message, warnings=tuple(warnings),
                            audit_annotations=annotations, decisions=tuple(decisions), dry_run=dry_run)  # fmt: skip
        return Response(uid=uid, warnings=tuple(warnings), audit_annotations=annotations, patch=patch,
                        decisions=tuple(decisions), dry_run=dry_run)  # fmt: skip


def _timed_out(pod: Pod, findings: list[Finding], images: ImageLookups | None) -> list[tuple[str, str]]:
    """(container, image) of judged containers whose exposure is unknown because their image lookup timed out."""
    if images is None or not images.timed_out:
        return []
    image_of = {c.name: c.image for c in pod.containers}
    out: dict[tuple[str, str], None] = {}
    for f in findings:
        image = image_of.get(f.container or "")
        if f.rule_id == "GG108" and image in images.timed_out and image_unknown(f):
            out[(f.container or "", image)] = None
    return list(out)


def _within_total(warnings: list[str]) -> list[str]:
    """As many warnings as fit the API server's total, then one that says how many more there were."""
    out: list[str] = []
    used = 0
    for i, warning in enumerate(warnings):
        if used + len(warning) > WARNINGS_TOTAL - 80:
            out.append(f"gpuguard: {len(warnings) - i} more warning(s) left out")
            break
        out.append(warning)
        used += len(warning)
    return out


def _target(request: Mapping[str, Any]) -> tuple[str, str] | str:
    """(operation, subresource) of a request to judge, or why it is let through untouched."""
    kind = request.get("kind")
    if not isinstance(kind, Mapping):
        raise InputError("request.kind", f"expected a GroupVersionKind mapping, got {type_name(kind)}")
    resource = request.get("resource")
    if resource is not None and not isinstance(resource, Mapping):
        raise InputError("request.resource", f"expected a mapping, got {type_name(resource)}")
    operation = request.get("operation")
    if not isinstance(operation, str):
        raise InputError("request.operation", f"expected a string, got {type_name(operation)}")
    sub = request.get("subResource") or ""
    if not isinstance(sub, str):
        raise InputError("request.subResource", f"expected a string, got {type_name(sub)}")
    if kind.get("kind") != "Pod" or (kind.get("group") or "") != "":
        return f"not a Pod ({kind.get('kind')!r})"
    if resource is not None and resource.get("resource") not in (None, "pods"):
        return f"resource {resource.get('resource')!r} is not pods"
    if operation not in _OPERATIONS:
        return f"operation {operation} is not judged"
    if sub not in ("", SUBRESOURCE_EPHEMERAL):
        return f"subresource {sub} is not judged"
    if sub == SUBRESOURCE_EPHEMERAL and operation != "UPDATE":
        return f"{operation} of ephemeralcontainers is not judged"
    return operation, sub


def _as_pod(obj: Mapping[str, Any], namespace: str) -> dict[str, Any]:
    """The object as a Pod with its namespace: controllers' pods often carry none in metadata on CREATE."""
    out = dict(obj)
    out["kind"] = "Pod"
    out["apiVersion"] = "v1"
    meta = dict(obj.get("metadata") or {})
    if namespace and not meta.get("namespace"):
        meta["namespace"] = namespace
    out["metadata"] = meta
    return out


def _old_ephemeral(request: Mapping[str, Any]) -> frozenset[str]:
    """Names of the ephemeral containers the pod already had (they are immutable, so not judged again)."""
    old = request.get("oldObject")
    if not isinstance(old, Mapping):
        return frozenset()
    spec = old.get("spec")
    items = spec.get("ephemeralContainers") if isinstance(spec, Mapping) else None
    if not isinstance(items, list):
        return frozenset()
    return frozenset(c["name"] for c in items if isinstance(c, Mapping) and isinstance(c.get("name"), str))


def _is_ephemeral(f: Finding) -> bool:
    return f.decision is not None and f.decision.kind == "ephemeralContainer"


def pod_name(obj: Mapping[str, Any], namespace: str) -> str:
    meta = obj.get("metadata") or {}
    name = meta.get("name") or meta.get("generateName") or "(unnamed)"
    ns = meta.get("namespace") or namespace
    return f"{ns}/{name}" if ns else str(name)


def _head(f: Finding) -> str:
    """The rule and, when the message does not start by naming it, the container."""
    if f.container and f"'{f.container}'" not in f.message[:80]:
        return f"[{f.rule_id}] container '{f.container}': "
    return f"[{f.rule_id}] "


def _full(f: Finding) -> str:
    return f"{_head(f)}{f.message} Fix: {f.remediation}"


def _first_sentence(text: str) -> str:
    at = text.find(". ")
    return text[: at + 1] if at > 0 else text


def _short(f: Finding) -> str:
    """A warning within the API server's limit: rule, container, what and the first fix."""
    head = _head(f)
    fix = " Fix: " + _first_sentence(f.remediation)
    if len(fix) > WARNING_LIMIT // 2:  # what is wrong (and where) matters more than all of the fix
        fix = fix[: WARNING_LIMIT // 2 - 1].rstrip() + "…"
    room = WARNING_LIMIT - len(head) - len(fix)
    message = f.message
    if len(message) > room:
        message = message[: max(room - 1, 0)].rstrip() + "…"
    return (head + message + fix)[:WARNING_LIMIT]


def iter_rules(response: Response) -> Iterator[str]:
    """Rule ids acted on, for tests and logs."""
    return (rule_id for rule_id, _ in response.decisions)


__all__ = ["API_VERSION", "Response", "Reviewer", "error_response", "review", "review_of"]
