"""Kubernetes objects (parsed YAML/JSON) to :class:`~gpuguard.model.pod.Pod` models.

Any object that carries a pod template becomes one ``Pod`` per template; where
the templates sit is the data in :data:`POD_TEMPLATE_PATHS`, so supporting a
new workload kind is one line there.  Unknown kinds give ``[]``: the caller
counts them, they are not errors.

A wrong type anywhere (a string where a list belongs, a number as an env
value, a container without a name) raises :class:`InputError` naming the
exact path, because the API server would refuse the object too and guessing
what it meant could hide a GPU.  ``null`` counts as absent, as in Kubernetes.

What is modelled of the security context: ``privileged`` and
``capabilities`` exist only on containers (``PodSecurityContext`` has
neither), so there is nothing for a pod-level value to supply; the pod-level
``securityContext`` is still type-checked.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from gpuguard.model.errors import InputError, type_name
from gpuguard.model.pod import (
    Container,
    EnvFromSource,
    EnvVar,
    OwnerReference,
    Pod,
    SecurityContext,
    ValueRef,
    Volume,
    VolumeMount,
)

__all__ = ["POD_TEMPLATE_PATHS", "is_known_kind", "objects", "pods_from_object"]

# (API group, kind) -> where its pod templates are.  A path step "[]" walks every
# item of a list, "{}" every value of a mapping.  "argo:<path>" names an Argo
# workflow spec whose ``templates`` each describe a pod.  "" is the object itself.
POD_TEMPLATE_PATHS: dict[tuple[str, str], tuple[str, ...]] = {
    ("", "Pod"): ("",),
    ("", "PodTemplate"): ("template",),
    ("", "ReplicationController"): ("spec.template",),
    ("apps", "Deployment"): ("spec.template",),
    ("apps", "StatefulSet"): ("spec.template",),
    ("apps", "DaemonSet"): ("spec.template",),
    ("apps", "ReplicaSet"): ("spec.template",),
    ("extensions", "Deployment"): ("spec.template",),
    ("extensions", "DaemonSet"): ("spec.template",),
    ("extensions", "ReplicaSet"): ("spec.template",),
    ("batch", "Job"): ("spec.template",),
    ("batch", "CronJob"): ("spec.jobTemplate.spec.template",),
    ("kubeflow.org", "PyTorchJob"): ("spec.pytorchReplicaSpecs.{}.template",),
    ("kubeflow.org", "TFJob"): ("spec.tfReplicaSpecs.{}.template",),
    ("kubeflow.org", "MPIJob"): ("spec.mpiReplicaSpecs.{}.template",),
    ("kubeflow.org", "XGBoostJob"): ("spec.xgbReplicaSpecs.{}.template",),
    ("kubeflow.org", "PaddleJob"): ("spec.paddleReplicaSpecs.{}.template",),
    ("kubeflow.org", "MXJob"): ("spec.mxReplicaSpecs.{}.template",),
    ("kubeflow.org", "JAXJob"): ("spec.jaxReplicaSpecs.{}.template",),
    ("ray.io", "RayCluster"): ("spec.headGroupSpec.template", "spec.workerGroupSpecs[].template"),
    ("ray.io", "RayJob"): (
        "spec.rayClusterSpec.headGroupSpec.template",
        "spec.rayClusterSpec.workerGroupSpecs[].template",
        "spec.submitterPodTemplate",
    ),
    ("ray.io", "RayService"): (
        "spec.rayClusterConfig.headGroupSpec.template",
        "spec.rayClusterConfig.workerGroupSpecs[].template",
    ),
    ("jobset.x-k8s.io", "JobSet"): ("spec.replicatedJobs[].template.spec.template",),
    ("leaderworkerset.x-k8s.io", "LeaderWorkerSet"): (
        "spec.leaderWorkerTemplate.leaderTemplate",
        "spec.leaderWorkerTemplate.workerTemplate",
    ),
    ("batch.volcano.sh", "Job"): ("spec.tasks[].template",),
    ("argoproj.io", "Workflow"): ("argo:spec",),
    ("argoproj.io", "WorkflowTemplate"): ("argo:spec",),
    ("argoproj.io", "ClusterWorkflowTemplate"): ("argo:spec",),
    ("argoproj.io", "CronWorkflow"): ("argo:spec.workflowSpec",),
}

# Without apiVersion, a kind means the first group listed for it above.
_BY_KIND: dict[str, tuple[str, ...]] = {}
for (_group, _kind), _paths in POD_TEMPLATE_PATHS.items():
    _BY_KIND.setdefault(_kind, _paths)

_MAX_LIST_DEPTH = 16


def is_known_kind(obj: object) -> bool:
    """Whether ``obj`` is a List or a kind that carries pod templates."""
    return isinstance(obj, Mapping) and (_is_list(obj) or _paths_for(obj) is not None)


def objects(obj: object, where: str, path: str = "") -> Iterator[tuple[Any, str]]:
    """Each object in ``obj`` with its path: the items of List kinds (recursively), else ``obj``.

    ``kubectl get -o yaml`` wraps objects in ``kind: List``; the API's own
    ``DeploymentList`` items carry no kind, so they get the list's.  Use this
    to read a List item by item, so that one bad item does not hide the rest.
    Raises ``InputError`` when a List's ``items`` is not a list.
    """
    yield from _objects(obj, _Path(where, path), 0)


def pods_from_object(obj: Mapping[str, Any], where: str, *, path: str = "") -> list[Pod]:
    """The pods ``obj`` describes: one per pod template, every item of a List.

    ``where`` names the document (``deploy.yaml#0``), ``path`` where ``obj``
    sits in it (``items[3]``, from :func:`objects`).  Raises ``InputError``
    on the first wrong type; returns ``[]`` for kinds that carry no pods.
    """
    pods: list[Pod] = []
    for item, item_path in _objects(obj, _Path(where, path), 0):
        if isinstance(item, Mapping):
            pods.extend(_pods_of_one(item, _Path(where, item_path)))
    return pods


# --- paths and errors -------------------------------------------------------------------------------

_PLAIN_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*")


@dataclass(frozen=True, slots=True)
class _Path:
    """Where a value sits: the document and the dotted path inside it."""

    where: str
    dotted: str = ""

    def key(self, key: object) -> _Path:
        text = str(key)
        if not _PLAIN_KEY.fullmatch(text):
            return _Path(self.where, f"{self.dotted}[{text}]")
        return _Path(self.where, f"{self.dotted}.{text}" if self.dotted else text)

    def index(self, i: int) -> _Path:
        return _Path(self.where, f"{self.dotted}[{i}]")

    def error(self, message: str) -> InputError:
        return InputError(f"{self.where} {self.dotted}" if self.dotted else self.where, message)


def _wrong(path: _Path, expected: str, value: object) -> InputError:
    return path.error(f"expected {expected}, got {type_name(value)}")


def _required_mapping(value: object, path: _Path) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise _wrong(path, "a mapping", value)
    return value


def _mapping(value: object, path: _Path) -> Mapping[str, Any]:
    """A mapping, or empty when absent (null)."""
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise _wrong(path, "a mapping", value)
    return value


def _list(value: object, path: _Path) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise _wrong(path, "a list", value)
    return value


def _opt_str(value: object, path: _Path) -> str | None:
    if value is not None and not isinstance(value, str):
        raise _wrong(path, "a string", value)
    return value


def _str(parent: Mapping[str, Any], key: str, path: _Path, *, required: bool = False) -> str:
    value = parent.get(key)
    if value is None:
        if required:
            raise path.key(key).error("required field is missing")
        return ""
    if not isinstance(value, str):
        raise _wrong(path.key(key), "a string", value)
    if required and not value:
        raise path.key(key).error("required field is empty")
    return value


def _bool(parent: Mapping[str, Any], key: str, path: _Path) -> bool:
    value = parent.get(key)
    if value is None:
        return False
    if not isinstance(value, bool):
        raise _wrong(path.key(key), "true or false", value)
    return value


def _strings(value: object, path: _Path) -> tuple[str, ...]:
    out = []
    for i, item in enumerate(_list(value, path)):
        if not isinstance(item, str):
            raise _wrong(path.index(i), "a string", item)
        out.append(item)
    return tuple(out)


def _string_map(value: object, path: _Path) -> dict[str, str]:
    out: dict[str, str] = {}
    for key, item in _mapping(value, path).items():
        if not isinstance(key, str):
            raise _wrong(path.key(key), "a string key", key)
        if not isinstance(item, str):
            raise _wrong(path.key(key), "a string (quote it)", item)
        out[key] = item
    return out


# --- kinds and templates ------------------------------------------------------------------------------


def _is_list(obj: Mapping[str, Any]) -> bool:
    kind = obj.get("kind")
    return isinstance(kind, str) and kind.endswith("List") and "items" in obj


def _objects(obj: object, path: _Path, depth: int) -> Iterator[tuple[Any, str]]:
    if not (isinstance(obj, Mapping) and _is_list(obj)) or depth >= _MAX_LIST_DEPTH:
        yield obj, path.dotted
        return
    items_path = path.key("items")
    items = _list(obj.get("items"), items_path)
    kind = obj["kind"][: -len("List")]
    api_version = obj.get("apiVersion")
    for i, item in enumerate(items):
        typed = item
        if kind and isinstance(item, Mapping) and "kind" not in item:  # DeploymentList items
            typed = {"kind": kind, "apiVersion": api_version, **item}
        yield from _objects(typed, items_path.index(i), depth + 1)


def _paths_for(obj: Mapping[str, Any]) -> tuple[str, ...] | None:
    kind = obj.get("kind")
    if not isinstance(kind, str):
        return None
    api_version = obj.get("apiVersion")
    if not isinstance(api_version, str):
        return _BY_KIND.get(kind)
    group = api_version.rpartition("/")[0] if "/" in api_version else ""
    return POD_TEMPLATE_PATHS.get((group, kind))


@dataclass(frozen=True, slots=True)
class _Workload:
    kind: str
    name: str
    namespace: str
    api_version: str = ""
    explicit_namespace: str | None = None
    annotations: Mapping[str, str] | None = None
    labels: Mapping[str, str] | None = None
    owners: tuple[OwnerReference, ...] = ()


def _pods_of_one(obj: Mapping[str, Any], root: _Path) -> list[Pod]:
    paths = _paths_for(obj)
    if paths is None:
        return []
    meta = _mapping(obj.get("metadata"), root.key("metadata"))
    meta_path = root.key("metadata")
    name = _str(meta, "name", meta_path) or _str(meta, "generateName", meta_path)
    namespace = _str(meta, "namespace", meta_path) or None
    api_version = obj.get("apiVersion")
    workload = _Workload(
        str(obj["kind"]),
        name,
        namespace or "default",
        api_version if isinstance(api_version, str) else "",
        namespace,
        _string_map(meta.get("annotations"), meta_path.key("annotations")),
        _string_map(meta.get("labels"), meta_path.key("labels")),
        _owners(meta.get("ownerReferences"), meta_path.key("ownerReferences")),
    )
    pods: list[Pod] = []
    several = len(paths) > 1
    for spec_path in paths:
        if spec_path.startswith("argo:"):
            pods.extend(_argo_pods(obj, spec_path[len("argo:") :], root, workload))
            continue
        fallback_role = spec_path.split(".")[-2 if spec_path.endswith(".template") else -1] if several else ""
        for template, tpath, role in _walk(obj, spec_path.split(".") if spec_path else [], root, ""):
            pods.append(_pod(template, tpath, workload, role or fallback_role))
    return pods


def _walk(value: object, steps: list[str], path: _Path, role: str) -> Iterator[tuple[Mapping[str, Any], _Path, str]]:
    """The values at the end of ``steps``; absent ones are skipped, wrong types raise."""
    if value is None:
        return
    if not steps:
        yield _mapping(value, path), path, role
        return
    step, rest = steps[0], steps[1:]
    if step == "{}":
        for key, item in _mapping(value, path).items():
            yield from _walk(item, rest, path.key(key), f"{role}/{key}".lstrip("/"))
        return
    is_list = step.endswith("[]")
    key = step[:-2] if is_list else step
    child = _mapping(value, path).get(key)
    child_path = path.key(key)
    if not is_list:
        yield from _walk(child, rest, child_path, role)
        return
    for i, item in enumerate(_list(child, child_path)):
        label = _item_label(item, i)
        yield from _walk(item, rest, child_path.index(i), f"{role}/{key}[{label}]".lstrip("/"))


def _item_label(item: object, index: int) -> str:
    if isinstance(item, Mapping):
        for key in ("name", "groupName"):
            if isinstance(item.get(key), str) and item[key]:
                return str(item[key])
    return str(index)


# --- pods ------------------------------------------------------------------------------------------------


def _pod(template: Mapping[str, Any], path: _Path, workload: _Workload, role: str) -> Pod:
    """A Pod from a pod (``path`` is the object) or a pod template (metadata from the template)."""
    meta_path, spec_path = path.key("metadata"), path.key("spec")
    meta = _mapping(template.get("metadata"), meta_path)
    spec = _mapping(template.get("spec"), spec_path)
    name = workload.name
    if role:
        name = f"{name}/{role}" if name else role
    _mapping(spec.get("securityContext"), spec_path.key("securityContext"))  # type check only
    runtime_class = _opt_str(spec.get("runtimeClassName"), spec_path.key("runtimeClassName"))
    node_name = _opt_str(spec.get("nodeName"), spec_path.key("nodeName"))
    return Pod(
        name=name,
        namespace=workload.namespace,
        containers=_all_containers(spec, spec_path),
        volumes=_volumes(spec.get("volumes"), spec_path.key("volumes")),
        annotations=_string_map(meta.get("annotations"), meta_path.key("annotations")),
        labels=_string_map(meta.get("labels"), meta_path.key("labels")),
        runtime_class_name=runtime_class or None,
        service_account=_service_account(spec, spec_path),
        workload_kind=workload.kind,
        workload_name=workload.name,
        node_name=node_name or None,
        template_path=path.dotted,
        workload_api_version=workload.api_version,
        workload_namespace=workload.explicit_namespace,
        workload_annotations=workload.annotations or {},
        workload_labels=workload.labels or {},
        owner_references=workload.owners,
        resource_claims=_claim_names(spec.get("resourceClaims"), spec_path.key("resourceClaims")),
    )


def _owners(value: object, path: _Path) -> tuple[OwnerReference, ...]:
    """``metadata.ownerReferences``: how GPU Operator components are told apart."""
    owners = []
    for i, item in enumerate(_list(value, path)):
        ref = _mapping(item, path.index(i))
        owners.append(
            OwnerReference(
                api_version=_str(ref, "apiVersion", path.index(i)),
                kind=_str(ref, "kind", path.index(i)),
                name=_str(ref, "name", path.index(i)),
                controller=_bool(ref, "controller", path.index(i)),
            )
        )
    return tuple(owners)


def _claim_names(value: object, path: _Path) -> tuple[str, ...]:
    """``spec.resourceClaims[*].name`` (DRA device requests)."""
    items = enumerate(_list(value, path))
    return tuple(_str(_mapping(item, path.index(i)), "name", path.index(i)) for i, item in items)


def _service_account(spec: Mapping[str, Any], path: _Path) -> str:
    # serviceAccount is the deprecated alias Kubernetes still honours when the new field is empty.
    return _str(spec, "serviceAccountName", path) or _str(spec, "serviceAccount", path) or "default"


_CONTAINER_LISTS = (
    ("initContainers", "initContainer"),
    ("containers", "container"),
    ("ephemeralContainers", "ephemeralContainer"),
)


def _all_containers(spec: Mapping[str, Any], path: _Path) -> tuple[Container, ...]:
    out: list[Container] = []
    for field, kind in _CONTAINER_LISTS:
        list_path = path.key(field)
        for i, item in enumerate(_list(spec.get(field), list_path)):
            out.append(_container(item, list_path.index(i), kind))
    return tuple(out)


def _container(value: object, path: _Path, kind: str, default_name: str = "") -> Container:
    c = _required_mapping(value, path)
    name = _str(c, "name", path, required=not default_name) or default_name
    return Container(
        name=name,
        image=_str(c, "image", path),
        kind=kind,
        env=_env(c.get("env"), path.key("env")),
        env_from=_env_from(c.get("envFrom"), path.key("envFrom")),
        resources=_resources(c.get("resources"), path.key("resources")),
        security=_security(c.get("securityContext"), path.key("securityContext")),
        volume_mounts=_mounts(c.get("volumeMounts"), path.key("volumeMounts")),
    )


_REF_KINDS = ("configMapKeyRef", "secretKeyRef", "fieldRef", "resourceFieldRef")


def _env(value: object, path: _Path) -> tuple[EnvVar, ...]:
    out = []
    for i, item in enumerate(_list(value, path)):
        item_path = path.index(i)
        entry = _required_mapping(item, item_path)
        name = _str(entry, "name", item_path, required=True)
        text = _str(entry, "value", item_path)
        value_from = entry.get("valueFrom")
        ref = None if value_from is None else _value_ref(value_from, item_path.key("valueFrom"))
        if ref is not None and text:
            raise item_path.error("value and valueFrom are both set; Kubernetes allows one")
        out.append(EnvVar(name=name, value=text, value_from=ref))
    return tuple(out)


def _value_ref(value: object, path: _Path) -> ValueRef:
    source = _mapping(value, path)
    present = [k for k in _REF_KINDS if source.get(k) is not None]
    if len(present) != 1:
        raise path.error(f"expected exactly one of {', '.join(_REF_KINDS)}, got {len(present)}")
    kind = present[0]
    ref_path = path.key(kind)
    ref = _mapping(source[kind], ref_path)
    if kind == "fieldRef":
        return ValueRef(kind, name=_str(ref, "fieldPath", ref_path, required=True))
    if kind == "resourceFieldRef":
        # key carries the container the resource is read from ("" means this one).
        resource = _str(ref, "resource", ref_path, required=True)
        return ValueRef(kind, name=resource, key=_str(ref, "containerName", ref_path))
    return ValueRef(
        kind,
        name=_str(ref, "name", ref_path),
        key=_str(ref, "key", ref_path, required=True),
        optional=_bool(ref, "optional", ref_path),
    )


def _env_from(value: object, path: _Path) -> tuple[EnvFromSource, ...]:
    out = []
    for i, item in enumerate(_list(value, path)):
        item_path = path.index(i)
        entry = _required_mapping(item, item_path)
        present = [k for k in ("configMapRef", "secretRef") if entry.get(k) is not None]
        if len(present) != 1:
            raise item_path.error(f"expected exactly one of configMapRef, secretRef, got {len(present)}")
        ref_path = item_path.key(present[0])
        ref = _mapping(entry[present[0]], ref_path)
        out.append(
            EnvFromSource(
                kind=present[0],
                name=_str(ref, "name", ref_path),
                prefix=_str(entry, "prefix", item_path),
                optional=_bool(ref, "optional", ref_path),
            )
        )
    return tuple(out)


def _security(value: object, path: _Path) -> SecurityContext:
    sc = _mapping(value, path)
    caps_path = path.key("capabilities")
    caps = _mapping(sc.get("capabilities"), caps_path)
    return SecurityContext(
        privileged=_bool(sc, "privileged", path),
        capabilities_add=_strings(caps.get("add"), caps_path.key("add")),
        capabilities_drop=_strings(caps.get("drop"), caps_path.key("drop")),
    )


def _mounts(value: object, path: _Path) -> tuple[VolumeMount, ...]:
    out = []
    for i, item in enumerate(_list(value, path)):
        item_path = path.index(i)
        m = _required_mapping(item, item_path)
        out.append(
            VolumeMount(
                name=_str(m, "name", item_path, required=True),
                mount_path=_str(m, "mountPath", item_path, required=True),
                sub_path=_str(m, "subPath", item_path) or _str(m, "subPathExpr", item_path),
                read_only=_bool(m, "readOnly", item_path),
            )
        )
    return tuple(out)


def _volumes(value: object, path: _Path) -> tuple[Volume, ...]:
    out = []
    for i, item in enumerate(_list(value, path)):
        item_path = path.index(i)
        v = _required_mapping(item, item_path)
        name = _str(v, "name", item_path, required=True)
        sources = [k for k in v if k != "name" and v[k] is not None]
        kind = str(sources[0]) if sources else "emptyDir"  # no source at all means emptyDir
        host_path = None
        if "hostPath" in sources:
            kind = "hostPath"
            hp_path = item_path.key("hostPath")
            host_path = _str(_mapping(v["hostPath"], hp_path), "path", hp_path, required=True)
        out.append(Volume(name=name, host_path=host_path, kind=kind))
    return tuple(out)


# --- resources -----------------------------------------------------------------------------------------

_QUANTITY = re.compile(r"([+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+))(Ki|Mi|Gi|Ti|Pi|Ei|[mkMGTPE]|[eE][+-]?[0-9]+)?")
_SUFFIXES = {
    "": Decimal(1), "m": Decimal("0.001"),
    "k": Decimal(10) ** 3, "M": Decimal(10) ** 6, "G": Decimal(10) ** 9,
    "T": Decimal(10) ** 12, "P": Decimal(10) ** 15, "E": Decimal(10) ** 18,
    "Ki": Decimal(2) ** 10, "Mi": Decimal(2) ** 20, "Gi": Decimal(2) ** 30,
    "Ti": Decimal(2) ** 40, "Pi": Decimal(2) ** 50, "Ei": Decimal(2) ** 60,
}  # fmt: skip
_MAX_COUNT = 2**63 - 1


def _is_extended(name: str) -> bool:
    """Kubernetes' extended resources: domain-prefixed names outside kubernetes.io (nvidia.com/gpu)."""
    if "/" not in name or name.startswith("requests."):
        return False
    domain = name.split("/", 1)[0]
    return not (domain == "kubernetes.io" or domain.endswith(".kubernetes.io"))


def _resources(value: object, path: _Path) -> dict[str, int]:
    """Extended resources as whole counts, limits over requests (the device plugin reads limits)."""
    res = _mapping(value, path)
    merged: dict[str, int] = {}
    for field in ("requests", "limits"):
        field_path = path.key(field)
        for name, quantity in _mapping(res.get(field), field_path).items():
            if not isinstance(name, str):
                raise _wrong(field_path.key(name), "a resource name (string)", name)
            count = _quantity(quantity, field_path.key(name), whole=_is_extended(name))
            if count is not None:
                merged[name] = count
    return merged


def _quantity(value: object, path: _Path, *, whole: bool) -> int | None:
    """A resource quantity; the count for an extended resource, else only checked (None)."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise _wrong(path, "a quantity", value)
    if not whole:
        return None
    if isinstance(value, str):
        m = _QUANTITY.fullmatch(value.strip())
        if m is None:
            raise path.error(f"invalid quantity {value!r}")
        number, suffix = m.group(1), m.group(2) or ""
        try:
            if suffix[:1] in ("e", "E") and len(suffix) > 1:
                exponent = int(suffix[1:])
                if abs(exponent) > 30:
                    raise path.error(f"quantity {value!r} is out of range")
                amount = Decimal(number).scaleb(exponent)
            else:
                amount = Decimal(number) * _SUFFIXES[suffix]
        except InvalidOperation:
            raise path.error(f"invalid quantity {value!r}") from None
    else:
        try:
            amount = Decimal(value)
        except (InvalidOperation, ValueError):
            raise path.error(f"invalid quantity {value!r}") from None
        if not amount.is_finite():
            raise path.error(f"invalid quantity {value!r}")
    if amount != amount.to_integral_value():
        raise path.error(f"must be a whole number, got {value!r}: extended resources cannot be fractional")
    if amount < 0 or amount > _MAX_COUNT:
        raise path.error(f"quantity {value!r} is out of range")
    return int(amount)


# --- Argo workflows ------------------------------------------------------------------------------------


def _argo_pods(obj: Mapping[str, Any], spec_path: str, root: _Path, workload: _Workload) -> list[Pod]:
    """One pod per Argo template that runs a container, script or container set.

    Pod-level fields come from the template, else the workflow spec: volumes
    of both, ``podMetadata`` under the template's ``metadata``,
    ``securityContext`` and ``serviceAccountName``.  ``podSpecPatch`` and
    ``templateDefaults`` are not applied.
    """
    spec: object = obj
    path = root
    for step in spec_path.split("."):
        spec = _mapping(spec, path).get(step)
        path = path.key(step)
    spec_map = _mapping(spec, path)
    pods = []
    pod_meta = _mapping(spec_map.get("podMetadata"), path.key("podMetadata"))
    wf_volumes = _volumes(spec_map.get("volumes"), path.key("volumes"))
    _mapping(spec_map.get("securityContext"), path.key("securityContext"))
    wf_account = _str(spec_map, "serviceAccountName", path)
    templates_path = path.key("templates")
    for i, item in enumerate(_list(spec_map.get("templates"), templates_path)):
        tpath = templates_path.index(i)
        t = _required_mapping(item, tpath)
        containers: list[Container] = []
        for key in ("container", "script"):
            if t.get(key) is not None:
                containers.append(_container(t[key], tpath.key(key), "container", default_name="main"))
        set_path = tpath.key("containerSet")
        container_set = _mapping(t.get("containerSet"), set_path)
        for j, c in enumerate(_list(container_set.get("containers"), set_path.key("containers"))):
            containers.append(_container(c, set_path.key("containers").index(j), "container"))
        if not containers:
            continue  # steps, dag, resource, suspend: no pod of its own
        inits = _list(t.get("initContainers"), tpath.key("initContainers"))
        sidecars = _list(t.get("sidecars"), tpath.key("sidecars"))
        containers[:0] = [
            _container(c, tpath.key("initContainers").index(j), "initContainer") for j, c in enumerate(inits)
        ]
        containers.extend(_container(c, tpath.key("sidecars").index(j), "container") for j, c in enumerate(sidecars))
        meta_path = tpath.key("metadata")
        meta = _mapping(t.get("metadata"), meta_path)
        _mapping(t.get("securityContext"), tpath.key("securityContext"))
        template_name = _str(t, "name", tpath) or str(i)
        pods.append(
            Pod(
                name=f"{workload.name}/{template_name}" if workload.name else template_name,
                namespace=workload.namespace,
                containers=tuple(containers),
                volumes=wf_volumes + _volumes(t.get("volumes"), tpath.key("volumes")),
                annotations={
                    **_string_map(pod_meta.get("annotations"), path.key("podMetadata").key("annotations")),
                    **_string_map(meta.get("annotations"), meta_path.key("annotations")),
                },
                labels={
                    **_string_map(pod_meta.get("labels"), path.key("podMetadata").key("labels")),
                    **_string_map(meta.get("labels"), meta_path.key("labels")),
                },
                service_account=_str(t, "serviceAccountName", tpath) or wf_account or "default",
                workload_kind=workload.kind,
                workload_name=workload.name,
                template_path=tpath.dotted,
            )
        )
    return pods
