"""The NVIDIA Container Toolkit's own logs: which containers' device requests it honoured or ignored.

The runtime logs (logrus, text or JSON) where ``[nvidia-container-runtime] debug``
points, the CLI (libnvidia-container, glog style) where ``[nvidia-container-cli]
debug`` points, and under systemd the runtime's stderr lands in containerd's
journal. A runtime invocation names its container only once, in the bundle
path (``Using bundle directory: .../k8s.io/<id>``, ``runc create --bundle
.../<id>``, the CLI's ``setting rootfs to .../<id>/rootfs``), so later lines of
the same invocation inherit that id. Only the tail of each file is read, and
logs are input from the node: anything unreadable is skipped, never fatal.
"""

from __future__ import annotations

import errno
import os
import re
import shutil
import stat
import subprocess
from collections.abc import Iterable, Sequence

import orjson

from gpuguard.model.observed import ToolkitLogEntry
from gpuguard.sources.node.errors import NodeSourceError

_ID = r"([A-Za-z0-9][A-Za-z0-9_.-]{0,127})"
# Lines that name the container an invocation works on (its OCI bundle directory or rootfs).
_NAMES = (
    re.compile(r"--bundle[= ]\S*/" + _ID + r"/?(?:\s|$)"),
    re.compile(r"[Uu]sing bundle directory: \S*/" + _ID + r"/?\s*$"),
    re.compile(r"OCI specification file path: \S*/" + _ID + r"/config\.json"),
    re.compile(r"setting rootfs to \S*/" + _ID + r"/rootfs/?\s*$"),
)
_NEW_INVOCATION = ("initializing library context", "Create command detected")
# (message fragment, honoured): the toolkit's own wording, newest releases first.
_VERDICTS: tuple[tuple[str, bool | None], ...] = (
    ("Ignoring devices requested by environment variable", False),  # runtime >= 1.17 privilege gate
    ("Ignoring request by environment variable", False),  # the same gate for IMEX channels
    ("Ignoring devices specified in NVIDIA_VISIBLE_DEVICES", False),  # runtime and hook before 1.17
    ("could not resolve CDI devices", False),
    ("unresolvable CDI devices", False),
    ("failed to inject CDI devices", False),
    ("could not apply required modification to OCI specification", False),
    ("Injecting devices using CDI", True),
    ("Creating CDI modifier for devices", True),
    ("Using automatic CDI modfier for devices", True),  # sic, the toolkit's spelling
    ("Using automatic CDI modifier for devices", True),
    ("No devices requested; no modification required", None),
    ("No modification required; no devices requested", None),
)
_DEVICE_NODE = re.compile(r"^(?:Injecting /dev/nvidia\d+\b|mounting /dev/nvidia\d+ |whitelisting device node 195:\d+)")
# Any line that can matter contains one of these: the rest are skipped before being split into fields.
_TRIGGER = re.compile(
    "|".join(re.escape(t) for t in ("--bundle", "bundle directory", "specification file path", "setting rootfs",
                                     *_NEW_INVOCATION, *(f for f, _ in _VERDICTS), "Injecting /dev/nvidia",
                                     "mounting /dev/nvidia", "whitelisting device node"))
)  # fmt: skip
_LOGRUS = re.compile(r'(\w+)=("(?:[^"\\]|\\.)*"|\S*)')
_GLOG = re.compile(r"^[IWEF](\d{4} \d\d:\d\d:\d\d\.\d+)\s+\d+\s+[^\]]*\]\s?(.*)$")
_STDLOG = re.compile(r"^(\d{4}/\d\d/\d\d \d\d:\d\d:\d\d(?:\.\d+)?) (.*)$")


def read_toolkit_log(paths: Sequence[str], *, max_bytes: int = 8 << 20) -> tuple[ToolkitLogEntry, ...]:
    """Entries about device requests from the last ``max_bytes`` of each log file.

    A missing or rotated-away file gives nothing. Raises ``NodeSourceError("toolkit-log", ...)``
    only when no file could be read and one exists but cannot be (permission, a directory).
    """
    out: list[ToolkitLogEntry] = []
    failures: list[str] = []
    read_any = False
    for path in paths:
        try:
            data = _tail(path, max_bytes)
        except OSError as e:
            if e.errno not in (errno.ENOENT, errno.ENOTDIR):
                failures.append(f"{path}: {e.strerror or e}")
            continue
        read_any = True
        out += parse_lines(data.decode("utf-8", errors="replace").splitlines())
    if failures and not read_any:
        raise NodeSourceError("toolkit-log", "; ".join(failures))
    return tuple(out)


def _tail(path: str, max_bytes: int) -> bytes:
    if not stat.S_ISREG(os.stat(path).st_mode):  # a FIFO would block the scan, a device never end
        raise OSError(errno.EINVAL, "not a regular file", path)
    with open(path, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        start = max(0, size - max(0, max_bytes))
        f.seek(start)
        data = f.read(max(0, max_bytes))
    if start > 0:  # the first line is cut: drop it rather than misread half a line
        cut = data.find(b"\n")
        data = data[cut + 1 :] if cut >= 0 else b""
    return data


def journal_entries(unit: str = "containerd", since: str | None = None) -> tuple[ToolkitLogEntry, ...]:
    """Entries from a systemd unit's journal (the runtime's stderr); () when journalctl is absent."""
    journalctl = shutil.which("journalctl")
    if journalctl is None:
        return ()
    args = [journalctl, "--unit", unit, "--output", "json", "--no-pager", "--lines", "20000"]
    if since is not None:
        args += ["--since", since]
    try:
        done = subprocess.run(args, capture_output=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise NodeSourceError("journal", f"journalctl --unit {unit}: {e}") from None
    if done.returncode != 0:
        why = done.stderr.decode("utf-8", errors="replace").strip()[:300]
        raise NodeSourceError("journal", f"journalctl --unit {unit} exited {done.returncode}: {why}")
    lines: list[str] = []
    for raw in done.stdout.splitlines():
        try:
            record = orjson.loads(raw)
        except orjson.JSONDecodeError:
            continue
        message = record.get("MESSAGE") if isinstance(record, dict) else None
        if isinstance(message, list):  # journald gives non-UTF-8 messages as a byte array
            message = bytes(b for b in message if isinstance(b, int) and 0 <= b < 256).decode("utf-8", "replace")
        if isinstance(message, str):
            lines += message.splitlines()
    return parse_lines(lines)


def parse_lines(lines: Iterable[str]) -> tuple[ToolkitLogEntry, ...]:
    """Entries from log lines in order; each inherits the container named last by its invocation."""
    out: list[ToolkitLogEntry] = []
    current: str | None = None
    for line in lines:
        if _TRIGGER.search(line) is None:
            continue
        time, message = _split(line)
        if any(marker in message for marker in _NEW_INVOCATION):
            current = None
        for pattern in _NAMES:
            named = pattern.search(message)
            if named is not None:
                current = named.group(1)
                break
        relevant, honoured = _verdict(message)
        if relevant:
            out.append(ToolkitLogEntry(current, time, message.strip(), honoured))
    return tuple(out)


def _verdict(message: str) -> tuple[bool, bool | None]:
    """(whether the line is about a device request, whether it was honoured)."""
    for fragment, honoured in _VERDICTS:
        if fragment in message:
            return True, honoured
    if _DEVICE_NODE.match(message.strip()):
        return True, True
    return False, None


def _split(line: str) -> tuple[str, str]:
    """(time, message) of one line in any of the toolkit's formats; unknown lines are all message."""
    text = line.strip()
    if text.startswith("{"):
        try:
            record = orjson.loads(text)
        except orjson.JSONDecodeError:
            record = None
        if isinstance(record, dict) and isinstance(record.get("msg"), str):
            return str(record.get("time", "")), record["msg"]
    if "msg=" in text:
        fields = {k: _unquote(v) for k, v in _LOGRUS.findall(text)}
        if "msg" in fields:
            return fields.get("time", ""), fields["msg"]
    for pattern in (_GLOG, _STDLOG):
        m = pattern.match(text)
        if m is not None:
            return m.group(1), m.group(2)
    return "", text


def _unquote(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] == '"':
        return re.sub(r"\\(.)", r"\1", value[1:-1])
    return value
