"""A small programmable registry for the HTTP unit tests (the real one lives in ../conftest.py).

It serves one :class:`imagekit.Image` per repository, can demand basic or bearer auth (its own
``/token`` endpoint), redirect blobs to a second "storage" server, answer queued faults, and
records every request with its Authorization header, so tests can see what was sent where.
"""

from __future__ import annotations

import base64
import json
import ssl
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from tests.images.unit.imagekit import Image


@dataclass
class Seen:
    method: str
    path: str
    authorization: str | None
    body: bytes = b""


@dataclass
class Fault:
    path_part: str
    status: int = 0
    headers: dict[str, str] = field(default_factory=dict)
    hang: float = 0.0
    times: int = 1


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _send(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def do_HEAD(self) -> None:
        self.do_GET()

    def do_POST(self) -> None:
        self.do_GET()

    def do_GET(self) -> None:
        fake = self.server.fake
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        seen = Seen(self.command, self.path, self.headers.get("Authorization"), body)
        with fake.lock:
            fake.seen.append(seen)
            fault = next((f for f in fake.faults if f.path_part in self.path and f.times), None)
            if fault is not None:
                fault.times -= 1
        if fault is not None:
            if fault.hang:
                time.sleep(fault.hang)
            if fault.status:
                self._send(fault.status, b"{}", fault.headers)
                return
        fake.handle(self, seen)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    fake: FakeRegistry


class FakeRegistry:
    """A registry on 127.0.0.1; ``auth`` is None, ("basic", user, pw) or ("bearer", user, pw)."""

    def __init__(self, *, auth: tuple[str, str, str] | None = None, tls: ssl.SSLContext | None = None) -> None:
        self.images: dict[str, Image] = {}
        self.tags: dict[tuple[str, str], str] = {}
        self.auth = auth
        self.faults: list[Fault] = []
        self.seen: list[Seen] = []
        self.lock = threading.Lock()
        self.redirect_blobs_to: str | None = None
        self.redirect_query = ""
        self.token_value = "tok-" + "Z" * 20
        self.token_field = "token"
        self.token_realm: str | None = None
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.fake = self
        if tls is not None:
            self._server.socket = tls.wrap_socket(self._server.socket, server_side=True)
        self.scheme = "https" if tls is not None else "http"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self._server.server_address[1]}"

    @property
    def url(self) -> str:
        return f"{self.scheme}://{self.host}"

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def push(self, repo: str, tag: str, image: Image) -> str:
        self.images.setdefault(repo, Image()).blobs.update(image.blobs)
        self.tags[(repo, tag)] = image.root
        return f"{self.host}/{repo}:{tag}"

    def fault(self, path_part: str, status: int = 0, *, times: int = 1, hang: float = 0.0, **headers: str) -> None:
        self.faults.append(Fault(path_part, status, {k.replace("_", "-"): v for k, v in headers.items()}, hang, times))

    def _authorized(self, h: _Handler, seen: Seen) -> bool:
        if self.auth is None:
            return True
        scheme, user, password = self.auth
        if scheme == "basic":
            good = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
            if seen.authorization == good:
                return True
            h._send(401, b"{}", {"WWW-Authenticate": 'Basic realm="fake"'})
            return False
        if seen.authorization == f"Bearer {self.token_value}":
            return True
        repo = seen.path.split("/v2/", 1)[1].split("/manifests/")[0].split("/blobs/")[0]
        realm = self.token_realm or f"{self.url}/token"
        h._send(
            401, b"{}", {"WWW-Authenticate": f'Bearer realm="{realm}",service="fake",scope="repository:{repo}:pull"'}
        )
        return False

    def handle(self, h: _Handler, seen: Seen) -> None:
        path = urllib.parse.urlsplit(seen.path).path
        if path == "/token":
            assert self.auth is not None
            _, user, password = self.auth
            basic = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
            form = urllib.parse.parse_qs(seen.body.decode())
            if seen.authorization == basic or form.get("refresh_token") == [password]:
                h._send(200, json.dumps({self.token_field: self.token_value, "expires_in": 300}).encode())
                return
            h._send(401, b'{"errors": "denied"}')
            return
        if not path.startswith("/v2/"):
            h._send(404)
            return
        if not self._authorized(h, seen):
            return
        rest = path[len("/v2/") :]
        if "/manifests/" in rest:
            repo, ref = rest.split("/manifests/")
            image = self.images.get(repo)
            digest = ref if ref.startswith("sha") else self.tags.get((repo, ref))
            if image is None or digest not in image.blobs:
                h._send(404, b"{}")
                return
            data = image.blobs[digest]
            media = (
                "application/vnd.oci.image.index.v1+json"
                if b'"manifests"' in data
                else "application/vnd.oci.image.manifest.v1+json"
            )
            h._send(200, data, {"Content-Type": media, "Docker-Content-Digest": digest})
            return
        if "/blobs/" in rest:
            repo, digest = rest.split("/blobs/")
            image = self.images.get(repo)
            if image is None or digest not in image.blobs:
                h._send(404, b"{}")
                return
            if self.redirect_blobs_to:
                h._send(
                    307, b"", {"Location": f"{self.redirect_blobs_to}/storage/{repo}/{digest}?{self.redirect_query}"}
                )
                return
            h._send(200, image.blobs[digest])
            return
        h._send(404)


class Storage(FakeRegistry):
    """Blob storage that a registry redirects to: serves ``/storage/<repo>/<digest>`` with no auth."""

    def __init__(self, source: FakeRegistry) -> None:
        super().__init__()
        self.source = source

    def handle(self, h: _Handler, seen: Seen) -> None:
        path = urllib.parse.urlsplit(seen.path).path
        _, _, rest = path.partition("/storage/")
        repo, _, digest = rest.rpartition("/")
        image = self.source.images.get(repo)
        if image is None or digest not in image.blobs:
            h._send(404)
            return
        h._send(200, image.blobs[digest])
