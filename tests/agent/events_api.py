"""A stand-in for the Kubernetes API's core/v1 Events, for the agent's ``--events`` tests only.

The real API server cannot run on the test machines.  This answers the three
calls the publisher makes, as the API server does: ``POST
/api/v1/namespaces/{ns}/events`` (201, or 409 AlreadyExists for a name it
has), ``GET .../events/{name}`` (200 or 404) and ``PATCH .../events/{name}``
(a JSON merge patch or strategic merge patch of plain fields; 200).  A bearer
token is required.  ``fail`` makes the next N writes answer 500.  Every
request is recorded.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

TOKEN = "events-test-token"
_PATH = re.compile(r"^/api/v1/namespaces/([a-z0-9-]+)/events(?:/([A-Za-z0-9.-]+))?$")


@dataclass
class EventsApi:
    port: int = 0
    events: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    requests: list[tuple[str, str]] = field(default_factory=list)
    fail: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def host(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def calls(self, method: str) -> int:
        return sum(1 for m, _ in self.requests if m == method)


def _status(code: int, reason: str, message: str) -> dict[str, Any]:
    return {"kind": "Status", "apiVersion": "v1", "status": "Failure", "message": message, "reason": reason,
            "code": code}


def _handler(state: EventsApi) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

        def _send(self, code: int, body: dict[str, Any]) -> None:
            data = json.dumps(body).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _begin(self) -> tuple[str, str | None] | None:
            with state.lock:
                state.requests.append((self.command, self.path))
            length = int(self.headers.get("Content-Length") or 0)
            self._body = json.loads(self.rfile.read(length)) if length else None
            if self.headers.get("Authorization") != f"Bearer {TOKEN}":
                self._send(401, _status(401, "Unauthorized", "Unauthorized"))
                return None
            m = _PATH.match(self.path.split("?", 1)[0])
            if m is None:
                self._send(404, _status(404, "NotFound", "the server could not find the requested resource"))
                return None
            if self.command != "GET" and state.fail > 0:
                state.fail -= 1
                self._send(500, _status(500, "InternalError", "etcdserver: request timed out"))
                return None
            return m.group(1), m.group(2)

        def do_POST(self) -> None:
            where = self._begin()
            if where is None:
                return
            namespace, _ = where
            body = self._body
            name = body["metadata"]["name"]
            with state.lock:
                if (namespace, name) in state.events:
                    self._send(409, _status(409, "AlreadyExists", f'events "{name}" already exists'))
                    return
                state.events[(namespace, name)] = body
            self._send(201, body)

        def do_GET(self) -> None:
            where = self._begin()
            if where is None:
                return
            with state.lock:
                event = state.events.get((where[0], where[1] or ""))
            if event is None:
                self._send(404, _status(404, "NotFound", f'events "{where[1]}" not found'))
                return
            self._send(200, event)

        def do_PATCH(self) -> None:
            where = self._begin()
            if where is None:
                return
            kind = self.headers.get("Content-Type", "")
            if kind not in ("application/merge-patch+json", "application/strategic-merge-patch+json"):
                self._send(415, _status(415, "UnsupportedMediaType", f"the body of the request was in an unknown "
                                        f"format - accepted media types include: merge patch; got {kind}"))
                return
            with state.lock:
                event = state.events.get((where[0], where[1] or ""))
                if event is not None:
                    event.update(self._body)
            if event is None:
                self._send(404, _status(404, "NotFound", f'events "{where[1]}" not found'))
                return
            self._send(200, event)

    return Handler


@contextmanager
def serve() -> Iterator[EventsApi]:
    state = EventsApi()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    state.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def api_client(state: EventsApi) -> Any:
    from kubernetes import client

    configuration = client.Configuration()
    configuration.host = state.host
    configuration.api_key = {"authorization": TOKEN}
    configuration.api_key_prefix = {"authorization": "Bearer"}
    return client.ApiClient(configuration)
