"""How fast and how lean is ``gpuguard audit --cluster``? Run: ``.venv/bin/python benchmarks/bench_cluster.py``.

Generates a realistic cluster snapshot (default 50,000 pods on 1,000 nodes: 200
GPU nodes with GPU Feature Discovery labels and allocatable ``nvidia.com/gpu``,
800 CPU nodes; one GPU Operator ClusterPolicy and its rendered DaemonSets, some
GPU nodes with a host toolkit; kube-proxy and the operator's privileged pods on
every node; workloads in 200 namespaces: most plain, ~10% requesting GPUs, ~1%
exposed with ``NVIDIA_VISIBLE_DEVICES=all`` (some through a ConfigMap key), a
few privileged, a few pending), serves it with the tests' HTTPS stand-in for the
API server (``tests/cluster/apiserver.py``; the reader pages with its default
``limit``) and runs the whole ``gpuguard audit --cluster --kubeconfig FILE
--format json`` as a subprocess (interpreter start and imports included).

Prints, per size (default also 5,000 pods / 100 nodes, for scaling): wall time
(target < 20 s at 50k), peak RSS of the gpuguard process (``wait4`` rusage;
target < 1 GiB), API requests the stand-in saw, findings.  ``--profile`` also
runs the biggest size under ``cProfile`` and prints the top functions.

Not a test: it prints figures and asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import pstats
import random
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.cluster.apiserver import ApiServer, Snapshot, serve  # noqa: E402
from tests.cluster.conftest import (  # noqa: E402
    DEVICE_PLUGIN_ENV,
    OPERATOR_NS,
    TOOLKIT_ENV,
    TOOLKIT_IMAGE,
    _c,
    _daemonset,
    _meta,
    _node,
    _pod,
    cluster_policy,
)

PYTHON = sys.executable
GPUGUARD = [PYTHON, "-m", "gpuguard"]
CPU_IMAGES = ["registry.example.com/shop/frontend:2.14.1", "registry.example.com/shop/cart:1.9.0", "redis:7.2",
              "postgres:16", "nginx:1.27", "ghcr.io/acme/api:3.2.1", "ghcr.io/acme/worker:3.2.1",
              "quay.io/prometheus/node-exporter:v1.8.1"]
GPU_IMAGES = ["nvcr.io/nvidia/pytorch:24.05-py3", "nvcr.io/nvidia/cuda:12.4.1-base-ubuntu22.04",
              "vllm/vllm-openai:v0.6.3", "registry.example.com/ml/trainer:1.4"]
OWNERS = [("ReplicaSet", 70), ("StatefulSet", 10), ("Job", 10), ("DaemonSet", 0), (None, 10)]


def generate(pods: int, nodes: int, seed: int = 7) -> Snapshot:
    """A cluster of about ``pods`` pods on ``nodes`` nodes (a fifth of them GPU nodes)."""
    r = random.Random(seed)
    n_gpu = max(3, nodes // 5)
    gpu_nodes = [f"gpu-{'a100' if i % 2 else 'h100'}-{i:04d}" for i in range(n_gpu)]
    cpu_nodes = [f"cpu-{i:04d}" for i in range(nodes - n_gpu)]
    host_toolkit = set(gpu_nodes[::10])  # every tenth GPU node brings its own toolkit: not the operator's
    node_objs = [_node(n) for n in cpu_nodes]
    node_objs += [_node(n, 8, "NVIDIA-A100-SXM4-80GB" if "a100" in n else "NVIDIA-H100-80GB-HBM3",
                        host_toolkit=n in host_toolkit) for n in gpu_nodes]

    out: list[dict[str, Any]] = []
    for node in cpu_nodes + gpu_nodes:  # node agents: privileged, one per node
        out.append(_pod(f"kube-proxy-{node}", "kube-system", node,
                        [_c("kube-proxy", "registry.k8s.io/kube-proxy:v1.31.2", securityContext={"privileged": True})],
                        owner=("DaemonSet", "kube-proxy")))
    for k, node in enumerate(gpu_nodes):  # the operator's own pods
        if node not in host_toolkit:
            out.append(_pod(f"nvidia-container-toolkit-daemonset-{k:05x}", OPERATOR_NS, node,
                            [_c("nvidia-container-toolkit-ctr", TOOLKIT_IMAGE, TOOLKIT_ENV,
                                securityContext={"privileged": True})],
                            owner=("DaemonSet", "nvidia-container-toolkit-daemonset"), sa="nvidia-container-toolkit"))
        out.append(_pod(f"nvidia-device-plugin-daemonset-{k:05x}", OPERATOR_NS, node,
                        [_c("nvidia-device-plugin", "nvcr.io/nvidia/k8s-device-plugin:v0.17.4", DEVICE_PLUGIN_ENV,
                            securityContext={"privileged": True})],
                        owner=("DaemonSet", "nvidia-device-plugin-daemonset"), sa="nvidia-device-plugin"))

    namespaces = [f"team-{i:03d}" for i in range(max(10, pods // 250))]
    config_maps: list[dict[str, Any]] = [
        {"metadata": _meta("device-plugin-config", OPERATOR_NS),
         "data": {"default": "version: v1\nflags:\n  migStrategy: single\n"}}]
    for ns in namespaces:
        config_maps.append({"metadata": _meta("kube-root-ca.crt", ns),
                            "data": {"ca.crt": "-----BEGIN CERTIFICATE-----"}})
        config_maps.append({"metadata": _meta("app-config", ns), "data": {"LOG_LEVEL": "info", "devices": "all"}})

    owner_kinds = [k for k, w in OWNERS for _ in range(w)]
    counts: Counter[str] = Counter()
    i = 0
    while len(out) < pods:
        i += 1
        ns = namespaces[i % len(namespaces)]
        roll = r.random()
        env = [{"name": f"VAR_{k}", "value": r.choice(["info", "prod", "30s", "true"])} for k in range(r.randint(0, 5))]
        extra: dict[str, Any] = {}
        gpus = 0
        if roll < 0.10:  # asks for GPUs: runs on a GPU node
            kind, gpus, image, node = "gpu", r.choice((1, 1, 2, 4, 8)), r.choice(GPU_IMAGES), r.choice(gpu_nodes)
        elif roll < 0.11:  # exposed: a CUDA image, NVIDIA_VISIBLE_DEVICES=all (or via a ConfigMap), no request
            kind, image, node = "exposed", r.choice(GPU_IMAGES), r.choice(gpu_nodes)
            if r.random() < 0.2:
                env.append({"name": "NVIDIA_VISIBLE_DEVICES",
                            "valueFrom": {"configMapKeyRef": {"name": "app-config", "key": "devices"}}})
            else:
                env.append({"name": "NVIDIA_VISIBLE_DEVICES", "value": "all"})
        elif roll < 0.1105:  # privileged workloads
            kind, image, node = "privileged", r.choice(CPU_IMAGES), r.choice(cpu_nodes + gpu_nodes)
            extra["securityContext"] = {"privileged": True}
        else:
            kind, image, node = "plain", r.choice(CPU_IMAGES), r.choice(cpu_nodes)
        pending = r.random() < 0.005
        containers = [_c("main", image, env or None, gpus=gpus, **extra)]
        if r.random() < 0.3:
            containers.append(_c("sidecar", "envoyproxy/envoy:v1.31.2", [{"name": "ENVOY_UID", "value": "0"}]))
        owner_kind = r.choice(owner_kinds)
        name = f"{kind}-{i:06x}"
        owner = (owner_kind, f"{kind}-{i // 4:06x}") if owner_kind else None
        out.append(_pod(name, ns, None if pending else node, containers, owner=owner))
        counts[kind] += 1
        counts["pending"] += pending

    daemonsets = [
        _daemonset("nvidia-container-toolkit-daemonset", "nvidia-container-toolkit-ctr", TOOLKIT_IMAGE, TOOLKIT_ENV,
                   "container-toolkit"),
        _daemonset("nvidia-device-plugin-daemonset", "nvidia-device-plugin", "nvcr.io/nvidia/k8s-device-plugin:v0.17.4",
                   DEVICE_PLUGIN_ENV, "device-plugin"),
        _daemonset("kube-proxy", "kube-proxy", "registry.k8s.io/kube-proxy:v1.31.2", [], "none")
        | {"metadata": _meta("kube-proxy", "kube-system")},
    ]
    generate.counts = counts  # type: ignore[attr-defined]
    return Snapshot({
        "nodes": node_objs, "pods": out, "configmaps": config_maps, "clusterpolicies": [cluster_policy()],
        "daemonsets": daemonsets, "runtimeclasses": [{"metadata": _meta("nvidia"), "handler": "nvidia"}],
    })


def _run(cmd: list[str], out: Path) -> tuple[float, int, int]:
    """(wall seconds, exit status, peak RSS KiB) of one whole process, its stdout to ``out``."""
    with out.open("wb") as stdout, (out.parent / (out.name + ".err")).open("wb") as stderr:
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=stdout, stderr=stderr, cwd=ROOT)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    return wall, proc.returncode, usage.ru_maxrss  # ru_maxrss is KiB on Linux


def _requests(server: ApiServer) -> Counter[str]:
    with server.lock:
        seen = Counter(path for _, path, _ in server.requests)
        server.requests.clear()
    return seen


def measure(pods: int, nodes: int, workdir: Path, profile: bool) -> None:
    t0 = time.perf_counter()
    snapshot = generate(pods, nodes)
    counts = generate.counts  # type: ignore[attr-defined]
    size = sum(len(json.dumps(o)) for o in snapshot.objects["pods"])
    print(f"\n== {len(snapshot.objects['pods'])} pods, {len(snapshot.objects['nodes'])} nodes "
          f"(generated in {time.perf_counter() - t0:.1f} s; pods JSON {size / 1e6:.0f} MB; workloads: "
          + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())) + ")")
    with serve(snapshot, workdir) as server:
        kubeconfig = server.kubeconfig(workdir / "kubeconfig")
        args = ["audit", "--cluster", "--kubeconfig", str(kubeconfig), "--format", "json"]
        report = workdir / "report.json"
        wall, status, rss = _run([*GPUGUARD, *args], report)
        seen = _requests(server)
        try:
            findings = json.loads(report.read_text())["findings"]
        except (ValueError, KeyError):
            findings = None
            print("   no JSON report; stderr:", (workdir / "report.json.err").read_text()[-2000:])
        print(f"   wall {wall:6.2f} s (target < 20 s)   peak RSS {rss / 1024:7.1f} MiB (target < 1024)   exit {status}")
        print(f"   API requests {sum(seen.values())}: " + ", ".join(f"{p} {n}" for p, n in sorted(seen.items())))
        if findings is not None:
            rules = Counter(f.get("rule_id") or f.get("rule") for f in findings)
            print(f"   findings {len(findings)}: " + ", ".join(f"{k} {v}" for k, v in sorted(rules.items(), key=str)))
        if profile:
            prof = workdir / "audit.prof"
            pwall, _, _ = _run([PYTHON, "-m", "cProfile", "-o", str(prof), "-m", "gpuguard", *args],
                               workdir / "report-prof.json")
            _requests(server)
            print(f"   cProfile run: {pwall:.2f} s wall (profiled); top by cumulative and by own time:")
            stats = pstats.Stats(str(prof))
            stats.sort_stats("cumulative").print_stats(30)
            stats.sort_stats("tottime").print_stats(20)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="5000:100,50000:1000", help="pods:nodes,... (default %(default)s)")
    parser.add_argument("--profile", action="store_true", help="also profile the biggest size with cProfile")
    args = parser.parse_args()
    sizes = [tuple(int(x) for x in s.split(":")) for s in args.sizes.split(",")]
    biggest = max(sizes)
    for pods, nodes in sizes:
        with tempfile.TemporaryDirectory(prefix="bench-cluster-") as tmp:
            measure(pods, nodes, Path(tmp), args.profile and (pods, nodes) == biggest)


if __name__ == "__main__":
    main()
