"""Helm values to the ClusterPolicy spec the chart renders, with that release's chart defaults."""

from __future__ import annotations

from collections.abc import Mapping

from gpuguard.engine.operator.releases import Release, release
from gpuguard.engine.operator.spec import DEFAULT_INSTALL_DIR, child_mapping
from gpuguard.model.errors import InputError, type_name
from gpuguard.model.version import Version


def _chart_defaults(rel: Release) -> dict[str, object]:
    cdi: dict[str, object] = {}
    if rel.cdi_field:
        cdi["enabled"] = rel.chart_cdi_enabled
        if rel.cdi_default_field:
            cdi["default"] = False
        if rel.nri_field:
            cdi["nriPluginEnabled"] = False
    return {
        "operator": {"runtimeClass": "nvidia"},
        "cdi": cdi,
        "mig": {"strategy": "single"},
        "toolkit": {
            "enabled": True,
            "version": rel.toolkit.text,
            "env": [],
            "installDir": DEFAULT_INSTALL_DIR,
        },
        "devicePlugin": {
            "enabled": True,
            "version": rel.device_plugin.text,
            "env": [{"name": n, "value": val} for n, val in rel.chart_device_plugin_env],
        },
        "gds": {"enabled": False},
        "gdrcopy": {"enabled": False},
    }


def _merge(base: Mapping[str, object], over: Mapping[str, object]) -> dict[str, object]:
    """Helm's values merge: maps merge, lists and scalars replace, null deletes."""
    out = dict(base)
    for key, value in over.items():
        if value is None:
            out.pop(key, None)
        elif isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = _merge(out[key], value)  # type: ignore[arg-type]
        else:
            out[key] = value
    return out


_YAML_BOOLS = {"true": True, "True": True, "TRUE": True, "false": False, "False": False, "FALSE": False}


def _rendered_bool(value: object, where: str) -> bool | None:
    """``key: {{ .Values.x }}`` re-read as YAML: a bool, a bool-looking string, or nothing."""
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value in _YAML_BOOLS:
        return _YAML_BOOLS[value]
    raise InputError(where, f"expected true or false, got {type_name(value)} {value!r}")


def render_helm_values(version: Version | str, values: Mapping[str, object]) -> dict[str, object]:
    """The ClusterPolicy spec ``templates/clusterpolicy.yaml`` renders from a values document.

    Chart defaults of the release fill what ``values`` omits; ``cdi.enabled`` is always rendered
    (``nriPluginEnabled`` only when both it and ``cdi.enabled`` are true).
    """
    if not isinstance(values, Mapping):
        raise InputError("helmValues", f"expected a mapping, got {type_name(values)}")
    rel = release(version)
    merged = _merge(_chart_defaults(rel), values)
    spec: dict[str, object] = {}
    for key in ("operator", "cdi", "mig", "toolkit", "devicePlugin", "gds", "gdrcopy"):
        child_mapping(merged, key, "helmValues")
    operator = child_mapping(merged, "operator", "helmValues")
    if operator.get("runtimeClass"):
        spec["operator"] = {"runtimeClass": operator["runtimeClass"]}
    if rel.cdi_field:
        cdi = child_mapping(merged, "cdi", "helmValues")
        rendered: dict[str, object] = {}
        enabled = _rendered_bool(cdi.get("enabled"), "helmValues.cdi.enabled")
        if enabled is not None:
            rendered["enabled"] = enabled
        default = _rendered_bool(cdi.get("default"), "helmValues.cdi.default")
        if default is not None and (rel.cdi_default_field or default):
            rendered["default"] = default
        nri = _rendered_bool(cdi.get("nriPluginEnabled"), "helmValues.cdi.nriPluginEnabled")
        if rel.nri_field and enabled and nri:
            rendered["nriPluginEnabled"] = True
        spec["cdi"] = rendered
    mig = child_mapping(merged, "mig", "helmValues")
    if mig.get("strategy"):
        spec["mig"] = {"strategy": mig["strategy"]}
    for key in ("toolkit", "devicePlugin"):
        section = child_mapping(merged, key, "helmValues")
        out: dict[str, object] = {}
        enabled = _rendered_bool(section.get("enabled"), f"helmValues.{key}.enabled")
        if enabled is not None:
            out["enabled"] = enabled
        for name in ("repository", "image", "version", "installDir", "env"):
            if section.get(name):
                out[name] = section[name]
        spec[key] = out
    for key in ("gds", "gdrcopy"):
        enabled = _rendered_bool(child_mapping(merged, key, "helmValues").get("enabled"), f"helmValues.{key}.enabled")
        spec[key] = {"enabled": bool(enabled)}
    return spec
