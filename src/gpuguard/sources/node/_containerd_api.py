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

from gpuguard.sources.node._protobuf import BYTES as _BYTES
from gpuguard.sources.node._protobuf import ENUM as _ENUM
from gpuguard.sources.node._protobuf import MANY as _REPEATED
from gpuguard.sources.node._protobuf import MESSAGE as _MESSAGE
from gpuguard.sources.node._protobuf import ONE as _OPTIONAL
from gpuguard.sources.node._protobuf import STRING as _STRING
from gpuguard.sources.node._protobuf import UINT32 as _UINT32
from gpuguard.sources.node._protobuf import Field, describe

_PACKAGE = "gpuguard.containerd"
CONTAINERS_LIST = "/containerd.services.containers.v1.Containers/List"
TASKS_LIST = "/containerd.services.tasks.v1.Tasks/List"

# containerd.v1.types.Status
TASK_STATUS = {0: "unknown", 1: "created", 2: "running", 3: "stopped", 4: "paused", 5: "pausing"}

# message name -> ((field name, number, type, label, message type name or ""), ...)
_MESSAGES: dict[str, tuple[Field, ...]] = {
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


_CLASSES = describe("gpuguard/containerd.proto", _PACKAGE, _MESSAGES, {"Status": TASK_STATUS})


def message(name: str) -> Any:
    """The message class for one of the declared messages (``Container``, ``ListTasksResponse``...)."""
    return _CLASSES[name]


ListContainersRequest = message("ListContainersRequest")
ListContainersResponse = message("ListContainersResponse")
ListTasksRequest = message("ListTasksRequest")
ListTasksResponse = message("ListTasksResponse")
RuncOptions = message("RuncOptions")
