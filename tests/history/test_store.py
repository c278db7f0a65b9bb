"""The store on both backends: what a run keeps, per-cluster order, retention, the schema, concurrent writers."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta, timezone

import pytest

from gpuguard.history import open_store, record_run
from gpuguard.model.errors import InputError
from gpuguard.model.finding import Severity
from gpuguard.model.history import StoredFinding
from tests.history.sample import PROFILE, pod, policy, report


def test_a_run_is_stored_as_it_was_reported(store_url: str) -> None:
    rep = report(pod("jupyter-bob", severity=Severity.CRITICAL), pod("batch-report-0", container="report"),
                 policy("GG202"), objects=210, errors=2)
    run_id = record_run(rep, url=store_url, cluster="gpu-prod", started=datetime(2026, 11, 29, 6, 0, 5, tzinfo=UTC))
    with open_store(store_url) as store:
        run = store.run(run_id)
        assert (run.id, run.started, run.cluster, run.profile_source) == (
            run_id, "2026-11-29T06:00:05Z", "gpu-prod", "live cluster gpu-prod: 3 GPU nodes")
        assert run.counts == {"critical": 1, "high": 1, "medium": 1, "low": 0, "info": 0}
        assert (run.total, run.objects, run.errors) == (3, 210, 2)
        assert store.findings(run_id) == [
            StoredFinding("GG101|Pod/ml-notebooks/jupyter-bob|notebook", "GG101", Severity.CRITICAL, "Pod",
                          "ml-notebooks", "jupyter-bob", "notebook", "gpu-h100-1",
                          "jupyter-bob sees every GPU [node gpu-h100-1]"),
            StoredFinding("GG101|Pod/ml-notebooks/batch-report-0|report", "GG101", Severity.HIGH, "Pod",
                          "ml-notebooks", "batch-report-0", "report", "gpu-h100-1",
                          "batch-report-0 sees every GPU [node gpu-h100-1]"),
            StoredFinding("GG202|ClusterPolicy//cluster-policy|", "GG202", Severity.MEDIUM, "ClusterPolicy", None,
                          "cluster-policy", None, None, "setting"),
        ]


@pytest.mark.parametrize(("started", "stored"), [
    (datetime(2026, 11, 29, 7, 30, tzinfo=timezone(timedelta(hours=1))), "2026-11-29T06:30:00Z"),
    (datetime(2026, 11, 29, 6, 30), "2026-11-29T06:30:00Z"),  # naive: taken as UTC
    (datetime(2026, 12, 31, 23, 59, 59, 999999, tzinfo=UTC), "2026-12-31T23:59:59Z"),
])
def test_started_is_stored_as_utc(store_url: str, started: datetime, stored: str) -> None:
    run_id = record_run(report(), url=store_url, cluster="c", started=started)
    with open_store(store_url) as store:
        assert store.run(run_id).started == stored


def test_runs_are_listed_per_cluster_oldest_first(store_url: str) -> None:
    ids = [record_run(report(), url=store_url, cluster=c) for c in ("prod", "staging", "prod", "prod")]
    with open_store(store_url) as store:
        assert [r.id for r in store.runs("prod")] == [ids[0], ids[2], ids[3]]
        assert [r.id for r in store.runs("prod", last=2)] == [ids[2], ids[3]]
        assert [r.id for r in store.runs()] == ids
        assert store.runs("nowhere") == []
        previous = store.previous(store.run(ids[2]))
        assert previous is not None and previous.id == ids[0]  # not the staging run in between
        assert store.previous(store.run(ids[0])) is None


def test_retention_keeps_the_last_runs_of_that_cluster_only(store_url: str) -> None:
    other = record_run(report(pod("x")), url=store_url, cluster="staging", keep=1)
    ids = [record_run(report(pod(f"p{i}")), url=store_url, cluster="prod", keep=3) for i in range(5)]
    with open_store(store_url) as store:
        assert [r.id for r in store.runs("prod")] == ids[2:]
        assert [r.id for r in store.runs("staging")] == [other]
        assert store.findings(ids[0]) == [] and store.findings(ids[1]) == []
        assert [f.name for f in store.findings(ids[2])] == ["p2"]
    later = record_run(report(), url=store_url, cluster="prod", keep=3)
    assert later > ids[-1]  # ids of pruned runs are never handed out again


def test_retention_from_the_environment(store_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GPUGUARD_HISTORY_KEEP", "2")
    ids = [record_run(report(), url=store_url, cluster="prod") for _ in range(4)]
    with open_store(store_url) as store:
        assert [r.id for r in store.runs("prod")] == ids[2:]
    monkeypatch.setenv("GPUGUARD_HISTORY_KEEP", "two")
    with pytest.raises(InputError, match="GPUGUARD_HISTORY_KEEP: expected a whole number of runs, got 'two'"):
        record_run(report(), url=store_url, cluster="prod")


@pytest.mark.parametrize("keep", [0, -3])
def test_keep_below_one_is_refused(store_url: str, keep: int) -> None:
    with pytest.raises(InputError, match="keep: must be at least 1"):
        record_run(report(), url=store_url, cluster="prod", keep=keep)


def test_blank_cluster_is_refused(store_url: str) -> None:
    with pytest.raises(InputError, match="cluster: a run needs a cluster name"):
        record_run(report(), url=store_url, cluster="  ")


def test_unknown_run_is_one_input_error(store_url: str) -> None:
    with open_store(store_url) as store, pytest.raises(InputError, match=r"^run 42: no such run in "):
        store.run(42)


def test_schema_is_versioned_and_migrated_once(store_url: str) -> None:
    for _ in range(3):
        with open_store(store_url) as store:
            assert store.schema_version() == 1
    with open_store(store_url) as store, store.dialect.transaction() as cur:
        cur.execute("SELECT version FROM gpuguard_migrations")
        assert [row[0] for row in cur.fetchall()] == [1]


def test_a_newer_schema_is_refused(store_url: str) -> None:
    with open_store(store_url) as store, store.dialect.transaction() as cur:
        cur.execute("INSERT INTO gpuguard_migrations (version, applied) VALUES (99, 'later')")
    with pytest.raises(InputError, match="history schema version 99 is newer than this gpuguard understands"):
        open_store(store_url)


def test_concurrent_writers_each_get_a_whole_run(store_url: str) -> None:
    """Two audits recording at once (threads, each with its own connection): no lost or mixed runs."""
    writers, runs_each, findings_each = 4, 5, 40
    start = threading.Barrier(writers)
    ids: dict[int, list[int]] = {}
    failures: list[BaseException] = []

    def write(w: int) -> None:
        try:
            start.wait(timeout=30)
            rep = report(*(pod(f"w{w}-p{i}") for i in range(findings_each)))
            ids[w] = [record_run(rep, url=store_url, cluster="prod", keep=1000) for _ in range(runs_each)]
        except BaseException as exc:  # reported below, in the test's thread
            failures.append(exc)

    threads = [threading.Thread(target=write, args=(w,)) for w in range(writers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert failures == [] and not any(t.is_alive() for t in threads)
    every = sorted(i for run_ids in ids.values() for i in run_ids)
    assert len(set(every)) == writers * runs_each
    with open_store(store_url) as store:
        assert [r.id for r in store.runs("prod")] == every
        for w, run_ids in ids.items():
            for run_id in run_ids:
                names = [f.name for f in store.findings(run_id)]
                assert names == [f"w{w}-p{i}" for i in range(findings_each)]


def test_concurrent_writers_with_retention_keep_exactly_the_last(store_url: str) -> None:
    writers = 3
    start = threading.Barrier(writers)
    failures: list[BaseException] = []

    def write() -> None:
        try:
            start.wait(timeout=30)
            for _ in range(4):
                record_run(report(pod("p")), url=store_url, cluster="prod", keep=2)
        except BaseException as exc:
            failures.append(exc)

    threads = [threading.Thread(target=write) for _ in range(writers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert failures == []
    with open_store(store_url) as store:
        runs = store.runs("prod")
        assert len(runs) == 2
        assert all(len(store.findings(r.id)) == 1 for r in runs)


def test_profile_source_round_trips_unicode(store_url: str) -> None:
    rep = report(pod("jüpyter-ß", message="sees every GPU — ✓"))
    rep = type(rep)(profile=type(PROFILE)(source="ClusterPolicy «prod»", operator_version=None,
                                          toolkit_version="1.17.8", device_plugin_version=None),
                    findings=rep.findings)
    run_id = record_run(rep, url=store_url, cluster="prod")
    with open_store(store_url) as store:
        assert store.run(run_id).profile_source == "ClusterPolicy «prod»"
        assert [(f.name, f.message) for f in store.findings(run_id)] == [("jüpyter-ß", "sees every GPU — ✓")]
