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

from gpuguard.syntax.dockerfile import Instruction, instructions

NVD = "NVIDIA_VISIBLE_DEVICES"
LINE = f"ENV {NVD}=void"

_PAIR = re.compile(rf"(?<![\w$]){NVD}=(?P<value>\"(?:[^\"\\]|\\.)*\"|'[^']*'|(?:[^\s\"'\\]|\\.)*)")


@dataclass(frozen=True, slots=True)
class DockerfileFix:
    text: str
    changed: bool
    why: str


def _sets_nvd(ins: Instruction) -> bool:
    if ins.keyword != "ENV":
        return False
    head = ins.args.split(None, 1)[0] if ins.args else ""
    return head == NVD or _PAIR.search(ins.args) is not None


def set_void(text: str) -> DockerfileFix:
    """Add or rewrite ``ENV NVIDIA_VISIBLE_DEVICES=void`` in the final stage; idempotent."""
    steps, _ = instructions(text)
    froms = [i for i, ins in enumerate(steps) if ins.keyword == "FROM"]
    if not froms:
        return DockerfileFix(text, False, "no FROM instruction: not a Dockerfile")
    stage = steps[froms[-1] :]
    lines = text.splitlines(keepends=True)
    nl = "\r\n" if "\r\n" in text else "\n"
    existing = [ins for ins in stage if _sets_nvd(ins)]
    if not existing:
        at = min(stage[0].last, len(lines))  # the line after the FROM (``last`` is 1-based)
        if at == len(lines) and lines and not lines[-1].endswith(("\n", "\r")):
            lines[-1] += nl
        lines.insert(at, LINE + nl)
        return DockerfileFix("".join(lines), True, f"added {LINE} after the last FROM (line {stage[0].line})")
    for ins in reversed(existing):
        head, _, rest = ins.args.partition(" ")
        if head == NVD:
            value = rest.strip()
        else:
            values = [m.group("value") for m in _PAIR.finditer(ins.args)]
            value = values[-1] if len(set(values)) == 1 else ""
        if value.strip("\"'") == "void":
            continue
        first, last = ins.line - 1, ins.last - 1  # 0-based physical lines
        if head == NVD or (head.startswith(f"{NVD}=") and len(_pairs(ins.args)) == 1):
            end = lines[last][len(lines[last].rstrip("\r\n")) :]
            keyword = lines[first].lstrip()[:3]
            indent = lines[first][: len(lines[first]) - len(lines[first].lstrip())]
            lines[first : last + 1] = [f"{indent}{keyword} {NVD}=void{end}"]
        else:
            for k in range(first, last + 1):
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
    for ins in instructions(text)[0]:
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
