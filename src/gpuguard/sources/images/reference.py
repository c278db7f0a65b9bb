"""Image references as Docker and containerd read them (distribution/reference grammar).

``busybox`` is ``docker.io/library/busybox:latest``; the first path component is a
registry host only when it holds a ``.`` or ``:``, is ``localhost``, or has upper-case
letters, so ``myorg/app`` is on Docker Hub and ``localhost:5000/app`` is not.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from gpuguard.model.errors import InputError

__all__ = ["DOCKER_HUB", "DOCKER_HUB_ENDPOINT", "Reference", "parse_reference"]

DOCKER_HUB = "docker.io"
DOCKER_HUB_ENDPOINT = "registry-1.docker.io"
DOCKER_HUB_ALIASES = frozenset({"docker.io", "index.docker.io", "registry-1.docker.io"})
MAX_NAME = 255

_HOST_LABEL = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_HOST_RE = re.compile(rf"^(?:{_HOST_LABEL}(?:\.{_HOST_LABEL})*|\[[0-9a-fA-F:.]+\])(?::[0-9]+)?$")
_COMPONENT_RE = re.compile(r"^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$")
_TAG_RE = re.compile(r"^[\w][\w.-]{0,127}$")
_DIGEST_RE = re.compile(r"^[a-z0-9]+(?:[+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$")
_HEX_LENGTH = {"sha256": 64, "sha512": 128}
_ID_RE = re.compile(r"^[a-f0-9]{64}$")


@dataclass(frozen=True, slots=True)
class Reference:
    """A normalised reference: ``registry/repository[:tag][@digest]``."""

    registry: str  # "docker.io", "nvcr.io", "localhost:5000"
    repository: str  # "library/busybox"
    tag: str | None  # "latest" when neither tag nor digest was written
    digest: str | None  # "sha256:<hex>"

    @property
    def endpoint(self) -> str:
        """The host[:port] spoken to: Docker Hub's API lives on ``registry-1.docker.io``."""
        return DOCKER_HUB_ENDPOINT if self.registry == DOCKER_HUB else self.registry

    @property
    def name(self) -> str:
        """``registry/repository``, no tag or digest."""
        return f"{self.registry}/{self.repository}"

    @property
    def identifier(self) -> str:
        """What the manifest endpoint is asked for: the digest when there is one, else the tag."""
        return self.digest or self.tag or "latest"

    def __str__(self) -> str:
        text = self.name
        if self.tag:
            text += f":{self.tag}"
        if self.digest:
            text += f"@{self.digest}"
        return text


def _check_digest(digest: str, text: str) -> str:
    if not _DIGEST_RE.match(digest):
        raise InputError("", f"invalid image reference {text!r}: bad digest")
    algorithm, encoded = digest.split(":", 1)
    length = _HEX_LENGTH.get(algorithm)
    if length is None:
        raise InputError("", f"invalid image reference {text!r}: unsupported digest algorithm {algorithm!r}")
    if len(encoded) != length or not re.fullmatch(r"[a-f0-9]+", encoded):
        raise InputError("", f"invalid image reference {text!r}: {algorithm} digest must be {length} lower-case hex")
    return digest


def parse_reference(text: str) -> Reference:
    """Parse and normalise ``text``; raise :class:`InputError` when it is not a valid reference."""
    if not isinstance(text, str) or not text or text != text.strip():
        raise InputError("", f"invalid image reference {text!r}")
    rest, digest = text, None
    if "@" in rest:
        rest, digest = rest.split("@", 1)
        digest = _check_digest(digest, text)
    tag = None
    slash = rest.rfind("/")
    colon = rest.rfind(":")
    if colon > slash:
        rest, tag = rest[:colon], rest[colon + 1 :]
        if not _TAG_RE.match(tag):
            raise InputError("", f"invalid image reference {text!r}: bad tag")
    if not rest:
        raise InputError("", f"invalid image reference {text!r}: no repository")
    first, _, remainder = rest.partition("/")
    if remainder and ("." in first or ":" in first or first == "localhost" or first.lower() != first):
        registry, path = first, remainder
        if not _HOST_RE.match(registry):
            raise InputError("", f"invalid image reference {text!r}: bad registry host")
        registry = registry.lower()
        if registry in DOCKER_HUB_ALIASES:
            registry = DOCKER_HUB
    else:
        registry, path = DOCKER_HUB, rest
    if _ID_RE.match(path) and digest is None and tag is None and registry == DOCKER_HUB:
        raise InputError("", f"invalid image reference {text!r}: an image ID is not a reference")
    components = path.split("/")
    if not all(_COMPONENT_RE.match(c) for c in components):
        raise InputError("", f"invalid image reference {text!r}: bad repository name")
    if registry == DOCKER_HUB and len(components) == 1:
        path = f"library/{path}"
    if len(f"{registry}/{path}") > MAX_NAME:
        raise InputError("", f"invalid image reference {text!r}: name longer than {MAX_NAME} characters")
    if tag is None and digest is None:
        tag = "latest"
    return Reference(registry=registry, repository=path, tag=tag, digest=digest)
