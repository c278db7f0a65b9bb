"""The few containerd API messages the node agent reads, described at run time.

No generated code: the messages are declared here as a ``FileDescriptorProto``
in a private pool, with the field numbers of containerd's
``api/services/containers/v1/containers.proto``,
``api/services/tasks/v1/tasks.proto``, ``api/types/task/task.proto`` and the runc
shim's ``runtime/v2/runc/options/oci.proto``
(stable since containerd 1.0).  Fields the agent does not read are left out;
protobuf skips them on the wire.  Map fields are declared as their wire form
(repeated key/value entries), ``google.protobuf.Any`` as its two fields.
"""

from __future__ import annotations

from typing import Any

from google.protobuf import descriptor_pb2, descriptor_pool
from google.protobuf.message_factory import GetMessageClass

_PACKAGE = "gpuguard.containerd"
CONTAINERS_LIST = "/containerd.services.containers.v1.Containers/List"
TASKS_LIST = "/containerd.services.tasks.v1.Tasks/List"

# containerd.v1.types.Status
TASK_STATUS = {0: "unknown", 1: "created", 2: "running", 3: "stopped", 4: "paused", 5: "pausing"}

_F = descriptor_pb2.FieldDescriptorProto
_STRING, _BYTES, _UINT32, _ENUM, _MESSAGE = _F.TYPE_STRING, _F.TYPE_BYTES, _F.TYPE_UINT32, _F.TYPE_ENUM, _F.TYPE_MESSAGE
_OPTIONAL, _REPEATED = _F.LABEL_OPTIONAL, _F.LABEL_REPEATED

# message name -> ((field name, number, type, label, message type name or ""), ...)
_MESSAGES: dict[str, tuple[tuple[str, int, int, int, str], ...]] = {
    "Any": (("type_url", 1, _STRING, _OPTIONAL, ""), ("value", 2, _BYTES, _OPTIONAL, "")),
    "Label": (("key", 1, _STRING, _OPTIONAL, ""), ("value", 2, _STRING, _OPTIONAL, "")),
    "Runtime": (("name", 1, _STRING, _OPTIONAL, ""), ("options", 2, _MESSAGE, _OPTIONAL, "Any")),
    # containerd.runc.v1.Options (runtime/v2/runc/options/oci.proto): the runc-compatible binary the shim runs,
    # which is how a CRI runtime handler such as `nvidia` selects nvidia-container-runtime
    "RuncOptions": (("binary_name", 6, _STRING, _OPTIONAL, ""),),
    "Container": (
        ("id", 1, _STRING, _OPTIONAL, ""),
        ("labels", 2, _MESSAGE, _REPEATED, "Label"),
        ("image", 3, _STRING, _OPTIONAL, ""),
        ("runtime", 4, _MESSAGE, _OPTIONAL, "Runtime"),
        ("spec", 5, _MESSAGE, _OPTIONAL, "Any"),
        ("sandbox", 11, _STRING, _OPTIONAL, ""),
    ),
    "ListContainersRequest": (("filters", 1, _STRING, _REPEATED, ""),),
    "ListContainersResponse": (("containers", 1, _MESSAGE, _REPEATED, "Container"),),
    "Process": (
        ("container_id", 1, _STRING, _OPTIONAL, ""),
        ("id", 2, _STRING, _OPTIONAL, ""),
        ("pid", 3, _UINT32, _OPTIONAL, ""),
        ("status", 4, _ENUM, _OPTIONAL, "Status"),
        ("exit_status", 9, _UINT32, _OPTIONAL, ""),
    ),
    "ListTasksRequest": (("filter", 1, _STRING, _OPTIONAL, ""),),
    "ListTasksResponse": (("tasks", 1, _MESSAGE, _REPEATED, "Process"),),
}


def _file() -> descriptor_pb2.FileDescriptorProto:
    proto = descriptor_pb2.FileDescriptorProto(name="gpuguard/containerd.proto", package=_PACKAGE, syntax="proto3")
    status = proto.enum_type.add(name="Status")
    for number, name in TASK_STATUS.items():
        status.value.add(name=name.upper(), number=number)
    for message, fields in _MESSAGES.items():
        described = proto.message_type.add(name=message)
        for name, number, kind, label, type_name in fields:
            field = described.field.add(name=name, number=number, type=kind, label=label)
            if type_name:
                field.type_name = f".{_PACKAGE}.{type_name}"
    return proto


_POOL = descriptor_pool.DescriptorPool()
_POOL.Add(_file())


def message(name: str) -> Any:
    """The message class for one of the declared messages (``Container``, ``ListTasksResponse``...)."""
    return GetMessageClass(_POOL.FindMessageTypeByName(f"{_PACKAGE}.{name}"))


ListContainersRequest = message("ListContainersRequest")
ListContainersResponse = message("ListContainersResponse")
ListTasksRequest = message("ListTasksRequest")
ListTasksResponse = message("ListTasksResponse")
RuncOptions = message("RuncOptions")
