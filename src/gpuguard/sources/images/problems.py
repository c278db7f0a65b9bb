"""The one exception this package raises internally: a reason an image could not be read.

Every reason is a fixed phrase plus numbers, hosts or digests; never a header, a URL
query, a response body or anything a credential could hide in.
"""

from __future__ import annotations

__all__ = ["ImageError"]


class ImageError(Exception):
    """Resolution of one reference failed; ``reason`` becomes ``ImageProblem.reason``."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason
