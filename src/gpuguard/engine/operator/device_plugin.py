"""The device plugin's settings, read from its container env the way the plugin reads them."""

from __future__ import annotations

from collections.abc import Mapping

from gpuguard.engine.operator import releases as r
from gpuguard.engine.operator.spec import _STRATEGIES
from gpuguard.engine.operator.toolkit_env import parse_go_bool
from gpuguard.model.errors import InputError
from gpuguard.model.node import DevicePlugin
from gpuguard.model.version import Version


def device_plugin_from_env(env: Mapping[str, str], version: Version) -> DevicePlugin:
    """The device plugin settings its env selects (flags are not modelled; env beats the config file)."""
    return plugin_settings(env, version, {}, {})


def _dp_bool(env: Mapping[str, str], name: str, default: bool, version: Version, where: Mapping[str, str]) -> bool:
    if name not in env:
        return default
    value = env[name]
    if value == "":
        return False if version >= r.DP_EMPTY_BOOL_IS_FALSE else default
    parsed = parse_go_bool(value)
    if parsed is None:
        raise InputError(
            where.get(name, f"devicePlugin.env.{name}"),
            f"{value!r} is not a boolean; the device plugin would exit and crash-loop",
        )
    return parsed


def plugin_settings(
    env: Mapping[str, str], version: Version, where: Mapping[str, str], origin: dict[str, str]
) -> DevicePlugin:
    at = where.get("DEVICE_LIST_STRATEGY", "devicePlugin.env.DEVICE_LIST_STRATEGY")
    raw = env.get("DEVICE_LIST_STRATEGY", "")
    allowed = [
        s
        for s in _STRATEGIES
        if (s != "cdi-annotations" or version >= r.DP_CDI_ANNOTATIONS) and (s != "cdi-cri" or version >= r.DP_CDI_CRI)
    ]
    if not raw:
        strategies: tuple[str, ...] = ("envvar",)
    elif version < r.DP_CDI_ANNOTATIONS:
        strategies = (raw,)
    else:
        strategies = tuple(p.strip() for p in raw.split(","))
    for strategy in strategies:
        if strategy not in allowed:
            raise InputError(
                at,
                f"{strategy!r} is not a device list strategy of device plugin {version} "
                f"(expected {', '.join(allowed)}); the plugin would exit and crash-loop",
            )
    id_strategy = env.get("DEVICE_ID_STRATEGY") or "uuid"
    if id_strategy not in ("uuid", "index"):
        raise InputError(
            where.get("DEVICE_ID_STRATEGY", "devicePlugin.env.DEVICE_ID_STRATEGY"),
            f"{id_strategy!r}: expected uuid or index; the plugin would exit and crash-loop",
        )
    low, high = r.DP_EXTRAS_DEFAULT_ON
    extras = low <= version < high
    if extras:
        origin["device_plugin.extras"] = (
            f"GDS/MOFED/GDRCopy default on in device plugin {low} .. {high} (fixed in {high})"
        )
    origin["device_plugin.list_strategies"] = (
        f"DEVICE_LIST_STRATEGY={raw}" if raw else "envvar: device plugin default (DEVICE_LIST_STRATEGY not set)"
    )
    return DevicePlugin(
        version=version,
        list_strategies=strategies,
        id_strategy=id_strategy,
        pass_device_specs=_dp_bool(env, "PASS_DEVICE_SPECS", False, version, where),
        cdi_annotation_prefix=env.get("CDI_ANNOTATION_PREFIX") or "cdi.k8s.io/",
        imex_channel_ids=tuple(p.strip() for p in env.get("IMEX_CHANNEL_IDS", "").split(",") if p.strip()),
        gds=_dp_bool(env, "GDS_ENABLED", extras, version, where),
        mofed=_dp_bool(env, "MOFED_ENABLED", extras, version, where),
        gdrcopy=version >= r.DP_GDRCOPY_FLAG and _dp_bool(env, "GDRCOPY_ENABLED", extras, version, where),
        dev_root=env.get("NVIDIA_DEV_ROOT") or "/",
    )
