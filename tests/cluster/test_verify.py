"""``gpuguard verify`` against the API server stand-in: probe/control pods, verdicts, cleanup."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from gpuguard.cli.main import cli
from gpuguard.sources.cluster.probes import run_probes
from gpuguard.sources.cluster.reader import ConnectOptions, connect
from gpuguard.verify.probe import (
    BEGIN,
    DEFAULT_IMAGE,
    END,
    ProbeOptions,
    control_pod,
    judge,
    parse_log,
    probe_pod,
)
from tests.cluster.apiserver import ApiServer

NODE = "gpu-a100-1"


def report(smi: str | None, devs: tuple[str, ...] = (), proc: tuple[str, ...] = ()) -> str:
    """A log as the probe's script prints it (``smi`` None: nvidia-smi absent)."""
    lines = ["some image banner", BEGIN, "--- nvidia-smi"]
    lines += ["rc=missing"] if smi is None else [*smi.splitlines(), "rc=0" if smi else "rc=9"]
    lines += ["--- dev", *devs, "--- proc", *proc, END]
    return "\n".join(lines) + "\n"


GPU0 = "GPU 0: NVIDIA A100-SXM4-80GB (UUID: GPU-11111111-2222-3333-4444-555555555555)"
GPU1 = "GPU 1: NVIDIA A100-SXM4-80GB (UUID: GPU-66666666-2222-3333-4444-555555555555)"
CTL_DEVS = ("/dev/nvidia-uvm", "/dev/nvidiactl", "/dev/nvidia0")
NO_GPU = report("NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver.")
ONE_GPU = report(GPU0, CTL_DEVS, ("0000:07:00.0",))
ALL_GPUS = report(f"{GPU0}\n{GPU1}", (*CTL_DEVS, "/dev/nvidia1"), ("0000:07:00.0", "0000:0f:00.0"))


@pytest.mark.parametrize(("log", "complete", "count", "smi_present"), [
    (NO_GPU, True, 0, True),
    (report(None), True, 0, False),
    (ONE_GPU, True, 1, True),
    (ALL_GPUS, True, 2, True),
    (report(None, ("/dev/nvidiactl", "/dev/nvidia0")), True, 1, False),  # no nvidia-smi, device still there
    (report(None, (), ("0000:07:00.0",)), True, 1, False),
    (report("", ("/dev/nvidiactl", "/dev/nvidia-uvm")), True, 0, True),  # control nodes only: no GPU device
    ("exec /bin/sh: no such file or directory\n", False, 0, False),
    (BEGIN + "\n--- nvidia-smi\n" + GPU0 + "\n", False, 0, False),  # truncated: no end marker
])
def test_parse_log(log: str, complete: bool, count: int, smi_present: bool) -> None:
    ev = parse_log(log)
    assert (ev.complete, ev.gpu_count, ev.smi_present) == (complete, count, smi_present)


def test_missing_nvidia_smi_is_not_no_access() -> None:
    verdict = judge(NODE, parse_log(report(None, ("/dev/nvidia0",))), parse_log(ONE_GPU))
    assert not verdict.passed
    assert "probe (no GPU requested) sees 1 GPU(s)" in verdict.reasons
    assert "nvidia-smi absent" in verdict.probe.lines()  # type: ignore[union-attr]


def test_incomplete_reports_fail() -> None:
    verdict = judge(NODE, parse_log("crashloop"), parse_log(report(None)))
    assert not verdict.passed
    assert set(verdict.reasons) == {"probe report incomplete", "control (1 GPU requested) sees 0 GPU(s), expected 1"}


def test_manifests() -> None:
    opts = ProbeOptions(namespace="gg-v", tolerations=[{"key": "gpu", "operator": "Exists", "effect": "NoSchedule"}],
                        node_selector={"pool": "a100"})
    probe, control = probe_pod(NODE, opts), control_pod(NODE, opts)
    for pod in (probe, control):
        assert pod["metadata"]["namespace"] == "gg-v"
        assert pod["spec"]["nodeName"] == NODE
        assert pod["spec"]["restartPolicy"] == "Never"
        assert pod["spec"]["tolerations"][0]["key"] == "gpu"
        assert pod["spec"]["nodeSelector"] == {"pool": "a100"}
        assert pod["spec"]["containers"][0]["image"] == DEFAULT_IMAGE
    pc, cc = probe["spec"]["containers"][0], control["spec"]["containers"][0]
    assert {"name": "NVIDIA_VISIBLE_DEVICES", "value": "all"} in pc["env"]
    assert "nvidia.com/gpu" not in json.dumps(pc["resources"])
    assert cc["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert "nvidia-smi -L" in pc["command"][-1] and "/proc/driver/nvidia/gpus" in pc["command"][-1]


def _runner(probe_log: str) -> Any:
    def run(node: str, pod: dict[str, Any]) -> tuple[str, str]:
        assert node == pod["spec"]["nodeName"]
        role = pod["metadata"]["labels"]["gpuguard.io/role"]
        return "Succeeded", probe_log if role == "probe" else ONE_GPU
    return run


def _deleted(apiserver: ApiServer, ns: str = "gpuguard-verify") -> bool:
    return ("DELETE", f"/api/v1/namespaces/{ns}", {}) in [(m, p, {}) for m, p, _ in apiserver.requests] \
        and ns not in apiserver.namespaces


def test_hardened_node_passes(apiserver: ApiServer, kubeconfig: Path) -> None:
    apiserver.runner = _runner(NO_GPU)
    result = CliRunner().invoke(cli, ["verify", "--kubeconfig", str(kubeconfig), "--node", NODE,
                                      "--toleration", "nvidia.com/gpu:NoSchedule", "--format", "json"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert [n["verdict"] for n in doc["nodes"]] == ["PASS"]
    assert _deleted(apiserver)
    posts = [p for m, p, _ in apiserver.requests if m == "POST"]
    assert posts == ["/api/v1/namespaces", "/api/v1/namespaces/gpuguard-verify/pods",
                     "/api/v1/namespaces/gpuguard-verify/pods"]
    assert any(p.endswith("/log") for _, p, _ in apiserver.requests)


def test_all_gpu_nodes_by_default(apiserver: ApiServer, kubeconfig: Path) -> None:
    apiserver.runner = _runner(NO_GPU)
    result = CliRunner().invoke(cli, ["verify", "--kubeconfig", str(kubeconfig), "--namespace", "gg-check"])
    assert result.exit_code == 0, result.output
    assert {line.split(":")[0] for line in result.stdout.splitlines() if line.endswith("PASS")} == {
        "gpu-a100-1", "gpu-a100-2", "gpu-h100-1"}
    assert _deleted(apiserver, "gg-check")


def test_exposed_node_fails_with_evidence(apiserver: ApiServer, kubeconfig: Path) -> None:
    apiserver.runner = _runner(ALL_GPUS)
    result = CliRunner().invoke(cli, ["verify", "--kubeconfig", str(kubeconfig), "--node", NODE])
    assert result.exit_code == 1, result.output
    assert f"{NODE}: FAIL" in result.stdout
    assert "probe (no GPU requested) sees 2 GPU(s)" in result.stdout
    assert GPU1 in result.stdout
    assert _deleted(apiserver)


def _api(kubeconfig: Path) -> Any:
    return connect(ConnectOptions(kubeconfig=str(kubeconfig)))[0]


def test_never_completes_times_out_and_cleans_up(apiserver: ApiServer, kubeconfig: Path) -> None:
    apiserver.runner = lambda node, pod: ("Pending", "")
    now = [0.0]

    def sleep(seconds: float) -> None:
        now[0] += seconds

    verdicts = run_probes(_api(kubeconfig), [NODE], ProbeOptions(), timeout=10, poll=2, sleep=sleep,
                          clock=lambda: now[0])
    assert [(v.passed, v.error) for v in verdicts] == [(False, "timeout")]
    assert "timeout after 10s" in verdicts[0].reasons[0]
    assert _deleted(apiserver)


def test_timeout_via_cli_exits_2(apiserver: ApiServer, kubeconfig: Path) -> None:
    result = CliRunner().invoke(cli, ["verify", "--kubeconfig", str(kubeconfig), "--node", NODE, "--timeout", "1"])
    assert result.exit_code == 2, result.output  # no runner: pods stay Pending
    assert "FAIL" in result.stdout and "timeout" in result.stdout
    assert _deleted(apiserver)


def test_ctrl_c_still_cleans_up(apiserver: ApiServer, kubeconfig: Path) -> None:
    def interrupt(seconds: float) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_probes(_api(kubeconfig), [NODE], ProbeOptions(), sleep=interrupt)
    assert _deleted(apiserver)


def test_bad_toleration_is_a_usage_error(kubeconfig: Path) -> None:
    result = CliRunner().invoke(cli, ["verify", "--kubeconfig", str(kubeconfig), "--toleration", "nokey"])
    assert result.exit_code == 2
    assert "KEY[=VALUE]:EFFECT" in result.output


def test_existing_namespace_is_an_error_and_not_deleted(apiserver: ApiServer, kubeconfig: Path) -> None:
    apiserver.namespaces["default"] = {"metadata": {"name": "default"}}
    result = CliRunner().invoke(cli, ["verify", "--kubeconfig", str(kubeconfig), "--node", NODE,
                                      "--namespace", "default"])
    assert result.exit_code == 2
    assert "default" in apiserver.namespaces
    assert not [p for m, p, _ in apiserver.requests if m == "DELETE"]
