"""``config.toml`` as a given toolkit release reads it.

TOML puts every key under the most recent ``[table]`` header and the toolkit
ignores keys it does not know, so a top-level key appended to the end of the
shipped file (which ends in ``[nvidia-ctk]``) silently does nothing. We apply
each key only where the release reads it, keep that release's built-in
defaults for the rest, and record every misplaced key with why it is ignored.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from gpuguard.engine.toolkit.versions import CONFIG_KEYS, config_keys, default_supported_caps
from gpuguard.model.errors import InputError
from gpuguard.model.toolkit import IgnoredKey, ToolkitConfig
from gpuguard.model.version import Version

# dotted key → (ToolkitConfig field, expected type: "bool" | "str" | "list")
FIELDS: dict[str, tuple[str, str]] = {
    "accept-nvidia-visible-devices-envvar-when-unprivileged": ("accept_envvar_unprivileged", "bool"),
    "accept-nvidia-visible-devices-as-volume-mounts": ("accept_volume_mounts", "bool"),
    "swarm-resource": ("swarm_resource", "str"),
    "supported-driver-capabilities": ("supported_driver_capabilities", "str"),
    "disable-require": ("disable_require", "bool"),
    "nvidia-container-runtime.mode": ("mode", "str"),
    "nvidia-container-runtime.modes.cdi.default-kind": ("cdi_default_kind", "str"),
    "nvidia-container-runtime.modes.cdi.annotation-prefixes": ("cdi_annotation_prefixes", "list"),
    "nvidia-container-runtime-hook.skip-mode-detection": ("skip_mode_detection", "bool"),
    "features.disable-imex-channel-creation": ("disable_imex_channel_creation", "bool"),
    "features.ignore-imex-channel-requests": ("ignore_imex_channel_requests", "bool"),
    "nvidia-container-cli.alpha-merge-visible-devices-envvars": (
        "alpha_merge_visible_devices_envvars",
        "bool",
    ),
}
_BY_LEAF: dict[str, str] = {key.rsplit(".", 1)[-1]: key for key in FIELDS}
_ROOT_KEYS = frozenset(k for k in FIELDS if "." not in k)
_TYPE_WORD = {"bool": "a boolean", "str": "a string", "list": "an array of strings"}


def default_config(version: Version) -> ToolkitConfig:
    """The built-in defaults of ``version`` (what the toolkit uses without a config file)."""
    return ToolkitConfig(supported_driver_capabilities=default_supported_caps(version))


def _toml_type(value: object) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, str):
        return "string"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "float"
    if isinstance(value, list | tuple):
        return "array"
    if isinstance(value, Mapping):
        return "table"
    return type(value).__name__


def _checked(key: str, kind: str, value: object) -> object:
    ok = (
        isinstance(value, bool)
        if kind == "bool"
        else isinstance(value, str)
        if kind == "str"
        else isinstance(value, list | tuple) and all(isinstance(x, str) for x in value)
    )
    if not ok:
        raise InputError("toolkit.config", f"{key}: expected {_TYPE_WORD[kind]}, got {_toml_type(value)} {value!r}")
    return tuple(value) if kind == "list" else value  # type: ignore[arg-type]


def _where(key: str) -> str:
    if "." not in key:
        return "the top level of config.toml (above the first [table] header)"
    table, _, leaf = key.rpartition(".")
    return f"[{table}] {leaf}"


def _walk(doc: Mapping[str, Any], prefix: str, out: list[tuple[str, object]]) -> None:
    for name, value in doc.items():
        path = f"{prefix}{name}"
        if isinstance(value, Mapping):
            _walk(value, path + ".", out)
        else:
            out.append((path, value))


def config_from_toml(doc: Mapping[str, object], version: Version) -> ToolkitConfig:
    """The effective config of ``version`` for an already-parsed TOML document."""
    readable = config_keys(version)
    leaves: list[tuple[str, object]] = []
    _walk(doc, "", leaves)
    values: dict[str, object] = {}
    explicit: set[str] = set()
    ignored: list[IgnoredKey] = []
    ignored_values: list[tuple[str, object]] = []
    for path, value in leaves:
        if path in FIELDS:
            if path in readable:
                field_name, kind = FIELDS[path]
                values[field_name] = _checked(path, kind, value)
                explicit.add(path)
                continue
            since, until = CONFIG_KEYS[path]
            when = f"was removed in v{until}" if until is not None and version >= until else f"appeared in v{since}"
            ignored.append(IgnoredKey(path, path, f"{path} {when}; toolkit v{version} does not read it"))
            continue
        leaf = path.rsplit(".", 1)[-1]
        home = _BY_LEAF.get(leaf)
        if home is not None:
            table = path.rpartition(".")[0]
            why = (
                f"{leaf} is read only at {_where(home)}; here it sits under [{table}], "
                "so the toolkit ignores it and keeps its default"
                if table
                else f"{leaf} is read only at {_where(home)}, not at the top level; the toolkit ignores it"
            )
            if home not in readable:
                why += f" (and toolkit v{version} does not read {home} at all)"
            ignored.append(IgnoredKey(path, home, why))
            if home in readable:
                ignored_values.append((path, value))
            continue
        if "." not in path and path not in _ROOT_KEYS:
            ignored.append(IgnoredKey(path, None, f"{path} is not a key the toolkit reads; ignored (a typo?)"))
    base = default_config(version)
    return replace(
        base,
        **values,  # type: ignore[arg-type]
        explicit=frozenset(explicit),
        ignored=tuple(ignored),
        ignored_values=tuple(ignored_values),
    )


def belongs_field(ignored_path: str, config: ToolkitConfig) -> tuple[str, str] | None:
    """For an ignored key: the (dotted home, ToolkitConfig field) it would set, if modelled."""
    for key in config.ignored:
        if key.path == ignored_path and key.belongs_at in FIELDS:
            return key.belongs_at, FIELDS[key.belongs_at][0]
    return None
