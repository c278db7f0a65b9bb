"""Reading a ClusterPolicy ``spec``: shapes are checked and every error names its field."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from gpuguard.engine.operator import releases as r
from gpuguard.engine.operator.releases import Release
from gpuguard.model.errors import InputError, type_name
from gpuguard.model.version import Version

DEFAULT_INSTALL_DIR = "/usr/local/nvidia"
DEFAULT_MPS_ROOT = "/run/nvidia/mps"
_STRATEGIES = ("envvar", "volume-mounts", "cdi-annotations", "cdi-cri")




def child_mapping(parent: Mapping[str, object], key: str, where: str) -> Mapping[str, object]:
    value = parent.get(key)
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise InputError(f"{where}.{key}", f"expected a mapping, got {type_name(value)}")
    return value


def _opt_bool(section: Mapping[str, object], key: str, where: str) -> bool | None:
    value = section.get(key)
    if value is None or isinstance(value, bool):
        return value
    raise InputError(f"{where}.{key}", f"expected true or false, got {type_name(value)} {value!r}")


def _opt_str(section: Mapping[str, object], key: str, where: str) -> str | None:
    value = section.get(key)
    if value is None or isinstance(value, str):
        return value
    raise InputError(f"{where}.{key}", f"expected a string (quote it), got {type_name(value)} {value!r}")


@dataclass(frozen=True, slots=True)
class EnvEntry:
    name: str
    value: str
    where: str  # e.g. clusterPolicy.spec.toolkit.env[1]
    note: str = ""


def _env_list(section: Mapping[str, object], where: str) -> tuple[EnvEntry, ...]:
    """A ClusterPolicy ``env`` list: ``{name, value}`` with string values (gpuv1.EnvVar)."""
    value = section.get("env")
    if value is None:
        return ()
    if not isinstance(value, list | tuple):
        raise InputError(f"{where}.env", f"expected a list of {{name, value}}, got {type_name(value)}")
    entries = []
    for i, item in enumerate(value):
        at = f"{where}.env[{i}]"
        if not isinstance(item, Mapping):
            raise InputError(at, f"expected a mapping with name and value, got {type_name(item)}")
        name = item.get("name")
        if not isinstance(name, str) or not name:
            raise InputError(f"{at}.name", f"expected a non-empty string, got {type_name(name)}")
        val = item.get("value", "")
        if val is None:
            val = ""
        if not isinstance(val, str):
            raise InputError(
                f"{at}.value",
                f"expected a string, got {type_name(val)} {val!r}: the API server rejects a ClusterPolicy "
                "whose env value is not a string (quote it, or use helm --set-string)",
            )
        note = ""
        if "valueFrom" in item:
            note = "valueFrom is not supported by ClusterPolicy env and is pruned by the API server"
        entries.append(EnvEntry(name, val, at, note))
    return tuple(entries)




@dataclass(frozen=True, slots=True)
class Spec:
    """The ClusterPolicy fields the exposure model reads, with CRD defaults applied."""

    cdi_enabled: bool
    cdi_default: bool
    nri: bool
    toolkit_enabled: bool
    toolkit_version: Version
    toolkit_env: tuple[EnvEntry, ...]
    install_dir: str
    device_plugin_enabled: bool
    device_plugin_version: Version
    device_plugin_env: tuple[EnvEntry, ...]
    mps_root: str
    runtime_class: str
    mig_strategy: str
    gds: bool
    gdrcopy: bool
    origin: dict[str, str] = field(default_factory=dict)
    unknown: dict[str, str] = field(default_factory=dict)


def _image_version(
    section: Mapping[str, object],
    where: str,
    bundled: Version,
    *,
    what: str,
    origin: dict[str, str],
    unknown: dict[str, str],
) -> Version:
    """``version`` (or the tag of ``image``), parsed loosely; the bundled one when absent."""
    text = _opt_str(section, "version", where)
    at = f"{where}.version"
    if not text:
        image = _opt_str(section, "image", where) or ""
        tail = image.rsplit("/", 1)[-1]
        if "@" in tail:
            text = "sha256:"  # pinned by digest
        elif ":" in tail:
            text, at = tail.split(":", 1)[1], f"{where}.image"
    if text and text.startswith("sha256:"):
        origin[what] = f"{bundled}: bundled with the operator (image pinned by digest, version unknown)"
        unknown[what] = f"{where} pins the image by digest; assumed the bundled {bundled}"
        return bundled
    if not text:
        origin[what] = f"{bundled}: bundled with the operator"
        return bundled
    try:
        parsed = Version.parse(text)
    except ValueError as exc:
        raise InputError(at, f"cannot tell the release from {text!r}: {exc}") from None
    origin[what] = f"{parsed} from {at}={text}"
    return parsed


def read_spec(rel: Release, spec: Mapping[str, object], where: str) -> Spec:
    origin: dict[str, str] = {}
    unknown: dict[str, str] = {}
    cdi = child_mapping(spec, "cdi", where)
    toolkit = child_mapping(spec, "toolkit", where)
    plugin = child_mapping(spec, "devicePlugin", where)
    operator = child_mapping(spec, "operator", where)
    cdi_where = f"{where}.cdi"

    enabled = _opt_bool(cdi, "enabled", cdi_where)
    default = _opt_bool(cdi, "default", cdi_where)
    nri = _opt_bool(cdi, "nriPluginEnabled", cdi_where)
    tag = str(rel.version)
    if not rel.cdi_field:
        if cdi:
            origin["cdi.enabled"] = f"false: operator {tag} has no spec.cdi (the API server prunes it)"
        cdi_enabled = False
    elif enabled is None:
        cdi_enabled = bool(rel.cdi_nil_means)
        origin["cdi.enabled"] = (
            f"{str(cdi_enabled).lower()}: absent, and nil means {str(cdi_enabled).lower()} on operator {tag}"
        )
    else:
        cdi_enabled = enabled
        origin["cdi.enabled"] = f"{str(enabled).lower()} from {cdi_where}.enabled"
    cdi_default = False
    if default and rel.cdi_mode_only_if_default:
        cdi_default = True
        origin["cdi.default"] = f"true from {cdi_where}.default"
    elif default:
        origin["cdi.default"] = (
            f"ignored: cdi.default is a no-op on operator {tag}"
            if rel.cdi_field
            else f"ignored: operator {tag} has no spec.cdi"
        )
    nri_on = False
    if nri and not rel.nri_field:
        origin["cdi.nriPluginEnabled"] = f"ignored: operator {tag} < {r.NRI_PLUGIN} has no NRI plugin field"
    elif nri:
        nri_on = True
        origin["cdi.nriPluginEnabled"] = f"true from {cdi_where}.nriPluginEnabled"

    tk_where = f"{where}.toolkit"
    toolkit_enabled = _opt_bool(toolkit, "enabled", tk_where)
    toolkit_enabled = True if toolkit_enabled is None else toolkit_enabled
    if nri_on and not cdi_enabled:
        raise InputError(
            f"{cdi_where}.nriPluginEnabled",
            f"operator {tag} rejects the ClusterPolicy: the NRI Plugin cannot be enabled when CDI is disabled",
        )
    if nri_on and not toolkit_enabled and rel.nri_requires_toolkit:
        raise InputError(
            f"{cdi_where}.nriPluginEnabled",
            f"operator {tag} rejects the ClusterPolicy: the NRI "
            "Plugin cannot be enabled when the Container Toolkit is disabled",
        )
    dp_where = f"{where}.devicePlugin"
    dp_enabled = _opt_bool(plugin, "enabled", dp_where)
    mps = child_mapping(plugin, "mps", dp_where)
    mig = child_mapping(spec, "mig", where)
    return Spec(
        cdi_enabled=cdi_enabled,
        cdi_default=cdi_default,
        nri=nri_on,
        toolkit_enabled=toolkit_enabled,
        toolkit_version=_image_version(
            toolkit, tk_where, rel.toolkit, what="toolkit.version", origin=origin, unknown=unknown
        ),
        toolkit_env=_env_list(toolkit, tk_where),
        install_dir=_opt_str(toolkit, "installDir", tk_where) or DEFAULT_INSTALL_DIR,
        device_plugin_enabled=True if dp_enabled is None else dp_enabled,
        device_plugin_version=_image_version(
            plugin, dp_where, rel.device_plugin, what="devicePlugin.version", origin=origin, unknown=unknown
        ),
        device_plugin_env=_env_list(plugin, dp_where),
        mps_root=_opt_str(mps, "root", f"{dp_where}.mps") or "",
        runtime_class=_opt_str(operator, "runtimeClass", f"{where}.operator") or "nvidia",
        mig_strategy=_opt_str(mig, "strategy", f"{where}.mig") or "",
        gds=bool(_opt_bool(child_mapping(spec, "gds", where), "enabled", f"{where}.gds")),
        gdrcopy=bool(_opt_bool(child_mapping(spec, "gdrcopy", where), "enabled", f"{where}.gdrcopy")),
        origin=origin,
        unknown=unknown,
    )
