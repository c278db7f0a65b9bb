"""Admission policy settings shared by the webhook and every policy export.

One configuration file drives ``gpuguard webhook`` and ``gpuguard policy
export``, so that the same pod gets the same verdict from the webhook, the
Rego, the CEL and the Kyverno policy.
"""

from __future__ import annotations

from dataclasses import dataclass, field

ENFORCE = "enforce"  # deny
WARN = "warn"  # allow, with an admission warning
AUDIT = "audit"  # allow, with an audit annotation
OFF = "off"  # do not check
MODES = (ENFORCE, WARN, AUDIT, OFF)

# Defaults with no configuration file (issue: GG101 is fixed by mutation).
DEFAULT_MODES: dict[str, str] = {
    "GG102": ENFORCE,
    "GG103": ENFORCE,
    "GG104": WARN,
    "GG105": ENFORCE,
    "GG106": ENFORCE,
    "GG107": ENFORCE,
    "GG108": WARN,
}
GPU_OPERATOR_NAMESPACES = ("gpu-operator", "gpu-operator-resources", "nvidia-gpu-operator")


@dataclass(frozen=True, slots=True)
class Exemption:
    """Who may reach GPUs without being judged, and why (a reason is required)."""

    reason: str
    namespaces: tuple[str, ...] = ()
    namespace_labels: tuple[tuple[str, str], ...] = ()
    service_accounts: tuple[str, ...] = ()  # "namespace/name"
    pod_labels: tuple[tuple[str, str], ...] = ()
    images: tuple[str, ...] = ()  # glob patterns


@dataclass(frozen=True, slots=True)
class AdmissionConfig:
    """What the webhook enforces and what the exports express."""

    modes: dict[str, str] = field(default_factory=lambda: dict(DEFAULT_MODES))
    mutate: bool = True  # GG101: set NVIDIA_VISIBLE_DEVICES=void on containers that request no GPU
    trusted_namespaces: tuple[str, ...] = GPU_OPERATOR_NAMESPACES  # may use NVIDIA runtime classes (GG105)
    runtime_handlers: tuple[str, ...] = ("nvidia", "nvidia-cdi", "nvidia-legacy")
    cdi_annotation_prefixes: tuple[str, ...] = ("cdi.k8s.io/", "nvidia.cdi.k8s.io/")
    deny_unknown_env_refs: bool = False  # GG108 on env values from ConfigMaps/Secrets the webhook cannot see
    exemptions: tuple[Exemption, ...] = ()
    max_body_bytes: int = 3 * 1024 * 1024
    timeout_seconds: float = 10.0
    failure_policy: str = "Fail"  # what an image lookup that times out falls back to: "Fail" denies, "Ignore" allows
    resolve_images: bool = False  # image inspection is off unless configured: no network by default

    def mode(self, rule_id: str) -> str:
        return self.modes.get(rule_id, OFF)
