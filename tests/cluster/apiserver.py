"""A stand-in for the Kubernetes API server, for tests only.

The Kubernetes API cannot be run on the test machines, so the cluster reader
is tested against this: a local HTTPS server (stdlib ``http.server`` in a
thread, TLS with a CA made by ``cryptography``) that answers the read-only
list calls gpuguard makes with the shapes ``kubectl get -o json`` shows:
``PodList``, ``NodeList``, ``DaemonSetList``, ``RuntimeClassList``,
``ConfigMapList``, the GPU Operator's ``ClusterPolicyList``
(``nvidia.com/v1 clusterpolicies``) and ``NVIDIADriverList``, and the admission
configuration (webhook configurations, ValidatingAdmissionPolicies and bindings,
Kyverno ``ClusterPolicy``, Gatekeeper ``ConstraintTemplate``).  The CRD-backed
ones in ``OPTIONAL`` answer 404 when the snapshot has no entry (CRD not installed).  List items carry no ``kind`` or
``apiVersion``, as the real API's do not.

List semantics as the real server's (no watches):

* ``limit`` / ``continue``: a page of at most ``limit`` items;
  ``metadata.continue`` is an opaque token and ``metadata.remainingItemCount``
  the count left, both absent on the last page; a token from another list is
  a 400, as a malformed token is on the real server;
* a bearer token is required (401 ``Status`` otherwise);
* ``throttle_once``: resources answered once with 429 and ``Retry-After``
  (API Priority and Fairness), then served;
* ``forbidden``: resources always answered with the 403 ``Status`` RBAC gives.

Every request is recorded (``requests``: method, path, query) for assertions.

For ``gpuguard verify`` it also takes writes (``POST`` namespaces and pods,
``DELETE`` a namespace) and serves one pod (``GET .../pods/NAME``) and its log
(``GET .../pods/NAME/log``): a created pod "runs" at once, ``runner(node, pod)``
giving its (phase, log text); without a runner a pod stays ``Pending``.
Created objects are kept in ``namespaces`` and ``pods``.

For ``--read-pull-secrets`` it serves ``get`` of one Secret (``GET .../secrets/NAME``) from the
snapshot's ``secrets``; never a list.  ``secrets`` in ``forbidden`` answers the 403 RBAC gives.

For ``audit --cluster --policy-reports`` it keeps wgpolicyk8s.io/v1alpha2 ``policyreports``
(namespaced) and ``clusterpolicyreports`` in ``reports`` ((plural, namespace or "") -> name -> object)
with the write semantics of the real server for custom resources: ``POST`` (201; 409 ``AlreadyExists``),
``GET`` one (404 ``NotFound``), ``PUT`` (422 without ``metadata.resourceVersion``, 409 ``Conflict`` when
it is stale, 404 when absent: no create on update), ``DELETE`` and ``LIST`` (all namespaces or one) with
an equality ``labelSelector`` (``k=v``, ``k==v``, ``k!=v``, comma-separated); every write bumps
``resourceVersion``.  ``reports_missing``: the CRDs are not installed (404 for the group);
``forbidden`` and ``throttle_once`` take these plurals too (403 / one 429 on any verb);
``concurrent_writes``: that many PUTs find the object changed by someone else first (409).
"""

from __future__ import annotations

import base64
import datetime
import ipaddress
import json
import socket
import ssl
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

# resource name -> (list kind, apiVersion, cluster-scoped path, namespaced path prefix or None)
ROUTES: dict[str, tuple[str, str, str, str | None]] = {
    "pods": ("PodList", "v1", "/api/v1/pods", "/api/v1/namespaces/{ns}/pods"),
    "nodes": ("NodeList", "v1", "/api/v1/nodes", None),
    "configmaps": ("ConfigMapList", "v1", "/api/v1/configmaps", "/api/v1/namespaces/{ns}/configmaps"),
    "daemonsets": ("DaemonSetList", "apps/v1", "/apis/apps/v1/daemonsets", "/apis/apps/v1/namespaces/{ns}/daemonsets"),
    "runtimeclasses": ("RuntimeClassList", "node.k8s.io/v1", "/apis/node.k8s.io/v1/runtimeclasses", None),
    "clusterpolicies": ("ClusterPolicyList", "nvidia.com/v1", "/apis/nvidia.com/v1/clusterpolicies", None),
    "nvidiadrivers": ("NVIDIADriverList", "nvidia.com/v1alpha1", "/apis/nvidia.com/v1alpha1/nvidiadrivers", None),
    "validatingwebhookconfigurations": ("ValidatingWebhookConfigurationList", "admissionregistration.k8s.io/v1",
                                        "/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations", None),
    "mutatingwebhookconfigurations": ("MutatingWebhookConfigurationList", "admissionregistration.k8s.io/v1",
                                      "/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations", None),
    "validatingadmissionpolicies": ("ValidatingAdmissionPolicyList", "admissionregistration.k8s.io/v1",
                                    "/apis/admissionregistration.k8s.io/v1/validatingadmissionpolicies", None),
    "validatingadmissionpolicybindings": ("ValidatingAdmissionPolicyBindingList", "admissionregistration.k8s.io/v1",
                                          "/apis/admissionregistration.k8s.io/v1/validatingadmissionpolicybindings",
                                          None),
    "kyverno-clusterpolicies": ("ClusterPolicyList", "kyverno.io/v1", "/apis/kyverno.io/v1/clusterpolicies", None),
    "constrainttemplates": ("ConstraintTemplateList", "templates.gatekeeper.sh/v1",
                            "/apis/templates.gatekeeper.sh/v1/constrainttemplates", None),
}
# Resources whose CRD a snapshot may leave uninstalled: absent from ``Snapshot.objects`` -> 404, as the real
# server answers for a group/version it does not serve.
OPTIONAL = {"nvidiadrivers", "kyverno-clusterpolicies", "constrainttemplates"}

TOKEN = "stand-in-sa-token-d0-not-print"  # the bearer token the stand-in accepts (the tests check it never leaks)


@dataclass
class Snapshot:
    """The objects a cluster holds, by resource name (items as the API returns them)."""

    objects: dict[str, list[dict[str, Any]]] = field(default_factory=dict)


@dataclass
class ApiServer:
    """The stand-in's state: what it serves and how it misbehaves."""

    snapshot: Snapshot
    throttle_once: set[str] = field(default_factory=set)
    forbidden: set[str] = field(default_factory=set)
    retry_after: str = "1"
    requests: list[tuple[str, str, dict[str, list[str]]]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    url: str = ""
    ca_pem: bytes = b""
    runner: Callable[[str, dict[str, Any]], tuple[str, str]] | None = None
    namespaces: dict[str, dict[str, Any]] = field(default_factory=dict)
    pods: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    logs: dict[tuple[str, str], str] = field(default_factory=dict)
    reports: dict[tuple[str, str], dict[str, dict[str, Any]]] = field(default_factory=dict)
    reports_missing: bool = False
    concurrent_writes: int = 0
    resource_version: int = 900000

    def add_report(self, plural: str, obj: dict[str, Any]) -> None:
        """Store ``obj`` as if some earlier client had created it."""
        meta = obj["metadata"]
        self.resource_version += 1
        meta["resourceVersion"] = str(self.resource_version)
        self.reports.setdefault((plural, meta.get("namespace", "")), {})[meta["name"]] = obj

    def report_objects(self, plural: str) -> dict[tuple[str, str], dict[str, Any]]:
        """(namespace or "", name) -> object, for assertions."""
        return {(ns, name): obj for (p, ns), objs in self.reports.items() if p == plural for name, obj in objs.items()}

    def route(self, path: str) -> tuple[str, str | None] | None:
        """(resource, namespace or None) for a list path."""
        for resource, (_, _, cluster_path, ns_path) in ROUTES.items():
            if path == cluster_path:
                return resource, None
            if ns_path is not None:
                head, tail = ns_path.split("{ns}")
                if path.startswith(head) and path.endswith(tail):
                    ns = path[len(head):len(path) - len(tail)]
                    if ns and "/" not in ns:
                        return resource, ns
        return None

    def kubeconfig(self, path: Path, context: str = "gpu-prod", token: str = TOKEN) -> Path:
        """A kubeconfig for this server (CA data inline, a bearer token), as ``kubectl config view --raw`` writes."""
        doc = {
            "apiVersion": "v1", "kind": "Config", "preferences": {},
            "clusters": [{"name": "gpu-prod-cluster", "cluster": {
                "server": self.url, "certificate-authority-data": base64.b64encode(self.ca_pem).decode()}}],
            "users": [{"name": "gpuguard-auditor", "user": {"token": token}}],
            "contexts": [{"name": context, "context": {"cluster": "gpu-prod-cluster", "user": "gpuguard-auditor"}},
                         {"name": "other", "context": {"cluster": "gpu-prod-cluster", "user": "gpuguard-auditor"}}],
            "current-context": context,
        }
        path.write_text(json.dumps(doc))
        return path


def _status(code: int, reason: str, message: str, details: Mapping[str, Any] | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                            "message": message, "reason": reason, "code": code}
    if details:
        body["details"] = dict(details)
    return body


def _handler(state: ApiServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def setup(self) -> None:
            super().setup()
            # headers and body are two writes: without this, Nagle and the client's delayed ACK add ~40 ms each
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

        def _send(self, code: int, body: Mapping[str, Any], headers: Mapping[str, str] | None = None) -> None:
            data = json.dumps(body).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(data)

        def _begin(self, method: str) -> tuple[str, dict[str, list[str]]] | None:
            url = urlsplit(self.path)
            query = parse_qs(url.query)
            with state.lock:
                state.requests.append((method, url.path, query))
            scheme, _, token = (self.headers.get("Authorization") or "").partition(" ")
            if scheme.lower() != "bearer" or token != TOKEN:  # the scheme is case-insensitive, as the real server's
                self._send(401, _status(401, "Unauthorized", "Unauthorized"))
                return None
            return url.path, query

        def _not_found(self, what: str) -> None:
            self._send(404, _status(404, "NotFound", f"{what} not found"))

        def _body(self) -> Any:
            return json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")

        def do_POST(self) -> None:
            begun = self._begin("POST")
            if begun is None:
                return
            path, query = begun
            body = self._body()
            if _reports(self, state, "POST", path, query, body):
                return
            parts = path.strip("/").split("/")
            if path == "/api/v1/namespaces":
                name = body["metadata"]["name"]
                if name in state.namespaces:
                    self._send(409, _status(409, "AlreadyExists", f'namespaces "{name}" already exists'))
                    return
                body.setdefault("status", {})["phase"] = "Active"
                state.namespaces[name] = body
                self._send(201, body)
                return
            if len(parts) == 5 and parts[:3] == ["api", "v1", "namespaces"] and parts[4] == "pods":
                ns = parts[3]
                if ns not in state.namespaces:
                    self._not_found(f'namespaces "{ns}"')
                    return
                name = body["metadata"]["name"]
                node = body.get("spec", {}).get("nodeName", "")
                phase, log = state.runner(node, body) if state.runner else ("Pending", "")
                body["metadata"]["namespace"] = ns
                body["status"] = {"phase": phase}
                state.pods[(ns, name)] = body
                state.logs[(ns, name)] = log
                self._send(201, body)
                return
            self._not_found("resource")

        def do_DELETE(self) -> None:
            begun = self._begin("DELETE")
            if begun is None:
                return
            if _reports(self, state, "DELETE", begun[0], begun[1], None):
                return
            parts = begun[0].strip("/").split("/")
            if len(parts) == 4 and parts[:3] == ["api", "v1", "namespaces"] and parts[3] in state.namespaces:
                ns = parts[3]
                del state.namespaces[ns]
                for key in [k for k in state.pods if k[0] == ns]:
                    del state.pods[key]
                self._send(200, {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success"})
                return
            self._not_found("namespace")

        def _single_pod(self, path: str) -> bool:
            parts = path.strip("/").split("/")
            if not (len(parts) in {6, 7} and parts[:3] == ["api", "v1", "namespaces"] and parts[4] == "pods"):
                return False
            key = (parts[3], parts[5])
            if key not in state.pods:
                self._not_found(f'pods "{parts[5]}"')
            elif len(parts) == 6:
                self._send(200, state.pods[key])
            elif parts[6] == "log":
                data = state.logs.get(key, "").encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
            else:
                self._not_found("subresource")
            return True

        def _single_secret(self, path: str) -> bool:
            """``get`` one Secret of the snapshot's ``secrets`` (403 when ``secrets`` is in ``forbidden``)."""
            parts = path.strip("/").split("/")
            if not (len(parts) == 6 and parts[:3] == ["api", "v1", "namespaces"] and parts[4] == "secrets"):
                return False
            namespace, name = parts[3], parts[5]
            if "secrets" in state.forbidden:
                self._send(403, _status(
                    403, "Forbidden",
                    f'secrets "{name}" is forbidden: User "system:serviceaccount:gpuguard:gpuguard" cannot get '
                    f'resource "secrets" in API group "" in the namespace "{namespace}"',
                    {"name": name, "kind": "secrets"}))
                return True
            for item in state.snapshot.objects.get("secrets", []):
                meta = item["metadata"]
                if meta.get("namespace") == namespace and meta.get("name") == name:
                    self._send(200, item)
                    return True
            self._not_found(f'secrets "{name}"')
            return True

        def do_GET(self) -> None:
            begun = self._begin("GET")
            if begun is None:
                return
            url = urlsplit(self.path)
            query = begun[1]
            if _reports(self, state, "GET", url.path, query, None):
                return
            if self._single_pod(url.path) or self._single_secret(url.path):
                return
            found = state.route(url.path)
            if found is None:
                self._send(404, _status(404, "NotFound", "the server could not find the requested resource"))
                return
            resource, namespace = found
            if resource in OPTIONAL and resource not in state.snapshot.objects:
                self._send(404, _status(404, "NotFound", "the server could not find the requested resource"))
                return
            kind, api_version, _, _ = ROUTES[resource]
            group = api_version.split("/")[0] if "/" in api_version else ""
            if resource in state.forbidden:
                scope = f'in the namespace "{namespace}"' if namespace else "at the cluster scope"
                self._send(403, _status(
                    403, "Forbidden",
                    f'{resource}{"." + group if group else ""} is forbidden: User '
                    f'"system:serviceaccount:gpuguard:gpuguard" cannot list resource "{resource}" in API group '
                    f'"{group}" {scope}',
                    {"group": group, "kind": resource}))
                return
            with state.lock:
                throttle = resource in state.throttle_once
                state.throttle_once.discard(resource)
            if throttle:
                self._send(429, _status(429, "TooManyRequests", "Too many requests, please try again later."),
                           {"Retry-After": state.retry_after, "X-Kubernetes-Pf-Flowschema-Uid": "stand-in",
                            "X-Kubernetes-Pf-Prioritylevel-Uid": "stand-in"})
                return
            items = [i for i in state.snapshot.objects.get(resource, [])
                     if namespace is None or i["metadata"].get("namespace") == namespace]
            start = 0
            if token := query.get("continue", [""])[0]:
                try:
                    decoded = json.loads(base64.urlsafe_b64decode(token))
                    if decoded["list"] != url.path:
                        raise ValueError(token)
                    start = int(decoded["start"])
                except (ValueError, KeyError, TypeError):
                    self._send(400, _status(400, "BadRequest", "continue key is not valid: incorrect encoded start "
                                            "resourceVersion (version meta.k8s.io/v1)"))
                    return
            limit = int(query.get("limit", ["0"])[0] or 0)
            end = len(items) if limit <= 0 else min(len(items), start + limit)
            meta: dict[str, Any] = {"resourceVersion": "734522"}
            if end < len(items):
                meta["continue"] = base64.urlsafe_b64encode(
                    json.dumps({"v": "meta.k8s.io/v1", "rv": 734522, "start": end, "list": url.path}).encode()
                ).decode()
                meta["remainingItemCount"] = len(items) - end
            self._send(200, {"kind": kind, "apiVersion": api_version, "metadata": meta, "items": items[start:end]})

        def do_PUT(self) -> None:
            begun = self._begin("PUT")
            if begun is None:
                return
            body = self._body()
            if not _reports(self, state, "PUT", begun[0], begun[1], body):
                self._not_found("resource")

    return Handler


REPORTS_PREFIX = "/apis/wgpolicyk8s.io/v1alpha2/"
REPORT_KINDS = {"policyreports": "PolicyReport", "clusterpolicyreports": "ClusterPolicyReport"}
_VERBS = {"GET": "get", "POST": "create", "PUT": "update", "DELETE": "delete"}


def _report_path(path: str) -> tuple[str, str | None, str | None] | None:
    """(plural, namespace or None, name or None) of a wgpolicyk8s.io/v1alpha2 path, else None."""
    if not path.startswith(REPORTS_PREFIX):
        return None
    parts = path[len(REPORTS_PREFIX):].strip("/").split("/")
    namespace = None
    if len(parts) >= 3 and parts[0] == "namespaces":
        namespace, parts = parts[1], parts[2:]
    if not parts or parts[0] not in REPORT_KINDS or len(parts) > 2:
        return ("", None, None)  # in the group, but nothing it serves
    if (parts[0] == "clusterpolicyreports") != (namespace is None) and len(parts) == 2:
        return ("", None, None)
    return parts[0], namespace, parts[1] if len(parts) == 2 else None


def _selected(labels: Mapping[str, str], selector: str) -> bool:
    """The equality-based label selector (``k=v``, ``k==v``, ``k!=v``, comma-separated)."""
    for term in filter(None, (t.strip() for t in selector.split(","))):
        if "!=" in term:
            key, value = term.split("!=", 1)
            if labels.get(key.strip()) == value.strip():
                return False
            continue
        key, value = term.replace("==", "=").split("=", 1)
        if labels.get(key.strip()) != value.strip():
            return False
    return True


def _reports(  # noqa: PLR0917 - one branch per verb and outcome, as the server answers
    handler: Any, state: ApiServer, method: str, path: str, query: Mapping[str, list[str]], body: Any,
) -> bool:
    """Answer a wgpolicyk8s.io request; False when ``path`` is not one."""
    found = _report_path(path)
    if found is None:
        return False
    plural, namespace, name = found
    if state.reports_missing or not plural:
        handler._send(404, _status(404, "NotFound", "the server could not find the requested resource"))
        return True
    resource = f"{plural}.wgpolicyk8s.io"
    verb = _VERBS[method] if name is not None or method == "POST" else "list"
    if plural in state.forbidden:
        scope = f'in the namespace "{namespace}"' if namespace else "at the cluster scope"
        handler._send(403, _status(
            403, "Forbidden", (f'{resource} "{name}"' if name else resource) + " is forbidden: "
            f'User "system:serviceaccount:gpuguard:gpuguard-audit" cannot {verb} resource "{plural}" in API group '
            f'"wgpolicyk8s.io" {scope}', {"group": "wgpolicyk8s.io", "kind": plural}))
        return True
    with state.lock:
        throttle = plural in state.throttle_once
        state.throttle_once.discard(plural)
    if throttle:
        handler._send(429, _status(429, "TooManyRequests", "Too many requests, please try again later."),
                      {"Retry-After": state.retry_after})
        return True
    kind = REPORT_KINDS[plural]
    with state.lock:
        if name is None and method == "GET":
            selector = query.get("labelSelector", [""])[0]
            items = [obj for (p, ns), objs in state.reports.items() if p == plural
                     and (namespace is None or ns == namespace) for obj in objs.values()
                     if _selected(obj["metadata"].get("labels") or {}, selector)]
            handler._send(200, {"kind": f"{kind}List", "apiVersion": "wgpolicyk8s.io/v1alpha2",
                                "metadata": {"resourceVersion": str(state.resource_version)}, "items": items})
            return True
        store = state.reports.setdefault((plural, namespace or ""), {})
        if method == "POST" and name is None:
            new = body.get("metadata", {}).get("name", "")
            if new in store:
                handler._send(409, _status(409, "AlreadyExists", f'{resource} "{new}" already exists',
                                           {"name": new, "group": "wgpolicyk8s.io", "kind": plural}))
                return True
            state.add_report(plural, body)
            if namespace:
                body["metadata"]["namespace"] = namespace
            handler._send(201, body)
            return True
        if name is None or name not in store:
            handler._send(404, _status(404, "NotFound", f'{resource} "{name}" not found',
                                       {"name": name, "group": "wgpolicyk8s.io", "kind": plural}))
            return True
        if method == "GET":
            handler._send(200, store[name])
        elif method == "DELETE":
            del store[name]
            handler._send(200, {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
                                "details": {"name": name, "group": "wgpolicyk8s.io", "kind": plural}})
        elif method == "PUT":
            if state.concurrent_writes > 0:  # someone else writes first
                state.concurrent_writes -= 1
                state.resource_version += 1
                store[name]["metadata"]["resourceVersion"] = str(state.resource_version)
            given = (body.get("metadata") or {}).get("resourceVersion")
            if not given:
                handler._send(422, _status(422, "Invalid", f'{kind}.wgpolicyk8s.io "{name}" is invalid: '
                                           "metadata.resourceVersion: Invalid value: 0x0: must be specified for an "
                                           "update"))
            elif given != store[name]["metadata"]["resourceVersion"]:
                handler._send(409, _status(409, "Conflict", f'Operation cannot be fulfilled on {resource} "{name}": '
                                           "the object has been modified; please apply your changes to the latest "
                                           "version and try again"))
            else:
                if namespace:
                    body["metadata"]["namespace"] = namespace
                state.add_report(plural, body)
                handler._send(200, body)
        else:
            handler._send(405, _status(405, "MethodNotAllowed", "the server does not allow this method"))
    return True


def _certificates() -> tuple[bytes, bytes, bytes]:
    """(CA cert PEM, server cert PEM, server key PEM): a CA and a server certificate for 127.0.0.1/localhost."""
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kubernetes-ca (gpuguard stand-in)")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
          .not_valid_after(now + datetime.timedelta(days=1))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                                       data_encipherment=False, key_agreement=False, key_cert_sign=True,
                                       crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
          .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kube-apiserver")]))
            .issuer_name(ca_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([
                x509.DNSName("localhost"), x509.DNSName("kubernetes.default.svc"),
                x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
            .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256()))
    pem = serialization.Encoding.PEM
    return (ca.public_bytes(pem), cert.public_bytes(pem),
            key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))


@contextmanager
def serve(snapshot: Snapshot, workdir: Path,
          runner: Callable[[str, dict[str, Any]], tuple[str, str]] | None = None) -> Iterator[ApiServer]:
    """Run the stand-in on 127.0.0.1 (a free port) until the block ends; ``runner`` runs created pods."""
    ca_pem, cert_pem, key_pem = _certificates()
    (workdir / "server.crt").write_bytes(cert_pem)
    (workdir / "server.key").write_bytes(key_pem)
    state = ApiServer(snapshot, ca_pem=ca_pem, runner=runner)
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    httpd.daemon_threads = True
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(workdir / "server.crt", workdir / "server.key")
    httpd.socket = context.wrap_socket(httpd.socket, server_side=True)
    state.url = f"https://127.0.0.1:{httpd.server_address[1]}"
    # a short poll interval: shutdown() at the end of each test returns at once, not after 0.5 s
    thread = threading.Thread(target=httpd.serve_forever, args=(0.02,), name="kube-apiserver-stand-in", daemon=True)
    thread.start()
    try:
        yield state
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join()
