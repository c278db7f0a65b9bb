"""The one error node sources raise: a source that cannot be read now (the agent reports it degraded)."""

from __future__ import annotations


class NodeSourceError(Exception):
    """A node source is unreachable or answered nonsense; ``source`` names it (containerd, kubelet, ...)."""

    def __init__(self, source: str, message: str) -> None:
        super().__init__(f"{source}: {message}")
        self.source = source
        self.message = message
