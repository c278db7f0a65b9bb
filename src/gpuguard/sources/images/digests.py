"""Content digests: which algorithms, how to check one, where a blob of that digest lives."""

from __future__ import annotations

import hashlib
import re
from typing import Any

from gpuguard.sources.images.problems import ImageError

__all__ = ["ALGORITHMS", "compute", "hasher", "split_digest", "valid_digest", "verify"]

ALGORITHMS = {"sha256": 64, "sha512": 128}
_DIGEST_RE = re.compile(r"^(sha256|sha512):([a-f0-9]+)$")


def valid_digest(digest: object) -> bool:
    """A supported digest in canonical form: ``sha256:`` + 64 hex, or ``sha512:`` + 128 hex."""
    if not isinstance(digest, str):
        return False
    match = _DIGEST_RE.match(digest)
    return bool(match) and len(match.group(2)) == ALGORITHMS[match.group(1)]  # type: ignore[union-attr]


def split_digest(digest: str) -> tuple[str, str]:
    """``("sha256", "<hex>")``; the digest must already be valid (safe to use in paths)."""
    if not valid_digest(digest):
        raise ImageError(f"unsupported digest {digest[:80]!r}")
    algorithm, encoded = digest.split(":", 1)
    return algorithm, encoded


def hasher(algorithm: str) -> Any:
    """A fresh hashlib object for ``algorithm``."""
    return hashlib.new(algorithm)


def compute(data: bytes, algorithm: str = "sha256") -> str:
    """The digest of ``data``."""
    return f"{algorithm}:{hashlib.new(algorithm, data).hexdigest()}"


def verify(data: bytes, digest: str, what: str) -> None:
    """Raise ``<what> digest mismatch`` unless ``data`` hashes to ``digest``."""
    algorithm, _ = split_digest(digest)
    if compute(data, algorithm) != digest:
        raise ImageError(f"{what} digest mismatch")
