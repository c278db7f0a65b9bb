"""A real containerd (with runc) for node-agent tests, with emulated NVIDIA device nodes.

One containerd per test session in a temp dir (own root, state and sockets,
CRI plugin off), containers from a busybox-static rootfs with OCI specs
written here (as the CRI plugin and the toolkit would write them), GPU
device nodes made with ``mknod`` (never opened: no driver is needed) and an
emulated ``/proc/driver/nvidia`` tree.

Privileged containers get the host's devices, so the emulated nodes are also
made in the host's ``/dev`` when the host has no NVIDIA driver; sessions
running at the same time share them through a lock and a list of owners, and
the last one out removes them.
"""

from __future__ import annotations

import contextlib
import fcntl
import gzip
import hashlib
import io
import os
import platform
import shutil
import signal
import stat
import subprocess
import tarfile
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import NamedTuple

import grpc
import orjson

NAMESPACE = "k8s.io"
GPU_MINORS = (0, 1, 2, 3)
NVIDIA_MAJOR = 195
CTL_MINOR = 255
BUSYBOX = "/bin/busybox"
IMAGE = "registry.test/gpuguard/busybox:1"  # built here from BUSYBOX and imported: what run() containers use
SNAPSHOTTER = "overlayfs"
RUNC = "io.containerd.runc.v2"
_APPLETS = ("sh", "sleep", "ls", "cat", "true")
_SPEC_TYPE = "types.containerd.io/opencontainers/runtime-spec/1/Spec"
_PREFIX = "gpuguard-ctrd-"
_RUNC_ROOT = "/run/containerd/runc"  # where the runc shim keeps container state, per namespace
_SHARED_DEV = "/run/gpuguard-test-devices"  # lock file and owner list for the host /dev nodes
_DEFAULT_CAPS = (  # containerd's default bounding set (oci/spec.go defaultUnixCaps)
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW", "CAP_SETGID",
    "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT", "CAP_KILL",
    "CAP_AUDIT_WRITE",
)
_CAPS_BY_BIT = (  # capabilities(7), by bit number
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_FSETID", "CAP_KILL", "CAP_SETGID",
    "CAP_SETUID", "CAP_SETPCAP", "CAP_LINUX_IMMUTABLE", "CAP_NET_BIND_SERVICE", "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_IPC_LOCK", "CAP_IPC_OWNER", "CAP_SYS_MODULE", "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT", "CAP_SYS_PTRACE", "CAP_SYS_PACCT", "CAP_SYS_ADMIN", "CAP_SYS_BOOT", "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE", "CAP_SYS_TIME", "CAP_SYS_TTY_CONFIG", "CAP_MKNOD", "CAP_LEASE", "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL", "CAP_SETFCAP", "CAP_MAC_OVERRIDE", "CAP_MAC_ADMIN", "CAP_SYSLOG", "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ", "CAP_PERFMON", "CAP_BPF", "CAP_CHECKPOINT_RESTORE",
)
_SKIP_HOST_DIRS = {"pts", "shm", "fd", "mqueue", ".lxc", ".lxd-mounts", ".udev"}  # containerd's HostDevices


class RunningContainer(NamedTuple):
    id: str
    pid: int | None


class HarnessError(RuntimeError):
    """containerd or ctr did not do what the harness asked."""


def unavailable() -> str | None:
    """Why a real containerd cannot run here (a skip reason), or None."""
    if os.geteuid() != 0:
        return "containerd tests need root (mknod, runc)"
    for tool in ("containerd", "ctr", "runc", "containerd-shim-runc-v2"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed (Debian package containerd / runc)"
    if not os.path.exists(BUSYBOX):
        return f"{BUSYBOX} is missing (Debian package busybox-static)"
    return None


def wait_for(condition: Callable[[], bool], what: str, timeout: float = 20.0) -> None:
    """Poll ``condition`` until true; raise naming ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    delay = 0.005
    while not condition():
        if time.monotonic() > deadline:
            raise HarnessError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(delay)  # polling interval, not synchronisation
        delay = min(delay * 2, 0.1)


def _free_major(taken: set[int], start: int) -> int:
    major = start
    while major in taken:
        major -= 1
    return major


def _proc_majors() -> set[int]:
    with open("/proc/devices", encoding="utf-8") as f:
        return {int(p[0]) for p in (line.split() for line in f) if len(p) == 2 and p[0].isdigit()}


class Runtime:
    """A containerd of its own, ready to run containers that hold (emulated) GPUs."""

    def __init__(self, base: str | None = None) -> None:
        _reap_stale(base or tempfile.gettempdir())
        self._token = uuid.uuid4().hex[:6]  # runc's state dir (/run/containerd/runc/k8s.io) is shared by all
        self.dir = tempfile.mkdtemp(prefix=_PREFIX, dir=base)
        with open(os.path.join(self.dir, "owner"), "w", encoding="utf-8") as f:
            f.write(str(os.getpid()))
        self.namespace = NAMESPACE
        self.socket = os.path.join(self.dir, "run", "containerd.sock")
        self.rootfs = os.path.join(self.dir, "rootfs")
        self.host_dev = os.path.join(self.dir, "hostdev")  # emulated nodes for bind mounts
        self.driver_root = os.path.join(self.dir, "driver")
        self.gpu_uuids = {m: f"GPU-00000000-0000-0000-0000-{m:012d}" for m in GPU_MINORS}
        taken = _proc_majors()
        self.uvm_major = _free_major(taken, 511)  # dynamic majors, as the driver gets them
        self.caps_major = _free_major(taken | {self.uvm_major}, 509)
        self.nodes = {  # path under /dev -> (major, minor)
            **{f"nvidia{m}": (NVIDIA_MAJOR, m) for m in GPU_MINORS},
            "nvidiactl": (NVIDIA_MAJOR, CTL_MINOR),
            "nvidia-uvm": (self.uvm_major, 0),
            "nvidia-uvm-tools": (self.uvm_major, 1),
        }
        self.host_nodes_made = False
        self._proc: subprocess.Popen[bytes] | None = None
        self._count = 0
        self._lock = threading.Lock()
        try:
            self._prepare()
            self.start_containerd()
            self.image_chain = self._import_image()
        except BaseException:
            self.close()
            raise

    # -- setup ---------------------------------------------------------------------------------

    def _prepare(self) -> None:
        for d in ("run", "root", "state", "specs", "bin"):
            os.makedirs(os.path.join(self.dir, d))
        for d in ("bin", "dev", "proc", "sys", "tmp", "etc"):
            os.makedirs(os.path.join(self.rootfs, d))
        shutil.copy2(BUSYBOX, os.path.join(self.rootfs, "bin", "busybox"))
        for applet in _APPLETS:
            os.symlink("busybox", os.path.join(self.rootfs, "bin", applet))
        os.makedirs(os.path.join(self.host_dev, "nvidia-caps"))
        for path, (major, minor) in self.nodes.items():
            os.mknod(os.path.join(self.host_dev, path), 0o666 | stat.S_IFCHR, os.makedev(major, minor))
        for minor in (1, 2):
            path = os.path.join(self.host_dev, "nvidia-caps", f"nvidia-cap{minor}")
            os.mknod(path, 0o444 | stat.S_IFCHR, os.makedev(self.caps_major, minor))
        for minor in GPU_MINORS:
            bus = f"0000:1{minor}:00.0"
            os.makedirs(os.path.join(self.driver_root, "gpus", bus))
            with open(os.path.join(self.driver_root, "gpus", bus, "information"), "w", encoding="utf-8") as f:
                f.write(_information(minor, self.gpu_uuids[minor], bus))
        if not os.path.exists("/proc/driver/nvidia"):
            self._share_host_nodes(join=True)
        with open(os.path.join(self.dir, "config.toml"), "w", encoding="utf-8") as f:
            f.write(self._config())

    def _config(self) -> str:
        run = os.path.join(self.dir, "run")
        return (
            "version = 2\n"
            f'root = "{self.dir}/root"\nstate = "{self.dir}/state"\n'
            'disabled_plugins = ["io.containerd.grpc.v1.cri"]\n'
            f'[grpc]\n  address = "{self.socket}"\n'
            f'[ttrpc]\n  address = "{run}/containerd.sock.ttrpc"\n'
            f'[debug]\n  address = "{run}/debug.sock"\n  level = "warn"\n'
            '[metrics]\n  address = ""\n'
        )

    def _share_host_nodes(self, join: bool) -> None:
        """Make (join) or release the emulated nodes in the host's /dev; the last owner removes them."""
        os.makedirs(_SHARED_DEV, exist_ok=True)
        with open(os.path.join(_SHARED_DEV, "lock"), "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            owners_file = os.path.join(_SHARED_DEV, "owners")
            owners: set[str] = set()  # "<pid>.<token>": one per Runtime, several may share a process
            if os.path.exists(owners_file):
                with open(owners_file, encoding="utf-8") as f:
                    owners = {o for o in f.read().split() if _alive(o.split(".")[0])}
            me = f"{os.getpid()}.{self._token}"
            owners.discard(me)
            if join:
                owners.add(me)
                for path, (major, minor) in self.nodes.items():
                    host = os.path.join("/dev", path)
                    if not os.path.lexists(host):
                        os.mknod(host, 0o666 | stat.S_IFCHR, os.makedev(major, minor))
                self.host_nodes_made = True
            elif not owners:
                for path, (major, _minor) in self.nodes.items():
                    host = os.path.join("/dev", path)
                    try:
                        st = os.lstat(host)
                    except FileNotFoundError:
                        continue
                    if stat.S_ISCHR(st.st_mode) and os.major(st.st_rdev) == major:
                        os.unlink(host)
            with open(owners_file, "w", encoding="utf-8") as f:
                f.write(" ".join(sorted(owners)))

    # -- containerd ----------------------------------------------------------------------------

    def start_containerd(self) -> None:
        log = open(os.path.join(self.dir, "containerd.log"), "ab")  # noqa: SIM115 - kept open by the child
        try:
            self._proc = subprocess.Popen(
                ["containerd", "--config", os.path.join(self.dir, "config.toml")],
                stdout=log, stderr=log, start_new_session=True,
            )
        finally:
            log.close()
        proc = self._proc
        wait_for(lambda: proc.poll() is not None or self._answers(), "containerd to answer on its socket")
        if proc.poll() is not None:
            raise HarnessError(f"containerd exited with {proc.returncode}: {self.log_tail()}")

    def _answers(self) -> bool:
        if not os.path.exists(self.socket):
            return False
        version = subprocess.run(["ctr", "-a", self.socket, "version"], check=False, capture_output=True, timeout=10)
        return version.returncode == 0

    def stop_containerd(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    def restart_containerd(self) -> None:
        """Stop containerd and start it again on the same root and socket (tasks keep running in their shims)."""
        self.stop_containerd()
        self.start_containerd()

    def log_tail(self) -> str:
        try:
            with open(os.path.join(self.dir, "containerd.log"), "rb") as f:
                return f.read()[-2000:].decode(errors="replace")
        except OSError:
            return ""

    def ctr(self, *args: str, check: bool = True) -> str:
        done = subprocess.run(
            ["ctr", "-a", self.socket, "-n", self.namespace, *args], check=False, capture_output=True, timeout=60
        )
        if check and done.returncode != 0:
            raise HarnessError(f"ctr {' '.join(args)}: {done.stderr.decode(errors='replace').strip()}")
        return done.stdout.decode()

    # -- containers ----------------------------------------------------------------------------

    def run(
        self,
        name: str,
        *,
        pod: str,
        namespace: str,
        container: str,
        gpus: Sequence[int] = (),
        bind_gpus: Sequence[int] = (),
        privileged: bool = False,
        env: Mapping[str, str] | None = None,
        annotations: Mapping[str, str] | None = None,
        start: bool = True,
    ) -> RunningContainer:
        """Create (and start) a container from the harness image, as the CRI plugin would; id: ``name`` made unique."""
        with self._lock:
            self._count += 1
            cid = f"{name}-{self._token}{self._count}"
        spec = self.spec(gpus=gpus, bind_gpus=bind_gpus, privileged=privileged, env=env, annotations=annotations)
        labels = {
            "io.kubernetes.pod.name": pod,
            "io.kubernetes.pod.namespace": namespace,
            "io.kubernetes.container.name": container,
            "io.kubernetes.pod.uid": str(uuid.uuid5(uuid.NAMESPACE_URL, f"{namespace}/{pod}")),
            "io.cri-containerd.kind": "container",
        }
        return self.create(cid, spec, labels, start=start)

    def create(
        self,
        container_id: str,
        spec: Mapping[str, object],
        labels: Mapping[str, str],
        *,
        start: bool = True,
        image: str | None = IMAGE,
    ) -> RunningContainer:
        """Create a container from a full OCI spec with these labels (and start its task).

        With ``image`` (the harness's own), the container is made as the CRI
        plugin makes it: an overlayfs snapshot of the image, the image's name on
        the container, ``root.path`` = ``rootfs``.  With None, the spec's
        ``root.path`` (the shared busybox dir) is used and the image is empty.
        """
        path = os.path.join(self.dir, "specs", f"{container_id}.json")
        if image is not None:
            spec = {**spec, "root": {"path": "rootfs", "readonly": False}}
        with open(path, "wb") as f:
            f.write(orjson.dumps(spec))
        if image is not None:
            self._grpc("snapshots.v1.Snapshots/Prepare", _prepare_request(container_id, self.image_chain))
            self._grpc("containers.v1.Containers/Create", _create_request(container_id, labels, image, spec))
        else:  # labels set apart: ctr's --label would also copy them into the spec's annotations (CRI does not)
            self.ctr("containers", "create", "--config", path, container_id)
            self.ctr("containers", "label", container_id, *(f"{k}={v}" for k, v in labels.items()))
        if not start:
            return RunningContainer(container_id, None)
        self.ctr("tasks", "start", "--detach", container_id)
        return RunningContainer(container_id, self.task(container_id)[0])

    def _grpc(self, method: str, request: bytes) -> bytes:
        """One containerd call the ctr CLI does not offer (a container with a snapshot, a spec and labels)."""
        options = [("grpc.max_receive_message_length", 64 << 20)]
        with grpc.insecure_channel(f"unix://{self.socket}", options=options) as channel:
            call = channel.unary_unary(f"/containerd.services.{method}", request_serializer=bytes,
                                       response_deserializer=bytes)
            answer: bytes = call(request, timeout=30, metadata=(("containerd-namespace", self.namespace),))
            return answer

    def _import_image(self) -> str:
        """Import the busybox image (OCI layout archive built here) and return its layer's chain id."""
        archive, chain = oci_archive(BUSYBOX, IMAGE)
        path = os.path.join(self.dir, "busybox-oci.tar")
        with open(path, "wb") as f:
            f.write(archive)
        self.ctr("images", "import", "--snapshotter", SNAPSHOTTER, path)
        if IMAGE not in self.ctr("images", "ls", "-q").split():
            raise HarnessError(f"{IMAGE} was not imported: {self.ctr('images', 'ls')}")
        return chain

    def spec(
        self,
        *,
        gpus: Sequence[int] = (),
        bind_gpus: Sequence[int] = (),
        privileged: bool = False,
        env: Mapping[str, str] | None = None,
        annotations: Mapping[str, str] | None = None,
    ) -> dict[str, object]:
        """The OCI spec of a test container (containerd's defaults, plus what the test asks for)."""
        caps = list(_host_caps() if privileged else _DEFAULT_CAPS)
        mounts: list[dict[str, object]] = [
            {"destination": "/proc", "type": "proc", "source": "proc", "options": ["nosuid", "noexec", "nodev"]},
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
             "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
            {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
             "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
            {"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
             "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
            {"destination": "/sys", "type": "sysfs", "source": "sysfs",
             "options": ["nosuid", "noexec", "nodev", "ro"]},
        ]
        for minor in bind_gpus:
            mounts.append({"destination": f"/dev/nvidia{minor}", "type": "bind",
                           "source": os.path.join(self.host_dev, f"nvidia{minor}"), "options": ["bind", "rw"]})
        devices: list[dict[str, object]] = []
        for minor in gpus:
            devices.append(_device(f"/dev/nvidia{minor}", NVIDIA_MAJOR, minor))
        if gpus:
            devices.append(_device("/dev/nvidiactl", NVIDIA_MAJOR, CTL_MINOR))
            devices.append(_device("/dev/nvidia-uvm", self.uvm_major, 0))
        cgroup: list[dict[str, object]] = [{"allow": False, "access": "rwm"}]
        if privileged:
            devices = _host_devices()
            cgroup = [{"allow": True, "access": "rwm"}]
        else:
            cgroup += [{"allow": True, "type": "c", "major": d["major"], "minor": d["minor"], "access": "rwm"}
                       for d in devices]
        return {
            "ociVersion": "1.0.2-dev",
            "process": {
                "terminal": False, "user": {"uid": 0, "gid": 0}, "cwd": "/",
                "args": ["/bin/sleep", "100000"],
                "env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                        *(f"{k}={v}" for k, v in (env or {}).items())],
                "capabilities": {"bounding": caps, "effective": caps, "permitted": caps},
                "noNewPrivileges": not privileged,
            },
            "root": {"path": self.rootfs, "readonly": True},
            "hostname": "gpuguard-test",
            "mounts": mounts,
            "annotations": {"io.kubernetes.cri.container-type": "container", **(annotations or {})},
            "linux": {
                "resources": {"devices": cgroup},
                "namespaces": [{"type": t} for t in ("pid", "ipc", "uts", "mount", "network")],
                "devices": devices,
            },
        }

    def task(self, container_id: str) -> tuple[int | None, str]:
        """(pid, status) of the container's task as ``ctr task ls`` says; (None, "none") without a task."""
        for line in self.ctr("tasks", "ls").splitlines()[1:]:
            parts = line.split()
            if len(parts) >= 3 and parts[0] == container_id:
                pid = int(parts[1])
                return (pid if pid > 0 and parts[2] != "STOPPED" else None), parts[2].lower()
        return None, "none"

    def exit(self, container_id: str) -> None:
        """Kill the task and wait until containerd says it stopped; the container and task are kept."""
        self.ctr("tasks", "kill", "-s", "SIGKILL", container_id)
        wait_for(lambda: self.task(container_id)[1] == "stopped", f"task {container_id} to stop")

    def remove(self, container_id: str) -> None:
        """Kill the task (if any) and delete the container."""
        self.ctr("tasks", "rm", "-f", container_id, check=False)
        self.ctr("containers", "rm", container_id, check=False)

    def close(self) -> None:
        """Remove every container of this containerd, stop it, release the host nodes and delete the temp dir."""
        try:
            if self._proc is not None and self._proc.poll() is None:
                ids = self.ctr("containers", "ls", "-q", check=False).split()
                with ThreadPoolExecutor(max_workers=8) as pool:
                    list(pool.map(self.remove, ids))
        finally:
            self.stop_containerd()
            if self.host_nodes_made:
                self._share_host_nodes(join=False)
                self.host_nodes_made = False
            shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> Runtime:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        out.append((n & 0x7F) | (0x80 if n > 0x7F else 0))
        n >>= 7
        if not n:
            return bytes(out)


def _field(number: int, value: bytes | str) -> bytes:
    """One length-delimited protobuf field (strings, bytes, messages, map entries)."""
    data = value.encode() if isinstance(value, str) else value
    return _varint(number << 3 | 2) + _varint(len(data)) + data


def _map(number: int, mapping: Mapping[str, str]) -> bytes:
    return b"".join(_field(number, _field(1, k) + _field(2, v)) for k, v in mapping.items())


def _prepare_request(key: str, parent: str) -> bytes:
    """snapshots.v1 PrepareSnapshotRequest (snapshotter 1, key 2, parent 3, labels 4); gc.root: no GC race."""
    return (_field(1, SNAPSHOTTER) + _field(2, key) + _field(3, parent)
            + _map(4, {"containerd.io/gc.root": "gpuguard-test"}))


def _create_request(container_id: str, labels: Mapping[str, str], image: str, spec: Mapping[str, object]) -> bytes:
    """containers.v1 CreateContainerRequest{container 1: Container{id 1, labels 2, image 3, runtime 4{name 1},
    spec 5 (Any: type_url 1, value 2), snapshotter 6, snapshot_key 7}}."""
    container = (
        _field(1, container_id) + _map(2, labels) + _field(3, image) + _field(4, _field(1, RUNC))
        + _field(5, _field(1, _SPEC_TYPE) + _field(2, orjson.dumps(spec)))
        + _field(6, SNAPSHOTTER) + _field(7, container_id)
    )
    return _field(1, container)


def _goarch() -> str:
    machine = platform.machine()
    return {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm", "ppc64le": "ppc64le", "s390x": "s390x"}.get(
        machine, machine
    )


def _tar_entry(tar: tarfile.TarFile, name: str, data: bytes | None = None, *, kind: bytes = tarfile.DIRTYPE,
               link: str = "", mode: int = 0o755) -> None:
    info = tarfile.TarInfo(name)
    info.type, info.linkname, info.mode = (tarfile.REGTYPE if data is not None else kind), link, mode
    info.size = len(data) if data is not None else 0
    tar.addfile(info, io.BytesIO(data) if data is not None else None)


def oci_archive(busybox: str, name: str) -> tuple[bytes, str]:
    """An OCI image layout archive (oci-layout, index.json, blobs) of a one-layer busybox image, and its chain id."""
    layer = io.BytesIO()
    with tarfile.open(fileobj=layer, mode="w") as tar:
        for d in ("bin", "dev", "etc", "proc", "sys", "tmp"):
            _tar_entry(tar, d)
        with open(busybox, "rb") as f:
            _tar_entry(tar, "bin/busybox", f.read())
        for applet in _APPLETS:
            _tar_entry(tar, f"bin/{applet}", kind=tarfile.SYMTYPE, link="busybox", mode=0o777)
    diff_id = "sha256:" + hashlib.sha256(layer.getvalue()).hexdigest()
    blobs: dict[str, bytes] = {}

    def blob(media_type: str, data: bytes) -> dict[str, object]:
        digest = hashlib.sha256(data).hexdigest()
        blobs[digest] = data
        return {"mediaType": media_type, "digest": f"sha256:{digest}", "size": len(data)}

    config = orjson.dumps({
        "architecture": _goarch(), "os": "linux",
        "config": {"Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
                   "Cmd": ["/bin/sleep", "100000"]},
        "rootfs": {"type": "layers", "diff_ids": [diff_id]},
    })
    manifest = orjson.dumps({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": blob("application/vnd.oci.image.config.v1+json", config),
        "layers": [blob("application/vnd.oci.image.layer.v1.tar+gzip", gzip.compress(layer.getvalue(), mtime=0))],
    })
    entry = blob("application/vnd.oci.image.manifest.v1+json", manifest)
    tag = name.rsplit(":", 1)[-1]
    entry["annotations"] = {"io.containerd.image.name": name, "org.opencontainers.image.ref.name": tag}
    index = orjson.dumps({"schemaVersion": 2, "manifests": [entry]})
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tar:
        _tar_entry(tar, "oci-layout", b'{"imageLayoutVersion": "1.0.0"}', mode=0o644)
        _tar_entry(tar, "index.json", index, mode=0o644)
        _tar_entry(tar, "blobs")
        _tar_entry(tar, "blobs/sha256")
        for digest, data in blobs.items():
            _tar_entry(tar, f"blobs/sha256/{digest}", data, mode=0o644)
    return out.getvalue(), diff_id  # one layer: its chain id is its diff id


def _host_caps() -> tuple[str, ...]:
    """Every capability this process may hold: containerd's privileged mode (WithPrivileged) grants these."""
    with open("/proc/self/status", encoding="utf-8") as f:
        bits = next(int(line.split()[1], 16) for line in f if line.startswith("CapBnd:"))
    return tuple(name for bit, name in enumerate(_CAPS_BY_BIT) if bits >> bit & 1)


def _device(path: str, major: int, minor: int, kind: str = "c") -> dict[str, object]:
    return {"path": path, "type": kind, "major": major, "minor": minor, "fileMode": 0o666, "uid": 0, "gid": 0}


def _host_devices(root: str = "/dev") -> list[dict[str, object]]:
    """Every char and block device under the host's /dev, as containerd's privileged mode lists them."""
    found = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if d not in _SKIP_HOST_DIRS]
        for name in filenames:
            path = os.path.join(dirpath, name)
            try:
                st = os.lstat(path)
            except OSError:
                continue
            if path == "/dev/console":
                continue
            if stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode):
                kind = "c" if stat.S_ISCHR(st.st_mode) else "b"
                found.append(_device(path, os.major(st.st_rdev), os.minor(st.st_rdev), kind))
    return sorted(found, key=lambda d: str(d["path"]))


def _information(minor: int, gpu_uuid: str, bus: str) -> str:
    """A driver ``information`` file as the NVIDIA driver writes it."""
    return (
        "Model: \t\t NVIDIA A100-SXM4-80GB\n"
        "IRQ:   \t\t 0\n"
        f"GPU UUID: \t {gpu_uuid}\n"
        "Video BIOS: \t 92.00.45.00.06\n"
        "Bus Type: \t PCIe\n"
        "DMA Size: \t 47 bits\n"
        "DMA Mask: \t 0x7fffffffffff\n"
        f"Bus Location: \t {bus}\n"
        f"Device Minor: \t {minor}\n"
        "GPU Excluded:\t No\n"
    )


def _reap_stale(base: str) -> None:
    """Clean up after a test run that was killed: its containers, shims, containerd and temp dir."""
    for name in os.listdir(base):
        where = os.path.join(base, name)
        try:
            with open(os.path.join(where, "owner"), encoding="utf-8") as f:
                owner = int(f.read().strip() or 0)
        except (OSError, ValueError):
            continue
        if not name.startswith(_PREFIX) or _alive(owner):
            continue
        specs = os.path.join(where, "specs")
        for spec in os.listdir(specs) if os.path.isdir(specs) else ():
            subprocess.run(["runc", "--root", f"{_RUNC_ROOT}/{NAMESPACE}", "delete", "--force", spec[:-5]],
                           check=False, capture_output=True, timeout=30)
        for pid in _pids_naming(where):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        shutil.rmtree(where, ignore_errors=True)


def _pids_naming(where: str) -> list[int]:
    """Processes whose command line names ``where`` (its containerd and shims)."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/cmdline", "rb") as f:
                    if where.encode() in f.read():
                        found.append(int(entry))
            except OSError:
                continue
    return found


def _alive(pid_text: str | int) -> bool:
    pid = int(pid_text) if str(pid_text).isascii() and str(pid_text).isdigit() else 0
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
