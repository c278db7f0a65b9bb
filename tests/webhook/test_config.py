"""The admission config file: defaults, every key, and errors that name the field."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from gpuguard.admission.config import load_admission_config
from gpuguard.model.admission import DEFAULT_MODES, AdmissionConfig, Exemption
from gpuguard.model.errors import InputError


def test_defaults() -> None:
    assert load_admission_config(None) == AdmissionConfig()
    assert load_admission_config({}) == AdmissionConfig()
    assert load_admission_config({}).modes == DEFAULT_MODES


def test_every_key() -> None:
    config = load_admission_config({
        "modes": {"GG103": "warn", "GG101": "audit"},
        "mutate": False,
        "trustedNamespaces": ["gpu-ops"],
        "runtimeHandlers": ["nvidia"],
        "cdiAnnotationPrefixes": ["cdi.k8s.io/"],
        "denyUnknownEnvRefs": True,
        "exemptions": [{"reason": "dcgm", "namespaces": ["mon"], "serviceAccounts": ["mon/dcgm"],
                        "podLabels": {"app": "dcgm"}, "images": ["nvcr.io/nvidia/k8s/dcgm*"],
                        "namespaceLabels": {"gpu": "yes"}}],
        "maxBodyBytes": 1048576,
        "timeoutSeconds": 5,
        "failurePolicy": "Ignore",
        "resolveImages": False,
    })  # fmt: skip
    assert config.modes["GG103"] == "warn" and config.modes["GG101"] == "audit" and config.modes["GG102"] == "enforce"
    assert not config.mutate and config.deny_unknown_env_refs
    assert config.trusted_namespaces == ("gpu-ops",)
    assert config.exemptions == (
        Exemption(
            "dcgm", ("mon",), (("gpu", "yes"),), ("mon/dcgm",), (("app", "dcgm"),), ("nvcr.io/nvidia/k8s/dcgm*",)
        ),
    )
    assert (config.max_body_bytes, config.timeout_seconds, config.failure_policy) == (1048576, 5.0, "Ignore")


@pytest.mark.parametrize(
    ("doc", "error"),
    [
        ([], "config: expected a mapping, got list"),
        ({"mode": {}}, "mode: unknown key"),
        ({"modes": {"GG103": "sometimes"}}, "modes.GG103: expected one of enforce, warn, audit, off"),
        ({"modes": {"GG999": "warn"}}, "modes.GG999: unknown rule"),
        ({"modes": ["GG103"]}, "modes: expected a mapping"),
        ({"mutate": "yes"}, "mutate: expected true or false, got string"),
        ({"trustedNamespaces": "gpu-operator"}, "trustedNamespaces: expected a list of strings"),
        ({"trustedNamespaces": [""]}, "trustedNamespaces[0]: expected a non-empty string"),
        ({"maxBodyBytes": -1}, "maxBodyBytes: expected an integer"),
        ({"maxBodyBytes": True}, "maxBodyBytes: expected an integer"),
        ({"timeoutSeconds": 60}, "timeoutSeconds: expected a number from 1 to 30"),
        ({"failurePolicy": "fail"}, "failurePolicy: expected one of Fail, Ignore"),
        ({"exemptions": {}}, "exemptions: expected a list"),
        ({"exemptions": [{"namespaces": ["x"]}]}, "exemptions[0].reason: required"),
        ({"exemptions": [{"reason": "r"}]}, "exemptions[0]: an exemption must name"),
        ({"exemptions": [{"reason": "r", "namespace": "x"}]}, "exemptions[0].namespace: unknown key"),
        ({"exemptions": [{"reason": "r", "serviceAccounts": ["dcgm"]}]}, "exemptions[0].serviceAccounts[0]: expected"),
        ({"exemptions": [{"reason": "r", "podLabels": {"a": 1}}]}, "exemptions[0].podLabels.a: expected a string"),
    ],
)
def test_errors_name_the_field(doc: Any, error: str) -> None:
    with pytest.raises(InputError) as exc:
        load_admission_config(doc)
    assert str(exc.value).startswith(error)


def test_a_bare_yaml_off_means_the_off_mode() -> None:
    """YAML 1.1 reads `GG104: off` as false; a user writing it means the mode `off`."""
    config = load_admission_config(yaml.safe_load("modes: {GG104: off}"))
    assert config.mode("GG104") == "off"
    with pytest.raises(InputError, match=r"modes\.GG104"):
        load_admission_config(yaml.safe_load("modes: {GG104: on}"))
