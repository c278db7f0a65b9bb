"""Go's lexical path functions, as the toolkit and the device plugin apply them to mount paths."""

from __future__ import annotations


def clean(path: str) -> str:
    """Go's ``filepath.Clean`` for POSIX paths (lexical; ``//a`` -> ``/a``, ``a/..`` -> ``.``)."""
    if path and path[0] == "/" and "//" not in path and "/." not in path and path[-1] != "/":
        return path  # fast path: already clean
    if path == "":
        return "."
    rooted = path[0] == "/"
    out: list[str] = []
    for part in path.split("/"):
        if part in {"", "."}:
            continue
        if part == "..":
            if out and out[-1] != "..":
                out.pop()
            elif not rooted:
                out.append("..")
            continue
        out.append(part)
    cleaned = "/".join(out)
    if rooted:
        return "/" + cleaned
    return cleaned or "."


def join(root: str, *parts: str) -> str:
    """Go's ``filepath.Join``: join the non-empty parts with ``/``, then clean."""
    return clean("/".join(p for p in (root, *parts) if p))
