"""Run the webhook: load config and TLS, watch both files, serve with uvicorn.

A watcher thread polls the certificate, key and config files (mtime, size,
inode: a Kubernetes Secret or ConfigMap volume swaps a symlink). A new
certificate is served to new connections at once; a new config is validated
first and a bad one is logged and ignored, so the last good settings keep
serving.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import importlib.util
import logging
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import uvicorn
import yaml
from prometheus_client import disable_created_metrics

from gpuguard.admission.config import load_admission_config
from gpuguard.admission.policy import Policy
from gpuguard.admission.review import Reviewer
from gpuguard.model.admission import AdmissionConfig
from gpuguard.model.errors import InputError
from gpuguard.webhook.app import State, WebhookApp
from gpuguard.webhook.images import ImageLookup, check_files, settings_of
from gpuguard.webhook.metrics import Metrics
from gpuguard.webhook.tls import CertReloader, Signature, file_signature

log = logging.getLogger("gpuguard.webhook")

INSECURE_WARNING = (
    "WARNING: --insecure-http: serving admission reviews over PLAIN HTTP. The Kubernetes API server only "
    "calls webhooks over HTTPS; this mode exists for local testing only. NEVER use it in a cluster."
)


@dataclass(frozen=True, slots=True)
class Options:
    tls_cert: str | None
    tls_key: str | None
    host: str = "0.0.0.0"  # a webhook listens for the API server
    port: int = 8443
    config: str | None = None
    insecure_http: bool = False
    poll_seconds: float = 1.0


def read_config(path: str | None) -> AdmissionConfig:
    """The config file, parsed and checked; raises InputError naming the field."""
    if path is None:
        return AdmissionConfig()
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise InputError(path, f"cannot read: {exc.strerror or exc}") from None
    try:
        doc = yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except yaml.YAMLError as exc:
        raise InputError(path, f"not valid YAML: {str(exc).splitlines()[0]}") from None
    try:
        config = load_admission_config(doc)
        check_files(config)
    except InputError as exc:
        raise InputError(f"{path}: {exc.where}", exc.message) from None
    return config


def image_lookup(config: AdmissionConfig, metrics: Metrics) -> ImageLookup | None:
    """Image inspection as configured (None when off: then the webhook needs no network)."""
    if not config.resolve_images:
        return None
    lookup = ImageLookup(config, metrics)
    log.warning("image inspection on: lookups within %gs (timeoutSeconds %g, failurePolicy %s), platform %s",
                config.lookup_timeout(), config.timeout_seconds, config.failure_policy,
                config.image_platform)  # fmt: skip
    return lookup


class Watcher(threading.Thread):
    """Polls the TLS and config files and applies changes."""

    def __init__(self, options: Options, state: State, tls: CertReloader | None, metrics: Metrics) -> None:
        super().__init__(name="gpuguard-watch", daemon=True)
        self.options = options
        self.state = state
        self.tls = tls
        self.metrics = metrics
        self.stop = threading.Event()
        self.config_signature: Signature = file_signature(options.config) if options.config else ()
        self.rejected: Signature = ()

    def run(self) -> None:
        while not self.stop.wait(self.options.poll_seconds):
            try:
                self.check()
            except Exception:  # the watcher must outlive any surprise
                log.exception("file watcher")

    def check(self) -> None:
        if self.tls is not None and self.tls.poll():
            self.metrics.reloads.labels("tls", "ok").inc()
        path = self.options.config
        if path is None:
            return
        signature = file_signature(path)
        if signature in (self.config_signature, self.rejected):
            return
        try:
            config = read_config(path)
        except InputError as exc:
            self.rejected = signature
            self.metrics.reloads.labels("config", "error").inc()
            log.error("config not reloaded, keeping the previous one: %s", exc)
            return
        old = self.state.images
        if old is None or old.settings != settings_of(config):
            self.state.images = image_lookup(config, self.metrics)  # new settings: a fresh in-memory cache
            if old is not None:
                old.close()
        self.state.reviewer = Reviewer(Policy(config, self.state.reviewer.policy.node))
        self.config_signature = signature
        self.metrics.reloads.labels("config", "ok").inc()
        self.metrics.config_generation.inc()
        log.warning("config reloaded from %s", path)


def serve(options: Options, echo: Callable[[str], None] | None = None) -> None:
    """Serve until interrupted. Raises InputError for a bad config or unreadable TLS files on start."""
    _logging()
    disable_created_metrics()  # type: ignore[no-untyped-call]  # the *_created series only double /metrics
    say = echo or (lambda text: print(text, file=sys.stderr, flush=True))
    config = read_config(options.config)
    metrics = Metrics()
    metrics.config_generation.set(1)
    state = State(Reviewer(Policy(config)), images=image_lookup(config, metrics))
    tls = None
    if not options.insecure_http:
        if not options.tls_cert or not options.tls_key:
            raise InputError("--tls-cert/--tls-key", "required (or --insecure-http for local testing)")
        try:
            tls = CertReloader(options.tls_cert, options.tls_key)
        except (OSError, ValueError) as exc:
            raise InputError(f"{options.tls_cert}, {options.tls_key}", f"cannot load the TLS pair: {exc}") from None
    else:
        say(INSECURE_WARNING)
    app = WebhookApp(state, metrics)
    watcher = Watcher(options, state, tls, metrics)
    watcher.start()
    server = uvicorn.Server(uvicorn_config(app, options, tls))
    scheme = "http" if tls is None else "https"
    say(f"gpuguard webhook: serving {scheme}://{options.host}:{options.port} (/validate /mutate /healthz /readyz "
        f"/metrics); config {options.config or '(defaults)'}")  # fmt: skip
    # Everything loaded so far lives as long as the process: keep it out of the collector's scans, and
    # collect the young generation less often (each review allocates a few thousand short-lived objects).
    gc.collect()
    gc.freeze()
    gc.set_threshold(20_000, 50, 100)
    try:
        server.run()
    finally:
        watcher.stop.set()
        app.pool.shutdown(wait=False, cancel_futures=True)
        if state.images is not None:
            state.images.close()


def uvicorn_config(app: Any, options: Options, tls: CertReloader | None) -> uvicorn.Config:
    """The uvicorn settings the webhook runs under (the benchmark serves its baseline app with them too)."""
    loop = "uvloop" if importlib.util.find_spec("uvloop") else "asyncio"
    http = "httptools" if importlib.util.find_spec("httptools") else "h11"
    config = uvicorn.Config(
        app, host=options.host, port=options.port, loop=loop, http=http, lifespan="off", access_log=False,
        log_level="warning", server_header=False, date_header=False, timeout_keep_alive=65,
        timeout_graceful_shutdown=5, backlog=2048, log_config=None,
    )  # fmt: skip
    config.load()
    if tls is not None:
        config.ssl = tls.server_context()
    return config


def _logging() -> None:
    root = logging.getLogger("gpuguard")
    if not root.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        root.addHandler(handler)
        root.setLevel(logging.INFO)


def run_forever(options: Options) -> None:  # pragma: no cover - thin wrapper for asyncio-less callers
    with contextlib.suppress(KeyboardInterrupt, asyncio.CancelledError):
        serve(options)
