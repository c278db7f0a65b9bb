"""Read a live cluster through the Kubernetes API (``get``/``list`` only).

Every list is paginated (``limit``/``continue``), a 429 (API Priority and
Fairness) is retried after its ``Retry-After`` a bounded number of times, and
every request has a timeout.  A resource the service account may not list
(403) or that fails otherwise becomes one :class:`ReadError` and the run goes
on with the rest.  Objects are read as raw JSON (``_preload_content=False``),
so items keep the exact shape ``kubectl get -o json`` shows and go through the
same readers as files (``sources.kubernetes.pods_from_object``).

Credentials (bearer tokens, client keys) stay inside the client: nothing here
prints or stores them, and error messages carry only the API's status line.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import orjson

from gpuguard.model.errors import InputError
from gpuguard.model.finding import Location, ReadError
from gpuguard.model.pod import Pod
from gpuguard.sources.cluster.calls import MAX_RETRIES, Refused, send
from gpuguard.sources.kubernetes import pods_from_object

# The GPU Operator's DaemonSets whose container env is the effective node configuration.
TOOLKIT_DAEMONSET = "nvidia-container-toolkit-daemonset"
DEVICE_PLUGIN_DAEMONSET = "nvidia-device-plugin-daemonset"
OPERATOR_DAEMONSETS = (TOOLKIT_DAEMONSET, DEVICE_PLUGIN_DAEMONSET)
_CONTAINERS = {TOOLKIT_DAEMONSET: "nvidia-container-toolkit-ctr", DEVICE_PLUGIN_DAEMONSET: "nvidia-device-plugin"}

# Admission configuration read in place: (group, version, plural, kind); each optional (404: not installed).
ADMISSION_RESOURCES = (
    ("admissionregistration.k8s.io", "v1", "validatingwebhookconfigurations", "ValidatingWebhookConfiguration"),
    ("admissionregistration.k8s.io", "v1", "mutatingwebhookconfigurations", "MutatingWebhookConfiguration"),
    ("admissionregistration.k8s.io", "v1", "validatingadmissionpolicies", "ValidatingAdmissionPolicy"),
    ("admissionregistration.k8s.io", "v1", "validatingadmissionpolicybindings", "ValidatingAdmissionPolicyBinding"),
    ("kyverno.io", "v1", "clusterpolicies", "ClusterPolicy"),
    ("templates.gatekeeper.sh", "v1", "constrainttemplates", "ConstraintTemplate"),
)

PAGE_SIZE = 500
TIMEOUT = (5.0, 60.0)  # connect, read (seconds), per request
# Where the kubelet mounts a pod's service account token and CA; a projected volume elsewhere is named by
# $GPUGUARD_SERVICE_ACCOUNT_DIR (a pod that mounts its token at a custom path).
SERVICE_ACCOUNT_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"


@dataclass(frozen=True, slots=True)
class ConnectOptions:
    """How to reach the API server: kubeconfig (``--kubeconfig``, ``--context``) or the in-cluster service account."""

    kubeconfig: str | None = None
    context: str | None = None
    namespace: str | None = None  # pods and ConfigMaps of one namespace; None: all namespaces
    page_size: int = PAGE_SIZE
    max_retries: int = MAX_RETRIES
    timeout: tuple[float, float] = TIMEOUT


@dataclass(frozen=True, slots=True)
class NodeFacts:
    """What a node says about its GPUs: GPU Feature Discovery labels and allocatable extended resources."""

    name: str
    labels: Mapping[str, str]
    allocatable: Mapping[str, str]
    unschedulable: bool = False

    @property
    def gpu_count(self) -> int:
        for value in (self.allocatable.get("nvidia.com/gpu"), self.labels.get("nvidia.com/gpu.count")):
            if value is not None and value.isdigit():
                return int(value)
        return 0

    @property
    def is_gpu_node(self) -> bool:
        return self.labels.get("nvidia.com/gpu.present") == "true" or self.gpu_count > 0

    @property
    def product(self) -> str | None:
        return self.labels.get("nvidia.com/gpu.product")

    @property
    def driver(self) -> str | None:
        parts = [self.labels.get(f"nvidia.com/cuda.driver.{p}") for p in ("major", "minor", "rev")]
        return ".".join(p for p in parts if p) or None

    def deploys(self, component: str) -> bool:
        """Whether the operator runs ``component`` here (``nvidia.com/gpu.deploy.<component>``, default true)."""
        return self.labels.get(f"nvidia.com/gpu.deploy.{component}", "true") != "false"


@dataclass(frozen=True, slots=True)
class DaemonSetEnv:
    """One container of an operator DaemonSet as rendered in the cluster: its image and literal env."""

    namespace: str
    name: str
    container: str
    image: str
    env: Mapping[str, str]
    node_selector: Mapping[str, str] = field(default_factory=dict)
    from_refs: tuple[str, ...] = ()  # env names set through valueFrom (not literal: unknown here)

    @property
    def version(self) -> str | None:
        """The component version from the image tag (``...container-toolkit:v1.17.8-ubuntu20.04`` -> 1.17.8)."""
        tag = self.image.rsplit("@", 1)[0].rsplit(":", 1)
        m = re.match(r"v?(\d+\.\d+\.\d+)", tag[1]) if len(tag) == 2 and "/" not in tag[1] else None
        return m.group(1) if m else None

    def runs_on(self, node: NodeFacts) -> bool:
        return all(node.labels.get(k) == v for k, v in self.node_selector.items())


def connect(options: ConnectOptions) -> tuple[Any, str]:
    """An API client and the context's name; kubeconfig when given or found, else the in-cluster service account.

    Raises ``InputError`` (a usage error) when neither works.
    """
    from kubernetes import client  # noqa: PLC0415 - lazy: heavy import
    from kubernetes import config as kube_config  # noqa: PLC0415
    from kubernetes.config.config_exception import ConfigException  # noqa: PLC0415

    config: Any = kube_config  # its loaders are untyped

    path = options.kubeconfig or os.environ.get("KUBECONFIG", "").split(os.pathsep)[0] or None
    default = os.path.expanduser("~/.kube/config")
    if path is None and os.path.exists(default):
        path = default
    configuration = client.Configuration()
    if path is None and "KUBERNETES_SERVICE_HOST" in os.environ and options.context is None:
        directory = os.environ.get("GPUGUARD_SERVICE_ACCOUNT_DIR") or SERVICE_ACCOUNT_DIR
        try:
            config.incluster_config.InClusterConfigLoader(token_filename=os.path.join(directory, "token"),
                                  cert_filename=os.path.join(directory, "ca.crt")).load_and_set(configuration)
        except ConfigException as exc:
            raise InputError("--cluster", f"in-cluster service account: {exc}") from None
        return _client(client, configuration), "in-cluster"
    if path is None:
        raise InputError("--cluster", "no kubeconfig (give --kubeconfig or set KUBECONFIG) and not in a cluster")
    try:
        contexts, active = config.list_kube_config_contexts(config_file=path)
        name = options.context or (active or {}).get("name", "")
        if options.context is not None and options.context not in {c.get("name") for c in contexts or ()}:
            raise InputError("--context", f"no context {options.context!r} in {path}")
        config.load_kube_config(config_file=path, context=name or None, client_configuration=configuration,
                                persist_config=False)
    except ConfigException as exc:
        raise InputError("--kubeconfig", f"{path}: {exc}") from None
    except OSError as exc:
        raise InputError("--kubeconfig", f"{path}: {exc.strerror or exc}") from None
    return _client(client, configuration), name or "default"


def _client(client: Any, configuration: Any) -> Any:
    """An ApiClient whose transport retries only failed connections: 429s are ours to retry (Retry-After, bounded)."""
    from urllib3.util.retry import Retry  # noqa: PLC0415

    configuration.retries = Retry(total=2, connect=2, read=0, status=0, redirect=0, other=0,
                                  respect_retry_after_header=False)
    return client.ApiClient(configuration)


class ClusterReader:
    """Lists what the audit needs; every failure is a ``ReadError`` in :attr:`errors`, never an exception."""

    def __init__(
        self, api: Any, context: str, options: ConnectOptions | None = None, *,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        from kubernetes import client  # noqa: PLC0415 - lazy: heavy import

        self.options = options or ConnectOptions()
        self.context = context
        self.location = Location(f"cluster:{context}")
        self.errors: list[ReadError] = []
        self.requests = 0
        self.retries = 0
        # (namespace, pod name) -> status.startTime (RFC 3339, UTC) of the scheduled pods read so far
        self.start_times: dict[tuple[str, str], str] = {}
        # (namespace, Secret name) of every spec.imagePullSecrets entry of the pods read so far
        self.pull_secret_refs: dict[tuple[str, str], None] = {}
        # (namespace, pod, container) -> the manifest digest it runs (status.*containerStatuses[].imageID)
        self.running_digests: dict[tuple[str, str, str], str] = {}
        self._sleep = sleep
        self._core = client.CoreV1Api(api)
        self._apps = client.AppsV1Api(api)
        self._node = client.NodeV1Api(api)
        self._custom = client.CustomObjectsApi(api)

    # -- lists -------------------------------------------------------------------------------------------------

    def pods(self) -> Iterator[Pod]:
        """Every pod (of ``namespace``, else all), as model Pods with ``node_name`` and the live object's name."""
        ns = self.options.namespace
        call = ((lambda **kw: self._core.list_namespaced_pod(ns, **kw)) if ns
                else self._core.list_pod_for_all_namespaces)
        for item in self._list("pods", call):
            item.setdefault("apiVersion", "v1")
            item.setdefault("kind", "Pod")
            meta = _section(item, "metadata")
            where = f"cluster:{self.context}: Pod/{meta.get('namespace', '')}/{meta.get('name', '')}"
            try:
                found = pods_from_object(item, where)
            except InputError as exc:
                self.errors.append(ReadError(str(exc), self.location))
                continue
            started = _section(item, "status").get("startTime")
            self._running_digests(item, meta)
            for ref in _section(item, "spec").get("imagePullSecrets") or ():
                if isinstance(ref, Mapping) and isinstance(ref.get("name"), str):
                    self.pull_secret_refs.setdefault((str(meta.get("namespace", "")), ref["name"]), None)
            for pod in found:
                if isinstance(started, str) and pod.node_name is not None:
                    self.start_times[(pod.namespace, pod.name)] = started
                yield replace(pod, location=self.location)

    def _running_digests(self, item: Mapping[str, Any], meta: Mapping[str, Any]) -> None:
        """Record the digest each started container runs: a tag may have moved since the pod started.

        ``imageID`` is ``repo@sha256:...`` (containerd, cri-o; ``docker-pullable://`` before it with
        Docker), or a bare image id when the image has no registry digest (then nothing is recorded).
        """
        status = _section(item, "status")
        key = (str(meta.get("namespace", "")), str(meta.get("name", "")))
        for field_name in ("initContainerStatuses", "containerStatuses", "ephemeralContainerStatuses"):
            for entry in status.get(field_name) or ():
                if not isinstance(entry, Mapping):
                    continue
                image_id, name = entry.get("imageID"), entry.get("name")
                if isinstance(image_id, str) and isinstance(name, str) and "@sha256:" in image_id:
                    digest = image_id.rsplit("@", 1)[1]
                    if len(digest) == 71 and all(c in "0123456789abcdef" for c in digest[7:]):
                        self.running_digests[(*key, name)] = digest

    def nodes(self) -> list[NodeFacts]:
        facts = []
        for item in self._list("nodes", self._core.list_node):
            meta, spec, status = (_section(item, k) for k in ("metadata", "spec", "status"))
            facts.append(NodeFacts(
                name=str(meta.get("name", "")),
                labels=_strings(meta.get("labels")),
                allocatable=_strings(status.get("allocatable")),
                unschedulable=bool(spec.get("unschedulable", False)),
            ))
        return facts

    def cluster_policies(self) -> list[dict[str, Any]]:
        """The GPU Operator's ClusterPolicy objects (``nvidia.com/v1 clusterpolicies``); none without the operator."""

        def call(**kw: Any) -> Any:
            return self._custom.list_cluster_custom_object("nvidia.com", "v1", "clusterpolicies", **kw)

        items = list(self._list("clusterpolicies.nvidia.com", call, missing_ok=True))
        for item in items:
            item.setdefault("apiVersion", "nvidia.com/v1")
            item.setdefault("kind", "ClusterPolicy")
        return items

    def nvidia_drivers(self) -> list[dict[str, Any]]:
        """The GPU Operator's NVIDIADriver objects (``nvidia.com/v1alpha1 nvidiadrivers``); none without the CRD."""
        return self._custom_list("nvidia.com", "v1alpha1", "nvidiadrivers", "NVIDIADriver")

    def admission(self) -> list[dict[str, Any]]:
        """The admission configuration in place: webhook configurations, ValidatingAdmissionPolicies and
        their bindings, Kyverno ClusterPolicies, Gatekeeper ConstraintTemplates.  Each is optional (404: absent)."""
        found: list[dict[str, Any]] = []
        for group, version, plural, kind in ADMISSION_RESOURCES:
            found.extend(self._custom_list(group, version, plural, kind))
        return found

    def _custom_list(self, group: str, version: str, plural: str, kind: str) -> list[dict[str, Any]]:
        def call(**kw: Any) -> Any:
            return self._custom.list_cluster_custom_object(group, version, plural, **kw)

        items = list(self._list(f"{plural}.{group}", call, missing_ok=True))
        for item in items:
            item.setdefault("apiVersion", f"{group}/{version}")
            item.setdefault("kind", kind)
        return items

    def operator_daemonsets(self) -> list[DaemonSetEnv]:
        """The operator's rendered toolkit and device plugin DaemonSets (any namespace), one entry per container."""
        found = []
        for item in self._list("daemonsets.apps", self._apps.list_daemon_set_for_all_namespaces):
            meta = _section(item, "metadata")
            name = meta.get("name")
            if name not in OPERATOR_DAEMONSETS:
                continue
            pod_spec = _section(_section(_section(item, "spec"), "template"), "spec")
            containers = [c for c in pod_spec.get("containers") or () if isinstance(c, Mapping)]
            wanted = [c for c in containers if c.get("name") == _CONTAINERS[name]] or containers[:1]
            for c in wanted:
                env: dict[str, str] = {}
                refs = []
                for e in c.get("env") or ():
                    if not isinstance(e, Mapping) or not isinstance(e.get("name"), str):
                        continue
                    if "valueFrom" in e:
                        refs.append(e["name"])
                    else:
                        env[e["name"]] = str(e.get("value", ""))
                found.append(DaemonSetEnv(
                    namespace=str(meta.get("namespace", "")), name=name, container=str(c.get("name", "")),
                    image=str(c.get("image", "")), env=env, node_selector=_strings(pod_spec.get("nodeSelector")),
                    from_refs=tuple(refs),
                ))
        return found

    def runtime_classes(self) -> dict[str, str]:
        """RuntimeClass name -> handler."""
        classes = {}
        for item in self._list("runtimeclasses.node.k8s.io", self._node.list_runtime_class):
            name, handler = _section(item, "metadata").get("name"), item.get("handler")
            if isinstance(name, str) and isinstance(handler, str):
                classes[name] = handler
        return classes

    def config_maps(self) -> Iterator[dict[str, Any]]:
        """ConfigMaps (of ``namespace``, else all): the env sources pods refer to."""
        ns = self.options.namespace
        call = ((lambda **kw: self._core.list_namespaced_config_map(ns, **kw)) if ns
                else self._core.list_config_map_for_all_namespaces)
        for item in self._list("configmaps", call):
            item.setdefault("apiVersion", "v1")
            item.setdefault("kind", "ConfigMap")
            yield item

    def pull_secrets(self, refs: Iterable[tuple[str, str]]) -> list[dict[str, Any]]:
        """The pull Secrets the pods name (``get``, one by one: no ``list`` on Secrets is needed).

        Their contents go to the image resolver only; errors name the Secret, never its data.
        """
        found = []
        for namespace, name in refs:

            def call(ns: str = namespace, n: str = name, **kw: Any) -> Any:
                kw.pop("limit", None)
                return self._core.read_namespaced_secret(n, ns, **kw)

            item = self._request(f"get secret {namespace}/{name}", call,
                                 {"_preload_content": False, "_request_timeout": self.options.timeout},
                                 missing_ok=False)
            if item is not None:
                item.setdefault("apiVersion", "v1")
                item.setdefault("kind", "Secret")
                found.append(item)
        return found

    # -- paging, retries, errors -------------------------------------------------------------------------------

    def _list(self, resource: str, call: Callable[..., Any], *, missing_ok: bool = False) -> Iterator[dict[str, Any]]:
        """Every item of one list, page by page; a failure ends this list with one ReadError."""
        token: str | None = None
        while True:
            kwargs: dict[str, Any] = {"limit": self.options.page_size, "_preload_content": False,
                                      "_request_timeout": self.options.timeout}
            if token:
                kwargs["_continue"] = token
            page = self._request(f"list {resource}", call, kwargs, missing_ok=missing_ok)
            if page is None:
                return
            for item in page.get("items") or ():
                if isinstance(item, dict):
                    yield item
            token = _section(page, "metadata").get("continue") or None
            if not token:
                return

    def _request(
        self, resource: str, call: Callable[..., Any], kwargs: dict[str, Any], *, missing_ok: bool
    ) -> dict[str, Any] | None:
        try:
            page = orjson.loads(send(call, kwargs, max_retries=self.options.max_retries, sleep=self._sleep,
                                     counts=self))
        except Refused as exc:
            if exc.status == 404 and missing_ok:
                return None  # the CRD is not installed: no GPU Operator
            self.errors.append(ReadError(f"{resource}: {exc.text}", self.location))
            return None
        except orjson.JSONDecodeError:
            self.errors.append(ReadError(f"{resource}: the API server's answer is not JSON", self.location))
            return None
        if not isinstance(page, dict):
            self.errors.append(ReadError(f"{resource}: expected a list object", self.location))
            return None
        return page


def _section(obj: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = obj.get(key)
    return value if isinstance(value, Mapping) else {}


def _strings(value: object) -> dict[str, str]:
    if not isinstance(value, Mapping):
        return {}
    return {str(k): str(v) for k, v in value.items()}


def sharing_of(config_map: Mapping[str, Any]) -> dict[str, tuple[str, int]]:
    """Device plugin configs in a ConfigMap that share GPUs: key -> (``timeSlicing``/``mps``, most replicas).

    A key counts when its value is a device plugin config (YAML with ``version`` and
    ``sharing.timeSlicing.resources`` or ``sharing.mps.resources``); other keys are ignored.
    """
    import yaml  # noqa: PLC0415 - lazy: only ConfigMaps that look like device plugin configs are parsed

    found: dict[str, tuple[str, int]] = {}
    data = config_map.get("data")
    if not isinstance(data, Mapping):
        return found
    for key, text in data.items():
        if not isinstance(text, str) or "sharing" not in text:
            continue
        try:
            doc = yaml.safe_load(text)
        except yaml.YAMLError:
            continue
        sharing = doc.get("sharing") if isinstance(doc, Mapping) else None
        if not isinstance(sharing, Mapping):
            continue
        for strategy in ("timeSlicing", "mps"):
            section = sharing.get(strategy)
            resources = section.get("resources") if isinstance(section, Mapping) else None
            replicas = [r.get("replicas") for r in resources or () if isinstance(r, Mapping)]
            most = max((n for n in replicas if isinstance(n, int)), default=0)
            if most > found.get(str(key), ("", 0))[1]:
                found[str(key)] = (strategy, most)
    return found
