"""GG401-GG403: what a running container really holds, against what it was allocated and what was predicted.

The node agent reads three answers for each container: the kubelet's
allocation (pod-resources API), the NVIDIA device nodes in its ``/dev`` (via
``/proc``), and the engine's prediction from its OCI spec. All three are
mapped to GPU UUIDs of the node, so device-plugin ids in any strategy (UUIDs,
indices, MIG UUIDs, time-slicing replicas ``<id>::<n>``) compare with device
minors. Pure: the agent does the reading.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from gpuguard.engine.toolkit.decide import decide
from gpuguard.model.decision import Decision, Exposure, Step
from gpuguard.model.errors import InputError
from gpuguard.model.finding import Finding, Resource
from gpuguard.model.observed import ContainerAllocation, HeldDevices, NodeGpu, RuntimeContainer
from gpuguard.model.toolkit import Toolkit
from gpuguard.rules.exempt import COMPONENT_APP_PREFIXES, COMPONENT_APPS, is_component_app
from gpuguard.rules.registry import rule
from gpuguard.rules.settings import AuditSettings

GPU_RESOURCE_PREFIX = "nvidia.com/"
_OLD_MIG = re.compile(r"^MIG-(GPU-[0-9a-fA-F-]+)/\d+/\d+$")  # MIG-GPU-<uuid>/<gi>/<ci> (driver < 470)
_MIG_INDEX = re.compile(r"^(\d+):\d+$")  # <gpu index>:<mig index> (device plugin index strategy)


@dataclass(frozen=True, slots=True)
class ContainerVerdict:
    """One container judged on one node: the three answers as GPU UUIDs, and the findings."""

    container: RuntimeContainer
    allocated: frozenset[str]  # GPU UUIDs allocated (nvidia.com/* device ids mapped to GPUs)
    held: frozenset[str] | None  # GPU UUIDs whose device nodes it holds; None when not scanned
    predicted: frozenset[str] | None  # GPU UUIDs the engine predicts; None when it cannot say
    exempt: str | None  # why it may hold GPUs (GPU Operator component, allow-listed)
    findings: tuple[Finding, ...]  # GG401 / GG402 / GG403, with node= set


def predict(container: RuntimeContainer, toolkit: Toolkit) -> Decision:
    """The engine's toolkit decision for the container's OCI spec; unknown when the spec was not read."""
    if container.error is not None:
        return Decision(devices=None, mode="unknown", unknown=(f"OCI spec not read: {container.error}",))
    binary = container.runtime_binary
    if binary is not None and not is_nvidia_runtime(binary):
        return Decision(devices=None, mode="none", trail=(Step(
            "agent.runtime", f"runc shim BinaryName {binary or '(empty: runc)'}",
            "the NVIDIA runtime does not handle this container: no device request is read"),))
    try:
        return decide(container.spec, toolkit)
    except InputError as e:  # a spec the engine cannot read: unknown, and the scan goes on
        return Decision(devices=None, mode="unknown", unknown=(f"{e}",))


NVIDIA_RUNTIMES = ("nvidia-container-runtime",)  # also .cdi, .legacy and -experimental variants


def is_nvidia_runtime(binary: str) -> bool:
    """Whether a runc shim's BinaryName is the NVIDIA Container Runtime (any of its mode-specific names)."""
    return binary.rsplit("/", 1)[-1].startswith(NVIDIA_RUNTIMES)


def judge_container(
    container: RuntimeContainer,
    held: HeldDevices | None,
    allocation: ContainerAllocation | None,
    gpus: Sequence[NodeGpu],
    prediction: Decision | None,
    *,
    node: str,
    settings: AuditSettings | None = None,
) -> ContainerVerdict:
    """Compare allocated, held and predicted GPUs of one container.

    Pause containers are skipped; exempt ones (GPU Operator operands, allow-listed) get no finding,
    and a container that was not scanned (``held`` None or with an error) gets none either.
    """
    if container.sandbox:
        return ContainerVerdict(container, frozenset(), None, None, None, ())
    settings = settings or AuditSettings()
    alloc = _allocated(allocation, gpus)
    have = _held(held, gpus)
    guess = _predicted(container, prediction, gpus)
    exempt = _exempt(container, settings)
    trail = (alloc.step, have.step, guess.step)
    findings: list[Finding] = []

    def report(rule_id: str, message: str) -> None:
        info = rule(rule_id)
        findings.append(Finding(
            rule_id, info.severity, message + have.note, info.remediation,
            resource=_resource(container), container=container.container or container.id, trail=trail,
            subject=None if container.pod else f"containerd container {container.id}", node=node,
        ))  # fmt: skip

    if have.gpus is not None and exempt is None:
        extra = have.gpus - alloc.gpus
        if have.gpus and not alloc.any:
            report("GG401", f"{_label(container)} holds {_gpus(have.gpus)} but the kubelet allocated it no "
                   f"nvidia.com/* device")  # fmt: skip
        elif alloc.any and not alloc.unmapped and extra:
            report("GG402", f"{_label(container)} holds {_gpus(have.gpus)}; allocated {_gpus(alloc.gpus)}: "
                   f"{_gpus(extra)} beyond its allocation")  # fmt: skip
        elif alloc.any and alloc.unmapped and len(have.gpus) > alloc.count:
            report("GG402", f"{_label(container)} holds {len(have.gpus)} GPUs ({_gpus(have.gpus)}) but was "
                   f"allocated {alloc.count} device(s)")  # fmt: skip
    if exempt is None and have.gpus is not None and guess.gpus is not None and have.gpus != guess.gpus:
        report("GG403", f"{_label(container)} holds {_gpus(have.gpus)} but the engine predicted "
               f"{_gpus(guess.gpus)}")  # fmt: skip
    return ContainerVerdict(container, alloc.gpus, have.gpus, guess.gpus, exempt, tuple(findings))


# --- the three answers as GPU UUIDs ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Allocated:
    gpus: frozenset[str]
    any: bool  # some nvidia.com/* device or a DRA claim was allocated
    unmapped: tuple[str, ...]  # ids (or claims) that name no GPU of the node
    count: int  # distinct physical devices allocated (replicas of one GPU count once)
    step: Step


def _allocated(allocation: ContainerAllocation | None, gpus: Sequence[NodeGpu]) -> _Allocated:
    if allocation is None:
        step = Step("agent.allocated", "kubelet pod-resources List", "no entry for this container: nothing allocated")
        return _Allocated(frozenset(), False, (), 0, step)
    mapped: set[str] = set()
    unmapped: list[str] = []
    physical: set[str] = set()
    read: list[str] = []
    for resource, ids in sorted(allocation.devices.items()):
        if not resource.startswith(GPU_RESOURCE_PREFIX) or not ids:
            continue
        read.append(f"{resource}=[{', '.join(ids)}]")
        for device_id in ids:
            base = device_id.split("::", 1)[0]  # time-slicing / MPS replica "<id>::<n>"
            physical.add(base)
            uuid = gpu_of(base, gpus)
            if uuid is None:
                unmapped.append(device_id)
            else:
                mapped.add(uuid)
    read += [f"DRA claim {c}" for c in allocation.claims]
    unmapped += list(allocation.claims)  # DRA devices are named by driver/pool/device, not GPU UUIDs
    any_ = bool(read)
    says = f"allocated {_gpus(mapped)}" if mapped else "no nvidia.com/* device allocated"
    if unmapped:
        says += f"; not GPUs of this node (or DRA devices): {', '.join(unmapped)}"
    step = Step(
        "agent.allocated", "kubelet pod-resources List: " + ("; ".join(read) or "no nvidia.com/* devices"), says
    )
    return _Allocated(frozenset(mapped), any_, tuple(unmapped), len(physical) + len(allocation.claims), step)


@dataclass(frozen=True, slots=True)
class _Held:
    gpus: frozenset[str] | None
    step: Step
    note: str  # said in every finding's message: control nodes alone give no GPU


def _held(held: HeldDevices | None, gpus: Sequence[NodeGpu]) -> _Held:
    if held is None or held.error is not None:
        why = "no running task" if held is None else held.error
        return _Held(None, Step("agent.held", "/proc/<pid>/root/dev", f"not scanned: {why}"), "")
    by_minor = {g.minor: g.uuid for g in gpus}
    found = frozenset(by_minor.get(n.minor, f"nvidia{n.minor}") for n in held.nodes if n.kind == "gpu")
    paths = ", ".join(n.path for n in held.nodes) or "none"
    others = [n.path for n in held.nodes if n.kind in ("control", "uvm")]
    note = ""
    if others:
        note = f" (it also holds {', '.join(others)}: no GPU access without an nvidiaN node)"
    says = f"holds {_gpus(found)}" if found else "holds no GPU device node"
    if others and not found:
        says += f" ({', '.join(others)} alone give no GPU access)"
    return _Held(found, Step("agent.held", f"/dev NVIDIA device nodes: {paths}", says), note)


@dataclass(frozen=True, slots=True)
class _Predicted:
    gpus: frozenset[str] | None
    step: Step


def _predicted(container: RuntimeContainer, prediction: Decision | None, gpus: Sequence[NodeGpu]) -> _Predicted:
    every = frozenset(g.uuid for g in gpus)
    if not gpus and (container.privileged or (prediction is not None and prediction.exposure is Exposure.ALL)):
        return _Predicted(None, Step("agent.predicted", "driver GPU list", "cannot say: the node's GPUs are unknown"))
    if container.privileged:
        return _Predicted(every, Step("agent.predicted", "OCI spec: privileged", f"every GPU of the node: "
                                      f"{_gpus(every)}"))  # fmt: skip
    by_minor = {g.minor: g.uuid for g in gpus}
    spec_nodes = frozenset(
        by_minor.get(n.minor, f"nvidia{n.minor}") for n in container.linux_devices if n.kind == "gpu"
    )
    spec_read = ", ".join(n.path for n in container.linux_devices if n.kind == "gpu") or "no nvidiaN"
    if prediction is None:
        return _Predicted(None, Step("agent.predicted", "engine", "no prediction"))
    exposure = prediction.exposure
    read = f"OCI spec linux.devices: {spec_read}; engine toolkit decision (mode {prediction.mode}): {exposure.value}"
    if exposure in (Exposure.UNKNOWN, Exposure.FAILS):
        why = "; ".join(prediction.unknown or ()) or prediction.error or exposure.value
        return _Predicted(None, Step("agent.predicted", read, f"cannot say: {why}"))
    if exposure is Exposure.ALL:
        return _Predicted(every, Step("agent.predicted", read, f"every GPU of the node: {_gpus(every)}"))
    toolkit = set[str]()
    if exposure is Exposure.DEVICES:
        ids = [d for d in prediction.devices or () if d not in ("", "none")]
        ids += [c.split("=", 1)[1] for c in prediction.cdi_devices or () if "=" in c]
        for device_id in ids:
            uuid = gpu_of(device_id.split("::", 1)[0], gpus)
            if uuid is None:
                return _Predicted(None, Step("agent.predicted", read, f"cannot say: {device_id!r} names no GPU "
                                             "of this node"))  # fmt: skip
            toolkit.add(uuid)
    predicted = spec_nodes | toolkit
    return _Predicted(predicted, Step("agent.predicted", read, f"predicts {_gpus(predicted)}"))


def gpu_of(device_id: str, gpus: Sequence[NodeGpu]) -> str | None:
    """The UUID of the node GPU a device id names: GPU UUID, index (= device minor), MIG UUID or MIG index."""
    device_id = device_id.strip()
    for g in gpus:
        if device_id == g.uuid or device_id in g.mig_uuids:
            return g.uuid
    old_mig = _OLD_MIG.match(device_id)
    if old_mig is not None:
        return gpu_of(old_mig.group(1), gpus)
    mig_index = _MIG_INDEX.match(device_id)
    index = mig_index.group(1) if mig_index else device_id
    if index.isdigit():
        return next((g.uuid for g in gpus if g.minor == int(index)), None)
    return None


# --- who may hold GPUs, and how findings name the container ------------------------------------------


def _exempt(container: RuntimeContainer, settings: AuditSettings) -> str | None:
    namespace, pod = container.namespace or "", container.pod or ""
    if namespace and settings.is_trusted(namespace):
        app = container.labels.get("app", "")
        if is_component_app(app):
            return f"GPU Operator component (label app={app}, namespace {namespace}): it reaches all GPUs by design"
        prefix = next(
            (p for p in (*COMPONENT_APPS, *COMPONENT_APP_PREFIXES) if pod.startswith(p.rstrip("-") + "-")), None
        )
        if prefix is not None:
            return f"GPU Operator component (pod {pod}, namespace {namespace}): it reaches all GPUs by design"
    if not container.pod:
        return None
    reason = settings.allowed(namespace, "", container.labels, container.image)
    return None if reason is None else f"allow-listed: {reason}"


def _resource(container: RuntimeContainer) -> Resource | None:
    return Resource("v1", "Pod", container.namespace, container.pod) if container.pod else None


def _label(container: RuntimeContainer) -> str:
    if container.pod:
        return f"Container {container.container or container.id[:12]} of pod {container.namespace}/{container.pod}"
    return f"Container {container.id[:12]} (no Kubernetes labels)"


def _gpus(uuids: Iterable[str]) -> str:
    ordered = sorted(uuids)
    return ", ".join(ordered) if ordered else "no GPU"
