"""The kubelet's pod-resources API: which devices the kubelet allocated to which container.

This is the allocation side of the node agent's comparison (what each
container was *given*), read from the kubelet's unix socket with the v1
``PodResourcesLister`` service. Messages are described at run time
(``_pod_resources_proto``) so no generated code ships in the package.
"""

from __future__ import annotations

import os
import stat
from typing import Any

import grpc
from google.protobuf.message import DecodeError

from gpuguard.model.observed import ContainerAllocation
from gpuguard.sources.node._grpc import UnixGrpcClient
from gpuguard.sources.node._pod_resources_proto import MESSAGES, SERVICE
from gpuguard.sources.node.errors import NodeSourceError

DEFAULT_SOCKET = "/var/lib/kubelet/pod-resources/kubelet.sock"
_MAX_MESSAGE = 16 << 20  # the kubelet's own limit for pod-resources answers
_WHY = {
    grpc.StatusCode.UNAVAILABLE: "unavailable",
    grpc.StatusCode.UNIMPLEMENTED: "does not implement",
    grpc.StatusCode.DEADLINE_EXCEEDED: "did not answer in time for",
    grpc.StatusCode.PERMISSION_DENIED: "denied",
}


class PodResourcesClient(UnixGrpcClient):
    """A client of the kubelet's pod-resources v1 API on one unix socket."""

    source = "kubelet"

    def __init__(self, socket_path: str = DEFAULT_SOCKET, timeout: float = 5.0) -> None:
        super().__init__(os.path.abspath(socket_path), timeout, [("grpc.max_receive_message_length", _MAX_MESSAGE)])

    def list(self) -> tuple[ContainerAllocation, ...]:
        """Every container the kubelet knows with the devices (and DRA claims) allocated to it."""
        answer = self._call("List", "ListPodResourcesRequest", "ListPodResourcesResponse")
        out: list[ContainerAllocation] = []
        for pod in answer.pod_resources:
            for container in pod.containers:
                out.append(
                    ContainerAllocation(
                        namespace=pod.namespace,
                        pod=pod.name,
                        container=container.name,
                        devices=_devices(container.devices),
                        claims=tuple(_claim(claim) for claim in container.dynamic_resources),
                    )
                )
        return tuple(out)

    def allocatable(self) -> dict[str, tuple[str, ...]]:
        """The node's allocatable devices per resource name (``nvidia.com/gpu`` -> device ids)."""
        answer = self._call("GetAllocatableResources", "AllocatableResourcesRequest", "AllocatableResourcesResponse")
        return _devices(answer.devices)

    @property
    def _where(self) -> str:
        return f"pod-resources socket {self.socket_path}"

    def _check_socket(self) -> None:
        try:
            if not stat.S_ISSOCK(os.stat(self.socket_path).st_mode):
                raise NodeSourceError("kubelet", f"{self._where} is not a socket")
        except OSError as e:
            raise NodeSourceError("kubelet", f"no {self._where} ({e.strerror})") from None

    def _rpc_failed(self, method: str, code: grpc.StatusCode | None, detail: str) -> str:
        code = code or grpc.StatusCode.UNKNOWN
        why = _WHY.get(code, f"failed ({code.name}) on")
        return f"{self._where} {why} {_short(method)}: {detail}"

    def _unreadable(self, method: str, error: DecodeError) -> str:
        return f"{self._where} answered {_short(method)} with an unreadable message: {error}"

    def _call(self, method: str, request: str, response: str) -> Any:
        return self._unary(SERVICE + method, MESSAGES[request](), MESSAGES[response])


def _short(method: str) -> str:
    """``List`` of ``/v1.PodResourcesLister/List``: the method as the messages name it."""
    return method.rsplit("/", 1)[-1]


def _devices(entries: Any) -> dict[str, tuple[str, ...]]:
    """Device ids per resource name, in the kubelet's order; one resource may come in several entries."""
    out: dict[str, dict[str, None]] = {}
    for entry in entries:
        out.setdefault(entry.resource_name, {}).update(dict.fromkeys(entry.device_ids))
    return {resource: tuple(ids) for resource, ids in out.items()}


def _claim(claim: Any) -> str:
    """``namespace/claim: device, device``; a device is ``driver/pool/device`` or its CDI names."""
    devices = []
    for res in claim.claim_resources:
        if res.device_name:
            devices.append("/".join(p for p in (res.driver_name, res.pool_name, res.device_name) if p))
        devices.extend(cdi.name for cdi in res.cdi_devices if not res.device_name)
    return f"{claim.claim_namespace}/{claim.claim_name}: {', '.join(devices)}"
