"""The on-disk cache: content-addressed manifests and configs, tag -> digest with a TTL.

Layout under the cache directory::

    blobs/<alg>/<hex>        config blobs (never expire: the digest is the content)
    manifests/<alg>/<hex>    manifests and indexes, by digest
    tags/<sha256 of name:tag>.json   {"reference", "digest", "fetched"}

Every write goes to a temporary file in the same directory and is renamed into place
(``os.replace``), so a reader in another process sees the old entry or the new one, never
half of one. Every read is checked (content against its digest, tag entries against their
reference); a corrupt entry is ignored, as if missing, and overwritten by the next fetch.
A cache that cannot be written (read-only, full disk) only makes runs slower.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import tempfile
import time
from pathlib import Path

from gpuguard.sources.images.digests import compute, split_digest, valid_digest

__all__ = ["Cache", "default_cache_dir"]

log = logging.getLogger("gpuguard.images")
_FUTURE_SLACK = 300.0


def default_cache_dir() -> str:
    """``$XDG_CACHE_HOME/gpuguard``, else ``~/.cache/gpuguard``."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "gpuguard")


class Cache:
    """One cache directory. Thread-safe and process-safe by construction (no shared state)."""

    def __init__(self, root: str | os.PathLike[str], tag_ttl: float) -> None:
        self.root = Path(root)
        self.tag_ttl = tag_ttl

    # -- paths ---------------------------------------------------------------------------
    def _content_path(self, kind: str, digest: str) -> Path:
        algorithm, encoded = split_digest(digest)
        return self.root / kind / algorithm / encoded

    def _tag_path(self, name: str, tag: str) -> Path:
        key = hashlib.sha256(f"{name}:{tag}".encode()).hexdigest()
        return self.root / "tags" / f"{key}.json"

    # -- content -------------------------------------------------------------------------
    def _read_content(self, kind: str, digest: str, limit: int) -> bytes | None:
        if not valid_digest(digest):
            return None
        path = self._content_path(kind, digest)
        try:
            with open(path, "rb") as f:
                data = f.read(limit + 1)
        except OSError:
            return None
        if len(data) > limit or compute(data, split_digest(digest)[0]) != digest:
            log.debug("cache: ignoring corrupt entry %s", path)
            return None
        return data

    def get_blob(self, digest: str, limit: int) -> bytes | None:
        """A verified blob, or None (missing, corrupt or over ``limit``)."""
        return self._read_content("blobs", digest, limit)

    def put_blob(self, digest: str, data: bytes) -> None:
        """Store a blob already verified against ``digest``."""
        self._write(self._content_path("blobs", digest), data)

    def get_manifest(self, digest: str, limit: int) -> bytes | None:
        """A verified manifest or index, or None."""
        return self._read_content("manifests", digest, limit)

    def put_manifest(self, digest: str, data: bytes) -> None:
        """Store a manifest already verified against ``digest``."""
        self._write(self._content_path("manifests", digest), data)

    # -- tags ----------------------------------------------------------------------------
    def get_tag(self, name: str, tag: str) -> tuple[str, bool] | None:
        """``(digest, fresh)`` for ``name:tag``; fresh while younger than the TTL."""
        path = self._tag_path(name, tag)
        try:
            entry = json.loads(path.read_bytes())
        except (OSError, ValueError):
            return None
        if not isinstance(entry, dict) or entry.get("reference") != f"{name}:{tag}":
            return None
        digest, fetched = entry.get("digest"), entry.get("fetched")
        if not valid_digest(digest) or isinstance(fetched, bool) or not isinstance(fetched, int | float):
            return None
        age = time.time() - fetched
        fresh = -_FUTURE_SLACK <= age < self.tag_ttl
        return str(digest), fresh

    def put_tag(self, name: str, tag: str, digest: str) -> None:
        """Remember that ``name:tag`` pointed at ``digest`` now."""
        entry = {"reference": f"{name}:{tag}", "digest": digest, "fetched": time.time()}
        self._write(self._tag_path(name, tag), json.dumps(entry).encode())

    # -- writing -------------------------------------------------------------------------
    def _write(self, path: Path, data: bytes) -> None:
        try:
            path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=f"-{os.getpid()}")
        except OSError as exc:
            log.debug("cache: cannot write under %s: %s", path.parent, exc.strerror)
            return
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            os.replace(tmp, path)
        except OSError as exc:
            log.debug("cache: cannot write %s: %s", path, exc.strerror)
            with contextlib.suppress(OSError):
                os.unlink(tmp)
