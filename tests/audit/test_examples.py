"""``gpuguard audit examples/audit/``: every rule fires where the examples say, the safe twins stay silent."""

from __future__ import annotations

import json

import pytest

from gpuguard.rules import RULES
from tests.audit.helpers import EXAMPLES, audit, audit_json, rules_by_object

# Exactly the rules each example must raise (typed from the research notes, gpu_operator §4 and §9).
EXPECTED = {
    "Deployment/alice-notebook": {"GG101"},
    "Job/resnet-train": {"GG102"},
    "Pod/node-debugger-gpu-worker-3": {"GG103", "GG104"},
    "StatefulSet/feature-extractor": {"GG107"},
    "Deployment/embeddings-api": {"GG105"},
    "Pod/render-worker": {"GG106"},
    "Deployment/ranking-api": {"GG108"},
    "Deployment/llama-serving": {"GG108"},
    "CronJob/nightly-report": {"GG101"},
    "ClusterPolicy/cluster-policy": {"GG201", "GG202", "GG206", "GG301"},
    "values-24.9.2.yaml": {"GG202", "GG205", "GG206", "GG301"},
    "values-hardening-half-done.yaml": {"GG203", "GG206", "GG301"},
    # a config.toml shows the toolkit only: nothing about the device plugin or the default runtime
    "config.toml": {"GG201", "GG204"},
    # Dockerfiles (findings without an object, under the file name): a CUDA base not inspected
    # (cannot be decided), and a local stage that sets all itself (definite)
    "Dockerfile": {"GG109"},
    "batch.Dockerfile": {"GG109"},
}
SAFE = (
    "Deployment/bob-notebook",
    "Job/resnet-train-fixed",
    "Deployment/storefront",
    "DaemonSet/nvidia-device-plugin-daemonset",
    "DaemonSet/nvidia-dcgm-exporter",
    "Dockerfile.void",
)


@pytest.fixture(scope="module")
def examples() -> tuple[int, dict, str]:
    return audit_json(str(EXAMPLES))


def test_every_rule_fires_on_the_examples(examples: tuple[int, dict, str]) -> None:
    code, report, _ = examples
    assert code == 1
    fired = {f["rule_id"] for f in report["findings"]}
    # Cluster-scope rules (GG207-GG209) need a live cluster: tests/cluster/test_cluster_rules.py covers them;
    # GG4xx need the node agent's observations: tests/agent and tests/rules/test_agent_rules.py cover them.
    file_rules = {k for k, r in RULES.items() if r.scope != "cluster" and not k.startswith("GG4")}
    assert fired == file_rules, sorted(file_rules - fired)


@pytest.mark.parametrize(("obj", "rules"), sorted(EXPECTED.items()))
def test_each_example_gets_its_rules(examples: tuple[int, dict, str], obj: str, rules: set[str]) -> None:
    assert rules_by_object(examples[1]).get(obj, set()) == rules


@pytest.mark.parametrize("obj", SAFE)
def test_safe_twins_stay_silent(examples: tuple[int, dict, str], obj: str) -> None:
    assert obj not in rules_by_object(examples[1])


def test_operator_components_are_exempt_with_a_reason(examples: tuple[int, dict, str]) -> None:
    exempt = {e["resource"]["name"]: e for e in examples[1]["exempt"]}
    assert set(exempt) == {"nvidia-device-plugin-daemonset", "nvidia-dcgm-exporter"}
    assert all("GPU Operator component" in e["reason"] for e in exempt.values())


def test_findings_name_object_container_file_and_line(examples: tuple[int, dict, str]) -> None:
    job = next(f for f in examples[1]["findings"] if f["rule_id"] == "GG102")
    assert job["resource"] == {"apiVersion": "batch/v1", "kind": "Job", "namespace": "ml-research",
                               "name": "resnet-train"}
    assert job["container"] == "trainer"
    assert job["location"] == {"path": str(EXAMPLES / "workloads" / "training-job.yaml"), "line": 5}
    assert job["trail"] and job["remediation"]


def test_profile_comes_from_the_cluster_policy_with_file_and_line(examples: tuple[int, dict, str]) -> None:
    profile = examples[1]["profile"]
    assert profile["assumed"] is False
    assert profile["source"].startswith(f"ClusterPolicy cluster-policy ({EXAMPLES}/gpu-operator/clusterpolicy.yaml:4)")
    assert profile["operator_version"] == "25.3.4"
    assert any("RuntimeClasses from the inputs: nvidia -> nvidia" in n for n in profile["notes"])


def test_configmap_later_in_the_stream_resolves_env(examples: tuple[int, dict, str]) -> None:
    cron = next(f for f in examples[1]["findings"] if f["resource"] and f["resource"]["name"] == "nightly-report")
    assert cron["rule_id"] == "GG101"  # decided from the ConfigMap defined after it, not unknown


def test_unknown_kinds_are_counted(examples: tuple[int, dict, str]) -> None:
    assert examples[1]["skipped_kinds"] == {"Service": 1}


def test_safe_directory_exits_0() -> None:
    code, out, err = audit("--format", "json", str(EXAMPLES / "workloads" / "safe"))
    assert code == 0, err
    assert json.loads(out)["findings"] == []


@pytest.mark.parametrize(("fail_on", "code"), [("critical", 1), ("info", 1)])
def test_fail_on(fail_on: str, code: int) -> None:
    assert audit("--format", "json", "--fail-on", fail_on, str(EXAMPLES))[0] == code


def test_fail_on_above_every_finding_exits_0() -> None:
    path = str(EXAMPLES / "workloads" / "tenant-runtimeclass.yaml")  # GG105 is medium
    assert audit("--format", "json", "--fail-on", "high", path)[0] == 0
    assert audit("--format", "json", "--fail-on", "medium", path)[0] == 1


@pytest.mark.parametrize("fmt", ["table", "json", "sarif", "junit", "policyreport"])
def test_every_format_renders_to_output_file(tmp_path, fmt: str) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "report"
    code, stdout, stderr = audit("--format", fmt, "--output", str(out), "--no-color", str(EXAMPLES))
    assert code == 1
    assert stdout == ""
    assert out.stat().st_size > 0
    assert "findings" in stderr.splitlines()[-1]
