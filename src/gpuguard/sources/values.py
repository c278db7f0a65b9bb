"""Small readers for untyped documents: each names the field it rejects."""

from __future__ import annotations

from collections.abc import Mapping, Sequence


def type_name(value: object) -> str:
    """A YAML/JSON-flavoured type name for error messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, Mapping):
        return "mapping"
    if isinstance(value, Sequence):
        return "list"
    return type(value).__name__
