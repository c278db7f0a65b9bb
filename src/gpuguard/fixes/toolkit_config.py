"""Put toolkit keys at the top level of ``config.toml``, where the toolkit reads them.

A key belongs to the most recent ``[table]`` header above it, and unknown
keys are ignored silently: ``accept-nvidia-visible-devices-envvar-when-unprivileged = false``
appended to the shipped file lands in ``[nvidia-ctk]`` and does nothing. The
corrected file drops the misplaced lines, sets the key in the root table
(above the first header) and keeps every other byte, comments included. The
equivalent ``nvidia-ctk config --set KEY=VALUE --in-place`` command is given
too; it rewrites the whole file (comments are lost) but needs no editor.
"""

from __future__ import annotations

import json
import re
import shlex
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass

DEFAULT_PATH = "/etc/nvidia-container-runtime/config.toml"
OPERATOR_PATH = "/usr/local/nvidia/toolkit/.config/nvidia-container-runtime/config.toml"

# Keys the toolkit reads only from the root table (toolkit_semantics.md §2).
TOP_LEVEL_KEYS = (
    "accept-nvidia-visible-devices-envvar-when-unprivileged",
    "accept-nvidia-visible-devices-as-volume-mounts",
    "swarm-resource",
    "supported-driver-capabilities",
    "disable-require",
)
# The GPU Operator toolkit env that writes each key.
ENV_TO_KEY = {
    "ACCEPT_NVIDIA_VISIBLE_DEVICES_ENVVAR_WHEN_UNPRIVILEGED": "accept-nvidia-visible-devices-envvar-when-unprivileged",
    "ACCEPT_NVIDIA_VISIBLE_DEVICES_AS_VOLUME_MOUNTS": "accept-nvidia-visible-devices-as-volume-mounts",
}

Value = bool | int | str

_HEADER = re.compile(r"^[ \t]*\[\[?[ \t]*(?P<name>[^\]]*?)[ \t]*\]")
_KEY = re.compile(r"""^[ \t]*(?P<key>[A-Za-z0-9_-]+|"[^"]*"|'[^']*')[ \t]*=""")


class TomlError(ValueError):
    """The text is not TOML; a corrected file cannot be produced from it."""


@dataclass(frozen=True, slots=True)
class ConfigFix:
    text: str
    command: str
    moved: tuple[str, ...] = ()  # "<table>.<key>" lines removed from a table
    changed: bool = False


def toml_value(value: Value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    return json.dumps(value)  # a TOML basic string: same escapes for what config.toml holds


def misplaced(text: str) -> dict[str, Value]:
    """Top-level keys written under a table, with their values (the last one wins, as it would at root)."""
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise TomlError(f"invalid TOML: {exc}") from None
    found: dict[str, Value] = {}
    for table in doc.values():
        if isinstance(table, dict):
            for key in TOP_LEVEL_KEYS:
                if key in table and isinstance(table[key], (bool, int, str)):
                    found[key] = table[key]
    return found


def set_top_level(text: str, keys: Mapping[str, Value], path: str = DEFAULT_PATH) -> ConfigFix:
    """The corrected file and the ``nvidia-ctk`` command that sets the same keys."""
    try:
        tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise TomlError(f"invalid TOML: {exc}") from None
    lines = text.splitlines(keepends=True)
    nl = "\r\n" if "\r\n" in text else "\n"
    table: str | None = None
    first_header: int | None = None
    drop: set[int] = set()
    moved: list[str] = []
    root_at: dict[str, int] = {}
    for n, kind, name in _scan(lines):
        if kind == "header":
            table = name
            if first_header is None:
                first_header = n
        elif kind == "key" and name in keys:
            if table is None:
                root_at[name] = n
            else:
                drop.add(n)
                moved.append(f"{table}.{name}")
    out = [line for i, line in enumerate(lines) if i not in drop]
    # Map old line numbers to new ones after the drops.
    shift = {i: i - sum(1 for d in drop if d < i) for i in range(len(lines) + 1)}
    inserts: list[str] = []
    for key, value in keys.items():
        line = f"{key} = {toml_value(value)}"
        if key in root_at:
            i = shift[root_at[key]]
            if out[i].split("#", 1)[0].strip() != line:
                out[i] = line + (nl if out[i].endswith(("\n", "\r")) else "")
        else:
            inserts.append(line + nl)
    if inserts:
        if first_header is None:
            at = len(out)
            if out and not out[-1].endswith(("\n", "\r")):
                out[-1] += nl
        else:
            at = shift[first_header]
            while at > 0 and not out[at - 1].strip():
                at -= 1
            if at == 0:
                inserts.append(nl)
        out[at:at] = inserts
    fixed = "".join(out)
    return ConfigFix(fixed, nvidia_ctk_command(keys, path), tuple(moved), fixed != text)


def nvidia_ctk_command(keys: Mapping[str, Value], path: str = DEFAULT_PATH) -> str:
    """``nvidia-ctk config --set KEY=VALUE ... --in-place`` (``--config`` when not the default file)."""
    parts = ["nvidia-ctk", "config"]
    if path != DEFAULT_PATH:
        parts += ["--config", shlex.quote(path)]
    for key, value in keys.items():
        raw = toml_value(value) if isinstance(value, (bool, int)) else str(value)
        parts += ["--set", shlex.quote(f"{key}={raw}")]
    parts.append("--in-place")
    return " ".join(parts)


def _scan(lines: list[str]) -> list[tuple[int, str, str]]:
    """Headers and keys with their line numbers, skipping multi-line strings and arrays."""
    out: list[tuple[int, str, str]] = []
    in_string: str | None = None
    depth = 0
    for n, raw in enumerate(lines):
        line = raw.rstrip("\r\n")
        if in_string:
            if in_string in line:
                in_string = None
            continue
        if depth > 0:
            depth += _bracket_balance(line)
            continue
        header = _HEADER.match(line)
        if header:
            out.append((n, "header", header.group("name")))
            continue
        m = _KEY.match(line)
        if m is None:
            continue
        out.append((n, "key", m.group("key").strip("\"'")))
        rest = line[m.end() :]
        for quote in ('"""', "'''"):
            if rest.count(quote) == 1:
                in_string = quote
        if in_string is None:
            depth = max(0, _bracket_balance(rest))
    return out


def _bracket_balance(text: str) -> int:
    """Opening minus closing brackets outside strings and comments."""
    balance = 0
    quote: str | None = None
    for ch in text:
        if quote:
            if ch == quote:
                quote = None
        elif ch in "\"'":
            quote = ch
        elif ch == "#":
            break
        elif ch == "[":
            balance += 1
        elif ch == "]":
            balance -= 1
    return balance
