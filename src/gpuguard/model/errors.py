"""Errors that name where bad input was found."""

from __future__ import annotations

from collections.abc import Mapping


class InputError(ValueError):
    """Bad input: ``where`` names the field (``toolkit.config``, ``container.process.env[2]``)."""

    def __init__(self, where: str, message: str) -> None:
        super().__init__(f"{where}: {message}" if where else message)
        self.where = where
        self.message = message


def type_name(value: object) -> str:
    """A YAML/JSON-flavoured type name for messages: "expected a string, got number"."""
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
    return "list" if isinstance(value, list | tuple) else type(value).__name__
