"""The ASGI application: /validate, /mutate, /healthz, /readyz, /metrics.

Hand-written rather than a framework, because every microsecond is on the
API server's critical path. Small reviews run inline on the event loop
(well under a millisecond for ordinary pods: a thread hop costs more than the
work); large bodies go to a small thread pool so that one huge pod cannot
hold up the others, and every review runs under the configured timeout. A
review that runs out of time is answered per ``failurePolicy``: ``Fail``
denies, ``Ignore`` allows with a warning. With image inspection configured,
``/validate`` first looks up the pod's images (``webhook.images``: memory,
then a thread pool, within the lookup deadline) and hands their env to the
reviewer as data. Nothing from the object is ever logged (env values may be
secrets): only uid, namespace/name, image references and rule ids.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, MutableMapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import orjson

from gpuguard.admission.policy import ImageLookups
from gpuguard.admission.review import Response, Reviewer, review_of
from gpuguard.webhook.images import ImageLookup
from gpuguard.webhook.metrics import CONTENT_TYPE, Metrics

log = logging.getLogger("gpuguard.webhook")

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]

INLINE_BYTES = 64 * 1024  # bodies up to this are reviewed on the event loop
_JSON = [(b"content-type", b"application/json")]
_TEXT = [(b"content-type", b"text/plain; charset=utf-8")]
_ENDPOINTS = {"/validate": (False, True), "/mutate": (True, False)}  # (mutate, validate)


class HttpError(Exception):
    """An answer without an AdmissionReview: a malformed or oversize body."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


@dataclass(slots=True)
class State:
    """What a config reload swaps: the reviewer (policy), the limits, image inspection; and whether we are ready."""

    reviewer: Reviewer
    ready: bool = True
    images: ImageLookup | None = None  # image inspection, when configured

    @property
    def max_body(self) -> int:
        return self.reviewer.policy.config.max_body_bytes

    @property
    def timeout(self) -> float:
        return self.reviewer.policy.config.timeout_seconds

    @property
    def fail_closed(self) -> bool:
        return self.reviewer.policy.config.failure_policy == "Fail"


class WebhookApp:
    """The ASGI callable."""

    def __init__(self, state: State, metrics: Metrics, pool_size: int = 2) -> None:
        self.state = state
        self.metrics = metrics
        self.pool = ThreadPoolExecutor(max_workers=pool_size, thread_name_prefix="gpuguard-review")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        path = scope["path"]
        start = time.perf_counter()
        if path in _ENDPOINTS:
            status = await self._admission(path, scope, receive, send)
            self.metrics.latency.labels(path).observe(time.perf_counter() - start)
        elif path == "/healthz":
            status = await _reply(send, 200, b"ok\n", _TEXT)
        elif path == "/readyz":
            ready = self.state.ready
            status = await _reply(send, 200 if ready else 503, b"ok\n" if ready else b"not ready\n", _TEXT)
        elif path == "/metrics":
            status = await _reply(send, 200, self.metrics.render(), [(b"content-type", CONTENT_TYPE.encode())])
        else:
            path = "other"
            status = await _reply(send, 404, b"not found: use /validate, /mutate, /healthz, /readyz or /metrics\n",
                                  _TEXT)  # fmt: skip
        self.metrics.requests.labels(path, str(status)).inc()

    async def _admission(self, path: str, scope: Scope, receive: Receive, send: Send) -> int:
        if scope["method"] != "POST":
            return await _reply(send, 405, b"use POST with an AdmissionReview\n", [*_TEXT, (b"allow", b"POST")])
        state = self.state  # one policy for the whole request, even if a reload swaps it meanwhile
        mutate, validate = _ENDPOINTS[path]
        started = time.monotonic()
        try:
            async with asyncio.timeout(state.timeout):
                body = await _read_body(scope, receive, state.max_body)
                if validate and state.images is not None:
                    response = await self._review_images(state, state.images, body, started, mutate=mutate)
                else:
                    response = await self._review(state, body, mutate=mutate, validate=validate)
        except HttpError as exc:
            log.info("%s: HTTP %d: %s", path, exc.status, exc.reason)
            return await _reply(send, exc.status, orjson.dumps({"error": exc.reason}), _JSON)
        except TimeoutError:
            self.metrics.timeouts.labels(path).inc()
            log.warning("%s: review ran out of time (%.1fs)", path, state.timeout)
            return await _reply(send, 504, orjson.dumps({"error": f"review timed out after {state.timeout:g}s"}),
                                _JSON)  # fmt: skip
        self._count(path, response)
        return await _reply(send, 200, orjson.dumps(response.to_review()), _JSON)

    async def _review(self, state: State, body: bytes, *, mutate: bool, validate: bool) -> Response:
        if len(body) <= INLINE_BYTES:
            return _decide(state.reviewer, body, mutate=mutate, validate=validate)
        loop = asyncio.get_running_loop()
        future = loop.run_in_executor(self.pool, _decide_kw, state.reviewer, body, mutate, validate)
        try:
            return await asyncio.wait_for(asyncio.shield(future), timeout=max(state.timeout - 0.25, 0.05))
        except TimeoutError:
            return self._timed_out(state, body)

    async def _review_images(
        self, state: State, images: ImageLookup, body: bytes, started: float, *, mutate: bool
    ) -> Response:
        """Validation with image inspection: find the images, look them up (off the loop), then judge."""
        loop = asyncio.get_running_loop()
        inline = len(body) <= INLINE_BYTES
        if inline:
            request, refs = _request_and_images(state.reviewer, body)
        else:  # parsing a large pod is work too: off the loop
            request, refs = await loop.run_in_executor(self.pool, _request_and_images, state.reviewer, body)
        found = await images.lookup(refs, started) if refs else None
        if inline:
            return state.reviewer.review(request, mutate=mutate, validate=True, images=found)
        future = loop.run_in_executor(self.pool, _review_kw, state.reviewer, request, mutate, found)
        left = state.timeout - 0.25 - (time.monotonic() - started)
        try:
            return await asyncio.wait_for(asyncio.shield(future), timeout=max(left, 0.05))
        except TimeoutError:
            return self._timed_out(state, body)

    def _timed_out(self, state: State, body: bytes) -> Response:
        uid = _uid_of(body)
        if state.fail_closed:
            return Response(uid=uid, allowed=False, code=504,
                            message="gpuguard: the review ran out of time; failurePolicy Fail denies")  # fmt: skip
        return Response(uid=uid, warnings=("gpuguard: the review ran out of time; failurePolicy Ignore allows",))

    def _count(self, path: str, r: Response) -> None:
        dry = "true" if r.dry_run else "false"
        outcome = "error" if r.error else "denied" if not r.allowed else "patched" if r.patch else "skipped" if (
            r.skipped) else "allowed"  # fmt: skip
        self.metrics.verdicts.labels(path, outcome, dry).inc()
        for rule_id, mode in r.decisions:
            self.metrics.decisions.labels(rule_id, mode, dry).inc()
        if not r.allowed and not r.error:
            rules = ",".join(sorted({rule_id for rule_id, _ in r.decisions}))
            log.info("%s uid=%s denied: %s%s", path, r.uid, rules or "timeout", " (dry run)" if r.dry_run else "")


def _request_of(body: bytes) -> Any:
    """The AdmissionRequest of a body; HttpError 400 naming what is wrong."""
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise HttpError(400, f"the body is not JSON: {exc}") from None
    found = review_of(doc)
    if isinstance(found, Response):
        raise HttpError(400, found.message.removeprefix("gpuguard: bad request: "))
    return found[1]


def _request_and_images(reviewer: Reviewer, body: bytes) -> tuple[Any, tuple[str, ...]]:
    request = _request_of(body)
    return request, reviewer.images_to_inspect(request)


def _decide(reviewer: Reviewer, body: bytes, *, mutate: bool, validate: bool) -> Response:
    return reviewer.review(_request_of(body), mutate=mutate, validate=validate)


def _review_kw(reviewer: Reviewer, request: Any, mutate: bool, images: ImageLookups | None) -> Response:
    return reviewer.review(request, mutate=mutate, validate=True, images=images)


def _decide_kw(reviewer: Reviewer, body: bytes, mutate: bool, validate: bool) -> Response:
    return _decide(reviewer, body, mutate=mutate, validate=validate)


def _uid_of(body: bytes) -> str:
    try:
        doc = orjson.loads(body)
        uid = doc["request"]["uid"]
    except Exception:
        return ""
    return uid if isinstance(uid, str) else ""


async def _read_body(scope: Scope, receive: Receive, limit: int) -> bytes:
    for name, value in scope.get("headers") or ():
        if name == b"content-length":
            try:
                declared = int(value)
            except ValueError:
                raise HttpError(400, "bad Content-Length") from None
            if declared > limit:
                raise HttpError(413, f"body of {declared} bytes is over the limit of {limit} bytes (maxBodyBytes)")
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise HttpError(400, "the client went away")
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise HttpError(413, f"body over the limit of {limit} bytes (maxBodyBytes)")
        chunks.append(chunk)
        if not message.get("more_body"):
            break
    if not size:
        raise HttpError(400, "empty body: expected an AdmissionReview")
    return b"".join(chunks)


async def _reply(send: Send, status: int, body: bytes, headers: list[tuple[bytes, bytes]]) -> int:
    await send({"type": "http.response.start", "status": status,
                "headers": [*headers, (b"content-length", str(len(body)).encode())]})  # fmt: skip
    await send({"type": "http.response.body", "body": body})
    return status
