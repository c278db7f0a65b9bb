"""Prometheus metrics of the webhook, in a registry of its own (no process-global state in tests)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

CONTENT_TYPE = CONTENT_TYPE_LATEST
# Admission answers should take milliseconds; the buckets resolve that and the 10 s timeout.
_BUCKETS = (0.0005, 0.001, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class Metrics:
    """Requests, decisions, latency, reloads and image-resolution cache hits."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter("gpuguard_webhook_requests", "HTTP requests by endpoint and status code",
                                ("endpoint", "code"), registry=r)  # fmt: skip
        self.decisions = Counter("gpuguard_webhook_decisions", "Findings acted on, by rule and mode",
                                 ("rule", "mode", "dry_run"), registry=r)  # fmt: skip
        self.verdicts = Counter("gpuguard_webhook_verdicts", "Reviews by endpoint and outcome",
                                ("endpoint", "outcome", "dry_run"), registry=r)  # fmt: skip
        self.latency = Histogram("gpuguard_webhook_request_duration_seconds", "Time to answer, by endpoint",
                                 ("endpoint",), buckets=_BUCKETS, registry=r)  # fmt: skip
        self.image_cache = Counter("gpuguard_webhook_image_cache", "Image lookups: hit (memory), miss, timeout",
                                   ("result",), registry=r)  # fmt: skip
        self.reloads = Counter("gpuguard_webhook_reloads", "Reloads of the config and the TLS files, by result",
                               ("what", "result"), registry=r)  # fmt: skip
        self.timeouts = Counter("gpuguard_webhook_timeouts", "Reviews that ran out of time", ("endpoint",),
                                registry=r)  # fmt: skip
        self.config_generation = Gauge("gpuguard_webhook_config_generation", "Config loads served so far",
                                       registry=r)  # fmt: skip
        for result in ("hit", "miss", "timeout"):
            self.image_cache.labels(result)  # exported as 0 even while image inspection is off

    def render(self) -> bytes:
        return generate_latest(self.registry)
