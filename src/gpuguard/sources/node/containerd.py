"""containerd over its gRPC socket: every container of a namespace, its spec and its task.

Two unary calls (``Containers/List`` and ``Tasks/List``) per scan.  A channel
that failed is dropped, so a restarted containerd is reached again on the
next call instead of waiting out gRPC's reconnect backoff.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import grpc
from google.protobuf.message import DecodeError

from gpuguard.model.container import ContainerSpec
from gpuguard.model.observed import RuntimeContainer
from gpuguard.sources.node import _containerd_api as api
from gpuguard.sources.node._containerd_spec import SpecError, spec_parts
from gpuguard.sources.node._grpc import UnixGrpcClient
from gpuguard.sources.node.errors import NodeSourceError

_MAX_MESSAGE = 512 << 20  # Containers/List answers in one message; privileged specs make it large


class ContainerdClient(UnixGrpcClient):
    """A read-only client of containerd's containers and tasks services."""

    source = "containerd"

    def __init__(
        self, address: str = "/run/containerd/containerd.sock", namespace: str = "k8s.io", timeout: float = 5.0
    ) -> None:
        super().__init__(address, timeout, [("grpc.max_receive_message_length", _MAX_MESSAGE),
                                            ("grpc.enable_retries", 0)])
        self.namespace = namespace

    def _check_socket(self) -> None:
        if not os.path.exists(self.socket_path):
            self.close()
            raise NodeSourceError("containerd", f"no socket at {self.socket_path}")

    def _rpc_failed(self, method: str, code: grpc.StatusCode | None, detail: str) -> str:
        name = code.name if code is not None else "error"
        return f"{method} at {self.socket_path}: {name}: {detail}"

    def _call(self, method: str, request: Any, response: Any) -> Any:
        return self._unary(method, request, response, (("containerd-namespace", self.namespace),))

    def _tasks(self) -> dict[str, tuple[int | None, str]]:
        answer = self._call(api.TASKS_LIST, api.ListTasksRequest(), api.ListTasksResponse)
        tasks: dict[str, tuple[int | None, str]] = {}
        for t in answer.tasks:  # containerd fills ``id`` (the container's id) and leaves ``container_id`` empty
            status = api.TASK_STATUS.get(t.status, "unknown")
            live = t.pid > 0 and status in ("created", "running", "paused", "pausing")  # created: runc init holds /dev
            tasks[t.id or t.container_id] = (t.pid if live else None, status)
        return tasks

    def containers(self) -> list[RuntimeContainer]:
        """Every container of the namespace with its spec parts, labels and task (pid None without one).

        A container whose spec cannot be read is returned with ``error`` set;
        raises NodeSourceError when containerd cannot be asked.
        """
        listed = self._call(api.CONTAINERS_LIST, api.ListContainersRequest(), api.ListContainersResponse)
        tasks = self._tasks()
        return [_container(c, tasks.get(c.id)) for c in listed.containers]


def _container(c: Any, task: tuple[int | None, str] | None) -> RuntimeContainer:
    labels: dict[str, str] = {entry.key: entry.value for entry in c.labels}
    pid, status = task if task is not None else (None, "created")  # CRI: a container not started has no task
    parts, error = None, None
    try:
        if not c.spec.value:
            raise SpecError("container has no spec")
        parts = spec_parts(c.spec.value)
    except SpecError as e:
        error = f"container {c.id}: {e}"
    annotations: Mapping[str, str] = parts.spec.annotations if parts else {}
    sandbox = labels.get("io.cri-containerd.kind") == "sandbox" or (
        annotations.get("io.kubernetes.cri.container-type") == "sandbox"
    )
    return RuntimeContainer(
        id=c.id,
        namespace=labels.get("io.kubernetes.pod.namespace"),
        pod=labels.get("io.kubernetes.pod.name"),
        container=labels.get("io.kubernetes.container.name"),
        pod_uid=labels.get("io.kubernetes.pod.uid"),
        sandbox=sandbox,
        image=c.image,
        runtime=c.runtime.name,
        runtime_binary=_runc_binary(c.runtime.options),
        pid=pid,
        status=status,
        spec=parts.spec if parts else ContainerSpec(),
        linux_devices=parts.linux_devices if parts else (),
        privileged=parts.privileged if parts else False,
        labels=labels,
        error=error,
    )


_RUNC_OPTIONS = "containerd.runc.v1.Options"


def _runc_binary(options: Any) -> str | None:
    """The runc shim's BinaryName ("" for plain runc); None when the options are absent or of another shim."""
    if not options.type_url.endswith(_RUNC_OPTIONS):
        return None
    try:
        return str(api.RuncOptions.FromString(options.value).binary_name)
    except DecodeError:
        return None
