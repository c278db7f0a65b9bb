"""``gpuguard webhook`` as a real subprocess on loopback, with TLS from a test CA."""

from __future__ import annotations

import os
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from tests.webhook.certs import CertAuthority

GPUGUARD = str(Path(sys.executable).with_name("gpuguard"))
START_DEADLINE = 30.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Webhook:
    """A running server: its URL, CA, files, and a client that verifies against the CA."""

    proc: subprocess.Popen[bytes]
    url: str
    ca: CertAuthority
    cert: Path
    key: Path
    config: Path
    log: Path
    clients: list[httpx.Client] = field(default_factory=list)

    def ssl_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.ca.ca_path))

    def client(self, **kw: object) -> httpx.Client:
        client = httpx.Client(base_url=self.url, verify=self.ssl_context(), timeout=15, **kw)  # type: ignore[arg-type]
        self.clients.append(client)
        return client

    def stderr(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_for(self, check: Callable[[], bool], what: str, deadline: float = 20.0) -> None:
        """Poll ``check`` until it holds (no sleep as synchronisation: the deadline only bounds the wait)."""
        end = time.monotonic() + deadline
        while time.monotonic() < end:
            if check():
                return
            assert self.proc.poll() is None, f"server exited: {self.stderr()}"
            time.sleep(0.05)
        raise AssertionError(f"timed out waiting for {what}; server log:\n{self.stderr()}")


def start(tmp_path: Path, config_text: str = "", extra: tuple[str, ...] = ()) -> Webhook:
    ca = CertAuthority(tmp_path)
    cert, key = tmp_path / "tls.crt", tmp_path / "tls.key"
    ca.issue(cert, key)
    config = tmp_path / "config.yaml"
    config.write_text(config_text or "{}\n")
    port = free_port()
    log = tmp_path / "server.log"
    argv = [GPUGUARD, "webhook", "--tls-cert", str(cert), "--tls-key", str(key), "--host", "127.0.0.1",
            "--port", str(port), "--config", str(config), "--reload-interval", "0.1", *extra]  # fmt: skip
    env = dict(os.environ)
    with log.open("wb") as out:
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, env=env)
    hook = Webhook(proc, f"https://localhost:{port}", ca, cert, key, config, log)
    client = hook.client()

    def up() -> bool:
        try:
            return client.get("/readyz").status_code == 200
        except httpx.HTTPError:
            return False

    hook.wait_for(up, "the server to come up", START_DEADLINE)
    return hook


def stop(hook: Webhook) -> None:
    for client in hook.clients:
        client.close()
    hook.proc.terminate()
    try:
        hook.proc.wait(10)
    except subprocess.TimeoutExpired:
        hook.proc.kill()
        hook.proc.wait(5)


@pytest.fixture
def webhook(tmp_path: Path) -> Iterator[Webhook]:
    hook = start(tmp_path)
    yield hook
    stop(hook)


@pytest.fixture(scope="module")
def shared_webhook(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Webhook]:
    hook = start(tmp_path_factory.mktemp("webhook"))
    yield hook
    stop(hook)
