"""A real OCI registry on loopback, and the images the tests push into it.

Used by ``tests/images/conftest.py`` and ``benchmarks/bench_images.py``. Everything here runs
on this machine and nothing is downloaded:

- :func:`start_registry` runs Debian's ``docker-registry`` (distribution 2.8) with a generated
  config: no auth, ``htpasswd`` (bcrypt lines made here) or ``token`` auth;
- :class:`TokenServer` is the token service of the token-auth registry: a threaded
  ``http.server`` issuing RS256 JWTs signed with a key whose self-signed certificate is the
  registry's ``rootcertbundle`` (the JWT header carries the certificate as ``x5c``, which
  distribution verifies against that bundle);
- :class:`FaultProxy` sits in front of a registry and, on request, answers 429/5xx, drops
  connections, truncates or replaces bodies, serves oversized bodies or redirects blobs;
- :func:`build_image` makes an image from scratch (a gzip'd tar layer, a config with
  ``config.Env``), :func:`push_image` pushes it through the distribution API (blob upload, then
  manifest; an OCI index or Docker manifest list for several platforms), and
  :func:`write_oci_layout` / :func:`write_oci_archive` / :func:`write_docker_save_tar` write it
  as local sources.
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import gzip
import hashlib
import http.client
import io
import json
import os
import re
import secrets
import shutil
import signal
import socket
import ssl
import subprocess
import tarfile
import threading
import time
import urllib.parse
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Literal

REGISTRY_CANDIDATES = ("/usr/bin/docker-registry",)
READY_DEADLINE_S = 30.0

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar.gzip"

MANIFEST_TYPES = ", ".join((OCI_INDEX, OCI_MANIFEST, DOCKER_LIST, DOCKER_MANIFEST))

Media = Literal["oci", "docker"]
Auth = tuple[str, str]


def registry_binary() -> str | None:
    """The ``docker-registry`` executable, or None when the package is not installed."""
    found = shutil.which("docker-registry")
    if found:
        return found
    return next((c for c in REGISTRY_CANDIDATES if os.access(c, os.X_OK)), None)


def free_port() -> int:
    """A loopback TCP port nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def closed_url() -> str:
    """The URL of a loopback port with nothing behind it: a registry that is down."""
    return f"http://127.0.0.1:{free_port()}"


def host_of(url: str) -> str:
    """``http://127.0.0.1:5000`` -> ``127.0.0.1:5000`` (the reference's registry part)."""
    return urllib.parse.urlsplit(url).netloc


def connect(url: str, *, timeout: float = 10, ca_path: Path | None = None) -> http.client.HTTPConnection:
    """A connection to ``url``'s host: plain HTTP, or HTTPS verified against ``ca_path``."""
    parts = urllib.parse.urlsplit(url)
    host = parts.hostname or "127.0.0.1"
    if parts.scheme == "https":
        context = ssl.create_default_context(cafile=str(ca_path) if ca_path else None)
        return http.client.HTTPSConnection(host, parts.port or 443, timeout=timeout, context=context)
    return http.client.HTTPConnection(host, parts.port or 80, timeout=timeout)


def http_get(
    url: str, path: str, headers: Mapping[str, str] | None = None, *, ca_path: Path | None = None
) -> tuple[int, http.client.HTTPMessage, bytes]:
    """One GET (a fresh connection), accepting every manifest type: (status, headers, body)."""
    conn = connect(url, ca_path=ca_path)
    try:
        conn.request("GET", path, headers={"Accept": MANIFEST_TYPES, **(headers or {})})
        resp = conn.getresponse()
        return resp.status, resp.headers, resp.read()
    finally:
        conn.close()


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def basic_header(auth: Auth) -> str:
    return "Basic " + base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()


# --------------------------------------------------------------------------------------------
# The registry process


@dataclass
class RegistryServer:
    """One running ``docker-registry serve``; :meth:`stop` ends it."""

    url: str
    root: Path
    process: subprocess.Popen[bytes]
    log_path: Path
    credentials: Auth | None = None
    token_server: TokenServer | None = None
    ca_path: Path | None = None  # TLS registries: the PEM of the CA that signed its certificate

    @property
    def host(self) -> str:
        return host_of(self.url)

    def connection(self, timeout: float = 10) -> http.client.HTTPConnection:
        return connect(self.url, timeout=timeout, ca_path=self.ca_path)

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-4000:]
        except OSError:
            return ""

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        if self.token_server is not None:
            self.token_server.stop()


def htpasswd_line(user: str, password: str) -> str:
    """A bcrypt ``htpasswd`` line (the only hash distribution accepts). Cost 4 keeps each
    authenticated request cheap: the registry checks the hash on every request."""
    import bcrypt

    return f"{user}:{bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=4)).decode()}"


def _registry_config(
    root: Path, port: int, auth: Mapping[str, Any] | None, tls: Mapping[str, str] | None = None
) -> dict[str, Any]:
    config: dict[str, Any] = {
        "version": 0.1,
        "log": {"level": "warn", "accesslog": {"disabled": True}, "formatter": "text"},
        "storage": {
            "filesystem": {"rootdirectory": str(root / "data")},
            "cache": {"blobdescriptor": "inmemory"},
            "delete": {"enabled": True},
            "maintenance": {"uploadpurging": {"enabled": False}},
        },
        "http": {"addr": f"127.0.0.1:{port}", "secret": secrets.token_hex(16)},
    }
    if auth:
        config["auth"] = dict(auth)
    if tls:
        config["http"]["tls"] = dict(tls)
    return config


def make_tls_files(directory: Path, *, hosts: Sequence[str] = ("127.0.0.1", "localhost")) -> tuple[Path, Path, Path]:
    """A test CA and a server certificate it signs for ``hosts`` (IP addresses and names):
    ``(ca.pem, server.pem, server-key.pem)``."""
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    directory.mkdir(parents=True, exist_ok=True)
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "gpuguard test CA")])
    ca = (
        x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1)).not_valid_after(now + dt.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                     content_commitment=False, key_encipherment=False, data_encipherment=False,
                                     key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )  # fmt: skip
    key = ec.generate_private_key(ec.SECP256R1())
    names: list[x509.GeneralName] = []
    for h in hosts:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(h)))
        except ValueError:
            names.append(x509.DNSName(h))
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hosts[0])])).issuer_name(ca_name)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1)).not_valid_after(now + dt.timedelta(days=30))
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )  # fmt: skip
    ca_path, cert_path, key_path = directory / "ca.pem", directory / "server.pem", directory / "server-key.pem"
    ca_path.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))  # fmt: skip
    return ca_path, cert_path, key_path


def _die_with_parent() -> None:
    """In the child before exec: on Linux, get SIGTERM when the test process dies, so a killed
    test run (a CI timeout) leaves no registry behind. Elsewhere nothing."""
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def start_registry(
    root: Path,
    *,
    htpasswd: Auth | None = None,
    token_auth: Auth | None = None,
    tls: bool = False,
    binary: str | None = None,
) -> RegistryServer:
    """Start a registry storing under ``root``: no auth, basic auth for ``htpasswd`` or token
    auth (a :class:`TokenServer` granting pull/push to ``token_auth``); over HTTPS with a
    certificate from a test CA (``.ca_path``) when ``tls``. Returns once ``/v2/`` answers;
    raises with the registry's log when it does not within the deadline."""
    exe = binary or registry_binary()
    if exe is None:
        raise RuntimeError("docker-registry is not installed (apt-get install docker-registry)")
    root.mkdir(parents=True, exist_ok=True)
    token_server: TokenServer | None = None
    auth: dict[str, Any] | None = None
    if htpasswd is not None:
        (root / "htpasswd").write_text(htpasswd_line(*htpasswd) + "\n")
        auth = {"htpasswd": {"realm": "gpuguard-test", "path": str(root / "htpasswd")}}
    elif token_auth is not None:
        token_server = TokenServer(root / "token", users={token_auth[0]: token_auth[1]})
        auth = {
            "token": {
                "realm": token_server.realm,
                "service": token_server.service,
                "issuer": token_server.issuer,
                "rootcertbundle": str(token_server.cert_path),
            }
        }
    tls_config: dict[str, str] | None = None
    ca_path: Path | None = None
    if tls:
        ca_path, cert_path, key_path = make_tls_files(root / "tls")
        tls_config = {"certificate": str(cert_path), "key": str(key_path)}
    scheme = "https" if tls else "http"
    last_error = ""
    for _attempt in range(3):  # a free port can be taken between choosing and binding it
        port = free_port()
        config_path = root / "config.yml"
        config = _registry_config(root, port, auth, tls_config)
        config_path.write_text(json.dumps(config, indent=2))  # JSON is YAML
        log_path = root / "registry.log"
        with log_path.open("wb") as log:
            process = subprocess.Popen(
                [exe, "serve", str(config_path)],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
                preexec_fn=_die_with_parent,  # noqa: PLW1509 - only prctl, before exec
            )
        server = RegistryServer(
            f"{scheme}://127.0.0.1:{port}", root, process, log_path, htpasswd or token_auth, token_server, ca_path
        )
        if wait_ready(server):
            return server
        last_error = server.log()
        server.token_server = None
        server.stop()
        if "address already in use" not in last_error:
            break
    if token_server is not None:
        token_server.stop()
    raise RuntimeError(f"docker-registry did not become ready:\n{last_error}")


def wait_ready(server: RegistryServer, deadline_s: float = READY_DEADLINE_S) -> bool:
    """Poll ``GET /v2/`` until it answers (200, or 401 behind auth), the process exits or
    the deadline passes. Between polls, wait on the process itself (so an early exit is seen
    at once) for a few milliseconds."""
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        if server.process.poll() is not None:
            return False
        conn = server.connection(timeout=2)
        try:
            conn.request("GET", "/v2/")
            status = conn.getresponse().status
            if status in (200, 401):
                return True
        except OSError:
            pass
        finally:
            conn.close()
        with contextlib.suppress(subprocess.TimeoutExpired):
            server.process.wait(timeout=0.02)
    return False


# --------------------------------------------------------------------------------------------
# In-process HTTP servers on loopback


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    owner: Any


class _LoopbackService:
    """A ThreadingHTTPServer on 127.0.0.1:<free port>, served from a daemon thread."""

    handler: type[BaseHTTPRequestHandler]

    def _serve(self) -> None:
        self._httpd = _Server(("127.0.0.1", 0), self.handler)
        self._httpd.owner = self
        self.port = int(self._httpd.server_address[1])
        self._thread = threading.Thread(target=self._httpd.serve_forever, name=type(self).__name__, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=10)


class _QuietHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        return

    def send_body(self, status: int, body: bytes, headers: Mapping[str, str] | None = None) -> None:
        self.send_response(status)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)


# --------------------------------------------------------------------------------------------
# Token service


@dataclass
class TokenRequest:
    """What the token server saw (never the password)."""

    user: str | None  # the basic-auth user, None when anonymous
    accepted: bool
    scopes: tuple[str, ...]
    service: str | None


class _TokenHandler(_QuietHandler):
    server: _Server

    def do_GET(self) -> None:
        ts: TokenServer = self.server.owner
        url = urllib.parse.urlsplit(self.path)
        if url.path != "/token":
            self.send_body(404, b"{}", {"Content-Type": "application/json"})
            return
        query = urllib.parse.parse_qs(url.query)
        scopes = tuple(s for value in query.get("scope", []) for s in value.split(" ") if s)
        service = query.get("service", [None])[0]
        user = ts.check(self.headers.get("Authorization"))
        if user is False:
            ts.record(TokenRequest(ts.user_of(self.headers.get("Authorization")), False, scopes, service))
            self.send_body(
                401,
                b'{"details":"incorrect username or password"}',
                {"Content-Type": "application/json", "WWW-Authenticate": 'Basic realm="gpuguard-token"'},
            )
            return
        name = user if isinstance(user, str) else None
        ts.record(TokenRequest(name, True, scopes, service))
        token = ts.issue(name, scopes)
        body = json.dumps(
            {"token": token, "access_token": token, "expires_in": 300, "issued_at": dt.datetime.now(dt.UTC).isoformat()}
        ).encode()
        self.send_body(200, body, {"Content-Type": "application/json"})


class TokenServer(_LoopbackService):
    """The token service of a token-auth registry (distribution's ``auth.token``).

    ``GET /token?service=S&scope=repository:NAME:pull,push`` with basic credentials of a
    known user answers a JWT granting the requested pull/push actions; without credentials it
    answers a token granting nothing (as Docker Hub and Harbor do for anonymous users, so the
    registry then refuses); with wrong credentials, 401.

    The JWT is RS256, signed with a key generated here; its header's ``x5c`` holds the
    self-signed certificate of that key, and that certificate is the registry's
    ``rootcertbundle``: distribution 2.8 (``registry/auth/token/token.go``) verifies the
    ``x5c`` chain against the bundle, then ``iss``, ``aud`` (a string: the service), ``exp``
    and ``nbf``, then the signature, and grants what the ``access`` claim lists.
    """

    handler = _TokenHandler

    def __init__(self, directory: Path, users: Mapping[str, str], *, service: str = "gpuguard-test-registry") -> None:
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import rsa
        from cryptography.x509.oid import NameOID

        directory.mkdir(parents=True, exist_ok=True)
        self.users = dict(users)
        self.service = service
        self.issuer = "gpuguard-test-token-issuer"
        self._key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "gpuguard test token signer")])
        now = dt.datetime.now(dt.UTC)
        cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(self._key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=30))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(self._key, hashes.SHA256())
        )
        self.cert_path = directory / "token-signer.pem"
        self.cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        self._x5c = [base64.b64encode(cert.public_bytes(serialization.Encoding.DER)).decode()]
        self._lock = threading.Lock()
        self.requests: list[TokenRequest] = []
        self._serve()

    @property
    def realm(self) -> str:
        return f"{self.url}/token"

    def user_of(self, authorization: str | None) -> str | None:
        if not authorization or not authorization.startswith("Basic "):
            return None
        try:
            return base64.b64decode(authorization[6:]).decode().split(":", 1)[0]
        except ValueError:
            return None

    def check(self, authorization: str | None) -> str | bool:
        """The user for good credentials, True for none (anonymous), False for bad ones."""
        if not authorization:
            return True
        if not authorization.startswith("Basic "):
            return False
        try:
            user, _, password = base64.b64decode(authorization[6:]).decode().partition(":")
        except ValueError:
            return False
        expected = self.users.get(user)
        if expected is None or not secrets.compare_digest(expected, password):
            return False
        return user

    def issue(self, user: str | None, scopes: Sequence[str]) -> str:
        import jwt

        access: list[dict[str, Any]] = []
        for scope in scopes:
            kind, _, rest = scope.partition(":")
            name, _, actions = rest.rpartition(":")
            if kind != "repository" or not name or user is None:
                continue
            granted = [a for a in actions.split(",") if a in ("pull", "push")]
            if granted:
                access.append({"type": "repository", "name": name, "actions": granted})
        now = int(time.time())
        claims = {
            "iss": self.issuer,
            "sub": user or "",
            "aud": self.service,
            "exp": now + 300,
            "nbf": now - 5,
            "iat": now,
            "jti": secrets.token_hex(12),
            "access": access,
        }
        return jwt.encode(claims, self._key, algorithm="RS256", headers={"x5c": self._x5c})

    def record(self, request: TokenRequest) -> None:
        with self._lock:
            self.requests.append(request)

    def reset(self) -> None:
        with self._lock:
            self.requests.clear()


# --------------------------------------------------------------------------------------------
# Fault-injecting proxy


FaultKind = Literal["status", "drop", "truncate", "cut", "replace", "oversize", "redirect", "hang"]


@dataclass
class Fault:
    """One behaviour of :class:`FaultProxy` for requests whose path matches ``path`` (a regex,
    searched), applied ``times`` times (None: always)."""

    kind: FaultKind
    path: str
    times: int | None = 1
    method: str | None = None  # None: GET and HEAD
    status: int = 500
    headers: Mapping[str, str] = field(default_factory=dict)
    body: bytes = b""
    keep: int = 0  # truncate/cut: bytes of the upstream body that are sent
    size: int = 0  # oversize: bytes served
    seconds: float = 0.0  # hang: how long the request is held without an answer (reset ends it early)

    def matches(self, method: str, path: str) -> bool:
        allowed = (self.method,) if self.method else ("GET", "HEAD")
        return method in allowed and re.search(self.path, path) is not None


@dataclass(frozen=True)
class ProxyRecord:
    method: str
    path: str
    status: int | None  # None: the connection was dropped or cut
    fault: FaultKind | None


class _ProxyHandler(_QuietHandler):
    server: _Server

    def _handle(self) -> None:
        proxy: FaultProxy = self.server.owner
        length = int(self.headers.get("Content-Length") or 0)
        request_body = self.rfile.read(length) if length else b""
        path = self.path
        if path.startswith("/_storage/"):  # the "blob storage" that redirected blobs point at
            path = urllib.parse.unquote(path[len("/_storage") :])
            self._forward(proxy, path, request_body, None, redirected=True)
            return
        fault = proxy.take(self.command, path)
        if fault is None or fault.kind in ("truncate", "cut", "replace"):
            self._forward(proxy, path, request_body, fault)
            return
        if fault.kind == "hang":
            proxy.record(ProxyRecord(self.command, path, None, "hang"))
            proxy.held().wait(fault.seconds)
            self.close_connection = True
            return
        if fault.kind == "drop":
            proxy.record(ProxyRecord(self.command, path, None, "drop"))
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.connection.shutdown(socket.SHUT_RDWR)
            return
        if fault.kind == "status":
            proxy.record(ProxyRecord(self.command, path, fault.status, "status"))
            body = fault.body or json.dumps({"errors": [{"code": "FAULT", "message": "injected"}]}).encode()
            self.send_body(fault.status, body, {"Content-Type": "application/json", **fault.headers})
            return
        if fault.kind == "oversize":
            proxy.record(ProxyRecord(self.command, path, 200, "oversize"))
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(fault.size))
            self.end_headers()
            if self.command != "HEAD":
                chunk = b"{" + b" " * (64 * 1024 - 1)
                sent = 0
                with contextlib.suppress(OSError):
                    while sent < fault.size:
                        part = chunk[: fault.size - sent]
                        self.wfile.write(part)
                        sent += len(part)
            return
        # redirect
        proxy.record(ProxyRecord(self.command, path, 307, "redirect"))
        target = f"{proxy.url}/_storage{urllib.parse.quote(path)}"
        self.send_body(307, b"", {"Location": target})

    def _forward(
        self, proxy: FaultProxy, path: str, body: bytes, fault: Fault | None, *, redirected: bool = False
    ) -> None:
        headers = {k: v for k, v in self.headers.items() if k.lower() not in ("connection", "content-length")}
        if redirected:
            headers.pop("Authorization", None)  # blob storage gets no registry credentials
        try:
            status, reason, up_headers, up_body = proxy.upstream(self.command, path, body, headers)
        except OSError:
            proxy.record(ProxyRecord(self.command, path, 502, None))
            self.send_body(502, b"upstream down")
            return
        kind = fault.kind if fault else None
        if fault is not None and fault.kind == "replace":
            up_body = fault.body
        out_body = up_body
        length = len(up_body)
        if fault is not None and fault.kind == "truncate":
            out_body = up_body[: fault.keep]
            length = len(out_body)
        elif fault is not None and fault.kind == "cut":
            out_body = up_body[: fault.keep]  # Content-Length still announces the whole body
        proxy.record(ProxyRecord(self.command, path, None if kind == "cut" else status, kind))
        self.send_response(status, reason)
        for k, v in up_headers:
            if k.lower() not in ("content-length", "connection", "transfer-encoding", "keep-alive"):
                self.send_header(k, v)
        self.send_header("Content-Length", str(length))
        if kind == "cut":
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        if self.command != "HEAD":
            with contextlib.suppress(OSError):
                self.wfile.write(out_body)
        if kind == "cut":
            with contextlib.suppress(OSError):
                self.wfile.flush()
                self.connection.shutdown(socket.SHUT_RDWR)

    do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = _handle


class FaultProxy(_LoopbackService):
    """An HTTP proxy in front of ``upstream`` (a registry URL) whose behaviour tests set with
    :meth:`fail`, :meth:`drop`, :meth:`truncate`, :meth:`cut`, :meth:`replace`,
    :meth:`oversize`, :meth:`hang` and :meth:`redirect_blobs`; :attr:`log` lists what it answered."""

    handler = _ProxyHandler

    def __init__(self, upstream: str) -> None:
        parts = urllib.parse.urlsplit(upstream)
        self._upstream = (parts.hostname or "127.0.0.1", parts.port or 80)
        self._lock = threading.Lock()
        self._faults: list[Fault] = []
        self._log: list[ProxyRecord] = []
        self._local = threading.local()
        self._release = threading.Event()
        self._serve()

    # -- behaviour
    def add(self, fault: Fault) -> Fault:
        with self._lock:
            self._faults.append(fault)
        return fault

    def fail(self, path: str, status: int, *, times: int | None = 1, headers: Mapping[str, str] | None = None) -> Fault:
        return self.add(Fault("status", path, times, status=status, headers=dict(headers or {})))

    def drop(self, path: str, *, times: int | None = 1) -> Fault:
        return self.add(Fault("drop", path, times))

    def truncate(self, path: str, keep: int, *, times: int | None = None) -> Fault:
        """Send only the first ``keep`` bytes of the body, with a matching Content-Length."""
        return self.add(Fault("truncate", path, times, keep=keep))

    def cut(self, path: str, keep: int, *, times: int | None = None) -> Fault:
        """Announce the whole body, send ``keep`` bytes of it, close the connection."""
        return self.add(Fault("cut", path, times, keep=keep))

    def replace(self, path: str, body: bytes, *, times: int | None = None) -> Fault:
        """Serve ``body`` instead of the upstream body, keeping the upstream's headers
        (``Docker-Content-Digest`` included)."""
        return self.add(Fault("replace", path, times, body=body))

    def oversize(self, path: str, size: int, *, times: int | None = None) -> Fault:
        return self.add(Fault("oversize", path, times, size=size))

    def hang(self, path: str, seconds: float, *, times: int | None = None) -> Fault:
        """Accept the request and answer nothing for ``seconds`` (or until :meth:`reset`)."""
        return self.add(Fault("hang", path, times, seconds=seconds))

    def held(self) -> threading.Event:
        with self._lock:
            return self._release

    def redirect_blobs(self, *, times: int | None = None) -> Fault:
        """Answer blob GETs with 307 to this proxy's ``/_storage/...`` (as registries backed
        by S3/GCS redirect to a signed URL); the redirected request carries no credentials."""
        return self.add(Fault("redirect", r"^/v2/.+/blobs/sha256:[0-9a-f]{64}$", times))

    def reset(self) -> None:
        with self._lock:
            self._faults.clear()
            self._log.clear()
            self._release.set()  # wake requests held by hang()
            self._release = threading.Event()

    def stop(self) -> None:
        self.reset()
        super().stop()

    def take(self, method: str, path: str) -> Fault | None:
        with self._lock:
            for fault in self._faults:
                if fault.matches(method, path) and (fault.times is None or fault.times > 0):
                    if fault.times is not None:
                        fault.times -= 1
                    return fault
        return None

    # -- what happened
    def record(self, record: ProxyRecord) -> None:
        with self._lock:
            self._log.append(record)

    @property
    def log(self) -> list[ProxyRecord]:
        with self._lock:
            return list(self._log)

    # -- upstream
    def upstream(
        self, method: str, path: str, body: bytes, headers: Mapping[str, str]
    ) -> tuple[int, str, list[tuple[str, str]], bytes]:
        for attempt in range(2):
            conn: http.client.HTTPConnection | None = getattr(self._local, "conn", None)
            if conn is None:
                conn = http.client.HTTPConnection(*self._upstream, timeout=30)
                self._local.conn = conn
            try:
                conn.request(method, path, body=body or None, headers=dict(headers))
                resp = conn.getresponse()
                data = resp.read()
                return resp.status, resp.reason, resp.getheaders(), data
            except (http.client.HTTPException, OSError):
                conn.close()
                self._local.conn = None
                if attempt == 1:
                    raise
        raise AssertionError("unreachable")


# --------------------------------------------------------------------------------------------
# Images


@dataclass(frozen=True)
class Blob:
    media_type: str
    data: bytes

    @property
    def digest(self) -> str:
        return sha256(self.data)

    @property
    def size(self) -> int:
        return len(self.data)

    def descriptor(self, **extra: Any) -> dict[str, Any]:
        return {"mediaType": self.media_type, "digest": self.digest, "size": self.size, **extra}


@dataclass(frozen=True)
class PlatformImage:
    platform: str
    config: Blob
    layer: Blob
    layer_tar: bytes  # uncompressed (docker save wants it)
    manifest: Blob


@dataclass(frozen=True)
class BuiltImage:
    """An image built by :func:`build_image`: one manifest per platform, and for several
    platforms (or ``index=True``) an index / manifest list over them."""

    media: Media
    platforms: tuple[PlatformImage, ...]
    index: Blob | None

    @property
    def top(self) -> Blob:
        return self.index if self.index is not None else self.platforms[0].manifest

    @property
    def digest(self) -> str:
        return self.top.digest

    def for_platform(self, platform: str) -> PlatformImage:
        return next(p for p in self.platforms if p.platform == platform)

    def blobs(self) -> list[Blob]:
        """Config and layer blobs, each once."""
        seen: dict[str, Blob] = {}
        for p in self.platforms:
            seen.setdefault(p.layer.digest, p.layer)
            seen.setdefault(p.config.digest, p.config)
        return list(seen.values())


def _canonical(doc: Mapping[str, Any]) -> bytes:
    return json.dumps(doc, indent=3).encode()  # as registries store it: the bytes are the digest


def _layer_tar(files: Mapping[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in sorted(files.items()):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mtime = 0
            info.mode = 0o644
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def _split_platform(platform: str) -> dict[str, str]:
    parts = platform.split("/")
    out = {"os": parts[0], "architecture": parts[1]}
    if len(parts) > 2:
        out["variant"] = parts[2]
    return out


def build_image(
    env: Sequence[str] | Mapping[str, Sequence[str]],
    *,
    platforms: Sequence[str] = ("linux/amd64",),
    media: Media = "oci",
    index: bool | None = None,
    label: str = "",
    config_padding: int = 0,
) -> BuiltImage:
    """Build an image from scratch. ``env`` is ``config.Env`` for every platform, or a mapping
    platform -> env. ``label`` goes into the layer so that images with equal env still differ;
    ``config_padding`` adds that many bytes to the config (a label), to make it large."""
    if media not in ("oci", "docker"):
        raise ValueError(media)
    built: list[PlatformImage] = []
    for platform in platforms:
        platform_env = list(env[platform] if isinstance(env, Mapping) else env)
        tar = _layer_tar({"etc/gpuguard-test": f"{label}\n{platform}\n".encode()})
        layer = Blob(OCI_LAYER if media == "oci" else DOCKER_LAYER, gzip.compress(tar, mtime=0))
        config_doc: dict[str, Any] = {
            "created": "2026-01-01T00:00:00Z",
            **_split_platform(platform),
            "config": {"Env": platform_env, "Cmd": ["/bin/sh"], "Labels": {"test.gpuguard.io/label": label}},
            "rootfs": {"type": "layers", "diff_ids": [sha256(tar)]},
            "history": [{"created": "2026-01-01T00:00:00Z", "created_by": "gpuguard tests"}],
        }
        if config_padding:
            config_doc["config"]["Labels"]["test.gpuguard.io/padding"] = "x" * config_padding
        config = Blob(OCI_CONFIG if media == "oci" else DOCKER_CONFIG, _canonical(config_doc))
        manifest_media = OCI_MANIFEST if media == "oci" else DOCKER_MANIFEST
        manifest = Blob(
            manifest_media,
            _canonical(
                {
                    "schemaVersion": 2,
                    "mediaType": manifest_media,
                    "config": config.descriptor(),
                    "layers": [layer.descriptor()],
                }
            ),
        )
        built.append(PlatformImage(platform, config, layer, tar, manifest))
    top: Blob | None = None
    if index if index is not None else len(built) > 1:
        index_media = OCI_INDEX if media == "oci" else DOCKER_LIST
        top = Blob(
            index_media,
            _canonical(
                {
                    "schemaVersion": 2,
                    "mediaType": index_media,
                    "manifests": [p.manifest.descriptor(platform=_split_platform(p.platform)) for p in built],
                }
            ),
        )
    return BuiltImage(media, tuple(built), top)


class Pusher:
    """A minimal distribution-API client for pushing: one keep-alive connection, answering
    401 challenges with basic credentials or a bearer token fetched from the realm."""

    def __init__(self, base_url: str, auth: Auth | None = None, *, ca_path: Path | None = None) -> None:
        self.base_url = base_url
        self.ca_path = ca_path
        self.auth = auth
        self._conn: http.client.HTTPConnection | None = None
        self._authorization: dict[str, str] = {}  # repository -> header value
        self.requests = 0

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def _send(
        self, method: str, path: str, body: bytes | None, headers: Mapping[str, str]
    ) -> tuple[int, http.client.HTTPMessage, bytes]:
        for attempt in range(2):
            if self._conn is None:
                self._conn = connect(self.base_url, timeout=60, ca_path=self.ca_path)
            try:
                self._conn.request(method, path, body=body, headers=dict(headers))
                resp = self._conn.getresponse()
                data = resp.read()
                self.requests += 1
                return resp.status, resp.headers, data
            except (http.client.HTTPException, OSError):
                self.close()
                if attempt == 1:
                    raise
        raise AssertionError("unreachable")

    def request(
        self, method: str, path: str, repo: str, body: bytes | None = None, headers: Mapping[str, str] | None = None
    ) -> tuple[int, http.client.HTTPMessage, bytes]:
        hdrs = dict(headers or {})
        if repo in self._authorization:
            hdrs["Authorization"] = self._authorization[repo]
        status, resp_headers, data = self._send(method, path, body, hdrs)
        if status == 401 and self.auth is not None:
            self._authorization[repo] = self._answer(resp_headers.get("WWW-Authenticate", ""), repo)
            hdrs["Authorization"] = self._authorization[repo]
            status, resp_headers, data = self._send(method, path, body, hdrs)
        return status, resp_headers, data

    def _answer(self, challenge: str, repo: str) -> str:
        assert self.auth is not None
        scheme, _, params_text = challenge.partition(" ")
        if scheme.lower() == "basic":
            return basic_header(self.auth)
        params = dict(re.findall(r'(\w+)="([^"]*)"', params_text))
        query = urllib.parse.urlencode({"service": params.get("service", ""), "scope": f"repository:{repo}:pull,push"})
        realm = urllib.parse.urlsplit(params["realm"])
        conn = http.client.HTTPConnection(realm.hostname or "127.0.0.1", realm.port or 80, timeout=30)
        try:
            conn.request("GET", f"{realm.path}?{query}", headers={"Authorization": basic_header(self.auth)})
            resp = conn.getresponse()
            data = resp.read()
        finally:
            conn.close()
        if resp.status != 200:
            raise PushError(f"token request failed: {resp.status}")
        return "Bearer " + str(json.loads(data)["token"])

    def push_blob(self, repo: str, blob: Blob) -> None:
        status, _, _ = self.request("HEAD", f"/v2/{repo}/blobs/{blob.digest}", repo)
        if status == 200:
            return
        status, headers, data = self.request("POST", f"/v2/{repo}/blobs/uploads/", repo, b"")
        if status != 202:
            raise PushError(f"POST blob upload for {repo}: {status} {data[:300]!r}")
        location = headers["Location"]
        loc = urllib.parse.urlsplit(location)
        sep = "&" if loc.query else "?"
        target = f"{loc.path}?{loc.query}" if loc.query else loc.path
        target += f"{sep}digest={urllib.parse.quote(blob.digest)}"
        status, _, data = self.request(
            "PUT", target, repo, blob.data, {"Content-Type": "application/octet-stream"}
        )
        if status != 201:
            raise PushError(f"PUT blob {blob.digest} to {repo}: {status} {data[:300]!r}")

    def push_manifest(self, repo: str, reference: str, manifest: Blob) -> str:
        status, headers, data = self.request(
            "PUT", f"/v2/{repo}/manifests/{reference}", repo, manifest.data, {"Content-Type": manifest.media_type}
        )
        if status != 201:
            raise PushError(f"PUT manifest {repo}:{reference}: {status} {data[:300]!r}")
        digest = headers.get("Docker-Content-Digest")
        if digest != manifest.digest:
            raise PushError(f"registry stored {repo}:{reference} as {digest}, expected {manifest.digest}")
        return digest

    def push(self, repo: str, tag: str, image: BuiltImage) -> str:
        for blob in image.blobs():
            self.push_blob(repo, blob)
        if image.index is None:
            return self.push_manifest(repo, tag, image.platforms[0].manifest)
        for p in image.platforms:
            self.push_manifest(repo, p.manifest.digest, p.manifest)
        return self.push_manifest(repo, tag, image.index)


class PushError(RuntimeError):
    pass


def push_built(
    base_url: str, repo: str, tag: str, image: BuiltImage, *, auth: Auth | None = None, ca_path: Path | None = None
) -> str:
    pusher = Pusher(base_url, auth, ca_path=ca_path)
    try:
        return pusher.push(repo, tag, image)
    finally:
        pusher.close()


def push_image(
    base_url: str,
    repo: str,
    tag: str,
    *,
    env: Sequence[str] | Mapping[str, Sequence[str]],
    platforms: Sequence[str] = ("linux/amd64",),
    auth: Auth | None = None,
    media: Media = "oci",
    index: bool | None = None,
    config_padding: int = 0,
    ca_path: Path | None = None,
) -> str:
    """Build an image (see :func:`build_image`) and push it as ``repo:tag``; returns the
    digest of its manifest, or of its index / manifest list for several platforms."""
    image = build_image(
        env, platforms=platforms, media=media, index=index, label=f"{repo}:{tag}", config_padding=config_padding
    )
    return push_built(base_url, repo, tag, image, auth=auth, ca_path=ca_path)


# --------------------------------------------------------------------------------------------
# Local sources


def _write_blob(blobs_dir: Path, blob_or_data: Blob | bytes) -> str:
    data = blob_or_data.data if isinstance(blob_or_data, Blob) else blob_or_data
    digest = sha256(data)
    path = blobs_dir / digest.replace(":", "/", 1)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return digest


def write_oci_layout(directory: Path, images: Mapping[str, BuiltImage]) -> Path:
    """Write an OCI image layout (``oci-layout``, ``index.json``, ``blobs/sha256/``) holding
    ``images`` by name. A full reference (``registry.example.com/team/app:1``) is annotated as
    ``ctr images export`` / ``docker save`` (25+) do: ``io.containerd.image.name`` the reference,
    ``org.opencontainers.image.ref.name`` its tag; a bare tag (``v1``, as ``skopeo copy
    oci:DIR:v1`` writes) only as ``org.opencontainers.image.ref.name``."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "oci-layout").write_text(json.dumps({"imageLayoutVersion": "1.0.0"}))
    manifests = []
    for name, image in images.items():
        for p in image.platforms:
            for blob in (p.config, p.layer, p.manifest):
                _write_blob(directory / "blobs", blob)
        if image.index is not None:
            _write_blob(directory / "blobs", image.index)
        repository, _, tag = name.rpartition(":")
        if repository and "/" not in tag:
            annotations = {"io.containerd.image.name": name, "org.opencontainers.image.ref.name": tag}
        else:
            annotations = {"org.opencontainers.image.ref.name": name}
        manifests.append(image.top.descriptor(annotations=annotations))
    index = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": manifests}
    (directory / "index.json").write_text(json.dumps(index, indent=2))
    return directory


def _tar_directory(source: Path, target: Path) -> Path:
    with tarfile.open(target, "w") as tar:
        for path in sorted(source.rglob("*")):
            tar.add(path, arcname=str(path.relative_to(source)), recursive=False)
    return target


def write_oci_archive(path: Path, images: Mapping[str, BuiltImage]) -> Path:
    """An OCI layout as one tar file (``skopeo copy oci-archive:``, ``docker buildx --output
    type=oci``)."""
    staging = path.with_name(path.name + ".d")
    write_oci_layout(staging, images)
    _tar_directory(staging, path)
    shutil.rmtree(staging)
    return path


def write_docker_save_tar(path: Path, images: Mapping[str, BuiltImage], *, platform: str = "linux/amd64") -> Path:
    """A ``docker save`` archive of the classic format (Docker before 25): ``manifest.json``
    listing ``Config`` (``<hex>.json``), ``RepoTags`` and ``Layers`` (``<id>/layer.tar``),
    plus ``repositories``. ``images`` maps ``repo:tag`` to images; ``platform`` picks the
    platform of multi-platform ones (docker save holds one)."""
    entries: dict[str, bytes] = {}
    manifest: list[dict[str, Any]] = []
    repositories: dict[str, dict[str, str]] = {}
    for ref, image in images.items():
        p = image.for_platform(platform)
        config_name = p.config.digest.split(":", 1)[1] + ".json"
        layer_id = hashlib.sha256(p.layer_tar).hexdigest()
        entries[config_name] = p.config.data
        entries[f"{layer_id}/layer.tar"] = p.layer_tar
        entries[f"{layer_id}/VERSION"] = b"1.0"
        entries[f"{layer_id}/json"] = json.dumps({"id": layer_id}).encode()
        manifest.append({"Config": config_name, "RepoTags": [ref], "Layers": [f"{layer_id}/layer.tar"]})
        repo, _, tag = ref.rpartition(":")
        repositories.setdefault(repo, {})[tag] = layer_id
    entries["manifest.json"] = json.dumps(manifest).encode()
    entries["repositories"] = json.dumps(repositories).encode()
    with tarfile.open(path, "w") as tar:
        for name, data in entries.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mtime = 0
            tar.addfile(info, io.BytesIO(data))
    return path


def docker_config(directory: Path, auths: Mapping[str, Auth]) -> Path:
    """Write ``directory/config.json`` as ``docker login`` does: ``auths`` with base64
    ``user:password`` in ``auth``. Returns the file."""
    directory.mkdir(parents=True, exist_ok=True)
    doc = {"auths": {host: {"auth": base64.b64encode(f"{u}:{p}".encode()).decode()} for host, (u, p) in auths.items()}}
    path = directory / "config.json"
    path.write_text(json.dumps(doc, indent=2))
    return path


@contextlib.contextmanager
def running_registry(root: Path, **kwargs: Any) -> Iterator[RegistryServer]:
    server = start_registry(root, **kwargs)
    try:
        yield server
    finally:
        server.stop()
