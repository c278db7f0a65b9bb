"""Dockerfiles -> the env each stage's image sets, as BuildKit would build it without ``--build-arg``.

Why: the variable that hands GPUs to a container usually comes from the
image, and an image built ``FROM`` a CUDA image inherits
``NVIDIA_VISIBLE_DEVICES=all`` unless its Dockerfile says otherwise.

Read as BuildKit reads it: parser directives (``# escape=``) at the very
top, comments, line continuations (comment and empty lines inside them
dropped), heredocs (``RUN <<EOF`` bodies are not instructions), global
``ARG`` before the first ``FROM`` (usable in ``FROM``; redeclared ``ARG X``
in a stage inherits its default), ``ENV k=v k2="v 2"`` and the legacy
``ENV k v``, and ``$VAR``/``${VAR}``/``${VAR:-d}``/``${VAR:+a}`` substitution
with shell quoting.  No build args are given, so an ``ARG`` without a
default is unset.  A base image's env is asked of the caller (a registry,
or "not inspected"); a value that depends on an unknown env stays unknown,
never empty.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from gpuguard.model.errors import InputError
from gpuguard.syntax.dockerfile import Instruction, instructions

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
SCRATCH = "scratch"


# --- words and substitution ----------------------------------------------------------------------------


class Unknown(Exception):
    """A value depends on env that is not known (a base image that was not inspected)."""


Lookup = Callable[[str], str | None]  # a variable's value, None when unset; raises Unknown


def split_words(text: str, escape: str) -> list[str]:
    """Split at unquoted, unescaped whitespace; quotes and escapes are kept for :func:`expand`."""
    words: list[str] = []
    cur: list[str] = []
    quote = ""
    i = 0
    while i < len(text):
        c = text[i]
        if c == escape and quote != "'" and i + 1 < len(text):
            cur += [c, text[i + 1]]
            i += 2
            continue
        if quote:
            if c == quote:
                quote = ""
        elif c in "\"'":
            quote = c
        elif c.isspace():
            if cur:
                words.append("".join(cur))
                cur = []
            i += 1
            continue
        cur.append(c)
        i += 1
    if cur:
        words.append("".join(cur))
    return words


def expand(word: str, lookup: Lookup, escape: str = "\\", unset: list[str] | None = None) -> str:
    """Quote removal and ``$`` substitution of one word, as BuildKit's shell lexer does it.

    Raises ``Unknown`` when the result depends on an unknown value; names of
    unset variables used are appended to ``unset``.
    """
    out: list[str] = []
    i = 0
    quote = ""
    while i < len(word):
        c = word[i]
        if quote == "'":
            if c == "'":
                quote = ""
            else:
                out.append(c)
            i += 1
        elif c == escape and i + 1 < len(word):
            nxt = word[i + 1]
            if quote == '"' and nxt not in ('"', "$", escape):
                out.append(c)  # inside double quotes only ", $ and the escape itself are escaped
            out.append(nxt)
            i += 2
        elif c == '"':
            quote = "" if quote == '"' else '"'
            i += 1
        elif c == "'" and not quote:
            quote = "'"
            i += 1
        elif c == "$":
            value, i = _dollar(word, i, lookup, escape, unset)
            out.append(value)
        else:
            out.append(c)
            i += 1
    return "".join(out)


def _dollar(word: str, i: int, lookup: Lookup, escape: str, unset: list[str] | None) -> tuple[str, int]:
    """The value of the substitution at ``word[i] == "$"`` and the index after it."""
    if word.startswith("${", i):
        end = _closing(word, i + 2)
        if end < 0:
            return "$", i + 1
        body = word[i + 2 : end]
        m = _NAME.match(body)
        if m is None:
            return word[i : end + 1], end + 1
        name, rest = m.group(0), body[m.end() :]
        value = lookup(name)
        for op in (":-", ":+", ":?", "-", "+", "?"):
            if rest.startswith(op):
                alt = rest[len(op) :]
                present = value is not None and (value != "" or ":" not in op)
                if op.endswith("-"):
                    return (value if present else expand(alt, lookup, escape, unset)) or "", end + 1
                if op.endswith("+"):
                    return (expand(alt, lookup, escape, unset) if present else ""), end + 1
                return value or "", end + 1
        if value is None and unset is not None:
            unset.append(name)
        return value or "", end + 1
    m = _NAME.match(word, i + 1)
    if m is None:
        return "$", i + 1
    value = lookup(m.group(0))
    if value is None and unset is not None:
        unset.append(m.group(0))
    return value or "", m.end()


def _closing(word: str, start: int) -> int:
    depth = 1
    for j in range(start, len(word)):
        if word[j] == "{":
            depth += 1
        elif word[j] == "}":
            depth -= 1
            if depth == 0:
                return j
    return -1


# --- stages ----------------------------------------------------------------------------------------------


@dataclass(slots=True)
class EnvState:
    """The env an image sets: known values, unknown values (None), and why unlisted names may be set."""

    values: dict[str, str | None] = field(default_factory=dict)
    origin: dict[str, str] = field(default_factory=dict)  # name -> "line 7" or "base image X"
    unknown: str | None = None  # None: every variable the image sets is in ``values``

    def get(self, name: str) -> str | None:
        if name in self.values:
            value = self.values[name]
            if value is None:
                raise Unknown(name)
            return value
        if self.unknown is not None:
            raise Unknown(name)
        return None

    def copy(self) -> EnvState:
        return EnvState(dict(self.values), dict(self.origin), self.unknown)


@dataclass(frozen=True, slots=True)
class Stage:
    """One build stage: what it builds on and the env its image sets."""

    index: int
    name: str | None
    line: int  # the FROM line, 1-based
    base: str  # the image reference, or the earlier stage's name
    parent: int | None  # the earlier stage it builds on
    env: EnvState
    base_note: str | None = None  # why the base's env is unknown, when it is


@dataclass(frozen=True, slots=True)
class Dockerfile:
    path: str
    stages: tuple[Stage, ...]
    external: tuple[str, ...]  # external base images, in order

    @property
    def final(self) -> Stage:
        return self.stages[-1]

    def chain(self) -> Iterator[Stage]:
        """The final stage, then the stages it builds on, in turn."""
        stage: Stage | None = self.final
        while stage is not None:
            yield stage
            stage = self.stages[stage.parent] if stage.parent is not None else None


BaseEnv = Callable[[str], tuple[tuple[str, ...] | None, str]]  # image -> (env or None, why unknown)


def _no_base(image: str) -> tuple[tuple[str, ...] | None, str]:
    return None, f"base image {image} was not inspected"


def platform_args(platform: str) -> dict[str, str]:
    """BuildKit's automatic platform ARGs for a ``os/arch[/variant]`` target (and build) platform."""
    os_, _, rest = platform.partition("/")
    arch, _, variant = rest.partition("/")
    out: dict[str, str] = {}
    for prefix in ("TARGET", "BUILD"):
        out |= {f"{prefix}PLATFORM": platform, f"{prefix}OS": os_, f"{prefix}ARCH": arch, f"{prefix}VARIANT": variant}
    return out


def parse(
    text: str,
    path: str,
    base_env: BaseEnv = _no_base,
    *,
    platform: str = "linux/amd64",
    assume_clean: Callable[[str], bool] | None = None,
) -> Dockerfile:
    """Every stage of a Dockerfile with the env its image sets; raises ``InputError`` without a FROM.

    A ``FROM`` that uses a build arg without a default names no image; its env
    is unknown unless ``assume_clean`` says the partial name may be read as
    setting nothing (as the audit reads images it does not inspect).
    """
    steps, escape = instructions(text)
    auto = platform_args(platform)
    global_args: dict[str, str | None] = {}
    stages: list[Stage] = []
    names: dict[str, int] = {}
    external: list[str] = []
    env: EnvState | None = None
    args: dict[str, str | None] = {}
    for ins in steps:
        if ins.keyword == "FROM":
            stage = _from(ins, escape, {**auto, **global_args}, names, stages, base_env, external, assume_clean)
            stages.append(stage)
            env, args = stage.env, {}
            if stage.name:
                names[stage.name.lower()] = stage.index
        elif ins.keyword == "ARG":
            scope = global_args if env is None else args
            lookup = _lookup(env, scope if env is not None else {**auto, **global_args})
            _arg(ins, escape, scope, lookup, global_args if env is not None else {}, auto if env is not None else {})
        elif ins.keyword == "ENV" and env is not None:
            _env(ins, escape, env, args)
    if not stages:
        raise InputError(path, "no FROM instruction: not a Dockerfile")
    return Dockerfile(path, tuple(stages), tuple(external))


def _lookup(env: EnvState | None, args: dict[str, str | None]) -> Lookup:
    def get(name: str) -> str | None:
        if env is not None and name in env.values:
            return env.get(name)
        if name in args:
            return args[name]
        return env.get(name) if env is not None else None

    return get


def _from(  # noqa: PLR0917 - the parser's state, passed once
    ins: Instruction,
    escape: str,
    scope: dict[str, str | None],
    names: dict[str, int],
    stages: list[Stage],
    base_env: BaseEnv,
    external: list[str],
    assume_clean: Callable[[str], bool] | None = None,
) -> Stage:
    words = [w for w in split_words(ins.args, escape) if not w.startswith("--")]
    raw = words[0] if words else ""
    name = words[2] if len(words) >= 3 and words[1].upper() == "AS" else None
    unset: list[str] = []
    image = expand(raw, scope.get, escape, unset).strip()
    index = len(stages)
    if not image or unset:
        note = f"FROM {raw} depends on build arg {', '.join(dict.fromkeys(unset)) or '?'}, which has no default"
        if assume_clean is not None and assume_clean(image):
            return Stage(index, name, ins.line, image or raw, None, EnvState())
        return Stage(index, name, ins.line, image or raw, None, EnvState(unknown=note), note)
    parent = names.get(image.lower())
    if parent is not None:
        return Stage(index, name, ins.line, image, parent, stages[parent].env.copy())
    if image.lower() == SCRATCH:
        return Stage(index, name, ins.line, image, None, EnvState())
    if image not in external:
        external.append(image)
    env, why = base_env(image)
    if env is None:
        return Stage(index, name, ins.line, image, None, EnvState(unknown=why), why)
    state = EnvState()
    for entry in env:
        key, _, value = entry.partition("=")
        state.values[key] = value
        state.origin[key] = f"base image {image}"
    return Stage(index, name, ins.line, image, None, state)


def _arg(  # noqa: PLR0917
    ins: Instruction,
    escape: str,
    scope: dict[str, str | None],
    lookup: Lookup,
    global_args: dict[str, str | None],
    auto: dict[str, str],
) -> None:
    for word in split_words(ins.args, escape):
        name, eq, default = word.partition("=")
        if not _NAME.fullmatch(name):
            continue
        if eq:
            try:
                scope[name] = expand(default, lookup, escape)
            except Unknown:
                scope[name] = None
        elif name in global_args:
            scope[name] = global_args[name]  # a redeclared global ARG keeps its default
        else:
            scope[name] = auto.get(name)


def _env(ins: Instruction, escape: str, env: EnvState, args: dict[str, str | None]) -> None:
    words = split_words(ins.args, escape)
    if not words:
        return
    if "=" not in words[0]:  # legacy form: ENV key the rest of the line
        _, _, value = ins.args.partition(words[0])
        pairs = [(words[0], value.strip())]
    else:
        pairs = [(w.partition("=")[0], w.partition("=")[2]) for w in words if "=" in w]
    lookup = _lookup(env, args)
    resolved: list[tuple[str, str | None]] = []
    for key, raw in pairs:
        try:
            resolved.append((key, expand(raw, lookup, escape)))
        except Unknown:
            resolved.append((key, None))
    for key, result in resolved:  # every pair of one ENV sees the env from before it
        env.values[key] = result
        env.origin[key] = f"line {ins.line}"
