"""Protobuf messages described at run time: the node sources speak gRPC with no generated code.

Each API module lists only the fields gpuguard reads, with upstream's field
numbers; protobuf keeps the others as unknown fields on the wire.  Every file
goes into a private pool, so its package never clashes with another module of
the same name registered in the process (the kubelet's package is just ``v1``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

_F = descriptor_pb2.FieldDescriptorProto
STRING, BYTES, UINT32, ENUM, MESSAGE = _F.TYPE_STRING, _F.TYPE_BYTES, _F.TYPE_UINT32, _F.TYPE_ENUM, _F.TYPE_MESSAGE
ONE, MANY = _F.LABEL_OPTIONAL, _F.LABEL_REPEATED

Field = tuple[str, int, int, int, str]  # name, number, type, label, message or enum type name ("" for scalars)


def describe(
    file_name: str,
    package: str,
    messages: Mapping[str, Sequence[Field]],
    enums: Mapping[str, Mapping[int, str]] | None = None,
) -> dict[str, Any]:
    """Message classes (by name) for a file of ``messages`` and ``enums`` in ``package``, in a pool of its own.

    Type names are relative to ``package`` (``"Container"``), as inside one ``.proto`` file.
    """
    proto = descriptor_pb2.FileDescriptorProto(name=file_name, package=package, syntax="proto3")
    for enum_name, values in (enums or {}).items():
        enum = proto.enum_type.add(name=enum_name)
        for number, value in values.items():
            enum.value.add(name=value.upper(), number=number)
    for message_name, fields in messages.items():
        described = proto.message_type.add(name=message_name)
        for name, number, kind, label, type_name in fields:
            field = described.field.add(name=name, number=number, type=kind, label=label)
            if type_name:
                field.type_name = f".{package}.{type_name}"
    pool = descriptor_pool.DescriptorPool()
    pool.Add(proto)
    return {name: message_factory.GetMessageClass(pool.FindMessageTypeByName(f"{package}.{name}"))
            for name in messages}
