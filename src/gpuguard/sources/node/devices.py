"""The NVIDIA device nodes a container really holds, and the GPUs the driver lists.

Ground truth is what exists in the container's ``/dev``: the runtime created
those nodes, whatever the spec or the toolkit claimed.  We read it through
``/proc/<pid>/root`` with ``lstat`` only: nodes are never opened, symlinks are
never followed (a container controls its own ``/dev`` and could point a link at
the host's), and directories are opened with ``O_NOFOLLOW`` relative to their
parent.
"""

from __future__ import annotations

import errno
import os
import re
import stat
from collections.abc import Iterator, Mapping

from gpuguard.model.observed import GPU_MINOR_MAX, NVIDIA_MAJOR, DeviceNode, HeldDevices, NodeGpu
from gpuguard.sources.node.errors import NodeSourceError

CONTROL_MINOR = 255  # nvidiactl
MODESET_MINOR = GPU_MINOR_MAX  # nvidia-modeset
_CAPS_DIRS = ("nvidia-caps/", "nvidia-caps-imex-channels/")  # MIG/IMEX capability nodes live here
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_MAX_ENTRIES = 100_000  # a /dev larger than this is not a real one; stop reading
_MAX_DEPTH = 8


def classify(path: str, major: int, minor: int, majors: Mapping[str, int] | None = None) -> DeviceNode | None:
    """The NVIDIA kind of a character device under ``/dev``, or None when it is not NVIDIA's.

    Major 195 is decided by numbers alone (a renamed node grants the same GPU);
    ``nvidia-uvm`` and the capability nodes have dynamic majors, so they are
    known by name, or by the node's ``/proc/devices`` majors when given.
    """
    name = path.rsplit("/", 1)[-1]
    if major == NVIDIA_MAJOR:
        kind = "control" if minor == CONTROL_MINOR else "modeset" if minor == MODESET_MINOR else "gpu"
        return DeviceNode(path, major, minor, kind)
    known = majors or {}
    if name.startswith("nvidia-uvm") or major in (known.get("nvidia-uvm"), known.get("nvidia-uvm-tools")):
        return DeviceNode(path, major, minor, "uvm")
    if path.startswith(_CAPS_DIRS) or major in (known.get("nvidia-caps"), known.get("nvidia-caps-imex-channels")):
        return DeviceNode(path, major, minor, "caps")
    if name.startswith("nvidia") or any(major == m for d, m in known.items() if d.startswith("nvidia")):
        return DeviceNode(path, major, minor, "other")
    return None


def node_majors(proc_root: str = "/proc") -> dict[str, int]:
    """The node's character-device majors by driver name (``/proc/devices``), NVIDIA's only."""
    try:
        with open(os.path.join(proc_root, "devices"), encoding="utf-8", errors="replace") as f:
            text = f.read(1 << 20)
    except OSError as e:
        raise NodeSourceError("devices", f"{proc_root}/devices: {e.strerror or e}") from None
    majors: dict[str, int] = {}
    for line in text.split("Block devices:", 1)[0].splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[0].isascii() and parts[0].isdigit() and parts[1].startswith("nvidia"):
            majors[parts[1]] = int(parts[0])
    return majors


class _Budget:
    """Bounds one scan: a container controls its /dev and could fill it."""

    def __init__(self) -> None:
        self.left = _MAX_ENTRIES

    def take(self, prefix: str) -> None:
        self.left -= 1
        if self.left < 0:
            raise OSError(f"more than {_MAX_ENTRIES} entries under /dev/{prefix}")


def _entries(dir_fd: int, prefix: str, majors: Mapping[str, int] | None, budget: _Budget) -> Iterator[DeviceNode]:
    """Char devices under one directory, recursing into real subdirectories (symlinks are never followed)."""
    with os.scandir(dir_fd) as it:
        for entry in it:
            budget.take(prefix)
            path = prefix + entry.name
            if entry.is_dir(follow_symlinks=False):
                if prefix.count("/") >= _MAX_DEPTH:
                    raise OSError(f"/dev/{path} is nested deeper than {_MAX_DEPTH}")
                try:
                    sub = os.open(entry.name, _DIR_FLAGS, dir_fd=dir_fd)
                except FileNotFoundError:
                    continue
                try:
                    yield from _entries(sub, path + "/", majors, budget)
                finally:
                    os.close(sub)
                continue
            try:  # lstat even "regular files": a node bind-mounted over one keeps the file's d_type
                st = entry.stat(follow_symlinks=False)
            except FileNotFoundError:
                continue  # removed while we read: it is not held any more
            if stat.S_ISCHR(st.st_mode):
                node = classify(path, os.major(st.st_rdev), os.minor(st.st_rdev), majors)
                if node is not None:
                    yield node


def held_devices(
    container_id: str, pid: int, proc_root: str = "/proc", *, majors: Mapping[str, int] | None = None
) -> HeldDevices:
    """The NVIDIA nodes in the ``/dev`` of the container whose init process is ``pid``, subdirectories included.

    A process that is gone (or unreadable) gives ``HeldDevices(error=...)``: not
    scanned, never clean.  A ``/dev`` that is a symlink is refused, not followed.
    """
    where = f"{proc_root}/{pid}/root/dev"
    try:
        root = os.open(os.path.join(proc_root, str(pid), "root"), _DIR_FLAGS & ~os.O_NOFOLLOW)
        try:
            dev = os.open("dev", _DIR_FLAGS, dir_fd=root)
        finally:
            os.close(root)
        try:
            nodes = tuple(sorted(_entries(dev, "", majors, _Budget()), key=lambda n: n.path))
        finally:
            os.close(dev)
    except OSError as e:
        return HeldDevices(container_id, error=f"{where}: {_why(e)}")
    return HeldDevices(container_id, nodes)


def _why(e: OSError) -> str:
    if isinstance(e, FileNotFoundError):
        return "process or /dev is gone"
    if e.errno in (errno.ELOOP, errno.ENOTDIR):
        return "not a directory (a symlink is not followed)"
    return e.strerror or str(e)


_FIELD = re.compile(r"^([^:\n]+?)[ \t]*:[ \t]*(.*?)[ \t\r]*$", re.MULTILINE)


def parse_information(text: str) -> dict[str, str]:
    """The ``Key: value`` fields of a driver ``information`` file (first occurrence of a key wins)."""
    fields: dict[str, str] = {}
    for m in _FIELD.finditer(text):
        fields.setdefault(m.group(1).strip(), m.group(2))
    return fields


def _gpu(path: str, fields: Mapping[str, str]) -> NodeGpu:
    minor_text, uuid = fields.get("Device Minor", ""), fields.get("GPU UUID", "")
    if not (minor_text.isascii() and minor_text.isdigit()) or int(minor_text) > GPU_MINOR_MAX:
        raise NodeSourceError("driver", f"{path}: 'Device Minor' is {minor_text!r}, not a GPU minor")
    if not uuid.startswith("GPU-"):
        raise NodeSourceError("driver", f"{path}: 'GPU UUID' is {uuid!r}, not GPU-...")
    return NodeGpu(int(minor_text), uuid, fields.get("Bus Location", ""), fields.get("Model", ""))


def node_gpus(driver_root: str = "/proc/driver/nvidia") -> tuple[NodeGpu, ...]:
    """Every GPU the driver lists, by minor; raises NodeSourceError naming the file it could not read."""
    gpus_dir = os.path.join(driver_root, "gpus")
    try:
        bus_ids = sorted(os.listdir(gpus_dir))
    except OSError as e:
        raise NodeSourceError("driver", f"{gpus_dir}: {e.strerror or e}") from None
    gpus = []
    for bus_id in bus_ids:
        path = os.path.join(gpus_dir, bus_id, "information")
        try:
            with open(path, encoding="utf-8", errors="replace") as f:
                text = f.read(1 << 16)
        except OSError as e:
            raise NodeSourceError("driver", f"{path}: {e.strerror or e}") from None
        gpus.append(_gpu(path, parse_information(text)))
    return tuple(sorted(gpus, key=lambda g: g.minor))
