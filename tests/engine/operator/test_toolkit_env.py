"""The toolkit container's installer: env -> config.toml and runtime handlers.

Expected values are typed from the installer source read at each tag
(``tools/container/toolkit/toolkit.go`` <= v1.17, ``cmd/nvidia-ctk-installer`` >= v1.18)
and from Go's ``strconv.ParseBool``; nothing here is computed by the code under test.
"""

from __future__ import annotations

import pytest

from gpuguard.engine.operator.toolkit_env import (
    container_runtime_from_env,
    install,
    toolkit_config_from_env,
)
from gpuguard.model.errors import InputError
from gpuguard.model.version import v

ACCEPT = "ACCEPT_NVIDIA_VISIBLE_DEVICES_ENVVAR_WHEN_UNPRIVILEGED"
MOUNTS = "ACCEPT_NVIDIA_VISIBLE_DEVICES_AS_VOLUME_MOUNTS"


@pytest.mark.parametrize(
    ("value", "toolkit", "accept"),
    [
        ("false", "1.17.8", False),
        ("False", "1.17.8", False),
        ("FALSE", "1.17.8", False),
        ("0", "1.17.8", False),
        ("f", "1.17.8", False),
        ("F", "1.20.0", False),
        ("true", "1.17.8", True),
        ("1", "1.18.0", True),
        ("t", "1.11.0", True),
        ("", "1.14.6", False),  # urfave/cli 2.27: empty means false
        ("", "1.20.0", False),
        ("", "1.14.5", True),  # urfave/cli 2.3: empty leaves the default
        ("", "1.11.0", True),
        ("false", "1.10.0", True),  # before 1.11.0 the env is not read
    ],
)
def test_accept_envvar_boolean(value: str, toolkit: str, accept: bool) -> None:
    assert toolkit_config_from_env({ACCEPT: value}, v(toolkit)).accept_envvar_unprivileged is accept


@pytest.mark.parametrize("value", ["no", "yes", " false", "false ", "off", "tRue", "2"])
def test_invalid_boolean_makes_the_installer_exit(value: str) -> None:
    with pytest.raises(InputError) as err:
        toolkit_config_from_env({ACCEPT: value}, v("1.17.8"))
    assert err.value.where == f"toolkit.env.{ACCEPT}"


def test_invalid_boolean_names_the_input_path() -> None:
    with pytest.raises(InputError) as err:
        install({MOUNTS: "yes"}, v("1.18.0"), where={MOUNTS: "clusterPolicy.spec.toolkit.env[3].value"})
    assert err.value.where == "clusterPolicy.spec.toolkit.env[3].value"


def test_installer_defaults() -> None:
    config = toolkit_config_from_env({}, v("1.17.8"))
    assert config.accept_envvar_unprivileged is True
    assert config.accept_volume_mounts is False
    assert config.mode == "auto"
    assert config.cdi_default_kind == "nvidia.com/gpu"
    assert config.cdi_annotation_prefixes == ("cdi.k8s.io/",)
    assert config.skip_mode_detection is True  # installer flag default, always written
    assert config.explicit == frozenset(
        {
            "accept-nvidia-visible-devices-envvar-when-unprivileged",
            "accept-nvidia-visible-devices-as-volume-mounts",
            "nvidia-container-runtime-hook.skip-mode-detection",
        }
    )


def test_toolkit_1_11_writes_only_the_accept_keys() -> None:
    config = toolkit_config_from_env({"NVIDIA_CONTAINER_RUNTIME_MODE": "cdi", MOUNTS: "true"}, v("1.11.0"))
    assert config.mode == "auto"  # NVIDIA_CONTAINER_RUNTIME_MODE is read from 1.13.0
    assert config.accept_volume_mounts is True
    assert config.skip_mode_detection is False
    assert config.explicit == frozenset(
        {
            "accept-nvidia-visible-devices-envvar-when-unprivileged",
            "accept-nvidia-visible-devices-as-volume-mounts",
        }
    )


def test_mode_kind_prefixes_features() -> None:
    config = toolkit_config_from_env(
        {
            "NVIDIA_CONTAINER_RUNTIME_MODE": "cdi",
            "NVIDIA_CONTAINER_RUNTIME_MODES_CDI_DEFAULT_KIND": "management.nvidia.com/gpu",
            "NVIDIA_CONTAINER_RUNTIME_MODES_CDI_ANNOTATION_PREFIXES": "nvidia.cdi.k8s.io/, cdi.k8s.io/",
            "NVIDIA_CONTAINER_RUNTIME_HOOK_SKIP_MODE_DETECTION": "false",
            "NVIDIA_CONTAINER_TOOLKIT_OPT_IN_FEATURES": (
                "ignore-imex-channel-requests,allow-cuda-compat-libs-from-container"
            ),
        },
        v("1.17.8"),
    )
    assert config.mode == "cdi"
    assert config.cdi_default_kind == "management.nvidia.com/gpu"
    assert config.cdi_annotation_prefixes == ("nvidia.cdi.k8s.io/", "cdi.k8s.io/")
    assert config.skip_mode_detection is False
    assert config.ignore_imex_channel_requests is True
    assert config.disable_imex_channel_creation is False
    assert "features.allow-cuda-compat-libs-from-container" in config.explicit
    assert "nvidia-container-runtime.mode" in config.explicit


def test_empty_mode_is_not_written() -> None:
    config = toolkit_config_from_env({"NVIDIA_CONTAINER_RUNTIME_MODE": ""}, v("1.18.0"))
    assert config.mode == "auto"
    assert "nvidia-container-runtime.mode" not in config.explicit


def test_opt_in_features_before_1_17_are_ignored() -> None:
    config = toolkit_config_from_env(
        {"NVIDIA_CONTAINER_TOOLKIT_OPT_IN_FEATURES": "ignore-imex-channel-requests"}, v("1.16.2")
    )
    assert config.ignore_imex_channel_requests is False


# --- runtime side ------------------------------------------------------------------------------

# (env, toolkit, runtime, default handler, handler names, enable_cdi, hook for every container)
RUNTIME_ROWS = [
    ({}, "1.17.8", "containerd", "nvidia", ("nvidia", "nvidia-cdi", "nvidia-legacy"), False, False),
    ({}, "1.11.0", "containerd", "nvidia", ("nvidia", "nvidia-experimental"), False, False),
    (
        {},
        "1.13.4",
        "containerd",
        "nvidia",
        ("nvidia", "nvidia-experimental", "nvidia-cdi", "nvidia-legacy"),
        False,
        False,
    ),
    (
        {"NVIDIA_RUNTIME_SET_AS_DEFAULT": "false"},
        "1.18.1",
        "containerd",
        "runc",
        ("nvidia", "nvidia-cdi", "nvidia-legacy"),
        False,
        False,
    ),
    (
        {"CONTAINERD_SET_AS_DEFAULT": "false"},
        "1.14.6",
        "containerd",
        "runc",
        ("nvidia", "nvidia-cdi", "nvidia-legacy"),
        False,
        False,
    ),
    # the first present name wins: the operator's NVIDIA_RUNTIME_SET_AS_DEFAULT=false beats the user's
    (
        {"NVIDIA_RUNTIME_SET_AS_DEFAULT": "false", "CONTAINERD_SET_AS_DEFAULT": "true"},
        "1.18.1",
        "containerd",
        "runc",
        ("nvidia", "nvidia-cdi", "nvidia-legacy"),
        False,
        False,
    ),
    (
        {"NVIDIA_RUNTIME_SET_AS_DEFAULT": "true", "CONTAINERD_SET_AS_DEFAULT": "false"},
        "1.18.1",
        "containerd",
        "nvidia",
        ("nvidia", "nvidia-cdi", "nvidia-legacy"),
        False,
        False,
    ),
    # NVIDIA_RUNTIME_SET_AS_DEFAULT is read from 1.13.3
    (
        {"NVIDIA_RUNTIME_SET_AS_DEFAULT": "false"},
        "1.13.0",
        "containerd",
        "nvidia",
        ("nvidia", "nvidia-experimental", "nvidia-cdi", "nvidia-legacy"),
        False,
        False,
    ),
    (
        {"CONTAINERD_RUNTIME_CLASS": "gpu"},
        "1.17.8",
        "containerd",
        "gpu",
        ("gpu", "nvidia-cdi", "nvidia-legacy"),
        False,
        False,
    ),
    # a predefined name keeps `nvidia` for the plain runtime, and that mode handler becomes the default
    (
        {"CONTAINERD_RUNTIME_CLASS": "nvidia-cdi"},
        "1.17.8",
        "containerd",
        "nvidia-cdi",
        ("nvidia", "nvidia-cdi", "nvidia-legacy"),
        False,
        False,
    ),
    (
        {"CDI_ENABLED": "true"},
        "1.17.4",
        "containerd",
        "nvidia",
        ("nvidia", "nvidia-cdi", "nvidia-legacy"),
        False,
        False,
    ),  # enable_cdi is set by the installer from 1.17.5
    (
        {"CDI_ENABLED": "true"},
        "1.17.5",
        "containerd",
        "nvidia",
        ("nvidia", "nvidia-cdi", "nvidia-legacy"),
        True,
        False,
    ),
    (
        {"CDI_ENABLED": "true", "RUNTIME_ENABLE_CDI": "false"},
        "1.18.0",
        "containerd",
        "nvidia",
        ("nvidia", "nvidia-cdi", "nvidia-legacy"),
        False,
        False,
    ),
    ({}, "1.17.8", "cri-o", "crun", (), True, True),  # cri-o hook mode was the default up to 1.17
    ({}, "1.18.0", "cri-o", "nvidia", ("nvidia", "nvidia-cdi", "nvidia-legacy"), True, False),
    ({"CRIO_CONFIG_MODE": "hook"}, "1.18.0", "crio", "crun", (), True, True),
    (
        {"CRIO_CONFIG_MODE": "config", "NVIDIA_RUNTIME_SET_AS_DEFAULT": "false"},
        "1.20.0",
        "cri-o",
        "crun",
        ("nvidia", "nvidia-cdi", "nvidia-legacy"),
        True,
        False,
    ),
    ({"ENABLE_NRI_PLUGIN": "true"}, "1.19.0", "containerd", "runc", (), True, False),
    (
        {"ENABLE_NRI_PLUGIN": "true"},
        "1.18.1",
        "containerd",
        "nvidia",
        ("nvidia", "nvidia-cdi", "nvidia-legacy"),
        False,
        False,
    ),  # no NRI plugin before 1.19.0: the runtime is configured as usual
]


@pytest.mark.parametrize("row", RUNTIME_ROWS)
def test_runtime(row: tuple[dict[str, str], str, str, str, tuple[str, ...], bool, bool]) -> None:
    env, toolkit, runtime, default, handlers, enable_cdi, hook_all = row
    crt = container_runtime_from_env(env, v(toolkit), runtime)
    assert crt.default_handler == default
    assert tuple(crt.handlers) == handlers
    assert crt.enable_cdi is enable_cdi
    assert crt.oci_hook_all is hook_all


def test_handler_modes() -> None:
    crt = container_runtime_from_env({}, v("1.20.0"))
    assert [(h.name, h.nvidia, h.mode) for h in crt.handlers.values()] == [
        ("nvidia", True, None),
        ("nvidia-cdi", True, "cdi"),
        ("nvidia-legacy", True, "legacy"),
    ]


@pytest.mark.parametrize(
    ("env", "annotations"),
    [
        ({}, ()),
        (
            {"NVIDIA_CONTAINER_RUNTIME_MODES_CDI_ANNOTATION_PREFIXES": "nvidia.cdi.k8s.io/"},
            ("nvidia.cdi.k8s.io/*",),
        ),
        ({"NVIDIA_CONTAINER_RUNTIME_MODES_CDI_ANNOTATION_PREFIXES": "a/,b/"}, ("a/*", "b/*")),
    ],
)
def test_container_annotations_only_from_prefixes(env: dict[str, str], annotations: tuple[str, ...]) -> None:
    crt = container_runtime_from_env(env, v("1.17.8"))
    assert {name: h.container_annotations for name, h in crt.handlers.items()} == {
        "nvidia": annotations,
        "nvidia-cdi": annotations,
        "nvidia-legacy": annotations,
    }


def test_invalid_crio_config_mode() -> None:
    with pytest.raises(InputError) as err:
        container_runtime_from_env({"CRIO_CONFIG_MODE": "Hook"}, v("1.18.0"), "cri-o")
    assert err.value.where == "toolkit.env.CRIO_CONFIG_MODE"


def test_docker_is_not_modelled() -> None:
    with pytest.raises(InputError) as err:
        container_runtime_from_env({}, v("1.17.8"), "docker")
    assert err.value.where == "runtime"


def test_env_value_must_be_a_string() -> None:
    with pytest.raises(InputError) as err:
        toolkit_config_from_env({ACCEPT: False}, v("1.17.8"))  # type: ignore[dict-item]
    assert err.value.where == f"toolkit.env.{ACCEPT}"


@pytest.mark.parametrize(
    ("env", "toolkit", "enabled", "management", "any_namespace"),
    [
        ({"ENABLE_NRI_PLUGIN": "true", "NRI_NAMESPACE": "gpu-ops"}, "1.19.0", True, (), False),
        (
            {"ENABLE_NRI_PLUGIN": "true", "NRI_MANAGEMENT_CDI_DEVICE_NAMESPACES": "ml, monitoring"},
            "1.20.0",
            True,
            ("ml", "monitoring"),
            True,
        ),
        (
            {"ENABLE_NRI_PLUGIN": "true", "NRI_MANAGEMENT_CDI_DEVICE_NAMESPACES": "ml"},
            "1.19.1",
            True,
            (),
            False,
        ),
        ({}, "1.20.0", False, (), True),
    ],
)
def test_nri(
    env: dict[str, str], toolkit: str, enabled: bool, management: tuple[str, ...], any_namespace: bool
) -> None:
    nri = install(env, v(toolkit), operator_namespace="gpu-operator").nri
    assert nri.enabled is enabled
    assert nri.management_namespaces == management
    assert nri.any_namespace_devices is any_namespace
    assert nri.operator_namespace == env.get("NRI_NAMESPACE", "gpu-operator")
