"""A kubelet stand-in: a real gRPC server on a unix socket serving the pod-resources v1 API.

It is independent of gpuguard's client: the messages come from the tests' own
``protos/podresources_v1.proto``, compiled with grpc_tools when first needed
(the generated modules are imported, then their temp dir is removed).

An allocation is a dict ``{"namespace", "pod", "container", "devices": {resource:
[ids]}}`` with optional ``"claims": [{"namespace", "name", "devices": [{"driver",
"pool", "device", "cdi": [names]}]}]`` for DRA and ``"cpu_ids": [ints]``.
"""

from __future__ import annotations

import importlib
import sys
import tempfile
import threading
from collections.abc import Collection, Mapping, Sequence
from concurrent import futures
from pathlib import Path
from types import ModuleType
from typing import Any

import grpc

PROTOS = Path(__file__).resolve().parent / "protos"
METHODS = ("List", "GetAllocatableResources", "Get")
_LOCK = threading.Lock()
_MODULES: tuple[ModuleType, ModuleType] | None = None


def compiled() -> tuple[ModuleType, ModuleType]:
    """The ``_pb2`` and ``_pb2_grpc`` modules of the tests' pod-resources proto (compiled once per process)."""
    global _MODULES  # noqa: PLW0603 - one compilation per process
    with _LOCK:
        if _MODULES is None:
            from grpc_tools import protoc

            with tempfile.TemporaryDirectory(prefix="gg-podres-") as out:
                args = ["protoc", f"-I{PROTOS}", f"--python_out={out}", f"--grpc_python_out={out}"]
                if protoc.main([*args, "podresources_v1.proto"]) != 0:
                    raise RuntimeError(f"protoc failed on {PROTOS / 'podresources_v1.proto'}")
                sys.path.insert(0, out)
                try:
                    pb2 = importlib.import_module("podresources_v1_pb2")
                    pb2_grpc = importlib.import_module("podresources_v1_pb2_grpc")
                finally:
                    sys.path.remove(out)
            _MODULES = (pb2, pb2_grpc)
        return _MODULES


class KubeletStandIn:
    """Serves what it was told until ``stop()``; ``set()`` changes the answers at once."""

    def __init__(
        self,
        socket_path: str,
        allocations: Sequence[Mapping[str, Any]],
        allocatable: Mapping[str, Sequence[str]],
        implemented: Collection[str],
    ) -> None:
        self.socket_path = socket_path
        self.calls: list[str] = []
        self._pb2, pb2_grpc = compiled()
        self._lock = threading.Lock()
        self._list = self._allocatable = None
        self.set(allocations, allocatable)
        stand_in = self

        class Servicer(pb2_grpc.PodResourcesListerServicer):  # type: ignore[misc, name-defined]
            def List(self, request: Any, context: Any) -> Any:
                return stand_in._answer("List", context)

            def GetAllocatableResources(self, request: Any, context: Any) -> Any:
                return stand_in._answer("GetAllocatableResources", context)

            def Get(self, request: Any, context: Any) -> Any:
                if not stand_in._serves("Get", context):
                    return None
                for pod in stand_in._list.pod_resources:  # type: ignore[attr-defined]
                    if pod.name == request.pod_name and pod.namespace == request.pod_namespace:
                        return stand_in._pb2.GetPodResourcesResponse(pod_resources=pod)
                context.abort(grpc.StatusCode.NOT_FOUND, f"pod {request.pod_namespace}/{request.pod_name} not found")
                return None

        self._implemented = frozenset(implemented)
        self._server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
        pb2_grpc.add_PodResourcesListerServicer_to_server(Servicer(), self._server)
        if self._server.add_insecure_port("unix://" + str(Path(socket_path).resolve())) == 0:
            raise RuntimeError(f"cannot listen on {socket_path}")
        self._server.start()

    def set(
        self, allocations: Sequence[Mapping[str, Any]], allocatable: Mapping[str, Sequence[str]] | None = None
    ) -> None:
        """Answer with these allocations (and, if given, these allocatable devices) from now on."""
        listing = self._pb2.ListPodResourcesResponse()
        pods: dict[tuple[str, str], Any] = {}
        for a in allocations:
            key = (a["namespace"], a["pod"])
            if key not in pods:
                pods[key] = listing.pod_resources.add(namespace=a["namespace"], name=a["pod"])
            container = pods[key].containers.add(name=a["container"], cpu_ids=a.get("cpu_ids", ()))
            for resource, ids in a.get("devices", {}).items():
                container.devices.add(resource_name=resource, device_ids=list(ids))
            for claim in a.get("claims", ()):
                dynamic = container.dynamic_resources.add(claim_name=claim["name"], claim_namespace=claim["namespace"])
                for d in claim.get("devices", ()):
                    res = dynamic.claim_resources.add(
                        driver_name=d.get("driver", ""), pool_name=d.get("pool", ""), device_name=d.get("device", "")
                    )
                    for name in d.get("cdi", ()):
                        res.cdi_devices.add(name=name)
        with self._lock:
            self._list = listing
            if allocatable is not None:
                answer = self._pb2.AllocatableResourcesResponse(cpu_ids=[0, 1])
                for resource, ids in allocatable.items():
                    answer.devices.add(resource_name=resource, device_ids=list(ids))
                self._allocatable = answer

    def stop(self) -> None:
        self._server.stop(grace=None).wait()

    def _serves(self, method: str, context: Any) -> bool:
        self.calls.append(method)
        if method not in self._implemented:
            context.abort(grpc.StatusCode.UNIMPLEMENTED, f"{method} is disabled on this kubelet")
            return False
        return True

    def _answer(self, method: str, context: Any) -> Any:
        if not self._serves(method, context):
            return None
        with self._lock:
            return self._list if method == "List" else self._allocatable


def serve_pod_resources(
    socket_path: str,
    allocations: Sequence[Mapping[str, Any]],
    allocatable: Mapping[str, Sequence[str]] = {},
    *,
    implemented: Collection[str] = METHODS,
) -> KubeletStandIn:
    """Start a kubelet stand-in on ``socket_path``; the caller stops it (a fixture's finalizer)."""
    return KubeletStandIn(socket_path, allocations, allocatable, implemented)
