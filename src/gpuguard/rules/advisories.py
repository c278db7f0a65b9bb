"""GG301: known advisories of the NVIDIA Container Toolkit, the device plugin and the GPU Operator.

The data is copied from the research notes' ``advisories.json`` (section 6) so
the package stands alone. An advisory is matched on the version that really
runs (the toolkit image the profile resolved, which may differ from the one
the operator bundles), then on the runtime modes the node can reach: the
default handler's mode, the modes RuntimeClasses force (nvidia-legacy,
nvidia-cdi), cri-o's hook (legacy) and the container runtime's own CDI
injection (cdi). CVE-2024-0132, for instance, does not affect CDI mode.
One finding per node lists every advisory in range and says which apply.
"""

from __future__ import annotations

from dataclasses import dataclass

from gpuguard.model.decision import Step
from gpuguard.model.finding import Finding, Location, Resource, Severity
from gpuguard.model.node import NodeProfile
from gpuguard.model.version import Version, v
from gpuguard.rules.node import node_facts
from gpuguard.rules.registry import rule

TOOLKIT = "toolkit"
DEVICE_PLUGIN = "device-plugin"


@dataclass(frozen=True, slots=True)
class Advisory:
    """One advisory: affected ``[since, fixed)`` per component, the modes it needs, and what to do."""

    id: str
    summary: str
    severity: Severity
    score: str  # CVSS text as published, or "no CVE"
    component: str  # TOOLKIT or DEVICE_PLUGIN: whose version is matched
    fixed: Version  # first fixed release of the component
    since: Version | None = None  # first affected release (None: every earlier release)
    operator_fixed: Version | None = None  # first GPU Operator release that ships the fix
    modes: tuple[str, ...] = ()  # runtime modes affected; () means unknown, i.e. any
    legacy_since: Version | None = None  # legacy mode affected only from this release on
    mitigation: str = ""
    references: tuple[str, ...] = ()
    confidence: str = ""  # set when the data is not confirmed by NVIDIA

    def in_range(self, version: Version) -> bool:
        return version < self.fixed and (self.since is None or version >= self.since)

    def affected_modes(self, version: Version) -> tuple[str, ...]:
        if self.legacy_since is not None and version < self.legacy_since:
            return tuple(m for m in self.modes if m != "legacy")
        return self.modes


_B5582 = "https://nvidia.custhelp.com/app/answers/detail/a_id/5582"
_B5599 = "https://nvidia.custhelp.com/app/answers/detail/a_id/5599"
_B5659 = "https://nvidia.custhelp.com/app/answers/detail/a_id/5659"
_UPGRADE_1_17_3 = (
    "keep nvidia-container-cli.ldconfig '@'-prefixed (host-relative) and do not set "
    "features.allow-ldconfig-from-container"
)

ADVISORIES: tuple[Advisory, ...] = (
    Advisory(
        "CVE-2024-0132",
        "TOCTOU race in the default (non-CDI) injection path: a crafted image can reach the host filesystem",
        Severity.CRITICAL, "CVSS 9.0", TOOLKIT, v("1.16.2"), operator_fixed=v("24.6.2"), modes=("legacy",),
        mitigation="use CDI-based injection; restrict which images run on GPU nodes",
        references=(_B5582,),
    ),
    Advisory(
        "CVE-2024-0133",
        "race in the default mode lets a crafted image create empty files on the host",
        Severity.MEDIUM, "CVSS 4.1", TOOLKIT, v("1.16.2"), operator_fixed=v("24.6.2"), modes=("legacy",),
        references=(_B5582,),
    ),
    Advisory(
        "CVE-2024-0134",
        "symlinks created at container start can point outside the container root: files created on the host",
        Severity.MEDIUM, "CVSS 4.1", TOOLKIT, v("1.17.0"), operator_fixed=v("24.9.0"), modes=("legacy", "cdi"),
        references=("https://nvidia.custhelp.com/app/answers/detail/a_id/5585",),
    ),
    Advisory(
        "CVE-2024-0135",
        "improper isolation: a crafted image can modify a host binary (code execution on the host)",
        Severity.HIGH, "CVSS 7.6", TOOLKIT, v("1.17.3"), operator_fixed=v("24.9.1"), modes=("legacy",),
        mitigation=_UPGRADE_1_17_3, references=(_B5599,),
    ),
    Advisory(
        "CVE-2024-0136",
        "improper isolation with a non-default config: read/write access to host devices",
        Severity.HIGH, "CVSS 7.6", TOOLKIT, v("1.17.3"), operator_fixed=v("24.9.1"), modes=("legacy",),
        mitigation=_UPGRADE_1_17_3, references=(_B5599,),
    ),
    Advisory(
        "CVE-2024-0137",
        "improper isolation with a non-default config: code in the host's network namespace",
        Severity.MEDIUM, "CVSS 5.5", TOOLKIT, v("1.17.3"), operator_fixed=v("24.9.1"), modes=("legacy",),
        mitigation=_UPGRADE_1_17_3, references=(_B5599,),
    ),
    Advisory(
        "CVE-2025-23359",
        "second TOCTOU race in the default mode (bypasses the CVE-2024-0132 fix): host filesystem access",
        Severity.HIGH, "CVSS 8.3", TOOLKIT, v("1.17.4"), operator_fixed=v("24.9.2"), modes=("legacy",),
        mitigation="never opt in to features.allow-cuda-compat-libs-from-container (it re-opens the hole)",
        references=("https://nvidia.custhelp.com/app/answers/detail/a_id/5616",),
    ),
    Advisory(
        "CVE-2025-23266",
        "'NVIDIAScape': OCI hooks ran with the image's env, so LD_PRELOAD in an image runs code as root on the host",
        Severity.CRITICAL, "CVSS 9.0", TOOLKIT, v("1.17.8"), operator_fixed=v("25.3.1"),
        modes=("legacy", "cdi", "jit-cdi"), legacy_since=v("1.17.5"),
        mitigation=(
            "interim, legacy mode: NVIDIA_CONTAINER_TOOLKIT_OPT_IN_FEATURES=disable-cuda-compat-lib-hook; CDI: "
            "specs without the enable-cuda-compat hook (the reporter says the flag can be bypassed, "
            "toolkit#1208: upgrade)"
        ),
        references=(_B5659, "https://github.com/NVIDIA/nvidia-container-toolkit/issues/1208"),
    ),
    Advisory(
        "CVE-2025-23267",
        "the update-ldcache hook follows a symlink from a crafted image: host data tampering or denial of service",
        Severity.HIGH, "CVSS 8.5", TOOLKIT, v("1.17.8"), operator_fixed=v("25.3.1"),
        modes=("legacy", "cdi", "jit-cdi"), legacy_since=v("1.17.5"), references=(_B5659,),
    ),
    Advisory(
        "CVE-2026-24260",
        "TOCTOU race in the toolkit (third-party description; versions inferred from the toolkit's history)",
        Severity.MEDIUM, "severity not published", TOOLKIT, v("1.19.1"), operator_fixed=v("26.3.2"),
        mitigation="verify against NVIDIA's bulletin",
        references=("https://github.com/NVIDIA/nvidia-container-toolkit/releases/tag/v1.19.1",),
        confidence="low: affected and fixed versions are inferred, not confirmed by NVIDIA",
    ),
    Advisory(
        "NCT-BUG-VISIBLE-DEVICES-NONE",
        "NVIDIA_VISIBLE_DEVICES=none gave the container every GPU in (jit-)CDI mode",
        Severity.HIGH, "no CVE", TOOLKIT, v("1.18.2"), since=v("1.18.0"), operator_fixed=v("26.3.0"),
        modes=("cdi", "jit-cdi"),
        mitigation="use NVIDIA_VISIBLE_DEVICES=void, never none, on non-GPU containers",
        references=("https://docs.nvidia.com/datacenter/cloud-native/container-toolkit/latest/release-notes.html",),
    ),
    Advisory(
        "GPUOP-BUG-26.3-DP-FEATURE-FLAGS",
        "GDS/MOFED/GDRCopy injection on by default: every ibverbs device node injected into GPU containers",
        Severity.MEDIUM, "no CVE", DEVICE_PLUGIN, v("0.19.3"), since=v("0.19.0"), operator_fixed=v("26.3.3"),
        mitigation="devicePlugin.env MOFED_ENABLED=false, GDS_ENABLED=false, GDRCOPY_ENABLED=false when not needed",
        references=("https://github.com/NVIDIA/k8s-device-plugin/releases/tag/v0.19.3",),
    ),
)  # fmt: skip


def runtime_modes(node: NodeProfile) -> dict[str, str]:
    """Toolkit modes a container on this node can run in, each with how it is reached."""
    facts = node_facts(node)
    runtime = node.runtime
    classes = set(node.runtime_classes.values())
    modes: dict[str, str] = {}
    for name, handler in runtime.handlers.items():
        if not handler.nvidia or (name != runtime.default_handler and name not in classes):
            continue
        how = "the default runtime" if name == runtime.default_handler else f"runtime class handler {name}"
        modes.setdefault(handler.mode or facts.default_mode, how)
    if runtime.oci_hook_all:
        modes.setdefault("legacy", "cri-o's OCI hook")
    plugin = node.device_plugin
    cdi_devices = plugin is not None and any(s.startswith("cdi-") for s in plugin.list_strategies)
    if runtime.enable_cdi and (cdi_devices or node.nri.enabled):
        modes.setdefault("cdi", "the container runtime's CDI injection")
    return modes


def _version_of(node: NodeProfile, advisory: Advisory) -> Version | None:
    if advisory.component == DEVICE_PLUGIN:
        plugin = node.device_plugin
        if plugin is None or not (plugin.gds or plugin.mofed or plugin.gdrcopy):
            return None  # the regression needs one of the injections on
        return plugin.version
    if "toolkit.config" in node.unknown:
        return None  # host-installed toolkit: its release is not known
    return node.toolkit.version


def check_advisories(node: NodeProfile, resource: Resource | None, location: Location | None) -> list[Finding]:
    """GG301: one finding listing the advisories in range, the ones that apply in this node's modes first."""
    modes = runtime_modes(node)
    applies: list[Advisory] = []
    not_here: list[Advisory] = []
    steps: list[Step] = []
    for advisory in ADVISORIES:
        version = _version_of(node, advisory)
        if version is None or not advisory.in_range(version):
            continue
        affected = advisory.affected_modes(version)
        reach = [m for m in affected if m in modes] if affected else list(modes) or ["any"]
        read = f"{advisory.component} {version} < {advisory.fixed}"
        if reach:
            applies.append(advisory)
            how = "; ".join(f"{m} via {modes[m]}" if m in modes else m for m in reach)
            steps.append(Step("GG301", read, f"{advisory.id} applies ({how})"))
        else:
            not_here.append(advisory)
            steps.append(
                Step("GG301", read, f"{advisory.id} affects only {', '.join(affected)} mode; this node runs "
                     f"{', '.join(modes) or 'no NVIDIA runtime'}")
            )  # fmt: skip
    if not applies and not not_here:
        return []
    info = rule("GG301")
    severity = max((a.severity for a in applies), default=Severity.INFO)
    return [
        Finding(
            rule_id=info.id,
            severity=severity,
            message=_message(node, applies, not_here, modes),
            remediation=_remedy(node, applies or not_here),
            resource=resource,
            location=location,
            trail=tuple(steps),
        )
    ]


def _name(a: Advisory) -> str:
    low = " (low confidence)" if a.confidence else ""
    return f"{a.id} ({a.severity.label}, {a.score}{low}: {a.summary}; fixed in {a.component} {a.fixed})"


def _message(node: NodeProfile, applies: list[Advisory], not_here: list[Advisory], modes: dict[str, str]) -> str:
    release = f"toolkit {node.toolkit.version}"
    if node.operator_version is not None:
        release += f" (GPU Operator {node.operator_version})"
    count = len(applies) + len(not_here)
    parts = [f"{release}: {count} known {'advisory' if count == 1 else 'advisories'} in range"]
    if applies:
        parts.append(f"apply here: {'; '.join(_name(a) for a in applies)}")
    if not_here:
        shown = ", ".join(modes) or "none"
        parts.append(f"not in this node's runtime modes ({shown}): {', '.join(a.id for a in not_here)}")
    return ". ".join(parts) + "."


def _remedy(node: NodeProfile, advisories: list[Advisory]) -> str:
    toolkit = [a.fixed for a in advisories if a.component == TOOLKIT]
    plugin = [a.fixed for a in advisories if a.component == DEVICE_PLUGIN]
    operator = [a.operator_fixed for a in advisories if a.operator_fixed is not None]
    targets = []
    if toolkit:
        targets.append(f"the toolkit to {max(toolkit)} or later")
    if plugin:
        targets.append(f"the device plugin to {max(plugin)} or later")
    text = "Upgrade " + " and ".join(targets)
    if node.operator_version is not None and operator:
        text += f" (GPU Operator {max(operator)} or later ships them)"
    text += "."
    interim = [f"{a.id}: {a.mitigation}" for a in advisories if a.mitigation]
    if interim:
        text += " Until then: " + "; ".join(interim) + "."
    return text
