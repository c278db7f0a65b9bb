"""GG201-GG206 on profiles the real operator model renders; expectations from research §2-§4 and §9."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from gpuguard.engine.operator.profile import explicit_profile
from gpuguard.engine.toolkit.config import config_from_toml
from gpuguard.model.finding import Location, Resource, Severity
from gpuguard.model.node import NodeProfile
from gpuguard.model.version import v
from gpuguard.rules.node import check_node, check_toolkit_config
from tests.rules._build import ACCEPT_FALSE, ACCEPT_MOUNTS, VOLUME_MOUNTS, hardened_legacy, ids, operator_node

NODE_RULES = {"GG201", "GG202", "GG203", "GG205", "GG206"}
SET_AS_DEFAULT = {"name": "NVIDIA_RUNTIME_SET_AS_DEFAULT", "value": "true"}
STALE_ENVVAR = {"name": "DEVICE_LIST_STRATEGY", "value": "envvar"}
RECIPE_A = {"toolkit": {"env": [ACCEPT_FALSE, ACCEPT_MOUNTS]}, "devicePlugin": {"env": [VOLUME_MOUNTS]}}
POLICY = Resource("nvidia.com/v1", "ClusterPolicy", None, "cluster-policy")

Row = tuple[str, Callable[[], NodeProfile], set[str]]
ROWS: list[Row] = [
    # Row A: <= 25.3 defaults, unsafe by default
    ("25.3.4 defaults", lambda: operator_node("25.3.4"), {"GG201", "GG202", "GG206"}),
    ("22.9.2 defaults", lambda: operator_node("22.9.2"), {"GG201", "GG202", "GG206"}),
    ("25.3.4 cri-o hook mode", lambda: operator_node("25.3.4", runtime="cri-o"), {"GG201", "GG202", "GG206"}),
    # Row A hardened: only the default runtime remains (recipe A keeps it)
    ("25.3.4 recipe A", hardened_legacy, {"GG206"}),
    # Row D: >= 25.10 defaults, unsafe via runtime classes only
    ("26.7.0 defaults", lambda: operator_node("26.7.0"), {"GG201"}),
    ("26.7.0 ACCEPT=false", lambda: operator_node("26.7.0", {"toolkit": {"env": [ACCEPT_FALSE]}}), set()),
    # Row D': the default runtime re-enabled by the user
    ("26.7.0 NVIDIA_RUNTIME_SET_AS_DEFAULT=true",
     lambda: operator_node("26.7.0", {"toolkit": {"env": [SET_AS_DEFAULT]}}), {"GG201", "GG206"}),
    # Row E: NRI plugin mode: no NVIDIA runtime at all
    ("26.7.0 NRI", lambda: operator_node("26.7.0", {"cdi": {"enabled": True, "nriPluginEnabled": True}}), set()),
    # GG203: hardening that breaks GPU pods
    ("25.3.4 volume-mounts without accept-mounts",
     lambda: operator_node("25.3.4", {"devicePlugin": {"env": [VOLUME_MOUNTS]}}), {"GG201", "GG203", "GG206"}),
    ("25.10.1 old recipe A in cdi mode (#1876)",
     lambda: operator_node("25.10.1", {"toolkit": {"env": [ACCEPT_FALSE, ACCEPT_MOUNTS]},
                                       "devicePlugin": {"env": [VOLUME_MOUNTS]}}), {"GG203"}),
    ("25.3.4 ACCEPT=false, envvar only", lambda: operator_node("25.3.4", {"toolkit": {"env": [ACCEPT_FALSE]}}),
     {"GG202", "GG203", "GG206"}),
    ("26.7.0 stale envvar strategy (toolkit#1895)",
     lambda: operator_node("26.7.0", {"devicePlugin": {"env": [{"name": "DEVICE_LIST_STRATEGY", "value": "envvar"}]}}),
     {"GG201", "GG202"}),
    # GG205: 23.3.0-25.3.2 with CDI on overwrite the user's strategy
    ("25.3.2 CDI on overwrites volume-mounts",
     lambda: operator_node("25.3.2", {"cdi": {"enabled": True}, "toolkit": {"env": [ACCEPT_FALSE, ACCEPT_MOUNTS]},
                                      "devicePlugin": {"env": [VOLUME_MOUNTS]}}), {"GG202", "GG205", "GG206"}),
    ("25.3.3 CDI on keeps volume-mounts (user env wins)",
     lambda: operator_node("25.3.3", {"cdi": {"enabled": True}, "toolkit": {"env": [ACCEPT_FALSE, ACCEPT_MOUNTS]},
                                      "devicePlugin": {"env": [VOLUME_MOUNTS]}}), {"GG206"}),
    ("25.3.2 CDI on, chart's own envvar", lambda: operator_node("25.3.2", helm_values={"cdi": {"enabled": True}}),
     {"GG201", "GG202", "GG206"}),
    # Row F: host-installed toolkit, defaults assumed
    ("25.3.4 toolkit.enabled=false", lambda: operator_node("25.3.4", {"toolkit": {"enabled": False}}),
     {"GG201", "GG202", "GG206"}),
]  # fmt: skip


@pytest.mark.parametrize(("case", "make_node", "expected"), ROWS, ids=[r[0] for r in ROWS])
def test_node_rules(case: str, make_node: Callable[[], NodeProfile], expected: set[str]) -> None:
    findings = check_node(make_node(), resource=POLICY, location=Location("policy.yaml", 1))
    assert ids(findings) == expected, [f.message for f in findings]
    assert all(f.resource == POLICY and f.location == Location("policy.yaml", 1) for f in findings)
    assert all(f.trail and f.remediation for f in findings)


def _one(node: NodeProfile, rule_id: str) -> str:
    found = check_node(node, resource=None, location=Location("--operator-version"))
    (finding,) = [f for f in found if f.rule_id == rule_id]
    assert finding.resource is None and finding.location == Location("--operator-version")
    return finding.message + " || " + finding.remediation


def test_gg201_remediation_by_mode() -> None:
    legacy = _one(operator_node("25.3.4"), "GG201")
    assert 'ACCEPT_NVIDIA_VISIBLE_DEVICES_AS_VOLUME_MOUNTS="true"' in legacy
    assert "DEVICE_LIST_STRATEGY=volume-mounts" in legacy
    cdi = _one(operator_node("26.7.0"), "GG201")
    assert 'ACCEPT_NVIDIA_VISIBLE_DEVICES_AS_VOLUME_MOUNTS="true"' not in cdi
    assert "only" in cdi and "unresolvable CDI devices" in cdi and "ValidatingAdmissionPolicy" in cdi
    assert "selects an NVIDIA runtime class" in cdi
    overwrite = _one(operator_node("25.3.2", {"cdi": {"enabled": True}}), "GG201")
    assert "overwrites devicePlugin.env DEVICE_LIST_STRATEGY" in overwrite and "25.3.3" in overwrite
    mode_c = _one(operator_node("25.3.2", {"cdi": {"enabled": True, "default": True}}), "GG201")
    assert 'ACCEPT_NVIDIA_VISIBLE_DEVICES_AS_VOLUME_MOUNTS="true"' not in mode_c
    host = _one(operator_node("25.3.4", {"toolkit": {"enabled": False}}), "GG201")
    assert "assumed" in host and "/etc/nvidia-container-runtime/config.toml" in host


def test_gg201_without_operator_speaks_config_toml() -> None:
    node = explicit_profile("1.17.8", device_plugin_version="0.17.4")
    text = _one(node, "GG201")
    assert "accept-nvidia-visible-devices-envvar-when-unprivileged = false" in text and "toolkit.env" not in text


def test_gg202_on_cdi_default_says_remove_the_strategy() -> None:
    text = _one(operator_node("26.7.0", {"devicePlugin": {"env": [STALE_ENVVAR]}}), "GG202")
    assert "Remove DEVICE_LIST_STRATEGY" in text


def test_gg203_names_the_case() -> None:
    assert "cdi mode" in _one(
        operator_node("25.10.1", RECIPE_A),
        "GG203",
    )
    assert "ignores the mounts" in _one(operator_node("25.3.4", {"devicePlugin": {"env": [VOLUME_MOUNTS]}}), "GG203")
    assert "only passes the env var" in _one(operator_node("25.3.4", {"toolkit": {"env": [ACCEPT_FALSE]}}), "GG203")


def test_gg205_names_the_dropped_value_and_where() -> None:
    node = operator_node("25.3.2", {"cdi": {"enabled": True}, "devicePlugin": {"env": [VOLUME_MOUNTS]}})
    text = _one(node, "GG205")
    assert "DEVICE_LIST_STRATEGY=volume-mounts" in text and "clusterPolicy.spec.devicePlugin.env[0]" in text
    assert "envvar,cdi-annotations" in text


@pytest.mark.parametrize(
    ("make_node", "severity"),
    [
        (lambda: operator_node("25.3.4"), Severity.MEDIUM),  # env accepted: an image's "all" is enough
        (hardened_legacy, Severity.LOW),  # env refused from unprivileged containers: only privileged ones remain
    ],
)
def test_gg206_severity_follows_the_env_gate(make_node: Callable[[], NodeProfile], severity: Severity) -> None:
    (finding,) = [f for f in check_node(make_node(), resource=None, location=None) if f.rule_id == "GG206"]
    assert finding.severity is severity


def test_gg206_on_cdi_default_says_remove_the_override() -> None:
    node = operator_node("26.7.0", {"toolkit": {"env": [SET_AS_DEFAULT]}})
    assert "Remove NVIDIA_RUNTIME_SET_AS_DEFAULT=true" in _one(node, "GG206")
    assert "hook" in _one(operator_node("25.3.4", runtime="cri-o"), "GG206")


def test_node_findings_quote_the_origin() -> None:
    (gg201,) = [f for f in check_node(operator_node("25.3.4"), resource=None, location=None) if f.rule_id == "GG201"]
    reads = " ".join(s.read for s in gg201.trail)
    assert "operator.version = 25.3.4" in reads
    assert "ACCEPT_NVIDIA_VISIBLE_DEVICES_ENVVAR_WHEN_UNPRIVILEGED not set" in reads


# --- GG204 --------------------------------------------------------------------------------------------

UNDER_TABLE = """
disable-require = false
[nvidia-ctk]
path = "nvidia-ctk"
accept-nvidia-visible-devices-envvar-when-unprivileged = false
accept-nvidia-visible-devices-as-volume-mounts = true
"""
AT_TOP = """
accept-nvidia-visible-devices-envvar-when-unprivileged = false
accept-nvidia-visible-devices-as-volume-mounts = true
[nvidia-ctk]
path = "nvidia-ctk"
"""


def _toml(text: str) -> dict[str, object]:
    import tomllib

    return tomllib.loads(text)


def test_gg204_one_finding_per_ignored_key() -> None:
    config = config_from_toml(_toml(UNDER_TABLE), v("1.17.8"))
    findings = check_toolkit_config(config, Location("config.toml"))
    assert [f.rule_id for f in findings] == ["GG204", "GG204"]
    assert all(f.location == Location("config.toml") and f.resource is None for f in findings)
    first = findings[0]
    assert "nvidia-ctk.accept-nvidia-visible-devices-envvar-when-unprivileged = false" in first.message
    assert "top of config.toml" in first.remediation


def test_gg204_safe_twin_keys_at_the_top() -> None:
    assert check_toolkit_config(config_from_toml(_toml(AT_TOP), v("1.17.8")), Location("config.toml")) == []


def test_gg204_findings_in_one_file_have_distinct_fingerprints() -> None:
    """A baseline must be able to keep one misplaced key and still report another."""
    doc = _toml(
        "[nvidia-ctk]\n"
        "accept-nvidia-visible-devices-envvar-when-unprivileged = false\n"
        "accept-nvidia-visible-devices-as-volume-mounts = true\n"
    )
    found = check_toolkit_config(config_from_toml(doc, v("1.17.8")), Location("config.toml"))
    assert len(found) == 2
    assert len({f.fingerprint for f in found}) == 2
