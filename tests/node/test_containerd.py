"""containerd as the node agent reads it: a real containerd and runc (tests.node.runtime), and spec parsing."""

from __future__ import annotations

import os
import shutil
import time
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import grpc
import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from gpuguard.model.container import Mount
from gpuguard.model.observed import DeviceNode, RuntimeContainer
from gpuguard.sources.node import NodeSourceError
from gpuguard.sources.node import _containerd_api as api
from gpuguard.sources.node._containerd_spec import SpecError, spec_parts
from gpuguard.sources.node.containerd import ContainerdClient
from gpuguard.sources.node.devices import held_devices
from tests.node.runtime import IMAGE, Runtime

SPEC_TYPE = "types.containerd.io/opencontainers/runtime-spec/1/Spec"


def _by_id(client: ContainerdClient) -> dict[str, RuntimeContainer]:
    return {c.id: c for c in client.containers()}


# -- the spec, as untrusted JSON ------------------------------------------------------------------

BAD_SPECS = [
    (b"{", "not JSON"),
    (b"[]", "spec: expected object, got list"),
    (b'{"process": []}', "process: expected dict, got list"),
    (b'{"process": {"env": "A=1"}}', "process.env: expected list, got str"),
    (b'{"process": {"env": ["A=1", 7]}}', "process.env[1]: expected str, got int"),
    (b'{"process": {"capabilities": {"bounding": "CAP_SYS_ADMIN"}}}', "process.capabilities.bounding: expected list"),
    (b'{"mounts": [1]}', "mounts[0]: expected object, got int"),
    (b'{"mounts": [{"source": "/a", "destination": "/b"}, {"source": 3}]}', "mounts[1].source: expected str"),
    (b'{"annotations": {"a": 1}}', "annotations[0]: expected str, got int"),
    (b'{"linux": {"devices": [{"path": "/dev/nvidia0", "type": "c", "major": "195"}]}}',
     "linux.devices[0].major: expected int, got str"),
    (b'{"linux": {"devices": [{"path": "/dev/nvidia0", "type": "c", "major": true}]}}',
     "linux.devices[0].major: expected int, got bool"),
    (b'{"linux": {"resources": {"devices": {}}}}', "linux.resources.devices: expected list, got dict"),
    (b'{"pad": "' + b"x" * (4 << 20) + b'"}', "over the 4194304 byte limit"),
]


@pytest.mark.parametrize(("raw", "says"), BAD_SPECS)
def test_bad_spec_names_the_field(raw: bytes, says: str) -> None:
    with pytest.raises(SpecError, match=None) as caught:
        spec_parts(raw)
    assert says in str(caught.value)


def _spec(caps: list[str], *, devices: Sequence[Mapping[str, object]] = (),
          cgroup: Sequence[Mapping[str, object]] = (), mounts: Sequence[Mapping[str, str]] = ()) -> bytes:
    return orjson.dumps({
        "process": {"env": ["PATH=/bin"], "capabilities": {"bounding": caps}},
        "mounts": list(mounts),
        "linux": {"devices": list(devices), "resources": {"devices": list(cgroup)}},
    })


ADMIN = ["CAP_CHOWN", "CAP_SYS_ADMIN"]
MEM = {"path": "/dev/mem", "type": "c", "major": 1, "minor": 1}
PRIVILEGED = [
    ("sys_admin and every device allowed", _spec(ADMIN, cgroup=[{"allow": False, "access": "rwm"},
                                                               {"allow": True, "access": "rwm"}]), True),
    ("sys_admin and the host's /dev bound", _spec(ADMIN, mounts=[{"source": "/dev", "destination": "/dev"}]), True),
    ("sys_admin and the host's devices listed", _spec(ADMIN, devices=[MEM]), True),
    ("sys_admin alone", _spec(ADMIN), False),
    ("sys_admin, one device allowed", _spec(ADMIN, cgroup=[{"allow": True, "type": "c", "major": 195,
                                                             "minor": 0, "access": "rwm"}]), False),
    ("every device allowed without sys_admin", _spec(["CAP_CHOWN"], cgroup=[{"allow": True, "access": "rwm"}]), False),
    ("host's devices without sys_admin", _spec(["CAP_CHOWN"], devices=[MEM]), False),
]


@pytest.mark.parametrize(("why", "raw", "privileged"), PRIVILEGED)
def test_privileged_as_containerd_makes_it(why: str, raw: bytes, privileged: bool) -> None:
    assert spec_parts(raw).privileged is privileged, why


def test_spec_keeps_nvidia_devices_only() -> None:
    raw = _spec([], devices=[
        MEM,
        {"path": "/dev/nvidia3", "type": "c", "major": 195, "minor": 3},
        {"path": "/dev/nvidia-uvm", "type": "c", "major": 511, "minor": 0},
        {"path": "/opt/gpu", "type": "c", "major": 195, "minor": 1},
        {"path": "/dev/loop0", "type": "b", "major": 7, "minor": 0},
    ])
    assert spec_parts(raw).linux_devices == (
        DeviceNode("nvidia3", 195, 3, "gpu"),
        DeviceNode("nvidia-uvm", 511, 0, "uvm"),
        DeviceNode("/opt/gpu", 195, 1, "gpu"),
    )


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)
_KEYS = st.sampled_from(["process", "env", "capabilities", "bounding", "mounts", "source", "destination",
                         "annotations", "linux", "devices", "resources", "path", "type", "major", "minor",
                         "allow", "access"])
_SHAPED = st.recursive(_JSON, lambda inner: st.dictionaries(_KEYS, inner, max_size=5) | st.lists(inner, max_size=3),
                       max_leaves=30)


@given(_SHAPED)
def test_any_json_spec_parses_or_names_its_error(doc: object) -> None:
    try:
        parts = spec_parts(orjson.dumps(doc))
    except SpecError as e:
        assert str(e)
    else:
        assert isinstance(doc, dict)
        assert all(isinstance(v, str) for v in parts.spec.env)


@given(st.binary(max_size=200))
def test_any_bytes_spec_parses_or_names_its_error(raw: bytes) -> None:
    try:
        spec_parts(raw)
    except SpecError as e:
        assert str(e)


# -- a real containerd --------------------------------------------------------------------------

def test_containers_as_containerd_holds_them(runtime: Runtime) -> None:
    listed = runtime.run("gpus", pod="train", namespace="ml", container="main", gpus=(0, 1),
                         env={"NVIDIA_VISIBLE_DEVICES": "0,1"}, annotations={"team": "ml"})
    bound = runtime.run("bind", pod="train", namespace="ml", container="sidecar", bind_gpus=(2,))
    privileged = runtime.run("priv", pod="dcgm", namespace="gpu-operator", container="exporter", privileged=True)
    plain = runtime.run("plain", pod="web", namespace="default", container="nginx")
    with ContainerdClient(runtime.socket, runtime.namespace) as client:
        seen = _by_id(client)

    gpus = seen[listed.id]
    assert (gpus.namespace, gpus.pod, gpus.container) == ("ml", "train", "main")
    assert gpus.pod_uid is not None and len(gpus.pod_uid) == 36
    assert gpus.labels["io.kubernetes.pod.name"] == "train"
    assert (gpus.pid, gpus.status, gpus.error, gpus.sandbox) == (listed.pid, "running", None, False)
    assert (gpus.runtime, gpus.image) == ("io.containerd.runc.v2", IMAGE)
    assert os.path.exists(f"/proc/{listed.pid}/root/bin/busybox")  # its root is the image's snapshot
    assert "NVIDIA_VISIBLE_DEVICES=0,1" in gpus.spec.env
    assert gpus.spec.annotations == {"io.kubernetes.cri.container-type": "container", "team": "ml"}
    assert "CAP_SYS_ADMIN" not in gpus.spec.bounding and "CAP_CHOWN" in gpus.spec.bounding
    assert gpus.linux_devices == (
        DeviceNode("nvidia0", 195, 0, "gpu"),
        DeviceNode("nvidia1", 195, 1, "gpu"),
        DeviceNode("nvidiactl", 195, 255, "control"),
        DeviceNode("nvidia-uvm", runtime.uvm_major, 0, "uvm"),
    )
    assert not gpus.privileged

    side = seen[bound.id]
    assert side.linux_devices == () and not side.privileged
    assert Mount(os.path.join(runtime.host_dev, "nvidia2"), "/dev/nvidia2") in side.spec.mounts

    priv = seen[privileged.id]
    assert priv.privileged and "CAP_SYS_ADMIN" in priv.spec.bounding
    assert {n.minor for n in priv.linux_devices if n.kind == "gpu"} == {0, 1, 2, 3}

    none = seen[plain.id]
    assert (none.linux_devices, none.privileged, none.status) == ((), False, "running")


def test_held_devices_in_real_containers(runtime: Runtime) -> None:
    cases: list[tuple[dict[str, Any], set[int]]] = [  # (run options, GPU minors the container's /dev must hold)
        ({"gpus": (0, 1)}, {0, 1}),
        ({"bind_gpus": (2,)}, {2}),
        ({"bind_gpus": (0,), "gpus": (3,)}, {0, 3}),
        ({"privileged": True}, {0, 1, 2, 3}),
        ({}, set()),
    ]
    for options, minors in cases:
        c = runtime.run("held", pod="p", namespace="ns", container="c", **options)
        assert c.pid is not None
        held = held_devices(c.id, c.pid)
        assert held.error is None, options
        assert held.gpu_minors == minors, options
        kinds = {n.path: n.kind for n in held.nodes}
        if options.get("gpus") or options.get("privileged"):
            assert kinds["nvidiactl"] == "control" and kinds["nvidia-uvm"] == "uvm", options
        if not options:
            assert held.nodes == ()


def test_container_from_a_spec_without_image(runtime: Runtime) -> None:
    spec = runtime.spec(gpus=(2,), env={"NVIDIA_VISIBLE_DEVICES": "2"})
    labels = {"io.kubernetes.pod.name": "raw", "io.kubernetes.pod.namespace": "ns", "io.kubernetes.container.name": "c"}
    c = runtime.create(f"no-image-{uuid.uuid4().hex[:8]}", spec, labels, image=None)
    assert c.pid is not None
    with ContainerdClient(runtime.socket) as client:
        seen = _by_id(client)[c.id]
    assert (seen.image, seen.pod, seen.pid, seen.status) == ("", "raw", c.pid, "running")
    assert seen.spec.annotations == {"io.kubernetes.cri.container-type": "container"}  # labels stay labels
    assert held_devices(c.id, c.pid).gpu_minors == {2}


def test_sandbox_containers_are_marked(runtime: Runtime) -> None:
    labels = {"io.kubernetes.pod.name": "sb", "io.kubernetes.pod.namespace": "ns", "io.cri-containerd.kind": "sandbox"}
    spec = runtime.spec(annotations={"io.kubernetes.cri.container-type": "sandbox"})
    c = runtime.create(f"pause-{uuid.uuid4().hex[:8]}", spec, labels)
    with ContainerdClient(runtime.socket) as client:
        seen = _by_id(client)[c.id]
    assert (seen.sandbox, seen.pod, seen.container) == (True, "sb", None)


def test_exited_task_is_stopped_without_pid(runtime: Runtime) -> None:
    c = runtime.run("exits", pod="job", namespace="batch", container="step", gpus=(1,))
    assert c.pid is not None
    runtime.exit(c.id)
    with ContainerdClient(runtime.socket) as client:
        seen = _by_id(client)[c.id]
    assert (seen.status, seen.pid) == ("stopped", None)
    assert seen.linux_devices[0] == DeviceNode("nvidia1", 195, 1, "gpu")  # the spec is still read
    held = held_devices(c.id, c.pid)
    assert held.nodes == () and held.error is not None


def test_container_without_task(runtime: Runtime) -> None:
    c = runtime.run("idle", pod="p", namespace="ns", container="waits", gpus=(2,), start=False)
    with ContainerdClient(runtime.socket) as client:
        seen = _by_id(client)[c.id]
    assert (seen.pid, seen.status, seen.container) == (None, "created", "waits")
    assert [n.minor for n in seen.linux_devices if n.kind == "gpu"] == [2]


def _create_raw(runtime: Runtime, container_id: str, spec: bytes) -> None:
    """Store a container whose spec bytes are whatever we say (ctr would refuse them)."""
    container = api.message("Container")(id=container_id, runtime={"name": "io.containerd.runc.v2"},
                                          spec={"type_url": SPEC_TYPE, "value": spec})
    body = container.SerializeToString()
    request = b"\x0a" + _varint(len(body)) + body  # CreateContainerRequest.container = 1
    options = [("grpc.max_receive_message_length", 64 << 20)]  # containerd echoes the container back
    with grpc.insecure_channel(f"unix://{runtime.socket}", options=options) as channel:
        create = channel.unary_unary("/containerd.services.containers.v1.Containers/Create",
                                     request_serializer=lambda b: b, response_deserializer=lambda b: b)
        create(request, timeout=10, metadata=(("containerd-namespace", runtime.namespace),))


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        out.append((n & 0x7F) | (0x80 if n > 0x7F else 0))
        n >>= 7
        if not n:
            return bytes(out)


def test_unreadable_specs_are_reported_per_container(runtime: Runtime) -> None:
    good = runtime.run("fine", pod="p", namespace="ns", container="c")
    _create_raw(runtime, "bad-env-" + good.id, b'{"process": {"env": {"A": "1"}}}')
    _create_raw(runtime, "huge-" + good.id, b'{"x": "' + b"y" * (5 << 20) + b'"}')
    try:
        with ContainerdClient(runtime.socket) as client:
            seen = _by_id(client)
    finally:
        runtime.ctr("containers", "rm", "bad-env-" + good.id, "huge-" + good.id, check=False)
    assert seen["bad-env-" + good.id].error == f"container bad-env-{good.id}: process.env: expected list, got dict"
    huge = seen["huge-" + good.id]
    assert huge.error is not None and "over the 4194304 byte limit" in huge.error
    assert (huge.spec.env, huge.linux_devices, huge.pid, huge.namespace) == ((), (), None, None)
    assert seen[good.id].error is None and seen[good.id].status == "running"


def test_other_namespaces_are_not_listed(runtime: Runtime) -> None:
    c = runtime.run("nsd", pod="p", namespace="ns", container="c")
    with ContainerdClient(runtime.socket, namespace="default") as client:
        assert c.id not in _by_id(client)


def _until_answers(client: ContainerdClient) -> dict[str, RuntimeContainer]:
    deadline = time.monotonic() + 20
    while True:
        try:
            return _by_id(client)
        except NodeSourceError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)  # polling interval while containerd starts


def test_survives_a_containerd_restart(runtime: Runtime) -> None:
    c = runtime.run("restart", pod="p", namespace="ns", container="c", gpus=(3,))
    with ContainerdClient(runtime.socket, timeout=2.0) as client:
        assert _by_id(client)[c.id].pid == c.pid
        runtime.restart_containerd()
        seen = _until_answers(client)
        assert (seen[c.id].pid, seen[c.id].status) == (c.pid, "running")  # the shim kept the task
        assert _by_id(client)[c.id].pid == c.pid  # and answers again on the next scan


def test_containerd_down_then_back(runtime: Runtime) -> None:
    c = runtime.run("down", pod="p", namespace="ns", container="c")
    with ContainerdClient(runtime.socket, timeout=2.0) as client:
        _by_id(client)
        runtime.stop_containerd()
        try:
            with pytest.raises(NodeSourceError) as caught:
                client.containers()
            assert caught.value.source == "containerd" and runtime.socket in caught.value.message
        finally:
            runtime.start_containerd()
        assert _until_answers(client)[c.id].status == "running"


def test_missing_socket(tmp_path: Path) -> None:
    path = str(tmp_path / "containerd.sock")
    with ContainerdClient(path, timeout=1.0) as client, pytest.raises(NodeSourceError) as caught:
        client.containers()
    assert (caught.value.source, caught.value.message) == ("containerd", f"no socket at {path}")


def test_socket_that_never_answers_times_out(tmp_path: Path) -> None:
    import socket

    path = str(tmp_path / "mute.sock")
    with socket.socket(socket.AF_UNIX) as s:
        s.bind(path)
        s.listen(8)  # the kernel accepts connections; nobody speaks HTTP/2 on them
        with ContainerdClient(path, timeout=0.5) as client, pytest.raises(NodeSourceError) as caught:
            client.containers()
    assert caught.value.source == "containerd"
    assert "DEADLINE_EXCEEDED" in caught.value.message or "UNAVAILABLE" in caught.value.message


def test_socket_nobody_listens_on(tmp_path: Path) -> None:
    import socket

    path = str(tmp_path / "stale.sock")
    with socket.socket(socket.AF_UNIX) as s:
        s.bind(path)  # bound, never listening: a containerd that died and left its socket
        with ContainerdClient(path, timeout=1.0) as client, pytest.raises(NodeSourceError) as caught:
            client.containers()
    assert caught.value.source == "containerd" and "UNAVAILABLE" in caught.value.message


def test_runtime_binary_is_read_from_the_runc_shim_options(runtime: Runtime, tmp_path: Path) -> None:
    """A CRI handler such as ``nvidia`` is a runc shim whose BinaryName is nvidia-container-runtime.

    ``ctr run --runc-binary`` stores those options as containerd's own code encodes them; a link named
    nvidia-container-runtime to the real runc stands in for the NVIDIA runtime (it runs the task).
    """
    runc = shutil.which("runc") or "/usr/sbin/runc"
    nvidia = tmp_path / "nvidia-container-runtime"
    nvidia.symlink_to(runc)
    made = {f"shim-nvidia-{uuid.uuid4().hex[:6]}": str(nvidia), f"shim-runc-{uuid.uuid4().hex[:6]}": runc}
    for cid, binary in made.items():
        runtime.ctr("run", "-d", "--runc-binary", binary, "--rootfs", runtime.rootfs, cid, "/bin/sleep", "1000")
    plain = runtime.run("no-options", pod="p", namespace="ns", container="c")
    try:
        with ContainerdClient(runtime.socket) as client:
            seen = _by_id(client)
        assert {cid: seen[cid].runtime_binary for cid in made} == made
        assert seen[plain.id].runtime_binary is None  # no runc options stored: containerd does not say
        assert seen[next(iter(made))].pid is not None  # the shim really ran the task through that binary
    finally:
        for cid in made:
            runtime.remove(cid)
        runtime.remove(plain.id)
