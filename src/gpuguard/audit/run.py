"""The audit pipeline: inputs -> documents -> pods -> decisions -> findings -> Report.

One pass over the inputs, streamed: each document is parsed, turned into
pods, decided and checked, and only findings (and exemptions) are kept, so
memory does not grow with the number of documents.  Before it, a pre-scan
(:mod:`gpuguard.audit.profile`) finds node settings anywhere in the inputs.

ConfigMaps and Secrets seen so far resolve env references at once; a pod
that refers to one not seen yet is deferred to the end of the stream (only
those pods are held, at most ``MAX_DEFERRED``: beyond that the oldest is
judged with what is known), when every env source in the inputs is known;
one still missing then leaves the variable unknown, never empty.

Files are read in windows cut at ``---`` lines (``sources.inputs``);
documents of kinds that are not judged are counted without being built
(``keep_kind``); decisions are memoised by container shape
(:mod:`gpuguard.audit.decisions`).
"""

from __future__ import annotations

import dataclasses
import io
from collections import Counter, deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, BinaryIO, Literal

from gpuguard.audit.decisions import Decisions
from gpuguard.audit.dockerfiles import NO_FROM, external_bases, judge
from gpuguard.audit.images import ImageOptions, ImageScan, ResolvedImages, resolve
from gpuguard.audit.profile import Choice, NodeCheck, choose, prescan
from gpuguard.audit.suppress import Suppressor, read_baseline, read_ignore_file
from gpuguard.model.errors import InputError
from gpuguard.model.finding import Exempt, Finding, Location, ReadError, Resource, RuleInfo
from gpuguard.model.node import NodeProfile
from gpuguard.model.pod import Pod
from gpuguard.model.report import Report
from gpuguard.rules import RULES, check_advisories, check_node, check_pod, check_toolkit_config
from gpuguard.rules.images import AssumedImageEnv as ImageEnv
from gpuguard.rules.node import TOOLKIT_FILE_RULES
from gpuguard.rules.settings import AuditSettings
from gpuguard.rules.workload import NO_IMAGE_FACTS, ImageFacts
from gpuguard.sources.classify import Category, classify, env_source, is_dockerfile, is_toml, wanted_kind
from gpuguard.sources.documents import load_documents
from gpuguard.sources.inputs import STDIN, STDIN_NAME, Input, list_inputs, read_input, read_windows, spool_stdin
from gpuguard.sources.kubernetes import objects as list_items
from gpuguard.sources.kubernetes import pods_from_object

_REF_KIND = {"configMapKeyRef": "ConfigMap", "secretKeyRef": "Secret", "configMapRef": "ConfigMap",
             "secretRef": "Secret"}


MAX_DEFERRED = 1000


@dataclass(frozen=True, slots=True)
class AuditOptions:
    """What ``gpuguard audit`` was asked, besides the rule settings."""

    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    operator_version: str | None = None
    toolkit_version: str | None = None
    profile: str | None = None
    ignore_file: str | None = None
    baseline: str | None = None
    stdin: bytes | None = None  # standard input, when ``-`` is among the inputs (read by the caller)
    progress: Callable[[str], None] | None = None
    images: ImageOptions = field(default_factory=ImageOptions)  # --resolve-images and its companions


@dataclass(slots=True)
class _Run:
    node: NodeProfile
    settings: AuditSettings
    suppressor: Suppressor
    decisions: Decisions
    env_objects: dict[tuple[str, str, str], dict[str, str]] = field(default_factory=dict)
    findings: list[Finding] = field(default_factory=list)
    exempt: list[Exempt] = field(default_factory=list)
    errors: list[ReadError] = field(default_factory=list)
    deferred: deque[tuple[Pod, Any]] = field(default_factory=deque)
    early: int = 0  # deferred pods judged before the end because too many were waiting
    progress: Callable[[str], None] | None = None
    skipped: Counter[str] = field(default_factory=Counter)
    objects: int = 0
    warnings: int = 0
    image_facts: ImageFacts = NO_IMAGE_FACTS

    def check(self, pod: Pod, annotation: Any) -> None:
        decisions = self.decisions.decide(pod, self.env_objects)
        found, exempt = check_pod(pod, decisions, self.node, self.settings, self.image_facts)
        self.exempt.extend(exempt)
        for finding in found:
            if not self.suppressor.check(finding, annotation):
                self.findings.append(finding)


def _unknown_refs(pod: Pod, known: Mapping[tuple[str, str, str], object]) -> bool:
    """Whether env refers to a ConfigMap or Secret not seen (yet)."""
    for c in pod.containers:
        for e in c.env:
            ref = e.value_from
            if ref is None or ref.kind not in _REF_KIND:
                continue
            if (pod.namespace, _REF_KIND[ref.kind], ref.name) not in known:
                return True
        for src in c.env_from:
            if (pod.namespace, _REF_KIND.get(src.kind, ""), src.name) not in known:
                return True
    return False


def _workload(run: _Run, item: Mapping[str, Any], where: str, item_path: str, location: Location) -> None:
    """Every pod template of one workload object: suppressions, deferral, decisions and rules."""
    for template in pods_from_object(item, where, path=item_path):
        pod = dataclasses.replace(template, location=location)
        resource = Resource(pod.workload_api_version or "v1", pod.workload_kind,
                            pod.workload_namespace or pod.namespace, pod.workload_name)
        annotation, problem = run.suppressor.object_rules(
            resource, (pod.workload_annotations, pod.annotations), location
        )
        if problem is not None and problem not in run.errors:
            run.errors.append(problem)
        if _unknown_refs(pod, run.env_objects):
            run.deferred.append((pod, annotation))
            if len(run.deferred) > MAX_DEFERRED:  # bounded memory: judge the oldest with what is known
                run.check(*run.deferred.popleft())
                run.early += 1
        else:
            run.check(pod, annotation)


def _document(run: _Run, obj: object, where: str, location: Location) -> None:
    for item, item_path in list_items(obj, where):
        category, kind = classify(item)
        if category is Category.WORKLOAD:
            run.objects += 1
            _workload(run, item, where, item_path, location)
        elif category in (Category.CONFIG_MAP, Category.SECRET):
            run.objects += 1
            source = env_source(item)
            if source is not None:
                run.env_objects[source[0]] = source[1]
        elif category is Category.EMPTY:
            continue
        else:
            run.objects += 1
            if category is Category.OTHER:
                run.skipped[kind] += 1


def _stream(run: _Run, path: str, stdin: BinaryIO | None) -> None:
    """Every document of one file, window by window; a whole-input error (binary) ends the file."""
    name = STDIN_NAME if path == STDIN else path
    count = 0
    for window in read_windows(path, stdin=stdin):
        if isinstance(window, ReadError):
            run.errors.append(window)
            return
        if run.progress is not None and window.line:
            run.progress(f"{name}: line {window.line}, {run.objects} objects, {len(run.findings)} findings")
        fmt: Literal["auto", "yaml"] = "auto" if window.json else "yaml"
        docs = load_documents(
            window.data, name, format=fmt, start_line=window.line, start_index=count, keep_kind=wanted_kind
        )
        for doc in docs:
            count += 1
            if doc.error is not None:
                if doc.where == name:  # the input as a whole: binary, not UTF-8, too big
                    part = f" (in the part from line {window.line + 1})" if window.line else ""
                    run.errors.append(ReadError(doc.error.message + part, Location(name, window.line + 1 or None)))
                    return
                run.errors.append(ReadError(doc.error.message, Location(name, doc.line)))
                continue
            run.warnings += len(doc.warnings)
            location = Location(name, doc.line)
            try:
                _document(run, doc.obj, doc.where, location)
            except InputError as exc:
                run.errors.append(ReadError(str(exc), location))


def _node_findings(run: _Run, choice: Choice) -> None:
    for check in choice.checks:
        found = _node_check(check)
        seen = {(f.rule_id, f.fingerprint, f.message) for f in run.findings}
        for finding in found:
            key = (finding.rule_id, finding.fingerprint, finding.message)
            if key in seen:
                continue
            seen.add(key)
            if not run.suppressor.check(finding, None):
                run.findings.append(finding)


def _node_check(check: NodeCheck) -> Sequence[Finding]:
    found: Sequence[Finding]
    if check.check == "node":
        found = check_node(check.node, resource=check.resource, location=check.location)
    elif check.check == "toolkit_node":
        # A config.toml says how the toolkit behaves, nothing about the device plugin or the runtime.
        found = check_node(check.node, resource=None, location=check.location, only=TOOLKIT_FILE_RULES)
    elif check.check == "toolkit_config":
        found = check_toolkit_config(check.config, check.location)
    else:
        found = check_advisories(check.node, check.resource, check.location)
    return found


def rule_infos() -> tuple[RuleInfo, ...]:
    rules: Any = RULES
    values = rules.values() if isinstance(rules, Mapping) else rules
    return tuple(r.info if hasattr(r, "info") else r for r in values)


def audit(inputs: Sequence[str], settings: AuditSettings, options: AuditOptions | None = None) -> Report:
    """Audit ``inputs`` (files, directories, ``-``); bad documents become errors, the rest is reported.

    Raises ``InputError`` only for bad options (a profile, ignore or
    baseline file that cannot be used): a usage error.
    """
    options = options or AuditOptions()
    files, errors = list_inputs(inputs, include=options.include, exclude=options.exclude)
    stdin: BinaryIO | None = None
    if options.stdin is not None:
        stdin = io.BytesIO(options.stdin)
    elif STDIN in files:
        stdin = spool_stdin()
    try:
        return _audit(files, errors, stdin, settings, options)
    finally:
        if stdin is not None:
            stdin.close()


def _audit(
    files: list[str], errors: list[ReadError], stdin: BinaryIO | None, settings: AuditSettings, options: AuditOptions
) -> Report:
    progress = options.progress or (lambda _: None)
    suppressor = _suppressor(options)
    scan = ImageScan() if options.images.resolve else None
    found = prescan(files, stdin, visit=scan.window if scan is not None else None)
    choice = choose(found, operator_version=options.operator_version, toolkit_version=options.toolkit_version,
                    profile_file=options.profile, read=lambda p: _bytes(read_input(p), "--profile"))
    images = _images(files, scan, settings, options, progress)
    decisions = Decisions(choice.node, images)
    run = _Run(choice.node, settings, suppressor, decisions, errors=[*errors, *found.errors, *choice.errors],
               progress=options.progress)
    if isinstance(images, ResolvedImages):
        run.image_facts = ImageFacts(images.problems)  # the same dict: images the stream meets are added
    for n, path in enumerate(files, start=1):
        if is_toml(path):
            pass  # read by the pre-scan: node settings
        elif is_dockerfile(path) and path != STDIN:
            _dockerfile(run, path, options.images.platform)
        else:
            _stream(run, path, stdin)
        progress(f"{n}/{len(files)} files, {run.objects} objects, {len(run.findings)} findings")
    for pod, annotation in run.deferred:  # every env source among the inputs is known now
        run.check(pod, annotation)
    run.deferred.clear()
    _node_findings(run, choice)
    notes = list(choice.summary.notes)
    if run.early:
        notes.append(f"{run.early} pods were judged before the ConfigMap/Secret their env uses was read (more than "
                     f"{MAX_DEFERRED} were waiting); put env sources before workloads to resolve them")
    if assumed := run.decisions.images.assumed():
        notes.append(f"{assumed} images assumed not to set NVIDIA_VISIBLE_DEVICES (not inspected)")
    if isinstance(images, ResolvedImages):
        notes.extend(images.notes())
    if run.warnings:
        notes.append(f"{run.warnings} duplicate keys in the inputs (the last value is used, as Kubernetes does)")
    notes.extend(suppressor.expired_notes())
    return Report(
        profile=dataclasses.replace(choice.summary, notes=tuple(notes)),
        findings=tuple(run.findings),
        exempt=tuple(run.exempt),
        errors=tuple(run.errors),
        suppressions=suppressor.report(),
        suppressed=suppressor.suppressed,
        rules=rule_infos(),
        objects=run.objects,
        skipped_kinds=dict(run.skipped),
        files=len(files),
    )


def _images(
    files: Sequence[str], scan: ImageScan | None, settings: AuditSettings, options: AuditOptions,
    progress: Callable[[str], None],
) -> ImageEnv:
    """Image env for the engine: resolved up front with ``--resolve-images``, else the GPU-family assumption."""
    if scan is None:
        return ImageEnv(settings)
    for path in files:
        if is_dockerfile(path) and path != STDIN:
            scan.add(external_bases(path, options.images.platform))
    progress(f"inspecting {len(scan.references)} images")
    resolutions, requests = resolve(scan, options.images)
    return ResolvedImages(settings, resolutions, requests)


def _dockerfile(run: _Run, path: str, platform: str) -> None:
    """GG109 for one Dockerfile; one without FROM (a .dockerignore, notes) is counted, not judged."""
    found, error, judged = judge(path, run.decisions.images, run.settings, platform)
    if error is not None:
        run.errors.append(error)
    elif not judged:
        run.skipped[NO_FROM] += 1
    for finding in found:
        if not run.suppressor.check(finding, None):
            run.findings.append(finding)


def _bytes(item: Input, flag: str) -> bytes:
    """An option file's bytes; one that cannot be read is a usage error naming the option."""
    if item.error is not None:
        raise InputError(f"{flag} {item.path}", item.error.message)
    return item.data


def _suppressor(options: AuditOptions) -> Suppressor:
    suppressor = Suppressor()
    if options.ignore_file is not None:
        data = _bytes(read_input(options.ignore_file), "--ignore-file")
        suppressor.entries = read_ignore_file(options.ignore_file, data)
    if options.baseline is not None:
        suppressor.baseline = read_baseline(options.baseline, _bytes(read_input(options.baseline), "--baseline"))
        suppressor.baseline_origin = f"baseline {options.baseline}"
    return suppressor
