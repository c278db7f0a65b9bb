"""The chart's scheduled audit (values ``scheduledAudit``): a CronJob running ``gpuguard audit --cluster``.

With a real helm: ``helm lint --strict`` and strict Kubernetes OpenAPI validation of every variant, the
rendered command line parsed by gpuguard's own CLI, the RBAC (read-only, plus exactly the PolicyReport
writes when asked for), the history storage (a PVC or a Secret's URL in the environment), the metrics
outputs, the hardened pod, and the webhook's objects left exactly as they were.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest

from tests.deploy.helpers import (
    CHART,
    K8S_VERSIONS,
    Doc,
    check_deployment,
    check_posture,
    check_webhooks,
    helm,
    needs_helm,
    only,
    render,
)

pytestmark = needs_helm

ON = "scheduledAudit.enabled=true"
VARIANTS = {
    "defaults": [ON],
    "no-policy-reports": [ON, "scheduledAudit.policyReports=false"],
    "sqlite-history": [ON, "scheduledAudit.history.enabled=true", "scheduledAudit.history.sqlite.size=5Gi",
                       "scheduledAudit.history.sqlite.storageClassName=fast"],
    "sqlite-existing-claim": [ON, "scheduledAudit.history.enabled=true",
                              "scheduledAudit.history.sqlite.existingClaim=audit-db"],
    "postgresql-history": [ON, "scheduledAudit.history.enabled=true", "scheduledAudit.history.backend=postgresql",
                           "scheduledAudit.history.postgresql.existingSecret=gpuguard-db",
                           "scheduledAudit.history.postgresql.key=dsn"],
    "metrics": [ON, "scheduledAudit.metrics.pushgateway=http://pushgateway.monitoring:9091",
                "scheduledAudit.metrics.textfile.volume.hostPath.path=/var/lib/node-exporter/textfile",
                "scheduledAudit.metrics.textfile.volume.hostPath.type=Directory"],
    "placement": [ON, "scheduledAudit.nodeSelector.pool=system", "scheduledAudit.tolerations[0].key=dedicated",
                  "scheduledAudit.tolerations[0].operator=Exists", "scheduledAudit.tolerations[0].effect=NoSchedule",
                  "scheduledAudit.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution"
                  ".nodeSelectorTerms[0].matchExpressions[0].key=kubernetes.io/os",
                  "scheduledAudit.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution"
                  ".nodeSelectorTerms[0].matchExpressions[0].operator=In",
                  "scheduledAudit.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution"
                  ".nodeSelectorTerms[0].matchExpressions[0].values[0]=linux",
                  "scheduledAudit.priorityClassName=low", "scheduledAudit.timeZone=Etc/UTC"],
    "tuned": [ON, "scheduledAudit.schedule=*/30 * * * *", "scheduledAudit.failOn=critical",
              "scheduledAudit.format=json", "scheduledAudit.clusterName=gpu-prod", "scheduledAudit.backoffLimit=0",
              "scheduledAudit.activeDeadlineSeconds=600", "clusterAudit.rbac.create=true",
              "networkPolicy.enabled=true"],
}
READ_ONLY = {("", "pods"), ("", "nodes"), ("", "configmaps"), ("apps", "daemonsets"), ("node.k8s.io", "runtimeclasses"),
             ("nvidia.com", "clusterpolicies"), ("nvidia.com", "nvidiadrivers"),
             ("admissionregistration.k8s.io", "validatingwebhookconfigurations"),
             ("admissionregistration.k8s.io", "mutatingwebhookconfigurations"),
             ("admissionregistration.k8s.io", "validatingadmissionpolicies"),
             ("admissionregistration.k8s.io", "validatingadmissionpolicybindings"),
             ("kyverno.io", "clusterpolicies"), ("templates.gatekeeper.sh", "constrainttemplates")}


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("helm")


def _audit_objects(docs: list[Doc]) -> list[Doc]:
    return [d for d in docs if d["metadata"].get("labels", {}).get("app.kubernetes.io/component") == "scheduled-audit"]


def _pod(docs: list[Doc]) -> dict[str, Any]:
    pod: dict[str, Any] = only(docs, "CronJob")["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    return pod


def _container(docs: list[Doc]) -> dict[str, Any]:
    (container,) = _pod(docs)["containers"]
    found: dict[str, Any] = container
    return found


def _env(docs: list[Doc]) -> dict[str, Any]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in _container(docs).get("env", [])}


def _grants(docs: list[Doc], account: str) -> set[tuple[str, str, str]]:
    """(group, resource, verb) the ServiceAccount ``account`` gets through the rendered bindings."""
    roles = {d["metadata"]["name"]: d for d in docs if d["kind"] == "ClusterRole"}
    out = set()
    for binding in (d for d in docs if d["kind"] == "ClusterRoleBinding"):
        if {"kind": "ServiceAccount", "name": account, "namespace": "gpuguard"} not in binding["subjects"]:
            continue
        for rule in roles[binding["roleRef"]["name"]]["rules"]:
            out |= {(g, r, v) for g in rule["apiGroups"] for r in rule["resources"] for v in rule["verbs"]}
    return out


@pytest.mark.parametrize("sets", VARIANTS.values(), ids=VARIANTS.keys())
def test_helm_lint_strict(home: Path, sets: list[str]) -> None:
    args = ["lint", str(CHART), "--strict", "--namespace", "gpuguard"]
    for s in sets:
        args += ["--set", s]
    assert "0 chart(s) failed" in helm(home, *args).stdout


@pytest.mark.parametrize("sets", VARIANTS.values(), ids=VARIANTS.keys())
def test_render_passes_the_schemas_and_leaves_the_webhook_as_it_was(home: Path, sets: list[str]) -> None:
    docs = render(home, *sets)
    for doc in docs:
        for version in K8S_VERSIONS:
            kubernetes_validate.validate(doc, version, strict=True)
    audit = _audit_objects(docs)
    assert {d["kind"] for d in audit} >= {"CronJob", "ServiceAccount", "ClusterRoleBinding"}
    webhook = [d for d in docs if d not in audit]
    check_posture(webhook)
    check_deployment(webhook)
    check_webhooks(webhook)
    without = {_key(d): d for d in render(home, *[s for s in sets if s != ON])}
    # the read-only ClusterRole is shared: rendered for the audit even when the webhook's binding is off
    assert {_key(d) for d in webhook} - set(without) <= {("ClusterRole", "gpuguard-cluster-audit")}
    assert set(without) <= {_key(d) for d in webhook}
    for d in webhook:
        if _key(d) in without and d["kind"] not in CERTIFIED:
            assert d == without[_key(d)], _key(d)


CERTIFIED = {"Secret", "ValidatingWebhookConfiguration", "MutatingWebhookConfiguration", "Deployment"}  # fresh certs


def _key(d: Doc) -> tuple[str, str]:
    return d["kind"], d["metadata"]["name"]


def test_defaults_audit_read_only_and_write_only_policy_reports(home: Path) -> None:
    docs = render(home, ON)
    cron = only(docs, "CronJob")
    assert cron["spec"]["schedule"] == "17 */6 * * *"
    assert cron["spec"]["concurrencyPolicy"] == "Forbid"
    job = cron["spec"]["jobTemplate"]["spec"]
    assert (job["backoffLimit"], job["activeDeadlineSeconds"]) == (2, 1800)
    assert _container(docs)["args"] == ["audit", "--cluster", "--format=table", "--fail-on=high", "--policy-reports"]
    assert "GPUGUARD_HISTORY_URL" not in _env(docs)
    pod = _pod(docs)
    account = pod["serviceAccountName"]
    assert account == "gpuguard-audit" and account != only(docs, "Deployment")["spec"]["template"]["spec"][
        "serviceAccountName"]
    assert pod["automountServiceAccountToken"] is True and pod["restartPolicy"] == "Never"
    writes = {(g, r, v) for r in ("policyreports", "clusterpolicyreports")
              for g, v in (("wgpolicyk8s.io", v) for v in ("create", "get", "list", "update", "delete"))}
    reads = {(g, r, v) for g, r in READ_ONLY for v in ("get", "list")}
    assert _grants(docs, account) == reads | writes
    # the webhook's service account still gets nothing (clusterAudit.rbac.create is off)
    assert _grants(docs, "gpuguard") == set()
    assert not [d for d in docs if d["kind"] in ("Role", "RoleBinding")]


def test_without_policy_reports_the_audit_only_reads(home: Path) -> None:
    docs = render(home, ON, "scheduledAudit.policyReports=false")
    assert "--policy-reports" not in _container(docs)["args"]
    assert {v for _, _, v in _grants(docs, "gpuguard-audit")} == {"get", "list"}
    assert {(g, r) for g, r, _ in _grants(docs, "gpuguard-audit")} == READ_ONLY


def test_a_findings_exit_fails_the_job_and_a_read_failure_is_retried(home: Path) -> None:
    docs = render(home, ON)
    rules = only(docs, "CronJob")["spec"]["jobTemplate"]["spec"]["podFailurePolicy"]["rules"]
    fail = [r for r in rules if r["action"] == "FailJob"]
    assert fail == [{"action": "FailJob", "onExitCodes": {"containerName": "audit", "operator": "In", "values": [1]}}]
    assert _container(docs)["name"] == "audit"
    assert not any(2 in r.get("onExitCodes", {}).get("values", []) for r in rules)  # exit 2: backoffLimit retries


def test_the_pod_is_hardened(home: Path) -> None:
    for sets in VARIANTS.values():
        docs = render(home, *sets)
        pod = _pod(docs)
        psc = pod["securityContext"]
        assert psc["runAsNonRoot"] is True and psc["runAsUser"] != 0
        assert psc["seccompProfile"] == {"type": "RuntimeDefault"}
        for key in ("hostNetwork", "hostPID", "hostIPC"):
            assert not pod.get(key)
        sc = _container(docs)["securityContext"]
        assert sc["readOnlyRootFilesystem"] is True and sc["allowPrivilegeEscalation"] is False
        assert sc["capabilities"] == {"drop": ["ALL"]} and sc["privileged"] is False
        resources = _container(docs)["resources"]
        assert resources["requests"] and resources["limits"]["memory"]
        mounts = {m["mountPath"]: m["name"] for m in _container(docs)["volumeMounts"]}
        volumes = {v["name"]: v for v in pod["volumes"]}
        assert "emptyDir" in volumes[mounts["/tmp"]]


def test_the_webhooks_selectors_never_pick_the_audit_pods(home: Path) -> None:
    docs = render(home, ON, "networkPolicy.enabled=true")
    labels = only(docs, "CronJob")["spec"]["jobTemplate"]["spec"]["template"]["metadata"]["labels"]
    for selector in (only(docs, "Service")["spec"]["selector"],
                     only(docs, "PodDisruptionBudget")["spec"]["selector"]["matchLabels"],
                     only(docs, "NetworkPolicy")["spec"]["podSelector"]["matchLabels"],
                     only(docs, "Deployment")["spec"]["selector"]["matchLabels"]):
        assert not selector.items() <= labels.items(), selector


def test_sqlite_history_on_a_created_claim(home: Path) -> None:
    docs = render(home, *VARIANTS["sqlite-history"])
    pvc = only(docs, "PersistentVolumeClaim")
    assert pvc["spec"]["resources"]["requests"]["storage"] == "5Gi"
    assert pvc["spec"]["storageClassName"] == "fast"
    assert pvc["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"
    volumes = {v["name"]: v for v in _pod(docs)["volumes"]}
    mounts = {m["name"]: m["mountPath"] for m in _container(docs)["volumeMounts"]}
    assert volumes["history"]["persistentVolumeClaim"]["claimName"] == pvc["metadata"]["name"]
    url = _env(docs)["GPUGUARD_HISTORY_URL"]
    assert url == "sqlite:////var/lib/gpuguard/history/gpuguard.db"
    assert url.removeprefix("sqlite:///").rsplit("/", 1)[0] == mounts["history"]


def test_sqlite_history_on_an_existing_claim(home: Path) -> None:
    docs = render(home, *VARIANTS["sqlite-existing-claim"])
    assert not [d for d in docs if d["kind"] == "PersistentVolumeClaim"]
    volumes = {v["name"]: v for v in _pod(docs)["volumes"]}
    assert volumes["history"]["persistentVolumeClaim"]["claimName"] == "audit-db"


def test_postgresql_history_url_comes_from_the_secret_never_the_command_line(home: Path) -> None:
    docs = render(home, *VARIANTS["postgresql-history"])
    assert not [d for d in docs if d["kind"] == "PersistentVolumeClaim"]
    assert _env(docs)["GPUGUARD_HISTORY_URL"] == {"secretKeyRef": {"name": "gpuguard-db", "key": "dsn"}}
    assert not [a for a in _container(docs)["args"] if "history" in a or "postgres" in a]
    assert not [d for d in docs if d["kind"] == "Secret" and d["metadata"]["name"] == "gpuguard-db"]
    assert ("", "secrets", "get") not in _grants(docs, "gpuguard-audit")  # the kubelet reads it, not gpuguard


def test_metrics_to_a_pushgateway_and_a_textfile(home: Path) -> None:
    docs = render(home, *VARIANTS["metrics"])
    args = _container(docs)["args"]
    assert "--pushgateway=http://pushgateway.monitoring:9091" in args
    (metrics_file,) = [a.split("=", 1)[1] for a in args if a.startswith("--metrics-file=")]
    mounts = {m["name"]: m["mountPath"] for m in _container(docs)["volumeMounts"]}
    assert metrics_file == f"{mounts['metrics']}/gpuguard.prom"
    volumes = {v["name"]: v for v in _pod(docs)["volumes"]}
    assert volumes["metrics"] == {"name": "metrics", "hostPath": {"path": "/var/lib/node-exporter/textfile",
                                                                  "type": "Directory"}}
    assert not [a for a in _container(render(home, ON))["args"] if "metrics" in a or "pushgateway" in a]


def test_placement_and_tuning_reach_the_pod(home: Path) -> None:
    docs = render(home, *VARIANTS["placement"])
    pod = _pod(docs)
    assert pod["nodeSelector"] == {"pool": "system"}
    assert pod["tolerations"] == [{"key": "dedicated", "operator": "Exists", "effect": "NoSchedule"}]
    term = pod["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"][0]
    assert term["matchExpressions"] == [{"key": "kubernetes.io/os", "operator": "In", "values": ["linux"]}]
    assert pod["priorityClassName"] == "low"
    assert only(docs, "CronJob")["spec"]["timeZone"] == "Etc/UTC"
    docs = render(home, *VARIANTS["tuned"])
    cron = only(docs, "CronJob")
    assert cron["spec"]["schedule"] == "*/30 * * * *"
    assert (cron["spec"]["jobTemplate"]["spec"]["backoffLimit"],
            cron["spec"]["jobTemplate"]["spec"]["activeDeadlineSeconds"]) == (0, 600)
    assert _container(docs)["args"][:4] == ["audit", "--cluster", "--format=json", "--fail-on=critical"]
    assert _env(docs)["GPUGUARD_CLUSTER_NAME"] == "gpu-prod"


@pytest.mark.parametrize("sets", VARIANTS.values(), ids=VARIANTS.keys())
def test_the_rendered_command_line_is_one_gpuguard_accepts(home: Path, sets: list[str]) -> None:
    from gpuguard.cli.audit import audit_command
    from gpuguard.cli.main import cli

    container = _container(render(home, *sets))
    assert container["command"] == ["gpuguard"]
    args = container["args"]
    assert args[0] == "audit" and "audit" in cli.commands
    ctx = audit_command.make_context("audit", list(args[1:]))
    assert ctx.params["cluster"] is True
    assert ctx.params["policy_reports"] is ("--policy-reports" in args)


@pytest.mark.parametrize(
    ("sets", "message"),
    [
        ([ON, "scheduledAudit.failOn=severe"], "scheduledAudit.failOn must be one of"),
        ([ON, "scheduledAudit.concurrencyPolicy=Sometimes"], "scheduledAudit.concurrencyPolicy must be"),
        ([ON, "scheduledAudit.history.enabled=true", "scheduledAudit.history.backend=mysql"],
         "scheduledAudit.history.backend must be sqlite or postgresql"),
        ([ON, "scheduledAudit.history.enabled=true", "scheduledAudit.history.backend=postgresql"],
         "needs scheduledAudit.history.postgresql.existingSecret"),
    ],
)
def test_bad_values_are_refused(home: Path, sets: list[str], message: str) -> None:
    args = ["template", "gpuguard", str(CHART), "--namespace", "gpuguard"]
    for s in sets:
        args += ["--set", s]
    proc = helm(home, *args, check=False)
    assert proc.returncode != 0 and message in proc.stderr


def test_off_by_default(home: Path) -> None:
    docs = render(home)
    assert not _audit_objects(docs)
    assert not [d for d in docs if d["kind"] in ("CronJob", "ClusterRole", "ClusterRoleBinding")]
