"""GPU Operator components and allow-listed tools: they reach all GPUs on purpose.

The operator's operands (driver, toolkit, device plugin, GFD, DCGM and its
exporter, MIG manager, validators, MPS control daemon, node-status-exporter,
sandbox/vGPU managers) run privileged with ``NVIDIA_VISIBLE_DEVICES=all``,
``runtimeClassName: nvidia`` or the NRI management annotation (research §5).
They are recognised, most reliable first, by an owner reference to
``ClusterPolicy``/``NVIDIADriver`` (or to an operand DaemonSet), their ``app``
label, or their service account, and only in a trusted namespace: any of those
can be copied into a manifest elsewhere. The operator Deployment itself and
node-feature-discovery need no GPU, so they are never exempt.
"""

from __future__ import annotations

from gpuguard.model.pod import Container, Pod
from gpuguard.rules.settings import AuditSettings

OWNER_KINDS = frozenset({"ClusterPolicy", "NVIDIADriver"})

# ``app`` label of each operand (also the DaemonSet / validator pod name).
COMPONENT_APPS = frozenset(
    {
        "nvidia-driver-daemonset",
        "nvidia-container-toolkit-daemonset",
        "nvidia-device-plugin-daemonset",
        "nvidia-device-plugin-mps-control-daemon",
        "gpu-feature-discovery",
        "nvidia-dcgm-exporter",
        "nvidia-dcgm",
        "nvidia-mig-manager",
        "nvidia-operator-validator",
        "nvidia-cuda-validator",
        "nvidia-device-plugin-validator",
        "nvidia-node-status-exporter",
        "nvidia-vgpu-manager-daemonset",
        "nvidia-vgpu-device-manager",
        "nvidia-vfio-manager",
        "nvidia-sandbox-device-plugin-daemonset",
        "nvidia-kata-sandbox-device-plugin-daemonset",
        "nvidia-kata-manager",
        "nvidia-cc-manager",
        "nvidia-sandbox-validator",
    }
)
COMPONENT_APP_PREFIXES = ("nvidia-gpu-driver-",)  # NVIDIADriver CR driver DaemonSets

COMPONENT_SERVICE_ACCOUNTS = frozenset(
    {
        "nvidia-driver",
        "nvidia-container-toolkit",
        "nvidia-device-plugin",
        "nvidia-gpu-feature-discovery",
        "nvidia-dcgm-exporter",
        "nvidia-dcgm",
        "nvidia-mig-manager",
        "nvidia-operator-validator",
        "nvidia-node-status-exporter",
        "nvidia-vgpu-manager",
        "nvidia-vgpu-device-manager",
        "nvidia-vfio-manager",
        "nvidia-sandbox-device-plugin",
        "nvidia-kata-sandbox-device-plugin",
        "nvidia-kata-manager",
        "nvidia-cc-manager",
        "nvidia-sandbox-validator",
    }
)


def _namespace(pod: Pod) -> str:
    return pod.workload_namespace or pod.namespace


def component_evidence(pod: Pod) -> str | None:
    """What makes ``pod`` look like a GPU Operator operand, whatever its namespace; None when nothing does."""
    for ref in pod.owner_references:
        if ref.kind in OWNER_KINDS and ref.api_version.startswith("nvidia.com/"):
            return f"owned by {ref.kind} {ref.name}"
        if ref.kind == "DaemonSet" and is_component_app(ref.name):
            return f"owned by operand DaemonSet {ref.name}"
    for labels in (pod.labels, pod.workload_labels):
        app = labels.get("app", "")
        if is_component_app(app):
            return f"label app={app}"
    if pod.service_account in COMPONENT_SERVICE_ACCOUNTS:
        return f"service account {pod.service_account}"
    return None


def is_component_app(name: str) -> bool:
    """Whether an ``app`` label (or operand DaemonSet name) is one of the GPU Operator's components."""
    return name in COMPONENT_APPS or name.startswith(COMPONENT_APP_PREFIXES)


def operator_component(pod: Pod, settings: AuditSettings) -> str | None:
    """The exemption reason when ``pod`` is a GPU Operator operand in a trusted namespace, else None."""
    namespace = _namespace(pod)
    if not settings.is_trusted(namespace):
        return None
    evidence = component_evidence(pod)
    if evidence is None:
        return None
    return f"GPU Operator component ({evidence}, namespace {namespace}): it reaches all GPUs by design"


def exempt_reason(pod: Pod, container: Container | None, settings: AuditSettings) -> str | None:
    """Why ``container`` of ``pod`` (or the pod, with ``container=None``) is exempt, else None."""
    reason = operator_component(pod, settings)
    if reason is not None:
        return reason
    if not settings.allow:
        return None
    labels = {**pod.workload_labels, **pod.labels}
    # A pod-level finding is exempt only when every container of the pod is allowed.
    images = [container.image] if container is not None else [c.image for c in pod.containers] or [""]
    reasons = [settings.allowed(_namespace(pod), pod.service_account, labels, image) for image in images]
    if any(r is None for r in reasons):
        return None
    return f"allow-listed: {reasons[0]}"


def untrusted_component_hint(pod: Pod, settings: AuditSettings) -> str | None:
    """A hint for findings on a pod that looks like an operand outside the trusted namespaces."""
    namespace = _namespace(pod)
    if settings.is_trusted(namespace):
        return None
    evidence = component_evidence(pod)
    if evidence is None:
        return None
    return (
        f"This looks like a GPU Operator component ({evidence}); if {namespace} is the operator's "
        "namespace, add it to the trusted namespaces (rules.trustedNamespaces)."
    )
