"""``gpuguard audit --history``: how the command hands a run to the history store and keeps its URL secret.

The store itself (``gpuguard.history.record_run``) is tested with the history; here it is replaced by a
recorder, to check what the command passes (URL from ``GPUGUARD_HISTORY_URL``, cluster name, start time)
and that a failing store is one line, exit 2, with neither the URL's password nor the report lost.
"""

from __future__ import annotations

import datetime
import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

import gpuguard.history
from gpuguard.cli.main import cli

MANIFEST = str(Path(__file__).resolve().parents[1] / "fixtures" / "manifests" / "deployment.yaml")
URL = "postgresql://gpuguard:pw-7Hq2x@db.example.com:5432/audits?sslmode=require"


def _run(env: dict[str, str], *args: str) -> Any:
    return CliRunner().invoke(cli, ["audit", "--format", "json", "--fail-on", "critical", MANIFEST, *args], env=env)


@pytest.mark.parametrize(("args", "cluster"), [([], "local"), (["--cluster-name", "gpu-prod"], "gpu-prod")])
def test_the_run_goes_to_the_store_named_by_the_environment(
    monkeypatch: pytest.MonkeyPatch, args: list[str], cluster: str
) -> None:
    calls: list[dict[str, Any]] = []

    def record_run(report: Any, **kw: Any) -> int:
        calls.append({"report": report, **kw})
        return 42

    monkeypatch.setattr(gpuguard.history, "record_run", record_run)
    before = datetime.datetime.now(datetime.UTC)
    result = _run({"GPUGUARD_HISTORY_URL": URL}, *args)
    assert result.exit_code == 0, result.output
    (call,) = calls
    assert (call["url"], call["cluster"]) == (URL, cluster)
    assert call["started"].tzinfo is not None and before <= call["started"] <= datetime.datetime.now(datetime.UTC)
    assert len(call["report"].findings) == len(json.loads(result.stdout)["findings"])
    assert "gpuguard: history: run 42 recorded (postgresql://db.example.com:5432/audits)" in result.stderr
    assert "pw-7Hq2x" not in result.output


def test_a_failing_store_is_one_line_exit_2_and_no_password(monkeypatch: pytest.MonkeyPatch) -> None:
    def record_run(report: Any, **kw: Any) -> int:
        raise RuntimeError(f'connection to "{kw["url"]}" failed: password "pw-7Hq2x" was refused')

    monkeypatch.setattr(gpuguard.history, "record_run", record_run)
    result = _run({"GPUGUARD_HISTORY_URL": URL})
    assert result.exit_code == 2
    assert json.loads(result.stdout)["schema"] == "gpuguard.report/v1"
    errors = [line for line in result.stderr.splitlines() if line.startswith("gpuguard: error: ")]
    assert errors == ['gpuguard: error: --history postgresql://db.example.com:5432/audits: RuntimeError: '
                      'connection to "postgresql://db.example.com:5432/audits" failed: password "***" was refused']
    assert "pw-7Hq2x" not in result.output


def test_no_history_without_a_url(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[Any] = []
    monkeypatch.setattr(gpuguard.history, "record_run", lambda *a, **kw: calls.append(a))
    result = _run({"GPUGUARD_HISTORY_URL": ""})
    assert result.exit_code == 0 and calls == []
