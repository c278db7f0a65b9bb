"""HTTP to one registry: bounded connections, retries, redirects, auth, limits, digests.

One :class:`Registry` per registry host per resolution, with its own ``httpx.Client`` whose
pool, and a semaphore in front of it, hold at most ``connections`` exchanges at a time.

- Retries: 429, 500, 502, 503, 504 and connection errors, at most :data:`MAX_TRIES` tries with
  exponential backoff and jitter, or the server's ``Retry-After``; never past the deadline.
- Redirects (blob storage) are followed by hand so that ``Authorization`` goes only to the
  host it was meant for, and never from HTTPS down to plain HTTP.
- The first request to a registry goes alone: its answer (a 401 challenge or not) tells the
  others how to authenticate, so 500 references do not cost 500 refused requests.
- A registry found unreachable fails the rest of its references at once.
- Bodies are streamed and cut at the size limit whatever Content-Length says; content asked
  for by digest must hash to it, and a manifest must hash to the ``Docker-Content-Digest``
  its registry announced.
"""

from __future__ import annotations

import base64
import email.utils
import json
import logging
import random
import ssl
import threading
import time
import urllib.parse
from dataclasses import dataclass

import certifi
import httpx

from gpuguard.model.errors import InputError
from gpuguard.sources.images.auth import DEFAULT_TOKEN_TTL, Challenge, TokenCache, parse_challenges
from gpuguard.sources.images.credentials import Credential, CredentialStore
from gpuguard.sources.images.digests import compute, split_digest, valid_digest
from gpuguard.sources.images.manifests import ACCEPT, INDEX_TYPES
from gpuguard.sources.images.problems import ImageError
from gpuguard.sources.images.stats import Counter, Deadline

__all__ = ["MAX_TRIES", "Registry", "RegistrySettings", "build_ssl_context"]

log = logging.getLogger("gpuguard.images")
MAX_TRIES = 4
MAX_REDIRECTS = 5
MAX_TOKEN_BYTES = 1024 * 1024
MAX_ERROR_BODY = 64 * 1024
BACKOFF_BASE = 0.25
BACKOFF_CAP = 8.0
RETRY_AFTER_CAP = 60.0
RETRY_STATUS = {
    429: "too many requests (429)",
    500: "server error (500)",
    502: "bad gateway (502)",
    503: "service unavailable (503)",
    504: "gateway timeout (504)",
}
STATUS_REASON = {401: "auth denied (401)", 403: "forbidden (403)", 404: "not found (404)"}
REDIRECTS = frozenset({301, 302, 303, 307, 308})


@dataclass(frozen=True, slots=True)
class RegistrySettings:
    """What every registry of one resolution shares."""

    timeout: float
    connections: int
    max_manifest_bytes: int
    max_config_bytes: int
    verify: ssl.SSLContext | bool


@dataclass(slots=True)
class _Answer:
    status: int
    headers: httpx.Headers
    body: bytes


class _RedactQuery(logging.Filter):
    """httpx logs every request URL at INFO; blob storage URLs carry signatures in the query."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple) and any(isinstance(a, httpx.URL) and a.query for a in record.args):
            record.args = tuple(a.copy_with(query=None) if isinstance(a, httpx.URL) else a for a in record.args)
        return True


class _RedactHeaders(logging.Filter):
    """httpcore's debug trace prints response headers (``Location`` with signed URLs)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str) and "response_headers.complete" in record.msg:
            record.msg, record.args = record.msg.split(" ", 1)[0] + " (headers not logged)", ()
        return True


logging.getLogger("httpx").addFilter(_RedactQuery())
for _name in ("httpcore.http11", "httpcore.http2", "httpcore.connection", "httpcore.proxy"):
    logging.getLogger(_name).addFilter(_RedactHeaders())


class _TooLarge(Exception):
    pass


class _SlowBody(Exception):
    pass


def _origin(url: httpx.URL) -> tuple[str, str, int | None]:
    return url.scheme, url.host, url.port


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _describe(exc: Exception) -> str:
    """A reason for a transport failure: no URLs, headers or bodies, just what went wrong."""
    if isinstance(exc, httpx.TimeoutException | _SlowBody):
        return "timeout"
    text = str(exc)
    if "CERTIFICATE_VERIFY_FAILED" in text or isinstance(exc, ssl.SSLCertVerificationError):
        return "registry unreachable: TLS certificate verification failed"
    if "SSL" in text or "TLS" in text:
        return "registry unreachable: TLS handshake failed"
    if isinstance(exc, httpx.ConnectError):
        lowered = text.lower()
        for phrase in ("connection refused", "name or service not known", "no route to host", "network is unreachable"):
            if phrase in lowered:
                return f"registry unreachable: {phrase}"
        if "nodename nor servname" in lowered or "temporary failure in name resolution" in lowered:
            return "registry unreachable: name or service not known"
        return "registry unreachable: cannot connect"
    if isinstance(exc, httpx.RemoteProtocolError | httpx.ReadError):
        return "registry unreachable: connection closed before the response was complete"
    return f"registry unreachable: {type(exc).__name__}"


class Registry:
    """One registry host: speak the distribution API to it."""

    def __init__(
        self,
        host: str,
        endpoint: str,
        *,
        insecure: bool,
        settings: RegistrySettings,
        credentials: CredentialStore,
        tokens: TokenCache,
        counter: Counter,
        deadline: Deadline,
    ) -> None:
        self.host = host  # as in references ("docker.io"); credentials are looked up by it
        self.insecure = insecure
        self.base = f"{'http' if insecure else 'https'}://{endpoint}"
        self.settings = settings
        self.credentials = credentials
        self.tokens = tokens
        self.counter = counter
        self.deadline = deadline
        limits = httpx.Limits(max_connections=settings.connections, max_keepalive_connections=settings.connections)
        self.client = httpx.Client(
            verify=settings.verify,
            limits=limits,
            timeout=httpx.Timeout(settings.timeout, pool=None),
            follow_redirects=False,
            trust_env=True,
            headers={"User-Agent": "gpuguard"},
        )
        self._slots = threading.BoundedSemaphore(settings.connections)
        self._scheme: str | None = None  # "bearer" / "basic" once a challenge was seen
        self._challenge: Challenge | None = None
        self._probe = threading.Lock()
        self._probed = False
        self._down: str | None = None

    def close(self) -> None:
        """Close pooled connections."""
        self.client.close()

    # -- the distribution API ---------------------------------------------------------------
    def get_manifest(self, repository: str, identifier: str) -> tuple[bytes, str]:
        """A manifest or index by tag or digest, and its (checked) digest."""
        path = f"/v2/{repository}/manifests/{identifier}"
        answer = self._api(
            "GET", path, repository, kind="manifest", limit=self.settings.max_manifest_bytes, what="manifest"
        )
        body = answer.body
        if valid_digest(identifier):
            expected = identifier
        else:
            announced = answer.headers.get("docker-content-digest", "").strip()
            expected = announced if valid_digest(announced) else compute(body)
        if compute(body, split_digest(expected)[0]) != expected:
            try:
                json.loads(body)
            except ValueError:
                raise ImageError("invalid manifest JSON") from None
            raise ImageError("manifest digest mismatch")
        content_type = answer.headers.get("content-type", "").split(";")[0].strip()
        if content_type in INDEX_TYPES or (not content_type.endswith("manifest.v2+json") and b'"manifests"' in body):
            self.counter.rename("manifest", "index")
        return body, expected

    def head_manifest(self, repository: str, tag: str) -> str | None:
        """The digest a tag points at now, when the registry says (None if it does not)."""
        answer = self._api(
            "HEAD", f"/v2/{repository}/manifests/{tag}", repository, kind="head", limit=0, what="manifest"
        )
        announced = answer.headers.get("docker-content-digest", "").strip()
        return announced if valid_digest(announced) else None

    def get_blob(self, repository: str, digest: str, limit: int, what: str) -> bytes:
        """A blob by digest, checked against it."""
        answer = self._api("GET", f"/v2/{repository}/blobs/{digest}", repository, kind=what, limit=limit, what=what)
        if compute(answer.body, split_digest(digest)[0]) != digest:
            raise ImageError(f"{what} digest mismatch")
        return answer.body

    # -- auth ---------------------------------------------------------------------------------
    def _api(self, method: str, path: str, repository: str, *, kind: str, limit: int, what: str) -> _Answer:
        if self._down:
            raise ImageError(self._down)
        if not self._probed:
            if not self._probe.acquire(timeout=self.deadline.check()):
                raise self.deadline.error()
            try:
                if not self._probed:
                    try:
                        return self._authorized(method, path, repository, kind=kind, limit=limit, what=what)
                    finally:
                        self._probed = True
            finally:
                self._probe.release()
        return self._authorized(method, path, repository, kind=kind, limit=limit, what=what)

    def _authorized(self, method: str, path: str, repository: str, *, kind: str, limit: int, what: str) -> _Answer:
        url = self.base + path
        credential = self.credentials.lookup(self.host, repository)
        header, token_key = self._authorization(repository, credential, None)
        answer = self._send(method, url, header, kind=kind, limit=limit, what=what)
        if answer.status == 401:
            challenges = parse_challenges(answer.headers.get_list("www-authenticate"))
            challenge = next((c for c in challenges if c.scheme == "bearer"), None) or next(
                (c for c in challenges if c.scheme == "basic"), None
            )
            if challenge is None:
                raise ImageError(STATUS_REASON[401])
            self._challenge, self._scheme = challenge, challenge.scheme
            if token_key is not None and header is not None:
                self.tokens.drop(token_key, header.removeprefix("Bearer "))
            retry_header, _ = self._authorization(repository, credential, challenge)
            if retry_header is None or retry_header == header:
                raise ImageError(STATUS_REASON[401])
            answer = self._send(method, url, retry_header, kind="reauth", limit=limit, what=what)
        if answer.status in STATUS_REASON:
            raise ImageError(STATUS_REASON[answer.status])
        if answer.status != 200:
            raise ImageError(f"server error ({answer.status})" if answer.status >= 500 else f"HTTP {answer.status}")
        return answer

    def _authorization(
        self, repository: str, credential: Credential | None, challenge: Challenge | None
    ) -> tuple[str | None, tuple[str, ...] | None]:
        """The Authorization header for a request (fetching a token if needed), and its token key."""
        if credential is not None and credential.registry_token:
            return f"Bearer {credential.registry_token}", None
        explicit = challenge is not None
        challenge = challenge or self._challenge
        if challenge is None:
            return None, None
        if challenge.scheme == "basic":
            basic = credential.basic if credential else None
            if basic is None:
                return None, None
            raw = f"{basic[0]}:{basic[1]}".encode()
            return f"Basic {base64.b64encode(raw).decode('ascii')}", None
        realm = challenge.get("realm")
        if not realm:
            raise ImageError("auth denied (401): bearer challenge without a realm")
        scope = f"repository:{repository}:pull"
        if explicit and challenge.get("scope"):
            scope = str(challenge.get("scope"))  # the scope this very request was refused for
        service = challenge.get("service") or ""
        key = (realm, service, scope, str(id(credential)) if credential else "")
        token = self.tokens.get(key)
        if token is None:
            lock = self.tokens.lock_for(key)
            if not lock.acquire(timeout=self.deadline.check()):
                raise self.deadline.error()
            try:
                token = self.tokens.get(key)
                if token is None:
                    token, ttl = self._fetch_token(realm, service, scope, credential)
                    self.tokens.put(key, token, ttl)
            finally:
                lock.release()
        return f"Bearer {token}", key

    def _fetch_token(self, realm: str, service: str, scope: str, credential: Credential | None) -> tuple[str, float]:
        try:
            url = httpx.URL(realm)
        except (httpx.InvalidURL, ValueError):
            raise ImageError("auth denied (401): invalid token realm") from None
        if url.scheme not in ("http", "https") or not url.host:
            raise ImageError("auth denied (401): invalid token realm")
        if url.scheme == "http" and not self.insecure:
            raise ImageError(f"refusing plain-HTTP token realm on {url.host}")
        params = [("service", service)] if service else []
        params += [("scope", s) for s in scope.split(" ") if s]
        if credential is not None and credential.identity_token:
            form = dict(params) | {"grant_type": "refresh_token", "client_id": "gpuguard"}
            form["refresh_token"] = credential.identity_token
            form_body = urllib.parse.urlencode(form).encode()
            answer = self._send_retrying(
                "POST",
                str(url),
                None,
                kind="token",
                limit=MAX_TOKEN_BYTES,
                what="token response",
                body=form_body,
                content_type="application/x-www-form-urlencoded",
            )
        else:
            header = None
            basic = credential.basic if credential else None
            if basic is not None:
                header = "Basic " + base64.b64encode(f"{basic[0]}:{basic[1]}".encode()).decode("ascii")
            query = urllib.parse.urlencode(params)
            target = str(url) + (("&" if url.query else "?") + query if query else "")
            answer = self._send_retrying(
                "GET", target, header, kind="token", limit=MAX_TOKEN_BYTES, what="token response"
            )
        if answer.status in STATUS_REASON:
            raise ImageError(STATUS_REASON[answer.status])
        if answer.status != 200:
            raise ImageError(f"token server error ({answer.status})")
        try:
            doc = json.loads(answer.body)
        except ValueError:
            raise ImageError("invalid token response") from None
        token = (doc.get("token") or doc.get("access_token")) if isinstance(doc, dict) else None
        if not isinstance(token, str) or not token or any(c in token for c in "\r\n"):
            raise ImageError("invalid token response")
        expires = doc.get("expires_in")
        numeric = isinstance(expires, int | float) and not isinstance(expires, bool)
        ttl = float(expires) if numeric else DEFAULT_TOKEN_TTL
        return token, ttl

    # -- transport ---------------------------------------------------------------------------
    def _send(self, method: str, url: str, authorization: str | None, *, kind: str, limit: int, what: str) -> _Answer:
        """One API request with retries; a registry that cannot be reached is marked down."""
        if self._down:
            raise ImageError(self._down)
        try:
            return self._send_retrying(method, url, authorization, kind=kind, limit=limit, what=what)
        except ImageError as exc:
            if exc.reason.startswith("registry unreachable: ") and "closed before" not in exc.reason:
                self._down = exc.reason
            raise

    def _send_retrying(
        self,
        method: str,
        url: str,
        authorization: str | None,
        *,
        kind: str,
        limit: int,
        what: str,
        body: bytes | None = None,
        content_type: str | None = None,
    ) -> _Answer:
        tries = 0
        while True:
            tries += 1
            self.deadline.check()
            wait: float | None = None
            try:
                answer = self._exchange(
                    method,
                    url,
                    authorization,
                    kind=kind if tries == 1 else "retry",
                    limit=limit,
                    what=what,
                    body=body,
                    content_type=content_type,
                )
            except _TooLarge:
                raise ImageError(f"{what} larger than {limit} bytes") from None
            except (httpx.TransportError, _SlowBody) as exc:
                reason = _describe(exc)
                log.debug("%s %s: %s (try %d)", method, httpx.URL(url).copy_with(query=None), reason, tries)
                if "TLS" in reason or (
                    isinstance(exc, httpx.ProtocolError) and not isinstance(exc, httpx.RemoteProtocolError)
                ):
                    raise ImageError(reason) from None  # trying again cannot help
            else:
                if answer.status not in RETRY_STATUS:
                    return answer
                reason = f"{RETRY_STATUS[answer.status]} after {tries} tries"
                wait = _retry_after(answer.headers.get("retry-after"))
                if wait is not None:
                    wait = min(wait, RETRY_AFTER_CAP)
            if tries >= MAX_TRIES:
                raise ImageError(reason)
            if wait is None:
                wait = min(BACKOFF_CAP, BACKOFF_BASE * 2 ** (tries - 1)) * random.uniform(0.5, 1.0)
            if wait >= self.deadline.remaining():
                raise ImageError(reason if " after " in reason else self.deadline.error().reason)
            time.sleep(wait)

    def _exchange(
        self,
        method: str,
        url: str,
        authorization: str | None,
        *,
        kind: str,
        limit: int,
        what: str,
        body: bytes | None,
        content_type: str | None,
    ) -> _Answer:
        """One request and the redirects that follow it, holding one connection slot."""
        timeout = min(self.settings.timeout, self.deadline.check())
        if not self._slots.acquire(timeout=self.deadline.check()):
            raise self.deadline.error()
        try:
            target = httpx.URL(url)
            origin = _origin(target)
            for hop in range(MAX_REDIRECTS + 1):
                headers = {"Accept": ACCEPT} if "/manifests/" in target.path else {}
                if authorization is not None and _origin(target) == origin:
                    headers["Authorization"] = authorization
                if content_type:
                    headers["Content-Type"] = content_type
                self.counter.request(kind if hop == 0 else "redirect")
                started = time.monotonic()
                request = self.client.build_request(
                    method, target, headers=headers, content=body, timeout=httpx.Timeout(timeout, pool=None)
                )
                response = self.client.send(request, stream=True)
                try:
                    if response.status_code in REDIRECTS and "location" in response.headers:
                        _drain(response, started, timeout)
                        following = target.join(response.headers["location"])
                        if following.scheme not in ("http", "https"):
                            raise ImageError("redirect to an unsupported URL scheme")
                        if following.scheme == "http" and target.scheme == "https" and not self.insecure:
                            raise ImageError("refusing redirect from HTTPS to plain HTTP")
                        if response.status_code == 303:
                            method, body, content_type = "GET" if method != "HEAD" else method, None, None
                        target = following
                        continue
                    if response.status_code != 200 or method == "HEAD":
                        _drain(response, started, timeout)
                        return _Answer(response.status_code, response.headers, b"")
                    return _Answer(200, response.headers, _read_limited(response, limit, started, timeout))
                finally:
                    response.close()
            raise ImageError(f"more than {MAX_REDIRECTS} redirects")
        finally:
            self._slots.release()


def _read_limited(response: httpx.Response, limit: int, started: float, timeout: float) -> bytes:
    length = response.headers.get("content-length", "")
    if length.isdigit() and int(length) > limit:
        raise _TooLarge
    buffer = bytearray()
    for chunk in response.iter_bytes():
        buffer += chunk
        if len(buffer) > limit:
            raise _TooLarge
        if time.monotonic() - started > timeout:
            raise _SlowBody
    return bytes(buffer)


def _drain(response: httpx.Response, started: float, timeout: float) -> None:
    """Read a small error body so the connection can be reused; give up on large ones."""
    length = response.headers.get("content-length", "")
    if length.isdigit() and int(length) > MAX_ERROR_BODY:
        return
    size = 0
    try:
        for chunk in response.iter_raw():
            size += len(chunk)
            if size > MAX_ERROR_BODY or time.monotonic() - started > timeout:
                return
    except httpx.HTTPError:
        return


def build_ssl_context(ca_file: str | None) -> ssl.SSLContext | bool:
    """TLS verification always on: the system's roots and certifi's, plus ``ca_file``."""
    if ca_file is None:
        return True
    context = ssl.create_default_context(cafile=certifi.where())
    context.load_default_certs()
    try:
        context.load_verify_locations(cafile=ca_file)
    except (OSError, ssl.SSLError):
        raise InputError(ca_file, "cannot read the CA bundle") from None
    return context
