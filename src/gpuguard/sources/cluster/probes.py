"""Run ``gpuguard verify``'s probe and control pods on a live cluster and read their logs.

Creates a namespace of its own, one probe and one control pod per node (``nodeName``
pinned), polls each pod's phase until it ends or the deadline passes, reads the logs
(``read_namespaced_pod_log``; no exec), and always deletes the namespace in ``finally``,
also on Ctrl-C and on timeout.  A namespace that already exists is an error, never
reused nor deleted.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Sequence
from typing import Any

from gpuguard.verify.probe import (
    Evidence,
    NodeVerdict,
    ProbeOptions,
    control_pod,
    judge,
    namespace_manifest,
    parse_log,
    probe_pod,
)

DONE = {"Succeeded", "Failed"}


def gpu_nodes(api: Any) -> list[str]:
    """Names of the GPU nodes (labels or allocatable ``nvidia.com/gpu``), read as the cluster audit reads them."""
    from gpuguard.sources.cluster.reader import ClusterReader  # noqa: PLC0415

    reader = ClusterReader(api, "verify")
    nodes = reader.nodes()
    if reader.errors:
        raise RuntimeError(f"cannot list nodes: {reader.errors[0].message}")
    return sorted(n.name for n in nodes if n.is_gpu_node)


def run_probes(
    api: Any, nodes: Sequence[str], options: ProbeOptions, *, timeout: float = 300.0, poll: float = 2.0,
    sleep: Callable[[float], None] = time.sleep, clock: Callable[[], float] = time.monotonic,
) -> list[NodeVerdict]:
    """One verdict per node; the namespace is deleted whatever happens."""
    from kubernetes import client  # noqa: PLC0415 - lazy: heavy import

    core: Any = client.CoreV1Api(api)  # typed stubs want model objects; plain dicts serialise the same
    ns = options.namespace
    # Created first, outside the try: a namespace that already exists (409) is someone else's and never deleted.
    core.create_namespace(namespace_manifest(ns), _request_timeout=(5.0, 30.0))
    try:
        pods: dict[str, tuple[str, str]] = {}
        for node in nodes:
            probe, control = probe_pod(node, options), control_pod(node, options)
            core.create_namespaced_pod(ns, probe, _request_timeout=(5.0, 30.0))
            core.create_namespaced_pod(ns, control, _request_timeout=(5.0, 30.0))
            pods[node] = (probe["metadata"]["name"], control["metadata"]["name"])
        names = [n for pair in pods.values() for n in pair]
        phases = _wait(core, ns, names, timeout=timeout, poll=poll, sleep=sleep, clock=clock)
        verdicts = []
        for node, (probe_name, control_name) in pods.items():
            stuck = [n for n in (probe_name, control_name) if phases.get(n) not in DONE]
            if stuck:
                verdicts.append(NodeVerdict(
                    node, False, (f"timeout after {timeout:g}s: {', '.join(stuck)} not complete "
                                  f"({', '.join(str(phases.get(n)) for n in stuck)})",),
                    error="timeout"))
                continue
            verdicts.append(judge(node, _evidence(core, ns, probe_name), _evidence(core, ns, control_name)))
        return verdicts
    finally:
        with contextlib.suppress(Exception):  # cleanup is best effort; the original error wins
            core.delete_namespace(ns, _request_timeout=(5.0, 30.0))


def _wait(core: Any, ns: str, names: Sequence[str], *, timeout: float, poll: float,
          sleep: Callable[[float], None], clock: Callable[[], float]) -> dict[str, str]:
    deadline = clock() + timeout
    phases: dict[str, str] = {}
    while True:
        for name in names:
            if phases.get(name) in DONE:
                continue
            pod = core.read_namespaced_pod(name, ns, _request_timeout=(5.0, 30.0))
            phases[name] = (pod.status.phase if pod.status else None) or "Unknown"
        if all(phases.get(n) in DONE for n in names) or clock() >= deadline:
            return phases
        sleep(poll)


def _evidence(core: Any, ns: str, name: str) -> Evidence:
    return parse_log(core.read_namespaced_pod_log(name, ns, _request_timeout=(5.0, 30.0)))
