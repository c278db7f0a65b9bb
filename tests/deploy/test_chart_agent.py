"""The node agent's DaemonSet in deploy/helm/gpuguard (agent.enabled), rendered by a real helm.

Every variant passes `helm lint --strict` and the Kubernetes OpenAPI schemas (strict); the pod reads the
host and writes nothing: host PID namespace, read-only hostPath mounts of directories that must exist,
not privileged, every capability dropped but SYS_PTRACE and DAC_READ_SEARCH; RBAC only for what
--events and --policy-reports need; the agent's flags are options the CLI really has.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest

from tests.deploy.helpers import CHART, K8S_VERSIONS, helm, needs_helm, only, render

pytestmark = needs_helm

ON = "agent.enabled=true"
VARIANTS = {
    "defaults": [ON],
    "events": [ON, "agent.events=true"],
    "policy-reports": [ON, "agent.policyReports=true"],
    "both": [ON, "agent.events=true", "agent.policyReports=true", "agent.toolkitVersion=1.17.8"],
    "no-metrics": [ON, "agent.metricsPort=0"],
    "host-toolkit": [ON, "agent.hostPaths.toolkitConfigDir=/etc/nvidia-container-runtime",
                     "agent.priorityClassName=system-node-critical"],
    "toolkit-logs": [ON, "agent.toolkitLogs.dir=/var/log", "agent.toolkitLogs.files={nvidia-container-runtime.log,"
                     "nvidia-container-toolkit.log}"],
}
# Host directory -> the flag that reads inside it (values.yaml defaults, typed from the GPU Operator's layout).
HOST_PATHS = {
    "/run/containerd": "--containerd-socket",
    "/var/lib/kubelet/pod-resources": "--pod-resources-socket",
    "/proc/driver/nvidia": "--driver-root",
    "/usr/local/nvidia/toolkit/.config/nvidia-container-runtime": "--toolkit-config",
}


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("helm-agent")


def _agent_docs(docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [d for d in docs if d["metadata"].get("labels", {}).get("app.kubernetes.io/component") == "node-agent"]


def _pod(docs: list[dict[str, Any]]) -> dict[str, Any]:
    return only(docs, "DaemonSet")["spec"]["template"]["spec"]


def _flags(container: dict[str, Any]) -> dict[str, str]:
    assert container["args"][0] == "agent"
    return dict(a.split("=", 1) if "=" in a else (a, "") for a in container["args"][1:])


def test_off_by_default(home: Path) -> None:
    docs = render(home)
    assert not [d for d in docs if d["kind"] == "DaemonSet"]
    assert not _agent_docs(docs)


@pytest.mark.parametrize("sets", VARIANTS.values(), ids=VARIANTS.keys())
def test_lint_strict_and_kubernetes_schemas(home: Path, sets: list[str]) -> None:
    args = ["lint", str(CHART), "--strict", "--namespace", "gpuguard"]
    for s in sets:
        args += ["--set", s]
    assert "0 chart(s) failed" in helm(home, *args).stdout
    for doc in render(home, *sets):
        if doc["apiVersion"].startswith("cert-manager.io/"):
            continue
        for version in K8S_VERSIONS:
            kubernetes_validate.validate(doc, version, strict=True)


@pytest.mark.parametrize("sets", VARIANTS.values(), ids=VARIANTS.keys())
def test_reads_the_host_and_writes_nothing(home: Path, sets: list[str]) -> None:
    docs = render(home, *sets)
    pod = _pod(docs)
    assert pod["hostPID"] is True
    assert pod["hostNetwork"] is False and pod["hostIPC"] is False
    assert pod["securityContext"]["runAsUser"] == 0
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    (c,) = pod["containers"]
    sc = c["securityContext"]
    assert sc["privileged"] is False
    assert sc["allowPrivilegeEscalation"] is False
    assert sc["readOnlyRootFilesystem"] is True
    assert sc["capabilities"]["drop"] == ["ALL"]
    assert sorted(sc["capabilities"]["add"]) == ["DAC_READ_SEARCH", "SYS_PTRACE"]
    volumes = {v["name"]: v for v in pod["volumes"]}
    host = {name: v["hostPath"] for name, v in volumes.items() if "hostPath" in v}
    assert all(h["type"] == "Directory" for h in host.values()), host  # never DirectoryOrCreate: nothing is made
    for mount in c["volumeMounts"]:
        if mount["name"] in host:
            assert mount["readOnly"] is True, mount
        else:
            assert "emptyDir" in volumes[mount["name"]], mount  # the only writable place is the pod's own
    expected = dict(HOST_PATHS)
    if "agent.hostPaths.toolkitConfigDir=/etc/nvidia-container-runtime" in sets:
        expected["/etc/nvidia-container-runtime"] = expected.pop(
            "/usr/local/nvidia/toolkit/.config/nvidia-container-runtime")
    logs = "agent.toolkitLogs.dir=/var/log" in sets
    assert sorted(h["path"] for h in host.values()) == sorted([*expected, *(["/var/log"] if logs else [])])
    # Each flag reads inside the mount of its host directory.
    flags = _flags(c)
    mount_of = {host[m["name"]]["path"]: m["mountPath"] for m in c["volumeMounts"] if m["name"] in host}
    for host_dir, flag in expected.items():
        assert flags[flag] == mount_of[host_dir] or flags[flag].startswith(mount_of[host_dir] + "/"), flag
    assert flags["--proc-root"] == "/proc"
    toolkit_logs = [a.split("=", 1)[1] for a in c["args"] if a.startswith("--toolkit-log=")]
    if logs:
        base = mount_of["/var/log"]
        assert toolkit_logs == [f"{base}/nvidia-container-runtime.log", f"{base}/nvidia-container-toolkit.log"]
    else:
        assert toolkit_logs == []


@pytest.mark.parametrize("sets", VARIANTS.values(), ids=VARIANTS.keys())
def test_runs_on_gpu_nodes_with_its_node_name_and_metrics(home: Path, sets: list[str]) -> None:
    docs = render(home, *sets)
    pod = _pod(docs)
    assert pod["nodeSelector"] == {"nvidia.com/gpu.present": "true"}
    assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in pod["tolerations"]
    (c,) = pod["containers"]
    (env,) = [e for e in c["env"] if e["name"] == "NODE_NAME"]
    assert env["valueFrom"]["fieldRef"]["fieldPath"] == "spec.nodeName"
    flags = _flags(c)
    if "agent.metricsPort=0" in sets:
        assert flags["--metrics-port"] == "0" and "ports" not in c and "livenessProbe" not in c
    else:
        (port,) = c["ports"]
        assert (port["name"], port["containerPort"]) == ("metrics", 9403)
        assert flags["--metrics-port"] == "9403"
        assert c["livenessProbe"]["httpGet"]["port"] == "metrics"
    assert c["resources"]["requests"] and c["resources"]["limits"]["memory"]


@pytest.mark.parametrize("sets", VARIANTS.values(), ids=VARIANTS.keys())
def test_every_flag_is_an_option_of_gpuguard_agent(home: Path, sets: list[str]) -> None:
    from gpuguard.cli.agent import agent_command

    known = {opt for p in agent_command.params for opt in getattr(p, "opts", ())}
    (c,) = _pod(render(home, *sets))["containers"]
    assert c["command"] == ["gpuguard"]
    assert set(_flags(c)) <= known, set(_flags(c)) - known
    assert "--once" not in _flags(c)


def test_not_selected_by_the_webhooks_service_pdb_or_deployment(home: Path) -> None:
    docs = render(home, ON, "podDisruptionBudget.enabled=true")
    labels = only(docs, "DaemonSet")["spec"]["template"]["metadata"]["labels"]
    for selector in (only(docs, "Service")["spec"]["selector"],
                     only(docs, "PodDisruptionBudget")["spec"]["selector"]["matchLabels"],
                     only(docs, "Deployment")["spec"]["selector"]["matchLabels"]):
        assert not selector.items() <= labels.items(), selector
    ds = only(docs, "DaemonSet")
    assert ds["spec"]["selector"]["matchLabels"].items() <= labels.items()


def _roles(docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [d for d in _agent_docs(docs) if d["kind"] in ("Role", "ClusterRole", "RoleBinding", "ClusterRoleBinding")]


def _agent_sa(docs: list[dict[str, Any]]) -> dict[str, Any]:
    (sa,) = [d for d in _agent_docs(docs) if d["kind"] == "ServiceAccount"]
    return sa


@pytest.mark.parametrize(
    ("sets", "rules"),
    [
        ([ON], None),
        ([ON, "agent.events=true"],
         [{"apiGroups": [""], "resources": ["events"], "verbs": ["create", "get", "patch"]}]),
        ([ON, "agent.policyReports=true"],
         [{"apiGroups": ["wgpolicyk8s.io"], "resources": ["policyreports", "clusterpolicyreports"],
           "verbs": ["create", "get", "update", "list", "delete"]}]),
    ],
    ids=["nothing", "events", "policy-reports"],
)
def test_rbac_only_for_what_publishing_needs(home: Path, sets: list[str], rules: list[Any] | None) -> None:
    docs = render(home, *sets)
    sa = _agent_sa(docs)
    pod = _pod(docs)
    assert pod["serviceAccountName"] == sa["metadata"]["name"]
    assert sa["metadata"]["name"] != only([d for d in docs if d not in _agent_docs(docs)], "ServiceAccount")[
        "metadata"]["name"]  # its own identity, not the webhook's
    if rules is None:
        assert not _roles(docs)
        assert pod["automountServiceAccountToken"] is False and sa["automountServiceAccountToken"] is False
        return
    assert pod["automountServiceAccountToken"] is True
    role = only(_roles(docs), "ClusterRole")
    assert role["rules"] == rules
    binding = only(_roles(docs), "ClusterRoleBinding")
    assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                                  "name": role["metadata"]["name"]}
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": sa["metadata"]["name"],
                                    "namespace": "gpuguard"}]
