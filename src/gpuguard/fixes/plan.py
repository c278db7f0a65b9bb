"""From findings to a fix plan: file edits, commands to run, and what only a person can fix.

``plan`` groups remedies per file and per object so each file is edited once
(every container fix of a manifest in one splice pass) and each node setting
source (a ClusterPolicy, a Helm values file, a config.toml) gets one recipe,
chosen for the node by :func:`gpuguard.fixes.operator.recipe`. It reads only
the findings and the text of the files handed to it: no sources, no engine.
"""

from __future__ import annotations

import bisect
import difflib
import os
import tomllib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from gpuguard.fixes import dockerfile, toolkit_config, workload
from gpuguard.fixes import operator as op
from gpuguard.model.finding import Finding, Resource
from gpuguard.model.node import NodeProfile
from gpuguard.model.report import ProfileSummary
from gpuguard.model.version import Version

WORKLOAD_RULES = frozenset({"GG101", "GG108"})  # a container without a GPU request that gets (or may get) GPUs
NODE_RULES = frozenset({"GG201", "GG202", "GG203", "GG205", "GG206"})  # fixed by the node recipe
MISPLACED_KEY_RULE = "GG204"
DOCKERFILE_RULE = "GG109"  # a Dockerfile's final image exposes GPUs: ENV NVIDIA_VISIBLE_DEVICES=void
TOML_RULES = frozenset({"GG201", "GG203", MISPLACED_KEY_RULE})  # what a config.toml edit can fix
HELM_UPGRADE = "helm upgrade gpu-operator nvidia/gpu-operator -n gpu-operator --reuse-values"


@dataclass(frozen=True, slots=True)
class FileEdit:
    """One file, before and after; applied by ``gpuguard fix --write``."""

    path: str
    before: str
    after: str
    what: tuple[str, ...] = ()
    fixes: tuple[str, ...] = ()  # fingerprints of the findings this edit removes

    def diff(self) -> str:
        return "".join(
            difflib.unified_diff(
                self.before.splitlines(keepends=True),
                self.after.splitlines(keepends=True),
                fromfile=f"a/{self.path.lstrip('/')}",
                tofile=f"b/{self.path.lstrip('/')}",
            )
        )


@dataclass(frozen=True, slots=True)
class CommandBlock:
    """Commands (and files to write) that fix node settings; never run by gpuguard itself."""

    title: str
    why: str
    commands: tuple[str, ...] = ()
    files: tuple[tuple[str, str], ...] = ()  # (suggested name, content), e.g. a values overlay
    notes: tuple[str, ...] = ()
    fixes: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Manual:
    """A finding no automatic remedy fits; its remediation text says what to do."""

    finding: Finding
    why: str


@dataclass(frozen=True, slots=True)
class FixPlan:
    edits: tuple[FileEdit, ...] = ()
    commands: tuple[CommandBlock, ...] = ()
    manual: tuple[Manual, ...] = ()
    skipped: tuple[str, ...] = ()  # targets an edit could not reach safely, with the reason
    kustomize: tuple[tuple[str, str], ...] = ()  # (object label, strategic-merge patch)

    @property
    def empty(self) -> bool:
        return not (self.edits or self.commands or self.manual)

    def render_text(self, *, kustomize: bool = False) -> str:
        """Diffs, then command blocks, then what is left to a person."""
        out: list[str] = []
        for edit in self.edits:
            out.append(f"# {edit.path}: " + "; ".join(edit.what))
            out.append(edit.diff().rstrip("\n"))
            out.append("")
        if kustomize:
            for label, patch in self.kustomize:
                out += [f"# kustomize patch for {label}", patch.rstrip("\n"), ""]
        for block in self.commands:
            out.append(f"# {block.title}")
            out += [f"#   {line}" for line in _wrap(block.why)]
            for name, content in block.files:
                out += [f"# --- {name}", content.rstrip("\n"), "# ---"]
            out += list(block.commands)
            out += [f"# note: {n}" for n in block.notes]
            out.append("")
        for s in self.skipped:
            out.append(f"# skipped: {s}")
        if self.skipped:
            out.append("")
        for m in self.manual:
            f = m.finding
            where = _label(f)
            out.append(f"# manual: {f.rule_id} {where}: {f.message}")
            out += [f"#   {line}" for line in _wrap(f.remediation)]
        return "\n".join(out).rstrip("\n") + "\n" if out else "nothing to fix\n"

    def as_dict(self) -> dict[str, Any]:
        return {
            "edits": [
                {"path": e.path, "what": list(e.what), "diff": e.diff(), "fixes": list(e.fixes)} for e in self.edits
            ],
            "commands": [
                {
                    "title": c.title,
                    "why": c.why,
                    "commands": list(c.commands),
                    "files": [{"name": n, "content": t} for n, t in c.files],
                    "notes": list(c.notes),
                    "fixes": list(c.fixes),
                }
                for c in self.commands
            ],
            "kustomize": [{"object": label, "patch": patch} for label, patch in self.kustomize],
            "manual": [
                {
                    "rule_id": m.finding.rule_id,
                    "object": _label(m.finding),
                    "remediation": m.finding.remediation,
                    "why": m.why,
                }
                for m in self.manual
            ],
            "skipped": list(self.skipped),
        }


def _wrap(text: str, width: int = 110) -> list[str]:
    words, lines, line = text.split(), [], ""
    for word in words:
        if line and len(line) + 1 + len(word) > width:
            lines.append(line)
            line = word
        else:
            line = f"{line} {word}" if line else word
    return [*lines, line] if line else lines


def _label(f: Finding) -> str:
    r = f.resource
    obj = f"{r.kind} {r.namespace + '/' if r.namespace else ''}{r.name}" if r else ""
    loc = f.location.path + (f":{f.location.line}" if f.location and f.location.line else "") if f.location else ""
    parts = [p for p in (obj, f"container {f.container}" if f.container else "", f"({loc})" if loc else "") if p]
    return " ".join(parts)


# --- planning ------------------------------------------------------------------------------------


Profile = NodeProfile | ProfileSummary | op.ProfileFacts | None


def facts_of(profile: Profile) -> op.ProfileFacts:
    if isinstance(profile, op.ProfileFacts):
        return profile
    if isinstance(profile, NodeProfile):
        return op.facts_from_profile(profile)
    if isinstance(profile, ProfileSummary):
        return op.facts_from_summary(profile)
    return op.ProfileFacts(None)


def plan(
    findings: Iterable[Finding],
    profile: Profile,
    files: Mapping[str, str],
    *,
    dockerfiles: Iterable[str] = (),
    is_gpu_image: Callable[[str], bool] | None = None,
) -> FixPlan:
    """The remedies for ``findings`` on a node like ``profile``, given the text of the files they point at.

    ``dockerfiles`` are Dockerfile paths (their text in ``files``) to give
    ``ENV NVIDIA_VISIBLE_DEVICES=void``, when ``is_gpu_image`` says their final
    stage builds on a GPU-family image (all of them without it).
    """
    facts = facts_of(profile)
    findings = list(findings)
    edits: list[FileEdit] = []
    commands: list[CommandBlock] = []
    manual: list[Manual] = []
    skipped: list[str] = []
    patches: list[tuple[str, str]] = []

    by_file: dict[str, list[Finding]] = {}
    node_sources: dict[tuple[str, str | None, int | None], list[Finding]] = {}
    toml_files: dict[str, list[Finding]] = {}
    docker_findings: dict[str, list[Finding]] = {}
    for f in findings:
        path = f.location.path if f.location else None
        if f.rule_id in WORKLOAD_RULES and f.resource is not None and path is not None and path in files:
            by_file.setdefault(path, []).append(f)
        elif f.rule_id == DOCKERFILE_RULE and path is not None:
            docker_findings.setdefault(path, []).append(f)
        elif f.rule_id in TOML_RULES and path is not None and path.endswith(".toml"):
            toml_files.setdefault(path, []).append(f)
        elif path is not None and path.endswith(".toml"):
            manual.append(Manual(f, "a device plugin or container runtime setting, not a config.toml key"))
        elif f.rule_id in WORKLOAD_RULES:
            manual.append(Manual(f, "the file is not available to edit (unreadable, or not among the inputs)"))
        elif f.rule_id in NODE_RULES:
            name = f.resource.name if f.resource is not None and f.resource.kind == "ClusterPolicy" else None
            line = f.location.line if f.location else None
            node_sources.setdefault((path or "", name, line if name is None else None), []).append(f)
        else:
            manual.append(Manual(f, "no automatic remedy for this rule"))

    for path, found in by_file.items():
        edit, skip, kpatches = _workload_edit(path, files[path], found)
        skipped += skip
        patches += kpatches
        if edit is not None:
            edits.append(edit)
        elif not skip:
            manual += [Manual(f, "the container was not found in the file") for f in found]

    for path, found in toml_files.items():
        if path not in files:
            manual += [Manual(f, "the file was not given") for f in found]
            continue
        edit, block = _toml_fix(path, files[path], found, facts)
        if edit is not None:
            edits.append(edit)
        if block is not None:
            commands.append(block)
        if edit is None and block is None:
            why = "config.toml already sets these keys at the top level: the device plugin or runtime must change"
            manual += [Manual(f, why) for f in found]

    for (path, name, line), found in node_sources.items():
        src = _read_source(path, name, line, files.get(path))
        blocks, nothing = _operator_blocks(src, path, found, facts)
        for block in blocks:
            if block not in commands:
                commands.append(block)
        if nothing is not None:
            manual += [Manual(f, nothing) for f in found]

    for path in dict.fromkeys([*dockerfiles, *docker_findings]):  # GG109 findings name their Dockerfile
        text = files.get(path)
        found = docker_findings.get(path, [])
        if text is None:
            manual += [Manual(f, "the file is not available to edit") for f in found]
            continue
        base = dockerfile.final_base_image(text)
        if not found and (base is None or (is_gpu_image is not None and not is_gpu_image(base))):
            continue
        fix = dockerfile.set_void(text)
        if fix.changed:
            fixes = tuple(f.fingerprint for f in found)
            edits.append(FileEdit(path, text, fix.text, (f"{fix.why} (base image {base})",), fixes))
        else:
            manual += [Manual(f, fix.why) for f in found]

    return FixPlan(tuple(edits), tuple(commands), tuple(manual), tuple(skipped), tuple(patches))


# --- workloads ---------------------------------------------------------------------------------


def _workload_edit(
    path: str, text: str, found: Sequence[Finding], *, whole: bool = False
) -> tuple[FileEdit | None, list[str], list[tuple[str, str]]]:
    """Edit only the documents that hold the findings' objects (found by the object's line), once each."""
    spans = workload.document_spans(text)
    starts, line_no, prev = [], 1, 0  # 1-based first line of each span
    for start, _ in spans:
        line_no += text.count("\n", prev, start)
        starts.append(line_no)
        prev = start
    by_span: dict[int, list[Finding]] = {}
    for f in found:
        line = f.location.line if f.location else None
        index = -1 if not line or whole else max(bisect.bisect_right(starts, line) - 1, 0)
        by_span.setdefault(index, []).append(f)
    if -1 in by_span:  # no line: search the whole file
        by_span = {-1: list(found)}
    pieces: dict[int, str] = {}
    skipped: list[str] = []
    patches: list[tuple[str, str]] = []
    changed: list[str] = []
    fixes: list[str] = []
    for index, group in sorted(by_span.items()):
        start, end = (0, len(text)) if index == -1 else spans[index]
        piece = text[start:end]
        targets: list[workload.Target] = []
        wanted: list[tuple[str, list[workload.Target]]] = []  # (fingerprint, its targets)
        per_object: dict[Resource, list[tuple[str, str]]] = {}
        try:
            for f in group:
                assert f.resource is not None
                hits = workload.locate(piece, f.resource, f.container, pod=f.decision.pod if f.decision else None)
                if not hits and index != -1:
                    return _workload_edit(path, text, found, whole=True)  # the line did not lead to it
                if not hits:
                    skipped.append(f"{path}: {_label(f)}: container not found in the file")
                    continue
                targets += hits
                wanted.append((f.fingerprint, hits))
                for _, cpath in hits:
                    relative = cpath.split(".", 1)[1] if cpath.startswith("items[") else cpath
                    per_object.setdefault(f.resource, []).append((relative, f.container or ""))
            result = workload.edit_manifest(piece, targets)
        except workload.ManifestError as exc:
            skipped.append(f"{path}: {exc}")
            continue
        skipped += [f"{path}: {s}" for s in result.skipped]
        changed += result.changed
        fixes += [fp for fp, hits in wanted if any(t in result.edited for t in hits)]
        for resource, refs in per_object.items():
            try:
                patches.append((_object_label(resource), workload.kustomize_patch(resource, sorted(set(refs)))))
            except ValueError:
                continue  # list items addressed by index (custom resources): the file edit is the remedy
        if result.text != piece:
            pieces[index] = result.text
    if not pieces:
        return None, skipped, patches
    spliced = (pieces.get(i, text[s:e]) for i, (s, e) in enumerate(spans))
    after = pieces[-1] if -1 in pieces else "".join(spliced)
    what = tuple(dict.fromkeys(c.split(": ", 1)[0] + f": {workload.NVD}={workload.VOID}" for c in changed))
    return FileEdit(path, text, after, what, tuple(dict.fromkeys(fixes))), skipped, patches


def _object_label(r: Resource) -> str:
    return f"{r.kind} {r.namespace + '/' if r.namespace else ''}{r.name}"


# --- config.toml ---------------------------------------------------------------------------------


def _toml_fix(
    path: str, text: str, found: Sequence[Finding], facts: op.ProfileFacts
) -> tuple[FileEdit | None, CommandBlock | None]:
    try:
        keys: dict[str, toolkit_config.Value] = dict(toolkit_config.misplaced(text))
    except toolkit_config.TomlError as exc:
        return None, CommandBlock(f"{path}: cannot be corrected", str(exc))
    why = ["keys written under a [table] are ignored by the toolkit: moved to the top level"] if keys else []
    if any(f.rule_id in NODE_RULES for f in found):  # GG201/GG203: the toolkit half of the host recipe
        host = op.recipe(op.ProfileFacts(None, toolkit_managed=False))
        env = host.toolkit_env
        if _toml_mode(text) == "cdi":
            env = op.HARDEN_CDI_TOOLKIT  # volume mounts resolve against the management spec in cdi mode
        for name, value in env:
            keys[toolkit_config.ENV_TO_KEY[name]] = value == "true"
        why.append(host.why if env is host.toolkit_env else "cdi mode: only stop accepting the env var")
    if not keys:
        return None, None
    default = toolkit_config.DEFAULT_PATH if path.endswith(toolkit_config.DEFAULT_PATH) else path
    fix = toolkit_config.set_top_level(text, keys, default)
    if not fix.changed:
        return None, None
    fingerprints = tuple(f.fingerprint for f in found)
    notes = []
    if "/usr/local/nvidia/toolkit/" in path:
        notes.append(
            "the GPU Operator's toolkit pod rewrites this file on every start: set the toolkit.env recipe instead"
        )
    block = CommandBlock(
        f"{path}: the same change with nvidia-ctk, on every GPU node",
        "; ".join(why),
        (fix.command,),
        notes=(*notes, "nvidia-ctk rewrites the whole file (comments are dropped); then restart running GPU pods"),
        fixes=fingerprints,
    )
    return FileEdit(path, text, fix.text, tuple(why), fingerprints), block


def _toml_mode(text: str) -> str | None:
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError:
        return None
    runtime = doc.get("nvidia-container-runtime")
    mode = runtime.get("mode") if isinstance(runtime, dict) else None
    return mode if isinstance(mode, str) else None


# --- GPU Operator --------------------------------------------------------------------------------


@dataclass(slots=True)
class _Source:
    kind: str  # "clusterpolicy" | "values" | "flag"
    name: str = "cluster-policy"
    toolkit_env: list[dict[str, object]] | None = None
    device_plugin_env: list[dict[str, object]] | None = None
    has_cdi: bool = True
    cdi_enabled: bool | None = None
    cdi_default: bool | None = None
    nri: bool | None = None
    toolkit_enabled: bool | None = None
    version: Version | None = None  # the release this source names (values operator.version, CR labels)
    helm_owned: bool = False  # a ClusterPolicy rendered by Helm: a helm upgrade re-renders it
    notes: list[str] = field(default_factory=list)


def _env_list(value: object) -> list[dict[str, object]] | None:
    if not isinstance(value, list):
        return None
    return [dict(e) for e in value if isinstance(e, Mapping)]


def _section(spec: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = spec.get(key)
    return value if isinstance(value, Mapping) else {}


def _bool(value: object) -> bool | None:
    return value if isinstance(value, bool) else None


def _version(text: object) -> Version | None:
    if not isinstance(text, str):
        return None
    try:
        return Version.parse(text.removeprefix("gpu-operator-"))
    except ValueError:
        return None


def _read_source(path: str, name: str | None, line: int | None, text: str | None) -> _Source:
    if text is None:
        return _Source(
            "flag",
            notes=[
                "the current env lists are not known: read them first "
                "(kubectl get clusterpolicy -o yaml, or helm get values) and merge"
            ],
        )
    try:
        docs = workload.load_stream(text)
    except workload.ManifestError:
        return _Source("flag", notes=[f"{path} could not be parsed; the current env lists are not known"])
    chosen: Any = None
    for doc in docs:
        if not isinstance(doc, Mapping):
            continue
        if name is not None:
            for obj in workload.objects_of(doc):
                meta = obj.get("metadata")
                if obj.get("kind") == "ClusterPolicy" and isinstance(meta, Mapping) and meta.get("name") == name:
                    chosen = obj
        elif (
            any(k in doc for k in ("toolkit", "devicePlugin", "cdi"))
            and "kind" not in doc
            and (chosen is None or (line is not None and _start_line(doc) < line))
        ):
            chosen = doc
    if chosen is None:
        return _Source("flag", notes=[f"no ClusterPolicy or Helm values found in {path}"])
    spec: Mapping[str, Any] = chosen
    if name is not None:
        spec = _section(chosen, "spec")
        src = _Source("clusterpolicy", name)
    else:
        src = _Source("values")
    toolkit = _section(spec, "toolkit")
    plugin = _section(spec, "devicePlugin")
    cdi = spec.get("cdi")
    src.toolkit_env = _env_list(toolkit.get("env"))
    src.device_plugin_env = _env_list(plugin.get("env"))
    src.has_cdi = isinstance(cdi, Mapping)
    if isinstance(cdi, Mapping):
        src.cdi_enabled = _bool(cdi.get("enabled"))
        src.cdi_default = _bool(cdi.get("default"))
        src.nri = _bool(cdi.get("nriPluginEnabled"))
    src.toolkit_enabled = _bool(toolkit.get("enabled"))
    if src.kind == "values":
        src.version = _version(_section(spec, "operator").get("version"))
    else:
        labels = _section(_section(chosen, "metadata"), "labels")
        src.version = _version(labels.get("app.kubernetes.io/version")) or _version(labels.get("helm.sh/chart"))
        src.helm_owned = labels.get("app.kubernetes.io/managed-by") == "Helm"
    return src


def _start_line(doc: object) -> int:
    lc = getattr(doc, "lc", None)
    return int(lc.line) + 1 if lc is not None and lc.line is not None else 0


def _operator_blocks(
    src: _Source, path: str, found: Sequence[Finding], facts: op.ProfileFacts
) -> tuple[list[CommandBlock], str | None]:
    """The blocks for one node setting source, or why there is nothing to run (then the findings are manual)."""
    facts = op.ProfileFacts(
        src.version or facts.operator_version,
        cdi_enabled=src.cdi_enabled if src.cdi_enabled is not None else facts.cdi_enabled,
        cdi_default=src.cdi_default if src.cdi_default is not None else facts.cdi_default,
        nri=(src.nri and (src.cdi_enabled is not False)) if src.nri is not None else facts.nri,
        toolkit_managed=src.toolkit_enabled if src.toolkit_enabled is not None else facts.toolkit_managed,
    )
    rec = op.recipe(facts)
    fixes = tuple(f.fingerprint for f in found)
    rules = ", ".join(sorted({f.rule_id for f in found}))
    where = f"{path}" if src.kind != "clusterpolicy" else f"ClusterPolicy {src.name} ({path})"
    release = f"operator {facts.operator_version}, " if facts.operator_version else ""
    title = f"{rules}: {where}: {release}recipe {rec.mode}"
    notes = list(src.notes) + list(rec.policies) + list(rec.alternatives)
    if rec.host_config:
        keys = {toolkit_config.ENV_TO_KEY[n]: v == "true" for n, v in rec.toolkit_env}
        command = toolkit_config.nvidia_ctk_command(keys)
        return [CommandBlock(title, rec.why, (command,), notes=tuple(notes), fixes=fixes)], None
    if not rec.changes_env and rec.set_cdi_enabled is None:
        if not rec.policies:
            return [], rec.why
        return [CommandBlock(title, rec.why, (), notes=tuple(notes), fixes=fixes)], None
    if src.kind == "flag":
        return [_unknown_lists_block(title, rec, facts, notes, fixes), *_restart_blocks(rec)], None
    toolkit_env, plugin_env = src.toolkit_env, src.device_plugin_env
    if src.kind == "values" and plugin_env is None:
        plugin_env = op.chart_default_env("devicePlugin", facts.operator_version) or None
        if plugin_env:
            notes.append("devicePlugin.env is not in the values file: the chart's default entries are restated")
    ops = op.clusterpolicy_ops(rec, toolkit_env, plugin_env, has_cdi=src.has_cdi)
    if not ops:
        return [], f"this source already carries recipe {rec.mode}'s settings: {rec.why}"
    blocks: list[CommandBlock] = []
    if src.kind == "values" or src.helm_owned:
        overlay = op.values_overlay(rec, toolkit_env, plugin_env)
        helm = op.helm_command(rec, toolkit_env, plugin_env)
        stem = os.path.splitext(os.path.basename(path))[0] or "values"
        name = f"gpuguard-overlay-{stem}.yaml"
        blocks.append(
            CommandBlock(
                title + " (Helm)",
                rec.why,
                (f"{HELM_UPGRADE} -f {name}", "# or, without a file:", helm),
                files=((name, overlay),),
                notes=tuple(notes),
                fixes=fixes,
            )
        )
    if src.kind == "clusterpolicy":
        patch = op.clusterpolicy_patch(rec, toolkit_env, plugin_env, has_cdi=src.has_cdi)
        cp_notes = [*notes]
        if src.helm_owned:
            cp_notes.append(
                "Helm owns this ClusterPolicy: prefer the Helm route above, a later helm upgrade re-renders it"
            )
        blocks.append(
            CommandBlock(
                title + " (kubectl)",
                rec.why,
                (op.kubectl_patch_command(patch, src.name),),
                notes=tuple(cp_notes),
                fixes=fixes,
            )
        )
    return blocks + _restart_blocks(rec), None


def _restart_blocks(rec: op.Recipe) -> list[CommandBlock]:
    if not rec.restart_running_pods or not (rec.changes_env or rec.set_cdi_enabled is not None):
        return []
    return [
        CommandBlock(
            "running pods keep the GPUs they already got: list those without a GPU request and restart them",
            "the toolkit change applies to new containers only",
            (op.RUNNING_PODS_COMMAND,),
        )
    ]


def _unknown_lists_block(
    title: str, rec: op.Recipe, facts: op.ProfileFacts, notes: list[str], fixes: tuple[str, ...]
) -> CommandBlock:
    """The env lists were not among the inputs: read them, then let gpuguard merge (never replace blindly)."""
    version = f" --operator-version {facts.operator_version}" if facts.operator_version else ""
    patch = op.clusterpolicy_patch(rec, None, None, has_cdi=True, known=False)
    return CommandBlock(
        title,
        rec.why + ". The current toolkit.env/devicePlugin.env lists were not among the inputs: read them first, "
        "because Helm replaces lists and a JSON patch that creates them would wipe existing entries",
        (
            "helm get values gpu-operator -n gpu-operator --all -o yaml > gpu-operator-values.yaml",
            f"gpuguard fix{version} gpu-operator-values.yaml",
            "# or, for a ClusterPolicy not owned by Helm:",
            "kubectl get clusterpolicies.nvidia.com -o yaml > clusterpolicy.yaml",
            f"gpuguard fix{version} clusterpolicy.yaml",
            "# append-only patch (fails, changing nothing, where spec.toolkit.env is absent):",
            op.kubectl_patch_command(patch),
        ),
        notes=tuple(n for n in notes if "not known" not in n),
        fixes=fixes,
    )


def is_dockerfile(path: str) -> bool:
    """Dockerfile, Dockerfile.*, *.Dockerfile, Containerfile."""
    name = os.path.basename(path)
    return name.startswith("Dockerfile") or name.endswith(".Dockerfile") or name == "Containerfile"
