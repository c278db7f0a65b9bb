"""Registry authentication: parsing ``WWW-Authenticate`` challenges and caching bearer tokens.

Tokens are shared per (realm, service, scope, credential): many references to one
repository cost one token request. Token values are kept here and in request headers only.
"""

from __future__ import annotations

import re
import threading
import time
from dataclasses import dataclass

__all__ = ["Challenge", "TokenCache", "parse_challenges"]

_TOKEN = r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+"
_PARAM = re.compile(rf'\s*({_TOKEN})\s*=\s*(?:"((?:[^"\\]|\\.)*)"|({_TOKEN}|[^\s,]*))\s*,?')
_SCHEME = re.compile(rf"\s*,?\s*({_TOKEN})(?:\s+|$|(?=,))")
DEFAULT_TOKEN_TTL = 60.0
_EARLY = 5.0


@dataclass(frozen=True, slots=True)
class Challenge:
    """One challenge: ``Bearer`` with realm/service/scope, or ``Basic``."""

    scheme: str  # lower-case: "bearer", "basic"
    params: tuple[tuple[str, str], ...] = ()

    def get(self, key: str) -> str | None:
        """A parameter by (case-insensitive) name."""
        key = key.lower()
        return next((v for k, v in self.params if k == key), None)


def parse_challenges(values: list[str]) -> list[Challenge]:
    """Every challenge in the ``WWW-Authenticate`` headers, in order (RFC 7235 syntax)."""
    challenges: list[Challenge] = []
    for value in values:
        pos = 0
        while pos < len(value):
            scheme = _SCHEME.match(value, pos)
            if not scheme:
                break
            pos = scheme.end()
            params: list[tuple[str, str]] = []
            while pos < len(value):
                param = _PARAM.match(value, pos)
                if not param:
                    break
                quoted, bare = param.group(2), param.group(3)
                text = re.sub(r"\\(.)", r"\1", quoted) if quoted is not None else (bare or "")
                params.append((param.group(1).lower(), text))
                pos = param.end()
            challenges.append(Challenge(scheme.group(1).lower(), tuple(params)))
    return challenges


class TokenCache:
    """Bearer tokens by key, with expiry; ``lock_for`` lets one thread fetch while others wait."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._tokens: dict[tuple[str, ...], tuple[str, float]] = {}
        self._fetching: dict[tuple[str, ...], threading.Lock] = {}

    def get(self, key: tuple[str, ...]) -> str | None:
        """A token still valid for a few seconds, or None."""
        with self._lock:
            found = self._tokens.get(key)
        if found is None or found[1] <= time.monotonic():
            return None
        return found[0]

    def put(self, key: tuple[str, ...], token: str, expires_in: float) -> None:
        """Keep ``token`` until shortly before it expires."""
        with self._lock:
            self._tokens[key] = (token, time.monotonic() + max(1.0, expires_in - _EARLY))

    def drop(self, key: tuple[str, ...], token: str) -> None:
        """Forget a token the registry refused (unless another thread already replaced it)."""
        with self._lock:
            if self._tokens.get(key, ("",))[0] == token:
                del self._tokens[key]

    def lock_for(self, key: tuple[str, ...]) -> threading.Lock:
        """The lock that makes one thread fetch the token for ``key``."""
        with self._lock:
            return self._fetching.setdefault(key, threading.Lock())
