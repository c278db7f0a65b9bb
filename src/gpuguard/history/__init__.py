"""The history of audit runs: SQLite by default, PostgreSQL when a URL is given; what changed between runs."""

from gpuguard.history.diff import diff_findings, diff_runs
from gpuguard.history.record import DEFAULT_KEEP, record_run, summarise
from gpuguard.history.store import HistoryStore, open_store
from gpuguard.history.urls import ENV_URL, mask_url

__all__ = ["DEFAULT_KEEP", "ENV_URL", "HistoryStore", "diff_findings", "diff_runs", "mask_url", "open_store",
           "record_run", "summarise"]
