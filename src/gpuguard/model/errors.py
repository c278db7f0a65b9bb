"""Errors that name where bad input was found."""

from __future__ import annotations


class InputError(ValueError):
    """Bad input: ``where`` names the field (``toolkit.config``, ``container.process.env[2]``)."""

    def __init__(self, where: str, message: str) -> None:
        super().__init__(f"{where}: {message}" if where else message)
        self.where = where
        self.message = message
