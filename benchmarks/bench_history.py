"""How fast are the history and the HTML page? Run: ``.venv/bin/python benchmarks/bench_history.py``.

Builds a 10,000-finding report (200 namespaces over 40 GPU nodes, every
severity), then measures: (a) ``formats.html.render_page`` with a 30-run trend
and a diff (target: well under a second); (b) ``record_run`` into a fresh SQLite
file; (c) with ``--postgres``, the same into a throwaway PostgreSQL 15 server
(tests/history/postgres.py); (d) reading the run back and diffing two runs.

Not a test: it prints figures and asserts nothing.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable
from contextlib import ExitStack
from functools import partial
from pathlib import Path
from typing import TypeVar

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from gpuguard.formats.html import render_page  # noqa: E402
from gpuguard.history import diff_runs, open_store, record_run  # noqa: E402
from gpuguard.model.finding import Finding, Location, Resource, Severity  # noqa: E402
from gpuguard.model.history import RunSummary, StoredFinding  # noqa: E402
from gpuguard.model.report import ProfileSummary, Report  # noqa: E402

T = TypeVar("T")


def big_report(n: int, shift: int = 0) -> Report:
    sevs = list(Severity)
    findings = tuple(
        Finding(rule_id=f"GG10{i % 5}", severity=sevs[i % 5], message=f"pod-{i + shift} can reach every GPU <all>",
                remediation="request nvidia.com/gpu", resource=Resource("v1", "Pod", f"team-{i % 200}",
                                                                         f"pod-{i + shift}"),
                container="main", location=Location("cluster:bench"), node=f"gpu-{i % 40}" if i % 17 else None)
        for i in range(n))
    return Report(profile=ProfileSummary("bench", None, "1.17.8", None), findings=findings, objects=n)


def timed(label: str, work: Callable[[], T]) -> T:
    start = time.perf_counter()
    result = work()
    print(f"{label:<52} {1000 * (time.perf_counter() - start):8.1f} ms")
    return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--findings", type=int, default=10_000)
    parser.add_argument("--postgres", action="store_true", help="also time a real PostgreSQL 15 server")
    args = parser.parse_args()
    report = big_report(args.findings)
    stored = [StoredFinding.of(f) for f in report.findings]
    trend = [RunSummary(i, f"2026-11-{1 + i % 28:02d}T06:00:00Z", "bench", "bench", report.by_severity())
             for i in range(1, 31)]
    page = timed(f"render_page, {len(stored)} findings, 30-run trend", lambda: render_page(
        title="bench", run=trend[-1], findings=stored, trend=trend))
    print(f"{'page size':<52} {len(str(page)) / 1e6:8.2f} MB")
    with ExitStack() as stack, tempfile.TemporaryDirectory() as tmp:
        urls = {"sqlite": str(Path(tmp) / "history.db")}
        if args.postgres:
            from tests.history.postgres import running_postgres  # noqa: PLC0415

            urls["postgresql"] = stack.enter_context(running_postgres()).create_database()
        second = big_report(args.findings, shift=args.findings // 10)  # 10 % fixed, 10 % new
        for name, url in urls.items():
            timed(f"{name}: record_run, {len(stored)} findings", partial(record_run, report, url=url, cluster="bench"))
            run_id = timed(f"{name}: record_run, second run", partial(record_run, second, url=url, cluster="bench"))
            with open_store(url) as store:
                timed(f"{name}: findings of one run", partial(store.findings, run_id))
                diff = timed(f"{name}: diff of the two runs", partial(diff_runs, store, None, run_id))
                print(f"{'':<52} {len(diff.new)} new, {len(diff.fixed)} fixed")


if __name__ == "__main__":
    main()
