"""Set ``NVIDIA_VISIBLE_DEVICES=void`` on containers that request no GPU, in the manifest file itself.

``void`` (not ``none``) tells the toolkit to leave the container alone, and a
pod's own ``env`` beats both its image's ``ENV`` and any ``envFrom``, so this
one entry closes the env-var path whatever the node does. ``none`` still
injects driver libraries and exposed every GPU on toolkit 1.18.0-1.18.1.

The file is parsed with ruamel.yaml only to learn where things are (line and
column of every key and item); the edit itself is a text splice, so every
byte outside the edited ``env`` entries (comments, quoting, indentation,
anchors, the other documents of the stream) stays exactly as it was.
Containers the splice cannot reach safely (flow-style containers, an ``env``
shared through an anchor or a merge key, a container that requests GPUs)
are skipped with a reason rather than guessed at.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import YAMLError

from gpuguard.model.finding import Resource

NVD = "NVIDIA_VISIBLE_DEVICES"
VOID = "void"
CONTAINER_LISTS = ("containers", "initContainers", "ephemeralContainers", "sidecars")  # sidecars: Argo
ARGO_SINGLE = ("container", "script")  # an Argo template's one container, named "main" by default
_GPU_RESOURCE = re.compile(r"(^|\.)nvidia\.com/|^gpu\.|\.gpu$|/gpu$")


class ManifestError(ValueError):
    """The manifest text cannot be parsed, or a target names nothing in it."""


@dataclass(frozen=True, slots=True)
class ObjectId:
    """A Kubernetes object in a stream, by identity (namespace None matches any)."""

    kind: str
    name: str
    namespace: str | None = None

    @classmethod
    def of(cls, resource: Resource) -> ObjectId:
        return cls(resource.kind, resource.name, resource.namespace)


Target = tuple[int | ObjectId, str]  # (document index or object identity, container path in that object)


@dataclass(frozen=True, slots=True)
class WorkloadEdit:
    """The edited text, what changed and what was left alone (and why)."""

    text: str
    changed: tuple[str, ...] = ()
    skipped: tuple[str, ...] = ()
    edited: tuple[Target, ...] = ()  # the targets whose container the edit changes


@dataclass(frozen=True, slots=True)
class _Splice:
    start: int
    end: int
    text: str


# --- public API ---------------------------------------------------------------------------------


def set_void(text: str, targets: Iterable[Target]) -> str:
    """Return ``text`` with ``NVIDIA_VISIBLE_DEVICES=void`` set on each target container."""
    return edit_manifest(text, targets).text


def edit_manifest(text: str, targets: Iterable[Target]) -> WorkloadEdit:
    """Like :func:`set_void`, and also report what changed and which targets were skipped."""
    docs = _load(text)
    lines = _Lines(text)
    splices: list[_Splice] = []
    changed: list[str] = []
    skipped: list[str] = []
    edited: list[Target] = []
    seen: dict[int, bool] = {}
    counts: dict[int, dict[int, int]] = {}
    dashes: dict[int, int] = {}
    for where, path in targets:
        label = f"{_where_label(where)} {path}"
        try:
            root, base = _resolve_object(docs, where)
            container = _walk(root, _parse_path(path))
        except ManifestError as exc:
            skipped.append(f"{label}: {exc}")
            continue
        if id(container) in seen:
            if seen[id(container)]:
                edited.append((where, path))
            continue
        seen[id(container)] = False
        if not isinstance(container, CommentedMap):
            skipped.append(f"{label}: not a container mapping")
            continue
        if id(base) not in counts:
            counts[id(base)] = _reference_counts(base)
        reason = _unsafe(container, counts[id(base)])
        if reason:
            skipped.append(f"{label}: {reason}")
            continue
        if id(base) not in dashes:
            dashes[id(base)] = _dash_offset(base, lines)
        new = _container_splices(container, lines, dashes[id(base)])
        if new is None:
            skipped.append(
                f"{label}: env or container in a form the edit cannot reach; edit by hand or use the kustomize patch"
            )
        elif new:
            splices.extend(new)
            changed.append(f"{label}: {NVD}={VOID}")
            edited.append((where, path))
            seen[id(container)] = True
    return WorkloadEdit(_apply(text, splices), tuple(changed), tuple(skipped), tuple(edited))


def locate(
    text: str,
    resource: Resource | ObjectId,
    container: str | None,
    line: int | None = None,
    *,
    pod: str | None = None,
) -> list[Target]:
    """Find the container paths named ``container`` in the object ``resource`` of a stream.

    Findings carry the object, the container name and the object's line, not a
    path; this turns them into targets. With ``container`` None every container
    of the object is returned. Objects inside ``List`` documents are found too.
    ``pod`` is the engine's pod name (``train/Worker``, ``rc/workerGroupSpecs[gpu]``,
    ``wf/evaluate`` for an Argo template): it picks among same-named containers.
    """
    oid = resource if isinstance(resource, ObjectId) else ObjectId.of(resource)
    docs = _load(text)
    candidates = [(i, obj, p) for i, doc in enumerate(docs) for obj, p in _objects(doc, "") if _matches(obj, oid)]
    if len(candidates) > 1 and line is not None:
        near = [c for c in candidates if c[1].lc.line + 1 == line or (c[1].lc.line <= line - 1 and c[2] == "")]
        candidates = near[:1] or candidates
    out: list[Target] = []
    for index, obj, prefix in candidates:
        hits = [
            path
            for path, item in _containers(obj, "")
            if container is None or (isinstance(item, Mapping) and _container_name(path, item) == container)
        ]
        roles = pod.split("/")[1:] if pod and "/" in pod else []
        if roles and len(hits) > 1:
            hits = [p for p in hits if _has_roles(obj, p, roles)] or hits
        elif pod is not None and len(hits) > 1:  # a pod name without roles: the template reached by keys only
            hits = [p for p in hits if "[" not in p.rsplit(".", 1)[0]] or hits
        out += [(index, _join(prefix, p)) if prefix else (oid, p) for p in hits]
    return out


def _container_name(path: str, item: Mapping[str, Any]) -> object:
    """A container's name; Argo's single ``container``/``script`` is ``main`` when unnamed."""
    if path.endswith((".container", ".script")) or path in ("container", "script"):
        return item.get("name") or "main"
    return item.get("name")


_ROLE = re.compile(r"^(?P<key>[^\[]+)\[(?P<label>.*)\]$")


def _has_roles(obj: Any, path: str, roles: list[str]) -> bool:
    """Whether the path passes through every role of the pod name (a key, or a list item by name/index)."""
    steps = _parse_path(path)
    trail: list[tuple[str | int, Any]] = []
    node = obj
    for step in steps:
        node = node[step]
        trail.append((step, node))
    for role in roles:
        m = _ROLE.match(role)
        if m:
            key, label = m.group("key"), m.group("label")
            ok = any(
                s == key
                and i + 1 < len(trail)
                and isinstance(trail[i + 1][0], int)
                and _item_matches(trail[i + 1][1], trail[i + 1][0], label)
                for i, (s, _) in enumerate(trail)
            )
        else:
            ok = any(s == role or (isinstance(s, int) and _item_matches(n, s, role)) for s, n in trail)
        if not ok:
            return False
    return True


def _item_matches(item: Any, index: str | int, label: str) -> bool:
    if isinstance(item, Mapping) and label in (item.get("name"), item.get("groupName")):
        return True
    return str(index) == label


def requests_gpu(container: Mapping[str, Any]) -> bool:
    """True when the container asks for an NVIDIA device (any ``nvidia.com/*`` resource) or a DRA claim."""
    resources = container.get("resources")
    if not isinstance(resources, Mapping):
        return False
    if resources.get("claims"):
        return True
    for section in ("limits", "requests"):
        wanted = resources.get(section)
        if isinstance(wanted, Mapping) and any(isinstance(k, str) and _GPU_RESOURCE.search(k) for k in wanted):
            return True
    return False


def kustomize_patch(resource: Resource, containers: Sequence[str | tuple[str, str]]) -> str:
    """A strategic-merge patch (for ``patches:`` in kustomization.yaml) that sets void on the containers.

    ``containers`` are container paths like ``spec.template.spec.containers[0]``
    with the container name (``(path, name)``), or ``"<list path>/<name>"``.
    Strategic merge matches ``env`` entries by name, so other entries survive;
    ``valueFrom: null`` clears a ``valueFrom`` the entry may have had. Only
    built-in kinds merge lists by key; for custom resources kustomize falls back
    to a JSON merge patch that would replace the lists, so use the file edit.
    """
    by_list: dict[tuple[str, ...], list[str]] = {}
    for ref in containers:
        if isinstance(ref, tuple):
            path, name = ref
            steps = _parse_path(path)
            if not steps or not isinstance(steps[-1], int):
                raise ValueError(f"{path}: expected a container path ending in [index]")
            keys = steps[:-1]
        else:
            list_path, _, name = ref.rpartition("/")
            keys = _parse_path(list_path)
        if any(isinstance(k, int) for k in keys):
            raise ValueError(f"{ref}: a strategic-merge patch cannot address list items by index")
        by_list.setdefault(tuple(str(k) for k in keys), []).append(name)
    meta = [f"apiVersion: {resource.api_version}", f"kind: {resource.kind}", "metadata:", f"  name: {resource.name}"]
    if resource.namespace:
        meta.append(f"  namespace: {resource.namespace}")
    body: list[str] = []
    opened: list[str] = []
    for list_keys, names in sorted(by_list.items()):
        common = 0
        while common < min(len(opened), len(list_keys) - 1) and opened[common] == list_keys[common]:
            common += 1
        for depth in range(common, len(list_keys) - 1):
            body.append(f"{'  ' * depth}{list_keys[depth]}:")
        opened = list(list_keys[:-1])
        ind = "  " * (len(list_keys) - 1)
        body.append(f"{ind}{list_keys[-1]}:")
        for name in names:
            body += [
                f"{ind}- name: {name}",
                f"{ind}  env:",
                f"{ind}  - name: {NVD}",
                f"{ind}    value: {VOID}",
                f"{ind}    valueFrom: null  # clears a valueFrom, if any",
            ]
    return "\n".join([*meta, *body]) + "\n"


# --- loading and addressing ---------------------------------------------------------------------

_SEPARATOR = re.compile(r"^(---|\.\.\.)(\s|$)")


def document_spans(text: str) -> list[tuple[int, int]]:
    """Character spans of the documents of a stream, each starting at its ``---`` line.

    Lets a caller parse (slowly, round-trip) only the documents it edits and
    splice them back, so a 20,000-object stream is not parsed for one fix.
    """
    spans: list[tuple[int, int]] = []
    start = pos = 0
    for line in text.splitlines(keepends=True):
        if _SEPARATOR.match(line) and line.startswith("---") and pos > start:
            spans.append((start, pos))
            start = pos
        pos += len(line)
    spans.append((start, len(text)))
    return spans


def load_stream(text: str) -> list[Any]:
    """Every document of a YAML stream, round-trip loaded (line and column of every node kept)."""
    return _load(text)


def objects_of(doc: object) -> Iterator[CommentedMap]:
    """The objects of one document: itself, or the items of a ``List``."""
    return (obj for obj, _ in _objects(doc, ""))


def _load(text: str) -> list[Any]:
    yaml = YAML(typ="rt")
    try:
        return list(yaml.load_all(text))
    except YAMLError as exc:
        raise ManifestError(f"cannot parse YAML: {exc}".splitlines()[0]) from None


def _where_label(where: int | ObjectId) -> str:
    if isinstance(where, ObjectId):
        ns = f"{where.namespace}/" if where.namespace else ""
        return f"{where.kind} {ns}{where.name}"
    return f"document {where}"


def _matches(obj: object, oid: ObjectId) -> bool:
    if not isinstance(obj, Mapping) or obj.get("kind") != oid.kind:
        return False
    meta = obj.get("metadata")
    if not isinstance(meta, Mapping) or meta.get("name") != oid.name:
        return False
    return oid.namespace is None or meta.get("namespace") in (oid.namespace, None)


def _objects(doc: object, prefix: str) -> Iterator[tuple[CommentedMap, str]]:
    """The document itself, or the items of a ``List``, with their path from the document root."""
    if not isinstance(doc, CommentedMap):
        return
    items = doc.get("items")
    kind = doc.get("kind")
    if isinstance(kind, str) and kind.endswith("List") and isinstance(items, list):
        for i, item in enumerate(items):
            yield from _objects(item, _join(prefix, f"items[{i}]"))
    else:
        yield doc, prefix


def _resolve_object(docs: list[Any], where: int | ObjectId) -> tuple[Any, Any]:
    """The mapping paths are relative to, and the document (for alias checks)."""
    if isinstance(where, int):
        if not 0 <= where < len(docs):
            raise ManifestError(f"no document {where} (the stream has {len(docs)})")
        return docs[where], docs[where]
    for doc in docs:
        for obj, _ in _objects(doc, ""):
            if _matches(obj, where):
                return obj, doc
    raise ManifestError("no such object in the file")


_STEP = re.compile(r"([^.\[\]]+)|\[(\d+)\]")


def _parse_path(path: str) -> list[str | int]:
    steps: list[str | int] = []
    pos = 0
    while pos < len(path):
        if path[pos] == ".":
            pos += 1
            continue
        m = _STEP.match(path, pos)
        if m is None:
            raise ManifestError(f"bad path {path!r} at {pos}")
        steps.append(m.group(1) if m.group(1) is not None else int(m.group(2)))
        pos = m.end()
    return steps


def _walk(node: Any, steps: list[str | int]) -> Any:
    for step in steps:
        try:
            node = node[step]
        except (KeyError, IndexError, TypeError):
            raise ManifestError(f"nothing at {step!r}") from None
    return node


def _join(prefix: str, path: str) -> str:
    if not prefix:
        return path
    if not path:
        return prefix
    return prefix + (path if path.startswith("[") else "." + path)


def _containers(node: Any, path: str) -> Iterator[tuple[str, Any]]:
    """Every item of a ``containers``/``initContainers``/``ephemeralContainers`` list, anywhere below."""
    if isinstance(node, Mapping):
        for key, value in node.items():
            sub = _join(path, str(key))
            if key in CONTAINER_LISTS and isinstance(value, list):
                for i, item in enumerate(value):
                    yield f"{sub}[{i}]", item
            elif key in ARGO_SINGLE and isinstance(value, Mapping) and "image" in value:
                yield sub, value
            elif isinstance(value, (Mapping, list)):
                yield from _containers(value, sub)
    elif isinstance(node, list):
        for i, item in enumerate(node):
            yield from _containers(item, f"{path}[{i}]")


# --- safety --------------------------------------------------------------------------------------


def _unsafe(container: CommentedMap, counts: Mapping[int, int]) -> str | None:
    if requests_gpu(container):
        return "requests GPUs; void would take them away (fix its NVIDIA_VISIBLE_DEVICES by hand)"
    if getattr(container, "merge", None) and "env" in container:
        own = {k for k, _ in container.non_merged_items()}
        if "env" not in own:
            return "its env comes from a YAML merge key (<<); edit the anchored mapping by hand"
    if counts.get(id(container), 0) > 1:
        return "the container is a YAML alias shared with other containers; edit the anchor by hand"
    env = container.get("env")
    if isinstance(env, (CommentedSeq, CommentedMap)) and counts.get(id(env), 0) > 1:
        return "its env is a YAML anchor shared with other containers; edit the anchor by hand"
    if env is not None and not isinstance(env, CommentedSeq):
        return f"env is not a list ({type(env).__name__})"
    return None


def _reference_counts(doc: Any) -> dict[int, int]:
    counts: dict[int, int] = {}

    def visit(node: Any) -> None:
        if not isinstance(node, (Mapping, list)):
            return
        counts[id(node)] = counts.get(id(node), 0) + 1
        if counts[id(node)] > 1:
            return
        children = node.values() if isinstance(node, Mapping) else node
        for child in children:
            visit(child)

    visit(doc)
    return counts


# --- splicing ------------------------------------------------------------------------------------


class _Lines:
    """Line offsets of the text, and the newline style to write."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.lines = text.splitlines(keepends=True)
        self.starts: list[int] = []
        pos = 0
        for line in self.lines:
            self.starts.append(pos)
            pos += len(line)
        self.starts.append(pos)
        self.newline = "\r\n" if "\r\n" in text else "\n"

    def offset(self, line: int, col: int) -> int:
        return self.starts[line] + col

    def content_end(self, line: int) -> int:
        """Offset of the end of a line, before its newline."""
        return self.starts[line] + len(self.lines[line].rstrip("\r\n"))

    def indent(self, line: int) -> int | None:
        """Indentation of a content line; None for blank and comment-only lines."""
        body = self.lines[line].rstrip("\r\n")
        stripped = body.lstrip(" ")
        if not stripped or stripped.startswith("#"):
            return None
        return len(body) - len(stripped)

    def last_line(self, first: int, min_indent: int, *, compact_at: int | None = None) -> int:
        """Last content line of a block node starting on ``first`` whose lines are indented >= ``min_indent``.

        ``compact_at``: the column of the mapping's keys, where a ``- item`` line still belongs
        to it (a block list written at its key's indentation).
        """
        last = first
        for n in range(first + 1, len(self.lines)):
            ind = self.indent(n)
            if ind is None:
                continue
            if self.lines[n].startswith(("---", "...")):
                break
            compact = ind == compact_at and self.lines[n][ind:].startswith("-")
            if ind < min_indent and not compact:
                break
            last = n
        return last


def _container_splices(container: CommentedMap, lines: _Lines, fallback: int) -> list[_Splice] | None:
    """The edits that leave exactly one ``NVIDIA_VISIBLE_DEVICES: void`` in the env; None when not splicable."""
    nl = lines.newline
    if container.fa.flow_style():
        return _flow_container_splices(container, lines)
    own = [k for k, _ in container.non_merged_items()]  # keys merged in by "<<" have no position here
    if not own:
        return None
    key_col = container.lc.key(own[0])[1]
    dash = _dash_offset(container, lines, fallback)
    env = container.get("env")
    if "env" not in container:
        last_key = own[-1]
        end = lines.last_line(container.lc.key(last_key)[0], key_col + 1, compact_at=key_col)
        ind = " " * key_col
        pad = " " * dash
        new = f"{ind}env:{nl}{ind}{pad}- name: {NVD}{nl}{ind}{pad}  value: {VOID}{nl}"
        at = lines.starts[end + 1] if end + 1 < len(lines.lines) else len(lines.text)
        prefix = "" if lines.text.endswith(("\n", "\r")) or at < len(lines.text) else nl
        return [_Splice(at, at, prefix + new)]
    if env is None:  # "env:" with no value
        line = container.lc.key("env")[0]
        ind = " " * key_col + " " * dash
        new = f"{nl}{ind}- name: {NVD}{nl}{ind}  value: {VOID}"
        at = lines.content_end(line)
        return [_Splice(at, at, new)]
    assert isinstance(env, CommentedSeq)
    if env.fa.flow_style() and len(env):
        return _flow_env_splices(env, lines)
    if not len(env):
        line, col = container.lc.value("env")
        if not lines.lines[line][col:].startswith("[]"):
            return None
        start = lines.offset(line, col)
        while start > lines.starts[line] and lines.text[start - 1] == " ":
            start -= 1
        ind = " " * key_col + " " * dash
        return [_Splice(start, lines.offset(line, col + 2), f"{nl}{ind}- name: {NVD}{nl}{ind}  value: {VOID}")]
    hits = [i for i, item in enumerate(env) if isinstance(item, Mapping) and item.get("name") == NVD]
    if not hits:
        last = len(env) - 1
        item_line, item_col = env.lc.item(last)
        end = lines.last_line(item_line, item_col)
        first_line, first_col = env.lc.item(0)
        prefix = lines.lines[first_line][:first_col]
        dash_col = prefix.rfind("-")
        if dash_col < 0:
            return None
        new = f"{' ' * dash_col}{prefix[dash_col:]}name: {NVD}{nl}{' ' * first_col}value: {VOID}{nl}"
        at = lines.starts[end + 1] if end + 1 < len(lines.lines) else len(lines.text)
        lead = "" if at < len(lines.text) or lines.text.endswith(("\n", "\r")) else nl
        return [_Splice(at, at, lead + new)]
    splices: list[_Splice] = []
    first = env[hits[0]]
    good = set(first) == {"name", "value"} and first.get("value") == VOID
    if not good:
        line, col = env.lc.item(hits[0])
        if isinstance(first, CommentedMap) and first.fa.flow_style():
            end = lines.content_end(line)
        else:
            end = lines.content_end(lines.last_line(line, col))
        splices.append(_Splice(lines.offset(line, col), end, f"name: {NVD}{nl}{' ' * col}value: {VOID}"))
    for i in hits[1:]:  # duplicates: the API server keeps the last, so leave only one
        line, col = env.lc.item(i)
        last = lines.last_line(line, col)
        splices.append(_Splice(lines.starts[line], lines.starts[last + 1], ""))
    return splices


FLOW_ENTRY = f"{{name: {NVD}, value: {VOID}}}"


def _flow_container_splices(container: CommentedMap, lines: _Lines) -> list[_Splice] | None:
    """``{name: c, image: x}`` gains ``, env: [{...}]``; a flow env inside it is edited in place."""
    env = container.get("env")
    if isinstance(env, CommentedSeq):
        if len(env):
            return _flow_env_splices(env, lines)
        start = lines.offset(env.lc.line, env.lc.col)
        end = _flow_end(lines.text, start)
        return None if end is None else [_Splice(start + 1, end - 1, FLOW_ENTRY)]
    if env is not None or "env" in container:
        return None
    start = lines.offset(container.lc.line, container.lc.col)
    end = _flow_end(lines.text, start)
    if end is None:
        return None
    at = _before_close(lines.text, end - 1)
    return [_Splice(at, at, f", env: [{FLOW_ENTRY}]")]


def _flow_env_splices(env: CommentedSeq, lines: _Lines) -> list[_Splice] | None:
    """A flow env list: append the entry, or rewrite the first NVIDIA_VISIBLE_DEVICES item and drop the others."""
    text = lines.text
    spans: list[tuple[int, int]] = []
    for i in range(len(env)):
        line, col = env.lc.item(i)
        start = lines.offset(line, col)
        end = _flow_end(text, start) if text[start] in "{[" else None
        if end is None:
            return None
        spans.append((start, end))
    hits = [i for i, item in enumerate(env) if isinstance(item, Mapping) and item.get("name") == NVD]
    if not hits:
        close = _flow_end(text, lines.offset(env.lc.line, env.lc.col))
        if close is None:
            return None
        at = _before_close(text, close - 1)
        sep = " " if text[at - 1] == "," else ", "
        return [_Splice(at, at, f"{sep}{FLOW_ENTRY}")]
    splices: list[_Splice] = []
    first = env[hits[0]]
    if not (set(first) == {"name", "value"} and first.get("value") == VOID):
        splices.append(_Splice(*spans[hits[0]], FLOW_ENTRY))
    for i in hits[1:]:
        splices.append(_Splice(spans[i - 1][1], spans[i][1], ""))  # ", {dup}" after the item before it
    return splices


def _before_close(text: str, close: int) -> int:
    """Where to insert before a closing bracket: after the last non-blank character."""
    at = close
    while at > 0 and text[at - 1] in " \t\r\n":
        at -= 1
    return at


def _flow_end(text: str, start: int) -> int | None:
    """Offset just past the flow collection opening at ``start``; quotes and comments respected."""
    depth = 0
    quote: str | None = None
    i = start
    while i < len(text):
        ch = text[i]
        if quote == '"':
            if ch == "\\":
                i += 2
                continue
            if ch == '"':
                quote = None
        elif quote == "'":
            if ch == "'":
                if text[i + 1 : i + 2] == "'":
                    i += 2
                    continue
                quote = None
        elif ch in "\"'":
            quote = ch
        elif ch == "#" and text[i - 1] in " \t\n":
            newline = text.find("\n", i)
            i = len(text) if newline < 0 else newline
            continue
        elif ch in "{[":
            depth += 1
        elif ch in "}]":
            depth -= 1
            if depth == 0:
                return i + 1
        i += 1
    return None


def _dash_offset(node: Any, lines: _Lines, fallback: int = 0) -> int:
    """How far this file indents ``- item`` past its parent key: the first block list below ``node`` says."""
    stack = [node]
    while stack:
        current = stack.pop(0)
        if isinstance(current, CommentedMap):
            for key, value in current.non_merged_items():
                if isinstance(value, CommentedSeq) and not value.fa.flow_style() and len(value):
                    key_line, key_col = current.lc.key(key)
                    line, col = value.lc.item(0)
                    dash: int = lines.lines[line][:col].rfind("-")
                    if line > key_line and dash >= key_col:
                        return dash - int(key_col)
                if isinstance(value, (CommentedMap, CommentedSeq)):
                    stack.append(value)
        elif isinstance(current, CommentedSeq):
            stack.extend(v for v in current if isinstance(v, (CommentedMap, CommentedSeq)))
    return fallback


def _apply(text: str, splices: list[_Splice]) -> str:
    out = text
    for s in sorted(splices, key=lambda s: (s.start, s.end), reverse=True):
        out = out[: s.start] + s.text + out[s.end :]
    return out
