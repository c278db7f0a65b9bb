"""End to end: which GPUs each container of a pod gets on a node.

The chain, each link a ``Step`` in the trail: the device plugin allocates
GPUs and answers Allocate; kubelet and the CRI runtime build the OCI spec;
the CRI runtime may inject CDI devices itself (``enable_cdi``, the NRI
plugin); the NVIDIA runtime or hook, when it handles the container, makes the
toolkit decision (``gpuguard.engine.toolkit.decide``); privileged containers
get every host device regardless.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from gpuguard.engine.device_plugin.allocate import Allocation, allocate
from gpuguard.engine.kubelet.env import Objects, oci_env, pod_env
from gpuguard.engine.kubelet.oci import container_spec, host_devices
from gpuguard.engine.toolkit.decide import decide
from gpuguard.model.container import ContainerSpec
from gpuguard.model.decision import ContainerDecision, Decision, Exposure, Step
from gpuguard.model.node import NVIDIA_AMOUNT_RESOURCES, NVIDIA_RESOURCE_PREFIX, Gpu, NodeProfile, RuntimeHandler
from gpuguard.model.pod import Container, Pod
from gpuguard.model.version import v

KIND_ORDER = {"initContainer": 0, "container": 1, "ephemeralContainer": 2}
CDI_ANNOTATION_PREFIX = "cdi.k8s.io/"  # what the CDI library parses from CRI annotations
NRI_DOMAIN = "nvidia.cdi.k8s.io"
MANAGEMENT = "management.nvidia.com/gpu"
VISIBLE = "NVIDIA_VISIBLE_DEVICES"
VOID_ENV = VISIBLE + "=void"
# nvcdi's wrapper adds NVIDIA_VISIBLE_DEVICES=void to the common edits of every spec it
# generates: toolkit v1.15.0 (pkg/nvcdi), vendored by the plugin from v0.15.0
# (v0.15.0:vendor/github.com/NVIDIA/nvidia-container-toolkit/pkg/nvcdi/lib.go).
PLUGIN_VOID_SPEC = v("0.15.0")
TOOLKIT_VOID_SPEC = v("1.15.0")
PLUGIN_VENDOR = "k8s.device-plugin.nvidia.com"


@dataclass(frozen=True, slots=True)
class _Fail:
    """Why a container cannot start (allocation or runtime handler), decided once per pod."""

    error: str


@dataclass(frozen=True, slots=True)
class _NodeFacts:
    """Per-node facts every container needs, computed once per pod."""

    gpus: _Gpus
    void_vendors: frozenset[str]
    swarm: tuple[str, ...]


class _Gpus:
    """node.gpus indexed by uuid (replica suffix dropped) and by index."""

    __slots__ = ("by_id", "known")

    def __init__(self, gpus: Sequence[Gpu]) -> None:
        self.known = bool(gpus)
        self.by_id: dict[str, str] = {}
        for gpu in gpus:
            base = gpu.uuid.split("::", 1)[0]
            self.by_id.setdefault(base, base)
            self.by_id.setdefault(gpu.index, base)

    def resolve(self, device: str) -> str | None:
        return self.by_id.get(device)


def requested(container: Container) -> int:
    """Devices requested through ``nvidia.com/*`` resources (ephemeral containers cannot request any).

    HAMi's amounts (``nvidia.com/gpumem``, ``gpucores``, ...) size a share of the
    GPUs counted by ``nvidia.com/gpu``; they are not devices themselves.
    """
    if container.kind == "ephemeralContainer":
        return 0
    return sum(
        n
        for name, n in container.resources.items()
        if name.startswith(NVIDIA_RESOURCE_PREFIX) and name not in NVIDIA_AMOUNT_RESOURCES
    )


def plan_devices(pod: Pod, gpus: Sequence[Gpu]) -> dict[str, tuple[Gpu, ...] | _Fail]:
    """Which GPUs kubelet's device manager hands each container, simply.

    App containers take the next free GPUs of ``node.gpus`` in order. Init
    containers run one at a time and their devices are reused by later
    containers, so each init container takes the first GPUs again. Real
    kubelet asks the plugin for a preferred allocation; which GPU you get never
    changes how many you see.
    """
    plan: dict[str, tuple[Gpu, ...] | _Fail] = {}
    cursor = 0
    for c in pod.containers:
        n = requested(c)
        if c.kind == "initContainer":
            start, stop = 0, n
        else:
            start, stop = cursor, cursor + n
            cursor = stop
        if stop > len(gpus):
            plan[c.name] = _Fail(f"Insufficient nvidia.com/gpu: {stop} needed, the node has {len(gpus)}")
        else:
            plan[c.name] = tuple(gpus[start:stop])
    return plan


def resolve_handler(pod: Pod, node: NodeProfile) -> RuntimeHandler | _Fail:
    """RuntimeClass → handler; no class → the runtime's default handler (plain runc when not listed)."""
    runtime = node.runtime
    if pod.runtime_class_name is None:
        name = runtime.default_handler
        return runtime.handlers.get(name) or RuntimeHandler(name)
    handler_name = node.runtime_classes.get(pod.runtime_class_name)
    if handler_name is None:
        return _Fail(f'pod rejected: RuntimeClass "{pod.runtime_class_name}" not found')
    handler = runtime.handlers.get(handler_name)
    if handler is None and handler_name == runtime.default_handler:
        return RuntimeHandler(handler_name)
    if handler is None:
        return _Fail(f'failed to create containerd task: no runtime for "{handler_name}" is configured')
    return handler


def nri_devices(pod: Pod, container: Container, node: NodeProfile) -> tuple[tuple[str, ...], str]:
    """CDI devices the toolkit's NRI plugin injects from pod annotations, and why.

    ``plugin.GetEffectiveAnnotation``: ``nvidia.cdi.k8s.io/container.<name>``,
    then ``/pod``, then the bare domain. Toolkit v1.19
    (v1.19.0:cmd/nvidia-ctk-installer/container/runtime/nri/plugin.go) honours
    pods in the toolkit's namespace only; v1.20 (v1.20.0:…/nri/plugin.go)
    honours any namespace unless the value contains ``management.nvidia.com/gpu``,
    which needs the NRI namespace or ``NRI_MANAGEMENT_CDI_DEVICE_NAMESPACES``.
    """
    nri = node.nri
    annotations = pod.annotations
    value = None
    for key in (f"{NRI_DOMAIN}/container.{container.name}", f"{NRI_DOMAIN}/pod", NRI_DOMAIN):
        if key in annotations:
            value = annotations[key]
            break
    if value is None:
        return (), "no nvidia.cdi.k8s.io annotation"
    if not nri.any_namespace_devices:
        if pod.namespace != nri.operator_namespace:
            return (), f"namespace {pod.namespace} is not the toolkit namespace {nri.operator_namespace}"
    elif MANAGEMENT in value and pod.namespace not in (nri.operator_namespace, *nri.management_namespaces):
        return (
            (),
            f"management devices are refused outside {nri.operator_namespace} and the management namespaces",
        )
    return tuple(value.split(",")), f"injects {value}"


def _cri_cdi_devices(allocation: Allocation | None) -> tuple[str, ...]:
    """CDI names the CRI runtime injects itself: the CDIDevices field, then ``cdi.k8s.io/`` annotations."""
    if allocation is None:
        return ()
    names = list(allocation.cdi_devices)
    for key in sorted(allocation.annotations):
        if key.startswith(CDI_ANNOTATION_PREFIX):
            for name in allocation.annotations[key].split(","):
                if name not in names:
                    names.append(name)
    return tuple(names)


def _void_vendors(node: NodeProfile) -> frozenset[str]:
    """CDI vendors whose specs set NVIDIA_VISIBLE_DEVICES=void on this node (nvcdi-generated specs)."""
    vendors: set[str] = set()
    if node.device_plugin is not None and node.device_plugin.version >= PLUGIN_VOID_SPEC:
        vendors.add(PLUGIN_VENDOR)
    if node.toolkit.version >= TOOLKIT_VOID_SPEC:
        vendors.update(("management.nvidia.com", "nvidia.com"))
    return frozenset(vendors)


def _resolve_cdi(name: str, gpus: _Gpus) -> tuple[str | None, str | None]:
    """A CDI name → (GPU uuid, "all" or None for a non-GPU device, unresolvable error)."""
    kind, sep, device = name.partition("=")
    if not sep or "/" not in kind:
        return None, f"unresolvable CDI devices {name}"
    vendor, _, cls = kind.partition("/")
    if cls != "gpu" or "mode=" in device:
        return None, None
    if device == "all":
        return "all", None
    if device == "none":
        return None, None
    if device == "":
        # Toolkit v1.18.0-1.18.1 turn NVIDIA_VISIBLE_DEVICES=none into "<kind>=": jit-cdi then
        # generated every GPU (fixed in v1.18.2, commit 2a9f0336); no on-disk spec has that name.
        if vendor == "runtime.nvidia.com":
            return "all", None
        return None, f"unresolvable CDI devices {name}"
    if vendor == "management.nvidia.com":
        return None, f"unresolvable CDI devices {name}"  # the management spec holds only "all"
    found = gpus.resolve(device)
    if found is None:
        return (None, f"unresolvable CDI devices {name}") if gpus.known else (device, None)
    return found, None


def _toolkit_gpus(decision: Decision, gpus: _Gpus) -> tuple[list[str], str | None]:
    """GPUs a toolkit decision gives, mapped back to node.gpus, or the error that stops the container."""
    if decision.devices is None:
        return [], None
    out: list[str] = []
    if decision.cdi_devices is not None:
        for name in decision.cdi_devices:
            gpu, error = _resolve_cdi(name, gpus)
            if error is not None:
                return [], error
            if gpu is not None and gpu not in out:
                out.append(gpu)
        return out, None
    for device in decision.devices:
        if device in ("", "none"):
            continue
        if device.lower() == "all":  # libnvidia-container select_devices compares case-insensitively
            return ["all"], None
        found = gpus.resolve(device)
        if found is None:
            if gpus.known:
                return [], f"nvidia-container-cli: device error: {device}: unknown device"
            found = device
        if found not in out:
            out.append(found)
    return out, None


def _toolkit_component(handler: RuntimeHandler, node: NodeProfile) -> str | None:
    if handler.nvidia:
        return "runtime"
    if node.runtime.kind == "cri-o" and node.runtime.oci_hook_all:
        return "hook"
    return None


def decide_pod(
    pod: Pod,
    node: NodeProfile,
    *,
    image_env: Mapping[str, tuple[str, ...]] | None = None,
    objects: Objects | None = None,
) -> tuple[ContainerDecision, ...]:
    """One ContainerDecision per init, app and ephemeral container, in that order.

    ``image_env`` maps an image reference to its config's Env list; an image
    not in it has unknown env. ``objects`` maps ``(namespace, kind, name)`` of
    ConfigMaps/Secrets to their data; one not there is unknown, not absent.

    ``sees`` joins every way a GPU reaches the container, as GPU UUIDs of
    ``node.gpus`` (replica suffix dropped): CDI devices the CRI runtime or NRI
    injects, the plugin's device nodes (PASS_DEVICE_SPECS), the toolkit's
    devices; ``("all",)`` for every GPU or a privileged container with host
    devices. A name that resolves to no GPU of a known inventory fails the
    container, as ``unresolvable CDI devices`` or nvidia-container-cli's
    ``unknown device`` do.
    """
    plan = plan_devices(pod, node.gpus)
    handler = resolve_handler(pod, node)
    swarm = tuple(s.strip() for s in node.toolkit.config.swarm_resource.split(",") if s.strip())
    facts = _NodeFacts(_Gpus(node.gpus), _void_vendors(node), swarm)
    ordered = sorted(pod.containers, key=lambda c: KIND_ORDER.get(c.kind, 1))
    return tuple(
        _decide_container(
            pod=pod,
            c=c,
            node=node,
            devices=plan[c.name],
            handler_or_fail=handler,
            node_facts=facts,
            image_env=image_env,
            objects=objects,
        )
        for c in ordered
    )


@dataclass(slots=True)
class _Ctx:
    """What a container's decision has gathered so far, for early exits."""

    pod: Pod
    c: Container
    n: int
    trail: list[Step]
    allocated: tuple[str, ...] = ()
    handler: str | None = None

    def fail(self, error: str, toolkit: Decision | None = None) -> ContainerDecision:
        pod, c = self.pod, self.c
        return ContainerDecision(
            pod.name, pod.namespace, c.name, c.kind, self.n, self.allocated, self.handler, toolkit, (), False,
            None, Exposure.FAILS, error, None, tuple(self.trail),
        )  # fmt: skip


def _decide_container(
    *,
    pod: Pod,
    c: Container,
    node: NodeProfile,
    devices: tuple[Gpu, ...] | _Fail,
    handler_or_fail: RuntimeHandler | _Fail,
    node_facts: _NodeFacts,
    image_env: Mapping[str, tuple[str, ...]] | None,
    objects: Objects | None,
) -> ContainerDecision:
    trail: list[Step] = []
    n = requested(c)
    ctx = _Ctx(pod, c, n, trail)
    gpus = node_facts.gpus
    if isinstance(devices, _Fail):
        trail.append(Step("k8s.allocate", f"resources nvidia.com/*={n}", devices.error))
        return ctx.fail(devices.error)
    allocated = tuple(dict.fromkeys(g.uuid.split("::", 1)[0] for g in devices))
    ctx.allocated = allocated
    allocation: Allocation | None = None
    if n:
        plugin = node.device_plugin
        if plugin is None:
            error = "no device plugin serves nvidia.com/gpu on this node"
            trail.append(Step("k8s.allocate", f"resources nvidia.com/*={n}", error))
            return ctx.fail(error)
        trail.append(Step("k8s.allocate", f"resources nvidia.com/*={n}", "allocates " + ",".join(allocated)))
        allocation = allocate(plugin, devices)
        if allocation.error is not None:
            trail.append(Step("k8s.device-plugin", f"device plugin v{plugin.version}", allocation.error))
            return ctx.fail(allocation.error)
        trail.append(Step("k8s.device-plugin", _plugin_read(plugin.version, plugin.list_strategies), _says(allocation)))

    if isinstance(handler_or_fail, _Fail):
        trail.append(Step("k8s.runtime-class", f"runtimeClassName={pod.runtime_class_name}", handler_or_fail.error))
        return ctx.fail(handler_or_fail.error)
    handler = handler_or_fail
    ctx.handler = handler.name
    trail.append(
        Step(
            "k8s.runtime-class",
            f"runtimeClassName={pod.runtime_class_name or '(none)'}",
            f"handler {handler.name}" + (" (nvidia)" if handler.nvidia else ""),
        )
    )

    penv = pod_env(pod, c, objects, swarm_names=node_facts.swarm)
    if penv.error is not None:
        trail.append(Step("k8s.env", "env valueFrom", f"CreateContainerConfigError: {penv.error}"))
        return ctx.fail(penv.error)
    image = image_env.get(c.image) if image_env is not None else None
    image_unknown = None if image is not None else f"image {c.image!r} was not inspected"
    cri_env = (*(allocation.envs if allocation is not None else ()), *penv.values)
    env = oci_env(image or (), cri_env)
    layers = _env_layers(VISIBLE, image, allocation.envs if allocation is not None else (), penv.values)
    if layers:
        trail.append(Step("k8s.env", f"{VISIBLE} set by " + ", then ".join(layers), "the last one wins"))
    spec = container_spec(
        pod, c, env=env, allocation=allocation, handler=handler, runtime=node.runtime.kind,
        unknown_env=penv.unknown, image_env_unknown=image_unknown,
    )  # fmt: skip

    injected: list[str] = []
    cri_names = _cri_cdi_devices(allocation)
    if cri_names:
        if node.runtime.enable_cdi:
            injected.extend(cri_names)
            trail.append(Step("k8s.cdi", "CRI CDIDevices + cdi.k8s.io/ annotations", "injects " + ",".join(cri_names)))
        else:
            trail.append(Step("k8s.cdi", "enable_cdi=false", "the CRI runtime ignores " + ",".join(cri_names)))
    if node.nri.enabled:
        names, why = nri_devices(pod, c, node)
        trail.append(Step("k8s.nri", "pod annotations nvidia.cdi.k8s.io/*", why))
        injected.extend(x for x in names if x not in injected)

    sees: list[str] = []
    for name in injected:
        gpu, cdi_error = _resolve_cdi(name, gpus)
        if cdi_error is not None:
            trail.append(Step("k8s.cdi", name, cdi_error))
            return ctx.fail(cdi_error)
        if gpu is not None and gpu not in sees:
            sees.append(gpu)
    if injected and any(x.split("/", 1)[0] in node_facts.void_vendors for x in injected):
        spec = _with_env(spec, VOID_ENV)
        trail.append(Step("k8s.cdi", "injected CDI spec containerEdits.env", "appends NVIDIA_VISIBLE_DEVICES=void"))
    if allocation is not None and allocation.device_specs:
        trail.append(Step("k8s.device-specs", "PASS_DEVICE_SPECS", "device nodes of " + ",".join(allocated)))
        sees.extend(g for g in allocated if g not in sees)

    privileged_devices = host_devices(c.security, handler)
    if privileged_devices:
        trail.append(Step("k8s.privileged", "securityContext.privileged=true", "every host device node"))

    decision: Decision | None = None
    component = _toolkit_component(handler, node)
    if component is not None:
        decision = decide(spec, node.toolkit, component=component, forced_mode=handler.mode)
        trail.append(Step("k8s.toolkit", f"{component} on handler {handler.name}", _decision_says(decision)))
        if decision.error is not None:
            return ctx.fail(decision.error, decision)
        if not decision.unknown:
            more, name_error = _toolkit_gpus(decision, gpus)
            if name_error is not None:
                trail.append(Step("k8s.toolkit", "device names", name_error))
                return ctx.fail(name_error, decision)
            sees.extend(g for g in more if g not in sees)
    else:
        trail.append(Step("k8s.toolkit", f"handler {handler.name}", "the NVIDIA toolkit is not involved"))

    if privileged_devices or "all" in sees:
        final: tuple[str, ...] | None = ("all",)
        exposure = Exposure.ALL
        unknown = None
    elif decision is not None and decision.unknown:
        final, exposure, unknown = None, Exposure.UNKNOWN, decision.unknown
    else:
        final = tuple(sees)
        unknown = None
        if final:
            exposure = Exposure.DEVICES
        elif decision is not None and decision.devices is not None:
            exposure = Exposure.LIBRARIES
        else:
            exposure = Exposure.NONE
    trail.append(Step("k8s.sees", "all of the above", _sees_says(final, exposure)))
    return ContainerDecision(
        pod.name, pod.namespace, c.name, c.kind, n, allocated, handler.name, decision, tuple(injected),
        privileged_devices, final, exposure, None, unknown, tuple(trail),
    )  # fmt: skip


def _env_layers(
    name: str,
    image: Sequence[str] | None,
    plugin: Sequence[tuple[str, str]],
    pod: Sequence[tuple[str, str]],
) -> list[str]:
    """Who set ``name``, in the order containerd applies them: image, device plugin, pod spec."""
    key = name + "="
    found = [f"image {entry[len(key):]!r}" for entry in image or () if entry.startswith(key)]
    found += [f"device plugin {value!r}" for env, value in plugin if env == name]
    found += [f"pod env {value!r}" for env, value in pod if env == name]
    # Worth telling when a layer above the image is involved.
    return found if len(found) > 1 or (found and not found[0].startswith("image")) else []


def _with_env(spec: ContainerSpec, entry: str) -> ContainerSpec:
    """Append one env entry; it is last, so it also settles a variable that was unknown."""
    name = entry.split("=", 1)[0]
    unknown = {k: why for k, why in spec.unknown_env.items() if k != name}
    return ContainerSpec(
        env=(*spec.env, entry), bounding=spec.bounding, mounts=spec.mounts, annotations=spec.annotations,
        unknown_env=unknown, image_env_unknown=spec.image_env_unknown,
    )  # fmt: skip


def _plugin_read(version: object, strategies: Sequence[str]) -> str:
    return f"device plugin v{version} DEVICE_LIST_STRATEGY={','.join(strategies)}"


def _says(a: Allocation) -> str:
    parts = [f"env {k}={val}" for k, val in a.envs]
    parts += [f"mount {m.source}->{m.destination}" for m in a.mounts]
    parts += [f"annotation {k}={val}" for k, val in a.annotations.items()]
    parts += [f"CDI device {d}" for d in a.cdi_devices]
    if a.device_specs:
        parts.append(f"{len(a.device_specs)} device specs")
    parts += list(a.notes)
    return "; ".join(parts) or "an empty response"


def _decision_says(d: Decision) -> str:
    if d.error is not None:
        return f"fails: {d.error}"
    if d.unknown:
        return "unknown: " + "; ".join(d.unknown)
    if d.devices is None:
        return f"mode {d.mode}: not a GPU container"
    shown = d.cdi_devices if d.cdi_devices is not None else d.devices
    return f"mode {d.mode}: " + ",".join(x or '""' for x in shown)


def _sees_says(sees: tuple[str, ...] | None, exposure: Exposure) -> str:
    if sees is None:
        return exposure.value
    if sees == ("all",):
        return "every GPU on the node"
    return f"{exposure.value}: " + (",".join(sees) if sees else "no GPU")
