"""``gpuguard policy export`` and what every export states about itself."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from gpuguard.cli.main import cli
from gpuguard.model.admission import AdmissionConfig
from gpuguard.policy.common import ANNOTATION
from gpuguard.policy.export import ENGINES, export, objects

POLICY_KINDS = {
    "ClusterPolicy",
    "ConstraintTemplate",
    "GpuguardPodDevices",
    "ValidatingAdmissionPolicy",
    "MutatingAdmissionPolicy",
}
# What each engine's policy objects cannot express under the defaults.
UNEXPRESSED = {
    "kyverno": {"gpuguard-enforce": "GG101,GG108", "gpuguard-warn": "GG101,GG108",
                "gpuguard-void": "GG102,GG103,GG104,GG105,GG106,GG107,GG108"},
    "gatekeeper": {"gpuguardpoddevices": "GG101,GG108", "gpuguard-enforce": "GG101,GG108",
                   "gpuguard-warn": "GG101,GG108"},
    "vap": {"gpuguard-enforce": "GG101,GG108", "gpuguard-warn": "GG101,GG108"},
    "map": {"gpuguard-void": "GG102,GG103,GG104,GG105,GG106,GG107,GG108"},
}  # fmt: skip


@pytest.mark.parametrize("engine", ENGINES)
def test_every_policy_object_lists_what_it_cannot_express(engine: str) -> None:
    docs = [d for d in objects(engine, AdmissionConfig()) if d["kind"] in POLICY_KINDS]
    got = {d["metadata"]["name"]: d["metadata"]["annotations"][ANNOTATION] for d in docs}
    assert got == UNEXPRESSED[engine]
    for d in docs:
        if ANNOTATION in d["metadata"]["annotations"] and "GG102" not in d["metadata"]["annotations"][ANNOTATION]:
            note = d["metadata"]["annotations"]["gpuguard.io/note"]
            assert "never image env" in note  # GG102 is only the pod's own env or privileged


def test_gg108_is_not_claimed_when_it_is_off() -> None:
    config = AdmissionConfig(modes={**AdmissionConfig().modes, "GG108": "off"})
    vap = objects("vap", config)[0]
    assert vap["metadata"]["annotations"][ANNOTATION] == "GG101"


@pytest.mark.parametrize("engine", ENGINES)
def test_cli_prints_multi_document_yaml(engine: str) -> None:
    result = CliRunner().invoke(cli, ["policy", "export", "--engine", engine])
    assert result.exit_code == 0, result.output
    assert result.output == export(engine)
    docs = list(yaml.safe_load_all(result.output))
    assert docs == objects(engine, AdmissionConfig())


def test_cli_reads_the_webhook_config(tmp_path: Path) -> None:
    config = tmp_path / "gpuguard.yaml"
    config.write_text('modes: {GG104: enforce, GG103: "off"}\ntrustedNamespaces: [gpu-operator, ops]\n')
    result = CliRunner().invoke(cli, ["policy", "export", "--engine", "gatekeeper", "--config", str(config)])
    assert result.exit_code == 0, result.output
    _, constraint, *rest = yaml.safe_load_all(result.output)
    assert rest == [] or all("GG103" not in d["spec"]["parameters"]["rules"] for d in rest)
    assert constraint["spec"]["enforcementAction"] == "deny"
    assert constraint["spec"]["parameters"]["rules"] == ["GG102", "GG104", "GG105", "GG106", "GG107"]
    assert constraint["spec"]["parameters"]["trustedNamespaces"] == ["gpu-operator", "ops"]


def test_cli_bad_config_is_one_line_and_exit_2(tmp_path: Path) -> None:
    config = tmp_path / "bad.yaml"
    config.write_text("modes: {GG103: deny}\n")
    result = CliRunner().invoke(cli, ["policy", "export", "--engine", "vap", "--config", str(config)])
    assert result.exit_code == 2
    assert "modes.GG103" in result.output
    missing = CliRunner().invoke(cli, ["policy", "export", "--engine", "vap", "--config", str(tmp_path / "nope")])
    assert missing.exit_code == 2
    assert "cannot read" in missing.output


def test_unknown_engine() -> None:
    result = CliRunner().invoke(cli, ["policy", "export", "--engine", "opa"])
    assert result.exit_code == 2
    with pytest.raises(ValueError, match="unknown engine"):
        export("opa")
