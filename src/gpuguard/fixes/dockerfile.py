"""``ENV NVIDIA_VISIBLE_DEVICES=void`` in the final stage of a Dockerfile.

CUDA base images bake in ``NVIDIA_VISIBLE_DEVICES=all``; an image built on
one hands every GPU to any container that runs it on an env-honouring node.
Only the final stage ends up in the image, so the line goes right after the
last ``FROM`` instruction (after its continuation lines); an ``ENV`` of the
variable already in that stage is rewritten in place instead, so a later
``ENV`` cannot undo the fix. Device-plugin allocations still override the
image env for containers that request GPUs, so GPU pods keep their devices.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

NVD = "NVIDIA_VISIBLE_DEVICES"
LINE = f"ENV {NVD}=void"

_DIRECTIVE = re.compile(r"^#\s*([A-Za-z]+)\s*=\s*(\S+)\s*$")
_HEREDOC = re.compile(r"<<(-?)([\"']?)([A-Za-z_][A-Za-z0-9_]*)\2")
_PAIR = re.compile(rf"(?<![\w$]){NVD}=(?P<value>\"(?:[^\"\\]|\\.)*\"|'[^']*'|(?:[^\s\"'\\]|\\.)*)")


@dataclass(frozen=True, slots=True)
class Instruction:
    keyword: str  # upper-case
    first: int  # first physical line (0-based)
    last: int  # last physical line
    args: str  # the logical line after the keyword, continuations joined


@dataclass(frozen=True, slots=True)
class DockerfileFix:
    text: str
    changed: bool
    why: str


def instructions(text: str) -> list[Instruction]:
    """Logical instructions with their physical line span (comments, continuations and heredocs handled)."""
    lines = text.splitlines()
    escape = "\\"
    n = 0
    while n < len(lines):  # parser directives: only at the very top
        m = _DIRECTIVE.match(lines[n])
        if not m:
            break
        if m.group(1).lower() == "escape":
            escape = m.group(2)
        n += 1
    out: list[Instruction] = []
    while n < len(lines):
        stripped = lines[n].strip()
        if not stripped or stripped.startswith("#"):
            n += 1
            continue
        first = n
        parts: list[str] = []
        while True:
            body = lines[n].rstrip()
            if body.endswith(escape) and n + 1 < len(lines):
                parts.append(body[: -len(escape)])
                n += 1
                while n < len(lines) and lines[n].strip().startswith("#"):
                    n += 1  # comment lines inside a continuation are dropped by the parser
                continue
            parts.append(body)
            break
        logical = " ".join(p.strip() for p in parts)
        keyword, _, args = logical.partition(" ")
        for strip_tabs, _quote, word in _HEREDOC.findall(args):
            n += 1
            while n < len(lines) and (lines[n].lstrip("\t") if strip_tabs else lines[n]) != word:
                n += 1
        out.append(Instruction(keyword.upper(), first, min(n, len(lines) - 1), args.strip()))
        n += 1
    return out


def _sets_nvd(ins: Instruction) -> bool:
    if ins.keyword != "ENV":
        return False
    head = ins.args.split(None, 1)[0] if ins.args else ""
    return head == NVD or _PAIR.search(ins.args) is not None


def set_void(text: str) -> DockerfileFix:
    """Add or rewrite ``ENV NVIDIA_VISIBLE_DEVICES=void`` in the final stage; idempotent."""
    steps = instructions(text)
    froms = [i for i, ins in enumerate(steps) if ins.keyword == "FROM"]
    if not froms:
        return DockerfileFix(text, False, "no FROM instruction: not a Dockerfile")
    stage = steps[froms[-1] :]
    lines = text.splitlines(keepends=True)
    nl = "\r\n" if "\r\n" in text else "\n"
    existing = [ins for ins in stage if _sets_nvd(ins)]
    if not existing:
        at = stage[0].last + 1
        at = min(at, len(lines))
        if at == len(lines) and lines and not lines[-1].endswith(("\n", "\r")):
            lines[-1] += nl
        lines.insert(at, LINE + nl)
        return DockerfileFix("".join(lines), True, f"added {LINE} after the last FROM (line {stage[0].first + 1})")
    for ins in reversed(existing):
        head, _, rest = ins.args.partition(" ")
        if head == NVD:
            value = rest.strip()
        else:
            values = [m.group("value") for m in _PAIR.finditer(ins.args)]
            value = values[-1] if len(set(values)) == 1 else ""
        if value.strip("\"'") == "void":
            continue
        if head == NVD or (head.startswith(f"{NVD}=") and len(_pairs(ins.args)) == 1):
            end = lines[ins.last][len(lines[ins.last].rstrip("\r\n")) :]
            keyword = lines[ins.first].lstrip()[:3]
            indent = lines[ins.first][: len(lines[ins.first]) - len(lines[ins.first].lstrip())]
            lines[ins.first : ins.last + 1] = [f"{indent}{keyword} {NVD}=void{end}"]
        else:
            for k in range(ins.first, ins.last + 1):
                lines[k] = _PAIR.sub(f"{NVD}=void", lines[k])
    fixed = "".join(lines)
    if fixed == text:
        return DockerfileFix(text, False, f"the final stage already sets {NVD}=void")
    return DockerfileFix(fixed, True, f"set {NVD}=void where the final stage sets it")


def _pairs(args: str) -> list[str]:
    """The ``key=value`` words of an ENV (quotes respected, roughly as the parser splits them)."""
    return re.findall(r"(?:[^\s\"'=]+)=(?:\"(?:[^\"\\]|\\.)*\"|'[^']*'|(?:[^\s\"'\\]|\\.)*)", args)


_ARG_REF = re.compile(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}?")


def final_base_image(text: str) -> str | None:
    """The image the final stage builds on, with global ``ARG`` defaults substituted; None for no FROM.

    A final stage built on an earlier stage (``FROM build``) reports that stage's base, so the
    caller can tell whether the image descends from a CUDA (or other GPU-family) image.
    """
    args: dict[str, str] = {}
    stages: dict[str, str] = {}
    base: str | None = None
    for ins in instructions(text):
        if ins.keyword == "ARG" and base is None:
            name, _, default = ins.args.partition("=")
            args[name.strip()] = default.strip().strip("\"'")
        elif ins.keyword == "FROM":
            words = [w for w in ins.args.split() if not w.startswith("--")]
            if not words:
                continue
            image = _ARG_REF.sub(lambda m: args.get(m.group(1)) or m.group(2) or "", words[0])
            base = stages.get(image.lower(), image)
            if len(words) >= 3 and words[1].upper() == "AS":
                stages[words[2].lower()] = base
    return base
