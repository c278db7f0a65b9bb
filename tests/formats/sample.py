"""Reports built by hand for the format tests: every kind of entry a format must render."""

from __future__ import annotations

from gpuguard.model.decision import Step
from gpuguard.model.finding import Exempt, Finding, Location, ReadError, Resource, RuleInfo, Severity
from gpuguard.model.report import ProfileSummary, Report, Suppression

NOTEBOOK = Resource("apps/v1", "Deployment", "research", "notebook")
TRAINER = Resource("batch/v1", "Job", "ml", "trainer")
CLUSTER_POLICY = Resource("nvidia.com/v1", "ClusterPolicy", None, "cluster-policy")
OPERATOR = Resource("apps/v1", "DaemonSet", "gpu-operator", "nvidia-device-plugin-daemonset")

RULES = (
    RuleInfo(
        id="GG101",
        title="GPU visible without request",
        severity=Severity.CRITICAL,
        rationale="A container that requests no GPU sees every GPU on the node.",
        remediation="Set NVIDIA_VISIBLE_DEVICES=void in the container.",
        references=("https://docs.nvidia.com/datacenter/cloud-native/container-toolkit/",),
    ),
    RuleInfo(
        id="GG102",
        title="Privileged GPU container",
        severity=Severity.HIGH,
        rationale="Privileged containers get every host device node.",
        remediation="Drop privileged: true.",
    ),
    RuleInfo(
        id="GG201",
        title="Envvar accepted when unprivileged",
        severity=Severity.HIGH,
        rationale="The toolkit honours NVIDIA_VISIBLE_DEVICES from unprivileged containers.",
        remediation="Set accept-nvidia-visible-devices-envvar-when-unprivileged = false.",
        scope="node",
    ),
    RuleInfo(
        id="GG150",
        title="Image env not inspected",
        severity=Severity.MEDIUM,
        rationale="The image may set NVIDIA_VISIBLE_DEVICES.",
        remediation="Pass --image-env or set the variable in the manifest.",
    ),
    RuleInfo(
        id="GG301",
        title="Old device plugin",
        severity=Severity.LOW,
        rationale="Older device plugins pass device ids by envvar.",
        remediation="Upgrade the device plugin.",
        scope="node",
    ),
    RuleInfo(
        id="GG302",
        title="Informational note",
        severity=Severity.INFO,
        rationale="For information.",
        remediation="Nothing to do.",
        scope="node",
    ),
    RuleInfo(id="GG199", title="Rule with no findings", severity=Severity.HIGH, rationale="r", remediation="x"),
)

TRAIL = (
    Step("k8s.request", "resources.limits: none", "no GPU requested"),
    Step("toolkit.envvar", "NVIDIA_VISIBLE_DEVICES=all (image)", "all GPUs"),
)

FINDINGS = (
    Finding(
        rule_id="GG101",
        severity=Severity.CRITICAL,
        message="Container sees all GPUs without requesting one.",
        remediation="Set NVIDIA_VISIBLE_DEVICES=void in the container.",
        resource=NOTEBOOK,
        container="jupyter",
        location=Location("deploy/research.yaml", 12),
        trail=TRAIL,
    ),
    Finding(
        rule_id="GG102",
        severity=Severity.HIGH,
        message="Privileged container gets every host device.",
        remediation="Drop privileged: true.",
        resource=NOTEBOOK,
        container="sidecar",
        location=Location("deploy/research.yaml", 12),
    ),
    Finding(
        rule_id="GG150",
        severity=Severity.MEDIUM,
        message="Image env of trainer:1.0 was not inspected.",
        remediation="Pass --image-env.",
        resource=TRAINER,
        container="train",
        location=Location("jobs/train job.yaml", 3),
    ),
    Finding(
        rule_id="GG201",
        severity=Severity.HIGH,
        message="The toolkit accepts NVIDIA_VISIBLE_DEVICES from unprivileged containers.",
        remediation="Set accept-nvidia-visible-devices-envvar-when-unprivileged = false.",
        resource=CLUSTER_POLICY,
        location=Location("deploy/gpu-operator.yaml", 1),
    ),
    Finding(
        rule_id="GG301",
        severity=Severity.LOW,
        message="Device plugin v0.14 passes device ids by envvar.",
        remediation="Upgrade the device plugin.",
        location=Location("--operator-version"),
    ),
    Finding(
        rule_id="GG302",
        severity=Severity.INFO,
        message="CDI mode is off.",
        remediation="Nothing to do.",
    ),
)

EXEMPT = (
    Exempt(
        resource=OPERATOR,
        container="nvidia-device-plugin",
        reason="GPU Operator component",
        location=Location("deploy/gpu-operator.yaml", 40),
        rule_ids=("GG101", "GG102"),
    ),
    Exempt(resource=Resource("v1", "Pod", "ops", "nvidia-smi"), container=None, reason="allow-listed tool"),
)

ERRORS = (ReadError("deploy/broken.yaml:7: mapping values are not allowed here", Location("deploy/broken.yaml", 7)),)

PROFILE = ProfileSummary(
    source="ClusterPolicy cluster-policy (deploy/gpu-operator.yaml:1)",
    operator_version="25.3.4",
    toolkit_version="1.17.8",
    device_plugin_version="0.17.0",
    settings={"accept-nvidia-visible-devices-envvar-when-unprivileged": "true", "mode": "legacy"},
)

ASSUMED_PROFILE = ProfileSummary(
    source="nothing given: most exposed common configuration",
    operator_version=None,
    toolkit_version="1.17.8",
    device_plugin_version=None,
    assumed=True,
    notes=("12 images assumed to set NVIDIA_VISIBLE_DEVICES=all",),
)


def full_report(profile: ProfileSummary = PROFILE) -> Report:
    return Report(
        profile=profile,
        findings=FINDINGS,
        exempt=EXEMPT,
        errors=ERRORS,
        suppressions=(Suppression(("GG150",), "images checked by hand", ".gpuguardignore:3", matched=2),),
        suppressed=2,
        rules=RULES,
        objects=9,
        skipped_kinds={"Service": 2, "ConfigMap": 1},
        files=4,
    )


def empty_report() -> Report:
    return Report(profile=PROFILE, rules=RULES[:1], objects=1, files=1)
