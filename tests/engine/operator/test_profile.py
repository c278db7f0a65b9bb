"""The node profile an operator release renders, one row per release boundary and rule.

Expected values are typed by hand from the research notes (gpu_operator.md §1.3, §2, §4, §9)
and the operator's controllers/object_controls.go at each tag, never computed here.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from gpuguard.engine.operator.helm import render_helm_values
from gpuguard.engine.operator.profile import (
    explicit_profile,
    most_exposed_profile,
    node_profile,
)
from gpuguard.model.errors import InputError
from gpuguard.model.node import ContainerRuntime, Gpu, NodeProfile, RuntimeHandler
from gpuguard.model.toolkit import ToolkitConfig
from gpuguard.model.version import v

FIXTURES = Path(__file__).parents[2] / "fixtures" / "operator"
NVIDIA_HANDLERS = ("nvidia", "nvidia-cdi", "nvidia-legacy")
ALL_CLASSES = {"nvidia": "nvidia", "nvidia-cdi": "nvidia-cdi", "nvidia-legacy": "nvidia-legacy"}
VOLUME_MOUNTS = {"devicePlugin": {"env": [{"name": "DEVICE_LIST_STRATEGY", "value": "volume-mounts"}]}}


def env(name: str, value: str) -> dict[str, object]:
    return {"name": name, "value": value}


def summary(p: NodeProfile) -> dict[str, object]:
    assert p.device_plugin is not None
    return {
        "toolkit": str(p.toolkit.version),
        "accept": p.toolkit.config.accept_envvar_unprivileged,
        "mode": p.toolkit.config.mode,
        "default": p.runtime.default_handler,
        "handlers": tuple(p.runtime.handlers),
        "strategies": p.device_plugin.list_strategies,
        "prefix": p.device_plugin.cdi_annotation_prefix,
        "classes": dict(p.runtime_classes),
    }


# One row per release boundary: (version, spec, expected summary)
BOUNDARIES = [
    # 22.9: no spec.cdi; toolkit 1.11.0 has nvidia + nvidia-experimental handlers
    (
        "22.9.2",
        {"cdi": {"enabled": True}},
        {
            "toolkit": "1.11.0",
            "accept": True,
            "mode": "auto",
            "default": "nvidia",
            "handlers": ("nvidia", "nvidia-experimental"),
            "strategies": ("envvar",),
            "prefix": "cdi.k8s.io/",
            "classes": {"nvidia": "nvidia"},
        },
    ),
    # 23.3 .. 25.3.2: cdi.enabled=true overwrites the user's volume-mounts; nvidia stays the default
    (
        "23.3.0",
        {"cdi": {"enabled": True}, **VOLUME_MOUNTS},
        {
            "toolkit": "1.13.0",
            "accept": True,
            "mode": "auto",
            "default": "nvidia",
            "handlers": ("nvidia", "nvidia-experimental", "nvidia-cdi", "nvidia-legacy"),
            "strategies": ("envvar", "cdi-annotations"),
            "prefix": "nvidia.cdi.k8s.io/",
            "classes": ALL_CLASSES,
        },
    ),
    (
        "24.9.2",
        {"cdi": {"enabled": True}, **VOLUME_MOUNTS},
        {
            "toolkit": "1.17.4",
            "accept": True,
            "mode": "auto",
            "default": "nvidia",
            "handlers": NVIDIA_HANDLERS,
            "strategies": ("envvar", "cdi-annotations"),
            "prefix": "nvidia.cdi.k8s.io/",
            "classes": ALL_CLASSES,
        },
    ),
    (
        "25.3.2",
        {"cdi": {"enabled": True}, **VOLUME_MOUNTS},
        {
            "toolkit": "1.17.8",
            "accept": True,
            "mode": "auto",
            "default": "nvidia",
            "handlers": NVIDIA_HANDLERS,
            "strategies": ("envvar", "cdi-annotations"),
            "prefix": "nvidia.cdi.k8s.io/",
            "classes": ALL_CLASSES,
        },
    ),
    # 25.3.3: the user's env wins
    (
        "25.3.3",
        {"cdi": {"enabled": True}, **VOLUME_MOUNTS},
        {
            "toolkit": "1.17.8",
            "accept": True,
            "mode": "auto",
            "default": "nvidia",
            "handlers": NVIDIA_HANDLERS,
            "strategies": ("volume-mounts",),
            "prefix": "nvidia.cdi.k8s.io/",
            "classes": ALL_CLASSES,
        },
    ),
    (
        "25.3.4",
        {},
        {
            "toolkit": "1.17.8",
            "accept": True,
            "mode": "auto",
            "default": "nvidia",
            "handlers": NVIDIA_HANDLERS,
            "strategies": ("envvar",),
            "prefix": "cdi.k8s.io/",
            "classes": {"nvidia": "nvidia"},
        },
    ),
    # 25.10: absent cdi.enabled means true; nvidia not default; runtime mode cdi
    (
        "25.10.0",
        {},
        {
            "toolkit": "1.18.0",
            "accept": True,
            "mode": "cdi",
            "default": "runc",
            "handlers": NVIDIA_HANDLERS,
            "strategies": ("cdi-annotations", "cdi-cri"),
            "prefix": "cdi.k8s.io/",
            "classes": ALL_CLASSES,
        },
    ),
    (
        "25.10.1",
        {"cdi": {}},
        {
            "toolkit": "1.18.1",
            "accept": True,
            "mode": "cdi",
            "default": "runc",
            "handlers": NVIDIA_HANDLERS,
            "strategies": ("cdi-annotations", "cdi-cri"),
            "prefix": "cdi.k8s.io/",
            "classes": ALL_CLASSES,
        },
    ),
    # upgraded cluster: cdi.enabled false kept explicitly on 25.10
    (
        "25.10.1",
        {"cdi": {"enabled": False}},
        {
            "toolkit": "1.18.1",
            "accept": True,
            "mode": "auto",
            "default": "nvidia",
            "handlers": NVIDIA_HANDLERS,
            "strategies": ("envvar",),
            "prefix": "cdi.k8s.io/",
            "classes": {"nvidia": "nvidia"},
        },
    ),
    # 25.10 with toolkit.env NVIDIA_RUNTIME_SET_AS_DEFAULT=true: nvidia is the default again (P1)
    (
        "25.10.1",
        {"toolkit": {"env": [env("NVIDIA_RUNTIME_SET_AS_DEFAULT", "true")]}},
        {
            "toolkit": "1.18.1",
            "accept": True,
            "mode": "cdi",
            "default": "nvidia",
            "handlers": NVIDIA_HANDLERS,
            "strategies": ("cdi-annotations", "cdi-cri"),
            "prefix": "cdi.k8s.io/",
            "classes": ALL_CLASSES,
        },
    ),
    # ... but CONTAINERD_SET_AS_DEFAULT=true does not: NVIDIA_RUNTIME_SET_AS_DEFAULT is looked up first
    (
        "25.10.1",
        {"toolkit": {"env": [env("CONTAINERD_SET_AS_DEFAULT", "true")]}},
        {
            "toolkit": "1.18.1",
            "accept": True,
            "mode": "cdi",
            "default": "runc",
            "handlers": NVIDIA_HANDLERS,
            "strategies": ("cdi-annotations", "cdi-cri"),
            "prefix": "cdi.k8s.io/",
            "classes": ALL_CLASSES,
        },
    ),
    # a stale <=25.3.2 values file re-adding envvar on 26.7: the user wins
    (
        "26.7.0",
        {"devicePlugin": {"env": [env("DEVICE_LIST_STRATEGY", "envvar")]}},
        {
            "toolkit": "1.20.0",
            "accept": True,
            "mode": "cdi",
            "default": "runc",
            "handlers": NVIDIA_HANDLERS,
            "strategies": ("envvar",),
            "prefix": "cdi.k8s.io/",
            "classes": ALL_CLASSES,
        },
    ),
    # hardened legacy recipe on 25.3.4
    (
        "25.3.4",
        {
            "toolkit": {
                "env": [
                    env("ACCEPT_NVIDIA_VISIBLE_DEVICES_ENVVAR_WHEN_UNPRIVILEGED", "false"),
                    env("ACCEPT_NVIDIA_VISIBLE_DEVICES_AS_VOLUME_MOUNTS", "true"),
                ]
            },
            **VOLUME_MOUNTS,
        },
        {
            "toolkit": "1.17.8",
            "accept": False,
            "mode": "auto",
            "default": "nvidia",
            "handlers": NVIDIA_HANDLERS,
            "strategies": ("volume-mounts",),
            "prefix": "cdi.k8s.io/",
            "classes": {"nvidia": "nvidia"},
        },
    ),
]


@pytest.mark.parametrize(("version", "spec", "expected"), BOUNDARIES)
def test_release_boundaries(version: str, spec: dict[str, object], expected: dict[str, object]) -> None:
    assert summary(node_profile(v(version), spec)) == expected


def test_cdi_transform_overrides_user_strategy_with_origin() -> None:
    p = node_profile("24.9.2", {"cdi": {"enabled": True}, **VOLUME_MOUNTS})
    assert p.origin["devicePlugin.env.DEVICE_LIST_STRATEGY"] == (
        "envvar,cdi-annotations: forced by operator 24.9.2 because cdi.enabled=true "
        "(overrides clusterPolicy.spec.devicePlugin.env[0]=volume-mounts)"
    )
    assert p.toolkit.config.cdi_annotation_prefixes == ("nvidia.cdi.k8s.io/",)
    assert p.runtime.handlers["nvidia"].container_annotations == ("nvidia.cdi.k8s.io/*",)


def test_user_strategy_wins_from_25_3_3_with_origin() -> None:
    p = node_profile("25.3.3", {"cdi": {"enabled": True}, **VOLUME_MOUNTS})
    assert p.origin["devicePlugin.env.DEVICE_LIST_STRATEGY"] == (
        "volume-mounts: clusterPolicy.spec.devicePlugin.env[0] "
        "(overrides forced by operator 25.3.3 because cdi.enabled=true=envvar,cdi-annotations)"
    )


def test_25_10_default_install() -> None:
    p = node_profile("25.10.1", {})
    assert p.operator_version == v("25.10.1")
    assert p.origin["cdi.enabled"] == "true: absent, and nil means true on operator 25.10.1"
    assert p.origin["toolkit.env.NVIDIA_RUNTIME_SET_AS_DEFAULT"] == (
        "false: forced by operator 25.10.1 because cdi.enabled=true"
    )
    assert p.toolkit.config.cdi_default_kind == "management.nvidia.com/gpu"
    assert p.runtime.enable_cdi is True
    assert all(h.container_annotations == () for h in p.runtime.handlers.values())
    assert [(h.name, h.mode) for h in p.runtime.handlers.values()] == [
        ("nvidia", None),
        ("nvidia-cdi", "cdi"),
        ("nvidia-legacy", "legacy"),
    ]
    assert p.nri.enabled is False
    assert p.unknown == {}
    assert p.assumed is False


@pytest.mark.parametrize(
    ("version", "user_mode", "mode"),
    [
        ("24.9.2", "legacy", "cdi"),  # cdi.default=true: the CDI transform overwrites the user's mode
        ("25.3.4", "legacy", "legacy"),  # user env wins
    ],
)
def test_cdi_default_mode_precedence(version: str, user_mode: str, mode: str) -> None:
    spec = {
        "cdi": {"enabled": True, "default": True},
        "toolkit": {"env": [env("NVIDIA_CONTAINER_RUNTIME_MODE", user_mode)]},
    }
    assert node_profile(version, spec).toolkit.config.mode == mode


@pytest.mark.parametrize(("version", "mode"), [("24.9.2", "auto"), ("23.3.0", "auto")])
def test_cdi_default_needs_cdi_enabled(version: str, mode: str) -> None:
    assert node_profile(version, {"cdi": {"enabled": False, "default": True}}).toolkit.config.mode == mode


def test_cdi_default_is_a_noop_on_25_10() -> None:
    p = node_profile("25.10.1", {"cdi": {"enabled": False, "default": True}})
    assert p.toolkit.config.mode == "auto"
    assert p.origin["cdi.default"] == "ignored: cdi.default is a no-op on operator 25.10.1"


@pytest.mark.parametrize(
    ("version", "handler"),
    [
        ("25.3.2", "nvidia"),  # runtime transform after the user env: operator.runtimeClass wins
        ("25.3.3", "custom"),  # 25.3.3 alone applied the user env last
        ("25.3.4", "nvidia"),
        ("26.7.0", "nvidia"),
    ],
)
def test_runtime_class_env_precedence(version: str, handler: str) -> None:
    p = node_profile(
        version, {"cdi": {"enabled": False}, "toolkit": {"env": [env("CONTAINERD_RUNTIME_CLASS", "custom")]}}
    )
    assert p.runtime.default_handler == handler
    assert handler in p.runtime.handlers
    assert dict(p.runtime_classes) == {"nvidia": "nvidia"}


def test_operator_runtime_class_names_handler_and_class() -> None:
    p = node_profile("25.3.4", {"operator": {"runtimeClass": "nvidia-gpu"}})
    assert p.runtime.default_handler == "nvidia-gpu"
    assert dict(p.runtime_classes) == {"nvidia-gpu": "nvidia-gpu"}


# --- NRI -----------------------------------------------------------------------------------------------


def test_26_3_nri_mode() -> None:
    p = node_profile("26.3.0", {"cdi": {"enabled": True, "nriPluginEnabled": True}}, operator_namespace="nvidia-gpu")
    assert dict(p.runtime_classes) == {}
    assert dict(p.runtime.handlers) == {}
    assert p.runtime.default_handler == "runc"
    assert p.nri.enabled is True
    assert p.nri.operator_namespace == "nvidia-gpu"
    assert p.nri.any_namespace_devices is False  # toolkit 1.19.0: only the toolkit's namespace
    assert p.origin["toolkit.env.ENABLE_NRI_PLUGIN"] == (
        "true: forced by operator 26.3.0 because cdi.nriPluginEnabled=true"
    )
    assert "toolkit.env.CONTAINERD_RUNTIME_CLASS" not in p.origin
    assert p.device_plugin is not None
    assert p.device_plugin.list_strategies == ("cdi-annotations", "cdi-cri")


def test_26_7_nri_management_namespaces() -> None:
    spec = {
        "cdi": {"nriPluginEnabled": True},
        "toolkit": {"env": [env("NRI_MANAGEMENT_CDI_DEVICE_NAMESPACES", "monitoring,ml")]},
    }
    p = node_profile("26.7.0", spec)
    assert p.nri.enabled is True
    assert p.nri.management_namespaces == ("monitoring", "ml")
    assert p.nri.any_namespace_devices is True


def test_nri_field_before_26_3_is_ignored() -> None:
    p = node_profile("25.10.1", {"cdi": {"enabled": True, "nriPluginEnabled": True}})
    assert p.nri.enabled is False
    assert dict(p.runtime_classes) == ALL_CLASSES


@pytest.mark.parametrize(
    ("version", "spec"),
    [
        ("26.3.0", {"cdi": {"enabled": False, "nriPluginEnabled": True}}),
        ("26.7.0", {"cdi": {"nriPluginEnabled": True}, "toolkit": {"enabled": False}}),
    ],
)
def test_operator_rejects_nri_without_cdi_or_toolkit(version: str, spec: dict[str, object]) -> None:
    with pytest.raises(InputError) as err:
        node_profile(version, spec)
    assert err.value.where == "clusterPolicy.spec.cdi.nriPluginEnabled"


# --- cri-o ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("version", "cdi", "default", "handlers", "hook_all"),
    [
        ("25.3.4", False, "crun", (), True),  # toolkit 1.17.8 default: OCI hook for every container
        ("25.3.4", True, "nvidia", NVIDIA_HANDLERS, False),  # CRIO_CONFIG_MODE=config, nvidia still default
        ("25.10.1", False, "crun", (), True),  # the operator sets CRIO_CONFIG_MODE=hook
        ("25.10.1", True, "crun", NVIDIA_HANDLERS, False),
    ],
)
def test_crio(version: str, cdi: bool, default: str, handlers: tuple[str, ...], hook_all: bool) -> None:
    p = node_profile(version, {"cdi": {"enabled": cdi}}, runtime="cri-o")
    assert p.runtime.kind == "cri-o"
    assert p.runtime.default_handler == default
    assert tuple(p.runtime.handlers) == handlers
    assert p.runtime.oci_hook_all is hook_all
    assert p.origin["toolkit.env.RUNTIME"].startswith("crio: ")


# --- versions, host toolkit, disabled plugin ----------------------------------------------------------


@pytest.mark.parametrize(
    ("toolkit", "expected"),
    [
        ({"version": "v1.17.8-ubuntu20.04"}, "1.17.8"),
        ({"version": "1.18.2"}, "1.18.2"),
        ({"image": "nvcr.io/nvidia/k8s/container-toolkit:v1.16.2-ubi8"}, "1.16.2"),
        ({"repository": "nvcr.io/nvidia/k8s", "image": "container-toolkit"}, "1.17.4"),
    ],
)
def test_toolkit_version_override(toolkit: dict[str, object], expected: str) -> None:
    assert str(node_profile("24.9.2", {"toolkit": toolkit}).toolkit.version) == expected


def test_device_plugin_version_override() -> None:
    p = node_profile("25.3.4", {"devicePlugin": {"version": "v0.17.1-ubi9"}})
    assert p.device_plugin is not None
    assert p.device_plugin.version == v("0.17.1")


def test_overridden_toolkit_version_changes_installer_rules() -> None:
    # toolkit 1.14.5 leaves the default for an empty boolean; the bundled 1.17.4 reads it as false
    spec = {
        "toolkit": {
            "version": "v1.14.5-ubuntu20.04",
            "env": [env("ACCEPT_NVIDIA_VISIBLE_DEVICES_ENVVAR_WHEN_UNPRIVILEGED", "")],
        }
    }
    assert node_profile("24.9.2", spec).toolkit.config.accept_envvar_unprivileged is True
    del spec["toolkit"]["version"]  # type: ignore[attr-defined]
    assert node_profile("24.9.2", spec).toolkit.config.accept_envvar_unprivileged is False


def test_unparsable_toolkit_version() -> None:
    with pytest.raises(InputError) as err:
        node_profile("25.3.4", {"toolkit": {"version": "latest"}})
    assert err.value.where == "clusterPolicy.spec.toolkit.version"


def test_host_toolkit_is_unknown() -> None:
    p = node_profile("25.10.1", {"toolkit": {"enabled": False}})
    assert "toolkit.config" in p.unknown
    assert "runtime" in p.unknown
    assert p.toolkit.config.accept_envvar_unprivileged is True  # never read as safe
    assert p.runtime.default_handler == "nvidia"
    assert p.device_plugin is not None
    assert "devicePlugin.env.NVIDIA_CDI_HOOK_PATH" not in p.origin


def test_device_plugin_disabled() -> None:
    assert node_profile("25.3.4", {"devicePlugin": {"enabled": False}}).device_plugin is None


def test_gds_and_mig_env() -> None:
    p = node_profile("26.7.0", {"gds": {"enabled": True}, "gdrcopy": {"enabled": True}, "mig": {"strategy": "mixed"}})
    assert p.device_plugin is not None
    assert (p.device_plugin.gds, p.device_plugin.mofed, p.device_plugin.gdrcopy) == (True, True, True)
    assert p.origin["devicePlugin.env.MIG_STRATEGY"].startswith("mixed: ")


def test_device_plugin_extras_default_on_in_0_19_0() -> None:
    p = node_profile("26.3.0", {})
    assert p.device_plugin is not None
    assert (p.device_plugin.gds, p.device_plugin.mofed, p.device_plugin.gdrcopy) == (True, True, True)
    p = node_profile("26.3.3", {})
    assert p.device_plugin is not None
    assert (p.device_plugin.gds, p.device_plugin.mofed, p.device_plugin.gdrcopy) == (False, False, False)


def test_unknown_patch_is_modelled_on_the_nearest_release() -> None:
    p = node_profile("25.3.9", {})
    assert p.operator_version == v("25.3.9")
    assert p.origin["operator.version"] == "25.3.9: modelled as v25.3.4, the nearest known release of the 25.3 line"


def test_whole_cluster_policy_object() -> None:
    policy = {
        "apiVersion": "nvidia.com/v1",
        "kind": "ClusterPolicy",
        "metadata": {"name": "cluster-policy"},
        "spec": {"cdi": {"enabled": False}},
    }
    assert node_profile("25.10.1", policy).runtime.default_handler == "nvidia"


def test_gpus_and_platform_are_carried() -> None:
    gpus = (Gpu("GPU-a", "0"), Gpu("GPU-b", "1"))
    assert node_profile("26.7.0", {}, gpus=gpus).gpus == gpus


# --- input shapes --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "where"),
    [
        ({"toolkit": {"env": {"ACCEPT": "false"}}}, "clusterPolicy.spec.toolkit.env"),
        (
            {"toolkit": {"env": [env("A", "x"), {"name": "B", "value": False}]}},
            "clusterPolicy.spec.toolkit.env[1].value",
        ),
        ({"toolkit": {"env": [{"value": "x"}]}}, "clusterPolicy.spec.toolkit.env[0].name"),
        ({"toolkit": {"env": ["A=b"]}}, "clusterPolicy.spec.toolkit.env[0]"),
        (
            {"devicePlugin": {"env": [{"name": "PASS_DEVICE_SPECS", "value": 1}]}},
            "clusterPolicy.spec.devicePlugin.env[0].value",
        ),
        ({"cdi": {"enabled": "true"}}, "clusterPolicy.spec.cdi.enabled"),
        ({"cdi": True}, "clusterPolicy.spec.cdi"),
        ({"toolkit": {"enabled": "no"}}, "clusterPolicy.spec.toolkit.enabled"),
        ({"toolkit": {"version": 1.17}}, "clusterPolicy.spec.toolkit.version"),
        ({"operator": {"runtimeClass": 5}}, "clusterPolicy.spec.operator.runtimeClass"),
        # values the toolkit installer / device plugin would refuse at start-up
        (
            {"toolkit": {"env": [env("ACCEPT_NVIDIA_VISIBLE_DEVICES_ENVVAR_WHEN_UNPRIVILEGED", "no")]}},
            "clusterPolicy.spec.toolkit.env[0].value",
        ),
        (
            {"devicePlugin": {"env": [env("DEVICE_LIST_STRATEGY", "volume_mounts")]}},
            "clusterPolicy.spec.devicePlugin.env[0].value",
        ),
        (
            {"devicePlugin": {"env": [env("DEVICE_ID_STRATEGY", "serial")]}},
            "clusterPolicy.spec.devicePlugin.env[0].value",
        ),
    ],
)
def test_bad_input_names_the_field(spec: dict[str, object], where: str) -> None:
    with pytest.raises(InputError) as err:
        node_profile("25.10.1", spec)
    assert err.value.where == where


def test_cdi_cri_is_not_a_strategy_of_device_plugin_0_14() -> None:
    with pytest.raises(InputError) as err:
        node_profile("23.9.2", {"devicePlugin": {"env": [env("DEVICE_LIST_STRATEGY", "cdi-cri")]}})
    assert err.value.where == "clusterPolicy.spec.devicePlugin.env[0].value"


def test_value_from_is_pruned_to_an_empty_value() -> None:
    spec = {
        "toolkit": {
            "env": [
                {
                    "name": "ACCEPT_NVIDIA_VISIBLE_DEVICES_ENVVAR_WHEN_UNPRIVILEGED",
                    "valueFrom": {"configMapKeyRef": {"name": "x", "key": "y"}},
                }
            ]
        }
    }
    p = node_profile("25.3.4", spec)
    assert p.toolkit.config.accept_envvar_unprivileged is False  # "" is false on toolkit 1.17.8
    assert "pruned" in p.origin["toolkit.env.ACCEPT_NVIDIA_VISIBLE_DEVICES_ENVVAR_WHEN_UNPRIVILEGED"]


def test_both_inputs_rejected() -> None:
    with pytest.raises(InputError):
        node_profile("25.3.4", {}, helm_values={})


# --- Helm values ---------------------------------------------------------------------------------------


def load(name: str) -> dict[str, object]:
    doc = yaml.safe_load((FIXTURES / name).read_text())
    assert isinstance(doc, dict)
    return doc


def test_helm_values_25_3_4() -> None:
    p = node_profile("25.3.4", helm_values=load("values-v25.3.4.yaml"))
    assert summary(p) == {
        "toolkit": "1.17.8",
        "accept": True,
        "mode": "auto",
        "default": "nvidia",
        "handlers": NVIDIA_HANDLERS,
        "strategies": ("envvar",),
        "prefix": "cdi.k8s.io/",
        "classes": {"nvidia": "nvidia"},
    }
    assert p.origin["cdi.enabled"] == "false from helmValues.cdi.enabled"
    assert p.device_plugin is not None
    assert p.device_plugin.version == v("0.17.4")
    assert p.device_plugin.pass_device_specs is True


def test_helm_values_26_7_0() -> None:
    p = node_profile("26.7.0", helm_values=load("values-v26.7.0.yaml"))
    assert summary(p) == {
        "toolkit": "1.20.0",
        "accept": True,
        "mode": "cdi",
        "default": "runc",
        "handlers": NVIDIA_HANDLERS,
        "strategies": ("cdi-annotations", "cdi-cri"),
        "prefix": "cdi.k8s.io/",
        "classes": ALL_CLASSES,
    }
    assert p.origin["cdi.enabled"] == "true from helmValues.cdi.enabled"
    assert p.nri.enabled is False


def test_helm_values_26_7_0_nri() -> None:
    values = load("values-v26.7.0.yaml")
    values["cdi"] = {"enabled": True, "nriPluginEnabled": True}
    p = node_profile("26.7.0", helm_values=values)
    assert p.nri.enabled is True
    assert dict(p.runtime_classes) == {}


def test_helm_render_drops_nri_without_cdi() -> None:
    spec = render_helm_values("26.7.0", {"cdi": {"enabled": False, "nriPluginEnabled": True}})
    assert spec["cdi"] == {"enabled": False}
    p = node_profile("26.7.0", helm_values={"cdi": {"enabled": False, "nriPluginEnabled": True}})
    assert p.nri.enabled is False
    assert p.runtime.default_handler == "nvidia"


@pytest.mark.parametrize(
    ("version", "cdi"),
    [
        ("22.9.2", None),
        ("23.9.2", {"enabled": False, "default": False}),
        ("25.3.4", {"enabled": False, "default": False}),
        ("25.10.1", {"enabled": True}),
        ("26.7.0", {"enabled": True}),
    ],
)
def test_helm_chart_defaults_render_cdi(version: str, cdi: dict[str, object] | None) -> None:
    assert render_helm_values(version, {}).get("cdi") == cdi


def test_helm_partial_values_use_chart_defaults() -> None:
    # a values file that only says cdi.enabled=false on 25.10: everything else from the chart
    p = node_profile("25.10.1", helm_values={"cdi": {"enabled": False}})
    assert summary(p)["default"] == "nvidia"
    assert str(p.toolkit.version) == "1.18.1"


def test_helm_user_env_list_replaces_the_chart_list() -> None:
    values = {
        "cdi": {"enabled": True},
        "devicePlugin": {"env": [env("DEVICE_LIST_STRATEGY", "volume-mounts")]},
    }
    spec = render_helm_values("24.9.2", values)
    assert spec["devicePlugin"] == {
        "enabled": True,
        "version": "v0.17.0",
        "env": [{"name": "DEVICE_LIST_STRATEGY", "value": "volume-mounts"}],
    }
    p = node_profile("24.9.2", helm_values=values)
    assert p.device_plugin is not None
    assert p.device_plugin.list_strategies == ("envvar", "cdi-annotations")


@pytest.mark.parametrize(
    ("values", "where"),
    [
        (
            {"toolkit": {"env": [{"name": "ACCEPT_NVIDIA_VISIBLE_DEVICES_ENVVAR_WHEN_UNPRIVILEGED", "value": False}]}},
            "helmValues.toolkit.env[0].value",
        ),
        ({"cdi": {"enabled": "maybe"}}, "helmValues.cdi.enabled"),
        ({"toolkit": []}, "helmValues.toolkit"),
    ],
)
def test_helm_bad_values(values: dict[str, object], where: str) -> None:
    with pytest.raises(InputError) as err:
        node_profile("25.10.1", helm_values=values)
    assert err.value.where == where


def test_helm_string_booleans_render_as_booleans() -> None:
    p = node_profile("25.10.1", helm_values={"cdi": {"enabled": "false"}})
    assert p.runtime.default_handler == "nvidia"


# --- most exposed / explicit -------------------------------------------------------------------------


def test_most_exposed_profile() -> None:
    gpus = (Gpu("GPU-a", "0"),)
    p = most_exposed_profile(gpus)
    assert p.assumed is True
    assert p.gpus == gpus
    assert summary(p) == {
        "toolkit": "1.17.8",
        "accept": True,
        "mode": "auto",
        "default": "nvidia",
        "handlers": NVIDIA_HANDLERS,
        "strategies": ("envvar",),
        "prefix": "cdi.k8s.io/",
        "classes": {"nvidia": "nvidia"},
    }
    assert p.operator_version is None
    assert "assumed" in p.origin


def test_explicit_profile_from_env() -> None:
    p = explicit_profile(
        "1.17.8",
        toolkit_env={"ACCEPT_NVIDIA_VISIBLE_DEVICES_ENVVAR_WHEN_UNPRIVILEGED": "false"},
        device_plugin_version="v0.17.0",
        device_plugin_env={"DEVICE_LIST_STRATEGY": "volume-mounts", "PASS_DEVICE_SPECS": "true"},
    )
    assert p.toolkit.config.accept_envvar_unprivileged is False
    assert p.device_plugin is not None
    assert p.device_plugin.list_strategies == ("volume-mounts",)
    assert p.device_plugin.pass_device_specs is True
    assert p.runtime.default_handler == "nvidia"
    assert dict(p.runtime_classes) == ALL_CLASSES
    assert p.operator_version is None


def test_explicit_profile_given_objects() -> None:
    runtime = ContainerRuntime(
        default_handler="runc", handlers={"nvidia": RuntimeHandler("nvidia", nvidia=True)}, enable_cdi=True
    )
    config = ToolkitConfig(mode="cdi")
    p = explicit_profile(v("1.20.0"), config, runtime=runtime, runtime_classes={"gpu": "nvidia"})
    assert p.toolkit.config is config
    assert p.runtime is runtime
    assert p.device_plugin is None
    assert dict(p.runtime_classes) == {"gpu": "nvidia"}


def test_explicit_profile_bad_version() -> None:
    with pytest.raises(InputError) as err:
        explicit_profile("1.17.8", device_plugin_version="newest")
    assert err.value.where == "devicePlugin.version"


@pytest.mark.parametrize(
    "toolkit",
    [
        {"repository": "nvcr.io/nvidia/k8s", "image": "container-toolkit", "version": "sha256:" + "a" * 64},
        {"image": "registry.local/container-toolkit@sha256:" + "b" * 64},
    ],
)
def test_digest_pinned_toolkit_is_an_unknown_version(toolkit: dict[str, object]) -> None:
    p = node_profile("25.3.4", {"toolkit": toolkit})
    assert p.toolkit.version == v("1.17.8")  # assumed the bundled one
    assert "toolkit.version" in p.unknown


@pytest.mark.parametrize(
    ("version", "overridden"),
    [
        ("24.9.2", ("volume-mounts", "clusterPolicy.spec.devicePlugin.env[0]", "envvar,cdi-annotations")),
        ("25.3.2", ("volume-mounts", "clusterPolicy.spec.devicePlugin.env[0]", "envvar,cdi-annotations")),
        ("25.3.3", None),  # from 25.3.3 the user's env is applied after the CDI transform
    ],
)
def test_operator_state_records_user_env_the_operator_replaced(version: str, overridden: object) -> None:
    strategy = {"name": "DEVICE_LIST_STRATEGY", "value": "volume-mounts"}
    spec = {"cdi": {"enabled": True}, "devicePlugin": {"env": [strategy]}}
    state = node_profile(version, spec).operator
    assert state is not None and state.cdi_enabled and state.toolkit_enabled
    found = [(o.user_value, o.user_where, o.effective) for o in state.overrides if o.name == "DEVICE_LIST_STRATEGY"]
    assert found == ([overridden] if overridden else [])


def test_a_node_without_an_operator_has_no_operator_state() -> None:
    assert explicit_profile("1.17.8").operator is None
