"""config.toml placement, per-version keys, defaults and type errors (toolkit_semantics.md §2)."""

from __future__ import annotations

import pytest

from gpuguard.engine.toolkit.config import config_from_toml, default_config
from gpuguard.model.errors import InputError
from gpuguard.model.toolkit import ToolkitConfig
from gpuguard.model.version import v

AE = "accept-nvidia-visible-devices-envvar-when-unprivileged"
AM = "accept-nvidia-visible-devices-as-volume-mounts"


def test_defaults_of_current_release_match_the_model() -> None:
    assert default_config(v("1.20.0")) == ToolkitConfig()


@pytest.mark.parametrize(
    ("version", "caps"),
    [
        ("1.2.1", "compute,compat32,graphics,utility,video,display"),
        ("1.13.0", "compute,compat32,graphics,utility,video,display,ngx"),
        ("1.14.0", "compat32,compute,display,graphics,ngx,utility,video"),
    ],
)
def test_default_supported_capabilities_per_release(version: str, caps: str) -> None:
    assert default_config(v(version)).supported_driver_capabilities == caps


def test_top_level_keys_are_applied_and_explicit() -> None:
    cfg = config_from_toml({AE: False, AM: True, "swarm-resource": "A", "nvidia-ctk": {"path": "x"}}, v("1.17.8"))
    assert cfg.accept_envvar_unprivileged is False
    assert cfg.accept_volume_mounts is True
    assert cfg.swarm_resource == "A"
    assert cfg.explicit == frozenset({AE, AM, "swarm-resource"})
    assert cfg.ignored == ()


def test_key_under_last_table_is_ignored_with_where_it_belongs() -> None:
    cfg = config_from_toml({"nvidia-ctk": {"path": "x", AE: False}}, v("1.17.8"))
    assert cfg.accept_envvar_unprivileged is True
    assert cfg.explicit == frozenset()
    (key,) = cfg.ignored
    assert key.path == f"nvidia-ctk.{AE}"
    assert key.belongs_at == AE
    assert "[nvidia-ctk]" in key.why
    assert "top level" in key.why
    assert cfg.ignored_values == ((f"nvidia-ctk.{AE}", False),)


def test_nested_keys_are_read_in_their_tables() -> None:
    doc = {
        "nvidia-container-runtime": {
            "mode": "cdi",
            "modes": {"cdi": {"default-kind": "management.nvidia.com/gpu", "annotation-prefixes": ["a/", "b/"]}},
        },
        "nvidia-container-runtime-hook": {"skip-mode-detection": True},
        "features": {"ignore-imex-channel-requests": True, "disable-imex-channel-creation": True},
    }
    cfg = config_from_toml(doc, v("1.20.0"))
    assert cfg.mode == "cdi"
    assert cfg.cdi_default_kind == "management.nvidia.com/gpu"
    assert cfg.cdi_annotation_prefixes == ("a/", "b/")
    assert cfg.skip_mode_detection is True
    assert cfg.ignore_imex_channel_requests is True
    assert cfg.disable_imex_channel_creation is True


def test_mode_at_top_level_is_misplaced() -> None:
    cfg = config_from_toml({"mode": "cdi"}, v("1.17.8"))
    assert cfg.mode == "auto"
    assert cfg.ignored[0].belongs_at == "nvidia-container-runtime.mode"


@pytest.mark.parametrize(
    ("version", "doc", "path", "why_part"),
    [
        ("1.2.1", {AE: False}, AE, "appeared in v1.3.0"),
        (
            "1.9.0",
            {"nvidia-container-runtime": {"mode": "cdi"}},
            "nvidia-container-runtime.mode",
            "appeared in v1.10.0",
        ),
        (
            "1.12.1",
            {"nvidia-container-runtime-hook": {"skip-mode-detection": True}},
            "nvidia-container-runtime-hook.skip-mode-detection",
            "appeared in v1.13.0",
        ),
        (
            "1.17.4",
            {"features": {"ignore-imex-channel-requests": True}},
            "features.ignore-imex-channel-requests",
            "appeared in v1.17.5",
        ),
        (
            "1.3.0",
            {"nvidia-container-cli": {"alpha-merge-visible-devices-envvars": True}},
            "nvidia-container-cli.alpha-merge-visible-devices-envvars",
            "was removed in v1.3.0",
        ),
    ],
)
def test_keys_the_release_does_not_know_are_ignored(
    version: str, doc: dict[str, object], path: str, why_part: str
) -> None:
    cfg = config_from_toml(doc, v(version))
    assert cfg == default_config(v(version)).__class__(
        supported_driver_capabilities=cfg.supported_driver_capabilities, ignored=cfg.ignored
    )
    (key,) = cfg.ignored
    assert key.path == path
    assert why_part in key.why


def test_unknown_root_key_is_reported() -> None:
    cfg = config_from_toml({"accept-nvidia-visible-devices-envvar-when-unprivilege": False}, v("1.17.8"))
    (key,) = cfg.ignored
    assert key.belongs_at is None
    assert cfg.accept_envvar_unprivileged is True


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ({AE: "false"}, f"{AE}: expected a boolean, got string 'false'"),
        ({AM: 1}, f"{AM}: expected a boolean, got integer 1"),
        ({"swarm-resource": ["A"]}, "swarm-resource: expected a string, got array ['A']"),
        (
            {"nvidia-container-runtime": {"modes": {"cdi": {"annotation-prefixes": "cdi.k8s.io/"}}}},
            "nvidia-container-runtime.modes.cdi.annotation-prefixes: expected an array of strings, got string "
            "'cdi.k8s.io/'",
        ),
    ],
)
def test_wrong_type_where_read_is_an_input_error(doc: dict[str, object], message: str) -> None:
    with pytest.raises(InputError) as err:
        config_from_toml(doc, v("1.17.8"))
    assert err.value.where == "toolkit.config"
    assert err.value.message == message


def test_wrong_type_where_not_read_is_just_ignored() -> None:
    cfg = config_from_toml({"nvidia-ctk": {AE: "false"}}, v("1.17.8"))
    assert cfg.ignored[0].path == f"nvidia-ctk.{AE}"
