"""Running ``gpuguard audit`` in-process and reading its JSON report."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from click.testing import CliRunner

from gpuguard.cli.main import cli

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples" / "audit"


def audit(*args: str, stdin: bytes | str | None = None) -> tuple[int, str, str]:
    """Exit code, stdout and stderr of ``gpuguard audit ARGS``."""
    result = CliRunner().invoke(cli, ["audit", *args], input=stdin)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.stdout, result.stderr


def audit_json(*args: str, stdin: bytes | str | None = None) -> tuple[int, dict[str, Any], str]:
    code, out, err = audit("--format", "json", *args, stdin=stdin)
    return code, json.loads(out), err


def rules_by_object(report: dict[str, Any]) -> dict[str, set[str]]:
    """``{"Kind/name": {rule ids}}``, node findings under the file name."""
    out: dict[str, set[str]] = {}
    for f in report["findings"]:
        r = f["resource"]
        key = f"{r['kind']}/{r['name']}" if r else Path(f["location"]["path"]).name
        out.setdefault(key, set()).add(f["rule_id"])
    return out


def error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("gpuguard: error:")]
