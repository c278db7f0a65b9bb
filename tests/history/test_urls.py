"""Store URLs: the forms accepted, one clear error for the rest, and no password in any message."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gpuguard.history import mask_url, open_store, record_run
from gpuguard.history.urls import resolve
from gpuguard.model.errors import InputError
from tests.history.postgres import PostgresServer
from tests.history.sample import report


@pytest.mark.parametrize(("url", "masked"), [
    ("postgresql://gg:hunter2@db.internal:5432/gpuguard", "postgresql://gg:***@db.internal:5432/gpuguard"),
    ("postgres://gg:hunter2@db/gpuguard?sslmode=require", "postgres://gg:***@db/gpuguard?sslmode=require"),
    ("postgresql://gg:p%40ss%2Fw@db/gpuguard", "postgresql://gg:***@db/gpuguard"),
    ("postgresql://gg:pa/ss@wo?rd@db:5432/gpuguard", "postgresql://gg:***@db:5432/gpuguard"),  # unescaped, as typed
    ("postgresql://db/gpuguard?user=gg&password=hunter2&sslmode=verify-full",
     "postgresql://db/gpuguard?user=gg&password=***&sslmode=verify-full"),
    ("postgresql://gg@db/gpuguard", "postgresql://gg@db/gpuguard"),
    ("postgresql://gg:@db/gpuguard", "postgresql://gg:***@db/gpuguard"),
    ("sqlite:///var/lib/gpuguard/history.db", "sqlite:///var/lib/gpuguard/history.db"),
])
def test_mask_url(url: str, masked: str) -> None:
    assert mask_url(url) == masked


@given(st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="@/?#"), min_size=1))
def test_mask_url_hides_any_password(password: str) -> None:
    assert mask_url(f"postgresql://gpuguard:{password}@db.internal:5432/history") == \
        "postgresql://gpuguard:***@db.internal:5432/history"


@given(st.text(max_size=60))
def test_resolve_accepts_or_refuses_with_one_input_error(text: str) -> None:
    try:
        target = resolve(text)
    except InputError:
        return
    assert target.backend in ("sqlite", "postgresql")


@pytest.mark.parametrize(("url", "backend", "where"), [
    ("sqlite:///var/lib/gpuguard/history.db", "sqlite", "/var/lib/gpuguard/history.db"),
    ("sqlite:////var/lib/gpuguard/history/gpuguard.db", "sqlite", "/var/lib/gpuguard/history/gpuguard.db"),
    ("sqlite:///tmp/my%20history.db", "sqlite", "/tmp/my history.db"),
    ("sqlite:history.db", "sqlite", "history.db"),
    ("~/history.db", "sqlite", str(Path.home() / "history.db")),
    ("/srv/gpuguard/history.db", "sqlite", "/srv/gpuguard/history.db"),
    ("history.db", "sqlite", "history.db"),
    ("postgresql://gg:pw@db/gpuguard", "postgresql", "postgresql://gg:***@db/gpuguard"),
    ("POSTGRES://gg@db/gpuguard", "postgresql", "POSTGRES://gg@db/gpuguard"),
])
def test_url_forms(url: str, backend: str, where: str) -> None:
    target = resolve(url)
    assert (target.backend, target.label) == (backend, where)


def test_default_is_the_state_directory(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("GPUGUARD_HISTORY_URL", raising=False)
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path))
    assert resolve(None).path == tmp_path / "gpuguard" / "history.db"
    monkeypatch.setenv("GPUGUARD_HISTORY_URL", str(tmp_path / "elsewhere.db"))
    assert resolve(None).path == tmp_path / "elsewhere.db"
    assert resolve(str(tmp_path / "explicit.db")).path == tmp_path / "explicit.db"  # an explicit URL wins


@pytest.mark.parametrize(("url", "message"), [
    ("mysql://gg:hunter2@db/gpuguard", "mysql://gg:***@db/gpuguard: unsupported database URL scheme 'mysql'"),
    ("postgresql://gg:hunter2@db:notaport/gpuguard", "postgresql://gg:***@db:notaport/gpuguard: not a valid "
     "PostgreSQL URL"),
    ("sqlite://", "sqlite://: a sqlite URL needs a file path"),
    ("   ", "history: empty database URL"),
    ("postgresql://gg:hunter2@127.0.0.1:1/gpuguard", "postgresql://gg:***@127.0.0.1:1/gpuguard: cannot connect: "),
])
def test_bad_urls_are_one_input_error_without_the_password(url: str, message: str) -> None:
    with pytest.raises(InputError) as caught:
        record_run(report(), url=url, cluster="prod")
    assert str(caught.value).startswith(message)
    assert "hunter2" not in str(caught.value) and "\n" not in str(caught.value)


def test_sqlite_file_that_cannot_be_created(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(InputError, match=f"^{blocker}/history.db: cannot open the history database"):
        open_store(str(blocker / "history.db"))


def test_not_a_database_file(tmp_path: Path) -> None:
    bogus = tmp_path / "history.db"
    bogus.write_bytes(b"this is not SQLite, just text " * 200)
    with pytest.raises(InputError, match=f"^{bogus}: "):
        record_run(report(), url=str(bogus), cluster="prod")


def test_wrong_password_on_a_real_server_is_masked(postgres_server: PostgresServer) -> None:
    url = postgres_server.url("postgres", password="wrong-pw-Kx81")
    with pytest.raises(InputError) as caught:
        open_store(url)
    text = str(caught.value)
    assert text.startswith(f"postgresql://postgres:***@127.0.0.1:{postgres_server.port}/postgres: cannot connect: ")
    assert "password authentication failed" in text
    assert "wrong-pw-Kx81" not in text and postgres_server.password not in text


def test_missing_database_on_a_real_server(postgres_server: PostgresServer) -> None:
    with pytest.raises(InputError) as caught:
        open_store(postgres_server.url("no_such_db"))
    assert 'database "no_such_db" does not exist' in str(caught.value)
    assert postgres_server.password not in str(caught.value)


def test_postgres_scheme_alias_reaches_the_same_server(postgres_server: PostgresServer) -> None:
    url = postgres_server.create_database()
    run_id = record_run(report(), url=url.replace("postgresql://", "postgres://", 1), cluster="prod")
    with open_store(url) as store:
        assert [r.id for r in store.runs()] == [run_id]
