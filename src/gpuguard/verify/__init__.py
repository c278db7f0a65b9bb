"""``gpuguard verify``: prove GPU isolation per node with a probe pod and a control pod (pure logic, no I/O)."""

from gpuguard.verify.probe import (
    DEFAULT_IMAGE,
    Evidence,
    NodeVerdict,
    ProbeOptions,
    control_pod,
    judge,
    namespace_manifest,
    parse_log,
    probe_pod,
)

__all__ = ["DEFAULT_IMAGE", "Evidence", "NodeVerdict", "ProbeOptions", "control_pod", "judge",
           "namespace_manifest", "parse_log", "probe_pod"]
