"""``gpuguard agent`` in continuous mode, as a real subprocess: it outlives a containerd restart, serves its
metrics throughout, and ends cleanly on SIGTERM.  Plus the usage errors of the command line."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.agent.node import NODE, Planned, agent_node
from tests.node.runtime import Runtime

PLAN = [Planned("notebook", namespace="research", gpus=(0,)), Planned("web", namespace="shop", container="nginx")]
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def scrape(port: int) -> Samples:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as answer:
        text = answer.read().decode()
    return {(s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}  # fmt: skip


def poll(condition: Callable[[], bool], what: str, proc: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
    """Until ``condition`` holds; fails naming ``what`` (and the agent's log) at the deadline or if it died."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert proc.poll() is None, f"the agent exited with {proc.returncode} while waiting for {what}"
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)  # polling interval, not synchronisation


def got(port: int, name: str, **labels: str) -> float | None:
    try:
        return scrape(port).get((name, frozenset(labels.items())))
    except OSError:
        return None  # not listening yet


@pytest.fixture
def agent_env(runtime: Runtime, short_dir: str) -> Iterator[tuple[list[str], Path]]:
    with agent_node(runtime, PLAN, "cont", workdir=short_dir) as n:
        try:
            yield n.args(), Path(short_dir)
        finally:
            if subprocess.run(["ctr", "-a", runtime.socket, "version"], capture_output=True, check=False).returncode:
                runtime.start_containerd()  # a failed test must not leave the session's containerd stopped


def test_keeps_running_through_a_containerd_restart_and_stops_on_sigterm(
    runtime: Runtime, agent_env: tuple[list[str], Path]
) -> None:
    args, workdir = agent_env
    port = free_port()
    log = open(workdir / "agent.log", "wb")  # noqa: SIM115 - closed below, after the process
    proc = subprocess.Popen(
        [sys.executable, "-m", "gpuguard", "agent", "--interval", "1", "--metrics-port", str(port),
         "--metrics-address", "127.0.0.1", *args],
        stdout=subprocess.DEVNULL, stderr=log,
    )
    try:
        notebook = PLAN[0]
        held = {"namespace": "research", "pod": notebook.pod_name, "container": "main", "kind": "held"}
        poll(lambda: got(port, "gpuguard_agent_container_gpus", **held) == 1, "the first scan", proc)
        assert got(port, "gpuguard_agent_findings", rule="GG401") == 1
        runtime.stop_containerd()
        poll(lambda: got(port, "gpuguard_agent_source_up", source="containerd") == 0, "containerd seen down", proc)
        degraded = got(port, "gpuguard_agent_scans_total", outcome="degraded") or 0
        assert degraded >= 1
        # Nothing seen while containerd is down: the last known series stand.
        assert got(port, "gpuguard_agent_container_gpus", **held) == 1
        assert got(port, "gpuguard_agent_findings", rule="GG401") == 1
        runtime.start_containerd()
        complete = got(port, "gpuguard_agent_scans_total", outcome="complete") or 0
        poll(lambda: got(port, "gpuguard_agent_source_up", source="containerd") == 1, "containerd seen back", proc)
        poll(lambda: (got(port, "gpuguard_agent_scans_total", outcome="complete") or 0) > complete,
             "a complete scan after the restart", proc)
        assert got(port, "gpuguard_agent_container_gpus", **held) == 1
        assert got(port, "gpuguard_agent_findings", rule="GG401") == 1
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        log.close()
    text = (workdir / "agent.log").read_text()
    assert f"metrics on http://127.0.0.1:{port}/metrics" in text
    assert "source containerd down: " in text
    assert "source containerd back" in text
    assert "stopped after " in text


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--once", "--events"], "--events and --policy-reports publish in continuous mode; drop --once"),
        (["--once", "--toolkit-version", "one.seventeen"], "--toolkit-version: "),
        (["--interval", "0.5"], "Invalid value for '--interval'"),
    ],
)
def test_usage_errors(args: list[str], says: str) -> None:
    done = subprocess.run([sys.executable, "-m", "gpuguard", "agent", *args], capture_output=True, timeout=60,
                          check=False)
    assert done.returncode == 2
    assert says in done.stderr.decode()
    assert done.stdout == b""


def test_metrics_port_in_use_is_a_usage_error(short_dir: str) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = subprocess.run(
            [sys.executable, "-m", "gpuguard", "agent", "--metrics-port", str(port), "--metrics-address", "127.0.0.1",
             "--containerd-socket", os.path.join(short_dir, "none.sock")],
            capture_output=True, timeout=60, check=False,
        )
    assert done.returncode == 2
    assert f"gpuguard: error: --metrics-port {port}: " in done.stderr.decode()


def _run_until(args: list[str], extra: list[str], done: Callable[[], bool], what: str, log_path: Path) -> str:
    """The agent in continuous mode until ``done()``, then SIGTERM; its log."""
    with open(log_path, "wb") as log:
        proc = subprocess.Popen([sys.executable, "-m", "gpuguard", "agent", "--interval", "1", "--metrics-port", "0",
                                 *args, *extra], stdout=subprocess.DEVNULL, stderr=log)
        try:
            poll(done, what, proc)
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=30) == 0
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    return log_path.read_text()


def test_events_from_the_command_line(agent_env: tuple[list[str], Path]) -> None:
    from tests.agent.events_api import TOKEN, serve

    args, workdir = agent_env
    with serve() as api:
        kubeconfig = workdir / "kubeconfig"
        kubeconfig.write_text(json.dumps({
            "apiVersion": "v1", "kind": "Config", "current-context": "node",
            "clusters": [{"name": "c", "cluster": {"server": api.host}}],
            "users": [{"name": "agent", "user": {"token": TOKEN}}],
            "contexts": [{"name": "node", "context": {"cluster": "c", "user": "agent"}}],
        }))
        log = _run_until(args, ["--events", "--kubeconfig", str(kubeconfig)], lambda: bool(api.events),
                         "an Event", workdir / "events.log")
        (event,) = api.events.values()
    assert event["reason"] == "GPUGuardUnallocatedGPU"
    assert event["involvedObject"]["name"] == PLAN[0].pod_name
    assert "events:" not in log


def test_policy_reports_from_the_command_line(agent_env: tuple[list[str], Path]) -> None:
    from tests.cluster.apiserver import Snapshot
    from tests.cluster.apiserver import serve as serve_api

    args, workdir = agent_env
    with serve_api(Snapshot(), workdir) as server:
        kubeconfig = server.kubeconfig(workdir / "kubeconfig")
        _run_until(args, ["--policy-reports", "--kubeconfig", str(kubeconfig)],
                   lambda: ("research", f"gpuguard-agent-{NODE}") in server.report_objects("policyreports"),
                   "the node's PolicyReport", workdir / "reports.log")
        stored = server.report_objects("policyreports")[("research", f"gpuguard-agent-{NODE}")]
    assert [(r["policy"], r["resources"][0]["name"]) for r in stored["results"]] == [("GG401", PLAN[0].pod_name)]
