"""The kubelet's pod-resources v1 messages, described at run time (no generated code in the package).

Only the fields gpuguard reads are described: protobuf keeps the others as
unknown fields, so a kubelet that reports CPU ids, memory or topology still
parses. Field numbers follow ``k8s.io/kubelet/pkg/apis/podresources/v1/api.proto``
(``DynamicResource`` starts at 2: field 1, the class name, was removed).
The messages live in a private pool (``_protobuf.describe``) so they never
clash with another ``v1`` package registered in the process.
"""

from __future__ import annotations

from gpuguard.sources.node._protobuf import MANY as _MANY
from gpuguard.sources.node._protobuf import MESSAGE as _MESSAGE
from gpuguard.sources.node._protobuf import ONE as _ONE
from gpuguard.sources.node._protobuf import STRING as _STRING
from gpuguard.sources.node._protobuf import Field, describe

SERVICE = "/v1.PodResourcesLister/"

# message -> (field name, number, type, label, message type)
_MESSAGES: dict[str, tuple[Field, ...]] = {
    "ListPodResourcesRequest": (),
    "AllocatableResourcesRequest": (),
    "CDIDevice": (("name", 1, _STRING, _ONE, ""),),
    "ClaimResource": (
        ("cdi_devices", 1, _MESSAGE, _MANY, "CDIDevice"),
        ("driver_name", 2, _STRING, _ONE, ""),
        ("pool_name", 3, _STRING, _ONE, ""),
        ("device_name", 4, _STRING, _ONE, ""),
    ),
    "DynamicResource": (
        ("claim_name", 2, _STRING, _ONE, ""),
        ("claim_namespace", 3, _STRING, _ONE, ""),
        ("claim_resources", 4, _MESSAGE, _MANY, "ClaimResource"),
    ),
    "ContainerDevices": (
        ("resource_name", 1, _STRING, _ONE, ""),
        ("device_ids", 2, _STRING, _MANY, ""),
    ),
    "ContainerResources": (
        ("name", 1, _STRING, _ONE, ""),
        ("devices", 2, _MESSAGE, _MANY, "ContainerDevices"),
        ("dynamic_resources", 5, _MESSAGE, _MANY, "DynamicResource"),
    ),
    "PodResources": (
        ("name", 1, _STRING, _ONE, ""),
        ("namespace", 2, _STRING, _ONE, ""),
        ("containers", 3, _MESSAGE, _MANY, "ContainerResources"),
    ),
    "ListPodResourcesResponse": (("pod_resources", 1, _MESSAGE, _MANY, "PodResources"),),
    "AllocatableResourcesResponse": (("devices", 1, _MESSAGE, _MANY, "ContainerDevices"),),
}


MESSAGES = describe("gpuguard/podresources_v1.proto", "v1", _MESSAGES)
