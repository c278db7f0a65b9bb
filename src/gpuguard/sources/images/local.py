"""Local images: OCI image layouts (directories), OCI archives and ``docker save`` tars.

Names come from ``RepoTags`` (``docker save``'s ``manifest.json``) and from the
``io.containerd.image.name`` or ``org.opencontainers.image.ref.name`` annotations of
``index.json``; a ``ref.name`` that is only a tag (``latest``, as ``skopeo copy oci:dir:tag``
writes) names no repository and is not matched by name. A digest reference matches any
manifest or index stored in a source, whatever its name: the content is what it says.

Archives are read in place: the member table is read once and members are read on demand,
never extracted. Only regular members are read, names with ``..`` or a leading ``/`` are
refused, and members over the size limits are refused before they are read. Every blob is
checked against its digest.
"""

from __future__ import annotations

import json
import os
import posixpath
import tarfile
import threading
from dataclasses import dataclass

from gpuguard.model.errors import InputError
from gpuguard.sources.images.digests import compute, split_digest, valid_digest
from gpuguard.sources.images.problems import ImageError
from gpuguard.sources.images.reference import Reference, parse_reference

__all__ = ["LocalHit", "LocalImages"]

NAME_ANNOTATIONS = ("io.containerd.image.name", "org.opencontainers.image.ref.name")


def _safe_name(name: str) -> str | None:
    """A member name normalised (``./x`` -> ``x``), or None when it climbs out or is absolute."""
    if name.startswith("/") or "\\" in name:
        return None
    normal = posixpath.normpath(name)
    if normal == ".." or normal.startswith("../"):
        return None
    return normal


class _Store:
    """Blobs by digest from one source."""

    label: str

    def has(self, digest: str) -> bool:
        raise NotImplementedError

    def read_path(self, name: str, limit: int, what: str) -> bytes:
        raise NotImplementedError

    def read(self, digest: str, limit: int, what: str) -> bytes:
        """A blob, checked against its digest."""
        algorithm, encoded = split_digest(digest)
        data = self.read_path(f"blobs/{algorithm}/{encoded}", limit, what)
        if compute(data, algorithm) != digest:
            raise ImageError(f"{what} digest mismatch")
        return data


class _DirStore(_Store):
    def __init__(self, root: str) -> None:
        self.root = os.path.realpath(root)
        self.label = f"oci-layout:{root}"

    def has(self, digest: str) -> bool:
        algorithm, encoded = split_digest(digest)
        return os.path.isfile(os.path.join(self.root, "blobs", algorithm, encoded))

    def read_path(self, name: str, limit: int, what: str) -> bytes:
        path = os.path.realpath(os.path.join(self.root, name))
        if not path.startswith(self.root + os.sep):
            raise ImageError(f"{self.label}: {name} points outside the layout")
        try:
            with open(path, "rb") as f:
                data = f.read(limit + 1)
        except FileNotFoundError:
            raise ImageError(f"{self.label}: {name} is missing") from None
        except OSError as exc:
            raise ImageError(f"{self.label}: cannot read {name}: {exc.strerror}") from None
        if len(data) > limit:
            raise ImageError(f"{what} larger than {limit} bytes")
        return data


class _TarStore(_Store):
    def __init__(self, path: str) -> None:
        self.label = f"archive:{path}"
        self._lock = threading.Lock()
        try:
            self._tar = tarfile.open(path, "r:*")  # noqa: SIM115 - kept open for on-demand reads
            members = self._tar.getmembers()
        except (OSError, tarfile.TarError, EOFError) as exc:
            raise InputError(path, f"cannot read image archive: {getattr(exc, 'strerror', None) or exc}") from None
        self._members: dict[str, tarfile.TarInfo] = {}
        for member in members:
            name = _safe_name(member.name)
            if name is not None:
                self._members.setdefault(name, member)

    def names(self) -> set[str]:
        return set(self._members)

    def has(self, digest: str) -> bool:
        algorithm, encoded = split_digest(digest)
        return f"blobs/{algorithm}/{encoded}" in self._members

    def read_path(self, name: str, limit: int, what: str) -> bytes:
        safe = _safe_name(name)
        if safe is None:
            raise ImageError(f"{self.label}: refusing member name {name[:200]!r}")
        member = self._members.get(safe)
        if member is None:
            raise ImageError(f"{self.label}: {safe} is missing")
        if not member.isreg():
            raise ImageError(f"{self.label}: {safe} is not a regular file")
        if member.size > limit:
            raise ImageError(f"{what} larger than {limit} bytes")
        with self._lock:
            try:
                handle = self._tar.extractfile(member)
                data = handle.read(limit + 1) if handle is not None else b""
            except (OSError, tarfile.TarError, EOFError):
                raise ImageError(f"{self.label}: cannot read {safe}") from None
        if len(data) > limit:
            raise ImageError(f"{what} larger than {limit} bytes")
        return data

    def close(self) -> None:
        self._tar.close()


@dataclass(frozen=True, slots=True)
class LocalHit:
    """A local image for a reference: its root manifest/index, or (docker save) its config."""

    store: _Store
    root: bytes | None  # manifest or index JSON
    digest: str | None  # the root's digest, when the source says
    config: bytes | None = None  # legacy docker save entry: the config itself

    @property
    def source(self) -> str:
        """``oci-layout:<path>`` or ``archive:<path>``."""
        return self.store.label


def _key(ref: Reference) -> str:
    return f"{ref.name}:{ref.tag}"


def _parse_name(name: str) -> Reference | None:
    if "/" not in name and ":" not in name:
        return None  # a bare tag: no repository to match
    try:
        ref = parse_reference(name)
    except InputError:
        return None
    return ref if ref.tag else None


class LocalImages:
    """Every local source, in the order given; the first that names a reference wins."""

    def __init__(self, paths: tuple[str, ...], max_manifest_bytes: int, max_config_bytes: int) -> None:
        self.max_manifest = max_manifest_bytes
        self.max_config = max_config_bytes
        self.stores: list[_Store] = []
        # name:tag -> (store, index entries, root digest) or (store, docker save config member)
        self._by_name: dict[str, tuple[_Store, list[dict[str, object]], str | None] | tuple[_Store, str]] = {}
        for path in paths:
            self._load(path)

    def _load(self, path: str) -> None:
        if os.path.isdir(path):
            if not os.path.isfile(os.path.join(path, "index.json")):
                raise InputError(path, "not an OCI image layout (no index.json)")
            store: _Store = _DirStore(path)
            has_index, has_manifest = True, False
        elif os.path.isfile(path):
            tar_store = _TarStore(path)
            store = tar_store
            names = tar_store.names()
            has_index, has_manifest = "index.json" in names, "manifest.json" in names
            if not has_index and not has_manifest:
                raise InputError(path, "not an image archive (no index.json or manifest.json)")
        else:
            raise InputError(path, "no such file or directory")
        self.stores.append(store)
        try:
            if has_index:
                self._load_index(store, path)
            if has_manifest:
                self._load_docker_manifest(store, path)
        except ImageError as exc:
            raise InputError(path, exc.reason) from None

    def _load_index(self, store: _Store, path: str) -> None:
        doc = _read_json(store, "index.json", self.max_manifest)
        entries = doc.get("manifests") if isinstance(doc, dict) else None
        if not isinstance(entries, list):
            raise InputError(path, "index.json has no manifests list")
        grouped: dict[str, list[dict[str, object]]] = {}
        for entry in entries:
            if not isinstance(entry, dict) or not valid_digest(entry.get("digest")):
                continue
            annotations = entry.get("annotations") if isinstance(entry.get("annotations"), dict) else {}
            assert isinstance(annotations, dict)
            for key in NAME_ANNOTATIONS:
                value = annotations.get(key)
                ref = _parse_name(value) if isinstance(value, str) else None
                if ref is not None:
                    grouped.setdefault(_key(ref), []).append(entry)
                    break
        for key, group in grouped.items():
            if key not in self._by_name:
                digest = str(group[0]["digest"]) if len(group) == 1 else None
                self._by_name[key] = (store, group, digest)

    def _load_docker_manifest(self, store: _Store, path: str) -> None:
        doc = _read_json(store, "manifest.json", self.max_manifest)
        if not isinstance(doc, list):
            raise InputError(path, "manifest.json is not a list")
        for entry in doc:
            if not isinstance(entry, dict) or not isinstance(entry.get("Config"), str):
                continue
            tags = entry.get("RepoTags")
            for tag in tags if isinstance(tags, list) else []:
                ref = _parse_name(tag) if isinstance(tag, str) else None
                if ref is not None:  # an earlier source, or this archive's index.json, wins
                    self._by_name.setdefault(_key(ref), (store, entry["Config"]))

    def find(self, ref: Reference) -> LocalHit | None:
        """The local image ``ref`` names, or None; raise :class:`ImageError` if it is unreadable."""
        if ref.digest is not None:
            for store in self.stores:
                if store.has(ref.digest):
                    return LocalHit(store, store.read(ref.digest, self.max_manifest, "manifest"), ref.digest)
            return None
        found = self._by_name.get(_key(ref))
        if found is None:
            return None
        if len(found) == 2:
            store, name = found
            return LocalHit(store, None, None, _docker_save_config(store, name, self.max_config))
        store, group, digest = found
        if digest is not None:
            return LocalHit(store, store.read(digest, self.max_manifest, "manifest"), digest)
        return LocalHit(store, json.dumps({"schemaVersion": 2, "manifests": group}).encode(), None)

    def close(self) -> None:
        """Close open archives."""
        for store in self.stores:
            if isinstance(store, _TarStore):
                store.close()


def _docker_save_config(store: _Store, name: str, limit: int) -> bytes:
    """A ``docker save`` config, checked against the sha256 its name carries (the image ID).

    Classic archives name it ``<sha256>.json``; newer ones point at ``blobs/sha256/<hex>``.
    ``docker load`` refuses content that does not hash to that name, and so do we.
    """
    stem = name[: -len(".json")] if name.endswith(".json") else None
    if stem is not None and valid_digest(f"sha256:{stem}"):
        data = store.read_path(name, limit, "config")
        if compute(data, "sha256") != f"sha256:{stem}":
            raise ImageError("config digest mismatch")
        return data
    if name.startswith("blobs/"):
        algorithm, _, encoded = name[len("blobs/") :].partition("/")
        if valid_digest(f"{algorithm}:{encoded}"):
            return store.read(f"{algorithm}:{encoded}", limit, "config")
    return store.read_path(name, limit, "config")


def _read_json(store: _Store, name: str, limit: int) -> object:
    data = store.read_path(name, limit, name)
    try:
        return json.loads(data)
    except ValueError:
        raise ImageError(f"{name} is not valid JSON") from None
