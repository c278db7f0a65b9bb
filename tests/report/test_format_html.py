"""``--format html``: one report as a page, the same matrix as ``gpuguard report --html`` (no trend)."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from gpuguard.cli.main import cli
from tests.cluster.apiserver import ApiServer
from tests.cluster.conftest import H100
from tests.report.dom import read


def _audit(kubeconfig: Path, fmt: str) -> str:
    result = CliRunner().invoke(cli, ["audit", "--cluster", "--kubeconfig", str(kubeconfig), "--format", fmt])
    assert result.exit_code == 1, result.output
    return result.stdout


def test_cluster_audit_as_a_page(apiserver: ApiServer, kubeconfig: Path) -> None:
    page = read(_audit(kubeconfig, "html"))
    report = json.loads(_audit(kubeconfig, "json"))
    # the snapshot's H100 node runs a host toolkit the operator does not harden: jupyter-bob and the batch
    # report pod (ml-notebooks) get every GPU there (GG101, high)
    bob = [f for f in report["findings"] if f["resource"] and f["resource"]["name"] == "jupyter-bob"]
    assert bob and bob[0]["node"] == H100
    cell = page.cells[(H100, "ml-notebooks")]
    on_cell = [f for f in report["findings"] if f["node"] == H100 and f["resource"]["namespace"] == "ml-notebooks"]
    assert cell["data-count"] == str(len(on_cell)) and cell["data-severity"] == "high"
    assert page.title.startswith("gpuguard: live cluster gpu-prod")
    assert "script" not in page.tags
