"""Probe and control Pod manifests, the parser of their log and the per-node verdict.

The probe requests no GPU but sets ``NVIDIA_VISIBLE_DEVICES=all`` on a CUDA-style
image: on a hardened node it must see no GPU.  The control requests exactly one
``nvidia.com/gpu`` and must see exactly one (proves the probe's image and node
can show GPUs at all).  Each prints a report between markers on stdout, read
back from the pod log (no exec).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

DEFAULT_IMAGE = "nvcr.io/nvidia/cuda:12.4.1-base-ubuntu22.04"
BEGIN = "=== gpuguard-verify begin ==="
END = "=== gpuguard-verify end ==="
SECTIONS = ("nvidia-smi", "dev", "proc")

SCRIPT = (
    f'echo "{BEGIN}"; '
    'echo "--- nvidia-smi"; if command -v nvidia-smi >/dev/null 2>&1; then nvidia-smi -L 2>&1; '
    'echo "rc=$?"; else echo "rc=missing"; fi; '
    'echo "--- dev"; ls -1 /dev/nvidia* 2>/dev/null; '
    'echo "--- proc"; ls -1 /proc/driver/nvidia/gpus 2>/dev/null; '
    f'echo "{END}"'
)

_GPU_LINE = re.compile(r"^GPU \d+: ")
_DEV_GPU = re.compile(r"^/dev/nvidia\d+$")


@dataclass(frozen=True, slots=True)
class ProbeOptions:
    image: str = DEFAULT_IMAGE
    namespace: str = "gpuguard-verify"
    tolerations: Sequence[Mapping[str, str]] = ()
    node_selector: Mapping[str, str] = field(default_factory=dict)


def namespace_manifest(name: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Namespace",
            "metadata": {"name": name, "labels": {"app.kubernetes.io/managed-by": "gpuguard-verify"}}}


def _pod(name: str, node: str, role: str, options: ProbeOptions, gpus: int) -> dict[str, Any]:
    container: dict[str, Any] = {
        "name": role, "image": options.image, "command": ["/bin/sh", "-c", SCRIPT],
        "resources": {"limits": {"nvidia.com/gpu": str(gpus)}} if gpus else {"limits": {"cpu": "100m",
                                                                                       "memory": "64Mi"}},
        "securityContext": {"allowPrivilegeEscalation": False, "privileged": False},
    }
    if not gpus:
        container["env"] = [{"name": "NVIDIA_VISIBLE_DEVICES", "value": "all"},
                            {"name": "NVIDIA_DRIVER_CAPABILITIES", "value": "utility"}]
    spec: dict[str, Any] = {"nodeName": node, "restartPolicy": "Never", "containers": [container],
                            "automountServiceAccountToken": False}
    if options.tolerations:
        spec["tolerations"] = [dict(t) for t in options.tolerations]
    if options.node_selector:
        spec["nodeSelector"] = dict(options.node_selector)
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": options.namespace,
                         "labels": {"app.kubernetes.io/managed-by": "gpuguard-verify", "gpuguard.io/role": role,
                                    "gpuguard.io/node": node[:63]}},
            "spec": spec}


def _suffix(node: str) -> str:
    return re.sub(r"[^a-z0-9-]", "-", node.lower())[:40].strip("-") or "node"


def probe_pod(node: str, options: ProbeOptions) -> dict[str, Any]:
    """The pod that requests no GPU but asks for all of them through the environment."""
    return _pod(f"probe-{_suffix(node)}", node, "probe", options, 0)


def control_pod(node: str, options: ProbeOptions) -> dict[str, Any]:
    """The pod that requests exactly one GPU."""
    return _pod(f"control-{_suffix(node)}", node, "control", options, 1)


@dataclass(frozen=True, slots=True)
class Evidence:
    """What one pod saw."""

    complete: bool  # both markers present
    smi_present: bool
    smi_gpus: tuple[str, ...] = ()
    devices: tuple[str, ...] = ()  # /dev/nvidiaN
    proc_gpus: tuple[str, ...] = ()

    @property
    def gpu_count(self) -> int:
        """The most GPUs any source shows (nvidia-smi missing is not no access: devices still count)."""
        return max(len(self.smi_gpus), len(self.devices), len(self.proc_gpus))

    def lines(self) -> list[str]:
        smi = ("nvidia-smi absent" if not self.smi_present
               else f"nvidia-smi -L: {len(self.smi_gpus)} GPU(s)")
        return [smi, *self.smi_gpus, f"/dev: {', '.join(self.devices) or 'no /dev/nvidiaN'}",
                f"/proc/driver/nvidia/gpus: {', '.join(self.proc_gpus) or 'none'}"]


def parse_log(text: str) -> Evidence:
    """The evidence in a probe's log; an incomplete report (no markers) is ``complete=False``."""
    lines = text.splitlines()
    try:
        start = lines.index(BEGIN)
        end = lines.index(END, start)
    except ValueError:
        return Evidence(complete=False, smi_present=False)
    section = ""
    smi: list[str] = []
    devices: list[str] = []
    proc: list[str] = []
    smi_present = True
    for raw in lines[start + 1:end]:
        line = raw.strip()
        if line.startswith("--- "):
            section = line[4:]
        elif section == "nvidia-smi":
            if line == "rc=missing":
                smi_present = False
            elif _GPU_LINE.match(line):
                smi.append(line)
        elif section == "dev" and _DEV_GPU.match(line):
            devices.append(line)
        elif section == "proc" and line:
            proc.append(line)
    return Evidence(True, smi_present, tuple(smi), tuple(devices), tuple(proc))


@dataclass(frozen=True, slots=True)
class NodeVerdict:
    node: str
    passed: bool
    reasons: tuple[str, ...]
    probe: Evidence | None = None
    control: Evidence | None = None
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"node": self.node, "verdict": "PASS" if self.passed else "FAIL", "reasons": list(self.reasons),
                "probe": self.probe.lines() if self.probe else None,
                "control": self.control.lines() if self.control else None, "error": self.error}


def judge(node: str, probe: Evidence, control: Evidence) -> NodeVerdict:
    """PASS when the probe sees no GPU and the control exactly one."""
    reasons: list[str] = []
    if not probe.complete:
        reasons.append("probe report incomplete")
    elif probe.gpu_count:
        reasons.append(f"probe (no GPU requested) sees {probe.gpu_count} GPU(s)")
    if not control.complete:
        reasons.append("control report incomplete")
    elif control.gpu_count != 1:
        reasons.append(f"control (1 GPU requested) sees {control.gpu_count} GPU(s), expected 1")
    return NodeVerdict(node, not reasons, tuple(reasons) or ("probe sees no GPU, control sees exactly one",),
                       probe, control)
