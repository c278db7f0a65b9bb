"""`gpuguard fix` end to end: audit, plan, print; --write applies the edits atomically and re-audits."""

from __future__ import annotations

import json
import os
from pathlib import Path

from click.testing import CliRunner

from gpuguard.cli.main import cli

NOTEBOOK = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: notebook
  namespace: research
spec:
  template:
    spec:
      containers:
      - name: lab  # notebook
        image: nvcr.io/nvidia/pytorch:24.05-py3
"""

NOTEBOOK_FIXED = (
    NOTEBOOK
    + """\
        env:
        - name: NVIDIA_VISIBLE_DEVICES
          value: void
"""
)

MISPLACED = '[nvidia-ctk]\npath = "nvidia-ctk"\naccept-nvidia-visible-devices-envvar-when-unprivileged = false\n'


def run(*args: str, stdin: str | None = None) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, ["fix", *args], input=stdin)
    return result.exit_code, result.stdout, result.stderr


def test_prints_the_plan_and_changes_nothing(tmp_path: Path) -> None:
    app = tmp_path / "app.yaml"
    app.write_text(NOTEBOOK)
    code, out, err = run(str(app))
    assert code == 0, err
    assert "+        - name: NVIDIA_VISIBLE_DEVICES\n+          value: void\n" in out
    assert app.read_text() == NOTEBOOK
    assert "1 file edits proposed" in err


def test_write_applies_atomically_and_the_findings_are_gone(tmp_path: Path) -> None:
    app = tmp_path / "app.yaml"
    app.write_text(NOTEBOOK)
    os.chmod(app, 0o640)
    toml = tmp_path / "config.toml"
    toml.write_text(MISPLACED)
    docker = tmp_path / "Dockerfile"
    docker.write_text("FROM nvcr.io/nvidia/cuda:12.4.1-base-ubuntu22.04\nCMD x\n")
    code, _, err = run("--write", str(tmp_path))
    assert code == 0, err
    assert app.read_text() == NOTEBOOK_FIXED
    assert os.stat(app).st_mode & 0o777 == 0o640
    assert toml.read_text().startswith("accept-nvidia-visible-devices-envvar-when-unprivileged = false\n")
    cuda = "FROM nvcr.io/nvidia/cuda:12.4.1-base-ubuntu22.04\n"
    assert docker.read_text() == cuda + "ENV NVIDIA_VISIBLE_DEVICES=void\nCMD x\n"
    assert "still found" not in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["Dockerfile", "app.yaml", "config.toml"]  # no temp files
    # idempotent: a second run proposes no file edit
    code, out, err = run("--format", "json", str(tmp_path))
    assert code == 0, err
    assert json.loads(out)["edits"] == []


def test_json_plan_for_operator_flag(tmp_path: Path) -> None:
    app = tmp_path / "app.yaml"  # CDI default: only runtimeClassName nvidia still reaches the toolkit
    app.write_text(NOTEBOOK.replace("    spec:\n", "    spec:\n      runtimeClassName: nvidia\n"))
    code, out, err = run("--format", "json", "--operator-version", "26.7.0", str(app))
    assert code == 0, err
    data = json.loads(out)
    assert data["schema"] == "gpuguard.fix/v1"
    assert [e["path"] for e in data["edits"]] == [str(app)]
    commands = "\n".join(c for block in data["commands"] for c in block["commands"])
    assert "ACCEPT_NVIDIA_VISIBLE_DEVICES_AS_VOLUME_MOUNTS" not in commands  # CDI default: never volume-mounts
    assert "helm get values" in commands


def test_stdin_plan_and_kustomize_but_no_write() -> None:
    code, out, err = run("--kustomize", "-", stdin=NOTEBOOK)
    assert code == 0, err
    assert "# kustomize patch for Deployment research/notebook" in out
    code, _, err = run("--write", "-", stdin=NOTEBOOK)
    assert code == 2
    assert "standard input cannot be written" in err
