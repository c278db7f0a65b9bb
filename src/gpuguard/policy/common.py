"""What every export shares: rule selection by mode, the unexpressed-rules annotation, YAML output."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

import yaml

from gpuguard.model.admission import AUDIT, ENFORCE, WARN, AdmissionConfig
from gpuguard.rules.exempt import COMPONENT_APPS, COMPONENT_SERVICE_ACCOUNTS, OWNER_KINDS
from gpuguard.rules.registry import rule

NVD = "NVIDIA_VISIBLE_DEVICES"
VALIDATED = ("GG102", "GG103", "GG104", "GG105", "GG106", "GG107")
AMOUNT_RESOURCES = ("nvidia.com/gpumem", "nvidia.com/gpumem-percentage", "nvidia.com/gpucores", "nvidia.com/priority")
SAFE_VALUES = ("void", "none", "")
MOUNT_ROOT = "/var/run/nvidia-container-devices"
# hostPath paths that hold GPU device nodes (GG103): /, /dev, /dev/dri and below, /dev/nvidia*.
DEVICE_PATH_RE = r"^/+(dev(/+dri)?/*|dev/+nvidia.*|dev/+dri/+.+)?$"
DEV_NULL_RE = r"^/+dev/+null/*$"
FORGED_MOUNT_RE = r"^/+var/+run/+nvidia-container-devices(/.*)?$"
ANNOTATION = "gpuguard.io/unexpressed-rules"
LABELS = {"app.kubernetes.io/managed-by": "gpuguard"}
# Why each rule is not (or only partly) expressed by a policy engine.
IMAGE_ENV = "GG108"  # image env (and env from ConfigMaps/Secrets) needs a lookup no policy engine makes here
COMPONENTS = (sorted(COMPONENT_APPS), sorted(COMPONENT_SERVICE_ACCOUNTS), sorted(OWNER_KINDS))
ACTIONS = {ENFORCE: "enforce", WARN: "warn", AUDIT: "audit"}


def groups(config: AdmissionConfig) -> list[tuple[str, tuple[str, ...]]]:
    """(mode, validated rule ids in that mode), for enforce, warn and audit; off rules are omitted."""
    out = []
    for mode in (ENFORCE, WARN, AUDIT):
        ids = tuple(r for r in VALIDATED if config.mode(r) == mode)
        if ids:
            out.append((mode, ids))
    return out


def unexpressed(config: AdmissionConfig, also: Iterable[str] = ()) -> str:
    """The annotation value: rules on in ``config`` (or fixed by mutation) that the export cannot express."""
    ids = {IMAGE_ENV} if config.mode(IMAGE_ENV) != "off" or config.deny_unknown_env_refs else set()
    ids.update(also)
    return ",".join(sorted(ids))


def policy_annotations(config: AdmissionConfig, also: Iterable[str] = (), note: str = "") -> dict[str, str]:
    out = {ANNOTATION: unexpressed(config, also)}
    if note:
        out["gpuguard.io/note"] = note
    return out


def title(rule_id: str) -> str:
    return rule(rule_id).title


def glob_re(pattern: str) -> str:
    """A shell glob over image references as an RE2 regex (``*`` crosses ``/`` and ``:``)."""
    return "^" + ".*".join(re.escape(part) for part in pattern.lower().split("*")) + "$"


class _Dumper(yaml.SafeDumper):
    def ignore_aliases(self, data: Any) -> bool:
        return True


def _str(dumper: yaml.SafeDumper, value: str) -> Any:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str)


def dump(docs: Iterable[dict[str, Any]]) -> str:
    """Multi-document YAML, keys in the order written."""
    return yaml.dump_all(list(docs), Dumper=_Dumper, sort_keys=False, explicit_start=True, width=4096)
