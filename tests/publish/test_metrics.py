"""The Prometheus snapshot of an audit run (``publish.metrics``): a real Pushgateway and the textfile format.

The Pushgateway is Debian's ``prometheus-pushgateway`` on a free port (skipped when it is not installed);
what it serves on ``/metrics`` is parsed with prometheus_client's own parser.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner
from prometheus_client.parser import text_string_to_metric_families

from gpuguard.cli.main import cli
from gpuguard.model.decision import ContainerDecision, Exposure
from gpuguard.model.finding import Finding, ReadError, Resource, Severity
from gpuguard.model.report import ProfileSummary, Report
from gpuguard.publish.metrics import RunFacts, push, snapshot, write_textfile

PUSHGATEWAY = os.environ.get("GPUGUARD_PUSHGATEWAY", "/usr/bin/prometheus-pushgateway")
PROFILE = ProfileSummary(source="test", operator_version=None, toolkit_version="1.17.8", device_plugin_version=None)
MANIFESTS = Path(__file__).resolve().parents[1] / "fixtures" / "manifests"

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def pushgateway(tmp_path: Path) -> Iterator[str]:
    if not os.access(PUSHGATEWAY, os.X_OK):
        pytest.skip(f"no Pushgateway at {PUSHGATEWAY} (Debian package prometheus-pushgateway; scripts/test "
                    "installs it)")
    port = _free_port()
    log = (tmp_path / "pushgateway.log").open("wb")
    # Debian's build persists to /var/lib/prometheus by default: keep this one's state in the test's folder.
    proc = subprocess.Popen([PUSHGATEWAY, f"--web.listen-address=127.0.0.1:{port}",
                             f"--persistence.file={tmp_path / 'pushgateway.data'}"], stdout=log,
                            stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                if httpx.get(f"{url}/-/ready", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "the Pushgateway did not get ready in 20 s"
            with contextlib.suppress(subprocess.TimeoutExpired):  # paces the polling; returns early if it died
                proc.wait(timeout=0.05)
            assert proc.returncode is None, (tmp_path / "pushgateway.log").read_text()
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def _samples(text: str, prefix: str = "gpuguard_") -> Samples:
    out: Samples = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name.startswith(prefix):
                out[(s.name, frozenset(s.labels.items()))] = s.value
    return out


def _gateway(url: str) -> Samples:
    return _samples(httpx.get(f"{url}/metrics", timeout=5).text)


def _key(name: str, **labels: str) -> tuple[str, frozenset[tuple[str, str]]]:
    return name, frozenset(labels.items())


def _decision(pod: str, namespace: str, sees: tuple[str, ...], allocated: tuple[str, ...] = ()) -> ContainerDecision:
    return ContainerDecision(pod=pod, namespace=namespace, container="main", kind="container",
                             requested=len(allocated), allocated=allocated, handler="nvidia", toolkit=None,
                             injected=(), host_devices=False, sees=sees, exposure=Exposure.ALL)


def _finding(rule: str, severity: Severity, namespace: str | None, node: str | None,
             decision: ContainerDecision | None = None) -> Finding:
    name = decision.pod if decision else "cluster-policy"
    return Finding(rule, severity, "m", "r", resource=Resource("v1", "Pod", namespace, name), node=node,
                   decision=decision)


REPORT = Report(
    profile=PROFILE,
    findings=(
        _finding("GG101", Severity.HIGH, "ml", "gpu-1", _decision("jupyter-a", "ml", ("all",))),
        _finding("GG101", Severity.HIGH, "ml", "gpu-1", _decision("jupyter-b", "ml", ("GPU-1", "GPU-2"), ("GPU-1",))),
        _finding("GG104", Severity.LOW, "ml", "gpu-1", _decision("jupyter-a", "ml", ("all",))),  # same pod again
        _finding("GG101", Severity.HIGH, "research", "gpu-2", _decision("lab", "research", ("all",))),
        _finding("GG103", Severity.MEDIUM, "ml", "gpu-2", _decision("train", "ml", ("GPU-7",), ("GPU-7",))),  # own
        _finding("GG201", Severity.MEDIUM, None, None),
    ),
    errors=(ReadError("list daemonsets: forbidden (403)"),),
    objects=212,
)
RUN = RunFacts(finished=1_764_400_000.5, duration=3.25, success=False)
# What REPORT and RUN must give, typed from the report above.
EXPECTED = {
    _key("gpuguard_findings", rule="GG101", severity="high", namespace="ml", node="gpu-1"): 2.0,
    _key("gpuguard_findings", rule="GG104", severity="low", namespace="ml", node="gpu-1"): 1.0,
    _key("gpuguard_findings", rule="GG101", severity="high", namespace="research", node="gpu-2"): 1.0,
    _key("gpuguard_findings", rule="GG103", severity="medium", namespace="ml", node="gpu-2"): 1.0,
    _key("gpuguard_findings", rule="GG201", severity="medium", namespace="", node=""): 1.0,
    _key("gpuguard_exposed_pods", node="gpu-1"): 2.0,  # jupyter-a (all), jupyter-b (a GPU it was not given)
    _key("gpuguard_exposed_pods", node="gpu-2"): 1.0,  # lab; train sees only its own GPU
    _key("gpuguard_audit_last_run_timestamp_seconds"): 1_764_400_000.5,
    _key("gpuguard_audit_duration_seconds"): 3.25,
    _key("gpuguard_audit_objects"): 212.0,
    _key("gpuguard_audit_read_errors"): 1.0,
    _key("gpuguard_audit_success"): 0.0,
}


def _with(samples: dict[tuple[str, frozenset[tuple[str, str]]], float], **extra: str) -> Samples:
    return {(name, labels | frozenset(extra.items())): v for (name, labels), v in samples.items()}


def test_textfile_holds_exactly_the_runs_series(tmp_path: Path) -> None:
    path = tmp_path / "gpuguard.prom"
    path.write_text("stale\n")
    write_textfile(snapshot(REPORT, RUN), str(path))
    assert _samples(path.read_text()) == EXPECTED
    assert os.listdir(tmp_path) == ["gpuguard.prom"]  # renamed into place: no temporary file left


def test_each_snapshot_has_its_own_registry() -> None:
    first = snapshot(REPORT, RUN)
    clean = snapshot(Report(profile=PROFILE), RunFacts(finished=1.0, duration=0.5, success=True))
    assert first is not clean
    from prometheus_client import generate_latest

    assert _samples(generate_latest(clean).decode()) == {
        _key("gpuguard_audit_last_run_timestamp_seconds"): 1.0, _key("gpuguard_audit_duration_seconds"): 0.5,
        _key("gpuguard_audit_objects"): 0.0, _key("gpuguard_audit_read_errors"): 0.0,
        _key("gpuguard_audit_success"): 1.0}


def test_push_groups_by_cluster_and_replaces_only_that_clusters_run(pushgateway: str) -> None:
    push(snapshot(REPORT, RUN), pushgateway, "gpu-prod")
    assert _gateway(pushgateway) == _with(EXPECTED, job="gpuguard-audit", cluster="gpu-prod", instance="")
    clean = snapshot(Report(profile=PROFILE, objects=9), RunFacts(finished=2.0, duration=1.0, success=True))
    push(clean, pushgateway, "gpu-staging")
    push(clean, pushgateway, "gpu-prod")  # the next run in prod: its findings are gone
    got = _gateway(pushgateway)
    prod = {k: v for k, v in got.items() if ("cluster", "gpu-prod") in k[1]}
    assert prod == _with({
        _key("gpuguard_audit_last_run_timestamp_seconds"): 2.0, _key("gpuguard_audit_duration_seconds"): 1.0,
        _key("gpuguard_audit_objects"): 9.0, _key("gpuguard_audit_read_errors"): 0.0,
        _key("gpuguard_audit_success"): 1.0}, job="gpuguard-audit", cluster="gpu-prod", instance="")
    assert got[_key("gpuguard_audit_objects", job="gpuguard-audit", cluster="gpu-staging", instance="")] == 9.0


def _audit(*args: str) -> Any:
    return CliRunner().invoke(cli, ["audit", "--format", "json", *args])


def test_audit_writes_the_report_then_the_metrics(pushgateway: str, tmp_path: Path) -> None:
    prom = tmp_path / "textfile" / "gpuguard.prom"
    prom.parent.mkdir()
    result = _audit(str(MANIFESTS / "deployment.yaml"), "--metrics-file", str(prom), "--pushgateway", pushgateway,
                    "--fail-on", "critical")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    from_file = _samples(prom.read_text())
    from_gateway = _gateway(pushgateway)
    assert from_gateway == _with(from_file, job="gpuguard-audit", cluster="local", instance="")  # one snapshot
    assert from_file[_key("gpuguard_audit_success")] == 1.0
    assert from_file[_key("gpuguard_audit_objects")] == report["summary"]["objects"]
    assert sum(v for (n, _), v in from_file.items() if n == "gpuguard_findings") == len(report["findings"])
    assert f"gpuguard: metrics pushed to {pushgateway} (cluster=local)" in result.stderr


def test_an_unreachable_pushgateway_is_one_line_and_exit_2(tmp_path: Path) -> None:
    url = f"http://gpuguard:s3cret-pw@127.0.0.1:{_free_port()}"
    result = _audit(str(MANIFESTS / "deployment.yaml"), "--pushgateway", url, "--fail-on", "critical",
                    "--cluster-name", "gpu-prod")
    assert result.exit_code == 2
    assert json.loads(result.stdout)["schema"] == "gpuguard.report/v1"  # the report is not lost
    errors = [line for line in result.stderr.splitlines() if line.startswith("gpuguard: error: ")]
    assert len(errors) == 1
    assert errors[0].startswith(f"gpuguard: error: --pushgateway http://127.0.0.1:{url.rsplit(':', 1)[1]}: ")
    assert "s3cret-pw" not in result.output


def test_an_unwritable_metrics_file_is_one_line_and_exit_2(tmp_path: Path) -> None:
    target = tmp_path / "missing-dir" / "gpuguard.prom"
    result = _audit(str(MANIFESTS / "deployment.yaml"), "--metrics-file", str(target), "--fail-on", "critical")
    assert result.exit_code == 2
    assert json.loads(result.stdout)["findings"] is not None
    errors = [line for line in result.stderr.splitlines() if line.startswith("gpuguard: error: ")]
    assert errors == [f"gpuguard: error: --metrics-file {target}: No such file or directory"]


def test_a_cluster_audit_counts_exposed_pods_on_the_node_they_run_on(tmp_path: Path) -> None:
    from tests.cluster.apiserver import serve
    from tests.cluster.conftest import H100, realistic_cluster

    prom = tmp_path / "gpuguard.prom"
    with serve(realistic_cluster(), tmp_path) as server:
        kubeconfig = server.kubeconfig(tmp_path / "kubeconfig")
        result = _audit("--cluster", "--kubeconfig", str(kubeconfig), "--metrics-file", str(prom))
    assert result.exit_code == 1, result.output
    got = _samples(prom.read_text())
    exposed = {dict(labels)["node"]: v for (name, labels), v in got.items() if name == "gpuguard_exposed_pods"}
    # jupyter-bob (NVIDIA_VISIBLE_DEVICES=all) and batch-report-0 (the same through a ConfigMap) on the H100 that
    # runs its own toolkit; jupyter-alice's A100 nodes are hardened (envvar refused for unprivileged containers).
    # kube-proxy is privileged (every device node) on each GPU node; on the H100 that runs its own toolkit also
    # jupyter-bob (NVIDIA_VISIBLE_DEVICES=all), batch-report-0 (the same through a ConfigMap) and the pending
    # jupyter-carol, judged where it would be most exposed. jupyter-alice's A100 is hardened: not exposed.
    assert exposed == {"gpu-a100-1": 1.0, "gpu-a100-2": 1.0, H100: 4.0}
    assert got[_key("gpuguard_audit_success")] == 1.0
    assert got[_key("gpuguard_audit_objects")] >= 200
    assert "cluster=" not in result.stderr  # no Pushgateway asked for

