"""Credential lookup: docker config variants, helpers, key forms, precedence, and no leaks."""

from __future__ import annotations

import base64
import json
import os
import stat
from pathlib import Path

import pytest

from gpuguard.model.errors import InputError
from gpuguard.sources.images.credentials import Credential, CredentialStore

SECRET = "s3cr3t-Pa55-do-not-print"


def _b64(user: str, password: str) -> str:
    return base64.b64encode(f"{user}:{password}".encode()).decode()


def _config_dir(tmp_path: Path, doc: dict[str, object], name: str = "docker") -> str:
    directory = tmp_path / name
    directory.mkdir()
    (directory / "config.json").write_text(json.dumps(doc))
    return str(directory)


def _store(tmp_path: Path, doc: dict[str, object], **kw: object) -> CredentialStore:
    return CredentialStore(docker_config=_config_dir(tmp_path, doc), **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "key",
    ["https://index.docker.io/v1/", "index.docker.io", "docker.io", "registry-1.docker.io", "https://docker.io"],
)
def test_docker_hub_key_variants(tmp_path: Path, key: str) -> None:
    store = _store(tmp_path, {"auths": {key: {"auth": _b64("hub", SECRET)}}})
    found = store.lookup("docker.io", "library/busybox")
    assert found is not None and (found.username, found.password) == ("hub", SECRET)


@pytest.mark.parametrize(
    ("key", "registry", "repository", "matches"),
    [
        ("registry.example.com", "registry.example.com", "a/b", True),
        ("https://registry.example.com/v2/", "registry.example.com", "a/b", True),
        ("http://registry.example.com:5000", "registry.example.com:5000", "a", True),
        ("registry.example.com:5000", "registry.example.com", "a", False),
        ("registry.example.com/team", "registry.example.com", "team/app", True),
        ("registry.example.com/team", "registry.example.com", "other/app", False),
        ("*.example.com", "registry.example.com", "x", True),
        ("*.example.com", "a.b.example.com", "x", False),
        ("REGISTRY.example.com", "registry.example.com", "x", True),
    ],
)
def test_key_matching(tmp_path: Path, key: str, registry: str, repository: str, matches: bool) -> None:
    store = _store(tmp_path, {"auths": {key: {"username": "u", "password": SECRET}}})
    assert (store.lookup(registry, repository) is not None) is matches


def test_most_specific_key_wins(tmp_path: Path) -> None:
    store = _store(
        tmp_path,
        {
            "auths": {
                "*.example.com": {"username": "wild", "password": "p"},
                "r.example.com": {"username": "host", "password": "p"},
                "r.example.com/team": {"username": "team", "password": "p"},
            }
        },
    )
    assert store.lookup("r.example.com", "team/app").username == "team"  # type: ignore[union-attr]
    assert store.lookup("r.example.com", "other").username == "host"  # type: ignore[union-attr]
    assert store.lookup("q.example.com", "other").username == "wild"  # type: ignore[union-attr]


def test_entry_forms(tmp_path: Path) -> None:
    store = _store(
        tmp_path,
        {
            "auths": {
                "a.io": {"auth": _b64("user", "pa:ss")},
                "b.io": {"identitytoken": SECRET},
                "c.io": {"auth": "!!!not base64!!!"},
                "d.io": {},
                "e.io": {"registrytoken": SECRET},
            }
        },
    )
    a = store.lookup("a.io", "x")
    assert a is not None and (a.username, a.password) == ("user", "pa:ss")
    b = store.lookup("b.io", "x")
    assert b is not None and b.identity_token == SECRET and b.basic is None
    assert store.lookup("c.io", "x") is None
    assert store.lookup("d.io", "x") is None
    e = store.lookup("e.io", "x")
    assert e is not None and e.registry_token == SECRET


def test_precedence_auth_file_then_pull_secret_then_docker_config(tmp_path: Path) -> None:
    auth_file = tmp_path / "auth.json"
    auth_file.write_text(json.dumps({"auths": {"r.io": {"username": "file", "password": "p"}}}))
    secret = {
        "auths": {"r.io": {"username": "secret", "password": "p"}, "s.io": {"username": "secret", "password": "p"}}
    }
    docker = {
        "auths": {"r.io": {"username": "docker", "password": "p"}, "t.io": {"username": "docker", "password": "p"}}
    }
    store = CredentialStore((str(auth_file),), (secret,), _config_dir(tmp_path, docker))
    assert store.lookup("r.io", "x").username == "file"  # type: ignore[union-attr]
    assert store.lookup("s.io", "x").username == "secret"  # type: ignore[union-attr]
    assert store.lookup("t.io", "x").username == "docker"  # type: ignore[union-attr]
    assert store.lookup("u.io", "x") is None


def test_legacy_dockercfg_pull_secret() -> None:
    store = CredentialStore(pull_secrets=({"r.io": {"auth": _b64("old", SECRET)}},), docker_config="/nonexistent")
    assert store.lookup("r.io", "x").username == "old"  # type: ignore[union-attr]


def test_docker_config_env_var(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    directory = _config_dir(tmp_path, {"auths": {"r.io": {"username": "env", "password": "p"}}})
    monkeypatch.setenv("DOCKER_CONFIG", directory)
    assert CredentialStore().lookup("r.io", "x").username == "env"  # type: ignore[union-attr]


def test_broken_files(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text(f'{{"auths": {{"r.io": {{"password": "{SECRET}"')
    with pytest.raises(InputError) as caught:
        CredentialStore((str(bad),), docker_config=str(tmp_path))
    assert SECRET not in str(caught.value)
    with pytest.raises(InputError, match="not found"):
        CredentialStore((str(tmp_path / "missing.json"),), docker_config=str(tmp_path))
    # a broken default docker config is ignored, not an error
    (tmp_path / "config.json").write_text("{")
    assert CredentialStore(docker_config=str(tmp_path)).lookup("r.io", "x") is None


def test_repr_hides_secrets() -> None:
    credential = Credential("user", SECRET, SECRET, SECRET, "somewhere")
    for text in (repr(credential), str(credential), f"{credential}", repr([credential])):
        assert SECRET not in text


def _helper(tmp_path: Path, name: str, body: str) -> Path:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    script = bin_dir / f"docker-credential-{name}"
    script.write_text(f"#!/bin/sh\n{body}\n")
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    return bin_dir


@pytest.fixture
def helper_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    log = tmp_path / "asked.log"
    bin_dir = _helper(
        tmp_path,
        "test",
        f"""[ "$1" = get ] || exit 3
read server
echo "$server" >> {log}
case "$server" in
  r.io) echo '{{"ServerURL":"r.io","Username":"helper-user","Secret":"{SECRET}"}}' ;;
  https://index.docker.io/v1/) echo '{{"ServerURL":"hub","Username":"<token>","Secret":"{SECRET}"}}' ;;
  *) echo "credentials not found in native keychain"; exit 1 ;;
esac""",
    )
    _helper(tmp_path, "slow", "sleep 5")
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    return log


def test_cred_helpers_and_store(tmp_path: Path, helper_path: Path) -> None:
    store = _store(
        tmp_path,
        {
            "credHelpers": {"r.io": "test", "q.io": "test", "m.io": "missing-helper"},
            "credsStore": "test",
            "auths": {"n.io": {"username": "file", "password": "p"}},
        },
    )
    r = store.lookup("r.io", "a")
    assert r is not None and (r.username, r.password) == ("helper-user", SECRET)
    assert store.lookup("r.io", "b") is r or store.lookup("r.io", "b") == r
    assert store.lookup("q.io", "a") is None  # the helper has nothing for it
    assert store.lookup("m.io", "a") is None  # not on PATH
    hub = store.lookup("docker.io", "library/busybox")  # via credsStore, Docker Hub's legacy server name
    assert hub is not None and hub.identity_token == SECRET and hub.basic is None
    assert store.lookup("n.io", "a").username == "file"  # type: ignore[union-attr]  # store has nothing: auths
    asked = helper_path.read_text().split()
    assert asked.count("r.io") == 1  # asked once per registry, not per repository
    assert "https://index.docker.io/v1/" in asked


def test_helper_timeout(tmp_path: Path, helper_path: Path) -> None:
    store = CredentialStore(docker_config=_config_dir(tmp_path, {"credsStore": "slow"}), helper_timeout=0.5)
    assert store.lookup("r.io", "a") is None


def test_helper_name_cannot_be_a_path(tmp_path: Path) -> None:
    store = _store(tmp_path, {"credsStore": "../../bin/sh"})
    assert store.lookup("r.io", "a") is None
