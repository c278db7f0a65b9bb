"""The history of audit runs: SQLite by default, PostgreSQL when a URL is given; what changed between runs."""
