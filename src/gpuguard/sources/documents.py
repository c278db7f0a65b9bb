"""YAML and JSON documents from untrusted bytes, loaded safely and fast.

Every document in a stream comes back as a :class:`Document` holding either
the parsed value or an :class:`~gpuguard.model.errors.InputError`; nothing
here raises for bad input (except :func:`load_document`, which is meant to).

Defences, and why:

* Size: input over ``Limits.max_bytes`` is refused before it is parsed.
* Binary input: NUL bytes, UTF-16/32 byte order marks and invalid UTF-8 are
  refused with the offset of the first bad byte (Kubernetes reads UTF-8 only).
* Alias bombs ("billion laughs"): YAML aliases share one node, so the
  composed node graph stays small while the tree it stands for is huge and
  hangs whoever walks it.  Between composing and constructing, a document
  in which an alias may appear has its node graph walked once, memoising
  each collection's expanded size (children tallied by identity, so one
  anchor behind a million aliases is one entry).  A document whose expanded
  tree exceeds the nodes written by more than ``Limits.max_alias_expansion``
  is refused, and so is a recursive alias (a cycle).  The classic
  billion-laughs file is refused in about 0.1 ms; a 23 MiB file of aliases
  to one 1000-item list in about 1.5 s, most of it libyaml's own parse.
* Depth: libyaml refuses nesting deeper than 1000 and orjson deeper than
  1024; the pure-Python fallback's ``RecursionError`` is caught.
* Tags: safe loader only; a tag such as ``!!python/object`` is an error.
* Duplicate keys: the last value wins, as in Kubernetes' non-strict decoders
  (and the API server when field validation is not strict); each duplicate
  is reported in ``Document.warnings`` because two parsers reading the same
  manifest differently is how a reviewer gets fooled.  With
  ``Limits.duplicate_keys="error"`` such a document is an error instead, as
  in ``kubectl --validate=strict``.  (orjson cannot report duplicates: the
  keys written are counted against the keys parsed, and only when they
  differ is the text read again to name them.)
* Scalars resolve as Kubernetes' YAML decoder (go-yaml v2) resolves them
  into ``interface{}``: timestamps stay strings and there are no base-60
  numbers (``1:20`` is a string, not 80).

YAML streams are split on ``---`` lines before parsing, as Kubernetes' own
YAML reader does, so a syntax error spoils only its own document and the
documents after it are still read.  A JSON file (first character ``{`` or
``[``) is one JSON value or several concatenated, as ``kubectl`` accepts;
JSON that fails to parse but is valid YAML (``{a: 1}``) is read as YAML.
"""

from __future__ import annotations

import itertools
import json
import re
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Literal

import orjson
import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from gpuguard.model.errors import InputError

__all__ = [
    "DEFAULT_LIMITS",
    "Document",
    "Limits",
    "load_document",
    "load_documents",
]

Format = Literal["auto", "yaml", "json"]


@dataclass(frozen=True, slots=True)
class Limits:
    """Bounds on what one input may cost to load."""

    max_bytes: int = 32 * 1024 * 1024
    # Extra nodes aliases may add to a document's tree, beyond the nodes written.
    max_alias_expansion: int = 1_000_000
    duplicate_keys: Literal["warn", "error"] = "warn"


DEFAULT_LIMITS = Limits()


@dataclass(frozen=True, slots=True)
class Document:
    """One document of a stream: ``obj`` when it parsed, else ``error``.

    ``where`` is ``file#index``; for an error about the whole input (too big,
    binary) it is the bare ``file`` and ``index`` is 0.  ``line`` is the
    1-based line the document starts on.  Values built from YAML aliases are
    shared objects: treat ``obj`` as read-only.
    """

    index: int
    where: str
    obj: Any = None
    error: InputError | None = None
    warnings: tuple[str, ...] = ()
    line: int = 1

    @property
    def ok(self) -> bool:
        return self.error is None


def load_documents(
    data: bytes | str,
    where: str,
    *,
    limits: Limits = DEFAULT_LIMITS,
    format: Format = "auto",
    start_line: int = 0,
    start_index: int = 0,
    keep_kind: Callable[[str], bool] | None = None,
) -> Iterator[Document]:
    """Yield every document of ``data``; bad input becomes error documents, never exceptions.

    ``start_line`` and ``start_index`` say how many lines and documents came
    before ``data`` in its file, for callers that read a big YAML stream in
    windows cut at ``---`` lines (line numbers and ``where`` stay those of the file).
    With ``keep_kind``, a YAML document whose top-level ``kind`` it refuses is
    not built: its ``obj`` is only ``{apiVersion, kind}`` (a scanner counting
    kinds it does not judge saves the construction).
    """
    raw, problem = _checked_bytes(data, limits)
    if problem is not None:
        yield Document(0, where, error=InputError(where, problem))
        return
    if raw.startswith(b"\xef\xbb\xbf"):
        raw = raw[3:]
    if format == "json" or (format == "auto" and _JSON_START.match(raw)):
        json_docs = _json_documents(raw.decode("utf-8"), where, limits, yaml_fallback=format == "auto")
        if json_docs is not None:
            yield from json_docs
            return
    yield from _yaml_documents(
        raw, where, limits, start_line=start_line, start_index=start_index, keep_kind=keep_kind
    )


def load_document(data: bytes | str, where: str, *, limits: Limits = DEFAULT_LIMITS) -> Any:
    """Parse input that must hold exactly one document; raise :class:`InputError` otherwise."""
    docs = list(load_documents(data, where, limits=limits))
    for doc in docs:
        if doc.error is not None:
            raise doc.error
    if len(docs) != 1:
        raise InputError(where, f"expected exactly one document, found {len(docs)}")
    return docs[0].obj


_JSON_START = re.compile(rb"[ \t\r\n]*[{\[]")


# --- input checks -------------------------------------------------------------------------------

_BOMS = {
    b"\xff\xfe\x00\x00": "UTF-32",
    b"\x00\x00\xfe\xff": "UTF-32",
    b"\xff\xfe": "UTF-16",
    b"\xfe\xff": "UTF-16",
}


def _checked_bytes(data: bytes | str, limits: Limits) -> tuple[bytes, str | None]:
    """Return the input as UTF-8 bytes, or why it cannot be read as text."""
    if len(data) > limits.max_bytes:
        return b"", f"input is larger than the limit of {limits.max_bytes} bytes"
    if isinstance(data, str):
        try:
            raw = data.encode("utf-8")
        except UnicodeEncodeError as e:
            return b"", f"not valid text: unpaired surrogate at character {e.start}"
        if len(raw) > limits.max_bytes:
            return b"", f"input is larger than the limit of {limits.max_bytes} bytes"
    else:
        raw = bytes(data)
    for bom, name in _BOMS.items():
        if raw.startswith(bom):
            return b"", f"input is {name} text (byte order mark); only UTF-8 is read"
    nul = raw.find(b"\x00")
    if nul >= 0:
        line = raw.count(b"\n", 0, nul) + 1
        return b"", f"binary input: NUL byte at offset {nul} (line {line})"
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError as e:
        line = raw.count(b"\n", 0, e.start) + 1
        return b"", f"not UTF-8 text: invalid byte 0x{raw[e.start]:02x} at offset {e.start} (line {line})"
    return raw, None


# --- YAML -----------------------------------------------------------------------------------------

_TIMESTAMP = "tag:yaml.org,2002:timestamp"
_MERGE = "tag:yaml.org,2002:merge"
# PyYAML's int and float patterns less the YAML 1.1 base-60 forms go-yaml v2 does not know.
_INT = re.compile(r"""^(?:[-+]?0b[0-1_]+|[-+]?0[0-7_]+|[-+]?(?:0|[1-9][0-9_]*)|[-+]?0x[0-9a-fA-F_]+)$""", re.X)
_FLOAT = re.compile(
    r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+][0-9]+)?
        |\.[0-9][0-9_]*(?:[eE][-+][0-9]+)?
        |[-+]?\.(?:inf|Inf|INF)
        |\.(?:nan|NaN|NAN))$""",
    re.X,
)
_REPLACED = {"tag:yaml.org,2002:int": _INT, "tag:yaml.org,2002:float": _FLOAT}
_RESOLVERS = {
    first: [(tag, _REPLACED.get(tag, regexp)) for tag, regexp in resolvers if tag != _TIMESTAMP]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


class _DuplicateKeys:
    """Constructor mixin: note keys written twice in one mapping (merged keys may be overridden)."""

    duplicates: list[tuple[str, Any]]
    _checked: set[int]

    def flatten_mapping(self, node: MappingNode) -> None:
        pairs = node.value
        if len(pairs) > 1 and id(node) not in self._checked:  # merging rewrites node.value: check once
            self._checked.add(id(node))
            keys = [k.value for k, _ in pairs if k.__class__ is ScalarNode]
            if len(set(keys)) != len(keys):
                self._note_duplicates(pairs)
        super().flatten_mapping(node)  # type: ignore[misc]

    def _note_duplicates(self, pairs: list[tuple[Node, Node]]) -> None:
        seen: set[tuple[str, str]] = set()
        for key_node, _ in pairs:
            if isinstance(key_node, ScalarNode) and key_node.tag != _MERGE:
                key = (key_node.tag, key_node.value)
                if key in seen:
                    self.duplicates.append((key_node.value, key_node.start_mark))
                seen.add(key)


_STR = "tag:yaml.org,2002:str"
_RESOLVED: dict[str, str] = {}  # plain scalar -> its implicit tag; most keys and values repeat
_RESOLVED_MAX = 8192  # the first documents fill it with the keys every manifest repeats


def _make_loader(base: Any) -> Any:
    """A safe loader class on ``base`` with duplicate-key notes and Kubernetes' scalar resolution."""

    class Loader(_DuplicateKeys, base):  # type: ignore[misc]
        yaml_implicit_resolvers = _RESOLVERS

        def __init__(self, stream: bytes) -> None:
            super().__init__(stream)
            self.duplicates = []
            self._checked = set()

        def descend_resolver(self, current_node: Any, current_index: Any) -> None:
            """No path resolvers are registered: nothing to track (libyaml calls this per node)."""

        def ascend_resolver(self) -> None:
            """See ``descend_resolver``."""

        def resolve(self, kind: Any, value: Any, implicit: Any) -> Any:
            # The same answer as Resolver.resolve (there are no path resolvers), memoised for
            # plain scalars: libyaml calls this once per node, and it was a fifth of the parse.
            if kind is ScalarNode and implicit[0]:
                tag = _RESOLVED.get(value)
                if tag is None:
                    tag = super().resolve(kind, value, implicit)
                    if len(_RESOLVED) < _RESOLVED_MAX and len(value) < 64:
                        _RESOLVED[value] = tag
                return tag
            if kind is MappingNode:
                return _MAP
            if kind is SequenceNode:
                return _SEQ
            return super().resolve(kind, value, implicit)

    return Loader


# libyaml's loader when PyYAML was built with it; the pure-Python one otherwise.
_Loader: Any = _make_loader(getattr(yaml, "CSafeLoader", None) or yaml.SafeLoader)


# Where an alias can start a node; a cheap test that lets alias-free documents skip the walk.
_ALIAS_TOKEN = re.compile(rb"(?:^|[\s\[{,])\*[^\s\[\]{},]", re.M)
_SEPARATOR = re.compile(rb"^---(?=[ \t\r\n]|\Z)", re.M)
_PREAMBLE_ONLY = re.compile(rb"(?:[ \t]*(?:#[^\n]*)?\r?\n|%[^\n]*\n)*[ \t]*(?:#[^\n]*)?")
_TRAILING_DIRECTIVES = re.compile(rb"^\.\.\.[ \t]*(?:#[^\n]*)?\r?\n((?:%[^\n]*\n|[ \t]*(?:#[^\n]*)?\r?\n)*)\Z", re.M)


def _chunks(raw: bytes) -> Iterator[tuple[int, bytes]]:
    """Split a YAML stream on ``---`` lines: yield (0-based line of the chunk's start, chunk).

    Directives (``%YAML``, ``%TAG``) belong to the document after them, so a
    chunk's trailing directives (after a ``...`` line) move to the next chunk.
    """
    starts = [m.start() for m in _SEPARATOR.finditer(raw)]
    if not starts or starts[0] != 0:
        starts.insert(0, 0)
    starts.append(len(raw))
    line, pos = 0, 0
    for begin, end in itertools.pairwise(starts):
        cut = end
        if end != len(raw) and raw.find(b"%", begin, end) >= 0:
            if _PREAMBLE_ONLY.fullmatch(raw, begin, end):
                continue
            trailing = _TRAILING_DIRECTIVES.search(raw, begin, end)
            if trailing is not None and raw.find(b"%", trailing.start(1), end) >= 0:
                cut = trailing.start(1)
        yield line, raw[pos:cut]
        line += raw.count(b"\n", pos, cut)
        pos = cut


def _mark_text(mark: Any, line_offset: int) -> str:
    return f"line {mark.line + line_offset + 1}, column {mark.column + 1}"


def _yaml_error_text(e: yaml.YAMLError, line_offset: int) -> str:
    if isinstance(e, yaml.MarkedYAMLError):
        parts = []
        if e.problem_mark is not None:
            parts.append(_mark_text(e.problem_mark, line_offset) + ":")
        parts.append(e.problem or "invalid YAML")
        if e.context:
            where = f" at {_mark_text(e.context_mark, line_offset)}" if e.context_mark is not None else ""
            parts.append(f"({e.context}{where})")
        return " ".join(parts)
    return str(e) or "invalid YAML"


def _skipped_head(node: Node, keep_kind: Callable[[str], bool]) -> dict[str, str] | None:
    """``{apiVersion, kind}`` of a document whose plain ``kind`` the caller does not want built, else None."""
    if node.__class__ is not MappingNode:
        return None
    head: dict[str, str] = {}
    for key, value in node.value:
        if key.__class__ is ScalarNode and key.value in ("kind", "apiVersion") and key.tag == _STR:
            if value.__class__ is not ScalarNode or value.tag != _STR:
                return None
            head[key.value] = value.value
    kind = head.get("kind")
    if kind is None or keep_kind(kind):
        return None
    return head


def _yaml_documents(
    raw: bytes,
    where: str,
    limits: Limits,
    *,
    start_line: int = 0,
    start_index: int = 0,
    keep_kind: Callable[[str], bool] | None = None,
) -> Iterator[Document]:
    index = start_index
    for chunk_line, chunk in _chunks(raw):
        line_offset = chunk_line + start_line
        loader = _Loader(chunk)
        may_alias = b"*" in chunk and _ALIAS_TOKEN.search(chunk) is not None
        try:
            while True:
                node_line = line_offset + 1
                try:
                    if not loader.check_node():
                        break
                    node = loader.get_node()
                    node_line = node.start_mark.line + line_offset + 1
                    if keep_kind is not None and (head := _skipped_head(node, keep_kind)) is not None:
                        yield Document(index, f"{where}#{index}", obj=head, line=node_line)
                        index += 1
                        continue
                    problem = _alias_problem(node, line_offset, limits) if may_alias else None
                    if problem is not None:
                        yield _error(index, where, problem, node_line)
                        index += 1
                        continue
                    loader.duplicates.clear()
                    obj = _construct(loader, node, may_alias)
                except yaml.constructor.ConstructorError as e:  # the parser is fine: go on
                    _reset_constructor(loader)
                    yield _error(index, where, _yaml_error_text(e, line_offset), node_line)
                    index += 1
                    continue
                except yaml.YAMLError as e:
                    text = _yaml_error_text(e, line_offset)
                    yield _error(index, where, f"{text}; skipped to the next '---' line", node_line)
                    index += 1
                    break
                except RecursionError:  # only the pure-Python fallback recurses
                    yield _error(index, where, "nested too deeply; skipped to the next '---' line", node_line)
                    index += 1
                    break
                except (ValueError, TypeError, OverflowError, LookupError, AttributeError) as e:
                    # Explicit tags reach Python constructors with odd scalars: "!!int abc", "!!int".
                    _reset_constructor(loader)
                    yield _error(index, where, f"cannot construct a value: {e}", node_line)
                    index += 1
                    continue
                warnings = tuple(
                    f"{_mark_text(mark, line_offset)}: duplicate key {key!r}; the last value is used"
                    for key, mark in loader.duplicates
                )
                doc_where = f"{where}#{index}"
                if warnings and limits.duplicate_keys == "error":
                    message = "; ".join(w.replace("; the last value is used", "") for w in warnings)
                    yield _error(index, where, message, node_line)
                else:
                    yield Document(index, doc_where, obj=obj, warnings=warnings, line=node_line)
                index += 1
        finally:
            loader.dispose()


# --- fast construction -----------------------------------------------------------------------------

_MAP = "tag:yaml.org,2002:map"
_SEQ = "tag:yaml.org,2002:seq"
_NULL = "tag:yaml.org,2002:null"
_BOOL = "tag:yaml.org,2002:bool"
_INT_TAG = "tag:yaml.org,2002:int"
_FLOAT_TAG = "tag:yaml.org,2002:float"
_BOOLS = yaml.constructor.SafeConstructor.bool_values


class _Slow(Exception):
    """The fast constructor met something it leaves to PyYAML's (merge keys, other tags, odd keys)."""


def _construct(loader: Any, node: Node, may_alias: bool) -> Any:
    """Build the document's value: the fast way for plain documents, PyYAML's way otherwise.

    Kubernetes manifests are maps, lists, strings, ints, bools and nulls; for
    those a direct walk of the node tree builds the same value as
    ``construct_document`` in a third of the time.  Documents with aliases
    (shared nodes), merge keys, explicit tags or collection keys take PyYAML's
    path, with its errors and checks, unchanged.
    """
    if not may_alias:
        try:
            return _fast(loader, node)
        except (_Slow, RecursionError):
            loader.duplicates.clear()
    return loader.construct_document(node)


def _fast(loader: Any, node: Node) -> Any:
    cls = node.__class__
    tag = node.tag
    if cls is ScalarNode:
        if tag == _STR:
            return node.value
        if tag == _NULL:
            return None
        if tag == _BOOL:
            return _BOOLS[node.value.lower()]
        if tag == _INT_TAG:
            return loader.construct_yaml_int(node)
        if tag == _FLOAT_TAG:
            return loader.construct_yaml_float(node)
        raise _Slow
    if cls is MappingNode:
        if tag != _MAP:
            raise _Slow
        pairs = node.value
        out = {}
        for key_node, value_node in pairs:  # strings inline: most keys and values are
            if key_node.__class__ is not ScalarNode or key_node.tag == _MERGE:
                raise _Slow
            key = key_node.value if key_node.tag == _STR else _fast(loader, key_node)
            if value_node.__class__ is ScalarNode and value_node.tag == _STR:
                out[key] = value_node.value
            else:
                out[key] = _fast(loader, value_node)
        if len(out) != len(pairs):
            loader._note_duplicates(pairs)
        return out
    if tag != _SEQ:
        raise _Slow
    return [
        item.value if item.__class__ is ScalarNode and item.tag == _STR else _fast(loader, item) for item in node.value
    ]


def _reset_constructor(loader: Any) -> None:
    """Forget a failed document's half-built objects so the next one starts clean."""
    loader.constructed_objects = {}
    loader.recursive_objects = {}
    loader.state_generators = []
    loader.deep_construct = False


def _error(index: int, where: str, message: str, line: int) -> Document:
    doc_where = f"{where}#{index}"
    return Document(index, doc_where, error=InputError(doc_where, message), line=line)


def _alias_problem(root: Node, line_offset: int, limits: Limits) -> str | None:
    """Refuse a node graph whose aliases expand it too much, or that contains itself.

    Iterative post-order walk over the graph's distinct nodes, memoising each
    collection's expanded size, so a billion-laughs document costs as much as
    its text.  Children are tallied by identity in C (``Counter``), so a wide
    bomb (one anchor, millions of aliases) is not walked alias by alias.
    """
    sizes: dict[int, int] = {}  # id -> expanded size, for collections done
    open_nodes: set[int] = set()  # collections whose children are still being walked
    written = 0
    ones = itertools.repeat(1)
    stack: list[tuple[Node, list[int] | Counter[int] | None]] = [(root, None)]
    while stack:
        node, kid_ids = stack.pop()
        if kid_ids is not None:  # all children done; scalars count 1
            open_nodes.discard(id(node))
            if isinstance(kid_ids, Counter):
                sizes[id(node)] = 1 + sum(n * sizes.get(kid, 1) for kid, n in kid_ids.items())
            else:
                sizes[id(node)] = 1 + sum(map(sizes.get, kid_ids, ones))
            continue
        nid = id(node)
        if node.__class__ is ScalarNode or nid in sizes:
            continue
        if nid in open_nodes:
            return f"{_mark_text(node.start_mark, line_offset)}: recursive alias (a node containing itself)"
        open_nodes.add(nid)
        kids: list[Node] = [n for pair in node.value for n in pair] if node.__class__ is MappingNode else node.value
        if len(kids) > 64:  # tally in C: one anchor behind a million aliases is one entry
            tally = Counter(map(id, kids))
            stack.append((node, tally))
            if len(tally) < len(kids):
                kids = list({id(kid): kid for kid in kids}.values())
        else:
            stack.append((node, list(map(id, kids))))
        written += 1
        for kid in kids:
            if kid.__class__ is ScalarNode:
                written += 1
            elif id(kid) not in sizes:
                stack.append((kid, None))
    expanded = sizes.get(id(root), 1)
    if expanded - written > limits.max_alias_expansion:
        return (
            f"aliases expand this document to {expanded} nodes from {written} written "
            f"(limit: {limits.max_alias_expansion} extra nodes); refused as an alias bomb"
        )
    return None


# --- JSON -----------------------------------------------------------------------------------------

_JSON_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"(\s*:)?', re.S)


def _json_key_count(text: str) -> int:
    """Number of object keys written in valid JSON text (strings followed by a colon)."""
    colons = _JSON_STRING.findall(text)
    return len(colons) - colons.count("")


def _json_documents(text: str, where: str, limits: Limits, *, yaml_fallback: bool) -> list[Document] | None:
    """Parse a JSON value or a stream of them; None when it is not JSON but is valid YAML."""
    try:
        obj = orjson.loads(text)
    except orjson.JSONDecodeError as e:
        if e.msg != "unexpected content after document":
            return None if yaml_fallback and _yaml_ok(text, limits) else [_json_error(0, where, e, 0)]
        return _json_stream(text, where, limits)
    warnings: tuple[str, ...] = ()
    if isinstance(obj, (dict, list)) and _json_key_count(text) != _json_key_count(orjson.dumps(obj).decode()):
        warnings = _json_duplicates(text)
    return [_json_doc(0, where, obj, warnings, line=1, limits=limits)]


def _yaml_ok(text: str, limits: Limits) -> bool:
    return all(d.ok for d in _yaml_documents(text.encode("utf-8"), "", limits))


def _json_doc(index: int, where: str, obj: Any, warnings: tuple[str, ...], *, line: int, limits: Limits) -> Document:
    if warnings and limits.duplicate_keys == "error":
        return _error(index, where, "; ".join(warnings), line)
    return Document(index, f"{where}#{index}", obj=obj, warnings=warnings, line=line)


def _json_error(index: int, where: str, e: json.JSONDecodeError, line_offset: int) -> Document:
    rest = "; the rest of the input could not be read"
    message = f"line {e.lineno + line_offset}, column {e.colno}: {e.msg}{rest}"
    return _error(index, where, message, e.lineno + line_offset)


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _pairs_noting_duplicates(duplicates: list[str]) -> Any:
    def hook(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, value in pairs:
            if key in out:
                duplicates.append(key)
            out[key] = value
        return out

    return hook


def _json_duplicates(text: str) -> tuple[str, ...]:
    found: list[str] = []
    json.loads(text, object_pairs_hook=_pairs_noting_duplicates(found))
    return tuple(f"duplicate key {k!r}; the last value is used" for k in found)


def _json_stream(text: str, where: str, limits: Limits) -> list[Document]:
    """Concatenated JSON values, read with the standard decoder, which can resume mid-text."""
    docs: list[Document] = []
    found: list[str] = []
    hook = _pairs_noting_duplicates(found)
    decoder = json.JSONDecoder(object_pairs_hook=hook, parse_constant=_reject_constant)
    pos, end = 0, len(text)
    ws = re.compile(r"[ \t\r\n]*")
    while True:
        m = ws.match(text, pos)
        pos = m.end() if m else pos
        if pos >= end:
            return docs
        index = len(docs)
        line = text.count("\n", 0, pos) + 1
        found.clear()
        try:
            obj, pos = decoder.raw_decode(text, pos)
        except json.JSONDecodeError as e:
            docs.append(_json_error(index, where, e, 0))
            return docs
        except (ValueError, RecursionError) as e:
            message = "nested too deeply" if isinstance(e, RecursionError) else str(e)
            docs.append(_error(index, where, f"{message}; the rest of the input could not be read", line))
            return docs
        warnings = tuple(f"duplicate key {k!r}; the last value is used" for k in found)
        docs.append(_json_doc(index, where, obj, warnings, line=line, limits=limits))
