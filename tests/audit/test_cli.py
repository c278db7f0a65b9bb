"""``gpuguard rules`` and the audit options that shape rules: --config."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from gpuguard.cli.main import cli
from gpuguard.rules import RULES
from tests.audit.helpers import EXAMPLES, audit_json


def rules(*args: str) -> str:
    result = CliRunner().invoke(cli, ["rules", *args])
    assert result.exit_code == 0, result.output
    return result.stdout


def test_rules_table_lists_every_rule() -> None:
    out = rules()
    assert out.splitlines()[0].split()[:3] == ["ID", "SEVERITY", "SCOPE"]
    assert [line.split()[0] for line in out.splitlines()[1:]] == sorted(RULES)


def test_rules_json_and_markdown() -> None:
    doc = json.loads(rules("--format", "json"))
    assert [r["id"] for r in doc] == sorted(RULES)
    assert all(r["title"] and r["severity"] and r["remediation"] for r in doc)
    markdown = rules("--format", "markdown")
    assert all(f"## {rule_id}: " in markdown for rule_id in RULES)


def test_config_trusted_namespaces_and_extra_gpu_images(tmp_path: Path) -> None:
    config = tmp_path / "gpuguard.yaml"
    config.write_text("rules:\n  trustedNamespaces: [tenant-acme]\n  extraGpuImages: ['ghcr.io/example/ranking-*']\n")
    tenant = str(EXAMPLES / "workloads" / "tenant-runtimeclass.yaml")
    code, report, _ = audit_json(tenant)
    assert code == 1
    code, report, _ = audit_json("--config", str(config), tenant)
    assert code == 0, report["findings"]


def test_bad_config_is_a_usage_error(tmp_path: Path) -> None:
    config = tmp_path / "gpuguard.yaml"
    config.write_text("rules:\n  trustedNamespace: [x]\n")
    result = CliRunner().invoke(cli, ["audit", "--config", str(config), str(EXAMPLES / "workloads" / "safe")])
    assert result.exit_code == 2
    assert "trustedNamespace" in result.stderr
