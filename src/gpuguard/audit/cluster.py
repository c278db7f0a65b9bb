"""``gpuguard audit --cluster``: judge what a live cluster runs, node by node.

Flow: the API (``sources.cluster``) -> nodes, ClusterPolicy, the operator's
rendered DaemonSets, RuntimeClasses, ConfigMaps -> one node profile per GPU
node -> each pod decided on the node it runs on -> rules -> ``Report``.

Which settings a node runs:

* the GPU Operator renders its DaemonSets from the ClusterPolicy; the
  DaemonSets' container env is what the nodes really run (an upgrade with
  ``--reuse-values``, an operator that has not reconciled yet, a hand edit), so
  the toolkit and device plugin are replayed from that env, and where it
  disagrees with the ClusterPolicy the profile source says so;
* a node labelled ``nvidia.com/gpu.deploy.container-toolkit=false`` (or outside
  the toolkit DaemonSet's node selector) runs a host toolkit the operator does
  not configure: the operator's host-toolkit model applies (most exposed
  common setup, marked unknown);
* without a ClusterPolicy, every GPU node is judged on the most exposed common
  configuration, flagged as assumed.

Pods on nodes without GPUs are counted, not judged (no NVIDIA runtime there);
pods not yet scheduled are judged against each GPU node and reported against
the one where they would be most exposed.
"""

from __future__ import annotations

import copy
import dataclasses
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from gpuguard.audit.decisions import Decisions
from gpuguard.audit.images import ImageOptions, ImageScan, ResolvedImages, docker_config, resolve
from gpuguard.audit.profile import _version_of, settings_of
from gpuguard.audit.run import rule_infos
from gpuguard.audit.suppress import Suppressor, read_baseline, read_ignore_file
from gpuguard.engine.operator.device_plugin import device_plugin_from_env
from gpuguard.engine.operator.profile import MOST_EXPOSED_RELEASE, most_exposed_profile, node_profile
from gpuguard.engine.operator.toolkit_env import install
from gpuguard.model.errors import InputError
from gpuguard.model.finding import Exempt, Finding, Location, ReadError, Resource
from gpuguard.model.node import Gpu, NodeProfile
from gpuguard.model.pod import Pod
from gpuguard.model.report import ProfileSummary, Report
from gpuguard.model.toolkit import Toolkit
from gpuguard.model.version import Version
from gpuguard.rules import check_advisories, check_node, check_pod
from gpuguard.rules.cluster import check_admission, check_restart, check_sharing, stale_containers
from gpuguard.rules.images import AssumedImageEnv as ImageEnv
from gpuguard.rules.settings import AuditSettings
from gpuguard.rules.workload import NO_IMAGE_FACTS, ImageFacts
from gpuguard.sources.classify import env_source
from gpuguard.sources.cluster import ClusterReader, ConnectOptions, DaemonSetEnv, NodeFacts, connect
from gpuguard.sources.cluster.reader import DEVICE_PLUGIN_DAEMONSET, TOOLKIT_DAEMONSET, sharing_of
from gpuguard.sources.inputs import read_input


@dataclass(frozen=True, slots=True)
class ClusterAuditOptions:
    """What ``gpuguard audit --cluster`` was asked."""

    connect: ConnectOptions = field(default_factory=ConnectOptions)
    ignore_file: str | None = None
    baseline: str | None = None
    progress: Callable[[str], None] | None = None
    sleep: Callable[[float], None] = time.sleep  # waits for 429 Retry-After (tests record instead)
    images: ImageOptions = field(default_factory=ImageOptions)  # --resolve-images and its companions
    pull_secrets: bool = False  # --read-pull-secrets: get the pods' imagePullSecrets for the registry client


@dataclass(frozen=True, slots=True)
class NodeJudge:
    """One GPU node: its profile, where that came from, and the memoised decisions on it."""

    name: str
    profile: NodeProfile
    source: str
    decisions: Decisions


def audit_cluster(settings: AuditSettings, options: ClusterAuditOptions | None = None) -> Report:
    """Audit the cluster the kubeconfig (or service account) points at.

    Raises ``InputError`` only for bad options (no kubeconfig, unknown context,
    an unusable ignore or baseline file); what the API refuses becomes report
    errors and the run goes on.
    """
    options = options or ClusterAuditOptions()
    api, context = connect(options.connect)
    try:
        reader = ClusterReader(api, context, options.connect, sleep=options.sleep)
        return audit_with_reader(reader, settings, options)
    finally:
        api.close()


def audit_with_reader(reader: ClusterReader, settings: AuditSettings, options: ClusterAuditOptions) -> Report:
    progress = options.progress or (lambda _: None)
    suppressor = _suppressor(options)
    location = reader.location
    progress("reading nodes and GPU Operator settings")
    nodes = reader.nodes()
    policies = reader.cluster_policies()
    daemonsets = reader.operator_daemonsets()
    classes = reader.runtime_classes()
    drivers = reader.nvidia_drivers()
    errors_before = len(reader.errors)
    admission = reader.admission()
    admission_read = len(reader.errors) == errors_before
    env_objects: dict[tuple[str, str, str], dict[str, str]] = {}
    objects = len(nodes) + len(policies) + len(classes) + len(drivers) + len(admission)
    shared: dict[tuple[str, str], dict[str, tuple[str, int]]] = {}
    for item in reader.config_maps():
        objects += 1
        if (env := env_source(item)) is not None:
            env_objects[env[0]] = env[1]
        if sharing := sharing_of(item):
            meta = item.get("metadata") or {}
            shared[(str(meta.get("namespace", "")), str(meta.get("name", "")))] = sharing
    pods: Iterable[Pod] = reader.pods()
    images: ImageEnv = ImageEnv(settings)
    if options.images.resolve:
        # every image is resolved up front, so the pods are read before they are judged; each container's
        # image is pinned to the digest it runs (the tag may have moved since it started)
        pods = [_pinned(pod, reader.running_digests) for pod in pods]
        images = _resolved_images(reader, pods, settings, options, progress)
    facts = ImageFacts(images.problems) if isinstance(images, ResolvedImages) else NO_IMAGE_FACTS
    notes: list[str] = []
    errors: list[ReadError] = []
    judges = {}
    for node in nodes:
        if node.is_gpu_node:
            profile, source = node_setup(node, policies, daemonsets, classes, notes, errors, location)
            judges[node.name] = NodeJudge(node.name, profile, source, Decisions(profile, images))
    if len(policies) > 1:
        notes.append(f"{len(policies)} ClusterPolicies: the first ({_name(policies[0])}) is used, as the operator does")
    if drivers:
        notes.append(f"{len(drivers)} NVIDIADriver objects: driver settings per node pool are not judged")
    findings: list[Finding] = []
    exempt: list[Exempt] = []
    not_gpu = pending = 0
    # GG208: the start of the toolkit DaemonSet's pod per node (its last rollout there), and pods that would
    # have got more GPUs under the most exposed settings than they get now (decided once the rollouts are known).
    rollouts: dict[str, str] = {}
    exposed: dict[str, Decisions] = {}
    stale: list[tuple[Pod, str, Sequence[Any], Sequence[Any]]] = []
    # GG209: GPU-requesting pods per node and namespace
    gpu_pods: dict[str, dict[str, list[str]]] = {}
    for pod in pods:
        objects += 1
        if objects % 5000 == 0:
            progress(f"{objects} objects, {len(findings)} findings")
        if pod.node_name is not None and pod.node_name not in judges:
            not_gpu += 1
            continue
        resource = Resource(pod.workload_api_version or "v1", pod.workload_kind,
                            pod.workload_namespace or pod.namespace, pod.workload_name)
        annotation, problem = suppressor.object_rules(resource, (pod.workload_annotations, pod.annotations), location)
        if problem is not None and problem not in errors:
            errors.append(problem)
        if pod.node_name is not None:
            judge = judges[pod.node_name]
            found, ex = _judge(pod, judge, settings, env_objects, "node", facts)
            started = reader.start_times.get((pod.namespace, pod.name))
            if _is_toolkit_pod(pod):
                if started and started > rollouts.get(pod.node_name, ""):
                    rollouts[pod.node_name] = started
            elif started and not ex:  # GPU Operator components and allow-listed tools are exempt
                if judge.name not in exposed:
                    exposed[judge.name] = Decisions(dataclasses.replace(
                        most_exposed_profile(judge.profile.gpus),
                        runtime_classes={**judge.profile.runtime_classes}), images)
                now = judge.decisions.decide(pod, env_objects)
                before = exposed[judge.name].decide(pod, env_objects)
                if stale_containers(now, before):
                    stale.append((pod, started, now, before))
            if any(k.startswith("nvidia.com/") and n > 0 for c in pod.containers for k, n in c.resources.items()):
                gpu_pods.setdefault(pod.node_name, {}).setdefault(pod.namespace, []).append(pod.name)
        elif judges:
            pending += 1
            found, ex = max((_judge(pod, j, settings, env_objects, "pending: judged on", facts)
                             for j in judges.values()),
                            key=lambda r: _weight(r[0]))
        else:
            continue
        exempt.extend(ex)
        findings.extend(f for f in found if not suppressor.check(f, annotation))
    seen: set[tuple[str, str, str]] = set()
    policy = _policy_resource(policies[0]) if policies else None
    for judge in judges.values():
        for f in (*check_node(judge.profile, resource=policy, location=location),
                  *check_advisories(judge.profile, policy, location)):
            key = (f.rule_id, f.fingerprint, f.message)
            if key not in seen and not suppressor.check(f, None):
                seen.add(key)
                findings.append(f)
    findings.extend(_cluster_rules(judges, nodes, policies, shared, gpu_pods, rollouts, stale, location, suppressor))
    if judges and admission_read:
        findings.extend(f for f in check_admission(admission, location) if not suppressor.check(f, None))
    elif judges:
        notes.append("admission configuration not fully readable: GG207 not judged")
    if not_gpu:
        notes.append(f"{not_gpu} pods on nodes without GPUs: not judged (no NVIDIA runtime there)")
    if pending:
        notes.append(f"{pending} pending pods: each judged against the GPU node where it would be most exposed")
    if not judges:
        notes.append("no GPU nodes (no nvidia.com/gpu.present label or allocatable nvidia.com/gpu)")
    if assumed := images.assumed():
        notes.append(f"{assumed} images assumed not to set NVIDIA_VISIBLE_DEVICES (not inspected)")
    if isinstance(images, ResolvedImages):
        notes.extend(images.notes())
    notes.append(f"{reader.requests} API requests ({reader.retries} retried after 429)")
    notes.extend(suppressor.expired_notes())
    return Report(
        profile=_summary(reader.context, judges, notes),
        findings=tuple(findings),
        exempt=tuple(exempt),
        errors=(*reader.errors, *errors),
        suppressions=suppressor.report(),
        suppressed=suppressor.suppressed,
        rules=rule_infos(),
        objects=objects,
    )


def _is_toolkit_pod(pod: Pod) -> bool:
    return any(o.kind == "DaemonSet" and o.name == TOOLKIT_DAEMONSET for o in pod.owner_references)


def _cluster_rules(  # noqa: PLR0917 - what the pod loop gathered
    judges: Mapping[str, NodeJudge],
    nodes: Sequence[NodeFacts],
    policies: Sequence[Mapping[str, Any]],
    shared: Mapping[tuple[str, str], Mapping[str, tuple[str, int]]],
    gpu_pods: Mapping[str, Mapping[str, list[str]]],
    rollouts: Mapping[str, str],
    stale: Sequence[tuple[Pod, str, Sequence[Any], Sequence[Any]]],
    location: Location,
    suppressor: Suppressor,
) -> list[Finding]:
    """GG208 per pod (once the toolkit rollouts are known) and GG209 per GPU node."""
    found: list[Finding] = []
    for pod, started, now, before in stale:
        rollout = rollouts.get(pod.node_name or "", "")
        found.extend(check_restart(pod, started, rollout, now, before, location))
    for node in nodes:
        if node.name not in judges:
            continue
        strategy, replicas = node_sharing(node, policies, shared)
        found.extend(check_sharing(node.name, replicas, strategy, gpu_pods.get(node.name, {}), location))
    return [f for f in found if not suppressor.check(f, None)]


def node_sharing(
    node: NodeFacts,
    policies: Sequence[Mapping[str, Any]],
    shared: Mapping[tuple[str, str], Mapping[str, tuple[str, int]]],
) -> tuple[str, int]:
    """How the device plugin shares this node's GPUs: (strategy, replicas); ("", 0) when it does not.

    The config is the ClusterPolicy's ``spec.devicePlugin.config`` (name, default key) when set, else any
    ConfigMap holding a device plugin config; the key is the node's ``nvidia.com/device-plugin.config``
    label, else the default, else ``default``, else the ConfigMap's only key.  GPU Feature Discovery's
    ``nvidia.com/gpu.replicas`` label counts too.
    """
    config: Mapping[str, Any] = {}
    if policies:
        spec = policies[0].get("spec")
        plugin = spec.get("devicePlugin") if isinstance(spec, Mapping) else None
        cfg = plugin.get("config") if isinstance(plugin, Mapping) else None
        config = cfg if isinstance(cfg, Mapping) else {}
    name, default = config.get("name"), config.get("default")
    key = node.labels.get("nvidia.com/device-plugin.config") or default or "default"
    best: tuple[str, int] = ("", 0)
    for (_, cm_name), keys in shared.items():
        if name and cm_name != name:
            continue
        pick = keys.get(str(key)) or (next(iter(keys.values())) if len(keys) == 1 else None)
        if pick is not None and pick[1] > best[1]:
            best = pick
    label = node.labels.get("nvidia.com/gpu.replicas", "")
    if label.isdigit() and int(label) > best[1]:
        best = (node.labels.get("nvidia.com/gpu.sharing-strategy", "time-slicing"), int(label))
    return best


def node_setup(  # noqa: PLR0917 - the cluster's node settings, read once
    node: NodeFacts,
    policies: Sequence[Mapping[str, Any]],
    daemonsets: Sequence[DaemonSetEnv],
    classes: Mapping[str, str],
    notes: list[str],
    errors: list[ReadError],
    location: Location,
) -> tuple[NodeProfile, str]:
    """The profile of one GPU node and, in words, where it came from."""
    gpus = tuple(Gpu(uuid=f"GPU-{node.name}-{i}", index=str(i)) for i in range(node.gpu_count or 8))
    toolkit_all = [d for d in daemonsets if d.name == TOOLKIT_DAEMONSET]
    toolkit_ds = next((d for d in toolkit_all if d.runs_on(node)), None) if node.deploys("container-toolkit") else None
    plugin_ds = next((d for d in daemonsets if d.name == DEVICE_PLUGIN_DAEMONSET and d.runs_on(node)), None)
    if not node.deploys("device-plugin"):
        plugin_ds = None
    # A host toolkit: the node opts out by label, or the operator's toolkit DaemonSet (read) does not select it.
    # Without the DaemonSet (not rendered, or not readable) the ClusterPolicy alone says what the node runs.
    host_toolkit = not node.deploys("container-toolkit") or (bool(toolkit_all) and toolkit_ds is None)
    if not policies:
        profile = dataclasses.replace(most_exposed_profile(gpus), runtime_classes={**classes})
        return profile, f"no ClusterPolicy: GPU Operator {MOST_EXPOSED_RELEASE} defaults assumed"
    policy = policies[0]
    version = _version_of(policy)
    how = "its labels"
    if version is None:
        version, how = str(MOST_EXPOSED_RELEASE), "assumed"
        note = f"ClusterPolicy {_name(policy)}: GPU Operator release not in its labels: assumed {version}"
        if note not in notes:
            notes.append(note)
    parts = [f"ClusterPolicy {_name(policy)}, operator {version} from {how}"]
    spec_source: Mapping[str, Any] = policy
    if host_toolkit:
        edited = copy.deepcopy(dict(policy))
        edited.setdefault("spec", {}).setdefault("toolkit", {})["enabled"] = False
        spec_source = edited
        why = ("nvidia.com/gpu.deploy.container-toolkit=false" if not node.deploys("container-toolkit")
               else "the toolkit DaemonSet does not run here")
        parts.append(f"host toolkit ({why}): not configured by the operator")
    try:
        base = node_profile(version, spec_source, gpus=gpus)
    except (InputError, ValueError) as exc:
        errors.append(ReadError(f"ClusterPolicy {_name(policy)}: {exc}", location))
        return dataclasses.replace(most_exposed_profile(gpus), runtime_classes={**classes}), (
            "ClusterPolicy could not be rendered: most exposed common configuration assumed")
    profile = base
    if toolkit_ds is not None:
        profile, part = _toolkit_from_daemonset(profile, toolkit_ds, errors, location)
        parts.append(part)
    elif not host_toolkit:
        parts.append(f"toolkit {base.toolkit.version} as the ClusterPolicy renders it (its DaemonSet was not read)")
    if plugin_ds is not None and base.device_plugin is not None:
        profile, part = _plugin_from_daemonset(profile, plugin_ds, errors, location)
        parts.append(part)
    profile = dataclasses.replace(profile, runtime_classes={**profile.runtime_classes, **classes})
    return profile, "; ".join(parts)


def _toolkit_from_daemonset(
    profile: NodeProfile, ds: DaemonSetEnv, errors: list[ReadError], location: Location
) -> tuple[NodeProfile, str]:
    where = f"DaemonSet {ds.namespace}/{ds.name}"
    version = _parse(ds.version) or profile.toolkit.version
    try:
        installed = install(ds.env, version, runtime=ds.env.get("RUNTIME", "containerd"),
                            operator_namespace=ds.namespace or "gpu-operator")
    except InputError as exc:
        errors.append(ReadError(f"{where}: {exc}", location))
        return profile, f"toolkit from the ClusterPolicy ({where} env unusable)"
    rendered = dataclasses.replace(profile, toolkit=Toolkit(version, installed.config, profile.toolkit.platform),
                                   runtime=installed.runtime, nri=installed.nri,
                                   origin={**profile.origin, **installed.origin})
    differs = _differences(profile, rendered)
    if differs:
        return rendered, (f"toolkit {version} from {where} env, which differs from the ClusterPolicy in "
                          f"{', '.join(differs)} (the DaemonSet is what the node runs)")
    return rendered, f"toolkit {version} from {where} env (agrees with the ClusterPolicy)"


def _plugin_from_daemonset(
    profile: NodeProfile, ds: DaemonSetEnv, errors: list[ReadError], location: Location
) -> tuple[NodeProfile, str]:
    where = f"DaemonSet {ds.namespace}/{ds.name}"
    assert profile.device_plugin is not None
    version = _parse(ds.version) or profile.device_plugin.version
    try:
        plugin = device_plugin_from_env(ds.env, version)
    except InputError as exc:
        errors.append(ReadError(f"{where}: {exc}", location))
        return profile, f"device plugin from the ClusterPolicy ({where} env unusable)"
    rendered = dataclasses.replace(profile, device_plugin=plugin)
    differs = _differences(profile, rendered)
    if differs:
        return rendered, (f"device plugin {version} from {where} env, which differs from the ClusterPolicy in "
                          f"{', '.join(differs)} (the DaemonSet is what the node runs)")
    return rendered, f"device plugin {version} from {where} env"


def _differences(a: NodeProfile, b: NodeProfile) -> list[str]:
    sa, sb = settings_of(a), settings_of(b)
    return [f"{k} ({sa[k]} -> {sb[k]})" for k in sa if sa[k] != sb.get(k)]


def _parse(text: str | None) -> Version | None:
    if text is None:
        return None
    try:
        return Version.parse(text)
    except ValueError:
        return None


def _pinned(pod: Pod, digests: Mapping[tuple[str, str, str], str]) -> Pod:
    """The pod with each started container's image as ``name:tag@digest`` of what it runs."""
    changed = []
    for c in pod.containers:
        digest = digests.get((pod.namespace, pod.name, c.name))
        if digest is not None and c.image and "@" not in c.image:
            c = dataclasses.replace(c, image=f"{c.image}@{digest}")  # noqa: PLW2901
        changed.append(c)
    return dataclasses.replace(pod, containers=tuple(changed)) if changed != list(pod.containers) else pod


def _resolved_images(
    reader: ClusterReader, pods: Sequence[Pod], settings: AuditSettings, options: ClusterAuditOptions,
    progress: Callable[[str], None],
) -> ResolvedImages:
    """Every image the pods run, inspected up front (with the pods' pull Secrets when asked)."""
    scan = ImageScan()
    scan.add(c.image for pod in pods for c in pod.containers if c.image)
    if options.pull_secrets and reader.pull_secret_refs:
        progress(f"reading {len(reader.pull_secret_refs)} image pull Secrets")
        for secret in reader.pull_secrets(reader.pull_secret_refs):
            config = docker_config(secret)
            if config is not None:
                scan.add_secret(config)
    progress(f"inspecting {len(scan.references)} images")
    resolutions, requests = resolve(scan, options.images)
    return ResolvedImages(settings, resolutions, requests)


def _judge(  # noqa: PLR0917 - one pod, one node, and what the audit knows besides
    pod: Pod, judge: NodeJudge, settings: AuditSettings, env: Mapping[tuple[str, str, str], object], how: str,
    images: ImageFacts = NO_IMAGE_FACTS,
) -> tuple[list[Finding], list[Exempt]]:
    decisions = judge.decisions.decide(pod, env)  # type: ignore[arg-type]
    found, exempt = check_pod(pod, decisions, judge.profile, settings, images)
    return [dataclasses.replace(f, message=f"{f.message} [{how} {judge.name}]", node=judge.name) for f in found], exempt


def _weight(found: Sequence[Finding]) -> tuple[int, int]:
    return (max((int(f.severity) for f in found), default=-1), len(found))


def _name(obj: Mapping[str, Any]) -> str:
    meta = obj.get("metadata")
    return str(meta.get("name", "")) if isinstance(meta, Mapping) else ""


def _policy_resource(policy: Mapping[str, Any]) -> Resource:
    return Resource("nvidia.com/v1", "ClusterPolicy", None, _name(policy))


def _summary(context: str, judges: Mapping[str, NodeJudge], notes: list[str]) -> ProfileSummary:
    first = next(iter(judges.values()), None)
    node = first.profile if first is not None else most_exposed_profile()
    per_node = {j.name: j.source for j in judges.values()}
    for j in judges.values():
        s = settings_of(j.profile)
        accept = s["accept-nvidia-visible-devices-envvar-when-unprivileged"]
        per_node[j.name] += (f" | envvar from unprivileged: {accept}"
                             f", default runtime: {s['default runtime handler']}"
                             f", device list: {s['device list strategy']}")
    return ProfileSummary(
        source=f"live cluster {context}: {len(judges)} GPU nodes, each judged on its own settings",
        operator_version=str(node.operator_version) if node.operator_version is not None else None,
        toolkit_version=str(node.toolkit.version),
        device_plugin_version=str(node.device_plugin.version) if node.device_plugin is not None else None,
        settings=per_node,
        assumed=bool(judges) and all(j.profile.assumed for j in judges.values()),
        notes=tuple(notes),
    )


def _suppressor(options: ClusterAuditOptions) -> Suppressor:
    suppressor = Suppressor()
    for flag, path in (("--ignore-file", options.ignore_file), ("--baseline", options.baseline)):
        if path is None:
            continue
        item = read_input(path)
        if item.error is not None:
            raise InputError(f"{flag} {path}", item.error.message)
        if flag == "--ignore-file":
            suppressor.entries = read_ignore_file(path, item.data)
        else:
            suppressor.baseline = read_baseline(path, item.data)
            suppressor.baseline_origin = f"baseline {path}"
    return suppressor


__all__ = ["ClusterAuditOptions", "NodeJudge", "audit_cluster", "audit_with_reader", "node_setup"]
