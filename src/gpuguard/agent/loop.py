"""Continuous mode: scan, publish, wait on an Event, repeat until SIGTERM/SIGINT sets it.

The loop outlives everything a node does to it: a source that cannot be read
makes that scan degraded, a publisher that fails retries at the next scan, and
even an unexpected error in one scan is logged and the next scan runs.  One
line per scan goes to the log, plus a line whenever a source goes down or
comes back.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from gpuguard.agent.metrics import AgentMetrics
from gpuguard.agent.scan import Scan, Scanner
from gpuguard.publish.events import EventPublisher


@dataclass(slots=True)
class Loop:
    """What the loop drives; ``scans`` counts completed scans (tests and the log read it)."""

    scanner: Scanner
    interval: float
    stop: threading.Event
    log: Callable[[str], None]
    metrics: AgentMetrics | None = None
    events: EventPublisher | None = None
    policy_reports: Callable[[Scan], str | None] | None = None  # returns an error line, or None
    on_scan: Callable[[Scan], None] | None = None
    scans: int = 0
    _down: dict[str, str] | None = None

    def run(self) -> None:
        """Until ``stop`` is set; each wait starts after a scan ends, so slow scans never pile up."""
        while not self.stop.is_set():
            self.once()
            self.stop.wait(self.interval)

    def once(self) -> Scan | None:
        try:
            scan = self.scanner.scan()
        except Exception as exc:  # a bug must not take the node's only witness down: log, try again next time
            self.log(f"scan failed: {type(exc).__name__}: {exc}")
            return None
        self.scans += 1
        self._sources(scan)
        if self.metrics is not None:
            self.metrics.update(scan, time.time())
        self._publish(scan)
        if self.on_scan is not None:
            self.on_scan(scan)
        r = scan.report
        held = sum(1 for v in scan.verdicts if v.held)
        self.log(f"scan {self.scans}: {len(scan.observation.containers)} containers, {held} holding GPUs, "
                 f"{len(r.findings)} findings, {len(r.exempt)} exempt"
                 + (f", degraded: {', '.join(sorted(scan.observation.degraded))}" if scan.degraded else "")
                 + f" ({scan.wall_seconds * 1000:.0f} ms, {scan.cpu_seconds * 1000:.0f} ms CPU)")
        return scan

    def _sources(self, scan: Scan) -> None:
        now = dict(scan.observation.degraded)
        before = self._down or {}
        for source in sorted(now.keys() - before.keys()):
            self.log(f"source {source} down: {now[source]}")
        for source in sorted(before.keys() - now.keys()):
            self.log(f"source {source} back")
        self._down = now

    def _publish(self, scan: Scan) -> None:
        if self.events is not None:
            uids = {(c.namespace, c.pod): c.pod_uid for c in scan.observation.containers
                    if c.namespace and c.pod and c.pod_uid}  # fmt: skip
            done = self.events.publish(scan.report.findings, uids)
            if done.error is not None:
                self.log(f"events: {done.failed} not sent: {done.error}")
        if self.policy_reports is not None:
            error = self.policy_reports(scan)
            if error is not None:
                self.log(f"policy reports: {error}")
