"""What the node agent observes on one GPU node: ground truth, not predictions.

Sources on the node (containerd, the kubelet's pod-resources API, ``/proc``,
the driver's ``/proc/driver/nvidia/gpus``, the toolkit's logs) turn what they
read into these objects; the agent's rules compare them (allocated vs held vs
predicted) without any I/O of their own.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from gpuguard.model.container import ContainerSpec

NVIDIA_MAJOR = 195  # the character-device major of nvidia[0-9]+, nvidiactl and nvidia-modeset
GPU_MINOR_MAX = 254  # nvidia[N] uses minor N; 255 is nvidiactl, 254 nvidia-modeset


@dataclass(frozen=True, slots=True)
class DeviceNode:
    """One NVIDIA device node, as a path under ``/dev`` with its numbers.

    ``kind``: ``gpu`` (``nvidiaN``: minor N is the GPU's device minor), ``control``
    (``nvidiactl``), ``uvm`` (``nvidia-uvm``, ``nvidia-uvm-tools``), ``modeset``,
    ``caps`` (``nvidia-caps/*``: MIG and IMEX capability nodes), ``other``.
    """

    path: str  # relative to /dev: "nvidia0", "nvidiactl", "nvidia-caps/nvidia-cap21"
    major: int
    minor: int
    kind: str

    @property
    def gpu_minor(self) -> int | None:
        """The GPU's device minor for ``nvidiaN`` nodes, else None."""
        return self.minor if self.kind == "gpu" else None


@dataclass(frozen=True, slots=True)
class NodeGpu:
    """One GPU of the node as the driver lists it (``/proc/driver/nvidia/gpus/<bus id>/information``)."""

    minor: int  # "Device Minor": the N of /dev/nvidiaN
    uuid: str  # "GPU-..."
    bus_id: str = ""  # "0000:17:00.0"
    model: str = ""
    mig_uuids: tuple[str, ...] = ()  # MIG devices of this GPU, where known


@dataclass(frozen=True, slots=True)
class RuntimeContainer:
    """One container as containerd holds it (namespace ``k8s.io``), with its task's state.

    ``spec`` is the part of its OCI spec that decides exposure (what the engine
    predicts from); ``linux_devices`` are the spec's ``linux.devices`` entries
    (the runtime creates these inside the container); ``privileged`` is true
    when the spec has CAP_SYS_ADMIN and the host's devices (``/dev`` bind or
    every device in ``linux.devices``).  Kubernetes names come from the
    labels the CRI plugin sets (``io.kubernetes.pod.name`` and friends).
    Only NVIDIA entries of ``linux.devices`` are kept (a privileged spec lists
    every host device).
    """

    id: str
    namespace: str | None  # Kubernetes namespace (label io.kubernetes.pod.namespace)
    pod: str | None  # io.kubernetes.pod.name
    container: str | None  # io.kubernetes.container.name
    pod_uid: str | None = None
    sandbox: bool = False  # the pod's pause container (io.kubernetes.cri.container-type=sandbox)
    image: str = ""
    runtime: str = ""  # containerd runtime name, e.g. io.containerd.runc.v2
    # The runc shim's BinaryName ("" = plain runc); None when containerd does not say (no runc options).
    # A CRI handler such as `nvidia` is a runc shim whose BinaryName is nvidia-container-runtime.
    runtime_binary: str | None = None
    pid: int | None = None  # the task's init PID; None when there is no running task
    status: str = "unknown"  # running | created | stopped | paused | unknown
    spec: ContainerSpec = field(default_factory=ContainerSpec)
    linux_devices: tuple[DeviceNode, ...] = ()
    privileged: bool = False
    labels: Mapping[str, str] = field(default_factory=dict)
    error: str | None = None  # why its spec could not be read (then ``spec`` is empty: unknown, not clean)


@dataclass(frozen=True, slots=True)
class HeldDevices:
    """The NVIDIA device nodes that really exist in a running container's ``/dev`` (via ``/proc/<pid>/root``).

    ``error`` says why they could not be read (the container exited mid-scan,
    permission); such a container is reported as not scanned, never as clean.
    """

    container_id: str
    nodes: tuple[DeviceNode, ...] = ()
    error: str | None = None

    @property
    def gpu_minors(self) -> frozenset[int]:
        return frozenset(n.minor for n in self.nodes if n.kind == "gpu")


@dataclass(frozen=True, slots=True)
class ContainerAllocation:
    """What the kubelet allocated to one container (pod-resources API ``List``).

    ``devices`` maps each resource name (``nvidia.com/gpu``,
    ``nvidia.com/mig-1g.10gb``, ...) to the device ids the device plugin
    handed out (GPU UUIDs, MIG UUIDs, or replica ids such as ``GPU-...::2``
    under time-slicing).  ``claims`` names DRA claims where the kubelet reports
    them, as ``namespace/claim: device, device``.
    """

    namespace: str
    pod: str
    container: str
    devices: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    claims: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class ToolkitLogEntry:
    """One NVIDIA Container Runtime log line about a container's device request."""

    container_id: str | None  # the OCI bundle's container id, where the line names it
    time: str
    message: str
    honoured: bool | None = None  # True: devices injected; False: request ignored; None: neither said


@dataclass(frozen=True, slots=True)
class NodeObservation:
    """Everything one scan of the node read; ``degraded`` names the sources that could not be read."""

    node: str
    containers: tuple[RuntimeContainer, ...] = ()
    held: Mapping[str, HeldDevices] = field(default_factory=dict)  # container id -> held devices
    allocations: tuple[ContainerAllocation, ...] = ()
    allocatable: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # resource -> device ids
    gpus: tuple[NodeGpu, ...] = ()
    logs: tuple[ToolkitLogEntry, ...] = ()
    degraded: Mapping[str, str] = field(default_factory=dict)  # source -> why (e.g. "kubelet": "no socket")
