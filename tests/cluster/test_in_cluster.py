"""``gpuguard audit --cluster`` inside a pod: the service account's token and CA, no kubeconfig.

The kubelet gives a pod ``KUBERNETES_SERVICE_HOST``/``_PORT`` and mounts ``token`` and ``ca.crt``;
here they point at the API server stand-in, and ``GPUGUARD_SERVICE_ACCOUNT_DIR`` names the
directory (as a pod with a projected token at a custom path would).
"""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from click.testing import CliRunner

from gpuguard.cli.main import cli
from tests.cluster.apiserver import TOKEN, ApiServer


@pytest.fixture
def in_pod(apiserver: ApiServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    account = tmp_path / "serviceaccount"
    account.mkdir()
    (account / "token").write_text(TOKEN)
    (account / "ca.crt").write_bytes(apiserver.ca_pem)
    url = urlsplit(apiserver.url)
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", url.hostname or "")
    monkeypatch.setenv("KUBERNETES_SERVICE_PORT", str(url.port))
    monkeypatch.setenv("GPUGUARD_SERVICE_ACCOUNT_DIR", str(account))
    monkeypatch.delenv("KUBECONFIG", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))  # no ~/.kube/config
    return account


def test_service_account_reaches_the_api_and_judges_pods(in_pod: Path, apiserver: ApiServer) -> None:
    result = CliRunner().invoke(cli, ["audit", "--cluster", "--format", "json"])
    assert result.exit_code == 1, result.output  # the snapshot's exposed notebooks
    report = json.loads(result.stdout)
    assert report["profile"]["source"].startswith("live cluster in-cluster: 3 GPU nodes")
    exposed = {f["resource"]["name"] for f in report["findings"] if f["rule_id"] == "GG101"}
    assert {"jupyter-bob", "jupyter-carol"} <= exposed
    assert TOKEN not in result.output and TOKEN not in result.stderr
    assert apiserver.requests  # it really asked the stand-in


def test_unreadable_token_is_one_usage_error(in_pod: Path) -> None:
    (in_pod / "token").unlink()
    result = CliRunner().invoke(cli, ["audit", "--cluster", "--format", "json"])
    assert result.exit_code == 2
    assert "in-cluster service account" in result.stderr
    assert "Traceback" not in result.output
