"""One Kubernetes API call with the retries and error text every gpuguard client of the API shares.

The cluster reader (``get``/``list``) and the PolicyReport writer both send
calls of the official client with ``_preload_content=False`` and need the same
things around them: a 429 (API Priority and Fairness) waits for its
``Retry-After`` (capped, bounded retries), a refusal becomes one line of text
taken from the API's ``Status`` only (never headers or the request: nothing
that could carry a credential), and a connection error is named briefly.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Protocol

import orjson

MAX_RETRIES = 5
MAX_RETRY_AFTER = 30.0  # seconds; a larger Retry-After is capped


class Refused(Exception):
    """The API server refused one request (``status`` 0: no answer); callers turn it into one error line."""

    def __init__(self, status: int, text: str) -> None:
        super().__init__(text)
        self.status = status
        self.text = text


class Counts(Protocol):
    """Where a client counts its requests and the retries after a 429."""

    requests: int
    retries: int


def send(
    call: Callable[..., Any], kwargs: Mapping[str, Any], *, max_retries: int, sleep: Callable[[float], None],
    counts: Counts,
) -> bytes:
    """The raw body of one call; a 429 is retried after its ``Retry-After``; a refusal raises ``Refused``."""
    from kubernetes.client.exceptions import ApiException  # noqa: PLC0415 - lazy: heavy import
    from urllib3.exceptions import HTTPError  # noqa: PLC0415

    attempt = 0
    while True:
        counts.requests += 1
        try:
            data: bytes = call(**kwargs).data
            return data
        except ApiException as exc:
            if exc.status == 429 and attempt < max_retries:
                attempt += 1
                counts.retries += 1
                sleep(retry_after(exc.headers, attempt))
                continue
            raise Refused(exc.status or 0, status_text(exc)) from None
        except (HTTPError, OSError) as exc:
            raise Refused(0, f"{type(exc).__name__}: {short(exc)}") from None


def retry_after(headers: Any, attempt: int) -> float:
    """Seconds to wait: the server's ``Retry-After`` (capped), else exponential backoff."""
    value = None
    if headers is not None:
        value = headers.get("Retry-After")
    try:
        seconds = float(value) if value is not None else float(2 ** (attempt - 1))
    except ValueError:
        seconds = float(2 ** (attempt - 1))
    return max(0.0, min(seconds, MAX_RETRY_AFTER))


def status_text(exc: Any) -> str:
    """The API's Status message (no headers, no request: nothing that could carry a credential)."""
    message = ""
    try:
        body = orjson.loads(exc.body) if exc.body else None
        if isinstance(body, Mapping) and isinstance(body.get("message"), str):
            message = body["message"]
    except orjson.JSONDecodeError:
        pass
    what = {401: "unauthorized", 403: "forbidden", 404: "not found", 410: "continue token expired",
            429: "too many requests (retries exhausted)"}.get(exc.status, exc.reason or "error")
    return f"{what} ({exc.status})" + (f": {short(message)}" if message else "")


def short(value: object) -> str:
    text = str(value)
    return text if len(text) <= 300 else text[:300] + "..."
