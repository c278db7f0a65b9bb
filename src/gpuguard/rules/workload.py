"""Workload rules GG101-GG108: one pod, its engine decisions, the node.

Container rules are ``ContainerRule`` rows: a cheap predicate over the
container's decision and spec, and a builder that writes the message, the
remediation and the evidence steps only when the predicate fires. Pod rules
(GG105 runtime class, GG106 annotations) are ``PodRule`` rows. ``check_pod``
runs in audits of tens of thousands of objects, so the predicates read plain
fields first and nothing is formatted unless a finding is made.

A container "requests devices" when it asks for any ``nvidia.com/*`` resource
(whole GPUs, MIG devices, time-slicing/MPS replicas, HAMi memory/cores) or its
pod has DRA ``resourceClaims``; what a claim allocates is not modelled, so a
claim-only container is never judged by GG101/GG102/GG104.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial

from gpuguard.engine.kubelet.oci import bounding_set
from gpuguard.engine.paths import clean
from gpuguard.engine.pod import requested
from gpuguard.engine.toolkit.request import MOUNT_ROOT
from gpuguard.model.decision import ContainerDecision, Exposure, Step
from gpuguard.model.finding import Exempt, Finding, Resource
from gpuguard.model.node import NodeProfile
from gpuguard.model.pod import Container, Pod
from gpuguard.rules.exempt import exempt_reason, untrusted_component_hint
from gpuguard.rules.node import hardening, node_facts
from gpuguard.rules.registry import rule
from gpuguard.rules.settings import AuditSettings

NVD = "NVIDIA_VISIBLE_DEVICES"
NVIDIA_HANDLERS = frozenset({"nvidia", "nvidia-cdi", "nvidia-legacy", "nvidia-experimental"})
NRI_DOMAIN = "nvidia.cdi.k8s.io"
IMAGE_UNKNOWN = "may be set by the image"
_CLAIMS_NOTE = " (The pod has DRA resourceClaims, treated as a device request; what they allocate is not modelled.)"
_KIND_WORDS = {"container": "container", "initContainer": "init container", "ephemeralContainer": "ephemeral container"}
_VOID = "set NVIDIA_VISIBLE_DEVICES=void in its env (never `none`: toolkit 1.18.0-1.18.1 gave every GPU for it)"


@dataclass(frozen=True, slots=True)
class ImageFacts:
    """Why images the audit tried to inspect (--resolve-images) stay unknown, so GG108 can name it."""

    problems: Mapping[str, str] = field(default_factory=dict)  # image -> "could not be inspected: <why>"


NO_IMAGE_FACTS = ImageFacts()


@dataclass(slots=True)
class _Box:
    """One container under judgement: its spec, its decision and the pod-wide facts."""

    pod: Pod
    c: Container
    d: ContainerDecision
    node: NodeProfile
    settings: AuditSettings
    n: int  # nvidia.com/* requested
    requests: bool  # n > 0 or DRA claims
    host: Mapping[str, str]  # hostPath volume name -> host path
    images: ImageFacts = NO_IMAGE_FACTS

    @property
    def who(self) -> str:
        return f"{_KIND_WORDS.get(self.c.kind, self.c.kind)} '{self.c.name}'"


Built = tuple[str, str, tuple[Step, ...]]  # message, remediation, evidence steps


@dataclass(frozen=True, slots=True)
class ContainerRule:
    """A container rule: ``applies`` is cheap and runs for every container; ``build`` only when it fires."""

    id: str
    applies: Callable[[_Box], bool]
    build: Callable[[_Box], Built]


# --- shared readings ---------------------------------------------------------------------------------


def _sees(d: ContainerDecision) -> str:
    if d.sees is None:
        return d.exposure.value
    if "all" in d.sees:
        return "every GPU on the node"
    return f"{len(d.sees)} GPU(s) ({', '.join(d.sees)})"


def _toolkit_step(d: ContainerDecision, name: str) -> Step | None:
    if d.toolkit is None:
        return None
    found = None
    for step in d.toolkit.trail:
        if step.rule == name:
            found = step
    return found


def _env_granted(d: ContainerDecision) -> bool:
    """The toolkit gave devices and read them from the env (not annotations or mounts)."""
    tk = d.toolkit
    if tk is None or tk.exposure not in (Exposure.ALL, Exposure.DEVICES):
        return False
    sources = {s.rule for s in tk.trail if s.rule.startswith("toolkit.source.")}
    return "toolkit.source.env" in sources and not sources & {"toolkit.source.annotations", "toolkit.source.mounts"}


def _last_env_layer(d: ContainerDecision) -> str | None:
    """Who set NVIDIA_VISIBLE_DEVICES last (image, device plugin, pod env), from the k8s.env step."""
    prefix = f"{NVD} set by "
    for step in reversed(d.trail):
        if step.rule == "k8s.env" and step.read.startswith(prefix):
            return step.read[len(prefix) :].rsplit(", then ", 1)[-1]
    return None


def _env_origin(x: _Box) -> tuple[str, str]:
    """(kind, words): where the NVIDIA_VISIBLE_DEVICES the toolkit read came from, in the spec's words.

    kind is "image", "legacy" (unset in a legacy CUDA image), "env", "envFrom" or "other".
    """
    c, d = x.c, x.d
    layer = _last_env_layer(d)
    source = _toolkit_step(d, "toolkit.source.env")
    if layer is None or layer.startswith("image"):
        if source is not None and f"{NVD} unset" in source.read:
            return "legacy", (
                f"its image {c.image} is a legacy CUDA image (CUDA_VERSION set, no NVIDIA_REQUIRE_CUDA), and the "
                f"toolkit reads an unset {NVD} there as all"
            )
        shown = source.read.removeprefix("process.env ") if source is not None else NVD
        return "image", f"its image env ({c.image} sets {shown})"
    if layer.startswith("pod env"):
        entry = next((e for e in reversed(c.env) if e.name == NVD), None)
        if entry is not None and entry.value_from is None:
            return "env", f"its env entry {NVD}={entry.value}"
        if entry is not None and entry.value_from is not None:
            ref = entry.value_from
            return "env", f"its env entry {NVD} from {ref.kind} {ref.name} key {ref.key!r}"
        sources = [f"{s.kind.removesuffix('Ref')} {s.name}" for s in c.env_from if NVD.startswith(s.prefix)]
        value = layer.removeprefix("pod env ")
        return "envFrom", f"its envFrom ({', '.join(sources) or 'a ConfigMap/Secret'}), which sets {value}"
    return "other", f"the {layer}"


def _gate(d: ContainerDecision) -> str:
    gate = _toolkit_step(d, "toolkit.gate")
    return f"{gate.read} => {gate.says}" if gate is not None else "the toolkit honours it"


def _handler(x: _Box) -> str:
    rc = x.pod.runtime_class_name
    if rc:
        return f"runtimeClassName {rc} (handler {x.d.handler})"
    return f"the node's default handler {x.d.handler}"


def _node_fix(x: _Box) -> str:
    return "Node-wide: " + hardening(x.node)


def _runtime_class_fix(x: _Box) -> str:
    rc = x.pod.runtime_class_name
    if rc and _nvidia_class(rc, x.node) is not None:
        return f" Remove runtimeClassName: {rc} (GPU requests do not need it)."
    return ""


# --- GG101 / GG102 / GG108: what the engine decided ---------------------------------------------------------


def _gg101(x: _Box) -> Built:
    kind, origin = _env_origin(x)
    msg = (
        f"{x.who} requests no GPU but sees {_sees(x.d)}: {NVD} comes from {origin}; "
        f"{_gate(x.d)}; it runs on {_handler(x)}."
    )
    first = {
        "env": f"Remove the {NVD} entry from its env, or {_VOID}",
        "envFrom": f"Remove {NVD} from the envFrom source, or {_VOID}",
    }.get(kind, _VOID[0].upper() + _VOID[1:])
    remedy = f"{first}; or request the GPUs it needs (nvidia.com/gpu).{_runtime_class_fix(x)} {_node_fix(x)}"
    step = Step("GG101", f"resources nvidia.com/*={x.n}; {NVD} from {origin}", f"no GPU requested; sees {_sees(x.d)}")
    return msg, remedy, (step,)


def _gg102_cause(x: _Box) -> tuple[str, str]:
    d = x.d
    if d.host_devices:
        return "it is privileged, so it gets every host device node", "Drop privileged: true."
    layer = _last_env_layer(d)
    if layer is not None and layer.startswith("pod env"):
        return (
            f"its own env ({_env_origin(x)[1]}) overrides the device plugin's list",
            f"Remove {NVD} from its env and let the device plugin's allocation decide.",
        )
    if x.pod.runtime_class_name and d.toolkit is not None:
        return (
            f"runtimeClassName {x.pod.runtime_class_name} sends it through the NVIDIA runtime, where "
            f"{_env_origin(x)[1]} is not replaced by the allocation",
            f"Remove runtimeClassName: {x.pod.runtime_class_name}, or {_VOID}.",
        )
    return f"the NVIDIA runtime grants {_sees(d)}", _VOID[0].upper() + _VOID[1:] + "."


def _gg102(x: _Box) -> Built:
    why, fix = _gg102_cause(x)
    allocated = ", ".join(x.d.allocated) or "nothing"
    msg = f"{x.who} was allocated {allocated} but sees {_sees(x.d)}: {why}."
    step = Step("GG102", f"allocated {allocated}", f"sees {_sees(x.d)}")
    return msg, f"{fix} {_node_fix(x)}", (step,)


def _undecided(x: _Box) -> tuple[list[str], list[str]]:
    """Unknowns that make GG108 fire: (spec causes, GPU-family image causes)."""
    spec: list[str] = []
    image: list[str] = []
    for why in x.d.unknown or ():
        if IMAGE_UNKNOWN in why:
            image.append(why)
        else:
            spec.append(why)
    if image and x.c.image not in x.images.problems and not x.settings.is_gpu_image(x.c.image):
        image = []  # assumed not to set it; the audit counts that assumption
    return spec, image


def _gg108_applies(x: _Box) -> bool:
    if x.d.exposure is not Exposure.UNKNOWN:
        return False
    spec, image = _undecided(x)
    return bool(spec or image)


def _gg108(x: _Box) -> Built:
    spec, image = _undecided(x)
    parts = []
    fixes = []
    if spec:
        parts.append("; ".join(spec))
        fixes.append("give the audit the ConfigMaps/Secrets named above")
    problem = x.images.problems.get(x.c.image)
    if image and problem is not None:
        parts.append(f"image {x.c.image} {problem}")
        fixes.append(
            "pin it to one platform (a per-platform digest)" if "platforms" in problem else
            "let the audit read the image (--registry-auth, a pull Secret among the inputs, --image-source)"
        )  # fmt: skip
    elif image:
        pattern = x.settings.gpu_image_pattern(x.c.image)
        parts.append(
            f"image {x.c.image} was not inspected and matches the GPU image family {pattern!r}, whose images "
            f"usually set {NVD}=all"
        )
        fixes.append("inspect the image (--resolve-images)")
    msg = f"{x.who}: GPU exposure cannot be decided on {_handler(x)}: " + "; ".join(parts) + "."
    remedy = f"To decide it, {' or '.join(fixes)}; to make it not matter, {_VOID}.{_runtime_class_fix(x)}"
    steps = tuple(Step("GG108", "unknown input", why) for why in (*spec, *image))
    return msg, remedy, steps


# --- GG103 / GG104 / GG107: what the spec asks for ------------------------------------------------------------


def _mount_paths(x: _Box) -> list[tuple[str, str, str]]:
    """(volume, effective host path, mount path) of the container's hostPath mounts."""
    out = []
    for m in x.c.volume_mounts:
        host = x.host.get(m.name)
        if host is not None:
            path = clean(f"{host}/{m.sub_path}") if m.sub_path else clean(host)
            out.append((m.name, path, m.mount_path))
    return out


def _is_device_path(path: str) -> bool:
    return path in ("/", "/dev", "/dev/dri") or path.startswith(("/dev/nvidia", "/dev/dri/"))


def _device_mounts(x: _Box) -> list[tuple[str, str, str]]:
    return [m for m in _mount_paths(x) if _is_device_path(m[1])]


def _gg103(x: _Box) -> Built:
    mounts = _device_mounts(x)
    shown = ", ".join(f"hostPath {p}{' (the host root, /dev included)' if p == '/' else ''} at {at}"
                      for _, p, at in mounts)  # fmt: skip
    privileged = " It is privileged, so the device cgroup lets it use them." if x.c.security.privileged else ""
    msg = f"{x.who} mounts host device nodes: {shown}.{privileged}"
    names = ", ".join(sorted({name for name, _, _ in mounts}))
    remedy = (
        f"Remove the hostPath volume(s) {names} and request GPUs with resources.limits nvidia.com/gpu; enforce the "
        "Pod Security Standards baseline on this namespace."
    )
    steps = tuple(Step("GG103", f"volumeMount {n} -> hostPath {p}", f"device nodes at {at}") for n, p, at in mounts)
    return msg, remedy, steps


def _privileged(c: Container) -> str | None:
    sec = c.security
    if sec.privileged:
        return "privileged: true"
    if sec.capabilities_add and "CAP_SYS_ADMIN" in bounding_set(sec):
        return "capability SYS_ADMIN"
    return None


def _gg104(x: _Box) -> Built:
    how = _privileged(x.c) or "privileged"
    devices = " and gets every host device node" if x.c.security.privileged else ""
    msg = (
        f"{x.who} runs with {how} without a GPU request: the toolkit treats it as privileged and honours any "
        f"{NVD} it sets, whatever accept-nvidia-visible-devices-envvar-when-unprivileged says{devices}; "
        f"it sees {_sees(x.d)}."
    )
    remedy = (
        f"Drop {how}; if it needs GPUs, request them with nvidia.com/gpu. Enforce the Pod Security Standards "
        "baseline on this namespace."
    )
    return msg, remedy, (Step("GG104", f"securityContext {how}", "toolkit-privileged (CAP_SYS_ADMIN in bounding set)"),)


def _forged(x: _Box) -> list[tuple[str, str, str]]:
    return [m for m in _mount_paths(x) if m[1] == "/dev/null" and clean(m[2]).startswith(MOUNT_ROOT)]


def _gg107(x: _Box) -> Built:
    forged = _forged(x)
    requests = ", ".join(clean(at)[len(MOUNT_ROOT) :].strip("/") or "(empty)" for _, _, at in forged)
    accepted = x.node.toolkit.config.accept_volume_mounts
    effect = (
        "this node's toolkit accepts volume-mount requests, so it gets them"
        if accepted
        else "this node's toolkit ignores volume-mount requests today; the recommended hardening turns them on"
    )
    msg = f"{x.who} forges a device request by mounting /dev/null under {MOUNT_ROOT}/ ({requests}): {effect}."
    names = ", ".join(sorted({name for name, _, _ in forged}))
    remedy = f"Remove the volume(s) {names} and their mounts; deny hostPath volumes in workload namespaces."
    steps = tuple(Step("GG107", f"volumeMount {n} -> hostPath {p} at {at}", "a device-plugin-style request")
                  for n, p, at in forged)  # fmt: skip
    return msg, remedy, steps


CONTAINER_RULES: tuple[ContainerRule, ...] = (
    ContainerRule(
        "GG101",
        lambda x: not x.requests and bool(x.d.sees) and not x.d.host_devices and _env_granted(x.d),
        _gg101,
    ),
    ContainerRule("GG102", lambda x: x.n > 0 and x.d.overreach, _gg102),
    ContainerRule("GG103", lambda x: bool(x.host) and bool(_device_mounts(x)), _gg103),
    ContainerRule("GG104", lambda x: not x.requests and _privileged(x.c) is not None, _gg104),
    ContainerRule("GG107", lambda x: bool(x.host) and bool(_forged(x)), _gg107),
    ContainerRule("GG108", _gg108_applies, _gg108),
)


# --- GG105 / GG106: pod-level spec -----------------------------------------------------------------------------


@dataclass(slots=True)
class _PodBox:
    pod: Pod
    decisions: Sequence[ContainerDecision]
    node: NodeProfile
    settings: AuditSettings


@dataclass(frozen=True, slots=True)
class PodRule:
    """A pod rule: cheap predicate, then message/remediation/steps when it fires."""

    id: str
    applies: Callable[[_PodBox], bool]
    build: Callable[[_PodBox], Built]


def _nvidia_class(name: str, node: NodeProfile) -> str | None:
    """The NVIDIA handler a RuntimeClass selects on this node (or by its well-known name), else None."""
    handler = node.runtime_classes.get(name)
    if handler is not None:
        h = node.runtime.handlers.get(handler)
        if (h is not None and h.nvidia) or handler in NVIDIA_HANDLERS:
            return handler
    return name if name in NVIDIA_HANDLERS else None


def _namespace(pod: Pod) -> str:
    return pod.workload_namespace or pod.namespace


def _gg105_applies(p: _PodBox) -> bool:
    rc = p.pod.runtime_class_name
    return rc is not None and not p.settings.is_trusted(_namespace(p.pod)) and _nvidia_class(rc, p.node) is not None


def _gg105(p: _PodBox) -> Built:
    rc = p.pod.runtime_class_name or ""
    handler = _nvidia_class(rc, p.node)
    node = p.node
    h = node.runtime.handlers.get(handler or "")
    facts = node_facts(node)
    if rc not in node.runtime_classes:
        effect = f"RuntimeClass {rc} does not exist on this node profile, so the pod is rejected here"
    elif node.toolkit.config.accept_envvar_unprivileged:
        effect = (
            f"handler {handler} runs the NVIDIA runtime{f' in {h.mode} mode' if h and h.mode else ''} and the "
            f"toolkit honours {NVD} from unprivileged containers: any container of the pod that sets it (or whose "
            "image does) gets those GPUs, with or without a request"
        )
    else:
        effect = f"handler {handler} runs the NVIDIA runtime; env requests from unprivileged containers are refused"
    requested_any = any(d.requested for d in p.decisions)
    msg = (
        f"Pod in namespace {_namespace(p.pod)} selects runtimeClassName {rc} "
        f"({'with' if requested_any else 'without'} a GPU request): {effect}."
    )
    remedy = (
        f"Remove runtimeClassName: {rc} from this workload (GPU requests do not need it) and deny runtimeClassName "
        "in (nvidia, nvidia-cdi, nvidia-legacy) outside the trusted namespaces with a ValidatingAdmissionPolicy."
    )
    if node.toolkit.config.accept_envvar_unprivileged and facts.toolkit_reached:
        remedy += " Node-wide: " + hardening(node, facts)
    steps: tuple[Step, ...] = (Step("GG105", f"runtimeClassName={rc}", f"handler {handler} (nvidia)"),)
    if "runtimeClasses" in node.origin:
        steps += (Step("GG105", f"runtimeClasses = {node.origin['runtimeClasses']}", "RuntimeClasses on the node"),)
    return msg, remedy, steps


def _cdi_prefixes(p: _PodBox) -> tuple[str, ...]:
    prefixes = p.settings.cdi_annotation_prefixes + p.node.toolkit.config.cdi_annotation_prefixes
    if p.node.device_plugin is not None:
        prefixes += (p.node.device_plugin.cdi_annotation_prefix,)
    return prefixes


def _cdi_annotations(p: _PodBox) -> list[tuple[str, str]]:
    prefixes = _cdi_prefixes(p)
    return [(k, v) for k, v in p.pod.annotations.items() if k.startswith(prefixes) or k == NRI_DOMAIN]


def _gg106_applies(p: _PodBox) -> bool:
    return bool(p.pod.annotations) and not p.settings.is_trusted(_namespace(p.pod)) and bool(_cdi_annotations(p))


def _gg106(p: _PodBox) -> Built:
    found = _cdi_annotations(p)
    shown = ", ".join(f"{k}={v}" for k, v in found)
    injected = [(d.container, d.injected) for d in p.decisions if d.injected and not d.requested]
    if injected:
        effect = "on this node they inject " + "; ".join(f"{c}: {', '.join(names)}" for c, names in injected)
    elif p.node.nri.enabled:
        effect = "this node's NRI plugin reads them (here they inject nothing the pod did not request)"
    else:
        effect = "this node does not act on them today; a CDI-enabled runtime or the NRI plugin would"
    msg = f"Pod in namespace {_namespace(p.pod)} sets CDI/NRI device annotations {shown}: {effect}."
    remedy = (
        f"Remove the annotations ({', '.join(k for k, _ in found)}) and request GPUs with nvidia.com/gpu; deny "
        "these annotation prefixes outside the trusted namespaces with an admission policy."
    )
    if p.node.nri.enabled and p.node.nri.management_namespaces:
        remedy += f" Keep NRI_MANAGEMENT_CDI_DEVICE_NAMESPACES ({', '.join(p.node.nri.management_namespaces)}) minimal."
    steps = tuple(Step("GG106", f"annotation {k}={v}", "asks the runtime for devices directly") for k, v in found)
    return msg, remedy, steps


POD_RULES: tuple[PodRule, ...] = (
    PodRule("GG105", _gg105_applies, _gg105),
    PodRule("GG106", _gg106_applies, _gg106),
)


# --- the entry point ---------------------------------------------------------------------------------------------


def _resource(pod: Pod) -> Resource:
    return Resource(pod.workload_api_version, pod.workload_kind, _namespace(pod), pod.workload_name or pod.name)


def _full_trail(d: ContainerDecision) -> tuple[Step, ...]:
    """The container's trail with the toolkit's steps told in place, as ``simulate`` prints them."""
    steps = d.trail
    if d.toolkit is None or not d.toolkit.trail:
        return steps
    at = next((i for i, s in enumerate(steps) if s.rule == "k8s.toolkit"), len(steps))
    return (*steps[:at], *d.toolkit.trail, *steps[at:])


@dataclass(frozen=True, slots=True)
class _Fired:
    """A rule whose predicate held: enough to build its finding, or its exemption, afterwards."""

    rule_id: str
    build: Callable[[], Built]
    container: Container | None  # None for pod rules
    decision: ContainerDecision | None


def check_pod(
    pod: Pod,
    decisions: Sequence[ContainerDecision],
    node: NodeProfile,
    settings: AuditSettings,
    images: ImageFacts = NO_IMAGE_FACTS,
) -> tuple[list[Finding], list[Exempt]]:
    """GG101-GG108 for one pod: findings, and the exemptions that replaced findings of operator components.

    ``images`` says why inspected images stay unknown, so GG108 names the reason.
    """
    by_name = {c.name: c for c in pod.containers}
    host = {v.name: v.host_path for v in pod.volumes if v.host_path is not None}
    claims = bool(pod.resource_claims)  # DRA: a pod with claims is requesting devices
    fired: list[_Fired] = []
    for d in decisions:
        c = by_name.get(d.container)
        if c is None:
            continue
        n = requested(c)
        box = _Box(pod, c, d, node, settings, n, n > 0 or claims, host, images)
        for container_rule in CONTAINER_RULES:
            if container_rule.applies(box):
                fired.append(_Fired(container_rule.id, partial(container_rule.build, box), c, d))
    if pod.runtime_class_name is not None or pod.annotations:
        pbox = _PodBox(pod, decisions, node, settings)
        for pod_rule in POD_RULES:
            if pod_rule.applies(pbox):
                fired.append(_Fired(pod_rule.id, partial(pod_rule.build, pbox), None, None))
    if not fired:
        return [], []
    return _report(pod, fired, settings, claims)


def _report(pod: Pod, fired: list[_Fired], settings: AuditSettings, claims: bool) -> tuple[list[Finding], list[Exempt]]:
    """Turn fired rules into findings, or into one Exempt per exempt container (or pod)."""
    resource = _resource(pod)
    findings: list[Finding] = []
    exempt: dict[str, list[str]] = {}
    reasons: dict[str, str | None] = {}
    hint = untrusted_component_hint(pod, settings)
    for f in fired:
        name = f.container.name if f.container is not None else ""
        if name not in reasons:
            reasons[name] = exempt_reason(pod, f.container, settings)
        if reasons[name] is not None:
            exempt.setdefault(name, []).append(f.rule_id)
            continue
        info = rule(f.rule_id)
        message, remedy, steps = f.build()
        if claims and f.container is not None:
            message += _CLAIMS_NOTE
        if hint is not None:
            message += " " + hint
        findings.append(
            Finding(
                rule_id=info.id,
                severity=info.severity,
                message=message,
                remediation=remedy,
                resource=resource,
                container=name or None,
                location=pod.location,
                # the engine's trail, then the rule's conclusion last (formats show the last step as "why")
                trail=(_full_trail(f.decision) if f.decision is not None else ()) + steps,
                decision=f.decision,
            )
        )
    exempts = [
        Exempt(resource, name or None, reasons[name] or "", pod.location, tuple(ids)) for name, ids in exempt.items()
    ]
    return findings, exempts
