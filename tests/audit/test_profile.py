"""The node profile: pre-scan of the inputs, flags, --profile, and the most exposed assumption."""

from __future__ import annotations

from pathlib import Path

from gpuguard.sources.classify import Category, classify, node_setting_spans
from tests.audit.helpers import EXAMPLES, audit_json

JOB = EXAMPLES / "workloads" / "training-job.yaml"


def test_nothing_known_assumes_the_most_exposed_setup_and_says_so() -> None:
    _, report, err = audit_json(str(JOB))
    profile = report["profile"]
    assert profile["assumed"] is True
    assert "most exposed common configuration" in profile["notes"][0]
    assert profile["settings"]["accept-nvidia-visible-devices-envvar-when-unprivileged"] == "true"
    assert "assumed" in err.splitlines()[-1]


def test_operator_version_flag() -> None:
    _, report, _ = audit_json("--operator-version", "24.9.2", str(JOB))
    assert report["profile"]["source"] == "--operator-version 24.9.2 (chart defaults)"
    assert report["profile"]["operator_version"] == "24.9.2"
    node = [f for f in report["findings"] if f["resource"] is None]
    assert node and all(f["location"]["path"] == "--operator-version" for f in node)


def test_toolkit_version_flag() -> None:
    _, report, _ = audit_json("--toolkit-version", "1.16.1", str(JOB))
    assert report["profile"]["source"] == "--toolkit-version 1.16.1"
    assert report["profile"]["toolkit_version"] == "1.16.1"
    assert "GG301" in {f["rule_id"] for f in report["findings"]}


def test_values_file_found_among_inputs_with_its_version(tmp_path: Path) -> None:
    values = EXAMPLES / "gpu-operator" / "values-24.9.2.yaml"
    _, report, _ = audit_json(str(values), str(JOB))
    assert report["profile"]["source"].startswith(f"GPU Operator Helm values ({values}:5), operator 24.9.2")
    assert report["profile"]["settings"]["device list strategy"] != "volume-mounts"  # overwritten: GG205


def test_config_toml_alone(tmp_path: Path) -> None:
    (tmp_path / "config.toml").write_text("accept-nvidia-visible-devices-envvar-when-unprivileged = false\n")
    _, report, _ = audit_json(str(tmp_path / "config.toml"), str(JOB))
    assert report["profile"]["source"] == f"config.toml ({tmp_path / 'config.toml'})"
    assert report["profile"]["settings"]["accept-nvidia-visible-devices-envvar-when-unprivileged"] == "false"


def test_profile_file(tmp_path: Path) -> None:
    profile = tmp_path / "node.yaml"
    profile.write_text('node:\n  operator: {version: "25.3.4"}\n  gpus: 4\n')
    _, report, _ = audit_json("--profile", str(profile), str(JOB))
    assert report["profile"]["source"] == f"--profile {profile}"
    assert report["profile"]["assumed"] is False


def test_runtime_class_among_inputs_maps_to_its_handler(tmp_path: Path) -> None:
    (tmp_path / "rc.yaml").write_text("apiVersion: node.k8s.io/v1\nkind: RuntimeClass\nmetadata: {name: gpu}\n"
                                      "handler: nvidia\n")
    (tmp_path / "pod.yaml").write_text("apiVersion: v1\nkind: Pod\nmetadata: {name: p, namespace: tenant}\n"
                                       "spec:\n  runtimeClassName: gpu\n  containers: [{name: c, image: busybox}]\n")
    _, report, _ = audit_json(str(tmp_path))
    assert "gpu->nvidia" in report["profile"]["settings"]["runtime classes"]
    assert [f["rule_id"] for f in report["findings"]] == ["GG105"]


def test_prescan_finds_node_settings_in_a_stream_and_cuts_only_their_documents() -> None:
    stream = b"kind: Service\n---\napiVersion: nvidia.com/v1\nkind: ClusterPolicy\n---\nkind: Pod\n"
    (span,) = node_setting_spans(stream)
    assert span == (1, b"---\napiVersion: nvidia.com/v1\nkind: ClusterPolicy\n")
    assert list(node_setting_spans(b"kind: Deployment\nspec: {}\n")) == []


def test_classify() -> None:
    assert classify({"apiVersion": "nvidia.com/v1", "kind": "ClusterPolicy"})[0] is Category.CLUSTER_POLICY
    assert classify({"apiVersion": "node.k8s.io/v1", "kind": "RuntimeClass"})[0] is Category.RUNTIME_CLASS
    assert classify({"toolkit": {}, "devicePlugin": {}})[0] is Category.HELM_VALUES
    assert classify({"version": "v1", "sharing": {}})[0] is Category.DEVICE_PLUGIN_CONFIG
    assert classify({"apiVersion": "apps/v1", "kind": "Deployment"})[0] is Category.WORKLOAD
    assert classify({"apiVersion": "v1", "kind": "Service"}) == (Category.OTHER, "Service")
    assert classify({"apiVersion": "nvidia.com/v1alpha1", "kind": "NVIDIADriver"})[0] is Category.NVIDIA_DRIVER


def test_secret_values_are_used_and_never_printed(tmp_path: Path) -> None:
    (tmp_path / "s.yaml").write_text(
        "apiVersion: v1\nkind: Pod\nmetadata: {name: p, namespace: t}\nspec:\n  containers:\n  - name: c\n"
        "    image: busybox\n    envFrom: [{secretRef: {name: gpu-secret}}]\n---\n"
        "apiVersion: v1\nkind: Secret\nmetadata: {name: gpu-secret, namespace: t}\n"
        "data: {NVIDIA_VISIBLE_DEVICES: YWxs, TOKEN: c3VwZXJzZWNyZXQ=}\n"
    )
    code, out, _ = __import__("tests.audit.helpers", fromlist=["audit"]).audit("--format", "json", str(tmp_path))
    assert code == 1 and '"GG101"' in out
    assert "supersecret" not in out
