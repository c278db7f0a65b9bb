"""The kubelet's pod-resources v1 messages, described at run time (no generated code in the package).

Only the fields gpuguard reads are described: protobuf keeps the others as
unknown fields, so a kubelet that reports CPU ids, memory or topology still
parses. Field numbers follow ``k8s.io/kubelet/pkg/apis/podresources/v1/api.proto``
(``DynamicResource`` starts at 2: field 1, the class name, was removed).
The messages live in a private pool so they never clash with another
``v1`` package registered in the process.
"""

from __future__ import annotations

from typing import Any

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

SERVICE = "/v1.PodResourcesLister/"

_F = descriptor_pb2.FieldDescriptorProto
_STRING, _MESSAGE = _F.TYPE_STRING, _F.TYPE_MESSAGE
_ONE, _MANY = _F.LABEL_OPTIONAL, _F.LABEL_REPEATED

# message -> (field name, number, type, label, message type)
_MESSAGES: dict[str, tuple[tuple[str, int, int, int, str], ...]] = {
    "ListPodResourcesRequest": (),
    "AllocatableResourcesRequest": (),
    "CDIDevice": (("name", 1, _STRING, _ONE, ""),),
    "ClaimResource": (
        ("cdi_devices", 1, _MESSAGE, _MANY, ".v1.CDIDevice"),
        ("driver_name", 2, _STRING, _ONE, ""),
        ("pool_name", 3, _STRING, _ONE, ""),
        ("device_name", 4, _STRING, _ONE, ""),
    ),
    "DynamicResource": (
        ("claim_name", 2, _STRING, _ONE, ""),
        ("claim_namespace", 3, _STRING, _ONE, ""),
        ("claim_resources", 4, _MESSAGE, _MANY, ".v1.ClaimResource"),
    ),
    "ContainerDevices": (
        ("resource_name", 1, _STRING, _ONE, ""),
        ("device_ids", 2, _STRING, _MANY, ""),
    ),
    "ContainerResources": (
        ("name", 1, _STRING, _ONE, ""),
        ("devices", 2, _MESSAGE, _MANY, ".v1.ContainerDevices"),
        ("dynamic_resources", 5, _MESSAGE, _MANY, ".v1.DynamicResource"),
    ),
    "PodResources": (
        ("name", 1, _STRING, _ONE, ""),
        ("namespace", 2, _STRING, _ONE, ""),
        ("containers", 3, _MESSAGE, _MANY, ".v1.ContainerResources"),
    ),
    "ListPodResourcesResponse": (("pod_resources", 1, _MESSAGE, _MANY, ".v1.PodResources"),),
    "AllocatableResourcesResponse": (("devices", 1, _MESSAGE, _MANY, ".v1.ContainerDevices"),),
}


def _build() -> dict[str, Any]:
    file = descriptor_pb2.FileDescriptorProto(name="gpuguard/podresources_v1.proto", package="v1", syntax="proto3")
    for name, fields in _MESSAGES.items():
        message = file.message_type.add(name=name)
        for field_name, number, kind, label, type_name in fields:
            field = message.field.add(name=field_name, number=number, type=kind, label=label)
            if type_name:
                field.type_name = type_name
    pool = descriptor_pool.DescriptorPool()
    pool.Add(file)
    return {name: message_factory.GetMessageClass(pool.FindMessageTypeByName(f"v1.{name}")) for name in _MESSAGES}


MESSAGES = _build()
