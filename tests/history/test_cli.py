"""``gpuguard history`` on both backends, fed by real cluster audits (the API server stand-in)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner

from gpuguard.audit.cluster import ClusterAuditOptions, audit_with_reader
from gpuguard.cli.main import cli
from gpuguard.history import record_run
from gpuguard.model.report import Report
from gpuguard.rules.settings import AuditSettings
from gpuguard.sources.cluster import ClusterReader, ConnectOptions, connect
from tests.cluster.apiserver import ApiServer
from tests.history.sample import pod, report

BOB = "GG101|Pod/ml-notebooks/jupyter-bob|notebook"
CAROL = "GG101|Pod/ml-notebooks/jupyter-carol|notebook"


def _audit(kubeconfig: Path) -> Report:
    options = ConnectOptions(kubeconfig=str(kubeconfig))
    api, context = connect(options)
    try:
        return audit_with_reader(ClusterReader(api, context, options), AuditSettings(), ClusterAuditOptions())
    finally:
        api.close()


def _history(*args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, ["history", *args], env=env)
    return result.exit_code, result.stdout, result.stderr


def test_history_of_two_cluster_audits(store_url: str, apiserver: ApiServer, kubeconfig: Path) -> None:
    first = record_run(_audit(kubeconfig), url=store_url, cluster="gpu-prod",
                       started=datetime(2026, 11, 28, 6, 0, tzinfo=UTC))
    # between the audits the owner of jupyter-bob deletes it; carol's pending notebook stays
    pods = apiserver.snapshot.objects["pods"]
    pods[:] = [p for p in pods if p["metadata"]["name"] != "jupyter-bob"]
    second = record_run(_audit(kubeconfig), url=store_url, cluster="gpu-prod",
                        started=datetime(2026, 11, 29, 6, 0, tzinfo=UTC))
    code, out, err = _history("--db", store_url, "--format", "json")
    assert code == 0, err
    doc = json.loads(out)
    assert (doc["from"]["id"], doc["to"]["id"]) == (first, second)
    assert (doc["from"]["started"], doc["to"]["started"]) == ("2026-11-28T06:00:00Z", "2026-11-29T06:00:00Z")
    assert doc["new"] == []
    assert [f["fingerprint"] for f in doc["fixed"]] == [BOB]
    assert doc["fixed"][0]["node"] == "gpu-h100-1" and doc["fixed"][0]["severity"] == "high"
    still = [f["fingerprint"] for f in doc["still_open"]]
    assert CAROL in still and BOB not in still
    # the snapshot's audit: 7 high (3 kube-proxy, bob, carol, batch-report-0, GG201), 5 medium, 1 low
    assert doc["from"]["by_severity"] == {"critical": 0, "high": 7, "medium": 5, "low": 1, "info": 0}
    assert doc["to"]["by_severity"] == {"critical": 0, "high": 6, "medium": 5, "low": 1, "info": 0}
    assert len(still) == 12
    assert still.count("GG206|ClusterPolicy//cluster-policy|") == 2  # two findings, one fingerprint: both still open
    assert err == f"0 new, 1 fixed, 12 still open (run {first} -> run {second}, cluster gpu-prod)\n"
    assert "s3cret" not in out + err

    code, out, _ = _history("--db", store_url)
    assert code == 0
    assert "NEW (0)" in out and "FIXED (1)" in out and "STILL OPEN (12)" in out
    fixed_block = out.split("FIXED (1)\n", 1)[1].split("\n\n", 1)[0]
    assert "Pod ml-notebooks/jupyter-bob" in fixed_block and "gpu-h100-1" in fixed_block


def test_default_is_the_last_two_runs_of_the_latest_cluster(store_url: str) -> None:
    a = record_run(report(pod("a")), url=store_url, cluster="prod")
    record_run(report(pod("s")), url=store_url, cluster="staging")
    b = record_run(report(pod("a"), pod("b")), url=store_url, cluster="prod")
    code, out, _ = _history("--db", store_url, "--format", "json")
    assert code == 0
    doc = json.loads(out)
    assert (doc["from"]["id"], doc["to"]["id"]) == (a, b)
    assert [f["name"] for f in doc["new"]] == ["b"]
    code, out, _ = _history("--db", store_url, "--cluster", "staging", "--format", "json")
    doc = json.loads(out)
    assert doc["from"] is None and [f["name"] for f in doc["new"]] == ["s"]  # the first run: all new


def test_from_and_to(store_url: str) -> None:
    ids = [record_run(report(*(pod(f"p{j}") for j in range(i + 1))), url=store_url, cluster="prod")
           for i in range(3)]
    code, out, _ = _history("--db", store_url, "--from", str(ids[0]), "--to", str(ids[2]), "--format", "json")
    assert code == 0
    doc = json.loads(out)
    assert [f["name"] for f in doc["new"]] == ["p1", "p2"]
    assert [f["name"] for f in doc["still_open"]] == ["p0"]
    code, out, _ = _history("--db", store_url, "--to", str(ids[1]), "--format", "json")
    assert json.loads(out)["from"]["id"] == ids[0]


def test_db_from_the_environment_and_list(store_url: str) -> None:
    ids = [record_run(report(pod("a")), url=store_url, cluster=c,
                      started=datetime(2026, 11, 29, 6, i, tzinfo=UTC)) for i, c in enumerate(["prod", "staging"])]
    code, out, err = _history("--list", "--format", "json", env={"GPUGUARD_HISTORY_URL": store_url})
    assert code == 0, err
    assert [(r["id"], r["cluster"], r["started"], r["by_severity"]["high"]) for r in json.loads(out)] == [
        (ids[0], "prod", "2026-11-29T06:00:00Z", 1), (ids[1], "staging", "2026-11-29T06:01:00Z", 1)]
    code, out, err = _history("--list", "--cluster", "staging", env={"GPUGUARD_HISTORY_URL": store_url})
    lines = out.splitlines()
    assert lines[0].split() == ["RUN", "STARTED", "CLUSTER", "CRIT", "HIGH", "MED", "LOW", "INFO", "OBJECTS", "ERRORS"]
    assert lines[1].split() == [str(ids[1]), "2026-11-29T06:01:00Z", "staging", "0", "1", "0", "0", "0", "210", "0"]
    assert len(lines) == 2
    assert "s3cret" not in err


@pytest.mark.parametrize(("args", "message"), [
    (["--to", "99"], "gpuguard: error: run 99: no such run in "),
    (["--from", "99"], "gpuguard: error: run 99: no such run in "),
    (["--cluster", "nowhere"], "gpuguard: error: "),
    (["--to", "1", "--cluster", "staging"], "gpuguard: error: --to 1: is a run of cluster 'prod', not 'staging'"),
    (["--from", "2", "--to", "1"], "gpuguard: error: --from 2 is not older than --to 1"),
    (["--list", "--to", "1"], "gpuguard: error: --list takes no --from/--to"),
])
def test_bad_input_is_one_line_and_exit_2(store_url: str, args: list[str], message: str) -> None:
    record_run(report(pod("a")), url=store_url, cluster="prod")
    record_run(report(pod("a")), url=store_url, cluster="prod")
    code, out, err = _history("--db", store_url, *args)
    assert code == 2
    assert out == ""
    assert err.startswith(message) and err.count("\n") == 1
    assert "s3cret" not in err


def test_missing_sqlite_file_is_not_created(tmp_path: Path) -> None:
    path = tmp_path / "typo.db"
    code, _, err = _history("--db", str(path))
    assert code == 2 and err == f"gpuguard: error: {path}: no history database here " \
        "(record a run with gpuguard audit --history)\n"
    assert not path.exists()


def test_unreachable_postgres_is_exit_2_without_password() -> None:
    code, _, err = _history("--db", "postgresql://gg:hunter2@127.0.0.1:1/gpuguard")
    assert code == 2
    assert err.startswith("gpuguard: error: postgresql://gg:***@127.0.0.1:1/gpuguard: cannot connect: ")
    assert "hunter2" not in err and err.count("\n") == 1


def test_audit_history_then_history_and_report(store_url: str, apiserver: ApiServer, kubeconfig: Path,
                                               tmp_path: Path) -> None:
    """End to end: ``gpuguard audit --cluster --history`` twice, then ``history`` and ``report --html``."""
    audit = ["audit", "--cluster", "--kubeconfig", str(kubeconfig), "--context", "gpu-prod", "--format", "json",
             "--cluster-name", "gpu-prod", "--history", store_url]
    first = CliRunner().invoke(cli, audit)
    assert first.exit_code == 1, first.stderr  # findings at or above medium
    pods = apiserver.snapshot.objects["pods"]
    pods[:] = [p for p in pods if p["metadata"]["name"] != "jupyter-bob"]
    second = CliRunner().invoke(cli, audit)
    assert second.exit_code == 1, second.stderr
    assert "history: run 2 recorded" in second.stderr and "s3cret" not in first.stderr + second.stderr
    code, out, err = _history("--db", store_url, "--format", "json")
    assert code == 0, err
    doc = json.loads(out)
    assert (doc["from"]["id"], doc["to"]["id"], doc["to"]["cluster"]) == (1, 2, "gpu-prod")
    assert [f["fingerprint"] for f in doc["fixed"]] == [BOB] and doc["new"] == []
    page = tmp_path / "report.html"
    result = CliRunner().invoke(cli, ["report", "--html", "--db", store_url, "-o", str(page)])
    assert result.exit_code == 0, result.stderr
    html = page.read_text()
    # left on the H100 node: carol (pending, judged there) and batch-report-0; kube-proxy on each GPU node
    assert 'data-node="gpu-h100-1" data-namespace="ml-notebooks" data-count="2" data-severity="high"' in html
    assert 'data-node="gpu-a100-2" data-namespace="kube-system" data-count="1" data-severity="high"' in html


def test_table_keeps_control_characters_off_the_terminal(store_url: str) -> None:
    record_run(report(pod("evil", message="\x1b[2J\x1b]0;owned\x07wiped\nsecond line")), url=store_url,
               cluster="prod")
    code, out, _ = _history("--db", store_url)
    assert code == 0
    assert "\x1b" not in out and "\x07" not in out
    assert "\\x1b[2J\\x1b]0;owned\\x07wiped\\x0asecond line" in out
