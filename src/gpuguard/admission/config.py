"""The admission configuration file: one YAML mapping, checked against a small schema.

The webhook reads it on start and again whenever it changes, so every error
names the field (``modes.GG103: expected one of enforce, warn, audit, off``)
and a bad file can be refused while the old settings keep serving. Keys are
camelCase like the rest of gpuguard's inputs; absent keys keep the defaults
of :class:`~gpuguard.model.admission.AdmissionConfig`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from gpuguard.model.admission import DEFAULT_MODES, MODES, OFF, AdmissionConfig, Exemption
from gpuguard.model.errors import InputError, type_name

RULE_IDS = ("GG101", *DEFAULT_MODES)  # GG101 may be given a mode too (it is fixed by mutation by default)
FAILURE_POLICIES = ("Fail", "Ignore")

_KEYS = {
    "modes": "a mapping of rule id to mode",
    "mutate": "true or false",
    "trustedNamespaces": "a list of namespaces",
    "runtimeHandlers": "a list of handler names",
    "cdiAnnotationPrefixes": "a list of annotation prefixes",
    "denyUnknownEnvRefs": "true or false",
    "exemptions": "a list of exemptions",
    "maxBodyBytes": "a positive integer",
    "timeoutSeconds": "a number from 1 to 30",
    "failurePolicy": "Fail or Ignore",
    "resolveImages": "true or false (shorthand for images.resolve)",
    "images": "a mapping: image inspection settings",
}
_IMAGE_KEYS = ("resolve", "registryAuth", "insecureRegistries", "caFile", "cacheDir", "platform",
               "lookupTimeoutSeconds")  # fmt: skip
_EXEMPTION_KEYS = ("reason", "namespaces", "namespaceLabels", "serviceAccounts", "podLabels", "images")


def load_admission_config(doc: object, where: str = "") -> AdmissionConfig:
    """``AdmissionConfig`` from a parsed YAML document (None or {} means the defaults).

    Raises ``InputError`` naming the first bad field.
    """
    if doc is None:
        return AdmissionConfig()
    if not isinstance(doc, Mapping):
        raise InputError(where or "config", f"expected a mapping, got {type_name(doc)}")
    for key in doc:
        if key not in _KEYS:
            raise InputError(_at(where, str(key)), f"unknown key (expected one of {', '.join(_KEYS)})")
    defaults = AdmissionConfig()
    timeout = _number(doc, "timeoutSeconds", where, defaults.timeout_seconds, low=1, high=30)
    images = _images(doc, where, timeout)
    return AdmissionConfig(
        modes=_modes(doc.get("modes"), _at(where, "modes")),
        mutate=_bool(doc, "mutate", where, defaults.mutate),
        trusted_namespaces=_strings(doc, "trustedNamespaces", where, defaults.trusted_namespaces),
        runtime_handlers=_strings(doc, "runtimeHandlers", where, defaults.runtime_handlers),
        cdi_annotation_prefixes=_strings(doc, "cdiAnnotationPrefixes", where, defaults.cdi_annotation_prefixes),
        deny_unknown_env_refs=_bool(doc, "denyUnknownEnvRefs", where, defaults.deny_unknown_env_refs),
        exemptions=_exemptions(doc.get("exemptions"), _at(where, "exemptions")),
        max_body_bytes=_int(doc, "maxBodyBytes", where, defaults.max_body_bytes, low=1024, high=64 * 1024 * 1024),
        timeout_seconds=timeout,
        failure_policy=_choice(doc, "failurePolicy", where, defaults.failure_policy, FAILURE_POLICIES),
        **images,
    )


def _images(doc: Mapping[str, Any], where: str, timeout: float) -> dict[str, Any]:
    """The ``images`` section (and the ``resolveImages`` shorthand) as AdmissionConfig fields."""
    defaults = AdmissionConfig()
    shorthand = _bool(doc, "resolveImages", where, defaults.resolve_images)
    at = _at(where, "images")
    section = doc.get("images")
    if section is None:
        return {"resolve_images": shorthand}
    if not isinstance(section, Mapping):
        raise InputError(at, f"expected a mapping of image inspection settings, got {type_name(section)}")
    for key in section:
        if key not in _IMAGE_KEYS:
            raise InputError(f"{at}.{key}", f"unknown key (expected one of {', '.join(_IMAGE_KEYS)})")
    resolve = _bool(section, "resolve", at, shorthand)
    if "resolve" in section and doc.get("resolveImages") is not None and resolve != shorthand:
        raise InputError(_at(where, "resolveImages"), "contradicts images.resolve (give only images.resolve)")
    lookup = _number(section, "lookupTimeoutSeconds", at, 0.0, low=0.1, high=30)
    if section.get("lookupTimeoutSeconds") is not None and lookup >= timeout:
        raise InputError(f"{at}.lookupTimeoutSeconds", f"expected less than timeoutSeconds ({timeout:g}): the "
                         "review must still be judged and answered after the lookups")  # fmt: skip
    platform = section.get("platform", defaults.image_platform)
    parts = platform.split("/") if isinstance(platform, str) else []
    if len(parts) not in (2, 3) or not all(p.strip() and p == p.strip() for p in parts):
        raise InputError(f"{at}.platform", f"expected os/arch[/variant] (e.g. linux/amd64), got {platform!r}")
    return {
        "resolve_images": resolve,
        "registry_auth": _strings(section, "registryAuth", at, ()),
        "insecure_registries": _strings(section, "insecureRegistries", at, ()),
        "ca_file": _path(section, "caFile", at),
        "image_cache_dir": _path(section, "cacheDir", at),
        "image_platform": platform,
        "lookup_timeout_seconds": lookup if section.get("lookupTimeoutSeconds") is not None else None,
    }


def _path(doc: Mapping[str, Any], key: str, where: str) -> str | None:
    value = doc.get(key)
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        raise InputError(_at(where, key), f"expected a path (a non-empty string), got {type_name(value)}")
    return value.strip()


def _at(where: str, key: str) -> str:
    return f"{where}.{key}" if where else key


def _modes(value: object, where: str) -> dict[str, str]:
    modes = dict(DEFAULT_MODES)
    if value is None:
        return modes
    if not isinstance(value, Mapping):
        raise InputError(where, f"expected a mapping of rule id to mode, got {type_name(value)}")
    for rule_id, mode in value.items():
        at = f"{where}.{rule_id}"
        if rule_id not in RULE_IDS:
            raise InputError(at, f"unknown rule (expected one of {', '.join(RULE_IDS)})")
        if mode is False:
            mode = OFF  # noqa: PLW2901 - YAML 1.1 reads a bare `off` as false; that is what was meant
        if mode not in MODES:
            raise InputError(at, f"expected one of {', '.join(MODES)}")
        modes[rule_id] = mode
    return modes


def _bool(doc: Mapping[str, Any], key: str, where: str, default: bool) -> bool:
    value = doc.get(key)
    if value is None:
        return default
    if not isinstance(value, bool):
        raise InputError(_at(where, key), f"expected true or false, got {type_name(value)}")
    return value


def _int(doc: Mapping[str, Any], key: str, where: str, default: int, *, low: int, high: int) -> int:
    value = doc.get(key)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise InputError(_at(where, key), f"expected an integer from {low} to {high}, got {value!r}")
    return value


def _number(doc: Mapping[str, Any], key: str, where: str, default: float, *, low: float, high: float) -> float:
    value = doc.get(key)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
        raise InputError(_at(where, key), f"expected a number from {low:g} to {high:g}, got {value!r}")
    return float(value)


def _choice(doc: Mapping[str, Any], key: str, where: str, default: str, choices: tuple[str, ...]) -> str:
    value = doc.get(key)
    if value is None:
        return default
    if value not in choices:
        raise InputError(_at(where, key), f"expected one of {', '.join(choices)}")
    return str(value)


def _string_list(value: object, where: str) -> tuple[str, ...]:
    if not isinstance(value, list | tuple):
        raise InputError(where, f"expected a list of strings, got {type_name(value)}")
    out = []
    for i, item in enumerate(value):
        if not isinstance(item, str) or not item.strip():
            raise InputError(f"{where}[{i}]", f"expected a non-empty string, got {type_name(item)}")
        out.append(item.strip())
    return tuple(out)


def _strings(doc: Mapping[str, Any], key: str, where: str, default: tuple[str, ...]) -> tuple[str, ...]:
    value = doc.get(key)
    return default if value is None else _string_list(value, _at(where, key))


def _labels(value: object, where: str) -> tuple[tuple[str, str], ...]:
    if value is None:
        return ()
    if not isinstance(value, Mapping):
        raise InputError(where, f"expected a mapping of label to value, got {type_name(value)}")
    out = []
    for k, v in value.items():
        if not isinstance(k, str) or not isinstance(v, str):
            raise InputError(f"{where}.{k}", f"expected a string value (quote it), got {type_name(v)}")
        out.append((k, v))
    return tuple(out)


def _exemptions(value: object, where: str) -> tuple[Exemption, ...]:
    if value is None:
        return ()
    if not isinstance(value, list | tuple):
        raise InputError(where, f"expected a list of exemptions, got {type_name(value)}")
    out = []
    for i, entry in enumerate(value):
        at = f"{where}[{i}]"
        if not isinstance(entry, Mapping):
            raise InputError(at, f"expected a mapping, got {type_name(entry)}")
        for key in entry:
            if key not in _EXEMPTION_KEYS:
                raise InputError(f"{at}.{key}", f"unknown key (expected one of {', '.join(_EXEMPTION_KEYS)})")
        reason = entry.get("reason")
        if not isinstance(reason, str) or not reason.strip():
            raise InputError(f"{at}.reason", "required: say why these workloads may reach GPUs")
        accounts = _strings(entry, "serviceAccounts", at, ())
        for j, account in enumerate(accounts):
            if account.count("/") != 1 or account.startswith("/") or account.endswith("/"):
                raise InputError(f"{at}.serviceAccounts[{j}]", f"expected namespace/name, got {account!r}")
        exemption = Exemption(
            reason=reason.strip(),
            namespaces=_strings(entry, "namespaces", at, ()),
            namespace_labels=_labels(entry.get("namespaceLabels"), f"{at}.namespaceLabels"),
            service_accounts=accounts,
            pod_labels=_labels(entry.get("podLabels"), f"{at}.podLabels"),
            images=_strings(entry, "images", at, ()),
        )
        if not (exemption.namespaces or exemption.namespace_labels or exemption.service_accounts
                or exemption.pod_labels or exemption.images):  # fmt: skip
            raise InputError(at, "an exemption must name namespaces, namespaceLabels, serviceAccounts, podLabels "
                             "or images")  # fmt: skip
        out.append(exemption)
    return tuple(out)
