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
LOOKUP_MARGIN = 2.0  # seconds of timeoutSeconds kept for judging and answering after image lookups
IMAGE_PLATFORM = "linux/amd64"


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
    # images: how the webhook inspects images when resolve_images is on (gpuguard audit --resolve-images alike)
    registry_auth: tuple[str, ...] = ()  # docker config.json files with registry credentials
    insecure_registries: tuple[str, ...] = ()  # HOST[:PORT] spoken to over plain HTTP
    ca_file: str | None = None  # extra CA bundle for registries
    image_cache_dir: str | None = None  # the resolver's disk cache; default $XDG_CACHE_HOME/gpuguard
    image_platform: str = IMAGE_PLATFORM  # the platform of multi-platform images
    lookup_timeout_seconds: float | None = None  # None: timeout_seconds minus LOOKUP_MARGIN (see lookup_timeout)

    def lookup_timeout(self) -> float:
        """Seconds a review may spend on image lookups: what is configured, else the timeout less a margin."""
        if self.lookup_timeout_seconds is not None:
            return self.lookup_timeout_seconds
        return max(self.timeout_seconds - LOOKUP_MARGIN, self.timeout_seconds / 2)

    def mode(self, rule_id: str) -> str:
        return self.modes.get(rule_id, OFF)
