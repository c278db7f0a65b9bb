"""Done when: against real containerd + runc with 50 containers in mixed states, ``gpuguard agent --once``
reports exactly the unallocated holders, with zero false positives.

The node: the harness's containerd with emulated GPU device nodes and driver tree, the kubelet stand-in
serving the allocations (a real gRPC server), the GPU Operator's toolkit config.toml.  The agent runs as
a real subprocess of the CLI; what it must report is written by hand in ``tests.agent.node``.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import orjson
import pytest

from tests.agent.node import NODE, Planned, Populated, agent_node, mixed_states, uuid_of
from tests.node.kubelet import KubeletStandIn
from tests.node.runtime import Runtime

Key = tuple[str, str, str]


@dataclass
class Mixed:
    rt: Runtime
    node: Populated
    kubelet: KubeletStandIn
    kubelet_socket: str
    toolkit_config: str
    dir: str

    def args(self, **overrides: str) -> list[str]:
        flags = {
            "--node": NODE, "--containerd-socket": self.rt.socket, "--containerd-namespace": self.rt.namespace,
            "--pod-resources-socket": self.kubelet_socket, "--driver-root": self.rt.driver_root,
            "--proc-root": "/proc", "--toolkit-config": self.toolkit_config, "--toolkit-version": "1.17.8",
            **overrides,
        }
        return [a for k, v in flags.items() for a in (k, v)]


@pytest.fixture(scope="module")
def mixed(runtime: Runtime) -> Iterator[Mixed]:
    plan = mixed_states()
    assert len(plan) == 50
    with agent_node(runtime, plan, "acc", allocatable={"nvidia.com/gpu": [uuid_of(m) for m in range(4)]}) as n:
        yield Mixed(runtime, n.node, n.kubelet, n.kubelet_socket, n.toolkit_config, n.dir)


def agent(*args: str) -> subprocess.CompletedProcess[bytes]:
    env = {k: v for k, v in os.environ.items() if k != "NODE_NAME"}
    return subprocess.run([sys.executable, "-m", "gpuguard", "agent", *args], capture_output=True, timeout=120,
                          env=env, check=False)


def found(report: dict[str, Any], rule_id: str) -> set[Key]:
    out = set()
    for f in report["findings"]:
        if f["rule_id"] == rule_id:
            r = f["resource"]
            assert (r["apiVersion"], r["kind"]) == ("v1", "Pod")
            out.add((r["namespace"], r["name"], f["container"]))
    return out


def expected(rule_id: str) -> set[Key]:
    return {p.key for p in mixed_states() if rule_id in p.expect}


def _by_key() -> dict[Key, Planned]:
    return {p.key: p for p in mixed_states()}


def test_once_reports_exactly_the_unallocated_holders(mixed: Mixed) -> None:
    done = agent("--once", "--format", "json", *mixed.args())
    assert done.returncode == 1, done.stderr.decode()  # findings at or above medium, every source read
    report = orjson.loads(done.stdout)
    assert report["errors"] == []
    gg401 = found(report, "GG401")
    assert gg401 == expected("GG401")
    assert len(gg401) == 13  # 6 through linux.devices (one with an operator-like name), 4 bind mounts, 3 privileged
    assert found(report, "GG402") == expected("GG402")
    assert found(report, "GG403") == expected("GG403")
    assert {f["rule_id"] for f in report["findings"]} == {"GG401", "GG402", "GG403"}
    assert all(f["node"] == NODE for f in report["findings"])
    exempt = {(e["resource"]["namespace"], e["resource"]["name"], e["container"]) for e in report["exempt"]}
    assert exempt == {p.key for p in mixed_states() if p.exempt}
    assert all("GPU Operator component" in e["reason"] for e in report["exempt"])


def test_findings_name_what_was_held_and_allocated(mixed: Mixed) -> None:
    report = orjson.loads(agent("--once", *mixed.args()).stdout)
    plan = _by_key()
    for f in report["findings"]:
        p = plan[(f["resource"]["namespace"], f["resource"]["name"], f["container"])]
        held = {*p.gpus, *p.bind_gpus} or ({0, 1, 2, 3} if p.privileged else set())
        for minor in held:
            assert uuid_of(minor) in f["message"], (p.name, f["message"])
        if f["rule_id"] == "GG402":
            assert p.allocated[0] in f["message"]


def test_what_was_not_looked_into_is_said_not_judged(mixed: Mixed) -> None:
    report = orjson.loads(agent("--once", *mixed.args()).stdout)
    notes = report["profile"]["notes"]
    # 4 exited + 3 created without a task; 50 - 7 looked into through /proc.
    assert "7 containers without a running task (exited or not started): they hold no device" in notes
    assert "43 running containers looked into through /proc" in notes
    flagged = {f["resource"]["name"] for f in report["findings"]}
    assert not {p.pod_name for p in mixed_states() if p.state != "running"} & flagged
    assert report["profile"]["toolkit_version"] == "1.17.8"
    assert report["profile"]["settings"]["gpus"] == "4"


def test_missing_kubelet_socket_degrades_the_report_and_the_scan_goes_on(mixed: Mixed) -> None:
    missing = os.path.join(mixed.dir, "no-such-kubelet.sock")
    done = agent("--once", *mixed.args(**{"--pod-resources-socket": missing}))
    assert done.returncode == 2, done.stderr.decode()
    report = orjson.loads(done.stdout)
    (error,) = report["errors"]
    assert error["message"].startswith("kubelet: ") and missing in error["message"]
    assert error["location"]["path"] == missing
    assert "GG401/GG402 not judged" in error["message"]
    # Allocations unknown: nobody is called unallocated on a guess; what needs no kubelet is still judged.
    assert not found(report, "GG401") and not found(report, "GG402")
    assert found(report, "GG403") == expected("GG403")
    assert "43 running containers looked into through /proc" in report["profile"]["notes"]
    assert b"gpuguard: error: " + missing.encode() in done.stderr


def test_toolkit_log_lines_are_correlated_with_containers(mixed: Mixed) -> None:
    cuda = mixed.node.ids["cuda-base-0"]
    train = mixed.node.ids["train-0"]
    log = os.path.join(mixed.dir, "nvidia-container-runtime.log")
    bundle = "/run/containerd/io.containerd.runtime.v2.task/k8s.io"
    lines = [
        {"level": "info", "msg": f"Using bundle directory: {bundle}/{cuda}", "time": "2026-11-29T09:12:44Z"},
        {"level": "warning", "msg": "Ignoring devices requested by environment variable (privileged=false, "
                                    "accept-nvidia-visible-devices-envvar-when-unprivileged=false)",
         "time": "2026-11-29T09:12:44Z"},
        {"level": "info", "msg": f"Using bundle directory: {bundle}/{train}", "time": "2026-11-29T09:13:02Z"},
        {"level": "info", "msg": "Injecting devices using CDI: [nvidia.com/gpu=0]", "time": "2026-11-29T09:13:02Z"},
        {"level": "info", "msg": f"Using bundle directory: {bundle}/gone-long-ago", "time": "2026-11-29T09:13:09Z"},
        {"level": "info", "msg": "Injecting devices using CDI: [nvidia.com/gpu=1]", "time": "2026-11-29T09:13:09Z"},
    ]
    with open(log, "wb") as f:
        f.write(b"".join(orjson.dumps(line) + b"\n" for line in lines))
    report = orjson.loads(agent("--once", *mixed.args(), "--toolkit-log", log,
                                "--toolkit-log", os.path.join(mixed.dir, "rotated-away.log")).stdout)
    assert report["errors"] == []
    notes = [n for n in report["profile"]["notes"] if n.startswith("toolkit log: ")]
    cuda_pod = next(p for p in mixed_states() if p.name == "cuda-base-0").pod_name
    assert notes == [
        f"toolkit log: research/{cuda_pod}/main: request ignored: Ignoring devices requested by environment "
        "variable (privileged=false, accept-nvidia-visible-devices-envvar-when-unprivileged=false)",
        "toolkit log: 3 entries read, 2 about containers on the node",
    ]


@pytest.mark.parametrize(("fmt", "marker"), [("table", b"GG401"), ("policyreport", b"kind: PolicyReport"),
                                             ("sarif", b'"ruleId": "GG401"')])
def test_other_formats(mixed: Mixed, fmt: str, marker: bytes) -> None:
    done = agent("--once", "--format", fmt, "--fail-on", "critical", *mixed.args())
    assert marker in done.stdout
    for p in mixed_states():
        if "GG401" in p.expect:
            assert p.pod_name.encode() in done.stdout
    assert done.returncode in (0, 1)
