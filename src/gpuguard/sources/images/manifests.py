"""Manifests, image indexes and image configs: untrusted JSON in, checked structures out.

Docker schema 2 and OCI documents share one shape, so both are read by the same code;
the kind is told by content (``manifests`` vs ``config``), not by the Content-Type a
server or an archive claims. Nothing here raises anything but :class:`ImageError`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from gpuguard.sources.images.digests import valid_digest
from gpuguard.sources.images.platforms import Platform
from gpuguard.sources.images.problems import ImageError

__all__ = [
    "ACCEPT",
    "Config",
    "Descriptor",
    "Index",
    "Manifest",
    "parse_config",
    "parse_manifest",
    "select_platforms",
]

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
ACCEPT = ", ".join((OCI_INDEX, OCI_MANIFEST, DOCKER_LIST, DOCKER_MANIFEST))
INDEX_TYPES = frozenset({OCI_INDEX, DOCKER_LIST})
MANIFEST_TYPES = frozenset({OCI_MANIFEST, DOCKER_MANIFEST})
CONFIG_TYPES = frozenset({"application/vnd.oci.image.config.v1+json", "application/vnd.docker.container.image.v1+json"})
ATTESTATION = "attestation-manifest"


@dataclass(frozen=True, slots=True)
class Descriptor:
    """What a manifest says about another blob: its type, digest, size and platform."""

    media_type: str
    digest: str
    size: int
    platform: Platform | None = None
    annotations: tuple[tuple[str, str], ...] = ()

    def annotation(self, key: str) -> str | None:
        """One annotation's value."""
        return dict(self.annotations).get(key)


@dataclass(frozen=True, slots=True)
class Index:
    """An OCI image index or Docker manifest list."""

    manifests: tuple[Descriptor, ...]


@dataclass(frozen=True, slots=True)
class Manifest:
    """One platform's image manifest: what matters here is its config descriptor."""

    config: Descriptor


@dataclass(frozen=True, slots=True)
class Config:
    """The parts of an image config that matter: its Env and the platform it is built for."""

    env: tuple[str, ...]
    platform: Platform | None


def _json_object(data: bytes, what: str) -> dict[str, Any]:
    try:
        value = json.loads(data)
    except (ValueError, RecursionError):
        raise ImageError(f"invalid {what} JSON") from None
    if not isinstance(value, dict):
        raise ImageError(f"invalid {what} JSON: not an object")
    return value


def _platform(value: Any) -> Platform | None:
    if not isinstance(value, dict):
        return None
    os_name, arch, variant = value.get("os"), value.get("architecture"), value.get("variant", "")
    if not isinstance(os_name, str) or not isinstance(arch, str) or not isinstance(variant, str):
        return None
    return Platform.of(os_name, arch, variant)


def _descriptor(value: Any, where: str) -> Descriptor:
    if not isinstance(value, dict):
        raise ImageError(f"invalid manifest: {where} is not an object")
    media_type, digest, size = value.get("mediaType", ""), value.get("digest"), value.get("size")
    if not isinstance(media_type, str):
        raise ImageError(f"invalid manifest: {where}.mediaType is not a string")
    if not valid_digest(digest):
        raise ImageError(f"invalid manifest: {where}.digest is missing or unsupported")
    if isinstance(size, bool) or not isinstance(size, int) or size < 0:
        raise ImageError(f"invalid manifest: {where}.size is not a non-negative integer")
    raw = value.get("annotations")
    annotations = (
        tuple((k, v) for k, v in raw.items() if isinstance(k, str) and isinstance(v, str))
        if isinstance(raw, dict)
        else ()
    )
    return Descriptor(media_type, str(digest), size, _platform(value.get("platform")), annotations)


def parse_manifest(data: bytes) -> Index | Manifest:
    """An index or a manifest; schema 1 and non-image documents are refused with a reason."""
    doc = _json_object(data, "manifest")
    media_type = doc.get("mediaType", "")
    if doc.get("schemaVersion") == 1:
        raise ImageError("unsupported manifest schema 1")
    if "manifests" in doc or media_type in INDEX_TYPES:
        entries = doc.get("manifests")
        if not isinstance(entries, list):
            raise ImageError("invalid manifest: manifests is not a list")
        return Index(tuple(_descriptor(e, f"manifests[{i}]") for i, e in enumerate(entries)))
    if "config" in doc or media_type in MANIFEST_TYPES:
        config = _descriptor(doc.get("config"), "config")
        if config.media_type and config.media_type not in CONFIG_TYPES:
            raise ImageError(f"not a container image (config type {config.media_type[:100]})")
        return Manifest(config)
    raise ImageError("invalid manifest: neither an image manifest nor an index")


def parse_config(data: bytes) -> Config:
    """``config.Env`` (missing or null is empty) and the platform the config names."""
    doc = _json_object(data, "config")
    section = doc.get("config")
    if section is None:
        section = {}
    if not isinstance(section, dict):
        raise ImageError("invalid config JSON: config is not an object")
    env = section.get("Env")
    if env is None:
        env = []
    if not isinstance(env, list) or not all(isinstance(e, str) for e in env):
        raise ImageError("invalid config JSON: config.Env is not a list of strings")
    return Config(tuple(env), _platform(doc))


def _runnable(entry: Descriptor) -> bool:
    if entry.annotation("vnd.docker.reference.type") == ATTESTATION:
        return False
    return entry.platform is None or entry.platform.os != "unknown"


def select_platforms(index: Index, wanted: Platform, all_platforms: bool) -> list[Descriptor]:
    """The entries to read: the best match for ``wanted``, or every runnable one."""
    entries = [e for e in index.manifests if _runnable(e)]
    if all_platforms:
        if not entries:
            raise ImageError("no image in the index")
        return entries
    ranked = [(rank, i) for i, e in enumerate(entries) if e.platform and (rank := wanted.rank(e.platform)) is not None]
    if not ranked:
        raise ImageError(f"no {wanted} image in the index")
    return [entries[min(ranked)[1]]]
