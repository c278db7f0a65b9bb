"""Where the history lives: a SQLite file (the default) or a PostgreSQL URL, and how to name it safely.

A URL may carry a password; every message names the store through
``mask_url`` so the password never reaches a terminal, a log or a CI page.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit

from gpuguard.model.errors import InputError

ENV_URL = "GPUGUARD_HISTORY_URL"
DEFAULT_FILE = "gpuguard/history.db"  # under $XDG_STATE_HOME (default ~/.local/state)
POSTGRES_SCHEMES = ("postgresql", "postgres")
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")
_QUERY_SECRET = re.compile(r"(?i)((?:^|[?&;])(?:password|sslpassword)=)[^&;]*")
_QUERY_VALUE = re.compile(r"(?i)(?:^|[?&;])(?:password|sslpassword)=([^&;]*)")
MASK = "***"


@dataclass(frozen=True, slots=True)
class Target:
    """A parsed store location: ``path`` for SQLite, ``url`` for PostgreSQL; ``label`` is safe to print."""

    backend: str  # "sqlite" | "postgresql"
    label: str
    path: Path | None = None
    url: str | None = None
    secrets: tuple[str, ...] = ()  # passwords, raw and percent-decoded: scrubbed from driver messages


def default_path() -> Path:
    state = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(state) / DEFAULT_FILE


def mask_url(url: str) -> str:
    """The URL with any password (in the authority or the query) replaced by ``***``."""
    match = _SCHEME.match(url)
    if not match:
        return _QUERY_SECRET.sub(rf"\g<1>{MASK}", url)
    head, rest = url[: match.end()], url[match.end():]
    authority, sep, tail = _split_authority(rest)
    userinfo, at, host = authority.rpartition("@")
    if at and ":" in userinfo:
        authority = f"{userinfo.split(':', 1)[0]}:{MASK}@{host}"
    return head + authority + sep + _QUERY_SECRET.sub(rf"\g<1>{MASK}", tail)


def _split_authority(rest: str) -> tuple[str, str, str]:
    cut = min((i for i in (rest.find("/"), rest.find("?"), rest.find("#")) if i >= 0), default=len(rest))
    # a password may hold "/" or "?": the authority ends at the first such character after the last "@"
    at = rest.rfind("@")
    if at >= cut:
        cut = min((i for i in (rest.find("/", at), rest.find("?", at), rest.find("#", at)) if i >= 0),
                  default=len(rest))
    return rest[:cut], rest[cut:cut + 1], rest[cut + 1:]


def resolve(url: str | None) -> Target:
    """``url``, else ``$GPUGUARD_HISTORY_URL``, else the default SQLite file; InputError when unusable."""
    text = url if url is not None else os.environ.get(ENV_URL) or None
    if text is None:
        path = default_path()
        return Target("sqlite", str(path), path=path)
    text = text.strip()
    if not text:
        raise InputError("history", "empty database URL")
    match = _SCHEME.match(text)
    scheme = match.group(1).lower() if match else (text.split(":", 1)[0].lower() if text.startswith("sqlite:")
                                                   else None)
    if scheme is None:
        path = _file(text, text)
        return Target("sqlite", str(path), path=path)
    if scheme == "sqlite":
        raw = text[len("sqlite://"):] if match else text[len("sqlite:"):]
        raw = raw.split("?", 1)[0]
        if not raw or raw == "/":
            raise InputError(mask_url(text), "a sqlite URL needs a file path (sqlite:///var/lib/gpuguard/history.db)")
        if raw.startswith("//"):  # sqlite:////var/...: the SQLAlchemy spelling of an absolute path
            raw = "/" + raw.lstrip("/")
        path = _file(unquote(raw), text)
        return Target("sqlite", str(path), path=path)
    if scheme in POSTGRES_SCHEMES:
        return _postgres(text)
    raise InputError(mask_url(text), f"unsupported database URL scheme {scheme!r} "
                     "(expected postgresql://, postgres://, sqlite:/// or a file path)")


def _file(raw: str, text: str) -> Path:
    try:
        return Path(raw).expanduser()
    except RuntimeError as exc:  # "~someone" without such a user
        raise InputError(mask_url(text), f"not a usable file path: {exc}") from None


def _postgres(text: str) -> Target:
    label = mask_url(text)
    try:
        parts = urlsplit(text)
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError as exc:
        raise InputError(label, f"not a valid PostgreSQL URL: {_scrub(str(exc), text)}") from None
    raw = [p for p in (parts.password, *_QUERY_VALUE.findall(parts.query)) if p]
    secrets = tuple(sorted({*raw, *(unquote(p) for p in raw)}, key=len, reverse=True))
    return Target("postgresql", label, url=text, secrets=secrets)


def _scrub(message: str, url: str) -> str:
    """Driver messages may echo the URL: show only its masked form."""
    return message.replace(url, mask_url(url))


def scrub(message: str, target: Target) -> str:
    """A driver message with the target's URL masked and its password (raw or quoted) removed."""
    if target.url:
        message = message.replace(target.url, target.label)
    for secret in target.secrets:
        message = message.replace(secret, MASK)
    return message
