"""The parts of an OCI runtime spec (``config.json``) that decide GPU exposure.

This is what the NVIDIA Container Toolkit sees when a container is created:
the final environment, mounts, annotations and capability bounding set.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class Mount:
    """One OCI mount; only source and destination matter to the toolkit."""

    source: str
    destination: str


@dataclass(frozen=True, slots=True)
class ContainerSpec:
    """A container as the runtime receives it.

    ``env`` is the OCI ``process.env`` list (``KEY=VALUE`` strings, in order).
    ``bounding`` holds capability names as OCI writes them (``CAP_SYS_ADMIN``).
    ``unknown_env`` names variables whose value could not be known (a secret
    behind ``valueFrom``, an env from an image that was not inspected); with
    ``image_env_unknown`` any variable may be set by the image. The engine
    never treats an unknown as safe.
    """

    env: tuple[str, ...] = ()
    bounding: frozenset[str] = frozenset()
    mounts: tuple[Mount, ...] = ()
    annotations: Mapping[str, str] = field(default_factory=dict)
    unknown_env: Mapping[str, str] = field(default_factory=dict)  # name -> why unknown
    image_env_unknown: str | None = None  # why the image env is unknown, None when known

    @property
    def privileged(self) -> bool:
        """The toolkit's notion of privileged: CAP_SYS_ADMIN in the bounding set."""
        return "CAP_SYS_ADMIN" in self.bounding
