"""config.toml corrections: keys moved to the top level, every other byte kept. Expected text typed by hand."""

from __future__ import annotations

import pytest

from gpuguard.fixes.toolkit_config import (
    OPERATOR_PATH,
    TomlError,
    misplaced,
    nvidia_ctk_command,
    set_top_level,
)

UNPRIV = "accept-nvidia-visible-devices-envvar-when-unprivileged"

SHIPPED_WITH_APPENDED_KEY = """\
#accept-nvidia-visible-devices-as-volume-mounts = false
#accept-nvidia-visible-devices-envvar-when-unprivileged = true
disable-require = false
supported-driver-capabilities = "compat32,compute,display,graphics,ngx,utility,video"
#swarm-resource = "DOCKER_RESOURCE_GPU"

[nvidia-container-cli]
environment = []
ldconfig = "@/sbin/ldconfig.real"

[nvidia-container-runtime]
runtimes = [
  "docker-runc",   # [not a table]
  "runc",
]
mode = "auto"

[nvidia-ctk]
path = "nvidia-ctk"
accept-nvidia-visible-devices-envvar-when-unprivileged = false   # echo >> config.toml
"""

SHIPPED_FIXED = """\
#accept-nvidia-visible-devices-as-volume-mounts = false
#accept-nvidia-visible-devices-envvar-when-unprivileged = true
disable-require = false
supported-driver-capabilities = "compat32,compute,display,graphics,ngx,utility,video"
#swarm-resource = "DOCKER_RESOURCE_GPU"
accept-nvidia-visible-devices-envvar-when-unprivileged = false

[nvidia-container-cli]
environment = []
ldconfig = "@/sbin/ldconfig.real"

[nvidia-container-runtime]
runtimes = [
  "docker-runc",   # [not a table]
  "runc",
]
mode = "auto"

[nvidia-ctk]
path = "nvidia-ctk"
"""


def test_misplaced_key_found_and_moved_to_top() -> None:
    assert misplaced(SHIPPED_WITH_APPENDED_KEY) == {UNPRIV: False}
    fix = set_top_level(SHIPPED_WITH_APPENDED_KEY, {UNPRIV: False})
    assert fix.text == SHIPPED_FIXED
    assert fix.moved == (f"nvidia-ctk.{UNPRIV}",)
    assert fix.changed
    assert fix.command == f"nvidia-ctk config --set {UNPRIV}=false --in-place"


def test_idempotent() -> None:
    fix = set_top_level(SHIPPED_FIXED, {UNPRIV: False})
    assert fix.text == SHIPPED_FIXED
    assert not fix.changed
    assert misplaced(SHIPPED_FIXED) == {}


CASES = [
    pytest.param(
        '[nvidia-container-cli]\nldconfig = "@/sbin/ldconfig"\n',
        {UNPRIV: False},
        f'{UNPRIV} = false\n\n[nvidia-container-cli]\nldconfig = "@/sbin/ldconfig"\n',
        id="header-on-first-line",
    ),
    pytest.param(
        f'{UNPRIV} = true  # default\n\n[nvidia-ctk]\npath = "nvidia-ctk"\n',
        {UNPRIV: False},
        f'{UNPRIV} = false\n\n[nvidia-ctk]\npath = "nvidia-ctk"\n',
        id="root-value-replaced-in-place",
    ),
    pytest.param(
        "disable-require = false",
        {UNPRIV: False, "accept-nvidia-visible-devices-as-volume-mounts": True},
        f"disable-require = false\n{UNPRIV} = false\naccept-nvidia-visible-devices-as-volume-mounts = true\n",
        id="no-table-no-final-newline",
    ),
    pytest.param(
        '# top\r\n\r\n[features]\r\nswarm-resource = "DOCKER_RESOURCE_GPU"\r\n',
        {"swarm-resource": "DOCKER_RESOURCE_GPU"},
        '# top\r\nswarm-resource = "DOCKER_RESOURCE_GPU"\r\n\r\n[features]\r\n',
        id="crlf-string-value",
    ),
    pytest.param(
        'a = """\n[not-a-table]\n"""\n[[array]]\nx = 1\n',
        {UNPRIV: False},
        f'a = """\n[not-a-table]\n"""\n{UNPRIV} = false\n[[array]]\nx = 1\n',
        id="multiline-string-and-array-of-tables",
    ),
]


@pytest.mark.parametrize(("text", "keys", "expected"), CASES)
def test_corrections(text: str, keys: dict, expected: str) -> None:
    assert set_top_level(text, keys).text == expected
    assert set_top_level(expected, keys).text == expected


def test_command_with_config_path_and_several_keys() -> None:
    keys = {UNPRIV: False, "accept-nvidia-visible-devices-as-volume-mounts": True}
    assert nvidia_ctk_command(keys, OPERATOR_PATH) == (
        "nvidia-ctk config --config /usr/local/nvidia/toolkit/.config/nvidia-container-runtime/config.toml "
        f"--set {UNPRIV}=false --set accept-nvidia-visible-devices-as-volume-mounts=true --in-place"
    )
    assert nvidia_ctk_command({"swarm-resource": "A B"}, "/etc/my config.toml") == (
        "nvidia-ctk config --config '/etc/my config.toml' --set 'swarm-resource=A B' --in-place"
    )


def test_invalid_toml() -> None:
    with pytest.raises(TomlError):
        set_top_level("[unclosed\n", {UNPRIV: False})
