"""A GPU node in mixed states on the real containerd of ``tests.node.runtime``, for the agent's tests and benchmark.

Each ``Planned`` container says, by hand, what it is and what the agent must
conclude about it; ``populate`` runs them (in parallel: ``ctr`` is one process
per call) and returns the kubelet allocations to serve.  The expectations are
written from the issue and the toolkit's semantics, not from the agent's output.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
import uuid
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import orjson

from gpuguard.agent.scan import ScanOptions
from tests.node.kubelet import KubeletStandIn, serve_pod_resources
from tests.node.runtime import CTL_MINOR, NVIDIA_MAJOR, Runtime

OPERATOR_NS = "gpu-operator"
NODE = "gpu-node-7"
# The GPU Operator's toolkit config.toml as its installer writes it (toolkit 1.17, envvar accepted).
TOOLKIT_CONFIG = """\
accept-nvidia-visible-devices-as-volume-mounts = false
accept-nvidia-visible-devices-envvar-when-unprivileged = true
disable-require = false
supported-driver-capabilities = "compat32,compute,display,graphics,ngx,utility,video"

[nvidia-container-cli]
  environment = []
  ldconfig = "@/run/nvidia/driver/sbin/ldconfig.real"
  load-kmods = true
  path = "/usr/local/nvidia/toolkit/nvidia-container-cli"
  root = "/run/nvidia/driver"

[nvidia-container-runtime]
  log-level = "info"
  mode = "auto"
  runtimes = ["docker-runc", "runc", "crun"]

  [nvidia-container-runtime.modes]

    [nvidia-container-runtime.modes.cdi]
      annotation-prefixes = ["cdi.k8s.io/"]
      default-kind = "management.nvidia.com/gpu"
      spec-dirs = ["/etc/cdi", "/var/run/cdi"]

[nvidia-ctk]
  path = "/usr/local/nvidia/toolkit/nvidia-ctk"
"""


@dataclass(frozen=True)
class Planned:
    """One container to run, and what the agent must say about it."""

    name: str  # unique: also the pod name's stem and the containerd id's
    namespace: str = "ml"
    pod: str | None = None
    container: str = "main"
    gpus: tuple[int, ...] = ()  # linux.devices nvidiaN (+ nvidiactl, nvidia-uvm), as the toolkit/CDI injects
    bind_gpus: tuple[int, ...] = ()  # host nodes bind-mounted into /dev
    control_only: bool = False  # linux.devices has nvidiactl and nothing else
    private_dev: bool = False  # its /dev belongs to uid 1000, mode 0700: unreadable to others
    nvidia_runtime: bool = False  # the shim runs "nvidia-container-runtime" (a stand-in that execs runc)
    privileged: bool = False
    env: Mapping[str, str] = field(default_factory=dict)
    allocated: tuple[str, ...] = ()  # nvidia.com/gpu device ids the kubelet reports
    state: str = "running"  # running | exited | created (no task)
    expect: frozenset[str] = frozenset()  # rule ids the agent must report for it
    exempt: bool = False

    @property
    def pod_name(self) -> str:
        return self.pod or f"{self.name}-5d8c7b9f4-x2k9p"

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.namespace, self.pod_name, self.container)


def uuid_of(minor: int) -> str:
    return f"GPU-00000000-0000-0000-0000-{minor:012d}"


def mixed_states() -> list[Planned]:
    """50 containers: every state the issue names, with the findings each must (or must not) produce."""
    G401, G402, G403 = frozenset({"GG401"}), frozenset({"GG402"}), frozenset({"GG403"})
    nvd = "NVIDIA_VISIBLE_DEVICES"
    plan: list[Planned] = []
    # Allocated GPUs, held: the device plugin's env and the toolkit's device nodes agree with the kubelet.
    for i, minor in enumerate((0, 1, 2, 3, 0, 1)):
        plan.append(Planned(f"train-{i}", gpus=(minor,), env={nvd: uuid_of(minor)}, allocated=(uuid_of(minor),)))
    plan.append(Planned("infer-index", namespace="serving", gpus=(2,), env={nvd: "2"}, allocated=("2",)))
    plan.append(Planned("infer-shared", namespace="serving", gpus=(3,), env={nvd: uuid_of(3)},
                        allocated=(f"{uuid_of(3)}::2",)))  # time-slicing replica id
    # Unallocated GPUs through linux.devices (a CDI annotation or the envvar honoured by the toolkit).
    for i, minor in enumerate((0, 1, 2, 3, 1)):
        plan.append(Planned(f"notebook-{i}", namespace="research", gpus=(minor,), expect=G401))
    # An operator-looking pod name outside the operator's namespace is not exempt.
    plan.append(Planned("nvidia-dcgm-exporter", pod="nvidia-dcgm-exporter-q8w2n", namespace="default", gpus=(0, 1),
                        expect=G401))
    # Unallocated GPUs through a bind mount of the host's node: the spec lists no device, the engine predicts none.
    for i, minor in enumerate((0, 1, 2, 3)):
        plan.append(Planned(f"bind-{i}", namespace="research", bind_gpus=(minor,), expect=G401 | G403))
    # Privileged: the runtime gives it the host's /dev devices, every GPU included.
    for i in range(3):
        plan.append(Planned(f"debug-{i}", namespace="ops", privileged=True, expect=G401))
    # GPU Operator components hold every GPU on purpose: exempt, in their trusted namespace.
    plan += [
        Planned("nvidia-device-plugin", pod="nvidia-device-plugin-daemonset-7xk2p", namespace=OPERATOR_NS,
                container="nvidia-device-plugin", privileged=True, exempt=True),
        Planned("nvidia-dcgm-exporter-op", pod="nvidia-dcgm-exporter-9f2lm", namespace=OPERATOR_NS,
                container="nvidia-dcgm-exporter", gpus=(0, 1, 2, 3), env={nvd: "all"}, exempt=True),
        Planned("nvidia-toolkit", pod="nvidia-container-toolkit-daemonset-m4z8c", namespace=OPERATOR_NS,
                container="nvidia-container-toolkit-ctr", privileged=True, exempt=True),
        Planned("gfd", pod="gpu-feature-discovery-h7t5v", namespace=OPERATOR_NS, container="gpu-feature-discovery",
                gpus=(0, 1, 2, 3), env={nvd: "all"}, exempt=True),
    ]
    # Only nvidiactl: no GPU without an nvidiaN node.
    for i in range(3):
        plan.append(Planned(f"ctl-{i}", namespace="research", control_only=True))
    # NVIDIA_VISIBLE_DEVICES=all, but plain runc runs it (no NVIDIA runtime in its shim options): nothing is
    # injected, nothing held, and the engine, seeing that no NVIDIA runtime reads the request, predicts nothing.
    for i in range(5):
        plan.append(Planned(f"cuda-base-{i}", namespace="research", env={nvd: "all"}))
    # Exited and never started, although their specs list unallocated GPUs: no process, nothing held.
    for i, minor in enumerate((0, 1, 2, 3)):
        plan.append(Planned(f"done-{i}", namespace="batch", gpus=(minor,), state="exited"))
    for i, minor in enumerate((0, 1, 2)):
        plan.append(Planned(f"pending-{i}", namespace="batch", gpus=(minor,), state="created"))
    # More than allocated: two GPUs for one allocated; a GPU other than the one allocated.
    for i, (minors, alloc) in enumerate((((0, 1), 0), ((2, 3), 2), ((1, 2), 1))):
        plan.append(Planned(f"greedy-{i}", namespace="ml", gpus=minors, env={nvd: uuid_of(alloc)},
                            allocated=(uuid_of(alloc),), expect=G402))
    plan.append(Planned("swapped", namespace="ml", gpus=(3,), allocated=(uuid_of(1),), expect=G402))
    # CPU pods: nothing allocated, nothing held.
    for i in range(6):
        plan.append(Planned(f"web-{i}", namespace="shop", container="nginx"))
    return plan


def spec_of(rt: Runtime, p: Planned) -> dict[str, Any]:
    spec = rt.spec(gpus=p.gpus, bind_gpus=p.bind_gpus, privileged=p.privileged, env=p.env)
    if p.control_only:
        linux: Any = spec["linux"]
        linux["devices"].append({"path": "/dev/nvidiactl", "type": "c", "major": NVIDIA_MAJOR, "minor": CTL_MINOR,
                                 "fileMode": 0o666, "uid": 0, "gid": 0})
        linux["resources"]["devices"].append({"allow": True, "type": "c", "major": NVIDIA_MAJOR,
                                              "minor": CTL_MINOR, "access": "rwm"})
    return spec


def labels_of(p: Planned) -> dict[str, str]:
    """The labels the CRI plugin puts on a container."""
    return {
        "io.kubernetes.pod.name": p.pod_name,
        "io.kubernetes.pod.namespace": p.namespace,
        "io.kubernetes.container.name": p.container,
        "io.kubernetes.pod.uid": str(uuid.uuid5(uuid.NAMESPACE_URL, f"{p.namespace}/{p.pod_name}")),
        "io.cri-containerd.kind": "container",
    }


def nvidia_runtime_stand_in(rt: Runtime) -> str:
    """An executable named ``nvidia-container-runtime`` that runs runc and injects nothing.

    The real runtime needs the NVIDIA driver; this one lets containerd record the NVIDIA runtime as the
    shim's binary (as the GPU Operator's runtime class does), so the engine predicts from the container's
    request while the node, like a node whose toolkit does not do what its config says, injects nothing.
    """
    path = os.path.join(rt.dir, "bin", "nvidia-container-runtime")
    if not os.path.exists(path):
        runc = shutil.which("runc") or "runc"
        tmp = f"{path}.{threading.get_ident()}"
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(f'#!/bin/sh\nexec {runc} "$@"\n')
        os.chmod(tmp, 0o755)
        os.replace(tmp, path)
    return path


class Populated:
    """The containers of one plan on the runtime; ``ids`` maps each plan name to its containerd id."""

    def __init__(self, rt: Runtime, plan: Sequence[Planned], tag: str) -> None:
        self.rt, self.plan, self.tag = rt, list(plan), tag
        self.ids: dict[str, str] = {}
        self._lock = threading.Lock()

    def start(self, workers: int = 8) -> None:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            for _ in pool.map(self._one, self.plan):
                pass
        for p in self.plan:
            if p.state == "exited":
                self.rt.exit(self.ids[p.name])
            if p.private_dev:  # runc leaves /dev 0755 whatever the tmpfs options: change it from the host
                pid = self.rt.task(self.ids[p.name])[0]
                assert pid is not None
                os.chown(f"/proc/{pid}/root/dev", 1000, 1000)
                os.chmod(f"/proc/{pid}/root/dev", 0o700)

    def _one(self, p: Planned) -> None:
        cid = f"{self.tag}-{p.name}"
        path = os.path.join(self.rt.dir, "specs", f"{cid}.json")
        with open(path, "wb") as f:
            f.write(orjson.dumps(spec_of(self.rt, p)))
        args = [a for k, v in labels_of(p).items() for a in ("--label", f"{k}={v}")]
        with self._lock:
            self.ids[p.name] = cid
        if p.nvidia_runtime:
            args += ["--runc-binary", nvidia_runtime_stand_in(self.rt)]
        if p.state == "created":
            self.rt.ctr("containers", "create", "--config", path, *args, cid)
        else:
            self.rt.ctr("run", "-d", "--config", path, *args, cid)

    def allocations(self) -> list[dict[str, Any]]:
        """What the kubelet reports: every pod of the plan, with its nvidia.com/gpu device ids."""
        return [{"namespace": p.namespace, "pod": p.pod_name, "container": p.container,
                 "devices": {"nvidia.com/gpu": list(p.allocated)} if p.allocated else {}}
                for p in self.plan]  # fmt: skip

    def remove(self) -> None:
        with ThreadPoolExecutor(max_workers=8) as pool:
            for _ in pool.map(self.rt.remove, list(self.ids.values())):
                pass


@dataclass
class AgentNode:
    """A populated node ready for the agent: its containers, the kubelet stand-in, the toolkit config."""

    node: Populated
    kubelet: KubeletStandIn
    kubelet_socket: str
    toolkit_config: str
    dir: str

    def args(self) -> list[str]:
        """The agent's command-line flags for this node."""
        return ["--node", NODE, "--containerd-socket", self.node.rt.socket, "--pod-resources-socket",
                self.kubelet_socket, "--driver-root", self.node.rt.driver_root, "--toolkit-config",
                self.toolkit_config, "--toolkit-version", "1.17.8"]

    def options(self) -> ScanOptions:
        """The same, as the scanner's options."""
        return ScanOptions(node=NODE, containerd_socket=self.node.rt.socket, pod_resources_socket=self.kubelet_socket,
                           driver_root=self.node.rt.driver_root, toolkit_config=self.toolkit_config,
                           toolkit_version="1.17.8")


@contextmanager
def agent_node(
    rt: Runtime, plan: Sequence[Planned], tag: str, *, workdir: str | None = None,
    allocatable: Mapping[str, Sequence[str]] | None = None,
) -> Iterator[AgentNode]:
    """Start ``plan`` on ``rt``, serve its allocations and write the toolkit config; undo it all afterwards.

    ``workdir`` (kept) holds the kubelet socket and the config; without it a short temporary directory
    is made and removed (unix socket paths are limited to 107 bytes).
    """
    node = Populated(rt, plan, tag)
    own = workdir is None
    directory = workdir if workdir is not None else tempfile.mkdtemp(prefix=f"gg-{tag}-", dir="/tmp")
    kubelet = None
    try:
        node.start()
        socket = os.path.join(directory, "kubelet.sock")
        kubelet = serve_pod_resources(socket, node.allocations(), allocatable or {})
        config = os.path.join(directory, "config.toml")
        with open(config, "w", encoding="utf-8") as f:
            f.write(TOOLKIT_CONFIG)
        yield AgentNode(node, kubelet, socket, config, directory)
    finally:
        if kubelet is not None:
            kubelet.stop()
        node.remove()
        if own:
            shutil.rmtree(directory, ignore_errors=True)
