"""The one SQL schema both backends share, as numbered migrations.

Each migration runs once, in a transaction, and is recorded in
``gpuguard_migrations``; a store opened by an older gpuguard than the schema
refuses to write rather than guess. ``{id}`` is the one word the dialects spell
differently (an auto-numbered primary key).
"""

from __future__ import annotations

MIGRATIONS_TABLE = """CREATE TABLE IF NOT EXISTS gpuguard_migrations (
    version INTEGER PRIMARY KEY,
    applied TEXT NOT NULL
)"""

MIGRATIONS: tuple[tuple[int, tuple[str, ...]], ...] = (
    (1, (
        """CREATE TABLE runs (
            id {id},
            cluster TEXT NOT NULL,
            started TEXT NOT NULL,
            profile_source TEXT NOT NULL,
            objects INTEGER NOT NULL,
            errors INTEGER NOT NULL,
            critical INTEGER NOT NULL,
            high INTEGER NOT NULL,
            medium INTEGER NOT NULL,
            low INTEGER NOT NULL,
            info INTEGER NOT NULL
        )""",
        "CREATE INDEX runs_by_cluster ON runs (cluster, id)",
        """CREATE TABLE findings (
            run_id INTEGER NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
            seq INTEGER NOT NULL,
            fingerprint TEXT NOT NULL,
            rule_id TEXT NOT NULL,
            severity INTEGER NOT NULL,
            kind TEXT,
            namespace TEXT,
            name TEXT,
            container TEXT,
            node TEXT,
            message TEXT NOT NULL,
            PRIMARY KEY (run_id, seq)
        )""",
    )),
)  # fmt: skip

SCHEMA_VERSION = MIGRATIONS[-1][0]
