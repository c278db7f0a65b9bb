"""GPU Operator remedies: the decision table row by row, and env lists merged (never replaced).

Expected outputs are typed from gpu_operator.md §4 (matrix, §4.1 snippets) and §9.
"""

from __future__ import annotations

import json
import shlex

import pytest

from gpuguard.fixes import operator as op
from gpuguard.fixes.operator import ProfileFacts, recipe
from gpuguard.model.node import ContainerRuntime, DevicePlugin, NodeProfile, NriPlugin
from gpuguard.model.report import ProfileSummary
from gpuguard.model.toolkit import Toolkit, ToolkitConfig
from gpuguard.model.version import v

UNPRIV = ("ACCEPT_NVIDIA_VISIBLE_DEVICES_ENVVAR_WHEN_UNPRIVILEGED", "false")
MOUNTS = ("ACCEPT_NVIDIA_VISIBLE_DEVICES_AS_VOLUME_MOUNTS", "true")
STRATEGY = ("DEVICE_LIST_STRATEGY", "volume-mounts")

# (operator version, cdi.enabled, cdi.default, nri, toolkit managed) -> mode, toolkit env, plugin env, cdi.enabled set
ROWS = [
    # no operator / host toolkit: config.toml on the nodes
    (None, None, False, False, True, "F", (UNPRIV, MOUNTS), (), None),
    ("25.3.4", False, False, False, False, "F", (UNPRIV, MOUNTS), (), None),
    # before the ACCEPT_* env existed
    ("1.11.1", None, False, False, True, "old", (), (), None),
    # 22.9.x: no spec.cdi at all (even if someone wrote it: the API server prunes it)
    ("22.9.2", None, False, False, True, "A", (UNPRIV, MOUNTS), (STRATEGY,), None),
    ("22.9.2", True, False, False, True, "A", (UNPRIV, MOUNTS), (STRATEGY,), None),
    # 23.3.0 - 25.3.2, CDI off (default): legacy recipe
    ("23.3.0", False, False, False, True, "A", (UNPRIV, MOUNTS), (STRATEGY,), None),
    ("24.9.2", None, False, False, True, "A", (UNPRIV, MOUNTS), (STRATEGY,), None),
    ("25.3.2", False, False, False, True, "A", (UNPRIV, MOUNTS), (STRATEGY,), None),
    # 23.3.0 - 25.3.2, CDI on: the operator overwrites DEVICE_LIST_STRATEGY -> cdi.enabled=false first
    ("23.3.0", True, False, False, True, "B", (UNPRIV, MOUNTS), (STRATEGY,), False),
    ("24.9.2", True, False, False, True, "B", (UNPRIV, MOUNTS), (STRATEGY,), False),
    ("25.3.2", True, False, False, True, "B", (UNPRIV, MOUNTS), (STRATEGY,), False),
    # 23.3.0 - 25.3.x, CDI on and cdi.default=true: cdi mode, only the unprivileged switch
    ("24.9.2", True, True, False, True, "C", (UNPRIV,), (), None),
    ("25.3.4", True, True, False, True, "C", (UNPRIV,), (), None),
    # 25.3.3 - 25.3.x: user env wins; CDI on but legacy mode -> the legacy recipe works
    ("25.3.3", True, False, False, True, "A", (UNPRIV, MOUNTS), (STRATEGY,), None),
    ("25.3.4", False, False, False, True, "A", (UNPRIV, MOUNTS), (STRATEGY,), None),
    # >= 25.10: CDI default (nil -> true); no volume-mounts
    ("25.10.0", None, False, False, True, "D", (UNPRIV,), (), None),
    ("25.10.1", True, True, False, True, "D", (UNPRIV,), (), None),
    ("26.7.0", True, False, False, True, "D", (UNPRIV,), (), None),
    # >= 25.10 with CDI turned off (upgrades keep cdi.enabled=false): legacy recipe
    ("25.10.0", False, False, False, True, "A", (UNPRIV, MOUNTS), (STRATEGY,), None),
    ("26.7.0", False, False, True, True, "A", (UNPRIV, MOUNTS), (STRATEGY,), None),
    # NRI plugin (>= 26.3 with CDI): annotations are the path; no env at all
    ("26.3.0", True, False, True, True, "E", (), (), None),
    ("26.7.0", None, False, True, True, "E", (), (), None),
    # NRI asked for on a release without the field: plain CDI-default recipe
    ("25.10.1", True, False, True, True, "D", (UNPRIV,), (), None),
]


@pytest.mark.parametrize("row", ROWS, ids=[f"{r[0]}-cdi={r[1]}-default={r[2]}-nri={r[3]}-managed={r[4]}" for r in ROWS])
def test_recipe_rows(row: tuple) -> None:
    version, cdi, cdi_default, nri, managed, mode, toolkit_env, plugin_env, set_cdi = row
    facts = ProfileFacts(v(version) if version else None, cdi, cdi_default, nri, managed)
    rec = recipe(facts)
    assert rec.mode == mode
    assert rec.toolkit_env == toolkit_env
    assert rec.device_plugin_env == plugin_env
    assert rec.set_cdi_enabled is set_cdi
    if mode in ("C", "D", "E"):  # CDI default: never recommend volume-mounts there
        assert STRATEGY not in rec.device_plugin_env and MOUNTS not in rec.toolkit_env
    if mode == "D":
        assert any("runtimeClassName" in p for p in rec.policies)
    if mode == "E":
        assert any("nvidia.cdi.k8s.io/" in p for p in rec.policies)


def test_every_combination_has_a_row() -> None:
    versions = [None, "1.11.1", "22.9.0", "23.3.0", "23.9.2", "24.9.2", "25.3.2", "25.3.3", "25.10.0", "26.3.0"]
    versions.append("26.7.0")
    for version in versions:
        for cdi in (None, True, False):
            for default in (True, False):
                for nri in (True, False):
                    for managed in (True, False):
                        recipe(ProfileFacts(v(version) if version else None, cdi, default, nri, managed))


K3S_TOOLKIT = [
    {"name": "CONTAINERD_CONFIG", "value": "/var/lib/rancher/k3s/agent/etc/containerd/config.toml.tmpl"},
    {"name": "CONTAINERD_SOCKET", "value": "/run/k3s/containerd/containerd.sock"},
    {"name": "RUNTIME_CONFIG_SOURCE", "value": "command,file"},
]
A = recipe(ProfileFacts(v("25.3.4"), cdi_enabled=False))
B = recipe(ProfileFacts(v("24.9.2"), cdi_enabled=True))
D = recipe(ProfileFacts(v("26.7.0")))


def test_helm_args_restate_existing_entries_then_append() -> None:
    assert op.helm_args(A, K3S_TOOLKIT, [], quote=False) == [
        "--set-string", "toolkit.env[0].name=CONTAINERD_CONFIG",
        "--set-string", "toolkit.env[0].value=/var/lib/rancher/k3s/agent/etc/containerd/config.toml.tmpl",
        "--set-string", "toolkit.env[1].name=CONTAINERD_SOCKET",
        "--set-string", "toolkit.env[1].value=/run/k3s/containerd/containerd.sock",
        "--set-string", "toolkit.env[2].name=RUNTIME_CONFIG_SOURCE",
        "--set-string", "toolkit.env[2].value=command\\,file",
        "--set-string", "toolkit.env[3].name=ACCEPT_NVIDIA_VISIBLE_DEVICES_ENVVAR_WHEN_UNPRIVILEGED",
        "--set-string", "toolkit.env[3].value=false",
        "--set-string", "toolkit.env[4].name=ACCEPT_NVIDIA_VISIBLE_DEVICES_AS_VOLUME_MOUNTS",
        "--set-string", "toolkit.env[4].value=true",
        "--set-string", "devicePlugin.env[0].name=DEVICE_LIST_STRATEGY",
        "--set-string", "devicePlugin.env[0].value=volume-mounts",
    ]  # fmt: skip


def test_helm_args_quoted_for_shells_and_cdi_switch() -> None:
    args = op.helm_args(B, [{"name": "ACCEPT_NVIDIA_VISIBLE_DEVICES_ENVVAR_WHEN_UNPRIVILEGED", "value": "true"}], None)
    assert args == [
        "--set", "cdi.enabled=false",
        "--set-string", "'toolkit.env[0].name=ACCEPT_NVIDIA_VISIBLE_DEVICES_ENVVAR_WHEN_UNPRIVILEGED'",
        "--set-string", "'toolkit.env[0].value=false'",
        "--set-string", "'toolkit.env[1].name=ACCEPT_NVIDIA_VISIBLE_DEVICES_AS_VOLUME_MOUNTS'",
        "--set-string", "'toolkit.env[1].value=true'",
        "--set-string", "'devicePlugin.env[0].name=DEVICE_LIST_STRATEGY'",
        "--set-string", "'devicePlugin.env[0].value=volume-mounts'",
    ]  # fmt: skip
    # what a shell hands helm is the unquoted form
    assert shlex.split(" ".join(args)) == op.helm_args(B, [{"name": UNPRIV[0], "value": "true"}], None, quote=False)


def test_helm_args_cdi_default_drops_strategy_and_empties_list() -> None:
    args = op.helm_args(D, None, [{"name": "DEVICE_LIST_STRATEGY", "value": "volume-mounts"}], quote=False)
    assert args == [
        "--set-string", "toolkit.env[0].name=ACCEPT_NVIDIA_VISIBLE_DEVICES_ENVVAR_WHEN_UNPRIVILEGED",
        "--set-string", "toolkit.env[0].value=false",
        "--set", "devicePlugin.env={}",
    ]  # fmt: skip


def test_helm_args_nothing_to_change() -> None:
    done = [{"name": UNPRIV[0], "value": "false"}]
    assert op.helm_args(D, done, None) == []


def test_values_overlay_full_merged_lists() -> None:
    current = [*K3S_TOOLKIT[:2], {"name": UNPRIV[0], "value": "true"}]
    assert (
        op.values_overlay(A, current, [{"name": "MIG_STRATEGY", "value": "single"}])
        == """\
toolkit:
  env:
  - name: CONTAINERD_CONFIG
    value: "/var/lib/rancher/k3s/agent/etc/containerd/config.toml.tmpl"
  - name: CONTAINERD_SOCKET
    value: "/run/k3s/containerd/containerd.sock"
  - name: ACCEPT_NVIDIA_VISIBLE_DEVICES_ENVVAR_WHEN_UNPRIVILEGED
    value: "false"
  - name: ACCEPT_NVIDIA_VISIBLE_DEVICES_AS_VOLUME_MOUNTS
    value: "true"
devicePlugin:
  env:
  - name: MIG_STRATEGY
    value: "single"
  - name: DEVICE_LIST_STRATEGY
    value: "volume-mounts"
"""
    )


def test_values_overlay_cdi_off_first() -> None:
    assert op.values_overlay(B, [], []).startswith("cdi:\n  enabled: false\ntoolkit:\n  env:\n")


def test_chart_default_device_plugin_env_until_25_3_3() -> None:
    old = op.chart_default_env("devicePlugin", v("25.3.2"))
    assert [e["name"] for e in old] == [
        "PASS_DEVICE_SPECS", "FAIL_ON_INIT_ERROR", "DEVICE_LIST_STRATEGY", "DEVICE_ID_STRATEGY",
        "NVIDIA_VISIBLE_DEVICES", "NVIDIA_DRIVER_CAPABILITIES",
    ]  # fmt: skip
    assert op.chart_default_env("devicePlugin", v("25.3.3")) == []
    assert op.chart_default_env("toolkit", v("24.9.2")) == []
    # merged: the chart's envvar entry is replaced in place, the rest kept
    overlay = op.values_overlay(A, [], old)
    assert '  - name: DEVICE_LIST_STRATEGY\n    value: "volume-mounts"\n  - name: DEVICE_ID_STRATEGY' in overlay
    assert "PASS_DEVICE_SPECS" in overlay and "envvar" not in overlay


def _ops(text: str) -> list[dict]:
    return json.loads(text)


def test_clusterpolicy_patch_absent_list_created_first() -> None:
    assert _ops(op.clusterpolicy_patch(D, None, None)) == [
        {"op": "add", "path": "/spec/toolkit/env", "value": []},
        {"op": "add", "path": "/spec/toolkit/env/-",
         "value": {"name": "ACCEPT_NVIDIA_VISIBLE_DEVICES_ENVVAR_WHEN_UNPRIVILEGED", "value": "false"}},
    ]  # fmt: skip


def test_clusterpolicy_patch_appends_and_replaces_existing_name_by_index() -> None:
    current = [*K3S_TOOLKIT, {"name": UNPRIV[0], "value": "true"}]
    ops = _ops(op.clusterpolicy_patch(A, current, []))
    assert ops == [
        {"op": "test", "path": "/spec/toolkit/env/3/name", "value": UNPRIV[0]},
        {"op": "replace", "path": "/spec/toolkit/env/3/value", "value": "false"},
        {"op": "add", "path": "/spec/toolkit/env/-", "value": {"name": MOUNTS[0], "value": "true"}},
        {"op": "add", "path": "/spec/devicePlugin/env/-", "value": {"name": "DEVICE_LIST_STRATEGY",
                                                                     "value": "volume-mounts"}},
    ]  # fmt: skip
    assert not any(o["path"] == "/spec/toolkit/env" and o["op"] in ("replace", "add") for o in ops)


def test_clusterpolicy_patch_cdi_off_and_removals() -> None:
    assert _ops(op.clusterpolicy_patch(B, [], [], has_cdi=False))[0] == {
        "op": "add",
        "path": "/spec/cdi",
        "value": {"enabled": False},
    }
    assert _ops(op.clusterpolicy_patch(B, [], []))[0] == {"op": "add", "path": "/spec/cdi/enabled", "value": False}
    ops = _ops(
        op.clusterpolicy_patch(
            D,
            [{"name": UNPRIV[0], "value": "false"}],
            [{"name": "MIG_STRATEGY", "value": "single"}, {"name": "DEVICE_LIST_STRATEGY", "value": "envvar"}],
        )
    )
    assert ops == [
        {"op": "test", "path": "/spec/devicePlugin/env/1/name", "value": "DEVICE_LIST_STRATEGY"},
        {"op": "remove", "path": "/spec/devicePlugin/env/1"},
    ]


def test_clusterpolicy_patch_unknown_lists_only_appends() -> None:
    assert _ops(op.clusterpolicy_patch(A, None, None, known=False)) == [
        {"op": "add", "path": "/spec/toolkit/env/-", "value": {"name": UNPRIV[0], "value": "false"}},
        {"op": "add", "path": "/spec/toolkit/env/-", "value": {"name": MOUNTS[0], "value": "true"}},
        {"op": "add", "path": "/spec/devicePlugin/env/-", "value": {"name": "DEVICE_LIST_STRATEGY",
                                                                     "value": "volume-mounts"}},
    ]  # fmt: skip


def test_clusterpolicy_patch_value_from_entry() -> None:
    current = [{"name": UNPRIV[0], "valueFrom": {"configMapKeyRef": {"name": "x", "key": "y"}}}]
    assert _ops(op.clusterpolicy_patch(D, current, None)) == [
        {"op": "test", "path": "/spec/toolkit/env/0/name", "value": UNPRIV[0]},
        {"op": "add", "path": "/spec/toolkit/env/0/value", "value": "false"},
        {"op": "remove", "path": "/spec/toolkit/env/0/valueFrom"},
    ]


def test_kubectl_command_quotes_the_patch() -> None:
    patch = op.clusterpolicy_patch(D, None, None)
    cmd = op.kubectl_patch_command(patch, "gpu-cluster-policy")
    assert cmd.startswith("kubectl patch clusterpolicies.nvidia.com/gpu-cluster-policy --type=json -p '[")
    assert shlex.split(cmd)[-1] == patch


def _profile(origin: dict[str, str], *, version: str | None = "25.3.4", nri: bool = False) -> NodeProfile:
    return NodeProfile(
        toolkit=Toolkit(v("1.17.8"), ToolkitConfig()),
        runtime=ContainerRuntime(),
        device_plugin=DevicePlugin(v("0.17.4")),
        nri=NriPlugin(enabled=nri),
        operator_version=v(version) if version else None,
        origin=origin,
    )


def test_facts_from_profile_origin() -> None:
    facts = op.facts_from_profile(_profile({"cdi.enabled": "true from spec.cdi.enabled", "cdi.default": "true from x"}))
    assert facts == ProfileFacts(v("25.3.4"), True, True, False, True)
    absent = op.facts_from_profile(_profile({"cdi.enabled": "false: absent, and nil means false on operator 24.9.2"}))
    assert absent.cdi_enabled is False
    host = op.facts_from_profile(_profile({"toolkit": "spec.toolkit.enabled=false: the host-installed toolkit"}))
    assert host.toolkit_managed is False
    assert recipe(host).mode == "F"


def test_facts_from_summary() -> None:
    summary = ProfileSummary("--operator-version 26.7.0", "26.7.0", "1.20.0", "0.20.0", settings={})
    assert recipe(op.facts_from_summary(summary)).mode == "D"
    summary = ProfileSummary("x", "v24.9.2", "1.17.4", None, settings={"cdi.enabled": "true"})
    assert recipe(op.facts_from_summary(summary)).mode == "B"
    assert op.facts_from_summary(ProfileSummary("x", None, "1.17.8", None)).operator_version is None
