"""Command-line inputs (files, ``-``, directories) listed cheaply and read in windows.

Directories are walked recursively in sorted order (reports are stable),
skipping hidden entries (``.git``, ``.cache``) and keeping files whose name
matches an ``--include`` glob and no ``--exclude`` glob.  Explicitly named
files are always read, whatever their name.  A path that does not exist or a
file that cannot be read becomes a :class:`ReadError`; the run goes on.

Files are listed first (:func:`list_inputs`) and read by :func:`read_windows`
in windows of about 1 MiB cut at ``---`` lines, so an audit can read every
input twice (a pre-scan for node settings, then the stream of workloads)
while holding only one window at a time, whatever the size of the stream.
Standard input is spooled to a temporary file (:func:`spool_stdin`) so that
it, too, can be read twice.
"""

from __future__ import annotations

import fnmatch
import os
import re
import sys
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import BinaryIO

from gpuguard.model.finding import Location, ReadError

DEFAULT_INCLUDE = ("*.yaml", "*.yml", "*.json", "*.toml", "*.yaml.tpl", "Dockerfile*", "*.Dockerfile")
MAX_BYTES = 32 * 1024 * 1024
WINDOW = 1024 * 1024
STDIN = "-"
STDIN_NAME = "<stdin>"  # how reports name standard input


@dataclass(frozen=True, slots=True)
class Input:
    """One input file: its bytes, or why it could not be read."""

    path: str
    data: bytes = b""
    error: ReadError | None = None


def list_inputs(
    paths: Sequence[str],
    *,
    include: Sequence[str] = (),
    exclude: Sequence[str] = (),
) -> tuple[list[str], list[ReadError]]:
    """The files ``paths`` name, directories expanded; missing paths become errors."""
    patterns = tuple(include) or DEFAULT_INCLUDE
    files: list[str] = []
    errors: list[ReadError] = []
    for path in paths:
        if path == STDIN:
            files.append(STDIN)
        elif os.path.isdir(path):
            files.extend(_walk(path, patterns, tuple(exclude)))
        elif os.path.exists(path):
            if not _excluded(path, tuple(exclude)):
                files.append(path)
        else:
            errors.append(ReadError("no such file or directory", Location(path)))
    return files, errors


def _walk(root: str, include: tuple[str, ...], exclude: tuple[str, ...]) -> Iterator[str]:
    for dirpath, dirnames, filenames in os.walk(root, onerror=None):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith(".") and not _excluded(d, exclude))
        for name in sorted(filenames):
            if name.startswith("."):
                continue
            path = os.path.join(dirpath, name)
            if _matches(name, path, include) and not _excluded(path, exclude):
                yield path


def _matches(name: str, path: str, patterns: Iterable[str]) -> bool:
    return any(fnmatch.fnmatch(name, p) or fnmatch.fnmatch(path, p) for p in patterns)


def _excluded(path: str, exclude: tuple[str, ...]) -> bool:
    if not exclude:
        return False
    name = os.path.basename(path.rstrip("/"))
    return _matches(name, path, exclude) or any(fnmatch.fnmatch(path, f"*/{p}/*") for p in exclude)


def spool_stdin() -> BinaryIO:
    """Standard input in a temporary file (in memory while small), so it can be read twice.

    Not capped: it is read back in windows, and each document has its own size limit.
    """
    spool = tempfile.SpooledTemporaryFile(max_size=WINDOW)  # noqa: SIM115 - the caller closes it
    while chunk := sys.stdin.buffer.read(WINDOW):
        spool.write(chunk)
    spool.seek(0)
    return spool  # type: ignore[return-value]


@dataclass(frozen=True, slots=True)
class Window:
    """A run of whole documents of one file: its bytes and the lines before it (0-based)."""

    line: int
    data: bytes
    json: bool = False


_JSON_START = re.compile(rb"[ \t\r\n]*(?:\xef\xbb\xbf)?[ \t\r\n]*[{\[]")
_AFTER_SEPARATOR = (b" ", b"\t", b"\r", b"\n")


def read_windows(
    path: str, *, stdin: BinaryIO | None = None, window: int = WINDOW, max_bytes: int = MAX_BYTES
) -> Iterator[Window | ReadError]:
    """A file in windows of about ``window`` bytes cut at ``---`` lines, so memory stays flat.

    JSON (and TOML) is one window: it cannot be cut.  A document larger than
    ``max_bytes`` ends the file with an error; so does a file that cannot be read.
    """
    name = STDIN_NAME if path == STDIN else path
    try:
        f: BinaryIO = stdin if path == STDIN and stdin is not None else open(path, "rb")  # noqa: SIM115
    except OSError as exc:
        yield ReadError(f"cannot read: {exc.strerror or exc}", Location(name))
        return
    if path == STDIN:
        f.seek(0)
    try:
        yield from _windows(f, name, path.endswith(".toml"), window, max_bytes)
    except OSError as exc:
        yield ReadError(f"cannot read: {exc.strerror or exc}", Location(name))
    finally:
        if f is not stdin:
            f.close()


def _windows(f: BinaryIO, name: str, whole: bool, window: int, max_bytes: int) -> Iterator[Window | ReadError]:
    pending = f.read(window)
    if whole or _JSON_START.match(pending):
        pending += f.read(max_bytes + 1 - len(pending))
        if len(pending) > max_bytes:
            yield _too_big(name, max_bytes)
            return
        yield Window(0, pending, json=not whole)
        return
    line = 0
    eof = False
    while pending or not eof:
        chunk = b"" if eof else f.read(window)
        eof = eof or not chunk
        pending += chunk
        if eof:
            out, pending = pending, b""
        else:
            cut = _last_separator(pending)
            if cut <= 0:
                if len(pending) > max_bytes:
                    yield _too_big(name, max_bytes, line)
                    return
                continue
            out, pending = pending[:cut], pending[cut:]
        if out:
            yield Window(line, out)
            line += out.count(b"\n")


def _last_separator(data: bytes) -> int:
    """Where the last ``---`` line starts (0 when none can be cut at safely)."""
    end = len(data)
    while True:
        pos = data.rfind(b"\n---", 0, end)
        if pos < 0:
            return 0
        after = data[pos + 4 : pos + 5]
        # A directive (%YAML, %TAG) before it belongs to the next document: cut elsewhere.
        if after in _AFTER_SEPARATOR and data.rfind(b"\n%", max(0, pos - 512), pos) < 0:
            return pos + 1
        end = pos


def _too_big(name: str, max_bytes: int, line: int = 0) -> ReadError:
    where = f" (from line {line + 1})" if line else ""
    return ReadError(f"a document larger than the limit of {max_bytes // (1024 * 1024)} MiB{where}; "
                     "the rest of the file was not read", Location(name, line + 1 if line else None))


def read_input(path: str, *, stdin: bytes | None = None, max_bytes: int = MAX_BYTES) -> Input:
    """Read one file (``-``: the given stdin bytes, or standard input)."""
    if path == STDIN:
        data = stdin if stdin is not None else sys.stdin.buffer.read(max_bytes + 1)
        return _sized(STDIN_NAME, data, max_bytes)
    try:
        with open(path, "rb") as f:
            data = f.read(max_bytes + 1)
    except OSError as exc:
        return Input(path, error=ReadError(f"cannot read: {exc.strerror or exc}", Location(path)))
    return _sized(path, data, max_bytes)


def _sized(path: str, data: bytes, max_bytes: int) -> Input:
    if len(data) > max_bytes:
        message = f"larger than the limit of {max_bytes // (1024 * 1024)} MiB; not read"
        return Input(path, error=ReadError(message, Location(path)))
    return Input(path, data)
