"""Recording an audit run: the one call ``gpuguard audit --history`` makes."""

from __future__ import annotations

import os
from datetime import UTC, datetime

from gpuguard.history.store import open_store, utc_iso
from gpuguard.model.errors import InputError
from gpuguard.model.history import RunSummary, StoredFinding
from gpuguard.model.report import Report

ENV_KEEP = "GPUGUARD_HISTORY_KEEP"
DEFAULT_KEEP = 100  # runs kept per cluster: a daily audit keeps about three months


def default_keep() -> int:
    text = os.environ.get(ENV_KEEP)
    if not text:
        return DEFAULT_KEEP
    try:
        keep = int(text)
    except ValueError:
        raise InputError(ENV_KEEP, f"expected a whole number of runs, got {text!r}") from None
    if keep < 1:
        raise InputError(ENV_KEEP, f"must be at least 1, got {keep}")
    return keep


def summarise(report: Report, *, cluster: str, started: datetime | None = None, run_id: int = 0) -> RunSummary:
    """The run summary of ``report`` (``run_id`` 0 until stored)."""
    return RunSummary(id=run_id, started=utc_iso(started or datetime.now(UTC)), cluster=cluster,
                      profile_source=report.profile.source, counts=report.by_severity(), objects=report.objects,
                      errors=len(report.errors))


def record_run(report: Report, *, url: str | None, cluster: str, started: datetime | None = None,
               keep: int | None = None) -> int:
    """Store ``report`` as one run of ``cluster``; returns the run id.

    ``url``: a PostgreSQL URL, a sqlite URL or file path, or None for
    ``$GPUGUARD_HISTORY_URL`` or the default SQLite file. Only the last
    ``keep`` runs of the cluster are kept (default ``$GPUGUARD_HISTORY_KEEP`` or 100).
    Raises ``InputError`` (password masked) when the store is unusable.
    """
    if not cluster.strip():
        raise InputError("cluster", "a run needs a cluster name")
    run = summarise(report, cluster=cluster, started=started)
    with open_store(url) as store:
        return store.record(run, [StoredFinding.of(f) for f in report.findings],
                            keep=keep if keep is not None else default_keep())

