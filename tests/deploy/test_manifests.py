"""deploy/manifests/gpuguard.yaml: valid Kubernetes objects, a safe posture, the webhook wired as the chart wires it.

These tests need no helm; tests/deploy/test_chart.py checks that this file is exactly the chart's render.
"""

from __future__ import annotations

from typing import Any

import kubernetes_validate
import pytest
import yaml

from tests.deploy.helpers import (
    CHART,
    K8S_VERSIONS,
    NAMESPACE,
    check_deployment,
    check_posture,
    check_webhooks,
    only,
    plain_docs,
    webhooks,
)

DOCS = plain_docs()


def _ids() -> list[str]:
    return [f"{d['kind']}/{d['metadata']['name']}" for d in DOCS]


@pytest.mark.parametrize("version", K8S_VERSIONS)
@pytest.mark.parametrize("doc", DOCS, ids=_ids())
def test_every_object_passes_the_kubernetes_openapi_schema_strictly(doc: dict[str, Any], version: str) -> None:
    kubernetes_validate.validate(doc, version, strict=True)


def test_the_schema_check_is_not_vacuous() -> None:
    deploy = only(DOCS, "Deployment")
    bad = {**deploy, "spec": {**deploy["spec"], "replica": 2}}  # a misspelt field
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(bad, K8S_VERSIONS[0], strict=True)


def test_the_expected_objects_all_in_the_gpuguard_namespace() -> None:
    kinds = sorted(d["kind"] for d in DOCS)
    assert kinds == sorted(
        [
            "Namespace",
            "Secret",
            "ServiceAccount",
            "ConfigMap",
            "Service",
            "Deployment",
            "PodDisruptionBudget",
            "ValidatingWebhookConfiguration",
            "MutatingWebhookConfiguration",
        ]
    )
    for d in DOCS:
        if d["kind"] in ("Namespace", "ValidatingWebhookConfiguration", "MutatingWebhookConfiguration"):
            assert "namespace" not in d["metadata"]
        else:
            assert d["metadata"]["namespace"] == NAMESPACE, d["kind"]
    assert only(DOCS, "Namespace")["metadata"]["name"] == NAMESPACE


def test_security_posture() -> None:
    check_posture(DOCS)
    ns = only(DOCS, "Namespace")
    assert ns["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"


def test_deployment_service_and_disruption_budget() -> None:
    check_deployment(DOCS)


def test_webhook_configurations() -> None:
    check_webhooks(DOCS, failure_policy="Fail")


def test_least_privilege_no_rbac_by_default() -> None:
    assert not [d for d in DOCS if d["kind"] in ("Role", "ClusterRole", "RoleBinding", "ClusterRoleBinding")]


def test_certificate_material_is_a_documented_placeholder() -> None:
    secret = only(DOCS, "Secret")
    assert secret["type"] == "kubernetes.io/tls"
    assert secret["data"] == {"tls.crt": "", "tls.key": ""}
    deploy = only(DOCS, "Deployment")
    (tls,) = [v for v in deploy["spec"]["template"]["spec"]["volumes"] if "secret" in v]
    assert tls["secret"]["secretName"] == secret["metadata"]["name"]
    for _, hook in webhooks(DOCS):
        assert "caBundle" not in hook["clientConfig"]  # filled in by the user (documented) or a CA injector
    header = (CHART.parents[1] / "manifests" / "gpuguard.yaml").read_text().split("apiVersion:", 1)[0]
    for needle in ("gpuguard-tls", "caBundle", "cert-manager.io/inject-ca-from", "generate.sh", "failurePolicy"):
        assert needle in header, needle


def _admission_config(text: str) -> Any:
    from gpuguard.admission.config import load_admission_config

    return load_admission_config(yaml.safe_load(text), "config.yaml")


def test_mounted_config_is_a_valid_admission_config_matching_the_webhooks() -> None:
    config = _admission_config(only(DOCS, "ConfigMap")["data"]["config.yaml"])
    from gpuguard.model.admission import DEFAULT_MODES

    assert config.modes == DEFAULT_MODES
    assert config.mutate is True
    assert config.resolve_images is False  # no network by default
    for _, hook in webhooks(DOCS):
        assert config.failure_policy == hook["failurePolicy"]
        assert config.timeout_seconds == hook["timeoutSeconds"]


def test_the_chart_values_config_is_a_valid_admission_config() -> None:
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    config = _admission_config(yaml.safe_dump(values["config"]))
    assert config.failure_policy == "Fail"  # filled from .Values.failurePolicy in the ConfigMap template
    assert values["failurePolicy"] == "Fail" and values["timeoutSeconds"] == 10 and values["replicaCount"] >= 2


def test_chart_templates_state_the_same_wiring() -> None:
    """Without helm: the templates' static parts say what the plain manifests say."""
    webhook = (CHART / "templates" / "webhook.yaml").read_text()
    helpers = (CHART / "templates" / "_helpers.tpl").read_text()
    deployment = (CHART / "templates" / "deployment.yaml").read_text()
    for needle in (
        "path: /validate",
        "path: /mutate",
        "sideEffects: None",
        'admissionReviewVersions: ["v1"]',
        "matchPolicy: Equivalent",
        "reinvocationPolicy:",
        "inject-ca-from",
        "genCA",
        "genSignedCert",
    ):
        assert needle in webhook, needle
    assert 'resources: ["pods", "pods/ephemeralcontainers"]' in helpers
    assert '(list .Release.Namespace "kube-system")' in helpers
    for needle in ("path: /readyz", "path: /healthz", "scheme: HTTPS", "--config=/etc/gpuguard/config.yaml"):
        assert needle in deployment, needle
