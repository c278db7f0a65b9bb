"""Counting requests and cache hits across threads, and the overall deadline."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

from gpuguard.sources.images.problems import ImageError

__all__ = ["Counter", "Deadline", "Stats"]


@dataclass
class Stats:
    """What a resolution cost. ``sum(by_kind.values()) == requests``.

    Kinds: ``manifest``, ``index`` (a manifest request answered with an index), ``head``
    (revalidating a stale tag), ``config``, ``token``, ``retry`` (a resend after 429/5xx or a
    connection error), ``reauth`` (a resend after a 401 challenge), ``redirect`` (following
    a redirect, e.g. to blob storage).
    """

    requests: int = 0
    by_kind: dict[str, int] = field(default_factory=dict)
    cache_hits: int = 0


class Counter:
    """Thread-safe tallies that become a :class:`Stats`."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._kinds: dict[str, int] = {}
        self._hits = 0

    def request(self, kind: str) -> None:
        """One HTTP request of ``kind`` was sent."""
        with self._lock:
            self._kinds[kind] = self._kinds.get(kind, 0) + 1

    def rename(self, old: str, new: str) -> None:
        """Re-file one request once its kind is known (a manifest that was an index)."""
        with self._lock:
            if self._kinds.get(old):
                self._kinds[old] -= 1
                if not self._kinds[old]:
                    del self._kinds[old]
                self._kinds[new] = self._kinds.get(new, 0) + 1

    def hit(self) -> None:
        """One object came from the cache (or a local source)."""
        with self._lock:
            self._hits += 1

    def stats(self) -> Stats:
        """A snapshot."""
        with self._lock:
            return Stats(sum(self._kinds.values()), dict(self._kinds), self._hits)


class Deadline:
    """The time left for the whole resolution."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.end = time.monotonic() + seconds

    def remaining(self) -> float:
        """Seconds left, never negative."""
        return max(0.0, self.end - time.monotonic())

    def check(self) -> float:
        """Seconds left; raise the deadline problem when none are."""
        left = self.remaining()
        if left <= 0:
            raise self.error()
        return left

    def error(self) -> ImageError:
        """The problem for a resolution that ran out of time."""
        return ImageError(f"timeout (deadline of {self.seconds:g} s exceeded)")
