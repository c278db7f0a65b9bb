"""Which node the manifests are judged against, and where that came from.

Precedence: ``--profile FILE``; else a GPU Operator ClusterPolicy, Helm
values or ``--operator-version`` (with a toolkit ``config.toml`` found among
the inputs replacing the rendered config, since that is the file on the
node); else a ``config.toml`` or ``--toolkit-version`` alone (device plugin
and runtime as in the most exposed setup); else the most exposed common
configuration, flagged as assumed.  RuntimeClass objects found among the
inputs are added to whichever profile is chosen.

The settings are found by a pre-scan (:func:`prescan`): every input is read
once up front and only the document slices that
:func:`~gpuguard.sources.classify.node_setting_spans` points at are parsed,
so the audit proper can stream workloads once, already knowing the node.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, BinaryIO

from gpuguard.engine.operator.profile import MOST_EXPOSED_RELEASE, most_exposed_profile, node_profile
from gpuguard.engine.toolkit.config import config_from_toml
from gpuguard.model.errors import InputError
from gpuguard.model.finding import Location, ReadError, Resource
from gpuguard.model.node import Gpu, NodeProfile
from gpuguard.model.report import ProfileSummary
from gpuguard.model.toolkit import Toolkit
from gpuguard.model.version import Version
from gpuguard.sources.classify import Category, classify, is_toml, node_setting_spans, runtime_class_handler
from gpuguard.sources.documents import load_document, load_documents
from gpuguard.sources.inputs import STDIN, STDIN_NAME, Input, read_windows
from gpuguard.sources.kubernetes import objects
from gpuguard.sources.pod_question import read_node
from gpuguard.sources.toml_text import parse_toml

# Manifests do not say which node they land on: judge them on an 8-GPU node (the common size of
# a GPU server), so a request for 1..8 GPUs is allocated and what it sees can be told apart.
NODE_GPUS = tuple(Gpu(uuid=f"GPU-{i}", index=str(i)) for i in range(8))


@dataclass(slots=True)
class Found:
    """Node settings found among the inputs, in input order."""

    cluster_policies: list[tuple[Mapping[str, Any], Location, Resource]] = field(default_factory=list)
    helm_values: list[tuple[Mapping[str, Any], Location]] = field(default_factory=list)
    tomls: list[tuple[Mapping[str, Any], Location]] = field(default_factory=list)
    device_plugin_config: Location | None = None
    runtime_classes: dict[str, str] = field(default_factory=dict)
    errors: list[ReadError] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class NodeCheck:
    """A node-level rule run: which check, on which node, for what object or file."""

    check: str  # "node" | "toolkit_node" (toolkit rules only) | "toolkit_config" | "advisories"
    node: NodeProfile
    resource: Resource | None
    location: Location
    config: Any = None  # the toolkit config for "toolkit_config"


@dataclass(frozen=True, slots=True)
class Choice:
    node: NodeProfile
    summary: ProfileSummary
    checks: tuple[NodeCheck, ...]
    errors: tuple[ReadError, ...] = ()


def prescan(
    files: Iterable[str], stdin: BinaryIO | None = None, visit: Callable[[str, bytes], None] | None = None
) -> Found:
    """Find node settings in ``files``: read each once, parse only the slices that may hold them.

    Errors in those slices are left to the main pass, which reports every
    document's error once, with its line; config.toml files are read only here.
    ``visit`` sees every other window too (the image pre-scan rides on this read).
    """
    found = Found()
    for path in files:
        for window in read_windows(path, stdin=stdin):
            if isinstance(window, ReadError):
                if is_toml(path):
                    found.errors.append(window)
                break
            if is_toml(path):
                _toml(found, Input(path, window.data))
                break
            if visit is not None:
                visit(path, window.data)
            for line0, span in node_setting_spans(window.data):
                name = STDIN_NAME if path == STDIN else path
                for doc in load_documents(span, name, start_line=window.line + line0):
                    if doc.error is not None:
                        continue
                    try:
                        for obj, _ in objects(doc.obj, doc.where):
                            _note(found, obj, Location(name, doc.line))
                    except InputError:
                        continue
    return found


def _toml(found: Found, item: Input) -> None:
    location = Location(item.path, 1)
    try:
        text = item.data.decode("utf-8")
        doc = parse_toml(text, item.path)
    except UnicodeDecodeError as exc:
        found.errors.append(ReadError(f"not UTF-8 text: invalid byte at offset {exc.start}", location))
        return
    except InputError as exc:
        line = _toml_error_line(exc.message)
        found.errors.append(ReadError(exc.message, Location(item.path, line)))
        return
    found.tomls.append((doc, location))


def _toml_error_line(message: str) -> int | None:
    m = re.search(r"line (\d+)", message)
    return int(m.group(1)) if m else None


def _note(found: Found, obj: object, location: Location) -> None:
    category, _ = classify(obj)
    if not isinstance(obj, Mapping):
        return
    if category is Category.CLUSTER_POLICY:
        meta = obj.get("metadata")
        name = meta.get("name") if isinstance(meta, Mapping) else None
        resource = Resource(str(obj.get("apiVersion") or "nvidia.com/v1"), "ClusterPolicy", None, str(name or ""))
        found.cluster_policies.append((obj, location, resource))
    elif category is Category.HELM_VALUES:
        found.helm_values.append((obj, location))
    elif category is Category.RUNTIME_CLASS:
        pair = runtime_class_handler(obj)
        if pair is not None:
            found.runtime_classes[pair[0]] = pair[1]
    elif category is Category.DEVICE_PLUGIN_CONFIG and found.device_plugin_config is None:
        found.device_plugin_config = location


# --- choosing -------------------------------------------------------------------------------------------


def choose(
    found: Found,
    *,
    operator_version: str | None = None,
    toolkit_version: str | None = None,
    profile_file: str | None = None,
    read: Callable[[str], bytes] | None = None,
) -> Choice:
    """The profile workloads are judged against, and a node check for every node source.

    Every ClusterPolicy, Helm values file and config.toml among the inputs is
    checked on the node it renders (a repository often holds one per
    cluster); the first of them (ClusterPolicy, then values, then
    config.toml) is the node workloads are judged against.  A bad flag or
    profile file raises ``InputError`` (a usage error); a node source that
    cannot be rendered is a read error and the run goes on.
    """
    notes: list[str] = []
    errors: list[ReadError] = []
    checks: list[NodeCheck] = []
    tk_version = _parse_version(toolkit_version, "--toolkit-version") if toolkit_version else None
    if operator_version:
        _operator(operator_version, None, None, "--operator-version")  # a bad flag is a usage error
    rendered: list[tuple[NodeProfile, str, Resource | None, Location]] = []
    for obj, at, resource in found.cluster_policies:
        _render(rendered, errors, notes, obj, at, resource, operator_version, policy=True)
    for obj, at in found.helm_values:
        _render(rendered, errors, notes, obj, at, None, operator_version, policy=False)
    for each, _, res, where in rendered:
        each = _with_toolkit_version(each, tk_version)  # noqa: PLW2901
        checks += [NodeCheck("node", each, res, where), NodeCheck("advisories", each, res, where)]
    assumed = False
    if profile_file is not None:
        node, source = _from_profile_file(profile_file, read), f"--profile {profile_file}"
        checks += [NodeCheck("node", node, None, Location(profile_file)),
                   NodeCheck("advisories", node, None, Location(profile_file))]
    elif rendered:
        node, source = rendered[0][0], rendered[0][1]
        if len(rendered) > 1:
            notes.append(f"{len(rendered)} GPU Operator settings found: workloads are judged against the first, "
                         "each is checked on its own")
    elif operator_version:
        node = _operator(operator_version, None, None, "--operator-version")
        source = f"--operator-version {operator_version} (chart defaults)"
        checks += [NodeCheck("node", node, None, Location("--operator-version")),
                   NodeCheck("advisories", node, None, Location("--operator-version"))]
    elif found.tomls or tk_version is not None:
        node = dataclasses.replace(most_exposed_profile(), assumed=False)
        source = f"config.toml ({found.tomls[0][1].path})" if found.tomls else f"--toolkit-version {toolkit_version}"
        notes.append("device plugin and container runtime not given: assumed the most exposed common setup")
        if not found.tomls:
            checks += [NodeCheck("toolkit_node", _with_toolkit_version(node, tk_version), None,
                                 Location("--toolkit-version")),
                       NodeCheck("advisories", _with_toolkit_version(node, tk_version), None,
                                 Location("--toolkit-version"))]
    else:
        node, source, assumed = most_exposed_profile(), f"GPU Operator {MOST_EXPOSED_RELEASE} defaults", True
        notes.append(
            "nothing known about the GPU nodes: judged against the most exposed common configuration "
            f"(GPU Operator {MOST_EXPOSED_RELEASE} defaults: nvidia runtime as default, envvar strategy, "
            "NVIDIA_VISIBLE_DEVICES accepted from unprivileged containers); give --operator-version, "
            "--toolkit-version, --profile or the ClusterPolicy/values/config.toml to judge your own"
        )
    if profile_file is None:
        node = _with_toolkit_version(node, tk_version)
    for i, (doc, at) in enumerate(found.tomls):
        base = node if profile_file is None else most_exposed_profile()
        try:
            config = config_from_toml(doc, base.toolkit.version)
        except InputError as exc:
            errors.append(ReadError(exc.message, at))
            continue
        with_toml = dataclasses.replace(base, toolkit=Toolkit(base.toolkit.version, config, base.toolkit.platform),
                                        assumed=False)
        checks += [NodeCheck("toolkit_config", with_toml, None, at, config),
                   NodeCheck("toolkit_node", with_toml, None, at)]
        if i == 0 and profile_file is None:
            node = with_toml
            if "config.toml" not in source:
                source += f"; toolkit config from {at.path}"
    if not node.gpus:
        node = dataclasses.replace(node, gpus=NODE_GPUS)
    checks = [dataclasses.replace(c, node=dataclasses.replace(c.node, gpus=c.node.gpus or NODE_GPUS)) for c in checks]
    if found.runtime_classes:
        node = dataclasses.replace(node, runtime_classes={**node.runtime_classes, **found.runtime_classes})
        notes.append("RuntimeClasses from the inputs: " + ", ".join(
            f"{k} -> {v}" for k, v in sorted(found.runtime_classes.items())))
    if found.device_plugin_config is not None:
        at = found.device_plugin_config
        notes.append(f"device plugin config found at {at.path}:{at.line}; its flags are not modelled "
                     "(the device plugin's env, set by the GPU Operator, takes precedence)")
    summary = ProfileSummary(
        source=source,
        operator_version=str(node.operator_version) if node.operator_version is not None else None,
        toolkit_version=str(node.toolkit.version),
        device_plugin_version=str(node.device_plugin.version) if node.device_plugin is not None else None,
        settings=settings_of(node),
        assumed=assumed,
        notes=tuple(notes),
    )
    return Choice(node, summary, tuple(checks), tuple(errors))


def _with_toolkit_version(node: NodeProfile, version: Version | None) -> NodeProfile:
    if version is None:
        return node
    return dataclasses.replace(node, toolkit=dataclasses.replace(node.toolkit, version=version))


def _parse_version(text: str, flag: str) -> Version:
    try:
        return Version.parse(text)
    except ValueError as exc:
        raise InputError(flag, str(exc)) from None


def _from_profile_file(path: str, read: Callable[[str], bytes] | None) -> NodeProfile:
    try:
        if read is not None:
            data = read(path)
        else:
            with open(path, "rb") as f:
                data = f.read()
    except OSError as exc:
        raise InputError(f"--profile {path}", f"cannot read: {exc.strerror or exc}") from None
    doc = load_document(data, path)
    if isinstance(doc, Mapping) and "node" in doc:
        return read_node(doc["node"], f"{path}: node")
    return read_node(doc, path)


_CHART_VERSION = re.compile(r"v?(\d+\.\d+(?:\.\d+)?)")


def _version_of(obj: Mapping[str, Any]) -> str | None:
    """The operator release a ClusterPolicy's labels, or Helm values' ``operator.version``, name."""
    meta = obj.get("metadata")
    if isinstance(meta, Mapping):
        for key in ("labels", "annotations"):
            section = meta.get(key)
            if not isinstance(section, Mapping):
                continue
            for label in ("app.kubernetes.io/version", "helm.sh/chart", "nvidia.com/gpu-operator-version"):
                value = section.get(label)
                if isinstance(value, str) and (m := _CHART_VERSION.search(value)):
                    return m.group(1)
    operator = obj.get("operator")
    if isinstance(operator, Mapping) and isinstance(operator.get("version"), str):
        m = _CHART_VERSION.search(operator["version"])
        return m.group(1) if m else None
    return None


def _operator(
    version: str, policy: Mapping[str, Any] | None, values: Mapping[str, Any] | None, where: str
) -> NodeProfile:
    try:
        return node_profile(version, policy, helm_values=values)
    except ValueError as exc:  # InputError included
        raise InputError(where, str(exc)) from None


def _render(  # noqa: PLR0917 - one call site per source kind
    rendered: list[tuple[NodeProfile, str, Resource | None, Location]],
    errors: list[ReadError],
    notes: list[str],
    obj: Mapping[str, Any],
    at: Location,
    resource: Resource | None,
    flag: str | None,
    *,
    policy: bool,
) -> None:
    own = _version_of(obj)
    version = flag or own
    how = "--operator-version" if flag else ("its labels" if policy else "operator.version")
    if version is None:
        version, how = str(MOST_EXPOSED_RELEASE), "assumed; give --operator-version"
        notes.append(f"{at.path}:{at.line}: GPU Operator release not known: assumed {version} "
                     "(give --operator-version)")
    try:
        node = _operator(version, obj if policy else None, None if policy else obj, f"{at.path}:{at.line}")
    except InputError as exc:
        errors.append(ReadError(str(exc).split(": ", 1)[-1], at))
        return
    what = f"ClusterPolicy {resource.name}" if policy and resource is not None else "GPU Operator Helm values"
    rendered.append((node, f"{what} ({at.path}:{at.line}), operator {version} from {how}", resource, at))


def settings_of(node: NodeProfile) -> dict[str, str]:
    """The effective settings that decide exposure, for the report header."""
    config = node.toolkit.config
    handler = node.runtime.handlers.get(node.runtime.default_handler)
    plugin = node.device_plugin
    return {
        "accept-nvidia-visible-devices-envvar-when-unprivileged": str(config.accept_envvar_unprivileged).lower(),
        "accept-nvidia-visible-devices-as-volume-mounts": str(config.accept_volume_mounts).lower(),
        "toolkit mode": config.mode,
        "default runtime handler": node.runtime.default_handler + (" (nvidia)" if handler and handler.nvidia else ""),
        "device list strategy": ",".join(plugin.list_strategies) if plugin is not None else "(no device plugin)",
        "runtime classes": ", ".join(f"{k}->{v}" for k, v in sorted(node.runtime_classes.items())) or "(none)",
    }
