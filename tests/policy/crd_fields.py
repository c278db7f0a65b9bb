"""The field tree of a CRD-generated ``.d.ts`` from @kubernetes-models: what the API server would not prune.

The JavaScript validators check types, enums and required fields but let
unknown fields through, as the CRD's schema does; the API server prunes them
silently. This reads the interface's properties (one per line, nested by
indentation) so a test can name any field of an export that Kyverno's CRD does
not know.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

_PROP = re.compile(r'^(\s*)"([^"]+)"\??: (.*)$')
FREE = "*"  # any value: `any`, or a map with arbitrary keys


def field_tree(dts: Path, interface: str) -> dict[str, Any]:
    """``{field: subtree | FREE | None}`` of ``export interface <interface>``; None is a scalar."""
    lines = dts.read_text(encoding="utf-8").splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(f"export interface {interface} "))
    root: dict[str, Any] = {}
    stack: list[tuple[int, dict[str, Any]]] = [(-1, root)]
    for line in lines[start + 1 :]:
        if line.startswith("}"):
            break
        m = _PROP.match(line)
        if m is None:
            continue
        indent, name, rest = len(m.group(1)), m.group(2), m.group(3)
        while stack[-1][0] >= indent:
            stack.pop()
        parent = stack[-1][1]
        if rest.startswith(("any", "{\n", "{ [")) or "[key: string]" in rest:
            parent[name] = FREE
        elif rest.endswith("{"):
            child: dict[str, Any] = {}
            parent[name] = child
            stack.append((indent, child))
        else:
            parent[name] = None
    return root


def unknown_fields(doc: Any, tree: Any, path: str = "") -> list[str]:
    """Paths in ``doc`` that ``tree`` does not declare."""
    if tree is FREE or tree is None:
        return []
    if isinstance(doc, list):
        return [p for i, item in enumerate(doc) for p in unknown_fields(item, tree, f"{path}[{i}]")]
    if not isinstance(doc, dict):
        return []
    out = []
    for key, value in doc.items():
        if key not in tree:
            out.append(f"{path}.{key}")
        else:
            out += unknown_fields(value, tree[key], f"{path}.{key}")
    return out
