"""Dockerfile syntax: the logical instructions of a Dockerfile, as BuildKit's parser splits them.

Shared by the Dockerfile audit (which evaluates stages) and the Dockerfile fixer (which edits
lines), so that both agree on where an instruction starts and ends: parser directives
(``# escape=``) only at the very top and each once, comments, line continuations (comment and
empty lines inside them dropped), and heredoc bodies of ``RUN``/``COPY``/``ADD``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_DIRECTIVE = re.compile(r"^#\s*([A-Za-z][A-Za-z0-9_-]*)\s*=\s*(.*?)\s*$")
_HEREDOC = re.compile(r"<<(-?)([\"']?)([A-Za-z_][A-Za-z0-9_.-]*)\2")
_HEREDOC_KEYWORDS = frozenset({"RUN", "COPY", "ADD"})


@dataclass(frozen=True, slots=True)
class Instruction:
    """One logical instruction: keyword (upper-case), arguments, 1-based first and last physical line."""

    keyword: str
    args: str
    line: int
    last: int


def instructions(text: str) -> tuple[list[Instruction], str]:
    """The logical instructions of ``text`` and its escape character."""
    lines = text.splitlines()
    escape = "\\"
    n = 0
    seen: set[str] = set()
    while n < len(lines):  # parser directives: only before anything else, each once
        m = _DIRECTIVE.match(lines[n])
        if not m or m.group(1).lower() in seen:
            break
        seen.add(m.group(1).lower())
        if m.group(1).lower() == "escape" and m.group(2) in ("\\", "`"):
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
                while n < len(lines) and (not lines[n].strip() or lines[n].strip().startswith("#")):
                    n += 1  # comment and empty lines inside a continuation are dropped
                if n >= len(lines):
                    n -= 1
                    break
                continue
            parts.append(body)
            break
        logical = "".join(parts).strip()
        keyword, _, args = logical.partition(" ")
        if not args and "\t" in keyword:
            keyword, _, args = keyword.partition("\t")
        keyword = keyword.upper()
        if keyword in _HEREDOC_KEYWORDS:
            for strip_tabs, _quote, word in _HEREDOC.findall(args):
                n += 1
                while n < len(lines) and (lines[n].lstrip("\t") if strip_tabs else lines[n]) != word:
                    n += 1
        out.append(Instruction(keyword, args.strip(), first + 1, min(n, len(lines) - 1) + 1))
        n += 1
    return out, escape
