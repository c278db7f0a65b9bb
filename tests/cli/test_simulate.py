"""`gpuguard simulate` end to end: the contract other tools script against.

Expected answers are typed from the toolkit's documented behaviour
(shared research notes, toolkit_semantics §3 and §6), not computed here.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from gpuguard.cli.main import cli

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples" / "simulate"
UNPRIVILEGED = ["CAP_CHOWN", "CAP_KILL", "CAP_SETUID", "CAP_SETGID", "CAP_NET_BIND_SERVICE"]


def run(*args: str, stdin: str | None = None) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, ["simulate", *args], input=stdin)
    return result.exit_code, result.stdout, result.stderr


def simulate_json(doc: dict) -> dict:
    code, out, err = run("--format", "json", "-", stdin=json.dumps(doc))
    assert code == 0, err
    return json.loads(out)


@pytest.mark.parametrize(
    ("example", "devices", "mode"),
    [
        ("seed-default.yaml", "all", "legacy"),
        ("seed-key-under-table.yaml", "all", "legacy"),
        ("seed-fixed.yaml", None, "legacy"),
        ("seed-volume-mounts.yaml", ["GPU-1"], "legacy"),
    ],
)
def test_seed_scenarios(example: str, devices: object, mode: str) -> None:
    code, out, err = run("--format", "json", str(EXAMPLES / example))
    assert code == 0, err
    result = json.loads(out)
    assert result["devices"] == devices
    assert result["mode"] == mode
    assert result["error"] is None
    assert result["cdi_devices"] is None
    assert result["trail"], "every decision explains itself"


def test_key_under_table_is_named_in_the_trail() -> None:
    _code, out, _ = run("--format", "json", str(EXAMPLES / "seed-key-under-table.yaml"))
    trail = json.loads(out)["trail"]
    ignored = [s for s in trail if s["rule"] == "config.ignored-key"]
    assert ignored and "nvidia-ctk" in ignored[0]["read"]


def test_newest_toolkit_defaults_to_jit_cdi() -> None:
    result = simulate_json({"container": {"process": {
        "env": ["NVIDIA_VISIBLE_DEVICES=all"], "capabilities": {"bounding": UNPRIVILEGED}}}})
    assert result["devices"] == "all"
    assert result["mode"] == "jit-cdi"
    assert result["cdi_devices"] == ["runtime.nvidia.com/gpu=all"]


def test_contract_keys() -> None:
    result = simulate_json({"toolkit": {"version": "1.17.8"}, "container": {}})
    for key in ("devices", "mode", "cdi_devices", "error", "imex_channels", "trail"):
        assert key in result
    assert result["devices"] is None
    assert result["imex_channels"] is None


def test_text_format_is_the_default() -> None:
    code, out, _ = run(str(EXAMPLES / "seed-default.yaml"))
    assert code == 0
    assert "all GPUs" in out
    assert "why:" in out


@pytest.mark.parametrize(
    ("doc", "field"),
    [
        ("toolkit: {version: banana}\ncontainer: {}\n", "toolkit.version"),
        ("toolkit: {version: '9.9.9'}\ncontainer: {}\n", "toolkit.version"),
        ("toolkit: {version: 1.17}\ncontainer: {}\n", "toolkit.version"),
        ("toolkit: {config: 'accept-nvidia-visible-devices-envvar-when-unprivileged = '}\ncontainer: {}\n",
         "toolkit.config"),
        ("toolkit: {config: 'accept-nvidia-visible-devices-envvar-when-unprivileged = \"false\"'}\ncontainer: {}\n",
         "toolkit.config"),
        ("toolkit: {platform: {tegra: yes please}}\ncontainer: {}\n", "toolkit.platform.tegra"),
        ("container: {process: {env: [1]}}\n", "container.process.env[0]"),
        ("container: {process: {env: NVIDIA_VISIBLE_DEVICES=all}}\n", "container.process.env"),
        ("container: {mounts: [{source: /dev/null}]}\n", "container.mounts[0].destination"),
        ("container: {annotations: {a: 1}}\n", "container.annotations.a"),
        ("toolkit: {}\n", "container"),
        ("component: kubelet\ncontainer: {}\n", "component"),
        ("contianer: {}\n", "contianer"),
        ("- just\n- a list\n", "expected a mapping"),
        ("container: {process: [\n", "line"),
    ],
)
def test_bad_input_is_one_line_naming_the_field(doc: str, field: str) -> None:
    code, out, err = run("-", stdin=doc)
    assert code == 2
    assert out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert field in lines[0]
    assert "Traceback" not in err


def test_env_entry_without_equals_fails_the_container_not_the_tool() -> None:
    result = simulate_json({"container": {"process": {"env": ["NVIDIA_VISIBLE_DEVICES"]}}})
    assert result["error"] is not None
    assert "NVIDIA_VISIBLE_DEVICES" in result["error"]


def test_batch_answers_line_for_line(tmp_path: Path) -> None:
    lines = [
        json.dumps({"toolkit": {"version": "1.17.8"}, "container": {"process": {
            "env": ["NVIDIA_VISIBLE_DEVICES=all"], "capabilities": {"bounding": UNPRIVILEGED}}}}),
        "{not json",
        json.dumps({"toolkit": {"version": "1.17.8", "config":
                                "accept-nvidia-visible-devices-envvar-when-unprivileged = false\n"},
                    "container": {"process": {"env": ["NVIDIA_VISIBLE_DEVICES=all"]}}}),
        json.dumps({"container": {"process": {"env": [7]}}}),
        json.dumps({"toolkit": {"version": "1.17.8"}, "container": {"process": {
            "env": ["NVIDIA_VISIBLE_DEVICES=void"]}}}),
    ]
    batch = tmp_path / "questions.jsonl"
    batch.write_text("\n".join(lines) + "\n")
    code, out, err = run("--batch", str(batch))
    assert code == 0, err
    results = [json.loads(line) for line in out.splitlines()]
    assert len(results) == 5
    assert results[0]["devices"] == "all"
    assert "line 2" in results[1]["error_input"]
    assert results[2]["devices"] is None
    assert "line 4" in results[3]["error_input"] and "container.process.env[0]" in results[3]["error_input"]
    assert results[4]["devices"] is None


def test_console_script_and_module_entry_point() -> None:
    seed = str(EXAMPLES / "seed-default.yaml")
    for argv in ([str(Path(sys.executable).parent / "gpuguard")], [sys.executable, "-m", "gpuguard"]):
        proc = subprocess.run([*argv, "simulate", "--format", "json", seed],
                              capture_output=True, text=True, check=False)
        assert proc.returncode == 0, proc.stderr
        assert json.loads(proc.stdout)["devices"] == "all"
