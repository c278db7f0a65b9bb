"""The pod-resources client against a real gRPC server on a unix socket (the tests' own proto)."""

from __future__ import annotations

import socket
import socketserver
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gpuguard.model.observed import ContainerAllocation
from gpuguard.sources.node import NodeSourceError
from gpuguard.sources.node.pod_resources import PodResourcesClient
from tests.node.kubelet import KubeletStandIn, serve_pod_resources

pytest.importorskip("grpc_tools", reason="grpcio-tools compiles the tests' pod-resources proto")

U0 = "GPU-00000000-0000-0000-0000-000000000000"
U1 = "GPU-00000000-0000-0000-0000-000000000001"
MIG = "MIG-11111111-2222-3333-4444-555555555555"

ALLOCATIONS: list[dict[str, Any]] = [
    {"namespace": "ml", "pod": "train-0", "container": "trainer", "devices": {"nvidia.com/gpu": [U0, U1]},
     "cpu_ids": [2, 3]},
    {"namespace": "ml", "pod": "train-0", "container": "sidecar", "devices": {}},
    {"namespace": "web", "pod": "api", "container": "app",
     "devices": {"nvidia.com/mig-1g.10gb": [MIG], "example.com/fpga": ["fpga-7"]}},
    {"namespace": "share", "pod": "ts", "container": "c", "devices": {"nvidia.com/gpu": [f"{U1}::3"]}},
    {"namespace": "dra", "pod": "claimer", "container": "main", "devices": {},
     "claims": [
         {"namespace": "dra", "name": "gpu-claim",
          "devices": [{"driver": "gpu.nvidia.com", "pool": "node-1", "device": "gpu-0",
                       "cdi": ["k8s.gpu.nvidia.com/device=gpu-0"]}]},
         {"namespace": "dra", "name": "cdi-only", "devices": [{"cdi": ["k8s.gpu.nvidia.com/device=gpu-1"]}]},
     ]},
]  # fmt: skip


@pytest.fixture
def sock(tmp_path: Path) -> str:
    return str(tmp_path / "kubelet.sock")


@pytest.fixture
def kubelet(sock: str) -> Iterator[KubeletStandIn]:
    stand_in = serve_pod_resources(sock, ALLOCATIONS, {"nvidia.com/gpu": [U0, U1], "example.com/fpga": ["fpga-7"]})
    yield stand_in
    stand_in.stop()


def test_list_gives_every_container_with_its_devices_and_claims(kubelet: KubeletStandIn, sock: str) -> None:
    with PodResourcesClient(sock, timeout=5) as client:
        got = client.list()
    assert got == (
        ContainerAllocation("ml", "train-0", "trainer", {"nvidia.com/gpu": (U0, U1)}),
        ContainerAllocation("ml", "train-0", "sidecar", {}),
        ContainerAllocation("web", "api", "app", {"nvidia.com/mig-1g.10gb": (MIG,), "example.com/fpga": ("fpga-7",)}),
        ContainerAllocation("share", "ts", "c", {"nvidia.com/gpu": (f"{U1}::3",)}),
        ContainerAllocation(
            "dra", "claimer", "main", {},
            ("dra/gpu-claim: gpu.nvidia.com/node-1/gpu-0", "dra/cdi-only: k8s.gpu.nvidia.com/device=gpu-1"),
        ),
    )  # fmt: skip


def test_allocatable_per_resource(kubelet: KubeletStandIn, sock: str) -> None:
    with PodResourcesClient(sock) as client:
        assert client.allocatable() == {"nvidia.com/gpu": (U0, U1), "example.com/fpga": ("fpga-7",)}
    assert kubelet.calls == ["GetAllocatableResources"]


def test_set_changes_the_answer_on_the_same_connection(kubelet: KubeletStandIn, sock: str) -> None:
    with PodResourcesClient(sock) as client:
        assert len(client.list()) == 5
        kubelet.set([{"namespace": "a", "pod": "p", "container": "c", "devices": {"nvidia.com/gpu": ["1"]}}])
        assert client.list() == (ContainerAllocation("a", "p", "c", {"nvidia.com/gpu": ("1",)}),)
        kubelet.set([])
        assert client.list() == ()


def test_relative_socket_path(kubelet: KubeletStandIn, sock: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(Path(sock).parent)
    with PodResourcesClient("kubelet.sock") as client:
        assert [a.pod for a in client.list()][:1] == ["train-0"]


def test_missing_socket(tmp_path: Path) -> None:
    with pytest.raises(NodeSourceError, match="no pod-resources socket") as raised:
        PodResourcesClient(str(tmp_path / "absent.sock")).list()
    assert raised.value.source == "kubelet"


def test_a_file_that_is_not_a_socket(tmp_path: Path) -> None:
    path = tmp_path / "kubelet.sock"
    path.write_text("")
    with pytest.raises(NodeSourceError, match="is not a socket"):
        PodResourcesClient(str(path)).list()


def test_nobody_listening_is_unavailable(sock: str) -> None:
    dead = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    dead.bind(sock)  # a stale socket file: bound, never listening
    try:
        with PodResourcesClient(sock, timeout=5) as client, pytest.raises(NodeSourceError) as raised:
            client.list()
    finally:
        dead.close()
    assert raised.value.source == "kubelet"
    assert "unavailable List" in raised.value.message


class _Garbage(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True


class _SaysGarbage(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        self.request.sendall(b"HTTP/1.0 200 OK\r\n\r\nnot gRPC at all\x00\xff" * 10)


def test_a_socket_that_answers_garbage(sock: str) -> None:
    server = _Garbage(sock, _SaysGarbage)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        with PodResourcesClient(sock, timeout=3) as client, pytest.raises(NodeSourceError) as raised:
            client.list()
        assert raised.value.source == "kubelet"
        assert raised.value.message.startswith(f"pod-resources socket {sock} ")
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_unimplemented_method(sock: str) -> None:
    """Kubelets without the GetAllocatableResources feature answer UNIMPLEMENTED."""
    stand_in = serve_pod_resources(sock, ALLOCATIONS[:1], implemented=("List",))
    try:
        with PodResourcesClient(sock) as client:
            assert len(client.list()) == 1
            with pytest.raises(NodeSourceError, match="does not implement GetAllocatableResources"):
                client.allocatable()
    finally:
        stand_in.stop()


def test_a_restarted_kubelet_is_read_again(sock: str) -> None:
    first = serve_pod_resources(sock, ALLOCATIONS[:1])
    client = PodResourcesClient(sock, timeout=2)
    try:
        assert client.list()[0].pod == "train-0"
        first.stop()
        with pytest.raises(NodeSourceError, match="kubelet: "):
            client.list()
        second = serve_pod_resources(sock, [{"namespace": "b", "pod": "q", "container": "c", "devices": {}}])
        try:
            deadline = time.monotonic() + 15
            while True:  # gRPC reconnects with backoff: poll until the new kubelet answers
                try:
                    got = client.list()
                    break
                except NodeSourceError:
                    if time.monotonic() > deadline:
                        raise
            assert got == (ContainerAllocation("b", "q", "c", {}),)
        finally:
            second.stop()
    finally:
        client.close()


def test_close_twice_is_harmless(kubelet: KubeletStandIn, sock: str) -> None:
    client = PodResourcesClient(sock)
    client.list()
    client.close()
    client.close()
    assert len(client.list()) == 5  # a closed client opens a new channel when used again
    client.close()


_NAME = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-", min_size=1, max_size=12)
_IDS = st.lists(st.text(min_size=1, max_size=40), max_size=4, unique=True)
_DEVICES = st.dictionaries(st.sampled_from(["nvidia.com/gpu", "nvidia.com/mig-1g.10gb", "example.com/x"]), _IDS)
_PODS = st.lists(
    st.tuples(_NAME, _NAME, st.lists(st.tuples(_NAME, _DEVICES), max_size=3, unique_by=lambda c: c[0])),
    max_size=6,
    unique_by=lambda p: (p[0], p[1]),
)


@pytest.fixture(scope="module")
def shared_kubelet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KubeletStandIn]:
    stand_in = serve_pod_resources(str(tmp_path_factory.mktemp("kubelet") / "kubelet.sock"), [])
    yield stand_in
    stand_in.stop()


@settings(max_examples=60, deadline=None)
@given(_PODS)
def test_any_listing_reads_back_as_served(shared_kubelet: KubeletStandIn, pods: list[Any]) -> None:
    served = [{"namespace": ns, "pod": pod, "container": name, "devices": devices}
              for ns, pod, containers in pods for name, devices in containers]  # fmt: skip
    shared_kubelet.set(served)
    expected = tuple(
        ContainerAllocation(a["namespace"], a["pod"], a["container"], {r: tuple(i) for r, i in a["devices"].items()})
        for a in served
    )
    with PodResourcesClient(shared_kubelet.socket_path) as client:
        assert client.list() == expected
