"""What does one scan of ``gpuguard agent`` cost? Run: ``.venv/bin/python benchmarks/bench_agent.py`` (root).

Starts the tests' real containerd + runc (``tests/node/runtime.py``) with emulated GPU device nodes,
runs N containers (default 250) the way a busy GPU node holds them: most without GPUs, a fifth with
allocated GPUs (device plugin env and the toolkit's device nodes), a few holding unallocated GPUs
(linux.devices, bind mounts, privileged), some exited and some never started; serves their
allocations with the kubelet stand-in (``tests/node/kubelet.py``) in a separate process, so its CPU
is not counted; then scans with the agent's own ``Scanner`` (the clients kept open, as in continuous
mode) and prints, per scan: CPU time of this process (``time.process_time()``: every thread, gRPC
included; target < 100 ms at 250 containers) and wall time, split into reading the node (containerd,
kubelet, /proc, driver tree, config) and judging plus building the report.  Also the wall time of a
whole ``gpuguard agent --once --format json`` subprocess (interpreter start and imports included).

Not a test: it prints figures and asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.agent.node import NODE, TOOLKIT_CONFIG, Planned, Populated, uuid_of  # noqa: E402
from tests.node.runtime import Runtime, unavailable, wait_for  # noqa: E402

from gpuguard.agent.report import build_report  # noqa: E402
from gpuguard.agent.scan import Scanner, ScanOptions  # noqa: E402

KUBELET = """
import json, signal, sys
sys.path.insert(0, {root!r})
from tests.node.kubelet import serve_pod_resources
with open({allocations!r}) as f:
    stand_in = serve_pod_resources({socket!r}, json.load(f))
signal.sigwait({{signal.SIGTERM}})
stand_in.stop()
"""


def busy_node(n: int) -> list[Planned]:
    """``n`` containers in the proportions of a shared GPU node."""
    nvd = "NVIDIA_VISIBLE_DEVICES"
    plan: list[Planned] = []
    for i in range(n):
        kind = i % 20
        if kind < 4:  # 20%: allocated one GPU, holds it
            minor = i % 4
            plan.append(Planned(f"train-{i}", namespace="ml", gpus=(minor,), env={nvd: uuid_of(minor)},
                                allocated=(uuid_of(minor),)))
        elif kind == 4 and i % 40 == 4:  # 2.5%: unallocated GPU through linux.devices
            plan.append(Planned(f"notebook-{i}", namespace="research", gpus=(i % 4,)))
        elif kind == 4:  # 2.5%: a bind mount of a host node
            plan.append(Planned(f"bind-{i}", namespace="research", bind_gpus=(i % 4,)))
        elif kind == 5 and i % 100 == 5:  # 1%: privileged
            plan.append(Planned(f"debug-{i}", namespace="ops", privileged=True))
        elif kind == 6:  # 5%: exited
            plan.append(Planned(f"job-{i}", namespace="batch", state="exited"))
        elif kind == 7 and i % 40 == 7:  # 2.5%: created, never started
            plan.append(Planned(f"pending-{i}", namespace="batch", state="created"))
        else:  # the rest: CPU containers, some with NVIDIA_VISIBLE_DEVICES=all from a CUDA base image
            env = {nvd: "all"} if i % 10 == 8 else {}
            plan.append(Planned(f"web-{i}", namespace=f"shop-{i % 12}", container="app", env=env))
    return plan


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--containers", type=int, default=250)
    parser.add_argument("--scans", type=int, default=20)
    parser.add_argument("--workers", type=int, default=8, help="ctr processes at once while starting containers")
    args = parser.parse_args()
    reason = unavailable()
    if reason is not None:
        print(f"cannot run: {reason}")
        return
    with Runtime() as rt, tempfile.TemporaryDirectory(prefix="gg-bench-", dir="/tmp") as work:
        plan = busy_node(args.containers)
        node = Populated(rt, plan, "bench")
        t0 = time.perf_counter()
        node.start(workers=args.workers)
        started = time.perf_counter() - t0
        print(f"{len(plan)} containers on containerd + runc in {started:.1f} s "
              f"({sum(p.state == 'running' for p in plan)} running, {sum(p.state == 'exited' for p in plan)} exited, "
              f"{sum(p.state == 'created' for p in plan)} without a task)")
        socket, allocations, config = (os.path.join(work, n) for n in ("kubelet.sock", "alloc.json", "config.toml"))
        Path(allocations).write_text(json.dumps(node.allocations()))
        Path(config).write_text(TOOLKIT_CONFIG)
        kubelet = subprocess.Popen([sys.executable, "-c", KUBELET.format(
            root=str(ROOT), allocations=allocations, socket=socket)])
        try:
            wait_for(lambda: os.path.exists(socket), "the kubelet stand-in's socket")
            options = ScanOptions(node=NODE, containerd_socket=rt.socket, pod_resources_socket=socket,
                                  driver_root=rt.driver_root, toolkit_config=config, toolkit_version="1.17.8")
            _in_process(options, args.scans)
            _subprocess(options)
        finally:
            kubelet.terminate()
            kubelet.wait()
            node.remove()


def _in_process(options: ScanOptions, scans: int) -> None:
    with Scanner(options) as scanner:
        first = scanner.scan()  # warm: channels open, modules imported, config parsed
        assert not first.observation.degraded, first.observation.degraded
        cpu, wall, observe_cpu, judge_cpu = [], [], [], []
        for _ in range(scans):
            c0, w0 = time.process_time(), time.perf_counter()
            scan = scanner.scan()
            cpu.append(time.process_time() - c0)
            wall.append(time.perf_counter() - w0)
            c1 = time.process_time()
            observation, toolkit = scanner.observe()
            c2 = time.process_time()
            build_report(observation, scanner.judge(observation, toolkit), toolkit, scanner.locations())
            c3 = time.process_time()
            observe_cpu.append(c2 - c1)
            judge_cpu.append(c3 - c2)
    report = scan.report
    held = sum(1 for v in scan.verdicts if v.held)
    print(f"one scan: {len(scan.observation.containers)} containers, {len(scan.observation.held)} looked into, "
          f"{held} holding GPUs, {len(report.findings)} findings "
          f"({', '.join(f'{r}: {sum(f.rule_id == r for f in report.findings)}' for r in ('GG401', 'GG402', 'GG403'))})")
    ms = 1000.0
    print(f"CPU per scan  (time.process_time, {scans} scans): median {statistics.median(cpu) * ms:.1f} ms, "
          f"min {min(cpu) * ms:.1f} ms, max {max(cpu) * ms:.1f} ms  (target < 100 ms)")
    print(f"wall per scan: median {statistics.median(wall) * ms:.1f} ms, min {min(wall) * ms:.1f} ms, "
          f"max {max(wall) * ms:.1f} ms")
    print(f"  reading the node: median {statistics.median(observe_cpu) * ms:.1f} ms CPU; "
          f"judging + report: median {statistics.median(judge_cpu) * ms:.1f} ms CPU")


def _subprocess(options: ScanOptions) -> None:
    cmd = [sys.executable, "-m", "gpuguard", "agent", "--once", "--format", "json", "--node", options.node,
           "--containerd-socket", options.containerd_socket, "--pod-resources-socket", options.pod_resources_socket,
           "--driver-root", options.driver_root, "--toolkit-config", str(options.toolkit_config),
           "--toolkit-version", str(options.toolkit_version)]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, check=False)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)  # the kubelet stand-in still runs: not counted yet
    cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    findings = len(json.loads(done.stdout)["findings"]) if done.stdout else -1
    print(f"gpuguard agent --once --format json (subprocess, interpreter start and imports included): "
          f"{wall * 1000:.0f} ms wall, {cpu * 1000:.0f} ms CPU, exit {done.returncode}, {findings} findings")


if __name__ == "__main__":
    main()
