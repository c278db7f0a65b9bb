"""The node's NVIDIA Container Toolkit, as the engine needs it to predict what each container gets.

The toolkit's ``config.toml`` is read with the same source and engine as
``gpuguard audit`` (``sources.toml_text`` then ``engine.toolkit.config``), so a
key misplaced under a ``[table]`` is ignored here exactly as the toolkit
ignores it.  The file is re-read only when its size or mtime changes: the
toolkit pod rewrites it on restart, and a scan every few seconds must not pay
for parsing an unchanged file.

The release is ``--toolkit-version`` when given; otherwise it is not known on
the node (the config file does not name it, and the agent runs no host binary),
so the most exposed common release is assumed and the report says so.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import cache

from gpuguard.engine.operator.profile import most_exposed_profile
from gpuguard.engine.toolkit.config import config_from_toml, default_config
from gpuguard.model.errors import InputError
from gpuguard.model.toolkit import Toolkit
from gpuguard.model.version import Version
from gpuguard.sources.toml_text import parse_toml

# Where the toolkit's config lives: the GPU Operator's install first, then a host install (research §3).
DEFAULT_CONFIG_PATHS = (
    "/usr/local/nvidia/toolkit/.config/nvidia-container-runtime/config.toml",
    "/etc/nvidia-container-runtime/config.toml",
)
MAX_CONFIG_BYTES = 1 << 20  # the shipped file is ~2 KiB; anything this big is not a toolkit config


@dataclass(frozen=True, slots=True)
class NodeToolkit:
    """The toolkit the engine predicts with, where it came from, and what was assumed or unreadable."""

    toolkit: Toolkit
    source: str  # "config.toml (/etc/...)" or "toolkit defaults (no config.toml)"
    notes: tuple[str, ...] = ()
    error: str | None = None  # the config file exists (or was named) but could not be read: a degraded source
    version_assumed: bool = False


@cache
def _most_exposed_toolkit() -> Toolkit:
    return most_exposed_profile().toolkit


class ToolkitReader:
    """Reads the config file at most once per change; ``read()`` never raises."""

    def __init__(self, config_path: str | None = None, version: str | None = None) -> None:
        self._explicit = config_path
        self._version_text = version
        self._version = Version.parse(version) if version else _most_exposed_toolkit().version
        self._stamp: tuple[str, int, int] | None = None
        self._last: NodeToolkit | None = None

    @staticmethod
    def check_version(text: str) -> None:
        """A bad ``--toolkit-version`` is a usage error, found before the first scan."""
        try:
            Version.parse(text)
        except ValueError as exc:
            raise InputError("--toolkit-version", str(exc)) from None

    def read(self) -> NodeToolkit:
        path = self._path()
        if path is None:
            return self._remember(None, self._defaults())
        try:
            st = os.stat(path)
        except OSError as exc:
            return self._remember(None, self._defaults(error=f"{path}: cannot read: {exc.strerror or exc}"))
        stamp = (path, st.st_size, st.st_mtime_ns)
        if stamp == self._stamp and self._last is not None:
            return self._last
        return self._remember(stamp, self._load(path))

    def _remember(self, stamp: tuple[str, int, int] | None, result: NodeToolkit) -> NodeToolkit:
        self._stamp, self._last = stamp, result
        return result

    def _path(self) -> str | None:
        if self._explicit is not None:
            return self._explicit
        return next((p for p in DEFAULT_CONFIG_PATHS if os.path.isfile(p)), None)

    def _version_notes(self) -> tuple[str, ...]:
        if self._version_text:
            return ()
        return (f"toolkit release not known on the node: assumed v{self._version} (the most exposed common "
                "release); give --toolkit-version",)

    def _defaults(self, error: str | None = None) -> NodeToolkit:
        base = _most_exposed_toolkit()
        toolkit = Toolkit(self._version, default_config(self._version), base.platform) if self._version_text else base
        note = "no toolkit config.toml read: predicted with the toolkit's built-in defaults"
        return NodeToolkit(toolkit, "toolkit defaults (no config.toml)", (note, *self._version_notes()), error,
                           not self._version_text)

    def _load(self, path: str) -> NodeToolkit:
        try:
            with open(path, "rb") as f:
                data = f.read(MAX_CONFIG_BYTES + 1)
        except OSError as exc:
            return self._defaults(error=f"{path}: cannot read: {exc.strerror or exc}")
        if len(data) > MAX_CONFIG_BYTES:
            return self._defaults(error=f"{path}: larger than {MAX_CONFIG_BYTES} bytes, not a toolkit config")
        try:
            doc = parse_toml(data.decode("utf-8"), path)
            config = config_from_toml(doc, self._version)
        except UnicodeDecodeError as exc:
            return self._defaults(error=f"{path}: not UTF-8 text: invalid byte at offset {exc.start}")
        except InputError as exc:
            return self._defaults(error=f"{path}: {exc.message}")
        base = _most_exposed_toolkit()
        notes = tuple(f"{path}: {k.why}" for k in config.ignored) + self._version_notes()
        return NodeToolkit(Toolkit(self._version, config, base.platform), f"config.toml ({path})", notes, None,
                           not self._version_text)
