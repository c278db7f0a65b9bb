"""Release versions of the NVIDIA components, parsed loosely.

Image tags come in many spellings (``v1.17.8-ubuntu20.04``, ``1.18.0``,
``v0.17.0-ubi9``, ``v25.3.4``); the behaviour we model only depends on the
numeric release, so suffixes are kept for display and ignored for ordering,
except that a pre-release (``-rc.N``) sorts before its release.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import total_ordering

_VERSION = re.compile(
    r"^v?(?P<major>\d+)(?:\.(?P<minor>\d+))?(?:\.(?P<patch>\d+))?"
    r"(?:-(?P<suffix>[0-9A-Za-z.\-]+))?$"
)
_RC = re.compile(r"^(?:rc|beta|alpha)\.?(\d+)?", re.IGNORECASE)


class VersionError(ValueError):
    """A version string that names no release."""


@total_ordering
@dataclass(frozen=True, slots=True)
class Version:
    """A release number; ``Version.parse("v1.17.8-ubuntu20.04") == Version(1, 17, 8)``."""

    major: int
    minor: int = 0
    patch: int = 0
    prerelease: int | None = None  # rc number; None for a release
    text: str = ""

    @classmethod
    def parse(cls, text: str) -> Version:
        if not isinstance(text, str):
            raise VersionError(f"expected a version string, got {type(text).__name__}")
        match = _VERSION.match(text.strip())
        if match is None:
            raise VersionError(f"{text!r} is not a version (expected e.g. 1.17.8 or v1.17.8)")
        suffix = match["suffix"] or ""
        rc = _RC.match(suffix)
        prerelease = int(rc.group(1) or 0) if rc else None
        return cls(
            int(match["major"]),
            int(match["minor"] or 0),
            int(match["patch"] or 0),
            prerelease,
            text.strip(),
        )

    @property
    def key(self) -> tuple[int, int, int, int]:
        # A release sorts after all of its pre-releases.
        return (self.major, self.minor, self.patch, 1 << 30 if self.prerelease is None else self.prerelease)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Version):
            return NotImplemented
        return self.key == other.key

    def __hash__(self) -> int:
        return hash(self.key)

    def __lt__(self, other: Version) -> bool:
        return self.key < other.key

    def __str__(self) -> str:
        base = f"{self.major}.{self.minor}.{self.patch}"
        return base if self.prerelease is None else f"{base}-rc.{self.prerelease}"


def v(text: str) -> Version:
    """Shorthand for version boundaries in the engine's tables."""
    return Version.parse(text)
