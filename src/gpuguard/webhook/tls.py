"""TLS with certificate rotation and no restart.

cert-manager (or a Secret update) rewrites the certificate and key files in
place; the server must serve the new certificate to new connections without
a restart. The listening socket keeps one base ``SSLContext`` whose
``sni_callback`` (called for every ClientHello, with or without SNI) swaps in
the newest context; a reload builds a complete new context first, so a
half-written pair (new certificate, old key) fails to load and the old one
keeps serving until the next poll finds both files consistent.
"""

from __future__ import annotations

import logging
import os
import ssl
from dataclasses import dataclass

log = logging.getLogger("gpuguard.webhook")

Signature = tuple[tuple[int, int, int], ...]


def file_signature(*paths: str) -> Signature:
    """What changes when a file is rewritten or its symlink is swapped (Kubernetes Secret volumes)."""
    out = []
    for path in paths:
        try:
            st = os.stat(path)
        except OSError:
            out.append((0, 0, 0))
            continue
        out.append((st.st_mtime_ns, st.st_size, st.st_ino))
    return tuple(out)


def _context(cert: str, key: str) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(cert, key)
    ctx.set_alpn_protocols(["http/1.1"])
    return ctx


@dataclass(slots=True)
class CertReloader:
    """The certificate and key files, loaded again when they change."""

    cert: str
    key: str
    current: ssl.SSLContext | None = None
    signature: Signature = ()
    reloads: int = 0

    def __post_init__(self) -> None:
        self.signature = file_signature(self.cert, self.key)
        self.current = _context(self.cert, self.key)  # a bad pair on start is an error, not a retry

    def server_context(self) -> ssl.SSLContext:
        """The context the listening socket uses; it hands each handshake the newest certificate."""
        base = _context(self.cert, self.key)
        base.sni_callback = self._pick
        return base

    def _pick(self, sslobj: ssl.SSLObject, _name: str | None, _ctx: ssl.SSLContext) -> None:
        current = self.current
        if current is not None:
            sslobj.context = current

    def poll(self) -> bool:
        """Reload when the files changed and load cleanly; True when a new certificate is served."""
        signature = file_signature(self.cert, self.key)
        if signature == self.signature:
            return False
        try:
            ctx = _context(self.cert, self.key)
        except (OSError, ssl.SSLError, ValueError) as exc:
            log.warning("TLS certificate/key changed but does not load yet (%s); still serving the old one", exc)
            return False
        self.current = ctx
        self.signature = signature
        self.reloads += 1
        log.warning("TLS certificate reloaded from %s", self.cert)
        return True
